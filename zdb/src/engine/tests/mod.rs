//! Engine tests on the in-memory storage (`storage::sim`): power cuts, torn tails, full disks,
//! bit flips, compaction, the read cache, the key map snapshot. This file holds the shared
//! set-up and models; each concept has its own file.
#![expect(clippy::unwrap_used, reason = "tests")]

mod compaction;
mod faults;
mod power_cut;
mod read_cache;
mod snapshot;

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
    open_with(sim, cfg(sync))
}

fn open_with(sim: &SimStorage, cfg: EngineConfig) -> Namespace {
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    storage.create_dir_all(Path::new(IDX)).unwrap();
    storage.create_dir_all(Path::new(DAT)).unwrap();
    Namespace::open(storage, Path::new(IDX), Path::new(DAT), b"default", cfg).unwrap()
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
