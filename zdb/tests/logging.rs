//! zdb's log as storaged and the tests keep it, redirected to a file: plain text (no colour
//! codes) unless asked otherwise, one JSON object per line with `--log-format json`.

mod common;
use common::*;

/// Start, write, stop cleanly: the log then holds start-up, a namespace load and the stop.
fn log_of(args: &[&str]) -> String {
    let mut s = Server::start(args);
    assert_eq!(s.client().set(b"k", b"v"), Reply::bulk("k"));
    s.term();
    s.log_text()
}

#[test]
fn a_redirected_log_is_plain_text() {
    let log = log_of(&[]);
    assert!(log.contains("zdb ready"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a redirected log:\n{log}"
    );
    // Forcing colour is still possible.
    assert!(log_of(&["--log-format", "color"]).contains('\u{1b}'));
}

#[test]
fn json_log_on_request() {
    let log = log_of(&["--log-format", "json"]);
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    assert!(log.contains("\"zdb ready\""), "{log}");
}
