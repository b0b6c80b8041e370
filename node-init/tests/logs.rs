//! node-init's own log format, and the one it gives the daemons it starts (their output goes
//! to files: plain text, or JSON when node-init logs JSON), whatever its environment says.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Runs `node-init --node DIR --start-storaged` whose "storaged" only prints its environment
/// and exits; returns (node-init's stderr, the storaged log).
fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
    let fake = dir.join("fake-storaged");
    std::fs::write(&fake, "#!/bin/sh\nenv\nexit 3\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let node = dir.join("node");
    let out = Command::new(env!("CARGO_BIN_EXE_node-init"))
        .arg("--node")
        .arg(&node)
        .arg("--start-storaged")
        .arg("--storaged-bin")
        .arg(&fake)
        .arg("--storaged-timeout")
        .arg("10")
        .args(args)
        .env_remove("ZOS_NODE")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the fake storaged cannot come up");
    let log = std::fs::read_to_string(node.join("log/storaged.log")).unwrap();
    std::fs::remove_dir_all(&node).unwrap();
    (String::from_utf8_lossy(&out.stderr).into_owned(), log)
}

#[test]
fn children_log_plain_into_files_or_json_when_asked() {
    let d = tempfile::tempdir().unwrap();
    let (stderr, log) = run(d.path(), &[("ZOS_LOG_FORMAT", "color")], &[]);
    assert!(
        log.lines().any(|l| l == "ZOS_LOG_FORMAT=plain"),
        "storaged not told to log plain:\n{log}"
    );
    assert!(stderr.contains("exit code 3"), "{stderr}");

    let (stderr, log) = run(d.path(), &[], &["--log-format", "json"]);
    assert!(log.lines().any(|l| l == "ZOS_LOG_FORMAT=json"), "{log}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!lines.is_empty(), "no JSON log line:\n{stderr}");
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["level"].is_string(), "{l}");
    }
}
