//! `storaged bench` prints the five figures as one JSON object.

use std::process::Command;

#[test]
fn bench_prints_json() {
    let d = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_storaged"))
        .args(["bench", "--size", "16M", "--runtime", "0.3"])
        .arg(d.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && (stderr.contains("Operation not permitted") || stderr.contains("not supported"))
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "io_uring/O_DIRECT unavailable: {stderr}"
        );
        eprintln!("SKIPPED: io_uring or O_DIRECT unavailable: {stderr}");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for k in [
        "seq_read_mib_s",
        "seq_write_mib_s",
        "rand_read_iops",
        "rand_write_iops",
        "fsync_p50_us",
    ] {
        assert!(v[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    assert!(
        !d.path().join(".storaged-bench.tmp").exists(),
        "temp file removed"
    );
}
