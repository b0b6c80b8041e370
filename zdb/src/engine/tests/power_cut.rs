//! Power cuts (the simulator's durable image) with and without `--sync`: acknowledged writes
//! survive, nothing half-written is served.
#![expect(clippy::unwrap_used, reason = "tests")]

use super::*;

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
