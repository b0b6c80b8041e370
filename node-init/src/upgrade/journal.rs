//! The upgrade journal: `<node>/upgrade/<service>.journal.json`, written (temp + fsync +
//! rename) before anything of a switch changes, so node-init, started again after dying at any
//! point of it, puts the service back as it was ([`recover`]), or finishes the switch when it
//! was already committed. `<node>/upgrade/<service>.previous.json` names the version a
//! `--rollback` returns to.

use super::state;
use crate::supervisor::service::{self, ServiceDef};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Where the state a switch starts from goes: the migrated copy is deleted, a rollback's
/// target goes back to `DIR.rollback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextFrom {
    /// `DIR.next` is a migrated copy.
    Copy,
    /// `DIR.next` was `DIR.rollback`.
    Rollback,
}

/// The state part of a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSwitch {
    /// The state folder.
    pub dir: PathBuf,
    /// What `DIR.next` holds before the exchange.
    pub next_from: NextFrom,
    /// Inode of the folder the old version ran on, recorded before the exchange: after a
    /// crash, `DIR` holding another inode means the exchange happened.
    pub from_inode: Option<u64>,
}

/// One switch of a service from one definition to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The service.
    pub service: String,
    /// What it ran before (restored on recovery).
    pub from: ServiceDef,
    /// What it switches to.
    pub to: ServiceDef,
    /// The state folder's part, when it has one.
    #[serde(default)]
    pub state: Option<StateSwitch>,
    /// The new version was ready: recovery finishes the switch instead of undoing it.
    #[serde(default)]
    pub committed: bool,
}

/// What `--rollback` returns to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// The definition it ran.
    pub def: ServiceDef,
}

/// `<node>/upgrade`.
pub fn dir(node: &Path) -> PathBuf {
    node.join("upgrade")
}

/// The journal of `service`.
pub fn journal_path(node: &Path, service: &str) -> PathBuf {
    dir(node).join(format!("{service}.journal.json"))
}

/// The rollback target of `service`.
pub fn previous_path(node: &Path, service: &str) -> PathBuf {
    dir(node).join(format!("{service}.previous.json"))
}

fn write_err(e: nodeutil::fs::WriteError) -> io::Error {
    io::Error::other(e.to_string())
}

/// Writes a JSON file durably, making `<node>/upgrade` first.
pub fn write<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    nodeutil::fs::create_private_dir(nodeutil::fs::parent_dir(path))?;
    nodeutil::fs::write_json(path, value).map_err(write_err)
}

/// Removes a file and fsyncs its folder (missing is fine).
pub fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => nodeutil::fs::sync_dir(nodeutil::fs::parent_dir(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes a service's definition file (`<services>/<name>.json`): the switch of its binary.
pub fn write_def(services: &Path, name: &str, def: &ServiceDef) -> io::Result<()> {
    nodeutil::fs::write_json(&service::def_path(services, name), def).map_err(write_err)
}

/// Puts the state folder back as the switch found it (idempotent).
pub fn undo_state(s: &StateSwitch) -> io::Result<()> {
    let next = state::next(&s.dir);
    if let Some(from) = s.from_inode
        && state::inode(&s.dir) != Some(from)
        && state::inode(&next) == Some(from)
    {
        state::exchange(&s.dir, &next)?;
    }
    match s.next_from {
        NextFrom::Copy => state::remove(&next),
        NextFrom::Rollback if next.exists() => state::rename(&next, &state::rollback(&s.dir)),
        NextFrom::Rollback => Ok(()),
    }
}

/// Finishes a committed switch (idempotent): the state the old version ran on becomes the
/// rollback state, the old definition the rollback target; then the journal goes.
pub fn finish(node: &Path, j: &Journal) -> io::Result<()> {
    if let Some(s) = &j.state {
        let (next, back) = (state::next(&s.dir), state::rollback(&s.dir));
        if next.exists() {
            state::remove(&back)?;
            state::rename(&next, &back)?;
        }
    }
    write(
        &previous_path(node, &j.service),
        &Previous {
            def: j.from.clone(),
        },
    )?;
    remove(&journal_path(node, &j.service))
}

/// Undoes an uncommitted switch: `stop_new` ends a process still running the new binary (it
/// would otherwise be adopted), the state and the definition file go back, the journal goes.
pub fn undo(node: &Path, services: &Path, j: &Journal, stop_new: &dyn Fn(&Path)) -> io::Result<()> {
    if j.to.exec != j.from.exec {
        stop_new(&j.to.exec);
    }
    if let Some(s) = &j.state {
        undo_state(s)?;
    }
    write_def(services, &j.service, &j.from)?;
    remove(&journal_path(node, &j.service))
}

/// At node-init's start, before the definitions are loaded: every journal left by a switch
/// node-init did not live to end is undone (or finished, when committed). Returns what it did,
/// one line per service, for the log.
pub fn recover(node: &Path, services: &Path, stop_new: &dyn Fn(&Path)) -> io::Result<Vec<String>> {
    let mut done = Vec::new();
    let entries = match std::fs::read_dir(dir(node)) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".journal.json") && !n.starts_with('.'))
        })
        .collect();
    paths.sort();
    for p in paths {
        let Some(j) = nodeutil::fs::read_json::<Journal>(&p)? else {
            continue;
        };
        if j.committed {
            finish(node, &j)?;
            done.push(format!(
                "{}: finished the upgrade to {}",
                j.service,
                j.to.exec.display()
            ));
        } else {
            undo(node, services, &j, stop_new)?;
            done.push(format!(
                "{}: interrupted switch undone, back to {}",
                j.service,
                j.from.exec.display()
            ));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::cell::RefCell;

    /// A node folder with a service `netd` whose state folder holds `v1`.
    fn node() -> (tempfile::TempDir, PathBuf, PathBuf, Journal) {
        let d = tempfile::tempdir().unwrap();
        let services = d.path().join("services");
        std::fs::create_dir_all(&services).unwrap();
        let st = d.path().join("netd");
        std::fs::create_dir_all(&st).unwrap();
        std::fs::write(st.join("schema"), b"v1").unwrap();
        let mut from = ServiceDef::new("/old/netd", vec![]);
        from.state_dir = Some(st.clone());
        let mut to = from.clone();
        to.exec = "/versions/new/netd".into();
        write_def(&services, "netd", &from).unwrap();
        let j = Journal {
            service: "netd".into(),
            from,
            to,
            state: Some(StateSwitch {
                dir: st.clone(),
                next_from: NextFrom::Copy,
                from_inode: None,
            }),
            committed: false,
        };
        (d, services, st, j)
    }

    /// Runs the switch's steps up to `stop_after` (0: journal only ... 4: all but commit),
    /// then recovers as a restarted node-init would, and checks the service is as before.
    #[test]
    fn a_switch_cut_at_any_step_is_undone_at_start() {
        for stop_after in 0..=4 {
            let (d, services, st, mut j) = node();
            let n = d.path();
            write(&journal_path(n, "netd"), &j).unwrap();
            if stop_after >= 1 {
                state::copy_tree(&st, &state::next(&st)).unwrap();
                std::fs::write(state::next(&st).join("schema"), b"v2").unwrap();
            }
            if stop_after >= 2 {
                j.state.as_mut().unwrap().from_inode = state::inode(&st);
                write(&journal_path(n, "netd"), &j).unwrap();
            }
            if stop_after >= 3 {
                state::exchange(&st, &state::next(&st)).unwrap();
            }
            if stop_after >= 4 {
                write_def(&services, "netd", &j.to).unwrap();
            }
            let stopped = RefCell::new(Vec::new());
            let did = recover(n, &services, &|p| {
                stopped.borrow_mut().push(p.to_path_buf())
            })
            .unwrap();
            assert_eq!(did.len(), 1, "{did:?}");
            assert_eq!(
                std::fs::read(st.join("schema")).unwrap(),
                b"v1",
                "step {stop_after}"
            );
            assert!(!state::next(&st).exists());
            let def = service::load(&service::def_path(&services, "netd")).unwrap();
            assert_eq!(def.def.exec, Path::new("/old/netd"));
            assert_eq!(*stopped.borrow(), [PathBuf::from("/versions/new/netd")]);
            assert!(!journal_path(n, "netd").exists());
            // nothing left to do on the next start
            assert!(recover(n, &services, &|_| {}).unwrap().is_empty());
        }
    }

    #[test]
    fn a_committed_switch_is_finished_and_can_be_rolled_back_to() {
        let (d, services, st, mut j) = node();
        let n = d.path();
        state::copy_tree(&st, &state::next(&st)).unwrap();
        std::fs::write(state::next(&st).join("schema"), b"v2").unwrap();
        j.state.as_mut().unwrap().from_inode = state::inode(&st);
        state::exchange(&st, &state::next(&st)).unwrap();
        write_def(&services, "netd", &j.to).unwrap();
        j.committed = true;
        write(&journal_path(n, "netd"), &j).unwrap();
        recover(n, &services, &|_| panic!("nothing to stop")).unwrap();
        assert_eq!(std::fs::read(st.join("schema")).unwrap(), b"v2");
        assert_eq!(
            std::fs::read(state::rollback(&st).join("schema")).unwrap(),
            b"v1"
        );
        let prev: Previous = nodeutil::fs::read_json(&previous_path(n, "netd"))
            .unwrap()
            .unwrap();
        assert_eq!(prev.def.exec, Path::new("/old/netd"));
        let def = service::load(&service::def_path(&services, "netd")).unwrap();
        assert_eq!(def.def.exec, Path::new("/versions/new/netd"));
    }
}
