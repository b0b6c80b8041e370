//! Disk interchange with the C 0-db (reference §8, fixtures/README.md):
//! zdb serves a data dir written by 0-db v2.0.7, and what zdb writes is read
//! back by an independent Python reader of the reference layout.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A data directory written by the C 0-db v2.0.7, copied into the repository (see
/// `tests/fixtures/README.md`), so a fresh clone tests against it.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zdb-v2");
const MANIFEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/zdb-v2.manifest.json"
);

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

fn reader_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/zdb_layout.py")
}

fn fixture_available() -> bool {
    Path::new(FIXTURE).is_dir() && Path::new(MANIFEST).is_file()
}

/// Runs the Python reader, returns its parsed JSON.
fn run_reader(index: &Path, data: &Path) -> Json {
    let out = Command::new("python3")
        .arg(reader_script())
        .arg(index)
        .arg(data)
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct NsExpect {
    live: BTreeMap<String, (u64, String)>,
    deleted: BTreeSet<String>,
}

fn ns_from_json(ns: &Json) -> NsExpect {
    let mut live = BTreeMap::new();
    for (k, v) in ns["live"].as_object().unwrap() {
        live.insert(
            k.clone(),
            (
                v["len"].as_f64().unwrap() as u64,
                v["sha256"].as_str().unwrap().to_string(),
            ),
        );
    }
    let deleted = ns["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    NsExpect { live, deleted }
}

fn check_ns_live(c: &mut Client, ns: &str, e: &NsExpect) {
    for (khex, (len, sha)) in &e.live {
        let key = hex::decode(khex).unwrap();
        assert_eq!(
            c.cmd(&[b"LENGTH", &key]),
            Reply::Int(*len as i64),
            "{ns}: LENGTH {khex}"
        );
        let v = c.get(&key).bytes();
        assert_eq!(v.len() as u64, *len, "{ns}: GET {khex} length");
        assert_eq!(&sha256_hex(&v), sha, "{ns}: GET {khex} sha256");
    }
    for khex in &e.deleted {
        let key = hex::decode(khex).unwrap();
        assert_eq!(c.get(&key), Reply::nil(), "{ns}: deleted {khex}");
        assert_eq!(c.cmd(&[b"EXISTS", &key]), Reply::Int(0), "{ns}: {khex}");
    }
    assert_eq!(c.dbsize(), e.live.len() as i64, "{ns}: DBSIZE");
}

fn start_on_fixture() -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(Path::new(FIXTURE), tmp.path());
    let s = Server::start_at(tmp.path(), &["--datasize", "524288"]);
    (tmp, s)
}

#[test]
fn reader_agrees_with_fixture_manifest() {
    assert!(fixture_available(), "fixture {FIXTURE} missing");
    let got = run_reader(
        &Path::new(FIXTURE).join("index"),
        &Path::new(FIXTURE).join("data"),
    );
    let manifest: Json = serde_json::from_str(&std::fs::read_to_string(MANIFEST).unwrap()).unwrap();
    for (name, m) in manifest["namespaces"].as_object().unwrap() {
        let r = &got["namespaces"][name];
        assert!(
            r["errors"].as_array().unwrap().is_empty(),
            "{name}: {:?}",
            r["errors"]
        );
        assert_eq!(
            r["mode"].as_str().unwrap(),
            m["mode"].as_str().unwrap(),
            "{name} mode"
        );
        let a = ns_from_json(r);
        let b = ns_from_json(m);
        assert_eq!(a.live, b.live, "{name}: live keys");
        assert_eq!(a.deleted, b.deleted, "{name}: deleted keys");
    }
}

#[test]
fn zdb_serves_c_written_fixture() {
    assert!(fixture_available(), "fixture {FIXTURE} missing");
    let manifest: Json = serde_json::from_str(&std::fs::read_to_string(MANIFEST).unwrap()).unwrap();
    let (_tmp, s) = start_on_fixture();
    let nss = &manifest["namespaces"];

    let mut c = s.client();
    let list: BTreeSet<String> = c.c(&["NSLIST"]).array().iter().map(|r| r.text()).collect();
    for (name, _) in nss.as_object().unwrap() {
        assert!(list.contains(name), "NSLIST lacks {name}: {list:?}");
    }

    // default
    check_ns_live(&mut c, "default", &ns_from_json(&nss["default"]));

    // private: needs s3cret
    let mut c = s.client();
    assert_eq!(
        c.c(&["SELECT", "private"]),
        Reply::err("Namespace protected and private")
    );
    assert_eq!(
        c.c(&["SELECT", "private", "wrong"]),
        Reply::err("Access denied")
    );
    assert_eq!(c.c(&["SELECT", "private", "s3cret"]), Reply::ok());
    check_ns_live(&mut c, "private", &ns_from_json(&nss["private"]));
    let info = c.nsinfo("private");
    assert_eq!(info_get(&info, "data_limits_bytes").unwrap(), "10000000");
    assert_eq!(info_get(&info, "public").unwrap(), "no");
    assert_eq!(info_get(&info, "password").unwrap(), "yes");

    // public: read-only without pw
    let mut c = s.client();
    assert_eq!(c.c(&["SELECT", "public"]), Reply::ok());
    check_ns_live(&mut c, "public", &ns_from_json(&nss["public"]));
    assert_eq!(
        c.set(b"newkey", b"x"),
        Reply::err("Namespace is in read-only mode")
    );
    assert_eq!(c.c(&["SELECT", "public", "pw"]), Reply::ok());
    assert_eq!(c.set(b"newkey", b"x"), Reply::bulk("newkey"));

    // worm: refuses overwrites and deletes
    let mut c = s.client();
    c.select("worm");
    let w = ns_from_json(&nss["worm"]);
    check_ns_live(&mut c, "worm", &w);
    let k0 = hex::decode(w.live.keys().next().unwrap()).unwrap();
    assert_eq!(
        c.set(&k0, b"overwrite"),
        Reply::err("Namespace is protected by worm mode")
    );
    assert_eq!(
        c.del(&k0),
        Reply::err("Cannot delete a key when namespace is in worm mode")
    );
    assert_eq!(info_get(&c.nsinfo("worm"), "worm").unwrap(), "yes");

    // seq
    let mut c = s.client();
    c.select("seq");
    let sq = ns_from_json(&nss["seq"]);
    check_ns_live(&mut c, "seq", &sq);
    assert_eq!(info_get(&c.nsinfo("seq"), "mode").unwrap(), "sequential");
    let max_id = sq
        .live
        .keys()
        .chain(sq.deleted.iter())
        .map(|k| u64::from_le_bytes(hex::decode(k).unwrap().try_into().unwrap()))
        .max()
        .unwrap();
    let new_id = c.set(b"", b"appended-by-zdb").bytes();
    assert_eq!(new_id.len(), 8);
    let new_id_n = u64::from_le_bytes(new_id.clone().try_into().unwrap());
    assert!(new_id_n > max_id, "new id {new_id_n} <= {max_id}");
    assert_eq!(c.get(&new_id), Reply::bulk("appended-by-zdb"));
    // a deleted id cannot be set
    let d0 = hex::decode(sq.deleted.iter().next().unwrap()).unwrap();
    assert_eq!(
        c.set(&d0, b"x"),
        Reply::err("Invalid key, only update authorized")
    );
    // an existing id can be updated
    let l0 = hex::decode(sq.live.keys().next().unwrap()).unwrap();
    assert_eq!(c.set(&l0, b"updated"), Reply::bulk(&l0));
    assert_eq!(c.get(&l0), Reply::bulk("updated"));
}

#[test]
fn fixture_write_restart_and_reader() {
    assert!(fixture_available(), "fixture {FIXTURE} missing");
    let manifest: Json = serde_json::from_str(&std::fs::read_to_string(MANIFEST).unwrap()).unwrap();
    let (tmp, mut s) = start_on_fixture();
    let mut expect_default = ns_from_json(&manifest["namespaces"]["default"]);
    let mut c = s.client();
    // overwrite, delete and add keys in the C-written namespace
    let keys: Vec<String> = expect_default.live.keys().take(40).cloned().collect();
    for (i, khex) in keys.iter().enumerate() {
        let key = hex::decode(khex).unwrap();
        if i % 2 == 0 {
            let v = pseudo_bytes(i as u64, 3000 + i);
            c.set(&key, &v);
            expect_default
                .live
                .insert(khex.clone(), (v.len() as u64, sha256_hex(&v)));
        } else {
            assert_eq!(c.del(&key), Reply::ok());
            expect_default.live.remove(khex);
            expect_default.deleted.insert(khex.clone());
        }
    }
    for i in 0..200u64 {
        let key = format!("zdb-new-{i}").into_bytes();
        let v = pseudo_bytes(1000 + i, 4000);
        c.set(&key, &v);
        expect_default
            .live
            .insert(hex::encode(&key), (v.len() as u64, sha256_hex(&v)));
    }
    s.term();
    let got = run_reader(&tmp.path().join("index"), &tmp.path().join("data"));
    let r = &got["namespaces"]["default"];
    assert!(
        r["errors"].as_array().unwrap().is_empty(),
        "{:?}",
        r["errors"]
    );
    let a = ns_from_json(r);
    assert_eq!(a.live, expect_default.live, "reader vs expected (live)");
    assert_eq!(
        a.deleted, expect_default.deleted,
        "reader vs expected (deleted)"
    );
    s.launch();
    let mut c = s.client();
    check_ns_live(&mut c, "default", &expect_default);
}

#[test]
fn reader_reads_what_zdb_wrote() {
    let mut s = Server::start(&["--datasize", "512k"]);
    let mut c = s.client();
    // user namespace with overwrites, deletes, binary keys, empty value, rotation
    let mut user: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut deleted: BTreeSet<Vec<u8>> = BTreeSet::new();
    for i in 0..400u64 {
        let key = if i % 50 == 0 {
            pseudo_bytes(i, 1 + (i as usize % 255))
        } else {
            format!("k{i:04}").into_bytes()
        };
        let v = pseudo_bytes(i + 7, (i as usize * 131) % 9000);
        c.set(&key, &v);
        user.insert(key, v);
    }
    let keys: Vec<Vec<u8>> = user.keys().cloned().collect();
    for (i, k) in keys.iter().enumerate() {
        if i % 5 == 0 {
            let v = pseudo_bytes(i as u64 + 99_999, 777);
            c.set(k, &v);
            user.insert(k.clone(), v);
        } else if i % 9 == 0 {
            assert_eq!(c.del(k), Reply::ok());
            user.remove(k);
            deleted.insert(k.clone());
        }
    }
    // namespace with properties
    c.c(&["NSNEW", "propns"]);
    c.c(&["NSSET", "propns", "password", "pp"]);
    c.c(&["NSSET", "propns", "public", "0"]);
    c.c(&["NSSET", "propns", "maxsize", "99999"]);
    c.c(&["NSSET", "propns", "worm", "1"]);
    // seq namespace
    c.c(&["NSNEW", "sq"]);
    c.c(&["NSSET", "sq", "mode", "seq"]);
    c.select("sq");
    let mut seqv: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut next = 0u64;
    let mut seq_deleted = BTreeSet::new();
    for i in 0..150u64 {
        let v = pseudo_bytes(5000 + i, (i as usize * 97) % 5000);
        assert_eq!(c.set(b"", &v), Reply::bulk(seq_id(next)));
        seqv.insert(next, v);
        next += 1;
    }
    for id in (0..150u64).step_by(10) {
        let v = pseudo_bytes(id + 77_777, 321);
        assert_eq!(c.set(&seq_id(id), &v), Reply::bulk(seq_id(id)));
        seqv.insert(id, v);
        next += 1; // an update consumes an id
    }
    for id in (5..150u64).step_by(17) {
        assert_eq!(c.del(&seq_id(id)), Reply::ok());
        seqv.remove(&id);
        seq_deleted.insert(id);
    }
    assert_eq!(c.set(b"", b"last"), Reply::bulk(seq_id(next)));
    seqv.insert(next, b"last".to_vec());
    s.term();

    let got = run_reader(&s.index, &s.data);
    let nss = &got["namespaces"];
    // default
    let d = &nss["default"];
    assert!(
        d["errors"].as_array().unwrap().is_empty(),
        "{:?}",
        d["errors"]
    );
    assert_eq!(d["mode"].as_str().unwrap(), "user");
    let a = ns_from_json(d);
    let want_live: BTreeMap<String, (u64, String)> = user
        .iter()
        .map(|(k, v)| (hex::encode(k), (v.len() as u64, sha256_hex(v))))
        .collect();
    assert_eq!(a.live, want_live, "default live keys as read by the reader");
    let want_del: BTreeSet<String> = deleted.iter().map(hex::encode).collect();
    assert_eq!(a.deleted, want_del, "default deleted keys");
    assert!(
        d["index_files"].as_f64().unwrap() >= 3.0,
        "rotation expected"
    );
    // props
    let p = &nss["propns"];
    assert!(
        p["errors"].as_array().unwrap().is_empty(),
        "{:?}",
        p["errors"]
    );
    assert_eq!(p["password"].as_str().unwrap(), "pp");
    assert_eq!(p["public"], Json::Bool(false));
    assert_eq!(p["worm"], Json::Bool(true));
    assert_eq!(p["maxsize"].as_f64().unwrap(), 99999.0);
    // seq
    let q = &nss["sq"];
    assert!(
        q["errors"].as_array().unwrap().is_empty(),
        "{:?}",
        q["errors"]
    );
    assert_eq!(q["mode"].as_str().unwrap(), "seq");
    let a = ns_from_json(q);
    let want_live: BTreeMap<String, (u64, String)> = seqv
        .iter()
        .map(|(k, v)| (hex::encode(seq_id(*k)), (v.len() as u64, sha256_hex(v))))
        .collect();
    assert_eq!(a.live, want_live, "seq live ids as read by the reader");
    let want_del: BTreeSet<String> = seq_deleted
        .iter()
        .map(|i| hex::encode(seq_id(*i)))
        .collect();
    assert_eq!(a.deleted, want_del, "seq deleted ids");
    // descriptor of default: §8.1 example, byte for byte
    let raw = std::fs::read(s.index.join("default").join("zdb-namespace")).unwrap();
    assert_eq!(
        raw,
        b"\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05default".to_vec()
    );
}
