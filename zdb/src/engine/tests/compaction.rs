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
