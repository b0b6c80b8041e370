//! rfs `.fl` flists: the real fixture made by rfs, and `.fl` files built here from the
//! documented layout (SQLite via rusqlite, blocks encrypted as rfs does, independently of
//! the library's code). Mount tests hold one lock (nextest runs this binary in the `fuse`
//! group too), mount below `/tmp/flist-rfs-test/<pid>-<n>` and unmount in Drop guards.
//! Mounting is skipped without /dev/fuse or root, unless CI=true.
//!
//! Over 500 lines: one concern (reading the field's format), and a third of it is the
//! independent `.fl` writer and reader these tests check the library against; split, both
//! halves would need it.
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aes_gcm::aead::{Aead, KeyInit};
use blake2::Digest;
use common::fuse::{self, Mount, RunDir, dir_url, errno_of};
use common::{Desc, fails, ok};
use rusqlite::Connection;
use rusqlite::types::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rfs-fl");
const PREFIX: &str = "/tmp/flist-rfs-test";

fn fixture() -> PathBuf {
    PathBuf::from(FIXTURE)
}

fn setup() -> Option<std::sync::MutexGuard<'static, ()>> {
    fuse::setup(PREFIX)
}

fn sha256(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn blake2b256(b: &[u8]) -> [u8; 32] {
    blake2::Blake2b::<blake2::digest::consts::U32>::digest(b).into()
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ------------------------------------------------------------ the .fl, read independently

/// One inode row of a `.fl`, with its path.
#[derive(Debug, Clone)]
struct FlRow {
    path: Vec<u8>,
    size: i64,
    uid: i64,
    gid: i64,
    mode: i64,
    rdev: i64,
    mtime: i64,
    target: Option<Vec<u8>>,
}

fn text_or_blob(v: rusqlite::types::ValueRef<'_>) -> Vec<u8> {
    match v {
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
        other => panic!("not text: {other:?}"),
    }
}

/// Every inode of a `.fl` by path (root = empty path).
fn fl_rows(fl: &Path) -> BTreeMap<Vec<u8>, FlRow> {
    let c = Connection::open(fl).unwrap();
    let mut extra = HashMap::new();
    let mut st = c.prepare("SELECT ino, data FROM extra").unwrap();
    let mut q = st.query([]).unwrap();
    while let Some(r) = q.next().unwrap() {
        extra.insert(
            r.get::<_, i64>(0).unwrap(),
            text_or_blob(r.get_ref(1).unwrap()),
        );
    }
    let mut st = c
        .prepare("SELECT ino, parent, name, size, uid, gid, mode, rdev, mtime FROM inode")
        .unwrap();
    let mut q = st.query([]).unwrap();
    let mut raw = HashMap::new();
    while let Some(r) = q.next().unwrap() {
        let g = |k| r.get::<_, i64>(k).unwrap();
        raw.insert(
            g(0),
            (
                g(1),
                text_or_blob(r.get_ref(2).unwrap()),
                [g(3), g(4), g(5), g(6), g(7), g(8)],
            ),
        );
    }
    let mut out = BTreeMap::new();
    for (ino, (parent, _, v)) in &raw {
        let mut parts = Vec::new();
        let mut p = *parent;
        let mut cur = *ino;
        while p != 0 {
            parts.push(raw[&cur].1.clone());
            cur = p;
            p = raw[&p].0;
        }
        parts.reverse();
        out.insert(
            parts.join(&b'/'),
            FlRow {
                path: parts.join(&b'/'),
                size: v[0],
                uid: v[1],
                gid: v[2],
                mode: v[3],
                rdev: v[4],
                mtime: v[5],
                target: extra.get(ino).cloned(),
            },
        );
    }
    out
}

/// Check every entry of a mount against the rows of the `.fl`: the same set of paths,
/// mode (file type included), owner, times, sizes, targets, rdev, nlink; returns the
/// content of each regular file by path.
fn check_mount_against_fl(m: &Mount, rows: &BTreeMap<Vec<u8>, FlRow>) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut mounted = vec![Vec::new()];
    let mut k = 0;
    while k < mounted.len() {
        let p = mounted[k].clone();
        k += 1;
        let full = m.p(&p);
        if std::fs::symlink_metadata(&full).unwrap().is_dir() {
            for e in std::fs::read_dir(&full).unwrap() {
                let mut q = p.clone();
                if !q.is_empty() {
                    q.push(b'/');
                }
                q.extend_from_slice(e.unwrap().file_name().as_bytes());
                mounted.push(q);
            }
        }
    }
    mounted.sort();
    let want: Vec<Vec<u8>> = rows.keys().cloned().collect();
    assert_eq!(
        mounted, want,
        "the mount lists exactly the entries of the .fl"
    );
    let mut contents = HashMap::new();
    for (path, r) in rows {
        let what = String::from_utf8_lossy(path);
        let md = std::fs::symlink_metadata(m.p(path)).unwrap();
        assert_eq!(md.mode() as i64, r.mode, "{what}: mode");
        assert_eq!(md.uid() as i64, r.uid, "{what}: uid");
        assert_eq!(md.gid() as i64, r.gid, "{what}: gid");
        assert_eq!(md.mtime(), r.mtime, "{what}: mtime");
        let ft = md.file_type();
        if ft.is_dir() {
            let subdirs = rows
                .keys()
                .filter(|q| {
                    q.len() > path.len()
                        && q.starts_with(path)
                        && (path.is_empty() || q[path.len()] == b'/')
                        && !q[path.len() + usize::from(!path.is_empty())..].contains(&b'/')
                        && rows[*q].mode as u32 & 0o170000 == 0o040000
                })
                .count();
            assert_eq!(md.nlink(), 2 + subdirs as u64, "{what}: nlink");
        } else {
            assert_eq!(md.nlink(), 1, "{what}: nlink");
            assert_eq!(md.size() as i64, r.size, "{what}: size");
        }
        if ft.is_block_device() || ft.is_char_device() {
            assert_eq!(md.rdev() as i64, r.rdev, "{what}: rdev");
        }
        if ft.is_symlink() {
            let t = std::fs::read_link(m.p(path)).unwrap();
            assert_eq!(Some(t.as_os_str().as_bytes().to_vec()), r.target, "{what}");
        }
        if ft.is_file() {
            let d = std::fs::read(m.p(path)).unwrap();
            assert_eq!(d.len() as i64, r.size, "{what}: content length");
            contents.insert(r.path.clone(), d);
        }
    }
    contents
}

// ------------------------------------------------------------ the real fixture

#[test]
fn fixture_is_read_without_a_mount() {
    let fl = fixture().join("tree.fl");
    let out = ok(flist!("ls", "-R", fl));
    assert!(out.contains("prw-r--r--") && out.contains("fifo"), "{out}");
    assert!(out.contains(" 1234  5678 "), "gid is not the uid: {out}");
    assert!(out.contains("link-abs -> /etc/hostname"), "{out}");
    let store = dir_url(&fixture().join("store"));
    let a = flist!("cat", "--store", store, fl, "dir/a.bin");
    assert!(a.status.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("tree.manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        sha256(&a.stdout),
        manifest["paths_hex"][hexs(b"dir/a.bin")]["sha256"]
            .as_str()
            .unwrap()
    );
    let v = ok(flist!("verify", "--store", store, fl));
    assert!(v.contains("8 blocks verified"), "{v}");
    let i = ok(flist!("inspect", fl));
    assert!(i.contains("rfs .fl"), "{i}");
    // Commands that write our format refuse it clearly.
    let t = common::tmp();
    let copy = t.path().join("t.fl");
    std::fs::copy(&fl, &copy).unwrap();
    fails(flist!("embed-prefetch", copy), "rfs .fl");
}

#[test]
fn fixture_mounts_and_every_entry_matches_the_fl_and_the_manifest() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let fl = fixture().join("tree.fl");
    let store = dir_url(&fixture().join("store"));
    let m = Mount::start(
        &fl,
        &d.j("mnt"),
        &d.j("cache"),
        &[OsStr::new("--store"), OsStr::new(&store)],
    );
    let rows = fl_rows(&fl);
    let contents = check_mount_against_fl(&m, &rows);

    // Against the manifest of the source tree, where rfs kept it.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("tree.manifest.json")).unwrap())
            .unwrap();
    let entries = manifest["paths_hex"].as_object().unwrap();
    assert_eq!(entries.len(), rows.len() - 1);
    for (h, e) in entries {
        let src: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|k| u8::from_str_radix(&h[k..k + 2], 16).unwrap())
            .collect();
        // rfs stored the name byte 0xff as U+FFFD: the mount serves what the .fl holds.
        let path = String::from_utf8_lossy(&src).as_bytes().to_vec();
        let what = String::from_utf8_lossy(&src).to_string();
        let md = std::fs::symlink_metadata(m.p(&path)).unwrap_or_else(|e| panic!("{what}: {e}"));
        let mode =
            u32::from_str_radix(e["mode"].as_str().unwrap().trim_start_matches("0o"), 8).unwrap();
        assert_eq!(md.mode(), mode, "{what}: mode");
        assert_eq!(md.uid() as u64, e["uid"].as_u64().unwrap(), "{what}: uid");
        assert_eq!(md.gid() as u64, e["gid"].as_u64().unwrap(), "{what}: gid");
        assert_eq!(md.mtime(), e["mtime"].as_i64().unwrap(), "{what}: mtime");
        if let Some(s) = e.get("sha256") {
            assert_eq!(
                sha256(&contents[&path]),
                s.as_str().unwrap(),
                "{what}: content"
            );
        }
        if let Some(t) = e.get("target") {
            let l = std::fs::read_link(m.p(&path)).unwrap();
            assert_eq!(l.as_os_str().as_bytes(), t.as_str().unwrap().as_bytes());
        }
    }
    // What rfs gets wrong, right here.
    let md = std::fs::symlink_metadata(m.p(b"owned")).unwrap();
    assert_eq!((md.uid(), md.gid(), md.nlink()), (1234, 5678, 1));
    assert!(
        std::fs::symlink_metadata(m.p(b"fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(errno_of(std::fs::metadata(m.p(b"nope"))), libc_enoent());
    assert_eq!(
        errno_of(std::fs::File::create(m.p(b"new"))),
        rustix::io::Errno::ROFS.raw_os_error()
    );
    assert_eq!(
        errno_of(std::fs::read_link(m.p(b"hello.txt"))),
        rustix::io::Errno::INVAL.raw_os_error()
    );
    assert_eq!(
        errno_of(std::fs::read_dir(m.p(b"hello.txt/x"))),
        rustix::io::Errno::NOTDIR.raw_os_error()
    );
    // Both copies of the hard link rfs stored as files read the same.
    assert_eq!(
        contents[&b"hardlink".to_vec()],
        contents[&b"hello.txt".to_vec()]
    );
}

fn libc_enoent() -> i32 {
    rustix::io::Errno::NOENT.raw_os_error()
}

#[test]
fn fixture_converts_to_our_format_with_the_same_tree() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let fl = fixture().join("tree.fl");
    let from = dir_url(&fixture().join("store"));
    let out = d.j("tree.flist");
    let id = ok(flist!(
        "convert",
        "--from-store",
        from,
        "--store",
        dir_url(&d.j("store")),
        "--output",
        out.clone(),
        fl
    ));
    // Again: same identity, no new block files.
    let count = || walkdir_count(&d.j("store"));
    let n = count();
    // The three 512 KiB blocks of the large file re-encoded as ours; the small files (five
    // other distinct rfs blocks) packed together in one block.
    assert_eq!(n, 3 + 1, "large blocks one for one, small files packed");
    let id2 = ok(flist!(
        "convert",
        "--from-store",
        from,
        "--store",
        dir_url(&d.j("store")),
        "--output",
        d.j("again.flist"),
        fl
    ));
    assert_eq!(id.trim(), id2.trim());
    assert_eq!(count(), n);
    ok(flist!("verify", out));

    // Unpacked: the same tree as unpacking the .fl itself.
    ok(flist!("unpack", "--store", from, fl, d.j("a")));
    ok(flist!("unpack", out, d.j("b")));
    common::assert_same(&common::snapshot(&d.j("a")), &common::snapshot(&d.j("b")));

    // Mounted: the same entries as the .fl holds.
    let m = Mount::start(&out, &d.j("mnt"), &d.j("cache"), &[]);
    check_mount_against_fl(&m, &fl_rows(&fl));
    common::assert_same(&common::snapshot(&d.j("a")), &common::snapshot(&m.mp));
}

fn walkdir_count(p: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            n += walkdir_count(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

// ------------------------------------------------------------ .fl files built here

const SCHEMA: &str = "
CREATE TABLE inode (ino INTEGER PRIMARY KEY AUTOINCREMENT, parent INTEGER, name VARCHAR(255),
  size INTEGER, uid INTEGER, gid INTEGER, mode INTEGER, rdev INTEGER, ctime INTEGER, mtime INTEGER);
CREATE TABLE extra (ino INTEGER PRIMARY KEY, data VARCHAR(4096));
CREATE TABLE block (ino INTEGER, id VARCHAR(32), key VARCHAR(32));
CREATE TABLE tag (key VARCHAR(10) PRIMARY KEY, value VARCHAR(255));
CREATE TABLE route (start integer, end integer, url VARCHAR(2048));
CREATE INDEX parents ON inode (parent);
CREATE INDEX names ON inode (name);
CREATE INDEX block_ino ON block (ino);
";

/// An rfs block: key = BLAKE2b(plain), AES-256-GCM(key, nonce key[..12], snappy(plain)),
/// id = BLAKE2b(ciphertext). `key_override` encrypts under another key (a lying key).
fn rfs_block(plain: &[u8], key_override: Option<[u8; 32]>) -> ([u8; 32], [u8; 32], Vec<u8>) {
    let key = key_override.unwrap_or_else(|| blake2b256(plain));
    let z = snap::raw::Encoder::new().compress_vec(plain).unwrap();
    let c = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
    let ct = c
        .encrypt(aes_gcm::Nonce::from_slice(&key[..12]), z.as_slice())
        .unwrap();
    (blake2b256(&ct), key, ct)
}

fn put_block(store: &Path, id: &[u8; 32], data: &[u8]) -> PathBuf {
    let h = hexs(id);
    let dir = store.join(&h[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(h);
    std::fs::write(&p, data).unwrap();
    p
}

/// Write `tree` as an rfs `.fl` (as rfs does: hard links as separate files, mtime in
/// seconds, no xattrs), its blocks into `stores` by route.
fn build_fl(src: &Path, fl: &Path, routes: &[(u8, u8, PathBuf)]) {
    let c = Connection::open(fl).unwrap();
    c.execute_batch(SCHEMA).unwrap();
    c.execute("INSERT INTO tag (key, value) VALUES ('version', '1')", [])
        .unwrap();
    for (lo, hi, p) in routes {
        c.execute(
            "INSERT INTO route (start, end, url) VALUES (?1, ?2, ?3)",
            rusqlite::params![*lo as i64, *hi as i64, dir_url(p)],
        )
        .unwrap();
    }
    let insert = |parent: i64, name: &[u8], p: &Path| -> i64 {
        let md = std::fs::symlink_metadata(p).unwrap();
        let name = match std::str::from_utf8(name) {
            Ok(s) => Value::Text(s.to_string()),
            Err(_) => Value::Blob(name.to_vec()),
        };
        c.execute(
            "INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                parent,
                name,
                md.size() as i64,
                md.uid() as i64,
                md.gid() as i64,
                md.mode() as i64,
                md.rdev() as i64,
                md.ctime(),
                md.mtime()
            ],
        )
        .unwrap();
        let ino = c.last_insert_rowid();
        let ft = md.file_type();
        if ft.is_symlink() {
            let t = std::fs::read_link(p).unwrap();
            c.execute(
                "INSERT INTO extra (ino, data) VALUES (?1, ?2)",
                rusqlite::params![ino, t.as_os_str().as_bytes()],
            )
            .unwrap();
        } else if ft.is_file() {
            let data = std::fs::read(p).unwrap();
            for chunk in data.chunks(512 * 1024) {
                let (id, key, ct) = rfs_block(chunk, None);
                for (lo, hi, s) in routes {
                    if *lo <= id[0] && id[0] <= *hi {
                        put_block(s, &id, &ct);
                    }
                }
                c.execute(
                    "INSERT INTO block (ino, id, key) VALUES (?1, ?2, ?3)",
                    rusqlite::params![ino, &id[..], &key[..]],
                )
                .unwrap();
            }
        }
        ino
    };
    let root = insert(0, b"/", src);
    let mut queue = vec![(root, src.to_path_buf())];
    while let Some((ino, dir)) = queue.pop() {
        let mut es: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        es.sort_by_key(|e| e.file_name());
        for e in es {
            let child = insert(ino, e.file_name().as_bytes(), &e.path());
            if e.file_type().unwrap().is_dir() {
                queue.push((child, e.path()));
            }
        }
    }
}

/// What an rfs `.fl` keeps of a tree: no xattrs, mtime in seconds, hard links as files.
fn rfs_view(mut s: BTreeMap<Vec<u8>, Desc>) -> BTreeMap<Vec<u8>, Desc> {
    for d in s.values_mut() {
        d.mtime.1 = 0;
        d.xattrs.clear();
        d.link_group = None;
        if d.kind != 'd' {
            d.nlink = 1;
        }
    }
    s
}

#[test]
fn built_fl_with_every_file_type_mounts_like_its_source_and_converts() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir(&src).unwrap();
    common::make_tree(&src);
    std::fs::write(src.join("exact"), common::noise(1024 * 1024, 9)).unwrap();
    let fl = d.j("t.fl");
    // Two routes on the first byte of the id, each to its own store.
    build_fl(
        &src,
        &fl,
        &[(0x00, 0x7f, d.j("lo")), (0x80, 0xff, d.j("hi"))],
    );
    let want = rfs_view(common::snapshot(&src));
    {
        let m = Mount::start(&fl, &d.j("mnt"), &d.j("cache"), &[]);
        common::assert_same(&want, &rfs_view(common::snapshot(&m.mp)));
        check_mount_against_fl(&m, &fl_rows(&fl));
        // A non-UTF-8 name is served as the bytes the .fl holds.
        assert!(
            std::fs::symlink_metadata(m.p(b"caf\xe9")).is_ok(),
            "latin-1 name"
        );
    }
    // Converted: mounts and unpacks to the same tree.
    let out = d.j("t.flist");
    ok(flist!(
        "convert",
        "--store",
        dir_url(&d.j("ours")),
        "--output",
        out,
        fl
    ));
    let m = Mount::start(&out, &d.j("mnt2"), &d.j("cache2"), &[]);
    common::assert_same(&want, &rfs_view(common::snapshot(&m.mp)));
    ok(flist!("unpack", out, d.j("unpacked")));
    common::assert_same(&want, &rfs_view(common::snapshot(&d.j("unpacked"))));
}

#[test]
fn corrupt_block_or_lying_key_gives_eio() {
    let Some(_g) = setup() else { return };
    let d = RunDir::new(PREFIX);
    let src = d.j("src");
    std::fs::create_dir(&src).unwrap();
    let big = common::noise(3 * 512 * 1024 + 100, 5);
    std::fs::write(src.join("big"), &big).unwrap();
    std::fs::write(src.join("small"), b"small file").unwrap();
    let fl = d.j("t.fl");
    let store = d.j("store");
    build_fl(&src, &fl, &[(0, 255, store.clone())]);
    // Flip a byte of the second block of "big".
    let c = Connection::open(&fl).unwrap();
    let ino: i64 = c
        .query_row("SELECT ino FROM inode WHERE name = 'big'", [], |r| r.get(0))
        .unwrap();
    let id: Vec<u8> = c
        .query_row(
            "SELECT id FROM block WHERE ino = ?1 ORDER BY rowid LIMIT 1 OFFSET 1",
            [ino],
            |r| r.get(0),
        )
        .unwrap();
    let p = store.join(&hexs(&id)[..2]).join(hexs(&id));
    let mut b = std::fs::read(&p).unwrap();
    b[10] ^= 0x40;
    std::fs::write(&p, b).unwrap();
    // "small": a block whose id matches its bytes but whose key is not BLAKE2b(plain).
    let (lid, lkey, lct) = rfs_block(b"small file", Some([0x42; 32]));
    put_block(&store, &lid, &lct);
    c.execute(
        "UPDATE block SET id = ?1, key = ?2 WHERE ino = (SELECT ino FROM inode WHERE name = 'small')",
        rusqlite::params![&lid[..], &lkey[..]],
    )
    .unwrap();
    drop(c);

    let m = Mount::start(&fl, &d.j("mnt"), &d.j("cache"), &[]);
    let f = std::fs::File::open(m.p(b"big")).unwrap();
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 4096];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(buf, big[..4096]);
    assert_eq!(f.read_at(&mut buf, 3 * 512 * 1024).unwrap(), 100);
    assert_eq!(buf[..100], big[3 * 512 * 1024..]);
    assert_eq!(
        errno_of(f.read_exact_at(&mut buf, 512 * 1024 + 10)),
        rustix::io::Errno::IO.raw_os_error()
    );
    assert_eq!(
        errno_of(std::fs::read(m.p(b"small"))),
        rustix::io::Errno::IO.raw_os_error()
    );
    let log = m.log_text();
    assert!(log.contains("rejected"), "{log}");
}

// ------------------------------------------------------------ malformed .fl files

/// Run `flist mount` on a file that must be refused before anything is mounted.
fn mount_fails(fl: &Path, mp: &Path, needle: &str) {
    std::fs::create_dir_all(mp).unwrap();
    let mut child = Command::new(common::flist())
        .arg("mount")
        .arg("--cache")
        .arg(mp.with_extension("cache"))
        .arg(fl)
        .arg(mp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = fuse::wait_exit(&mut child, mp, || {
        "mount of a malformed .fl did not fail".into()
    });
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!st.success(), "mount succeeded");
    assert!(err.contains(needle), "{err:?} does not mention {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn malformed_fl_gives_a_clear_error_from_every_command() {
    let t = common::tmp();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), common::noise(600_000, 3)).unwrap();
    std::fs::write(src.join("g"), b"g").unwrap();
    std::os::unix::fs::symlink("g", src.join("l")).unwrap();
    let good = t.path().join("good.fl");
    build_fl(&src, &good, &[(0, 255, t.path().join("store"))]);
    ok(flist!("ls", "-R", good));

    let cases: &[(&str, &str, &str)] = &[
        ("no-route", "DROP TABLE route", "missing table \"route\""),
        ("no-block", "DROP TABLE block", "missing table \"block\""),
        ("no-inode", "DROP TABLE inode", "missing table \"inode\""),
        (
            "bad-route-range",
            "UPDATE route SET \"end\" = 300",
            "range must be 0..=255",
        ),
        (
            "bad-route-url",
            "UPDATE route SET url = 'ftp://somewhere'",
            "not a dir://, zdb:// or http(s):// store URL",
        ),
        (
            "bad-route-order",
            "UPDATE route SET start = 200, \"end\" = 100",
            "start <= end",
        ),
        (
            "block-rows-extra",
            "INSERT INTO block (ino, id, key) SELECT ino, id, key FROM block WHERE rowid = 1",
            "block rows",
        ),
        (
            "block-rows-missing",
            "DELETE FROM block WHERE rowid = (SELECT max(rowid) FROM block)",
            "block rows",
        ),
        (
            "block-for-dir",
            "UPDATE block SET ino = 1 WHERE rowid = 1",
            "not a regular file",
        ),
        (
            "block-for-nothing",
            "UPDATE block SET ino = 999 WHERE rowid = 1",
            "does not exist",
        ),
        (
            "bad-block-id",
            "UPDATE block SET id = x'0102'",
            "32-byte hash",
        ),
        (
            "absurd-size",
            "UPDATE inode SET size = 1152921504606846976 WHERE name = 'g'",
            "block rows",
        ),
        (
            "negative-uid",
            "UPDATE inode SET uid = -1 WHERE name = 'g'",
            "uid",
        ),
        (
            "no-column",
            "ALTER TABLE inode DROP COLUMN rdev",
            "table inode",
        ),
        (
            "orphan",
            "UPDATE inode SET parent = 77 WHERE name = 'g'",
            "parent 77 does not exist",
        ),
        (
            "cycle",
            "UPDATE inode SET parent = (SELECT ino FROM inode WHERE name = 'd') WHERE name = 'd'",
            "not reachable",
        ),
        (
            "no-root",
            "UPDATE inode SET parent = 5 WHERE parent = 0",
            "root",
        ),
        (
            "bad-name",
            "UPDATE inode SET name = '..' WHERE name = 'g'",
            "invalid name",
        ),
        (
            "duplicate-name",
            "UPDATE inode SET name = 'd' WHERE name = 'g'",
            "two entries named",
        ),
        ("symlink-no-target", "DELETE FROM extra", "no target"),
        (
            "bad-mode",
            "UPDATE inode SET mode = 0 WHERE name = 'g'",
            "invalid mode",
        ),
    ];
    for (name, sql, needle) in cases {
        let bad = t.path().join(format!("{name}.fl"));
        std::fs::copy(&good, &bad).unwrap();
        Connection::open(&bad).unwrap().execute_batch(sql).unwrap();
        let e = fails(flist!("ls", bad), needle);
        assert!(e.contains(&*bad.to_string_lossy()), "names the file: {e}");
        assert!(!e.contains("panicked"), "{e}");
        fails(
            flist!(
                "convert",
                "--store",
                dir_url(&t.path().join("out")),
                "--output",
                t.path().join("out.flist"),
                bad
            ),
            needle,
        );
        fails(flist!("unpack", bad, t.path().join("u")), needle);
        mount_fails(&bad, &t.path().join("mnt"), needle);
    }
    // Not an SQLite database beyond its header; an empty SQLite database.
    let junk = t.path().join("junk.fl");
    let mut b = b"SQLite format 3\0".to_vec();
    b.extend_from_slice(&[0xee; 200]);
    std::fs::write(&junk, b).unwrap();
    fails(flist!("ls", junk), "junk.fl");
    let empty = t.path().join("empty.fl");
    Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE x (y); DROP TABLE x; VACUUM;")
        .unwrap();
    if std::fs::metadata(&empty).unwrap().len() > 0 {
        fails(flist!("ls", empty), "missing table");
    }
    assert!(!t.path().join("out.flist").exists());
}
