//! The read cache never serves bytes that were rewritten, and CHECK always reads the disk.
#![expect(clippy::unwrap_used, reason = "tests")]

use super::*;

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
