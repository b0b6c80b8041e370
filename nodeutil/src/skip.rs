//! The rule for tests that need root, a device or a tool: skip on a laptop that lacks it, fail
//! under `CI=true`, and always say so. A skip is printed and, when `ZOS_SKIP_LOG` names a file
//! (`scripts/test.sh` sets it), appended there as one line, so the test command can end with a
//! summary of everything that did not run and why.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A binary of this workspace that tests run, if built: `$<NAME>_BIN` (upper case, `-` as
/// `_`), else `<target>/debug/<name>`, else `<target>/release/<name>`, where `<target>` is
/// `$CARGO_TARGET_DIR` or the workspace's `target/`. Callers skip (or fail under CI) on `None`.
pub fn workspace_binary(name: &str) -> Option<PathBuf> {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join(name))
        .find(|p| p.is_file())
}

/// True under `CI=true`, where nothing may be skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Returns `true` when the calling test must skip because `available` is false: it panics
/// instead under CI, and records the skip with `what` (the missing capability) otherwise.
///
/// ```ignore
/// if nodeutil::skip::unless(has_fuse(), "/dev/fuse and root") { return; }
/// ```
pub fn unless(available: bool, what: &str) -> bool {
    if available {
        return false;
    }
    assert!(
        !under_ci(),
        "required capability missing under CI=true: {what}"
    );
    record(what);
    true
}

/// Records a skip of the current test (see the module doc).
pub fn record(what: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_string();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| n.rsplit_once('-').map_or(n.clone(), |(b, _)| b.to_string()))
        .unwrap_or_default();
    let line = format!("{binary}::{test}: {}\n", what.replace('\n', " "));
    eprint!("SKIPPED {line}");
    if let Some(path) = std::env::var_os("ZOS_SKIP_LOG") {
        // One short O_APPEND write per skip: lines from parallel test processes never interleave.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

/// True when running as root (effective uid 0), read from `/proc/self/status`.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// True when `tool` is an executable on `PATH`.
pub fn has_tool(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            std::fs::metadata(d.join(tool)).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn available_never_skips() {
        assert!(!unless(true, "nothing"));
        assert!(has_tool("sh"));
        assert!(!has_tool("surely-no-such-tool-here"));
    }
}
