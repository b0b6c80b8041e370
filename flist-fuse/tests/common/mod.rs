//! Shared helpers of the integration tests.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each uses a part"
)]
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps};

pub mod fuse;

pub fn flist() -> &'static str {
    env!("CARGO_BIN_EXE_flist")
}

/// Run the CLI.
pub fn run(args: &[&OsStr]) -> Output {
    Command::new(flist())
        .args(args)
        .output()
        .expect("run flist")
}

/// Run the CLI with `stdin` as its standard input.
pub fn run_stdin(args: &[&OsStr], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut c = Command::new(flist())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run flist");
    if let Some(mut i) = c.stdin.take() {
        let _ = i.write_all(stdin);
    }
    c.wait_with_output().expect("wait for flist")
}

#[macro_export]
macro_rules! flist {
    ($($a:expr),* $(,)?) => {
        common::run(&[$(std::ffi::OsStr::new(&$a)),*])
    };
}

/// Assert success and return stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "flist failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Assert failure whose message contains `needle`; returns stderr.
pub fn fails(o: Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert!(
        err.contains(needle),
        "error {err:?} does not mention {needle:?}"
    );
    err
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when the test must be skipped for lack of root (never under CI=true).
pub fn skip_without_root() -> bool {
    nodeutil::skip::unless(is_root(), "root")
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn set_time(p: &Path, sec: i64, nsec: i64) {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    rustix::fs::utimensat(
        CWD,
        p,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

fn chmod(p: &Path, m: u32) {
    rustix::fs::chmodat(CWD, p, Mode::from_raw_mode(m), AtFlags::empty()).expect("chmod");
}

fn lchown(p: &Path, u: u32, g: u32) {
    rustix::fs::chownat(
        CWD,
        p,
        Some(rustix::process::Uid::from_raw(u)),
        Some(rustix::process::Gid::from_raw(g)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("lchown");
}

/// Pseudo-random bytes (deterministic).
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Build a tree with every file type (needs root for devices, chown and trusted xattrs).
pub fn make_tree(root: &Path) {
    let j = |s: &str| root.join(s);
    std::fs::create_dir_all(j("etc/sub")).unwrap();
    std::fs::create_dir_all(j("tmp")).unwrap();
    std::fs::create_dir_all(j("owned")).unwrap();
    std::fs::write(j("etc/hello"), b"hello world\n").unwrap();
    std::fs::write(j("empty"), b"").unwrap();
    std::fs::write(j("big"), noise(3_500_000, 1)).unwrap();
    std::fs::write(j("zeros"), vec![0u8; 2_200_000]).unwrap();
    std::fs::write(j("suid"), b"#!/bin/sh\n").unwrap();
    std::fs::write(j("sgid"), b"x").unwrap();
    chmod(&j("suid"), 0o4755);
    chmod(&j("sgid"), 0o2711);
    chmod(&j("tmp"), 0o1777);
    std::fs::write(j("owned/file"), b"mine").unwrap();
    lchown(&j("owned/file"), 1234, 5678);
    lchown(&j("owned"), 42, 43);
    std::os::unix::fs::symlink("../etc/hello", j("etc/sub/rel")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", j("abs")).unwrap();
    std::os::unix::fs::symlink("etc", j("owned/link")).unwrap();
    lchown(&j("owned/link"), 7, 8);
    std::fs::write(j("etc/hard"), b"linked content").unwrap();
    std::fs::hard_link(j("etc/hard"), j("etc/sub/hard2")).unwrap();
    std::fs::hard_link(j("etc/hard"), j("hard3")).unwrap();
    rustix::fs::mknodat(
        CWD,
        j("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    rustix::fs::mknodat(
        CWD,
        j("loop0"),
        FileType::BlockDevice,
        Mode::from_raw_mode(0o660),
        rustix::fs::makedev(7, 0),
    )
    .unwrap();
    rustix::fs::mknodat(
        CWD,
        j("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(j("sock")).unwrap());
    let weird = root.join(OsStr::from_bytes(b"caf\xe9"));
    std::fs::write(&weird, b"latin1 name").unwrap();
    let wdir = root.join(OsStr::from_bytes(b"\xff\xfedir"));
    std::fs::create_dir(&wdir).unwrap();
    std::fs::write(wdir.join(OsStr::from_bytes(b"n\x01\x7f")), b"x").unwrap();
    rustix::fs::lsetxattr(
        j("etc/hello"),
        "user.color",
        b"blue",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::lsetxattr(
        j("etc"),
        "user.dir",
        b"\x00\xffbin",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::lsetxattr(
        j("abs"),
        "trusted.t",
        b"sym",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // Distinct nanosecond times, children before their folders.
    let mut all = Vec::new();
    collect(root, &mut all);
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (k, p) in all.iter().enumerate() {
        set_time(p, 1_600_000_000 + k as i64 * 1000, 123_456_789 - k as i64);
    }
    set_time(root, 1_500_000_000, 987_654_321);
}

fn collect(d: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            collect(&p, out);
        }
    }
}

/// Everything observable about an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    pub size: u64,
    pub content: Option<[u8; 32]>,
    pub target: Option<Vec<u8>>,
    pub rdev: u64,
    pub nlink: u64,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// For hard links: the first path naming the same inode.
    pub link_group: Option<Vec<u8>>,
}

/// Snapshot a tree: relative path -> description. Root is the empty path.
pub fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Desc> {
    let mut out = BTreeMap::new();
    let mut groups = HashMap::new();
    let mut all = vec![root.to_path_buf()];
    collect(root, &mut all);
    all.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    for p in all {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_file() {
            'f'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else {
            's'
        };
        let link_group = (!ft.is_dir() && md.nlink() > 1).then(|| {
            groups
                .entry((md.dev(), md.ino()))
                .or_insert_with(|| rel.clone())
                .clone()
        });
        let xattrs = flist_fuse::pack::dirsrc::read_xattrs(&p).unwrap();
        out.insert(
            rel,
            Desc {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: (md.mtime(), md.mtime_nsec()),
                size: if ft.is_dir() { 0 } else { md.size() },
                content: ft
                    .is_file()
                    .then(|| *blake3::hash(&std::fs::read(&p).unwrap()).as_bytes()),
                target: ft.is_symlink().then(|| {
                    std::fs::read_link(&p)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec()
                }),
                rdev: md.rdev(),
                nlink: if ft.is_dir() { 0 } else { md.nlink() },
                xattrs,
                link_group,
            },
        );
    }
    out
}

/// Compare two snapshots with a readable message.
pub fn assert_same(a: &BTreeMap<Vec<u8>, Desc>, b: &BTreeMap<Vec<u8>, Desc>) {
    let ka: Vec<_> = a
        .keys()
        .map(|k| String::from_utf8_lossy(k).to_string())
        .collect();
    let kb: Vec<_> = b
        .keys()
        .map(|k| String::from_utf8_lossy(k).to_string())
        .collect();
    assert_eq!(ka, kb, "entry lists differ");
    for (k, da) in a {
        assert_eq!(
            Some(da),
            b.get(k),
            "entry {:?} differs",
            String::from_utf8_lossy(k)
        );
    }
}

/// The identity printed by `flist pack`.
pub fn pack(src: &Path, store: &str, out: &Path) -> String {
    pack_with(src, store, out, &[])
}

/// [`pack`] without packing small files together: one block (or more) per file, as the
/// version-1 layout had it, for tests that count blocks per file.
pub fn pack_unpacked(src: &Path, store: &str, out: &Path) -> String {
    pack_with(src, store, out, &["--small-files", "0"])
}

fn pack_with(src: &Path, store: &str, out: &Path, extra: &[&str]) -> String {
    let mut args: Vec<&OsStr> = vec![OsStr::new("pack"), OsStr::new("--quiet")];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        OsStr::new("--store"),
        OsStr::new(store),
        OsStr::new("--output"),
        out.as_os_str(),
        src.as_os_str(),
    ]);
    ok(run(&args)).trim().to_string()
}

/// A small image: `d/f` (2.5 MB of noise) and `g`, packed into `T/store` as `T/i.fl`;
/// returns (source, store, flist).
pub fn small_image(t: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let src = t.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), noise(2_500_000, 9)).unwrap();
    std::fs::write(src.join("g"), b"small").unwrap();
    let sp = t.join("store");
    let fl = t.join("i.fl");
    pack(&src, &format!("dir://{}", sp.display()), &fl);
    (src, sp, fl)
}

/// Every block file of a dir store, sorted.
pub fn block_files(store: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for s in std::fs::read_dir(store).unwrap() {
        for f in std::fs::read_dir(s.unwrap().path()).unwrap() {
            v.push(f.unwrap().path());
        }
    }
    v.sort();
    v
}

/// The format-version-1 fixture (tests/fixtures/flist-v1).
pub fn v1_fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/flist-v1"
    ))
}

/// Check a tree (unpacked or mounted) against the version-1 fixture's manifest.
pub fn matches_v1_manifest(root: &Path) {
    let m: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(v1_fixture().join("tree-v1.manifest.json")).unwrap())
            .unwrap();
    for (rel, want) in &m {
        let p = root.join(rel);
        if let Some(t) = want.get("symlink") {
            assert_eq!(
                std::fs::read_link(&p).unwrap().to_string_lossy(),
                t.as_str().unwrap()
            );
            continue;
        }
        let b = std::fs::read(&p).unwrap();
        let h = nodeutil::hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b));
        assert_eq!(Some(h.as_str()), want["sha256"].as_str(), "{rel}");
    }
}
