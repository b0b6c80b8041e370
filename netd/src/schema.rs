//! The schema version of netd's state folder (`STATE/schema.json`, `{"schema": N}`), and its
//! migrations. A state without the file is version 0 (records written before versions
//! existed).
//!
//! An upgrade (node-init, `zos upgrade netd`) runs the new binary as `netd --migrate --state
//! COPY` on a copy of the folder, so a failed migration or a rollback leaves the old folder as
//! it was; netd refuses at start a state newer than it knows, which is why a rollback brings
//! back the old folder with the old binary. A netd started on an older state migrates it in
//! place first (a binary replaced without node-init).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The version this netd reads and writes.
pub const CURRENT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct File {
    schema: u32,
}

fn path(state: &Path) -> PathBuf {
    state.join("schema.json")
}

/// The folder's version (0 when it has no version file).
pub fn read(state: &Path) -> Result<u32, String> {
    nodeutil::fs::read_json::<File>(&path(state))
        .map(|f| f.map_or(0, |f| f.schema))
        .map_err(|e| format!("cannot read the state's schema version: {e}"))
}

/// Brings the folder to [`CURRENT`]; the versions it went from and to. Refuses a newer one.
pub fn migrate(state: &Path) -> Result<(u32, u32), String> {
    let from = read(state)?;
    if from > CURRENT {
        return Err(format!(
            "the state in {} has schema {from}, newer than this netd's {CURRENT}: \
             run the netd it was written by (zos upgrade --rollback netd)",
            state.display()
        ));
    }
    let mut v = from;
    while v < CURRENT {
        step(state, v)?;
        v += 1;
        nodeutil::fs::write_json(&path(state), &File { schema: v })
            .map_err(|e| format!("cannot write the schema version: {e}"))?;
    }
    Ok((from, v))
}

/// One migration, from `v` to `v + 1`.
fn step(_state: &Path, v: u32) -> Result<(), String> {
    match v {
        // 0 -> 1: the layout is unchanged; the version file appears
        0 => Ok(()),
        _ => Err(format!("no migration from schema {v}")),
    }
}

/// `netd --migrate`: every record must parse (a record this version cannot read stops the
/// upgrade, where the daemon would skip it), then [`migrate`].
pub fn upgrade(state: &Path) -> Result<(u32, u32), String> {
    if state.join("networks").exists() {
        let (_, bad) = crate::state::Store::open(state)
            .and_then(|s| s.load_all())
            .map_err(|e| format!("cannot read the records: {e}"))?;
        if !bad.is_empty() {
            return Err(format!("unreadable network records: {}", bad.join("; ")));
        }
    }
    migrate(state)
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn versions_move_forward_and_a_newer_state_is_refused() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()).unwrap(), 0);
        assert_eq!(migrate(d.path()).unwrap(), (0, CURRENT));
        assert_eq!(migrate(d.path()).unwrap(), (CURRENT, CURRENT));
        std::fs::write(path(d.path()), br#"{"schema": 99}"#).unwrap();
        let e = migrate(d.path()).unwrap_err();
        assert!(e.contains("newer"), "{e}");
    }

    #[test]
    fn an_unreadable_record_stops_the_migration() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("networks")).unwrap();
        std::fs::write(d.path().join("networks/n1.json"), b"{not json").unwrap();
        let e = upgrade(d.path()).unwrap_err();
        assert!(e.contains("n1.json"), "{e}");
        assert_eq!(read(d.path()).unwrap(), 0);
    }
}
