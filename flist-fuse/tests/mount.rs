//! Real FUSE mounts of flists. Every test holds one lock (and nextest runs this binary in
//! the `fuse` test group, one at a time), unmounts what it mounted in a Drop guard, and
//! mounts below a per-run folder `/tmp/flist-mount-test/<pid>-<n>`; leftovers of dead runs
//! are swept first. Skipped without /dev/fuse or root, unless CI=true.
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fuse::{self, Mount, RunDir, dir_url, errno_of};
use common::{noise, ok, pack};
use flist_fuse::mount::cache;

const PREFIX: &str = "/tmp/flist-mount-test";

fn setup() -> Option<std::sync::MutexGuard<'static, ()>> {
    fuse::setup(PREFIX)
}

fn run_ok(cmd: &str, args: &[&OsStr], cwd: &Path) -> String {
    let o = Command::new(cmd)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn packed_tree_reads_back_identically() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir(&src).unwrap();
    common::make_tree(&src);
    let fl = d.j("t.fl");
    pack(&src, &dir_url(&d.j("store")), &fl);
    let m = Mount::start(&fl, &d.j("mnt"), &d.j("cache"), &[]);

    // Every entry: content, mode, owner, times, rdev, nlink, xattrs, hard link groups.
    common::assert_same(&common::snapshot(&src), &common::snapshot(&m.mp));
    let ino = |p: &str| std::fs::symlink_metadata(m.p(p)).unwrap().ino();
    assert_eq!(ino("etc/hard"), ino("etc/sub/hard2"));
    assert_eq!(ino("etc/hard"), ino("hard3"));
    assert_ne!(ino("etc/hard"), ino("etc/hello"));
    let md = std::fs::symlink_metadata(m.p("owned/file")).unwrap();
    assert_eq!((md.uid(), md.gid(), md.nlink()), (1234, 5678, 1));
    assert_eq!(
        std::fs::symlink_metadata(m.p("suid"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755
    );

    // The usual tools.
    let found = run_ok("find", &[OsStr::new(".")], &m.mp);
    assert!(
        found.contains("./etc/sub/rel") && found.contains("./fifo"),
        "{found}"
    );
    let ls = run_ok("ls", &[OsStr::new("-lR"), OsStr::new(".")], &m.mp);
    assert!(
        ls.contains("1, 3") && ls.contains("rel -> ../etc/hello"),
        "{ls}"
    );
    let o = Command::new("tar")
        .args(["-cf", "-", "."])
        .current_dir(&m.mp)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.len() > 5_000_000);

    // The right errno for each failure.
    assert_eq!(errno_of(std::fs::metadata(m.p("nope"))), libc_enoent());
    assert_eq!(errno_of(std::fs::metadata(m.p("etc/hello/x"))), 20); // ENOTDIR
    assert_eq!(errno_of(std::fs::read_link(m.p("etc/hello"))), 22); // EINVAL
    assert_eq!(
        errno_of(
            std::fs::OpenOptions::new()
                .write(true)
                .open(m.p("etc/hello"))
        ),
        30 // EROFS
    );
    assert_eq!(errno_of(std::fs::write(m.p("newfile"), b"x")), 30);
    assert_eq!(errno_of(std::fs::read_dir(m.p("etc/hello"))), 20);
    assert_eq!(
        errno_of(
            rustix::fs::getxattr(m.p("etc/hello"), "user.none", &mut [0u8; 64][..])
                .map_err(std::io::Error::from)
        ),
        61 // ENODATA
    );
    let mut small = [0u8; 2];
    assert_eq!(
        errno_of(
            rustix::fs::getxattr(m.p("etc/hello"), "user.color", &mut small[..])
                .map_err(std::io::Error::from)
        ),
        34 // ERANGE
    );
    let sf = rustix::fs::statfs(&m.mp).unwrap();
    assert_eq!(
        sf.f_files as usize,
        flist_fuse::format::read_file(&fl).unwrap().inodes.len()
    );
    // Reads past the end, at odd offsets.
    let f = std::fs::File::open(m.p("big")).unwrap();
    let mut buf = vec![0u8; 3000];
    let n = f.read_at(&mut buf, 1_048_000).unwrap();
    assert_eq!(&buf[..n], &noise(3_500_000, 1)[1_048_000..1_048_000 + n]);
    assert_eq!(f.read_at(&mut buf, 3_500_000).unwrap(), 0);
    drop(f);

    let (st, log) = m.stop();
    assert!(st.success(), "{log}");
    assert!(
        log.contains("Unmounting") && log.contains("Stopped"),
        "{log}"
    );
}

fn libc_enoent() -> i32 {
    2
}

/// The blocks (ids) of a file inside an flist.
fn blocks_of(fl: &Path, path: &str) -> Vec<[u8; 32]> {
    let f = flist_fuse::format::read_file(fl).unwrap();
    let ino = f.lookup(path.as_bytes()).unwrap();
    f.file_blocks(ino).iter().map(|b| b.id).collect()
}

fn store_file(store: &Path, id: &[u8; 32]) -> PathBuf {
    let h = flist_fuse::format::hex(id);
    store.join(&h[..2]).join(&h)
}

#[test]
fn tampered_block_gives_eio_and_a_store_outage_recovers() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir(&src).unwrap();
    let data = noise(3 * 1024 * 1024 + 100, 9);
    std::fs::write(src.join("f"), &data).unwrap();
    std::fs::write(src.join("g"), b"small file").unwrap();
    let store = d.j("store");
    let fl = d.j("t.fl");
    pack(&src, &dir_url(&store), &fl);
    let ids = blocks_of(&fl, "f");
    assert_eq!(ids.len(), 4);
    let victim = store_file(&store, &ids[1]);
    let good = std::fs::read(&victim).unwrap();
    let mut bad = good.clone();
    let k = bad.len() / 2;
    bad[k] ^= 0x40;
    std::fs::write(&victim, &bad).unwrap();

    let cache_dir = d.j("cache");
    // Demand reads only: fetching `g` ahead of its reader would serve it from the cache below.
    let m = Mount::start(
        &fl,
        &d.j("mnt"),
        &cache_dir,
        &[OsStr::new("--folder-ahead"), OsStr::new("0")],
    );
    let f = std::fs::File::open(m.p("f")).unwrap();
    let mut buf = vec![0u8; 4096];
    f.read_exact_at(&mut buf, 10).unwrap();
    assert_eq!(buf, data[10..4106]);
    // The tampered block: EIO, never wrong bytes.
    let e = f.read_exact_at(&mut buf, 1024 * 1024 + 5).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "{e}");
    let e = std::fs::read(m.p("f")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "{e}");
    f.read_exact_at(&mut buf, 2 * 1024 * 1024).unwrap();
    assert_eq!(buf, data[2 * 1024 * 1024..2 * 1024 * 1024 + 4096]);
    // Nothing of it in the cache.
    let c = cache::DiskCache::open(&cache_dir, u64::MAX).unwrap();
    assert!(!c.path(&ids[1]).exists());
    // Repaired in the store: served (failures are not remembered).
    std::fs::write(&victim, &good).unwrap();
    f.read_exact_at(&mut buf, 1024 * 1024 + 5).unwrap();
    assert_eq!(buf, data[1024 * 1024 + 5..1024 * 1024 + 5 + 4096]);
    drop(f);

    // The store goes away: EIO and a log line; back: reads work again.
    let away = d.j("store-away");
    std::fs::rename(&store, &away).unwrap();
    let e = std::fs::read(m.p("g")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "{e}");
    std::fs::rename(&away, &store).unwrap();
    assert_eq!(std::fs::read(m.p("g")).unwrap(), b"small file");
    let (st, log) = m.stop();
    assert!(st.success());
    assert!(
        log.contains("does not match") || log.contains("rejected"),
        "{log}"
    );
    assert!(
        log.contains("failing") && log.contains("answers again"),
        "{log}"
    );
}

#[test]
fn corrupt_cache_files_are_refetched_and_the_cache_stays_bounded() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir(&src).unwrap();
    let data = noise(6 * 1024 * 1024, 3);
    std::fs::write(src.join("a"), &data).unwrap();
    let fl = d.j("t.fl");
    pack(&src, &dir_url(&d.j("store")), &fl);
    let cache_dir = d.j("cache");

    let m = Mount::start(&fl, &d.j("mnt"), &cache_dir, &[]);
    assert_eq!(std::fs::read(m.p("a")).unwrap(), data);
    assert!(m.stop().0.success());
    let ids = blocks_of(&fl, "a");
    let c = cache::DiskCache::open(&cache_dir, u64::MAX).unwrap();
    for id in &ids {
        assert!(c.path(id).exists());
    }
    // Truncate one, flip a bit in another.
    let p0 = c.path(&ids[0]);
    let b0 = std::fs::read(&p0).unwrap();
    std::fs::write(&p0, &b0[..b0.len() / 3]).unwrap();
    let p3 = c.path(&ids[3]);
    let mut b3 = std::fs::read(&p3).unwrap();
    b3[5000] ^= 1;
    std::fs::write(&p3, &b3).unwrap();

    let m = Mount::start(&fl, &d.j("mnt"), &cache_dir, &[]);
    assert_eq!(std::fs::read(m.p("a")).unwrap(), data);
    let (st, log) = m.stop();
    assert!(st.success());
    assert_eq!(log.matches("cache file rejected").count(), 2, "{log}");
    for id in &ids {
        let b = std::fs::read(c.path(id)).unwrap();
        cache::check_file(&b, (b.len() - cache::HEADER_LEN) as u32).unwrap();
    }

    // A 3 MiB bound while reading 6 MiB.
    let small = d.j("small-cache");
    let bound = 3 * 1024 * 1024u64;
    let m = Mount::start(
        &fl,
        &d.j("mnt"),
        &small,
        &[OsStr::new("--cache-size"), OsStr::new("3M")],
    );
    let mut f = std::fs::File::open(m.p("a")).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut all = Vec::new();
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        let used = cache::DiskCache::open(&small, u64::MAX)
            .unwrap()
            .size_on_disk();
        // The cache itself stays under the bound (writes reserve room first; unit test
        // `concurrent_writers_never_pass_the_bound`), but this scan from another process is
        // no snapshot: a file evicted behind it and one written ahead of it both count.
        assert!(used <= bound + 1024 * 1024 + 4096, "cache at {used} bytes");
    }
    assert!(all == data);
    drop(f);
    assert!(m.stop().0.success());
    let used = cache::DiskCache::open(&small, u64::MAX)
        .unwrap()
        .size_on_disk();
    assert!(used <= bound, "cache holds {used} bytes, bound {bound}");
    assert!(used > 0);
}

#[test]
fn recorded_prefetch_list_is_fetched_up_front() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    for k in 0..30 {
        std::fs::write(src.join(format!("d/f{k:02}")), noise(2000 + k, k as u64)).unwrap();
    }
    std::fs::write(src.join("big"), noise(3 * 1024 * 1024, 77)).unwrap();
    let fl = d.j("t.fl");
    // A block per small file (none packed): a list of 11 files is then 11 blocks.
    common::pack_unpacked(&src, &dir_url(&d.j("store")), &fl);
    let rec = d.j("list.txt");

    let m = Mount::start(
        &fl,
        &d.j("mnt"),
        &d.j("cache1"),
        &[OsStr::new("--record"), rec.as_os_str()],
    );
    for k in 0..10 {
        std::fs::read(m.p(format!("d/f{k:02}"))).unwrap();
    }
    let mut head = [0u8; 100];
    std::fs::File::open(m.p("big"))
        .unwrap()
        .read_exact_at(&mut head, 0)
        .unwrap();
    let (st, log) = m.stop();
    assert!(st.success(), "{log}");
    let list = std::fs::read_to_string(&rec).unwrap();
    assert!(list.starts_with("flist-prefetch v1 "), "{list}");
    assert_eq!(list.lines().count(), 1 + 11, "{list}");

    // Embedded: a fresh cache gets the 11 blocks without any read.
    let fl2 = d.j("t2.fl");
    std::fs::copy(&fl, &fl2).unwrap();
    let out = ok(flist!("embed-prefetch", fl2, rec));
    assert!(out.contains("11 blocks"), "{out}");
    let f2 = flist_fuse::format::read_file(&fl2).unwrap();
    assert_eq!(f2.trailer.prefetch_blocks.len(), 11);
    assert_eq!(
        f2.identity,
        flist_fuse::format::read_file(&fl).unwrap().identity
    );
    for (cache_name, flist, extra) in [
        ("cache2", &fl2, vec![]),
        (
            "cache3",
            &fl,
            vec![OsStr::new("--prefetch"), rec.as_os_str()],
        ),
    ] {
        let cd = d.j(cache_name);
        let m = Mount::start(flist, &d.j("mnt"), &cd, &extra);
        let t0 = Instant::now();
        loop {
            let n = cache::DiskCache::open(&cd, u64::MAX)
                .unwrap()
                .scan()
                .unwrap()
                .len();
            if n == 11 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{n} blocks prefetched"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (st, log) = m.stop();
        assert!(st.success());
        assert!(log.contains("prefetching 11 blocks"), "{log}");
        assert!(log.contains("store fetches 11"), "{log}");
    }
}

#[test]
fn encrypted_image_reads_back() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir(&src).unwrap();
    let data = noise(2 * 1024 * 1024 + 7, 5);
    std::fs::write(src.join("secret"), &data).unwrap();
    let fl = d.j("e.fl");
    ok(flist!(
        "pack",
        "--quiet",
        "--encrypt",
        "--store",
        dir_url(&d.j("store")),
        "-o",
        fl,
        src
    ));
    // The flist's own route is replaced by --store.
    let moved = d.j("moved");
    std::fs::rename(d.j("store"), &moved).unwrap();
    let m = Mount::start(
        &fl,
        &d.j("mnt"),
        &d.j("cache"),
        &[OsStr::new("--store"), OsStr::new(&dir_url(&moved))],
    );
    assert!(std::fs::read(m.p("secret")).unwrap() == data);
    assert!(m.stop().0.success());
}
