//! In-memory index of user-mode keys, compact: about 34 bytes + key length + 1 per live key.
//!
//! Keys live back to back in an arena of fixed 1 MiB chunks (a length byte, then the key), so
//! there is no per-key allocation and no doubling slack. The hash table holds 20-byte slots:
//! a 32-bit arena reference and the 16-byte location. No bucket array is preallocated (0-db
//! reserves 2^24 buckets up front); the table grows by doubling, so its load factor stays
//! between 7/16 and 7/8 (20 bytes + 1 control byte per bucket).
//!
//! Deleted keys leave dead bytes in the arena; once they outweigh the live ones the arena is
//! rebuilt. The arena addresses at most 4 GiB of keys (4096 chunks).

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

/// Where the current version of a key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// File pair number (index file N, data file N).
    pub file: u32,
    /// Offset of the index entry in `iN`.
    pub idx_off: u32,
    /// Offset of the data entry in `dN`.
    pub data_off: u32,
    /// Value length.
    pub len: u32,
}

#[derive(Clone, Copy)]
struct Slot {
    key: u32,
    loc: Loc,
}

const CHUNK_BITS: u32 = 20;
const CHUNK: usize = 1 << CHUNK_BITS;
const MAX_CHUNKS: usize = 1 << (32 - CHUNK_BITS);

#[derive(Default)]
struct Arena {
    chunks: Vec<Vec<u8>>,
    live: u64,
    dead: u64,
}

impl Arena {
    fn get(&self, r: u32) -> &[u8] {
        let (c, off) = ((r >> CHUNK_BITS) as usize, (r as usize) & (CHUNK - 1));
        let Some(chunk) = self.chunks.get(c) else {
            return &[];
        };
        let len = chunk.get(off).copied().map_or(0, usize::from);
        chunk.get(off + 1..off + 1 + len).unwrap_or_default()
    }

    /// Where a key's bytes start, without reading them (for a prefetch hint).
    fn start(&self, r: u32) -> Option<&u8> {
        let (c, off) = ((r >> CHUNK_BITS) as usize, (r as usize) & (CHUNK - 1));
        self.chunks.get(c)?.get(off)
    }

    fn push(&mut self, key: &[u8]) -> Option<u32> {
        let need = key.len() + 1;
        if self.chunks.last().is_none_or(|c| c.len() + need > CHUNK) {
            if self.chunks.len() >= MAX_CHUNKS {
                return None;
            }
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let c = self.chunks.len() - 1;
        let chunk = self.chunks.last_mut()?;
        let off = chunk.len();
        chunk.push(u8::try_from(key.len()).ok()?);
        chunk.extend_from_slice(key);
        self.live += need as u64;
        Some(((c as u32) << CHUNK_BITS) | off as u32)
    }

    fn bytes(&self) -> u64 {
        (self.chunks.len() * CHUNK) as u64
    }
}

/// Live user-mode keys.
pub struct KeyMap {
    table: HashTable<Slot>,
    arena: Arena,
    /// Seeded per namespace (random for a new map, kept by the snapshot), so a snapshot
    /// written in table order reloads in table order: sequential instead of random memory.
    seed: u64,
    hasher: FixedState,
}

impl Default for KeyMap {
    fn default() -> Self {
        // A random seed, as a std `HashMap` would pick (keys are client-chosen).
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        KeyMap::with_seed(seed)
    }
}

/// The arena is full (4 GiB of keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMapFull;

impl KeyMap {
    /// An empty map hashing with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        KeyMap {
            table: HashTable::new(),
            arena: Arena::default(),
            seed,
            hasher: FixedState::with_seed(seed),
        }
    }

    /// The hash seed (saved with a snapshot).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Adds a key known to be absent (snapshot restore: no comparison, no probe for it).
    pub fn insert_new(&mut self, key: &[u8], loc: Loc) -> Result<(), KeyMapFull> {
        let hash = self.hasher.hash_one(key);
        let r = self.arena.push(key).ok_or(KeyMapFull)?;
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.table.insert_unique(hash, Slot { key: r, loc }, |s| {
            hasher.hash_one(arena.get(s.key))
        });
        Ok(())
    }

    /// Every live key with its location, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Loc)> {
        self.table.iter().map(|s| (self.arena.get(s.key), s.loc))
    }

    /// Location of a live key.
    pub fn get(&self, key: &[u8]) -> Option<Loc> {
        self.get_hashed(self.hasher.hash_one(key), key)
    }

    fn get_hashed(&self, hash: u64, key: &[u8]) -> Option<Loc> {
        self.table
            .find(hash, |s| self.arena.get(s.key) == key)
            .map(|s| s.loc)
    }

    /// Locations of several keys, as [`KeyMap::get`] of each would give, appended to `out`;
    /// faster for a batch since the cache misses of different keys overlap: a first pass hints
    /// each key's table slot, a second the key bytes that slot points to in the arena, and only
    /// the third compares and reads.
    pub fn get_many(&self, keys: &[&[u8]], out: &mut Vec<Option<Loc>>) {
        const BATCH: usize = 16;
        let mut hashes = [0u64; BATCH];
        let mut slots: [Option<&Slot>; BATCH] = [None; BATCH];
        for keys in keys.chunks(BATCH) {
            for ((h, slot), key) in hashes.iter_mut().zip(&mut slots).zip(keys) {
                *h = self.hasher.hash_one(key);
                // The first slot whose 7 hash bits match: nearly always the key's own.
                *slot = self.table.iter_hash(*h).next();
                if let Some(slot) = slot {
                    super::prefetch::object(*slot);
                }
            }
            for slot in slots[..keys.len()].iter().flatten() {
                if let Some(start) = self.arena.start(slot.key) {
                    super::prefetch::object(start);
                }
            }
            out.extend(
                hashes
                    .iter()
                    .zip(keys)
                    .map(|(h, key)| self.get_hashed(*h, key)),
            );
        }
    }

    /// Insert or replace; returns the previous location.
    pub fn insert(&mut self, key: &[u8], loc: Loc) -> Result<Option<Loc>, KeyMapFull> {
        let hash = self.hasher.hash_one(key);
        let (arena, hasher) = (&self.arena, &self.hasher);
        // One probe for both outcomes: the vacant entry keeps its slot for the insert.
        match self.table.entry(
            hash,
            |s| arena.get(s.key) == key,
            |s| hasher.hash_one(arena.get(s.key)),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut e) => {
                Ok(Some(std::mem::replace(&mut e.get_mut().loc, loc)))
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                let r = self.arena.push(key).ok_or(KeyMapFull)?;
                v.insert(Slot { key: r, loc });
                Ok(None)
            }
        }
    }

    /// Whether a new key of this length fits in the arena.
    pub fn has_room(&self, key_len: usize) -> bool {
        self.arena.chunks.len() < MAX_CHUNKS
            || self
                .arena
                .chunks
                .last()
                .is_some_and(|c| c.len() + key_len < CHUNK)
    }

    /// Remove; returns the location it had.
    pub fn remove(&mut self, key: &[u8]) -> Option<Loc> {
        let hash = self.hasher.hash_one(key);
        let arena = &self.arena;
        let entry = self
            .table
            .find_entry(hash, |s| arena.get(s.key) == key)
            .ok()?;
        let (slot, _) = entry.remove();
        let size = key.len() as u64 + 1;
        self.arena.live -= size;
        self.arena.dead += size;
        if self.arena.dead > self.arena.live && self.arena.dead > CHUNK as u64 {
            self.compact();
        }
        Some(slot.loc)
    }

    /// Rebuild the arena with live keys only.
    fn compact(&mut self) {
        let mut fresh = Arena::default();
        for slot in self.table.iter_mut() {
            // Cannot fail: the live keys fit where live and dead keys fitted before.
            if let Some(r) = fresh.push(self.arena.get(slot.key)) {
                slot.key = r;
            }
        }
        self.arena = fresh;
    }

    /// Make room for `additional` more keys at once.
    pub fn reserve(&mut self, additional: usize) {
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.table
            .reserve(additional, |s| hasher.hash_one(arena.get(s.key)));
    }

    /// Give back table space when far fewer keys are live than were reserved.
    pub fn shrink_if_sparse(&mut self) {
        if self.table.capacity() > 4 * self.table.len().max(1024) {
            let (arena, hasher) = (&self.arena, &self.hasher);
            self.table
                .shrink_to(self.table.len(), |s| hasher.hash_one(arena.get(s.key)));
        }
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.table.len()
    }
    /// No live keys.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
    /// Drop everything.
    pub fn clear(&mut self) {
        self.table = HashTable::new();
        self.arena = Arena::default();
    }
    /// All keys, in hash order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.table.iter().map(|s| self.arena.get(s.key))
    }
    /// Bytes of memory held (table buckets and arena chunks), for NSINFO `index_size_bytes`.
    pub fn memory_bytes(&self) -> u64 {
        let bucket = (std::mem::size_of::<Slot>() + 1) as u64;
        self.table.capacity() as u64 * bucket + self.arena.bytes()
    }
}

#[cfg(test)]
mod tests {
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
}
