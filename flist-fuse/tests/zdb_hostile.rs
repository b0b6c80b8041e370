//! A zdb:// block store is remote and untrusted. Against a fake server that answers a huge
//! length, a deeply nested array or an endless line: `flist cat` fails with a clear error
//! (no abort, no hang, bounded memory, no password in it), and a mount gives EIO for the
//! blocks it cannot get while it goes on serving the others.
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fuse::{self, Mount, RunDir, dir_url};
use common::{noise, pack};
use flist_fuse::store::Store;
use flist_fuse::store::dir::DirStore;
use zdb_client::Value;
use zdb_client::fake::{Act, FakeServer};

/// The hostile answers, by name.
fn hostile() -> Vec<(&'static str, Act)> {
    vec![
        ("huge bulk", Act::Raw(b"$99999999999\r\n".to_vec())),
        ("deep array", Act::Endless(b"*1\r\n".to_vec())),
        (
            "endless line",
            Act::Endless(b"-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_vec()),
        ),
        ("garbage", Act::Endless(b"\x00\xff garbage ".to_vec())),
    ]
}

/// A fake zdb serving the blocks of a dir store, answering `act` for the ids `poisoned`
/// says.
fn fake_store(
    store: &Path,
    poisoned: impl Fn(&[u8]) -> bool + Send + Sync + 'static,
    act: Act,
) -> FakeServer {
    let dir = Arc::new(DirStore::open(store.to_str().unwrap()).unwrap());
    FakeServer::start(
        move |args| match (args.first().map(|a| &a[..]), args.get(1)) {
            (Some(b"GET"), Some(key)) if poisoned(key) => act.clone(),
            (Some(b"GET"), Some(key)) => {
                match <[u8; 32]>::try_from(&key[..]).map(|id| dir.get(&id)) {
                    Ok(Ok(b)) => Act::Reply(Value::bulk(b)),
                    _ => Act::Reply(Value::Nil),
                }
            }
            _ => Act::Reply(Value::ok()),
        },
    )
    .unwrap()
}

/// Peak resident memory of a process, from /proc (0 once it is gone).
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[test]
fn flist_cat_fails_cleanly_against_a_hostile_store() {
    let t = common::tmp();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), noise(200_000, 3)).unwrap();
    let store = t.path().join("store");
    let fl = t.path().join("t.fl");
    pack(&src, &dir_url(&store), &fl);
    for (what, act) in hostile() {
        let fake = fake_store(&store, |_| true, act);
        let url = format!("zdb://user:s3cret@{}/ns", fake.addr());
        let t0 = Instant::now();
        let mut child = Command::new(common::flist())
            .args(["cat", "--store", &url])
            .arg(&fl)
            .arg("f")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut peak = 0;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            peak = peak.max(peak_rss(child.id()));
            if t0.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("{what}: flist cat hangs");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(
            status.code(),
            Some(1),
            "{what}: killed by a signal? {status:?} {err}"
        );
        assert!(err.contains("protocol error"), "{what}: {err}");
        assert!(err.contains(&fake.addr().to_string()), "{what}: {err}");
        assert!(!err.contains("s3cret"), "{what}: password in {err}");
        assert!(peak < 256 << 20, "{what}: {peak} bytes resident");
    }
}

fn block_ids(fl: &Path, path: &str) -> Vec<[u8; 32]> {
    let f = flist_fuse::format::read_file(fl).unwrap();
    let ino = f.lookup(path.as_bytes()).unwrap();
    f.file_blocks(ino).iter().map(|b| b.id).collect()
}

const PREFIX: &str = "/tmp/flist-zdb-hostile-test";

#[test]
fn mount_serves_other_blocks_while_one_is_hostile() {
    let Some(_g) = fuse::setup(PREFIX) else {
        return;
    };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir(&src).unwrap();
    let big = noise(3 * 1024 * 1024 + 10, 5);
    std::fs::write(src.join("big"), &big).unwrap();
    std::fs::write(src.join("small"), b"small file").unwrap();
    let store = d.j("store");
    let fl = d.j("t.fl");
    pack(&src, &dir_url(&store), &fl);
    let ids = block_ids(&fl, "big");
    assert!(ids.len() >= 3);
    for (n, (what, act)) in hostile().into_iter().enumerate() {
        let victim = ids[1];
        let fake = fake_store(&store, move |k| k == victim, act);
        let url = format!("zdb://user:s3cret@{}/ns", fake.addr());
        let cache = d.j(&format!("cache{n}"));
        let m = Mount::start(
            &fl,
            &d.j(&format!("mnt{n}")),
            &cache,
            &["--store".as_ref(), url.as_ref()],
        );
        let f = std::fs::File::open(m.p("big")).unwrap();
        let mut buf = vec![0u8; 4096];
        f.read_exact_at(&mut buf, 10).unwrap();
        assert_eq!(buf, big[10..4106], "{what}");
        let e = f.read_exact_at(&mut buf, 1024 * 1024 + 5).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5), "{what}: {e}");
        f.read_exact_at(&mut buf, 2 * 1024 * 1024).unwrap();
        assert_eq!(buf, big[2 * 1024 * 1024..2 * 1024 * 1024 + 4096], "{what}");
        assert_eq!(
            std::fs::read(m.p("small")).unwrap(),
            b"small file",
            "{what}"
        );
        drop(f);
        let (st, log) = m.stop();
        assert!(st.success(), "{what}: {log}");
        assert!(log.contains("protocol error"), "{what}: {log}");
        assert!(!log.contains("s3cret"), "{what}: password in {log}");
    }
}
