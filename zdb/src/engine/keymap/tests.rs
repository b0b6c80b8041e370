//! Key map behaviour against a `HashMap` model: inserts, overwrites, removes, growth, the
//! arena rebuild, batch lookups.
use super::*;

fn loc(n: u32) -> Loc {
    Loc {
        file: n,
        idx_off: n + 1,
        data_off: n + 2,
        len: n + 3,
    }
}

#[test]
fn answers_as_a_hash_map_does_through_growth_and_deletes() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut m, mut want) = (KeyMap::default(), std::collections::HashMap::new());
    for step in 0..200_000u32 {
        let key = format!("k{}", rng.gen_range(0..40_000u32)).into_bytes();
        // Mostly inserts early (growth), then as many deletes (tombstones, regrowth).
        if rng.gen_bool(if step < 100_000 { 0.2 } else { 0.5 }) {
            assert_eq!(m.remove(&key), want.remove(&key));
        } else {
            assert_eq!(m.insert(&key, loc(step)), Ok(want.insert(key, loc(step))));
        }
    }
    assert_eq!(m.len(), want.len());
    for (k, l) in &want {
        assert_eq!(m.get(k), Some(*l));
    }
    let key_bytes: usize = want.keys().map(Vec::len).sum();
    assert_eq!(m.key_bytes(), key_bytes as u64);
}

#[test]
fn a_full_table_grows_for_a_new_key_only() {
    let mut m = KeyMap::default();
    let mut i = 0u32;
    while !(m.full()) {
        assert_eq!(m.insert(format!("key-{i}").as_bytes(), loc(i)), Ok(None));
        i += 1;
    }
    let buckets = m.table.num_buckets();
    assert!(buckets >= 1024);
    assert_eq!(m.insert(b"key-0", loc(7)), Ok(Some(loc(0))));
    assert_eq!(
        m.table.num_buckets(),
        buckets,
        "an overwrite grew the table"
    );
    assert_eq!(m.insert(b"new", loc(8)), Ok(None));
    assert_eq!(m.table.num_buckets(), 2 * buckets);
    assert_eq!(m.get(b"key-0"), Some(loc(7)));
    assert_eq!(m.len() as u32, i + 1);
}

#[test]
fn insert_get_replace_remove_and_compact() {
    let mut m = KeyMap::default();
    for i in 0..50_000u32 {
        assert_eq!(m.insert(format!("key-{i}").as_bytes(), loc(i)), Ok(None));
    }
    assert_eq!(m.insert(b"key-7", loc(99)), Ok(Some(loc(7))));
    assert_eq!(m.get(b"key-7"), Some(loc(99)));
    for i in 0..45_000u32 {
        assert!(m.remove(format!("key-{i}").as_bytes()).is_some());
    }
    // Enough dead keys to have forced a compaction: survivors must still be found.
    for i in 45_000..50_000u32 {
        assert_eq!(m.get(format!("key-{i}").as_bytes()), Some(loc(i)));
    }
    assert_eq!(m.len(), 5_000);
    assert_eq!(m.get(b"key-1"), None);
    assert_eq!(m.keys().count(), 5_000);
    assert_eq!(std::mem::size_of::<Slot>(), 20);
}

#[test]
fn layout_finds_every_full_slot() {
    let mut m = KeyMap::default();
    for i in 0..3_000u32 {
        assert_eq!(m.insert(format!("key-{i}").as_bytes(), loc(i)), Ok(None));
    }
    let layout = m.layout().expect("a full bucket");
    let mut checked = 0;
    for i in 0..m.table.num_buckets() {
        if let Some(slot) = m.table.get_bucket(i) {
            assert_eq!(layout.slot(i), std::ptr::from_ref(slot));
            checked += 1;
        }
    }
    assert_eq!(checked, 3_000);
    // Every key survived the doublings done by `grow`.
    for i in 0..3_000u32 {
        assert_eq!(m.get(format!("key-{i}").as_bytes()), Some(loc(i)));
    }
}

#[test]
fn get_many_answers_as_get_does() {
    let mut m = KeyMap::default();
    for i in 0..1_000u32 {
        assert_eq!(m.insert(format!("key-{i}").as_bytes(), loc(i)), Ok(None));
    }
    // Present and absent keys, more than one batch, a duplicate, an empty and a long key.
    let names: Vec<Vec<u8>> = (990..1_030u32)
        .map(|i| format!("key-{i}").into_bytes())
        .chain([b"key-995".to_vec(), Vec::new(), vec![b'k'; 255]])
        .collect();
    let keys: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    let mut got = vec![Some(loc(7))];
    m.get_many(&keys, &mut got);
    let want: Vec<Option<Loc>> = std::iter::once(Some(loc(7)))
        .chain(keys.iter().map(|k| m.get(k)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.iter().flatten().count(), 1 + 10 + 1);
    m.get_many(&[], &mut got);
    assert_eq!(got.len(), want.len());
}
