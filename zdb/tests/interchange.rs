//! Disk interchange with the C 0-db (reference §8, fixtures/README.md):
//! zdb serves a data dir written by 0-db v2.0.7, and what zdb writes is read
//! back by an independent Python reader of the reference layout.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_like::Json;
use sha2_lite::sha256_hex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared fixtures sit beside the repository (`../shared`), in CI too.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/zdb-v2");
const MANIFEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/zdb-v2.manifest.json"
);

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
    Json::parse(&String::from_utf8(out.stdout).unwrap())
}

struct NsExpect {
    live: BTreeMap<String, (u64, String)>,
    deleted: BTreeSet<String>,
}

fn ns_from_json(ns: &Json) -> NsExpect {
    let mut live = BTreeMap::new();
    for (k, v) in ns.get("live").obj() {
        live.insert(
            k.clone(),
            (v.get("len").num() as u64, v.get("sha256").str().to_string()),
        );
    }
    let deleted = ns
        .get("deleted")
        .arr()
        .iter()
        .map(|d| d.str().to_string())
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
    if !fixture_available() {
        skip_or_fail("fixture ../shared/fixtures/zdb-v2 missing");
        return;
    }
    let got = run_reader(
        &Path::new(FIXTURE).join("index"),
        &Path::new(FIXTURE).join("data"),
    );
    let manifest = Json::parse(&std::fs::read_to_string(MANIFEST).unwrap());
    for (name, m) in manifest.get("namespaces").obj() {
        let r = got.get("namespaces").get(name);
        assert!(
            r.get("errors").arr().is_empty(),
            "{name}: {:?}",
            r.get("errors")
        );
        assert_eq!(r.get("mode").str(), m.get("mode").str(), "{name} mode");
        let a = ns_from_json(r);
        let b = ns_from_json(m);
        assert_eq!(a.live, b.live, "{name}: live keys");
        assert_eq!(a.deleted, b.deleted, "{name}: deleted keys");
    }
}

#[test]
fn zdb_serves_c_written_fixture() {
    if !fixture_available() {
        skip_or_fail("fixture ../shared/fixtures/zdb-v2 missing");
        return;
    }
    let manifest = Json::parse(&std::fs::read_to_string(MANIFEST).unwrap());
    let (_tmp, s) = start_on_fixture();
    let nss = manifest.get("namespaces");

    let mut c = s.client();
    let list: BTreeSet<String> = c.c(&["NSLIST"]).array().iter().map(|r| r.text()).collect();
    for (name, _) in nss.obj() {
        assert!(list.contains(name), "NSLIST lacks {name}: {list:?}");
    }

    // default
    check_ns_live(&mut c, "default", &ns_from_json(nss.get("default")));

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
    check_ns_live(&mut c, "private", &ns_from_json(nss.get("private")));
    let info = c.nsinfo("private");
    assert_eq!(info_get(&info, "data_limits_bytes").unwrap(), "10000000");
    assert_eq!(info_get(&info, "public").unwrap(), "no");
    assert_eq!(info_get(&info, "password").unwrap(), "yes");

    // public: read-only without pw
    let mut c = s.client();
    assert_eq!(c.c(&["SELECT", "public"]), Reply::ok());
    check_ns_live(&mut c, "public", &ns_from_json(nss.get("public")));
    assert_eq!(
        c.set(b"newkey", b"x"),
        Reply::err("Namespace is in read-only mode")
    );
    assert_eq!(c.c(&["SELECT", "public", "pw"]), Reply::ok());
    assert_eq!(c.set(b"newkey", b"x"), Reply::bulk("newkey"));

    // worm: refuses overwrites and deletes
    let mut c = s.client();
    c.select("worm");
    let w = ns_from_json(nss.get("worm"));
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
    let sq = ns_from_json(nss.get("seq"));
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
    if !fixture_available() {
        skip_or_fail("fixture ../shared/fixtures/zdb-v2 missing");
        return;
    }
    let manifest = Json::parse(&std::fs::read_to_string(MANIFEST).unwrap());
    let (tmp, mut s) = start_on_fixture();
    let mut expect_default = ns_from_json(manifest.get("namespaces").get("default"));
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
    let r = got.get("namespaces").get("default");
    assert!(r.get("errors").arr().is_empty(), "{:?}", r.get("errors"));
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
    let nss = got.get("namespaces");
    // default
    let d = nss.get("default");
    assert!(d.get("errors").arr().is_empty(), "{:?}", d.get("errors"));
    assert_eq!(d.get("mode").str(), "user");
    let a = ns_from_json(d);
    let want_live: BTreeMap<String, (u64, String)> = user
        .iter()
        .map(|(k, v)| (hex::encode(k), (v.len() as u64, sha256_hex(v))))
        .collect();
    assert_eq!(a.live, want_live, "default live keys as read by the reader");
    let want_del: BTreeSet<String> = deleted.iter().map(hex::encode).collect();
    assert_eq!(a.deleted, want_del, "default deleted keys");
    assert!(d.get("index_files").num() >= 3.0, "rotation expected");
    // props
    let p = nss.get("propns");
    assert!(p.get("errors").arr().is_empty(), "{:?}", p.get("errors"));
    assert_eq!(p.get("password").str(), "pp");
    assert_eq!(p.get("public"), &Json::Bool(false));
    assert_eq!(p.get("worm"), &Json::Bool(true));
    assert_eq!(p.get("maxsize").num(), 99999.0);
    // seq
    let q = nss.get("sq");
    assert!(q.get("errors").arr().is_empty(), "{:?}", q.get("errors"));
    assert_eq!(q.get("mode").str(), "seq");
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

// ---------------------------------------------------------------------------
// Tiny stdlib-only helpers (no extra dev-dependencies): SHA-256 and a JSON
// parser good enough for the manifest and the reader's output.
// ---------------------------------------------------------------------------

mod sha2_lite {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    pub fn sha256_hex(data: &[u8]) -> String {
        let mut h: [u32; 8] = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        let mut msg = data.to_vec();
        let bitlen = (data.len() as u64).wrapping_mul(8);
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&bitlen.to_be_bytes());
        for chunk in msg.chunks(64) {
            let mut w = [0u32; 64];
            for i in 0..16 {
                w[i] = u32::from_be_bytes(chunk[i * 4..i * 4 + 4].try_into().unwrap());
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16]
                    .wrapping_add(s0)
                    .wrapping_add(w[i - 7])
                    .wrapping_add(s1);
            }
            let mut v = h;
            for i in 0..64 {
                let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
                let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
                let t1 = v[7]
                    .wrapping_add(s1)
                    .wrapping_add(ch)
                    .wrapping_add(K[i])
                    .wrapping_add(w[i]);
                let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
                let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
                let t2 = s0.wrapping_add(maj);
                v[7] = v[6];
                v[6] = v[5];
                v[5] = v[4];
                v[4] = v[3].wrapping_add(t1);
                v[3] = v[2];
                v[2] = v[1];
                v[1] = v[0];
                v[0] = t1.wrapping_add(t2);
            }
            for i in 0..8 {
                h[i] = h[i].wrapping_add(v[i]);
            }
        }
        h.iter().map(|x| format!("{x:08x}")).collect()
    }
}

mod serde_like {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Json>),
        Obj(Vec<(String, Json)>),
    }

    static NULL: Json = Json::Null;

    impl Json {
        pub fn parse(s: &str) -> Json {
            let b = s.as_bytes();
            let mut i = 0;
            let v = value(b, &mut i);
            ws(b, &mut i);
            assert_eq!(i, b.len(), "trailing JSON");
            v
        }
        pub fn get(&self, k: &str) -> &Json {
            match self {
                Json::Obj(v) => v
                    .iter()
                    .find(|(kk, _)| kk == k)
                    .map(|x| &x.1)
                    .unwrap_or(&NULL),
                _ => &NULL,
            }
        }
        pub fn obj(&self) -> &[(String, Json)] {
            match self {
                Json::Obj(v) => v,
                other => panic!("not an object: {other:?}"),
            }
        }
        pub fn arr(&self) -> &[Json] {
            match self {
                Json::Arr(v) => v,
                other => panic!("not an array: {other:?}"),
            }
        }
        pub fn str(&self) -> &str {
            match self {
                Json::Str(s) => s,
                other => panic!("not a string: {other:?}"),
            }
        }
        pub fn num(&self) -> f64 {
            match self {
                Json::Num(n) => *n,
                other => panic!("not a number: {other:?}"),
            }
        }
    }

    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }

    fn value(b: &[u8], i: &mut usize) -> Json {
        ws(b, i);
        match b[*i] {
            b'{' => {
                *i += 1;
                let mut v = Vec::new();
                ws(b, i);
                if b[*i] == b'}' {
                    *i += 1;
                    return Json::Obj(v);
                }
                loop {
                    ws(b, i);
                    let k = match value(b, i) {
                        Json::Str(s) => s,
                        other => panic!("object key {other:?}"),
                    };
                    ws(b, i);
                    assert_eq!(b[*i], b':');
                    *i += 1;
                    let val = value(b, i);
                    v.push((k, val));
                    ws(b, i);
                    match b[*i] {
                        b',' => *i += 1,
                        b'}' => {
                            *i += 1;
                            return Json::Obj(v);
                        }
                        c => panic!("bad object char {}", c as char),
                    }
                }
            }
            b'[' => {
                *i += 1;
                let mut v = Vec::new();
                ws(b, i);
                if b[*i] == b']' {
                    *i += 1;
                    return Json::Arr(v);
                }
                loop {
                    v.push(value(b, i));
                    ws(b, i);
                    match b[*i] {
                        b',' => *i += 1,
                        b']' => {
                            *i += 1;
                            return Json::Arr(v);
                        }
                        c => panic!("bad array char {}", c as char),
                    }
                }
            }
            b'"' => {
                *i += 1;
                let mut s = String::new();
                loop {
                    match b[*i] {
                        b'"' => {
                            *i += 1;
                            return Json::Str(s);
                        }
                        b'\\' => {
                            *i += 1;
                            match b[*i] {
                                b'n' => s.push('\n'),
                                b't' => s.push('\t'),
                                b'r' => s.push('\r'),
                                b'u' => {
                                    let h = std::str::from_utf8(&b[*i + 1..*i + 5]).unwrap();
                                    let cp = u32::from_str_radix(h, 16).unwrap();
                                    s.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                                    *i += 4;
                                }
                                c => s.push(c as char),
                            }
                            *i += 1;
                        }
                        _ => {
                            let start = *i;
                            while b[*i] != b'"' && b[*i] != b'\\' {
                                *i += 1;
                            }
                            s.push_str(std::str::from_utf8(&b[start..*i]).unwrap());
                        }
                    }
                }
            }
            b't' => {
                *i += 4;
                Json::Bool(true)
            }
            b'f' => {
                *i += 5;
                Json::Bool(false)
            }
            b'n' => {
                *i += 4;
                Json::Null
            }
            _ => {
                let start = *i;
                while *i < b.len()
                    && (b[*i] == b'-'
                        || b[*i] == b'.'
                        || b[*i] == b'e'
                        || b[*i] == b'E'
                        || b[*i] == b'+'
                        || b[*i].is_ascii_digit())
                {
                    *i += 1;
                }
                Json::Num(std::str::from_utf8(&b[start..*i]).unwrap().parse().unwrap())
            }
        }
    }
}
