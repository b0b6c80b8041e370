//! storaged's log lines: plain text in a file, colour only when asked, JSON on request.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the daemon (no disks: needs no root) with `args` and stderr in a file until it logs
/// that it serves; returns what it logged.
fn first_lines(env: &[(&str, &str)], args: &[&str]) -> String {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("node.json");
    std::fs::write(&cfg, r#"{"node_id": "logtest", "disks": []}"#).unwrap();
    let log_path = d.path().join("storaged.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storaged"))
        .arg("--config")
        .arg(&cfg)
        .arg("--root")
        .arg(d.path().join("root"))
        .args(args)
        .env_remove("ZOS_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("storaged serving") {
            break text;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("storaged did not log that it serves:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    text
}

#[test]
fn plain_in_a_file_colour_when_asked_json_on_request() {
    let plain = first_lines(&[], &[]);
    assert!(
        !plain.contains('\x1b'),
        "colour codes in a log file:\n{plain}"
    );
    // The environment's choice beats auto, the flag beats the environment.
    let color = first_lines(&[("ZOS_LOG_FORMAT", "color")], &[]);
    assert!(
        color.contains('\x1b'),
        "ZOS_LOG_FORMAT=color ignored:\n{color}"
    );
    let flag = first_lines(&[("ZOS_LOG_FORMAT", "color")], &["--log-format", "plain"]);
    assert!(
        !flag.contains('\x1b'),
        "--log-format plain ignored:\n{flag}"
    );
    let json = first_lines(&[], &["--log-format", "json"]);
    for line in json.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(json.contains("\"storaged serving\""), "{json}");
}
