//! Engine tests on the in-memory storage: power cuts, torn tails, full disks, bit flips.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::storage::Storage;
use crate::storage::sim::SimStorage;

const IDX: &str = "/i";
const DAT: &str = "/d";

fn cfg(sync: bool) -> EngineConfig {
    EngineConfig {
        datasize: 4096,
        sync,
        synctime: None,
        run_mode: RunMode::Mixed,
        group_commit: false,
    }
}

fn open(sim: &SimStorage, sync: bool) -> Namespace {
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    storage.create_dir_all(Path::new(IDX)).unwrap();
    storage.create_dir_all(Path::new(DAT)).unwrap();
    Namespace::open(
        storage,
        Path::new(IDX),
        Path::new(DAT),
        b"default",
        cfg(sync),
    )
    .unwrap()
}

/// Every version ever written per key (None = deleted), and the last acknowledged one.
#[derive(Default)]
struct Model {
    history: HashMap<Vec<u8>, Vec<Option<Vec<u8>>>>,
    acked: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

fn random_op(ns: &mut Namespace, rng: &mut StdRng, model: &mut Model, step: usize) {
    let key = format!("key-{}", rng.gen_range(0..40)).into_bytes();
    if rng.gen_bool(0.2) {
        model.history.entry(key.clone()).or_default().push(None);
        match ns.del(&key, 1) {
            Ok(_) => {
                model.acked.insert(key, None);
            }
            Err(OpError::KeyNotFound) => {}
            Err(e) => panic!("del failed: {e}"),
        }
    } else {
        let len = rng.gen_range(0..300);
        let value: Vec<u8> = (0..len).map(|i| (i + step) as u8).collect();
        model
            .history
            .entry(key.clone())
            .or_default()
            .push(Some(value.clone()));
        ns.set(&key, &value, 1).unwrap();
        model.acked.insert(key, Some(value));
    }
}

#[test]
fn power_cut_with_sync_loses_no_acknowledged_write() {
    let mut rng = StdRng::seed_from_u64(7);
    for trial in 0..30 {
        let sim = SimStorage::new();
        let mut ns = open(&sim, true);
        let mut model = Model::default();
        let steps = rng.gen_range(1..200);
        for step in 0..steps {
            random_op(&mut ns, &mut rng, &mut model, step);
        }
        let after = sim.power_cut();
        let ns = open(&after, true);
        for (key, want) in &model.acked {
            assert_eq!(
                ns.get(key).unwrap(),
                *want,
                "trial {trial} key {}",
                String::from_utf8_lossy(key)
            );
        }
        let live = model.acked.values().filter(|v| v.is_some()).count() as u64;
        assert_eq!(ns.entries(), live, "trial {trial}");
    }
}

#[test]
fn power_cut_without_sync_opens_clean_with_written_versions_only() {
    let mut rng = StdRng::seed_from_u64(11);
    for trial in 0..40 {
        let sim = SimStorage::new();
        let mut ns = open(&sim, false);
        let mut model = Model::default();
        for step in 0..rng.gen_range(1..300) {
            random_op(&mut ns, &mut rng, &mut model, step);
            if rng.gen_bool(0.05) {
                ns.sync_now().unwrap();
            }
        }
        let mut ns = open(&sim.power_cut(), false);
        for (key, versions) in &model.history {
            if let Some(v) = ns.get(key).unwrap() {
                assert!(
                    versions.contains(&Some(v)),
                    "trial {trial}: garbage for {}",
                    String::from_utf8_lossy(key)
                );
            }
        }
        // And it keeps working.
        ns.set(b"after", b"cut", 1).unwrap();
        assert_eq!(ns.get(b"after").unwrap().as_deref(), Some(&b"cut"[..]));
    }
}

/// Write a few entries, then cut the last data and index files at every offset.
#[test]
fn truncated_tails_keep_every_whole_entry() {
    let sim = SimStorage::new();
    let mut ns = open(&sim, true);
    let mut written = Vec::new();
    for i in 0..12u8 {
        let key = vec![b'k', i];
        let value = vec![i; 20 + usize::from(i)];
        ns.set(&key, &value, 1).unwrap();
        written.push((key, value));
    }
    let (file, _) = ns.current_position();
    drop(ns);
    for kind in ["d", "i"] {
        let path = if kind == "d" {
            format!("{DAT}/default/d{file}")
        } else {
            format!("{IDX}/default/i{file}")
        };
        let full = sim.read_file(Path::new(&path)).unwrap();
        for cut in 0..full.len() {
            let copy = sim.power_cut();
            copy.write_file(Path::new(&path), &full[..cut]);
            let mut ns = open(&copy, true);
            // Every entry whose data survived whole must read back; nothing reads wrong.
            for (key, value) in &written {
                if let Some(v) = ns.get(key).unwrap() {
                    assert_eq!(&v, value);
                }
            }
            if kind == "i" {
                // The data file is whole: re-indexing must bring every key back.
                for (key, value) in &written {
                    assert_eq!(
                        ns.get(key).unwrap().as_ref(),
                        Some(value),
                        "index cut at {cut}"
                    );
                }
            }
            ns.set(b"new", b"entry", 1).unwrap();
            let again = open(&copy, true);
            assert_eq!(again.get(b"new").unwrap().as_deref(), Some(&b"entry"[..]));
        }
        // Garbage appended is cut too.
        let copy = sim.power_cut();
        let mut junk = full.clone();
        junk.extend_from_slice(&[0xAB; 77]);
        copy.write_file(Path::new(&path), &junk);
        let ns = open(&copy, true);
        for (key, value) in &written {
            assert_eq!(ns.get(key).unwrap().as_ref(), Some(value));
        }
    }
}

#[test]
fn full_disk_poisons_and_keeps_acknowledged_data() {
    let sim = SimStorage::new();
    let mut ns = open(&sim, true);
    sim.set_capacity(Some(20_000));
    let mut acked = Vec::new();
    let err = loop {
        let key = format!("k{}", acked.len()).into_bytes();
        match ns.set(&key, &[7u8; 500], 1) {
            Ok(_) => acked.push(key),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, OpError::DataWrite | OpError::IndexWrite),
        "{err:?}"
    );
    assert_eq!(ns.set(b"more", b"x", 1).unwrap_err(), OpError::Poisoned);
    assert!(ns.poisoned().is_some());
    for k in &acked {
        assert!(ns.get(k).unwrap().is_some());
    }
    sim.set_capacity(None);
    let ns = open(&sim, true);
    for k in &acked {
        assert_eq!(ns.get(k).unwrap().as_deref(), Some(&[7u8; 500][..]));
    }
}

#[test]
fn failed_fsync_poisons() {
    let sim = SimStorage::new();
    let mut ns = open(&sim, true);
    ns.set(b"a", b"1", 1).unwrap();
    sim.fail_syncs(true);
    assert_eq!(ns.set(b"b", b"2", 1).unwrap_err(), OpError::DataWrite);
    sim.fail_syncs(false);
    assert_eq!(ns.set(b"c", b"3", 1).unwrap_err(), OpError::Poisoned);
}

#[test]
fn bit_flips_in_value_key_or_length_are_caught() {
    let sim = SimStorage::new();
    let mut ns = open(&sim, true);
    ns.set(b"key", b"some value", 1).unwrap();
    let path = format!("{DAT}/default/d0");
    let clean = sim.read_file(Path::new(&path)).unwrap();
    let entry = crate::format::data::HEADER_LEN;
    // Every bit of the entry: length field, CRC field, key and value.
    for byte in entry + 1..clean.len() {
        if (entry + 5..entry + 9).contains(&byte) || (entry + 13..entry + 18).contains(&byte) {
            continue; // `previous`, flags and timestamp are not covered by the CRC
        }
        for bit in 0..8 {
            let mut bad = clean.clone();
            bad[byte] ^= 1 << bit;
            sim.write_file(Path::new(&path), &bad);
            let res = ns.get(b"key");
            assert!(
                matches!(res, Err(OpError::Corrupted)),
                "byte {byte} bit {bit}: {res:?}"
            );
            assert_eq!(ns.check(b"key"), CheckResult::Corrupted);
        }
    }
    sim.write_file(Path::new(&path), &clean);
    assert_eq!(ns.get(b"key").unwrap().as_deref(), Some(&b"some value"[..]));
}

#[test]
fn overwrite_is_safe_between_append_and_flag() {
    // Crash after the new index entry is appended but before the old one is flagged:
    // both entries are live on disk, and the newer one must win.
    let sim = SimStorage::new();
    let mut ns = open(&sim, true);
    ns.set(b"k", b"old", 1).unwrap();
    ns.set(b"k", b"new", 1).unwrap();
    drop(ns);
    let path = format!("{IDX}/default/i0");
    let mut idx = sim.read_file(Path::new(&path)).unwrap();
    let first = crate::format::index::HEADER_LEN + crate::format::index::FLAGS_OFFSET;
    assert_eq!(idx[first], crate::format::FLAG_DELETED);
    idx[first] = 0;
    sim.write_file(Path::new(&path), &idx);
    let ns = open(&sim, true);
    assert_eq!(ns.get(b"k").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(ns.entries(), 1);
}

#[test]
fn group_commit_makes_writes_durable_once_waited() {
    let sim = SimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    storage.create_dir_all(Path::new(IDX)).unwrap();
    storage.create_dir_all(Path::new(DAT)).unwrap();
    let cfg = EngineConfig {
        group_commit: true,
        ..cfg(true)
    };
    let mut ns = Namespace::open(storage, Path::new(IDX), Path::new(DAT), b"default", cfg).unwrap();
    ns.set(b"a", b"1", 1).unwrap();
    let token = ns.commit_token().unwrap();
    ns.set(b"b", b"2", 1).unwrap();
    let token_b = ns.commit_token().unwrap();
    // Not yet waited: a power cut may lose both.
    assert_eq!(open(&sim.power_cut(), true).get(b"b").unwrap(), None);
    // One wait covers every write noted before it.
    ns.durability().wait_blocking(token).unwrap();
    ns.durability().wait_blocking(token_b).unwrap();
    let after = open(&sim.power_cut(), true);
    assert_eq!(after.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(after.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    // A SET finding its value already there, written by a SET still waiting for its fsync,
    // waits for that fsync too.
    ns.set(b"e", b"5", 1).unwrap();
    let token_e = ns.commit_token().unwrap();
    assert_eq!(ns.set(b"e", b"5", 1), Ok(SetOutcome::Unchanged));
    let token_same = ns.commit_token().expect("an unchanged SET waits too");
    assert!(token_same >= token_e);
    assert_eq!(open(&sim.power_cut(), true).get(b"e").unwrap(), None);
    ns.durability().wait_blocking(token_same).unwrap();
    assert_eq!(
        open(&sim.power_cut(), true).get(b"e").unwrap().as_deref(),
        Some(&b"5"[..])
    );
    sim.fail_syncs(true);
    ns.set(b"c", b"3", 1).unwrap();
    let token_c = ns.commit_token().unwrap();
    assert_eq!(
        ns.durability().wait_blocking(token_c),
        Err(OpError::DataWrite)
    );
    assert_eq!(ns.set(b"d", b"4", 1).unwrap_err(), OpError::Poisoned);
}

/// A namespace with several closed pairs full of overwritten and deleted keys.
fn churned(sim: &SimStorage) -> (Namespace, HashMap<Vec<u8>, Vec<u8>>) {
    let mut ns = open(sim, true);
    let mut live = HashMap::new();
    for round in 0..10u8 {
        for i in 0..30u8 {
            let key = vec![b'k', i];
            if (i + round) % 5 == 0 {
                if live.remove(&key).is_some() {
                    ns.del(&key, 1).unwrap();
                }
                continue;
            }
            let value = vec![round ^ i; 40 + usize::from(i)];
            ns.set(&key, &value, 1).unwrap();
            live.insert(key, value);
        }
    }
    (ns, live)
}

fn assert_serves(ns: &Namespace, live: &HashMap<Vec<u8>, Vec<u8>>) {
    for (k, v) in live {
        assert_eq!(ns.get(k).unwrap().as_ref(), Some(v), "key {k:?}");
    }
    assert_eq!(ns.entries(), live.len() as u64);
    let report = ns.check_all();
    assert!(report.clean(), "{}", report.render());
}

fn disk_bytes(sim: &SimStorage, ns: &Namespace) -> usize {
    let (file, _) = ns.current_position();
    (0..=file)
        .map(|f| {
            sim.read_file(Path::new(&format!("{DAT}/default/d{f}")))
                .map_or(0, |b| b.len())
                + sim
                    .read_file(Path::new(&format!("{IDX}/default/i{f}")))
                    .map_or(0, |b| b.len())
        })
        .sum()
}

#[test]
fn compaction_reclaims_space_and_keeps_every_live_key() {
    let sim = SimStorage::new();
    let (mut ns, live) = churned(&sim);
    assert!(ns.compactable_files().len() >= 3);
    let before = disk_bytes(&sim, &ns);
    let dead_before = ns.dead_bytes();
    for f in ns.compactable_files() {
        if let Some(plan) = ns.compact_plan(f) {
            let built = plan.build().unwrap();
            ns.compact_commit(built).unwrap();
        }
    }
    assert!(disk_bytes(&sim, &ns) < before, "nothing reclaimed");
    assert!(ns.dead_bytes() < dead_before);
    assert_serves(&ns, &live);
    // Nothing left to do, and the result opens again (also after a power cut).
    assert!(
        ns.compactable_files()
            .iter()
            .all(|&f| ns.compact_plan(f).is_none())
    );
    drop(ns);
    assert_serves(&open(&sim.power_cut(), true), &live);
}

#[test]
fn compaction_survives_writes_between_plan_and_commit() {
    let sim = SimStorage::new();
    let (mut ns, mut live) = churned(&sim);
    let plan = ns.compact_plan(0).unwrap();
    let built = plan.build().unwrap();
    // Meanwhile: overwrite and delete keys whose live version is in pair 0.
    let in_zero: Vec<Vec<u8>> = live
        .keys()
        .filter(|k| ns.keys.get(k).unwrap().file == 0)
        .cloned()
        .collect();
    for (n, k) in in_zero.iter().enumerate() {
        if n % 2 == 0 {
            ns.del(k, 1).unwrap();
            live.remove(k);
        } else {
            ns.set(k, b"newer", 1).unwrap();
            live.insert(k.clone(), b"newer".to_vec());
        }
    }
    ns.compact_commit(built).unwrap();
    assert_serves(&ns, &live);
    drop(ns);
    assert_serves(&open(&sim, true), &live);
}

#[test]
fn compaction_crash_at_every_step_opens_with_every_live_key() {
    for step in 0..4 {
        let sim = SimStorage::new();
        let (ns, live) = churned(&sim);
        let plan = ns.compact_plan(1).unwrap();
        let _built = plan.build().unwrap();
        let (i1, d1) = (format!("{IDX}/default/i1"), format!("{DAT}/default/d1"));
        let storage: Arc<dyn Storage> = Arc::new(sim.clone());
        if step >= 1 {
            crate::storage::write_atomic(
                &*storage,
                Path::new(&format!("{IDX}/default/compact-1")),
                b"1",
            )
            .unwrap();
        }
        if step >= 2 {
            storage
                .rename(Path::new(&format!("{d1}.compact")), Path::new(&d1))
                .unwrap();
            storage
                .sync_dir(Path::new(&format!("{DAT}/default")))
                .unwrap();
        }
        if step >= 3 {
            storage
                .rename(Path::new(&format!("{i1}.compact")), Path::new(&i1))
                .unwrap();
            storage
                .sync_dir(Path::new(&format!("{IDX}/default")))
                .unwrap();
        }
        drop(ns);
        let after = open(&sim.power_cut(), true);
        assert_serves(&after, &live);
    }
}

/// Power cuts at random points *inside* operations (after the n-th write, sync, rename...),
/// under a random load: with `--sync` every acknowledged write survives and the one in flight
/// is either old or new; without it the namespace opens clean with only written versions.
#[test]
fn power_cut_at_random_points() {
    let mut rng = StdRng::seed_from_u64(23);
    for trial in 0..150 {
        let sync = trial % 2 == 0;
        let sim = SimStorage::new();
        let mut ns = open(&sim, sync);
        let mut model = Model::default();
        sim.arm_power_cut(rng.gen_range(1..400));
        let mut acked_at_cut = None;
        let mut in_flight = None;
        for step in 0..300 {
            let before = model.acked.clone();
            random_op(&mut ns, &mut rng, &mut model, step);
            if sim.cut_happened() {
                in_flight = model
                    .history
                    .keys()
                    .find(|k| model.acked.get(*k) != before.get(*k))
                    .cloned();
                acked_at_cut = Some(before);
                break;
            }
        }
        let Some(acked) = acked_at_cut else { continue };
        let after = open(&sim.cut_image().unwrap(), sync);
        for (key, versions) in &model.history {
            let got = after.get(key).unwrap();
            if sync && Some(key) != in_flight.as_ref() {
                let want = acked.get(key).cloned().flatten();
                assert_eq!(
                    got, want,
                    "trial {trial}: acknowledged write lost for {key:?}"
                );
            } else if let Some(v) = got {
                assert!(
                    versions.contains(&Some(v)),
                    "trial {trial}: garbage for {key:?}"
                );
            }
        }
        let report = after.check_all();
        assert!(report.clean(), "trial {trial}: {}", report.render());
    }
}

#[test]
fn nscheck_catches_every_flip_in_index_fields_checked_against_data() {
    let sim = SimStorage::new();
    let mut ns = open(&sim, true);
    ns.set(b"key", b"some value", 1234).unwrap();
    let path = format!("{IDX}/default/i0");
    let clean = sim.read_file(Path::new(&path)).unwrap();
    assert!(ns.check_all().clean());
    let entry = crate::format::index::HEADER_LEN;
    // idlength, offset, length, timestamp, crc and key: everything the data header repeats.
    let fields = (0..9).chain(18..26).chain(34..37);
    for byte in fields {
        for bit in 0..8 {
            let mut bad = clean.clone();
            bad[entry + byte] ^= 1 << bit;
            sim.write_file(Path::new(&path), &bad);
            let report = ns.check_all();
            assert!(
                !report.clean(),
                "flip at entry byte {byte} bit {bit} not caught"
            );
        }
    }
    sim.write_file(Path::new(&path), &clean);
    assert!(ns.check_all().clean());
}

fn open_seq(sim: &SimStorage) -> Namespace {
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    storage.create_dir_all(Path::new(IDX)).unwrap();
    storage.create_dir_all(Path::new(DAT)).unwrap();
    let cfg = EngineConfig {
        run_mode: RunMode::Seq,
        ..cfg(true)
    };
    Namespace::open(storage, Path::new(IDX), Path::new(DAT), b"default", cfg).unwrap()
}

/// A SET's result stays register-sized (see [`SetOutcome`]): an error variant with a payload
/// would quietly bring back the stall that made it so.
#[test]
fn set_result_fits_a_register() {
    assert!(std::mem::size_of::<Result<SetOutcome, OpError>>() <= 8);
}

/// A sequential-mode SET of a new entry; returns its id.
fn append(ns: &mut Namespace, value: &[u8]) -> Vec<u8> {
    assert_eq!(ns.set(b"", value, 1), Ok(SetOutcome::Appended));
    ns.appended_id().to_vec()
}

/// A sequential namespace over several pairs, with updates (each consuming an id) and deletes.
fn churned_seq(sim: &SimStorage) -> (Namespace, HashMap<Vec<u8>, Vec<u8>>) {
    let mut ns = open_seq(sim);
    let mut live = HashMap::new();
    let mut ids = Vec::new();
    for i in 0..120u8 {
        let value = vec![i; 50 + usize::from(i % 30)];
        let id = append(&mut ns, &value);
        live.insert(id.clone(), value);
        ids.push(id);
    }
    for (n, id) in ids.iter().enumerate() {
        if n % 3 == 0 {
            let value = vec![0xEE; 20 + n % 7];
            ns.set(id, &value, 1).unwrap();
            live.insert(id.clone(), value);
        } else if n % 7 == 1 {
            ns.del(id, 1).unwrap();
            live.remove(id);
        }
    }
    (ns, live)
}

#[test]
fn sequential_compaction_keeps_slots_and_values() {
    let sim = SimStorage::new();
    let (mut ns, live) = churned_seq(&sim);
    let next_before = ns.next_entry();
    let before = disk_bytes(&sim, &ns);
    for f in ns.compactable_files() {
        if let Some(plan) = ns.compact_plan(f) {
            let built = plan.build().unwrap();
            ns.compact_commit(built).unwrap();
        }
    }
    assert!(disk_bytes(&sim, &ns) < before, "nothing reclaimed");
    assert_eq!(ns.next_entry(), next_before, "slots must never be dropped");
    assert_serves(&ns, &live);
    // New ids continue where they were.
    let id = append(&mut ns, b"new");
    assert_eq!(id, next_before.to_le_bytes());
    drop(ns);
    let again = open_seq(&sim.power_cut());
    assert_eq!(again.get(&id).unwrap().as_deref(), Some(&b"new"[..]));
}

#[test]
fn sequential_compaction_crash_after_journal_is_finished_at_open() {
    for step in 0..3 {
        let sim = SimStorage::new();
        let (mut ns, live) = churned_seq(&sim);
        let plan = ns.compact_plan(0).unwrap();
        let built = plan.build().unwrap();
        if step == 2 {
            // The whole commit, then a crash before anything else.
            ns.compact_commit(built).unwrap();
        } else if step == 1 {
            // Journal durable and data renamed, patches not applied: open must finish them.
            let storage: Arc<dyn Storage> = Arc::new(sim.clone());
            let mut journal = String::from("seq\n");
            let plan = &built.plan;
            for (((off, hdr, _), m), (_, new)) in
                plan.live.iter().zip(&plan.slot_files).zip(&built.placed)
            {
                journal.push_str(&format!("{m} {off} 1 {} {new}\n", hdr.offset));
            }
            for (m, off) in &plan.dead_slots {
                journal.push_str(&format!("{m} {off} 14 0 {}\n", super::RECLAIMED));
            }
            crate::storage::write_atomic(
                &*storage,
                Path::new(&format!("{IDX}/default/compact-0")),
                journal.as_bytes(),
            )
            .unwrap();
            let d0 = format!("{DAT}/default/d0");
            storage
                .rename(Path::new(&format!("{d0}.compact")), Path::new(&d0))
                .unwrap();
            storage
                .sync_dir(Path::new(&format!("{DAT}/default")))
                .unwrap();
        }
        drop(ns);
        let after = open_seq(&sim.power_cut());
        assert_serves(&after, &live);
    }
}

/// Every live key answers its model value through `get` (twice: the second read comes from
/// the cache), and nothing else answers.
fn assert_reads(ns: &Namespace, live: &HashMap<Vec<u8>, Vec<u8>>, gone: &[Vec<u8>]) {
    for _ in 0..2 {
        for (k, v) in live {
            assert_eq!(ns.get(k).unwrap().as_ref(), Some(v), "key {k:?}");
        }
        for k in gone {
            assert_eq!(ns.get(k).unwrap(), None, "key {k:?}");
        }
    }
}

#[test]
fn read_cache_never_serves_bytes_that_were_rewritten() {
    // Every value has the same length, and every version is read (so cached) while it is
    // live: whatever lands later at a cached position must not be answered from memory.
    // Tiny and large caches: evictions, and everything kept.
    for bytes in [2_000, 1 << 20] {
        let cache = Arc::new(ReadCache::new(bytes).unwrap());
        for seq in [false, true] {
            let sim = SimStorage::new();
            let mut ns = if seq {
                open_seq(&sim)
            } else {
                open(&sim, true)
            };
            ns.set_read_cache(Some(cache.clone()));
            let mut live: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let mut gone = Vec::new();
            for round in 0..8u8 {
                for i in 0..20u8 {
                    let value = vec![round.wrapping_mul(31) ^ i; 60];
                    let key = if seq {
                        match live.keys().find(|k| k[0] == i) {
                            Some(k) => k.clone(),
                            None => {
                                live.insert(append(&mut ns, &value), value);
                                continue;
                            }
                        }
                    } else {
                        vec![b'k', i]
                    };
                    if !seq && (i + round) % 5 == 0 {
                        if live.remove(&key).is_some() {
                            ns.del(&key, 1).unwrap();
                            gone.push(key);
                        }
                        continue;
                    }
                    ns.set(&key, &value, 1).unwrap();
                    live.insert(key, value);
                }
                gone.retain(|k| !live.contains_key(k));
                assert_reads(&ns, &live, &gone);
            }
            for f in ns.compactable_files() {
                if let Some(plan) = ns.compact_plan(f) {
                    ns.compact_commit(plan.build().unwrap()).unwrap();
                    assert_reads(&ns, &live, &gone);
                }
            }
            if !seq {
                // Compaction moves a live value to where a dead one was read: "a" and "b" are
                // read in pair N, "a" is overwritten, and compacting N puts "b" at "a"'s offset.
                ns.jump().unwrap();
                let (n, _) = ns.current_position();
                for k in [&b"a"[..], b"b"] {
                    let v = vec![k[0]; 60];
                    ns.set(k, &v, 1).unwrap();
                    live.insert(k.to_vec(), v);
                }
                assert_reads(&ns, &live, &gone);
                ns.jump().unwrap();
                ns.set(b"a", &[b'A'; 60], 1).unwrap();
                live.insert(b"a".to_vec(), vec![b'A'; 60]);
                let plan = ns.compact_plan(n).unwrap();
                ns.compact_commit(plan.build().unwrap()).unwrap();
                assert_reads(&ns, &live, &gone);
                // FLUSH twice: the second time the same keys land, in reverse order, at the
                // offsets where the first ones were read.
                let old: Vec<Vec<u8>> = live.keys().cloned().collect();
                for pass in 0..2u8 {
                    ns.flush().unwrap();
                    live.clear();
                    let mut keys: Vec<&Vec<u8>> = old.iter().take(10).collect();
                    if pass == 1 {
                        keys.reverse();
                    }
                    for (n, k) in keys.into_iter().enumerate() {
                        let v = vec![0xA5 ^ n as u8 ^ pass; 60];
                        ns.set(k, &v, 1).unwrap();
                        live.insert(k.clone(), v);
                    }
                    assert_reads(&ns, &live, &old[10..]);
                }
            }
            assert!(cache.weight() <= bytes);
        }
    }
}

#[test]
fn read_cache_serves_verified_values_and_check_reads_the_file() {
    let sim = SimStorage::new();
    let mut ns = open(&sim, true);
    ns.set_read_cache(ReadCache::new(1 << 20).map(Arc::new));
    ns.set(b"key", b"some value", 1).unwrap();
    let path = format!("{DAT}/default/d0");
    let clean = sim.read_file(Path::new(&path)).unwrap();
    let mut bad = clean.clone();
    *bad.last_mut().unwrap() ^= 1;
    // A value first read while corrupt is refused and not kept.
    sim.write_file(Path::new(&path), &bad);
    assert_eq!(ns.get(b"key"), Err(OpError::Corrupted));
    sim.write_file(Path::new(&path), &clean);
    assert_eq!(ns.get(b"key").unwrap().as_deref(), Some(&b"some value"[..]));
    // Once verified and kept, GET answers from memory; CHECK still reads the disk.
    sim.write_file(Path::new(&path), &bad);
    assert_eq!(ns.get(b"key").unwrap().as_deref(), Some(&b"some value"[..]));
    assert_eq!(ns.check(b"key"), CheckResult::Corrupted);
    // A failed write draws a new epoch: nothing read before it is served from memory.
    let epoch = ns.files.epoch();
    sim.fail_syncs(true);
    assert_eq!(ns.set(b"b", b"2", 1).unwrap_err(), OpError::DataWrite);
    assert_ne!(ns.files.epoch(), epoch);
    assert_eq!(ns.get(b"key"), Err(OpError::Corrupted));
}
