//! Key map snapshots: a restore builds exactly what a replay builds, and any change to the
//! index files, or a torn or corrupt snapshot, means a replay.
#![expect(clippy::unwrap_used, reason = "tests")]

use crate::engine::keymap::Loc;
use crate::engine::namespace::Namespace;
use crate::engine::{EngineConfig, RunMode};
use crate::storage::Storage;
use crate::storage::sim::SimStorage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn open(sim: &SimStorage) -> Namespace {
    open_sized(sim, 4096)
}

fn open_sized(sim: &SimStorage, datasize: u32) -> Namespace {
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    storage.create_dir_all(Path::new("/i")).unwrap();
    storage.create_dir_all(Path::new("/d")).unwrap();
    let cfg = EngineConfig {
        datasize,
        sync: false,
        synctime: None,
        run_mode: RunMode::Mixed,
        group_commit: false,
    };
    Namespace::open(storage, Path::new("/i"), Path::new("/d"), b"ns", cfg).unwrap()
}

fn snap() -> &'static Path {
    Path::new("/i/ns/zdb-keymap.snapshot")
}

/// What a reopen computes, for comparing a restore with a replay. With `counters`, also
/// the entry count and dead bytes: a compaction makes the running figures differ from a
/// replay's (both estimates), and a snapshot keeps the running ones.
fn state(ns: &Namespace, counters: bool) -> String {
    let keys: BTreeMap<Vec<u8>, Loc> = ns.keys.iter().map(|(k, l)| (k.to_vec(), l)).collect();
    let mut s = format!(
        "keys {keys:?} live {} faults {} last_idx {} last_data {} sizes {:?} active {} {} {}",
        ns.data_size_bytes(),
        ns.stats.index_faults,
        ns.last_index_off,
        ns.last_data_off,
        ns.index_sizes,
        ns.active.id,
        ns.active.index_size,
        ns.active.data_size,
    );
    if counters {
        s += &format!(
            " next {} dead {} first {:?}",
            ns.next_entry,
            ns.dead_bytes(),
            ns.seq_first
        );
    }
    s
}

/// A namespace over several file pairs with overwrites, deletes and (odd seeds) one
/// compaction, saved with a snapshot.
fn churn(sim: &SimStorage, seed: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ns = open(sim);
    let mut model = BTreeMap::new();
    for step in 0..600 {
        let key = format!("k{}", rng.gen_range(0..120)).into_bytes();
        random_write(&mut ns, &mut rng, &mut model, key, 0.15, step as u8, 90);
        if step == 400
            && seed % 2 == 1
            && let Some(plan) = ns.compact_plan(1)
        {
            ns.compact_commit(plan.build().unwrap()).unwrap();
        }
    }
    ns.sync_now().unwrap();
    ns.save_snapshot().unwrap();
    model
}

/// Delete `key` with probability `del`, else set it to 1..`max_len` bytes of `fill`; the
/// model follows what was acknowledged.
fn random_write(
    ns: &mut Namespace,
    rng: &mut StdRng,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    key: Vec<u8>,
    del: f64,
    fill: u8,
    max_len: usize,
) {
    if rng.gen_bool(del) {
        if ns.del(&key, 1).is_ok() {
            model.remove(&key);
        }
    } else {
        let value = vec![fill; rng.gen_range(1..max_len)];
        ns.set(&key, &value, 1).unwrap();
        model.insert(key, value);
    }
}

fn serves(ns: &Namespace, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    assert_eq!(ns.entries(), model.len() as u64);
    for (k, v) in model {
        assert_eq!(ns.get(k).unwrap().as_ref(), Some(v));
    }
}

#[test]
fn a_restore_builds_exactly_what_a_replay_builds() {
    for seed in 0..8 {
        let sim = SimStorage::new();
        let model = churn(&sim, seed);
        // Saved with temp file, fsync, rename and folder fsync: it survives a power cut.
        let sim = sim.power_cut();
        let restored = open(&sim);
        assert!(restored.from_snapshot, "seed {seed}: snapshot not used");
        serves(&restored, &model);
        let a = state(&restored, seed % 2 == 0);
        drop(restored);
        sim.write_file(snap(), b"");
        let replayed = open(&sim);
        assert!(!replayed.from_snapshot);
        assert_eq!(a, state(&replayed, seed % 2 == 0), "seed {seed}");
    }
}

#[test]
fn a_replay_of_a_big_file_builds_what_the_writes_built() {
    // 120k overwrites and deletes of 60k keys in one file pair: the replay must arrive at
    // the same map and counters as the writes did.
    let sim = SimStorage::new();
    let mut ns = open_sized(&sim, 64 << 20);
    let mut rng = StdRng::seed_from_u64(3);
    let mut model = BTreeMap::new();
    for step in 0..120_000u32 {
        let key = format!("key{}", rng.gen_range(0..60_000)).into_bytes();
        random_write(&mut ns, &mut rng, &mut model, key, 0.1, step as u8, 20);
    }
    assert_eq!(ns.active.id, 0, "all in one file pair");
    ns.sync_now().unwrap();
    let written = state(&ns, true);
    drop(ns);
    let replayed = open_sized(&sim, 64 << 20);
    assert!(!replayed.from_snapshot);
    assert_eq!(state(&replayed, true), written);
    serves(&replayed, &model);
}

#[test]
fn any_change_to_the_index_files_means_a_replay() {
    let sim = SimStorage::new();
    let mut model = churn(&sim, 42);
    // A later write (its process died before the next clean shutdown): the index grew.
    let mut ns = open(&sim);
    assert!(ns.from_snapshot);
    ns.set(b"late", b"write", 1).unwrap();
    ns.sync_now().unwrap();
    drop(ns);
    model.insert(b"late".to_vec(), b"write".to_vec());
    let ns = open(&sim);
    assert!(!ns.from_snapshot);
    serves(&ns, &model);
    // The stale snapshot was dropped.
    assert!(sim.read_file(snap()).is_none());

    // A change in place, same length (as 0-db does when it flags an entry deleted).
    ns.save_snapshot().unwrap();
    drop(ns);
    let i0 = Path::new("/i/ns/i0");
    let mut bytes = sim.read_file(i0).unwrap();
    let flip = bytes.len() - 1;
    bytes[flip] ^= 1;
    sim.write_file(i0, &bytes);
    let ns = open(&sim);
    assert!(!ns.from_snapshot);
    // Restored file: the snapshot was discarded, so this replays too.
    bytes[flip] ^= 1;
    sim.write_file(i0, &bytes);
    drop(ns);
    assert!(!open(&sim).from_snapshot);
}

#[test]
fn a_torn_or_corrupt_snapshot_means_a_replay() {
    let sim = SimStorage::new();
    let model = churn(&sim, 9);
    let good = sim.read_file(snap()).unwrap();
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        good[..good.len() - 1].to_vec(),
        good[..good.len() / 2].to_vec(),
    ];
    for at in [0, 9, 30, good.len() / 2, good.len() - 2] {
        let mut b = good.clone();
        b[at] ^= 0x40;
        cases.push(b);
    }
    for (i, bad) in cases.into_iter().enumerate() {
        sim.write_file(snap(), &bad);
        let ns = open(&sim);
        assert!(!ns.from_snapshot, "case {i}");
        serves(&ns, &model);
    }
    sim.write_file(snap(), &good);
    assert!(open(&sim).from_snapshot);
}

#[test]
fn data_cut_behind_a_valid_snapshot_means_a_replay() {
    let sim = SimStorage::new();
    let _ = churn(&sim, 5);
    let ns = open(&sim);
    let last = ns.active.id;
    drop(ns);
    // The last data file lost its tail (the index, and so the snapshot, still match).
    let d = format!("/d/ns/d{last}");
    let bytes = sim.read_file(Path::new(&d)).unwrap();
    sim.write_file(Path::new(&d), &bytes[..bytes.len() - 3]);
    let ns = open(&sim);
    assert!(!ns.from_snapshot);
}
