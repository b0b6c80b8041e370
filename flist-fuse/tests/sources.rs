//! Pack from tar (plain, gzip, zstd), OCI image layouts and `docker save` archives.
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::io::Write;
use std::path::Path;

use common::{fails, ok, pack, snapshot};

fn dir_url(p: &Path) -> String {
    format!("dir://{}", p.display())
}

#[test]
fn tar_plain_gzip_zstd_round_trip() {
    if common::skip_without_root() {
        return;
    }
    let t = common::tmp();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    common::make_tree(&src);
    let tarp = t.path().join("tree.tar");
    let st = std::process::Command::new("tar")
        .args([
            "--format=pax",
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&tarp)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    // GNU tar exits 1 ("file changed"/socket ignored) but writes the archive.
    assert!(st.code().unwrap_or(2) <= 1);
    let raw = std::fs::read(&tarp).unwrap();
    let gz = t.path().join("tree.tar.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&raw).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let zs = t.path().join("tree.tar.zst");
    std::fs::write(&zs, zstd::encode_all(&raw[..], 3).unwrap()).unwrap();

    let mut expect = snapshot(&src);
    expect.remove(&b"sock"[..]); // tar cannot carry sockets
    let store = dir_url(&t.path().join("store"));
    let dir_id = pack(&src, &store, &t.path().join("dir.fl"));
    let mut ids = Vec::new();
    for (k, input) in [&tarp, &gz, &zs].into_iter().enumerate() {
        let fl = t.path().join(format!("t{k}.fl"));
        ids.push(pack(input, &store, &fl));
        let out = t.path().join(format!("out{k}"));
        ok(flist!("unpack", fl, out));
        common::assert_same(&expect, &snapshot(&out));
    }
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "compression does not change the image"
    );
    assert_ne!(ids[0], dir_id, "the socket is missing from the tar");
}

/// A layer tar built entry by entry: (path, content or None for a folder).
fn layer(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, c) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match c {
            Some(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn layers() -> (Vec<u8>, Vec<u8>) {
    let l1 = layer(&[
        ("a", Some(b"A")),
        ("b", Some(b"B")),
        ("d/", None),
        ("d/x", Some(b"X")),
        ("d/sub/", None),
        ("d/sub/y", Some(b"Y")),
        ("e/", None),
        ("e/gone", Some(b"G")),
    ]);
    let l2 = layer(&[
        (".wh.a", Some(b"")),
        ("d/", None),
        ("d/.wh..wh..opq", Some(b"")),
        ("d/z", Some(b"Z")),
        ("e/.wh.gone", Some(b"")),
        ("b", Some(b"B2")),
    ]);
    (l1, l2)
}

fn check_merged(fl: &Path) {
    let ls = ok(flist!("ls", "-R", fl));
    let names: Vec<&str> = ls.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(names, ["/", "b", "d", "e", "d/z"], "{ls}");
    assert_eq!(ok(flist!("cat", fl, "b")), "B2");
    assert_eq!(ok(flist!("cat", fl, "d/z")), "Z");
}

fn sha256_name(data: &[u8], n: usize) -> String {
    // Test digests only need to be unique names.
    format!(
        "{}{n:02}",
        flist_fuse::format::hex(blake3::hash(data).as_bytes())
    )
}

#[test]
fn oci_layout_with_whiteouts() {
    let t = common::tmp();
    let (l1, l2) = layers();
    let img = t.path().join("img");
    let blobs = img.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(img.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    // Layer 1 gzip, layer 2 zstd.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&l1).unwrap();
    let l1z = e.finish().unwrap();
    let l2z = zstd::encode_all(&l2[..], 3).unwrap();
    let d1 = sha256_name(&l1z, 1);
    let d2 = sha256_name(&l2z, 2);
    std::fs::write(blobs.join(&d1), &l1z).unwrap();
    std::fs::write(blobs.join(&d2), &l2z).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":2}},
        "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{d1}","size":1}},
                  {{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha256:{d2}","size":1}}]}}"#
    );
    let dm = sha256_name(manifest.as_bytes(), 3);
    std::fs::write(blobs.join(&dm), &manifest).unwrap();
    std::fs::write(
        img.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{dm}","size":1}}]}}"#
        ),
    )
    .unwrap();
    let store = dir_url(&t.path().join("store"));
    let fl = t.path().join("oci.fl");
    pack(&img, &store, &fl);
    check_merged(&fl);

    // The same layout as a tar archive.
    let arch = t.path().join("oci.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&arch).unwrap());
    b.append_dir_all(".", &img).unwrap();
    b.finish().unwrap();
    drop(b);
    let fl2 = t.path().join("oci2.fl");
    pack(&arch, &store, &fl2);
    check_merged(&fl2);

    // A digest trying to leave the layout is refused.
    std::fs::write(
        img.join("index.json"),
        r#"{"manifests":[{"digest":"sha256:../../etc/passwd"}]}"#,
    )
    .unwrap();
    fails(
        flist!(
            "pack",
            "--quiet",
            "--store",
            store,
            "-o",
            t.path().join("x.fl"),
            img
        ),
        "bad digest",
    );
}

#[test]
fn docker_save_archive_with_whiteouts() {
    let t = common::tmp();
    let (l1, l2) = layers();
    let arch = t.path().join("image.tar");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("aaa/layer.tar", &l1);
    add("bbb/layer.tar", &l2);
    add(
        "manifest.json",
        br#"[{"Config":"cfg.json","RepoTags":["t:latest"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}]"#,
    );
    add("cfg.json", b"{}");
    std::fs::write(&arch, b.into_inner().unwrap()).unwrap();
    let fl = t.path().join("docker.fl");
    pack(&arch, &dir_url(&t.path().join("store")), &fl);
    check_merged(&fl);
}
