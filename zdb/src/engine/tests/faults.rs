//! Faults on the way in and out: torn tails, full disks, failed fsyncs, flipped bits.
#![expect(clippy::unwrap_used, reason = "tests")]

use super::*;

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

/// A check walked in small steps (the server lets writers in between them) reports what one
/// pass reports, corruption included; files rewritten between two steps start it over.
#[test]
fn a_check_in_steps_reports_what_one_pass_does() {
    let sim = SimStorage::new();
    let (mut ns, _) = churned(&sim);
    // Corrupt one value in a closed data file (its CRC no longer matches).
    let path = format!("{DAT}/default/d1");
    let mut bytes = sim.read_file(Path::new(&path)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    sim.write_file(Path::new(&path), &bytes);
    let whole = ns.check_all();
    assert!(!whole.clean());
    for budget in [1, 3, 17] {
        let (mut cursor, mut report) = (CheckCursor::default(), CheckReport::default());
        let mut steps = 0;
        while !ns.check_step(&mut cursor, &mut report, budget) {
            steps += 1;
        }
        assert!(steps > 10, "budget {budget}: {steps} steps");
        assert_eq!(report, whole, "budget {budget}");
        assert_eq!(cursor.restarts, 0);
    }
    // A write between steps is checked too; a rewrite (compaction) restarts the walk.
    let (mut cursor, mut report) = (CheckCursor::default(), CheckReport::default());
    assert!(!ns.check_step(&mut cursor, &mut report, 5));
    ns.set(b"late", b"write", 1).unwrap();
    let plan = ns.compact_plan(0).unwrap();
    ns.compact_commit(plan.build().unwrap()).unwrap();
    while !ns.check_step(&mut cursor, &mut report, 5) {}
    assert_eq!(cursor.restarts, 1);
    assert_eq!(report, ns.check_all());
}

/// A SET's result stays register-sized (see [`SetOutcome`]): an error variant with a payload
/// would quietly bring back the stall that made it so.
#[test]
fn set_result_fits_a_register() {
    assert!(std::mem::size_of::<Result<SetOutcome, OpError>>() <= 8);
}
