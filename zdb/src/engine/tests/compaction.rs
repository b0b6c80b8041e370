//! Compaction: space comes back, every live key stays, a crash at any step opens clean.
#![expect(clippy::unwrap_used, reason = "tests")]

use super::*;

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

/// Config whose data files hold every write of these tests: all the garbage stays in the
/// active pair, as with 60k 1 KiB values written three times under the default 256 MiB.
fn one_pair() -> EngineConfig {
    EngineConfig {
        datasize: 1 << 20,
        ..cfg(true)
    }
}

/// Three rounds of 60 keys in the active pair (two thirds dead) and some deletes; every write
/// durable (`--sync` without group commit).
fn churned_active_pair(sim: &SimStorage) -> (Namespace, HashMap<Vec<u8>, Vec<u8>>) {
    let mut ns = open_with(sim, one_pair());
    let mut live = HashMap::new();
    for round in 0..3u8 {
        for i in 0..60u8 {
            let key = vec![b'a', i];
            let value = vec![round ^ i; 100 + usize::from(i)];
            ns.set(&key, &value, 1).unwrap();
            live.insert(key, value);
        }
    }
    for i in (0..60u8).step_by(7) {
        let key = vec![b'a', i];
        ns.del(&key, 1).unwrap();
        live.remove(&key);
    }
    assert_eq!(ns.current_position().0, 0, "everything in the active pair");
    assert!(ns.active_dead_bytes() > 0);
    (ns, live)
}

/// What COMPACT does: close the active pair if it holds dead bytes, rewrite the closed ones.
fn compact_with_active(ns: &mut Namespace) {
    ns.rotate_for_compaction(1).unwrap();
    for f in ns.compactable_files() {
        if let Some(plan) = ns.compact_plan(f) {
            ns.compact_commit(plan.build().unwrap()).unwrap();
        }
    }
}

#[test]
fn compaction_reaches_the_dead_bytes_of_the_active_pair() {
    let sim = SimStorage::new();
    let (mut ns, live) = churned_active_pair(&sim);
    // Closed pairs alone: nothing to do, the garbage sits in the active one.
    assert!(ns.compactable_files().is_empty());
    let before = disk_bytes(&sim, &ns);
    compact_with_active(&mut ns);
    let after = disk_bytes(&sim, &ns);
    assert!(after * 2 <= before, "before {before} after {after}");
    assert_eq!(ns.active_dead_bytes(), 0);
    assert_serves(&ns, &live);
    // A second COMPACT finds nothing to close or rewrite.
    assert_eq!(
        ns.rotate_for_compaction(1).unwrap().map(|r| r.new_index),
        None
    );
    drop(ns);
    assert_serves(&open_with(&sim.power_cut(), one_pair()), &live);
}

/// Runs `act` on the namespace `setup` builds, with a power cut armed after its 1st, 2nd, ...
/// mutating step (every write, fsync, rename and removal counts), until `act` finishes before
/// the cut; after each cut the namespace must open with every live key and check clean.
fn survives_a_power_cut_at_every_step(
    setup: impl Fn(&SimStorage) -> (Namespace, HashMap<Vec<u8>, Vec<u8>>),
    act: impl Fn(&mut Namespace),
    reopen: impl Fn(&SimStorage) -> Namespace,
) {
    let mut cuts = 0;
    for step in 1.. {
        let sim = SimStorage::new();
        let (mut ns, live) = setup(&sim);
        sim.arm_power_cut(step);
        act(&mut ns);
        let Some(image) = sim.cut_image() else {
            break;
        };
        cuts += 1;
        drop(ns);
        let after = reopen(&image);
        for (k, v) in &live {
            assert_eq!(
                after.get(k).as_ref(),
                Ok(&Some(v.clone())),
                "cut after step {step}: key {k:?}"
            );
        }
        assert_serves(&after, &live);
    }
    assert!(cuts > 10, "only {cuts} steps");
}

/// Closing the active pair and rewriting it (COMPACT with all the garbage in the active pair).
#[test]
fn compaction_of_the_active_pair_survives_a_power_cut_at_every_step() {
    survives_a_power_cut_at_every_step(churned_active_pair, compact_with_active, |sim| {
        open_with(sim, one_pair())
    });
}

/// Rewriting closed pairs. A journal made durable before the rewritten files' names were
/// rolled a lone new index forward over the old data file: its values read as corrupted.
#[test]
fn compaction_of_closed_pairs_survives_a_power_cut_at_every_step() {
    survives_a_power_cut_at_every_step(
        |sim| {
            // Closed pairs holding live entries (odd keys) beside dead ones (even keys).
            let mut ns = open(sim, true);
            let mut live = HashMap::new();
            for round in 0..2u8 {
                for i in 0..120u8 {
                    if round == 1 && i % 2 == 1 {
                        continue;
                    }
                    let (key, value) = (vec![b'm', i], vec![round ^ i; 40]);
                    ns.set(&key, &value, 1).unwrap();
                    live.insert(key, value);
                }
            }
            ns.jump().unwrap();
            (ns, live)
        },
        |ns| {
            // Every closed pair, live entries moved included.
            for f in ns.compactable_files() {
                if let Some(plan) = ns.compact_plan(f) {
                    ns.compact_commit(plan.build().unwrap()).unwrap();
                }
            }
        },
        |sim| open(sim, true),
    );
}

/// Sequential mode: the data file is replaced and the slots patched from the journal.
#[test]
fn sequential_compaction_survives_a_power_cut_at_every_step() {
    survives_a_power_cut_at_every_step(
        churned_seq,
        |ns| {
            let plan = ns.compact_plan(0).unwrap();
            ns.compact_commit(plan.build().unwrap()).unwrap();
        },
        open_seq,
    );
}
