//! The current layout: small files packed together (and read back through every command),
//! format-version-1 flists still read, signed and converted, and `flist verify` reporting
//! every bad block with the files it affects. (Mounts of both layouts are in mount.rs.)
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{block_files, fails, ok, pack, snapshot};
use flist_fuse::format::{self, ImageKind};

fn dir_url(p: &Path) -> String {
    format!("dir://{}", p.display())
}

/// Three folders of small files, two identical small files, a file just at the packing
/// threshold and one just below, a large file, an empty file.
pub fn small_tree(src: &Path) {
    for (i, d) in ["a", "b/c", "b/d"].into_iter().enumerate() {
        std::fs::create_dir_all(src.join(d)).unwrap();
        for k in 0..100u64 {
            let n = 10 + (k as usize * 613) % 20_000;
            let data = common::noise(n, k + 1000 * i as u64);
            std::fs::write(src.join(format!("{d}/f{k:03}")), data).unwrap();
        }
    }
    std::fs::write(src.join("a/same1"), b"the same small bytes").unwrap();
    std::fs::write(src.join("b/same2"), b"the same small bytes").unwrap();
    std::fs::write(src.join("at-threshold"), common::noise(128 << 10, 1)).unwrap();
    std::fs::write(src.join("below"), common::noise((128 << 10) - 1, 2)).unwrap();
    std::fs::write(src.join("large"), common::noise(3_000_000, 3)).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
}

#[test]
fn small_files_share_blocks_and_read_back() {
    let t = common::tmp();
    let src = t.path().join("src");
    small_tree(&src);
    let store = t.path().join("store");
    let fl = t.path().join("p.fl");
    let id = pack(&src, &dir_url(&store), &fl);
    let f = format::read_file(&fl).unwrap();
    assert_eq!(f.kind, ImageKind::Flist { version: 2 });
    assert_eq!(f.params.small_files, 128 << 10);
    let blocks = |p: &str| f.file_blocks(f.lookup(p.as_bytes()).unwrap()).to_vec();
    // 300 small files (about 3 MB) in a few shared blocks, in tree order.
    let small: HashSet<_> = ["a", "b/c", "b/d"]
        .iter()
        .flat_map(|d| (0..100).map(move |k| format!("{d}/f{k:03}")))
        .map(|p| blocks(&p)[0].id)
        .collect();
    assert!(
        small.len() <= 5,
        "{} blocks for 300 small files",
        small.len()
    );
    // Breadth-first: the root's small file first, then a/'s files one after the other.
    let (below, a0, a1) = (blocks("below")[0], blocks("a/f000")[0], blocks("a/f001")[0]);
    assert_eq!((below.off, a0.id, a0.off), (0, below.id, below.len));
    assert_eq!((a1.id, a1.off), (a0.id, a0.off + a0.len));
    // Identical small files share one slice; the threshold is exclusive.
    assert_eq!(blocks("a/same1"), blocks("b/same2"));
    assert_eq!(blocks("below")[0].len, (128 << 10) - 1);
    let at = blocks("at-threshold")[0];
    assert_eq!((at.off, at.len, at.plain_len), (0, 128 << 10, 128 << 10));
    assert_eq!(blocks("large").len(), 3);
    assert!(blocks("empty").is_empty());
    let files = block_files(&store);
    assert!(files.len() <= 5 + 1 + 3, "{} block files", files.len());
    // Every command reads it back; packing again gives the same identity.
    let cat = flist!("cat", fl, "b/c/f050");
    assert!(cat.stdout == std::fs::read(src.join("b/c/f050")).unwrap());
    ok(flist!("unpack", fl, t.path().join("out")));
    common::assert_same(&snapshot(&src), &snapshot(&t.path().join("out")));
    let v = ok(flist!("verify", fl));
    assert!(
        v.contains(&format!("{} blocks verified", files.len())),
        "{v}"
    );
    let ins = ok(flist!("inspect", fl));
    assert!(ins.contains("format: v2"), "{ins}");
    assert!(
        ins.contains(&format!(
            "small files: 303 (below 131072 bytes) packed in {} blocks",
            small.len()
        )),
        "{ins}"
    );
    assert_eq!(pack(&src, &dir_url(&store), &t.path().join("q.fl")), id);
    // --small-files 0: one block per file, as version 1 laid them out.
    let fl0 = t.path().join("none.fl");
    let s0 = t.path().join("store0");
    common::pack_unpacked(&src, &dir_url(&s0), &fl0);
    assert!(block_files(&s0).len() > 300);
}

#[test]
fn version_1_flists_still_read_sign_and_convert() {
    let t = common::tmp();
    let v1 = t.path().join("v1.flist");
    std::fs::copy(common::v1_fixture().join("tree-v1.flist"), &v1).unwrap();
    let from = dir_url(&common::v1_fixture().join("store"));
    assert!(ok(flist!("inspect", v1)).contains("format: v1"));
    ok(flist!("verify", "--store", from, v1));
    ok(flist!("unpack", "--store", from, v1, t.path().join("out1")));
    common::matches_v1_manifest(&t.path().join("out1"));
    // Signing rewrites the trailer only: still version 1, same identity, verifiable.
    let key = t.path().join("key");
    let pk = ok(flist!("keygen", "-o", key)).trim().to_string();
    ok(flist!("sign", "--key", key, v1));
    let f = format::read_file(&v1).unwrap();
    assert_eq!(f.kind, ImageKind::Flist { version: 1 });
    assert!(ok(flist!("verify", "--store", from, "--pubkey", pk, v1)).contains(&pk));

    // Converted: small files packed, the large file's blocks kept (copied to the new store).
    let store = t.path().join("store");
    let v2 = t.path().join("v2.flist");
    let o = common::run(&[
        "convert".as_ref(),
        "--from-store".as_ref(),
        from.as_ref(),
        "--store".as_ref(),
        dir_url(&store).as_ref(),
        "-o".as_ref(),
        v2.as_os_str(),
        v1.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("38 small files packed in 1 blocks, 2 blocks kept"),
        "{err}"
    );
    assert!(err.contains("1 signatures dropped"), "{err}");
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let g = format::read_file(&v2).unwrap();
    assert_eq!(g.kind, ImageKind::Flist { version: 2 });
    assert!(g.trailer.signatures.is_empty());
    assert_eq!(block_files(&store).len(), 1 + 2);
    ok(flist!("verify", v2));
    ok(flist!("unpack", v2, t.path().join("out2")));
    common::matches_v1_manifest(&t.path().join("out2"));
    common::assert_same(
        &snapshot(&t.path().join("out1")),
        &snapshot(&t.path().join("out2")),
    );
    // Deterministic; a current flist is not converted again.
    let again = ok(flist!(
        "convert",
        "--from-store",
        from,
        "--store",
        dir_url(&store),
        "-o",
        t.path().join("again.flist"),
        v1
    ));
    assert_eq!(again.trim(), id);
    fails(
        flist!(
            "convert",
            "--store",
            dir_url(&store),
            "-o",
            t.path().join("x.flist"),
            v2
        ),
        "already in the current layout",
    );
}

#[test]
fn verify_names_every_bad_block_once_with_its_files() {
    let t = common::tmp();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a"), b"only in a").unwrap();
    std::fs::write(src.join("b"), b"in b and c").unwrap();
    std::fs::write(src.join("sub/c"), b"in b and c").unwrap();
    std::fs::write(src.join("sub/d"), common::noise(5000, 4)).unwrap();
    std::fs::write(src.join("sub/e"), b"fine").unwrap();
    let store = t.path().join("store");
    let fl = t.path().join("v.fl");
    common::pack_unpacked(&src, &dir_url(&store), &fl);
    let f = format::read_file(&fl).unwrap();
    let id_of = |p: &str| f.file_blocks(f.lookup(p.as_bytes()).unwrap())[0].id;
    let file_of = |id: [u8; 32]| {
        let h = format::hex(&id);
        store.join(&h[..2]).join(&h)
    };
    std::fs::remove_file(file_of(id_of("a"))).unwrap();
    std::fs::remove_file(file_of(id_of("b"))).unwrap();
    let d = file_of(id_of("sub/d"));
    let mut bytes = std::fs::read(&d).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&d, bytes).unwrap();
    let err = fails(
        flist!("verify", fl),
        "3 of 4 blocks missing, corrupt or unreadable",
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    for (p, files, why) in [
        ("a", "files: /a", "not found in dir://"),
        ("b", "files: /b, /sub/c", "not found in dir://"),
        (
            "sub/d",
            "files: /sub/d",
            "stored bytes do not match the block id",
        ),
    ] {
        let id = format::hex(&id_of(p));
        let mine: Vec<&&str> = lines.iter().filter(|l| l.contains(&id)).collect();
        assert_eq!(mine.len(), 1, "{p} once: {err}");
        assert!(mine[0].ends_with(files) && mine[0].contains(why), "{err}");
        // Each thing once: the store is named once, the block once.
        assert_eq!(mine[0].matches(&id).count(), 1, "{err}");
        assert!(mine[0].matches("dir://").count() <= 1, "{err}");
    }
    assert!(!err.contains("/sub/e"));
}
