//! Round trips, determinism, signatures, corruption and stores (dir, http, routes).
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::path::Path;

use common::{block_files, fails, ok, pack, small_image, snapshot};

fn dir_url(p: &Path) -> String {
    format!("dir://{}", p.display())
}

#[test]
fn every_file_type_round_trips_and_is_deterministic() {
    if common::skip_without_root() {
        return;
    }
    let t = common::tmp();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    common::make_tree(&src);
    let store = dir_url(&t.path().join("store"));
    let fl = t.path().join("a.fl");
    let id1 = pack(&src, &store, &fl);
    assert_eq!(id1.len(), 64);
    let id2 = pack(&src, &store, &t.path().join("b.fl"));
    assert_eq!(id1, id2, "same tree twice, same identity");

    let out = t.path().join("out");
    ok(flist!("unpack", fl, out));
    common::assert_same(&snapshot(&src), &snapshot(&out));
    // Packing the unpacked tree gives the same image.
    assert_eq!(pack(&out, &store, &t.path().join("c.fl")), id1);

    let ls = ok(flist!("ls", fl, "etc/sub"));
    assert!(ls.contains("rel -> ../etc/hello"), "{ls}");
    assert!(ls.contains("hard2"));
    let st = ok(flist!("stat", fl, "suid"));
    assert!(st.contains("mode: 104755"), "{st}");
    let st = ok(flist!("stat", fl, "owned/file"));
    assert!(st.contains("uid: 1234") && st.contains("gid: 5678") && st.contains("nlink: 1"));
    assert!(ok(flist!("stat", fl, "etc/hard")).contains("nlink: 3"));
    assert_eq!(ok(flist!("cat", fl, "etc/hello")), "hello world\n");
    let ins = ok(flist!("inspect", fl));
    assert!(ins.contains(&id1) && ins.contains("dedup ratio"), "{ins}");
    ok(flist!("verify", fl));
    // An existing, non-empty destination is refused and left alone.
    fails(flist!("unpack", fl, src), "not an empty folder");
}

#[test]
fn encrypted_blocks_round_trip_and_hide_plaintext() {
    let t = common::tmp();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let secret = b"TOP-SECRET-PLAINTEXT ".repeat(5000);
    std::fs::write(src.join("a"), &secret).unwrap();
    std::fs::write(src.join("b"), &secret).unwrap();
    let sp = t.path().join("store");
    let fl = t.path().join("e.fl");
    ok(flist!(
        "pack",
        "--quiet",
        "--encrypt",
        "--store",
        dir_url(&sp),
        "-o",
        fl,
        src
    ));
    let mut n = 0;
    for shard in std::fs::read_dir(&sp).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let b = std::fs::read(f.unwrap().path()).unwrap();
            assert!(!b.windows(10).any(|w| w == b"TOP-SECRET"));
            n += 1;
        }
    }
    assert_eq!(n, 1, "identical content dedups under encryption");
    assert_eq!(ok(flist!("cat", fl, "a")).as_bytes(), &secret[..]);
    ok(flist!("verify", fl));
}

#[test]
fn sign_and_verify() {
    let t = common::tmp();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    let fl = t.path().join("s.fl");
    let id = pack(&src, &dir_url(&t.path().join("store")), &fl);
    let key = t.path().join("key");
    let pk = ok(flist!("keygen", "-o", key)).trim().to_string();
    let out = ok(flist!("verify", fl));
    assert!(out.contains("unsigned"));
    fails(flist!("verify", "--pubkey", pk, fl), "not signed by");
    ok(flist!("sign", "--key", key, fl));
    let out = ok(flist!("verify", "--pubkey", pk, fl));
    assert!(out.contains(&pk) && out.contains(&id), "{out}");
    // The identity does not change when signing.
    assert!(ok(flist!("inspect", fl)).contains(&id));
    // Forge: flip a signature byte (and fix the trailer checksum so only the signature is wrong).
    let mut fl2 = flist_fuse::format::read_file(&fl).unwrap();
    fl2.trailer.signatures[0].signature[5] ^= 0x40;
    let forged = t.path().join("forged.fl");
    std::fs::write(&forged, fl2.to_bytes()).unwrap();
    fails(flist!("verify", forged), "forged.fl: signature");
    // Another key's signature cannot stand in.
    let key2 = t.path().join("key2");
    ok(flist!("keygen", "-o", key2));
    let mut fl3 = flist_fuse::format::read_file(&fl).unwrap();
    let k2 = flist_fuse::sign::read_key(&key2).unwrap();
    fl3.trailer.signatures[0].public_key = k2.verifying_key().to_bytes();
    let f3 = t.path().join("swapped.fl");
    std::fs::write(&f3, fl3.to_bytes()).unwrap();
    fails(flist!("verify", f3), "does not verify");
}

#[test]
fn corrupt_truncated_missing_and_tampered_fail_clearly() {
    let t = common::tmp();
    let (_src, sp, fl) = small_image(t.path());
    let bytes = std::fs::read(&fl).unwrap();
    let name = fl.display().to_string();

    let trunc = t.path().join("trunc.fl");
    std::fs::write(&trunc, &bytes[..bytes.len() - 10]).unwrap();
    let bad = t.path().join("bad.fl");
    let mut b = bytes.clone();
    b[100] ^= 0xff;
    std::fs::write(&bad, &b).unwrap();
    let junk = t.path().join("junk.fl");
    std::fs::write(&junk, b"not an flist at all").unwrap();
    for f in [&trunc, &bad, &junk] {
        let n = f.display().to_string();
        for args in [
            vec!["verify"],
            vec!["ls"],
            vec!["inspect"],
            vec!["unpack"],
            vec!["cat"],
        ] {
            let mut a: Vec<std::ffi::OsString> = args.iter().map(|s| s.into()).collect();
            a.push(f.into());
            match args[0] {
                "unpack" => a.push(t.path().join("never").into()),
                "cat" => a.push("g".into()),
                _ => {}
            }
            let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
            fails(common::run(&refs), &n);
        }
        assert!(!t.path().join("never").exists());
    }

    // Tamper with a block: verify, cat and unpack fail, naming the flist and the block.
    let blocks = block_files(&sp);
    let victim = blocks
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let orig = std::fs::read(victim).unwrap();
    let mut tam = orig.clone();
    tam[orig.len() / 2] ^= 1;
    std::fs::write(victim, &tam).unwrap();
    let e = fails(flist!("verify", fl), &name);
    assert!(e.contains("do not match"), "{e}");
    fails(flist!("cat", fl, "d/f"), "do not match");
    let dest = t.path().join("out");
    fails(flist!("unpack", fl, dest), &name);
    assert!(!dest.exists(), "nothing written half");
    assert!(std::fs::read_dir(t.path()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("flist-tmp")
    }));

    // Missing block.
    std::fs::remove_file(victim).unwrap();
    let e = fails(flist!("verify", fl), &name);
    assert!(e.contains("not found"), "{e}");
    fails(flist!("unpack", fl, dest), "not found");
    assert!(!dest.exists());
}

#[test]
fn path_escape_is_rejected_at_pack_and_read() {
    let t = common::tmp();
    // A tar with `..` and one with an absolute path.
    for (name, path) in [("dotdot.tar", "../evil"), ("abs.tar", "/etc/evil")] {
        let tp = t.path().join(name);
        let mut raw = Vec::new();
        {
            let mut h = tar::Header::new_gnu();
            h.set_size(4);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // Write the name bytes directly: the builder itself refuses `..`.
            let nb = &mut h.as_old_mut().name;
            nb[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            raw.extend_from_slice(h.as_bytes());
            let mut data = [0u8; 512];
            data[..4].copy_from_slice(b"evil");
            raw.extend_from_slice(&data);
            raw.extend_from_slice(&[0u8; 1024]);
        }
        std::fs::write(&tp, raw).unwrap();
        let out = t.path().join(format!("{name}.fl"));
        fails(
            flist!(
                "pack",
                "--quiet",
                "--store",
                dir_url(&t.path().join("s")),
                "-o",
                out,
                tp
            ),
            "escapes the root",
        );
        assert!(!out.exists());
    }
    // A crafted flist whose entry is named `..` is refused at read.
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("xx"), b"1").unwrap();
    let fl = t.path().join("x.fl");
    pack(&src, &dir_url(&t.path().join("s")), &fl);
    let f = flist_fuse::format::read_file(&fl).unwrap();
    let mut body = f.body.clone();
    let pos = body.windows(2).rposition(|w| w == b"xx").unwrap();
    body[pos..pos + 2].copy_from_slice(b"..");
    let evil = t.path().join("evil.fl");
    std::fs::write(&evil, flist_fuse::format::encode_file(&body, &f.trailer)).unwrap();
    fails(flist!("ls", evil), "escapes");
    fails(flist!("unpack", evil, t.path().join("o")), "evil.fl");
}

#[test]
fn busybox_root_filesystem_round_trips() {
    let bb = Path::new("/bin/busybox");
    if nodeutil::skip::unless(bb.exists(), "/bin/busybox (busybox-static)") {
        return;
    }
    if common::skip_without_root() {
        return;
    }
    let t = common::tmp();
    let root = t.path().join("rootfs");
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "tmp",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(bb, root.join("bin/busybox")).unwrap();
    let st = std::process::Command::new(root.join("bin/busybox"))
        .arg("--install")
        .arg("-s")
        .arg(root.join("bin"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("dev/console"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(5, 1),
    )
    .unwrap();
    let n = std::fs::read_dir(root.join("bin")).unwrap().count();
    assert!(n > 100, "busybox installed {n} applets");
    let fl = t.path().join("bb.fl");
    pack(&root, &dir_url(&t.path().join("store")), &fl);
    let out = t.path().join("out");
    ok(flist!("unpack", fl, out));
    common::assert_same(&snapshot(&root), &snapshot(&out));
    let o = std::process::Command::new(out.join("bin/busybox"))
        .arg("true")
        .status()
        .unwrap();
    assert!(o.success());
}
