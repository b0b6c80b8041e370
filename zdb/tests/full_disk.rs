//! Full disk (ENOSPC) on a small tmpfs: a clear refusal, no acknowledged write
//! lost, reads keep working, and everything is back after a restart with room.
//! Needs root (mount); skipped otherwise unless CI=true.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

struct TmpfsMount {
    dir: PathBuf,
    mounted: bool,
    _parent: tempfile::TempDir,
}

impl TmpfsMount {
    fn new(size: &str) -> Result<TmpfsMount, String> {
        let parent = tempfile::Builder::new()
            .prefix(&format!("zdb-enospc-{}-", std::process::id()))
            .tempdir()
            .map_err(|e| e.to_string())?;
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(TmpfsMount {
            dir,
            mounted: true,
            _parent: parent,
        })
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(st.success(), "remount failed");
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        if self.mounted {
            let ok = Command::new("umount")
                .arg(&self.dir)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
            }
            self.mounted = false;
        }
    }
}

#[test]
fn enospc_refuses_cleanly_and_keeps_acknowledged_writes() {
    if nodeutil::skip::unless(nodeutil::skip::is_root(), "root (to mount a tmpfs)") {
        return;
    }
    let mnt = match TmpfsMount::new("2m") {
        Ok(m) => m,
        Err(e) => {
            nodeutil::skip::unless(false, &format!("a tmpfs mount ({e})"));
            return;
        }
    };
    // the server (declared after the mount) is dropped first, then unmounted
    let mut s = Server::start_at(mnt.path(), &["--mode", "user", "--datasize", "512k"]);
    let mut c = s.client();
    let mut acked: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut refusal = None;
    for i in 0..400u64 {
        let k = format!("fill-{i:04}").into_bytes();
        let v = pseudo_bytes(i, 48 * 1024);
        match c.set(&k, &v) {
            Reply::Bulk(Some(r)) => {
                assert_eq!(r, k);
                acked.push((k, v));
            }
            Reply::Error(e) => {
                refusal = Some(e);
                break;
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }
    let refusal = refusal.expect("2 MiB tmpfs never filled up");
    assert!(
        refusal.starts_with("Cannot write"),
        "refusal must be a clear '-Cannot write…' error, got -{refusal}"
    );
    assert!(!acked.is_empty(), "no write succeeded at all");
    eprintln!("{} writes acknowledged before -{refusal}", acked.len());
    assert!(s.is_running(), "server died on ENOSPC");

    // reads keep working; writes keep being refused until restart
    let mut c2 = s.client();
    for (k, v) in &acked {
        assert_eq!(c2.get(k), Reply::bulk(v), "{}", String::from_utf8_lossy(k));
    }
    assert_eq!(c2.dbsize(), acked.len() as i64);
    let small = c2.set(b"tiny", b"x");
    assert!(
        matches!(&small, Reply::Error(e) if e.starts_with("Cannot write")),
        "namespace must refuse writes after ENOSPC until restart, got {small:?}"
    );
    assert_eq!(c2.c(&["PING"]), Reply::simple("PONG"));
    let info = c2.nsinfo("default");
    let errs: u64 = info_get(&info, "stats_data_io_errors")
        .unwrap()
        .parse()
        .unwrap();
    let ierrs: u64 = info_get(&info, "stats_index_io_errors")
        .unwrap()
        .parse()
        .unwrap();
    assert!(errs + ierrs > 0, "NSINFO must count the I/O error");

    // restart with more room: everything acknowledged is there, writes work
    s.kill();
    mnt.resize("16m");
    s.launch();
    let mut c = s.client();
    for (k, v) in &acked {
        assert_eq!(c.get(k), Reply::bulk(v), "{}", String::from_utf8_lossy(k));
    }
    assert_eq!(c.dbsize(), acked.len() as i64);
    assert_eq!(c.set(b"after", b"room"), Reply::bulk("after"));
    s.restart();
    let mut c = s.client();
    assert_eq!(c.get(b"after"), Reply::bulk("room"));
    assert_eq!(c.dbsize(), acked.len() as i64 + 1);
    s.kill();
    drop(s);
    drop(mnt);
}

#[test]
fn enospc_in_other_namespace_keeps_reads() {
    if nodeutil::skip::unless(nodeutil::skip::is_root(), "root (to mount a tmpfs)") {
        return;
    }
    let mnt = match TmpfsMount::new("1m") {
        Ok(m) => m,
        Err(e) => {
            nodeutil::skip::unless(false, &format!("a tmpfs mount ({e})"));
            return;
        }
    };
    let mut s = Server::start_at(mnt.path(), &["--mode", "user", "--datasize", "512k"]);
    let mut c = s.client();
    c.set(b"early", b"small value");
    c.c(&["NSNEW", "big"]);
    c.select("big");
    let mut refused = false;
    for i in 0..100u64 {
        if let Reply::Error(e) = c.set(format!("b{i}").as_bytes(), &pseudo_bytes(i, 64 * 1024)) {
            assert!(e.starts_with("Cannot write"), "-{e}");
            refused = true;
            break;
        }
    }
    assert!(refused, "1 MiB tmpfs never filled");
    let mut o = s.client();
    assert_eq!(o.get(b"early"), Reply::bulk("small value"));
    s.kill();
    drop(s);
    drop(mnt);
}
