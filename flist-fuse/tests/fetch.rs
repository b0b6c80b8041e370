//! Real FUSE mounts of the current layout: version-1 and converted images mount alike,
//! folders are fetched ahead of their readers (listing, or a first read), packed small files
//! cost one fetch per block and a bad pack is EIO for its files only, and a missing block is
//! logged once as that block. In nextest's `fuse` group; each test holds the harness lock,
//! mounts below `/tmp/flist-fetch-test/<pid>-<n>` and unmounts in Drop guards. Skipped
//! without /dev/fuse or root, unless CI=true.
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fuse::{self, Mount, RunDir, dir_url};
use common::{noise, ok, pack};
use flist_fuse::format;
use flist_fuse::mount::cache::DiskCache;

const PREFIX: &str = "/tmp/flist-fetch-test";

fn setup() -> Option<std::sync::MutexGuard<'static, ()>> {
    fuse::setup(PREFIX)
}

fn cached(cache: &Path) -> usize {
    DiskCache::open(cache, u64::MAX)
        .unwrap()
        .scan()
        .unwrap()
        .len()
}

/// Wait (at most 20 s) until the cache holds `n` blocks.
fn wait_cached(cache: &Path, n: usize) {
    let t0 = Instant::now();
    while cached(cache) < n {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{} of {n} blocks cached",
            cached(cache)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn store_file(store: &Path, id: &[u8; 32]) -> PathBuf {
    let h = format::hex(id);
    store.join(&h[..2]).join(&h)
}

/// The number in the mount's final log line `store fetches N`.
fn store_fetches(log: &str) -> usize {
    let rest = log.split("store fetches ").nth(1).unwrap();
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn version_1_and_converted_images_mount_alike() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let fx = common::v1_fixture();
    let from = dir_url(&fx.join("store"));
    let v1 = fx.join("tree-v1.flist");
    let v2 = d.j("v2.flist");
    ok(flist!(
        "convert",
        "--from-store",
        from,
        "--store",
        dir_url(&d.j("store")),
        "-o",
        v2,
        v1
    ));
    let m1 = Mount::start(
        &v1,
        &d.j("m1"),
        &d.j("cache1"),
        &[OsStr::new("--store"), OsStr::new(&from)],
    );
    let m2 = Mount::start(&v2, &d.j("m2"), &d.j("cache2"), &[]);
    common::matches_v1_manifest(&m1.mp);
    common::matches_v1_manifest(&m2.mp);
    common::assert_same(&common::snapshot(&m1.mp), &common::snapshot(&m2.mp));
    assert!(m1.stop().0.success());
    assert!(m2.stop().0.success());
}

#[test]
fn a_folder_is_fetched_ahead_when_listed_or_first_read() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    for (k, dir) in ["d", "e"].iter().enumerate() {
        std::fs::create_dir_all(src.join(dir)).unwrap();
        for f in 0..60u64 {
            let data = noise(500 + f as usize, f + 100 * k as u64);
            std::fs::write(src.join(format!("{dir}/f{f:03}")), data).unwrap();
        }
    }
    std::fs::write(src.join("big"), noise(3 << 20, 9)).unwrap();
    let fl = d.j("t.fl");
    // One block per file, as in a version-1 image: 60 requests per folder without fetch-ahead.
    common::pack_unpacked(&src, &dir_url(&d.j("store")), &fl);
    // Listing `d` fetches its 60 blocks, reading none of its files, and nothing else.
    let cache = d.j("cache");
    let m = Mount::start(&fl, &d.j("mnt"), &cache, &[]);
    assert_eq!(std::fs::read_dir(m.p("d")).unwrap().count(), 60);
    wait_cached(&cache, 60);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(cached(&cache), 60, "only the listed folder");
    for f in 0..60u64 {
        let want = noise(500 + f as usize, f);
        assert!(std::fs::read(m.p(format!("d/f{f:03}"))).unwrap() == want);
    }
    let (st, log) = m.stop();
    assert!(st.success());
    assert_eq!(store_fetches(&log), 60, "each block once: {log}");

    // Without a listing: the first file read in `e` brings its 59 siblings.
    let cache2 = d.j("cache2");
    let m = Mount::start(&fl, &d.j("mnt"), &cache2, &[]);
    assert!(std::fs::read(m.p("e/f007")).unwrap() == noise(507, 107));
    wait_cached(&cache2, 60);
    // Off: a read fetches what it reads.
    let cache3 = d.j("cache3");
    drop(m);
    let m = Mount::start(
        &fl,
        &d.j("mnt"),
        &cache3,
        &[OsStr::new("--folder-ahead"), OsStr::new("0")],
    );
    std::fs::read(m.p("e/f007")).unwrap();
    assert_eq!(std::fs::read_dir(m.p("e")).unwrap().count(), 60);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cached(&cache3), 1);
}

#[test]
fn packed_small_files_cost_a_fetch_per_block_and_a_bad_pack_is_eio() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    let mut want = Vec::new();
    for dir in ["x/a", "x/b", "y"] {
        std::fs::create_dir_all(src.join(dir)).unwrap();
        for f in 0..150u64 {
            let p = format!("{dir}/f{f:03}");
            let data = noise(10 + (f as usize * 997) % 30_000, want.len() as u64);
            std::fs::write(src.join(&p), &data).unwrap();
            want.push((p, data));
        }
    }
    let store = d.j("store");
    let fl = d.j("t.fl");
    pack(&src, &dir_url(&store), &fl);
    let f = format::read_file(&fl).unwrap();
    let ids: HashSet<[u8; 32]> = f.blocks.iter().map(|b| b.id).collect();
    assert!(ids.len() <= 8, "{} blocks for 450 small files", ids.len());

    // Read everything cold (as tar does): every block fetched once.
    let m = Mount::start(&fl, &d.j("mnt"), &d.j("cache"), &[]);
    let o = std::process::Command::new("tar")
        .args(["-cf", "-", "."])
        .current_dir(&m.mp)
        .output()
        .unwrap();
    assert!(o.status.success());
    for (p, data) in &want {
        assert!(std::fs::read(m.p(p)).unwrap() == *data, "{p}");
    }
    let (st, log) = m.stop();
    assert!(st.success());
    assert_eq!(store_fetches(&log), ids.len(), "{log}");

    // A flipped bit in the pack holding y/f000: EIO for every file in it, never other bytes;
    // the files of the other packs read fine.
    let bad = f.file_blocks(f.lookup(b"y/f000").unwrap())[0].id;
    let victim = store_file(&store, &bad);
    let mut bytes = std::fs::read(&victim).unwrap();
    let k = bytes.len() / 2;
    bytes[k] ^= 0x10;
    std::fs::write(&victim, bytes).unwrap();
    let m = Mount::start(&fl, &d.j("mnt"), &d.j("cache-bad"), &[]);
    for (p, data) in &want {
        let in_bad = f.file_blocks(f.lookup(p.as_bytes()).unwrap())[0].id == bad;
        match std::fs::read(m.p(p)) {
            Ok(got) => assert!(!in_bad && got == *data, "{p}"),
            Err(e) => assert!(in_bad && e.raw_os_error() == Some(5), "{p}: {e}"),
        }
    }
    let (_, log) = m.stop();
    assert_eq!(log.matches(&format::hex(&bad)).count(), 1, "{log}");
}

#[test]
fn a_missing_block_is_logged_once_as_that_block() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("x"), b"gone soon").unwrap();
    std::fs::write(src.join("y"), b"still here").unwrap();
    let store = d.j("store");
    let fl = d.j("t.fl");
    common::pack_unpacked(&src, &dir_url(&store), &fl);
    let f = format::read_file(&fl).unwrap();
    let id = f.file_blocks(f.lookup(b"x").unwrap())[0].id;
    std::fs::remove_file(store_file(&store, &id)).unwrap();
    let m = Mount::start(&fl, &d.j("mnt"), &d.j("cache"), &[]);
    for _ in 0..3 {
        let e = std::fs::read(m.p("x")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5), "{e}");
        assert_eq!(std::fs::read(m.p("y")).unwrap(), b"still here");
    }
    let (st, log) = m.stop();
    assert!(st.success());
    let h = format::hex(&id);
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&h)).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("not found in dir://"), "{log}");
    assert!(
        !log.contains("failing") && !log.contains("answers again"),
        "{log}"
    );
}
