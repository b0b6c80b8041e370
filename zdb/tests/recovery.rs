//! Crash recovery (Decisions: torn or garbage tails of index and data files are
//! cut back to the last whole entry; data entries without an index entry are
//! re-indexed). Each case runs on a fresh copy of a SIGKILLed data dir.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

struct Base {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    /// every key written, with its value
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    last: u32,
    /// entries of the last data file (pristine)
    last_entries: Vec<DataEntry>,
    last_index_entries: Vec<IndexEntry>,
    seq: bool,
}

const ARGS: &[&str] = &["--mode", "user", "--datasize", "512k"];
const SEQ_ARGS: &[&str] = &["--mode", "seq", "--datasize", "512k"];

fn args(seq: bool) -> &'static [&'static str] {
    if seq { SEQ_ARGS } else { ARGS }
}

fn build_base() -> Base {
    build_base_mode(false)
}

fn build_base_mode(seq: bool) -> Base {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let mut values = BTreeMap::new();
    {
        let mut s = Server::start_at(&root, args(seq));
        let mut c = s.client();
        let mut put = |c: &mut Client, name: String, v: Vec<u8>| {
            let k = if seq {
                seq_id(values.len() as u64)
            } else {
                name.into_bytes()
            };
            let setk: &[u8] = if seq { b"" } else { &k };
            assert_eq!(c.set(setk, &v), Reply::bulk(&k));
            values.insert(k, v);
        };
        // ~600 KB of large values: forces a rotation to d1/i1
        for i in 0..12u64 {
            put(&mut c, format!("big-{i:02}"), pseudo_bytes(i, 50_000));
        }
        // small entries in the last file
        for i in 0..30u64 {
            let v = pseudo_bytes(100 + i, 100 + (i as usize * 97) % 3000);
            put(&mut c, format!("small-{i:02}"), v);
        }
        s.kill();
    }
    let ddir = root.join("data").join("default");
    let idir = root.join("index").join("default");
    let last = last_file(&ddir, "d").unwrap();
    assert!(last >= 1, "expected a rotation with --datasize 512k");
    assert_eq!(last_file(&idir, "i"), Some(last));
    let last_entries = parse_data_file(&ddir.join(format!("d{last}")));
    let last_index_entries = parse_index_file(&idir.join(format!("i{last}")));
    assert!(
        last_entries.len() >= 20,
        "last data file holds {} entries",
        last_entries.len()
    );
    Base {
        _tmp: tmp,
        root,
        values,
        last,
        last_entries,
        last_index_entries,
        seq,
    }
}

enum Mutation {
    TruncData(u64),
    TruncIndex(u64),
    TruncBoth {
        index: u64,
        data: u64,
    },
    Append {
        index: Option<Vec<u8>>,
        data: Option<Vec<u8>>,
    },
}

fn apply(root: &Path, last: u32, m: &Mutation) {
    let d = root.join("data").join("default").join(format!("d{last}"));
    let i = root.join("index").join("default").join(format!("i{last}"));
    match m {
        Mutation::TruncData(n) => truncate_file(&d, *n),
        Mutation::TruncIndex(n) => truncate_file(&i, *n),
        Mutation::TruncBoth { index, data } => {
            truncate_file(&i, *index);
            truncate_file(&d, *data);
        }
        Mutation::Append { index, data } => {
            if let Some(g) = index {
                append_file(&i, g);
            }
            if let Some(g) = data {
                append_file(&d, g);
            }
        }
    }
}

/// Keys whose data entry stays whole after cutting the last data file at `cut`.
fn whole_keys(base: &Base, data_cut: Option<u64>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = base.values.clone();
    if let Some(cut) = data_cut {
        for e in &base.last_entries {
            if e.end > cut {
                out.remove(&e.key);
            }
        }
    }
    out
}

fn run_case(base: &Base, label: &str, m: Mutation, data_cut: Option<u64>) {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&base.root, tmp.path());
    let _ = std::fs::remove_file(tmp.path().join("data").join(".lockfile"));
    let _ = std::fs::remove_file(tmp.path().join("index").join(".lockfile"));
    apply(tmp.path(), base.last, &m);
    let whole = whole_keys(base, data_cut);

    eprintln!("case: {label}");
    let mut s = Server::start_at(tmp.path(), args(base.seq));
    let mut c = s.client();
    let check = |c: &mut Client, phase: &str| {
        for (k, v) in &base.values {
            let got = c.get(k);
            if let Some(want) = whole.get(k) {
                assert!(
                    got == Reply::bulk(want),
                    "[{label}/{phase}] whole key {:?} not served: got {got:?}",
                    String::from_utf8_lossy(k)
                );
            } else {
                assert!(
                    got == Reply::nil() || got.is_error(),
                    "[{label}/{phase}] torn key {:?} served wrong bytes: {got:?} (len {} wanted nil)",
                    String::from_utf8_lossy(k),
                    v.len()
                );
            }
        }
        let n = c.dbsize();
        assert_eq!(n, whole.len() as i64, "[{label}/{phase}] DBSIZE");
    };
    check(&mut c, "first start");
    // new writes are accepted and survive another restart
    let nv = pseudo_bytes(424242, 2000);
    let newkey: Vec<u8> = if base.seq {
        let r = c.set(b"", &nv);
        let id = match &r {
            Reply::Bulk(Some(id)) if id.len() == 8 => id.clone(),
            other => panic!("[{label}] seq write after recovery: {other:?}"),
        };
        assert!(
            !base.values.contains_key(&id) || !whole.contains_key(&id),
            "[{label}] new id {id:?} reuses a live id"
        );
        id
    } else {
        assert_eq!(
            c.set(b"after-recovery", &nv),
            Reply::bulk("after-recovery"),
            "[{label}] write after recovery"
        );
        b"after-recovery".to_vec()
    };
    assert_eq!(c.get(&newkey), Reply::bulk(&nv));
    s.restart();
    let mut c = s.client();
    assert_eq!(
        c.get(&newkey),
        Reply::bulk(&nv),
        "[{label}] write after recovery lost on restart"
    );
    let mut whole2 = whole.clone();
    whole2.insert(newkey, nv);
    for (k, v) in &whole {
        assert_eq!(
            c.get(k),
            Reply::bulk(v),
            "[{label}/second start] {:?}",
            String::from_utf8_lossy(k)
        );
    }
    assert_eq!(
        c.dbsize(),
        whole2.len() as i64,
        "[{label}/second start] DBSIZE"
    );
}

fn offsets_within(entries: &[(u64, u64)]) -> Vec<u64> {
    // cut points: at entry boundaries, inside headers, inside keys/values
    let mut v = Vec::new();
    let n = entries.len();
    for idx in [0, 1, n / 3, n / 2, n - 2, n - 1] {
        let (start, end) = entries[idx];
        v.push(start); // boundary
        v.push(start + 5); // inside the header
        v.push(start + (end - start) / 2); // inside key/value
        v.push(end - 1); // last byte missing
    }
    v.sort();
    v.dedup();
    v
}

#[test]
fn truncated_data_file() {
    let base = build_base();
    let ranges: Vec<(u64, u64)> = base
        .last_entries
        .iter()
        .map(|e| (e.offset, e.end))
        .collect();
    for cut in offsets_within(&ranges) {
        run_case(
            &base,
            &format!("data cut at {cut}"),
            Mutation::TruncData(cut),
            Some(cut),
        );
    }
}

#[test]
fn truncated_index_file_reindexes_from_data() {
    let base = build_base();
    let ranges: Vec<(u64, u64)> = base
        .last_index_entries
        .iter()
        .map(|e| (e.offset, e.end))
        .collect();
    let mut cuts = offsets_within(&ranges);
    cuts.push(29); // only the header left: every entry must come back from data
    for cut in cuts {
        run_case(
            &base,
            &format!("index cut at {cut}"),
            Mutation::TruncIndex(cut),
            None,
        );
    }
}

#[test]
fn truncated_both_files() {
    let base = build_base();
    let de = &base.last_entries;
    let ie = &base.last_index_entries;
    let n = de.len().min(ie.len());
    let cases = [
        // index shorter than data (data entries missing from the index)
        (ie[n / 3].offset + 7, de[n / 2].offset + 9),
        // data shorter than index (index entries pointing past the data end)
        (ie[n - 2].end - 3, de[n / 3].end - 1),
        // both at boundaries
        (ie[n / 2].offset, de[n / 2].offset),
        (29, de[1].end),
    ];
    for (icut, dcut) in cases {
        run_case(
            &base,
            &format!("index cut {icut} + data cut {dcut}"),
            Mutation::TruncBoth {
                index: icut,
                data: dcut,
            },
            Some(dcut),
        );
    }
}

#[test]
fn garbage_appended() {
    let base = build_base();
    let junk = pseudo_bytes(99, 333);
    // a plausible-looking partial index entry header followed by junk
    let mut fake_idx = vec![5u8, 0x10, 0, 0, 0, 0xff, 0xff, 0, 0];
    fake_idx.extend(pseudo_bytes(7, 40));
    // a data header declaring a huge value
    let mut fake_dat = vec![4u8, 0xff, 0xff, 0xff, 0x7f];
    fake_dat.extend(pseudo_bytes(8, 100));
    let zeros = vec![0u8; 4096];
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "junk on index",
            Mutation::Append {
                index: Some(junk.clone()),
                data: None,
            },
        ),
        (
            "junk on data",
            Mutation::Append {
                index: None,
                data: Some(junk.clone()),
            },
        ),
        (
            "junk on both",
            Mutation::Append {
                index: Some(junk.clone()),
                data: Some(junk.clone()),
            },
        ),
        (
            "fake headers",
            Mutation::Append {
                index: Some(fake_idx),
                data: Some(fake_dat),
            },
        ),
        (
            "zero fill (preallocated tail)",
            Mutation::Append {
                index: Some(zeros.clone()),
                data: Some(zeros),
            },
        ),
    ];
    for (label, m) in cases {
        run_case(&base, label, m, None);
    }
}

#[test]
fn torn_headers_of_last_files() {
    let base = build_base();
    let last_start = base.last_entries[0].offset; // 28
    assert_eq!(last_start, 28);
    // data file header torn: entries of the last file are gone, older ones stay
    for cut in [0u64, 10] {
        run_case(
            &base,
            &format!("data header cut at {cut}"),
            Mutation::TruncData(cut),
            Some(cut),
        );
    }
    // index file header torn: data intact, so everything is re-indexed
    for cut in [0u64, 10] {
        run_case(
            &base,
            &format!("index header cut at {cut}"),
            Mutation::TruncIndex(cut),
            None,
        );
    }
}

#[test]
fn seq_mode_truncations() {
    let base = build_base_mode(true);
    let de = &base.last_entries;
    let ie = &base.last_index_entries;
    let n = de.len().min(ie.len());
    for cut in [de[n / 2].offset, de[n / 2].offset + 9, de[n - 1].end - 1] {
        run_case(
            &base,
            &format!("seq data cut at {cut}"),
            Mutation::TruncData(cut),
            Some(cut),
        );
    }
    for cut in [29, ie[n / 2].offset + 3, ie[n - 1].end - 1] {
        run_case(
            &base,
            &format!("seq index cut at {cut}"),
            Mutation::TruncIndex(cut),
            None,
        );
    }
    run_case(
        &base,
        "seq junk on both",
        Mutation::Append {
            index: Some(pseudo_bytes(5, 100)),
            data: Some(pseudo_bytes(6, 100)),
        },
        None,
    );
}
