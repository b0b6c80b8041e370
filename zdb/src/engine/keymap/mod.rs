//! In-memory index of user-mode keys, compact: about 34 bytes + key length + 1 per live key.
//!
//! Keys live back to back in an arena of fixed 1 MiB chunks (a length byte, then the key), so
//! there is no per-key allocation and no doubling slack. The hash table holds 20-byte slots:
//! a 32-bit arena reference and the 16-byte location. No bucket array is preallocated (0-db
//! reserves 2^24 buckets up front); the table grows by doubling ([`KeyMap::grow`], which moves
//! the slots with their keys' reads hinted ahead), so its load factor stays between 7/16 and
//! 7/8 (20 bytes + 1 control byte per bucket).
//!
//! Deleted keys leave dead bytes in the arena; once they outweigh the live ones the arena is
//! rebuilt. The arena addresses at most 4 GiB of keys (4096 chunks).

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

/// Where the current version of a key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

#[derive(Clone, Copy, Default)]
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

/// Where hashbrown keeps a table's slots and control bytes, reckoned from one full bucket's
/// index and address, for prefetch hints only: a wrong address fetches a useless line and
/// nothing else. hashbrown lays the slots out downwards from the control bytes (slot `i` just
/// below slot `i - 1`, slot 0 just below control byte 0), checked for the slots by
/// `layout_finds_every_full_slot`. A key's probe starts at its hash's low bits (its "home");
/// a new key takes the first free slot of the 16 from there, nearly always one of the first.
#[derive(Clone, Copy)]
struct Layout {
    index: usize,
    at: *const Slot,
    mask: usize,
}

impl Layout {
    fn of(table: &HashTable<Slot>) -> Option<Layout> {
        let index = table.iter_buckets().next()?;
        Some(Layout {
            index,
            at: std::ptr::from_ref(table.get_bucket(index)?),
            mask: table.num_buckets() - 1,
        })
    }

    fn home(self, hash: u64) -> usize {
        (hash as usize) & self.mask
    }

    fn slot(self, i: usize) -> *const Slot {
        self.at.wrapping_offset(self.index as isize - i as isize)
    }

    fn control(self, i: usize) -> *const u8 {
        self.slot(0).wrapping_add(1).cast::<u8>().wrapping_add(i)
    }

    /// Hint, for writing, the slot a new key with this hash will most likely fill, so that
    /// its SET does not stall on that cold line: the store would miss anyway, but the locked
    /// instructions after it (the namespace lock's release) and any load the CPU cannot
    /// forward from a store wait for it to drain: 8% of a pipelined SET's CPU without the
    /// hint. Given by the batch pass of a pipeline ([`KeyMap::get_many`]) and again by the
    /// SET itself before its appends ([`KeyMap::get_for_insert`]).
    fn hint_vacant(self, hash: u64) {
        // Slots `home` to `home + 8` (180 bytes, downwards): where 85% of new keys land in a
        // table filled by random keys (three quarters for `home` to `home + 4`).
        let low = self.slot(self.home(hash) + 8).cast::<u8>();
        for at in [0, 64, 128, 179] {
            super::prefetch::for_write(low.wrapping_add(at));
        }
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

    /// Adds a key known to be absent (snapshot restore, or a SET that just looked it up): no
    /// comparison, no probe for it.
    pub fn insert_new(&mut self, key: &[u8], loc: Loc) -> Result<(), KeyMapFull> {
        self.insert_absent(self.hasher.hash_one(key), key, loc)
    }

    fn insert_absent(&mut self, hash: u64, key: &[u8], loc: Loc) -> Result<(), KeyMapFull> {
        if self.full() {
            self.grow();
        }
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

    /// [`KeyMap::get`] for a key about to be written: when it is absent, the slot it will
    /// most likely fill is hinted for writing now, so that the line is in the cache by the
    /// time [`KeyMap::insert`] stores there, after the appends (see [`Layout::hint_vacant`]).
    pub fn get_for_insert(&self, key: &[u8]) -> Option<Loc> {
        let hash = self.hasher.hash_one(key);
        let found = self.get_hashed(hash, key);
        if found.is_none()
            && let Some(layout) = self.layout()
        {
            layout.hint_vacant(hash);
        }
        found
    }

    fn get_hashed(&self, hash: u64, key: &[u8]) -> Option<Loc> {
        self.table
            .find(hash, |s| self.arena.get(s.key) == key)
            .map(|s| s.loc)
    }

    /// Locations of several keys, as [`KeyMap::get`] of each would give, appended to `out`;
    /// faster for a batch since the cache misses of different keys overlap. Pass by pass,
    /// each hinting what the next reads: the control bytes where each key's probe starts,
    /// then the key's slot (or, for a new key, the free slot its SET will most likely fill),
    /// then the key bytes that slot points to in the arena; only the last pass compares.
    pub fn get_many(&self, keys: &[&[u8]], out: &mut Vec<Option<Loc>>) {
        const BATCH: usize = 16;
        let mut hashes = [0u64; BATCH];
        let mut slots: [Option<&Slot>; BATCH] = [None; BATCH];
        let layout = self.layout();
        for keys in keys.chunks(BATCH) {
            for (h, key) in hashes.iter_mut().zip(keys) {
                *h = self.hasher.hash_one(key);
                if let Some(layout) = layout {
                    super::prefetch::line(layout.control(layout.home(*h)));
                }
            }
            for (h, slot) in hashes.iter().zip(&mut slots).take(keys.len()) {
                // The first slot whose 7 hash bits match: nearly always the key's own.
                *slot = self.table.iter_hash(*h).next();
                match (*slot, layout) {
                    (Some(slot), _) => super::prefetch::object(slot),
                    (None, Some(layout)) => layout.hint_vacant(*h),
                    (None, None) => {}
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

    /// The table's [`Layout`]; None for a sparse table (after many deletes), where finding a
    /// full bucket to reckon from could mean a long walk over empty ones.
    fn layout(&self) -> Option<Layout> {
        if self.table.len() * 4 < self.table.num_buckets() {
            return None;
        }
        Layout::of(&self.table)
    }

    /// Insert or replace; returns the previous location.
    pub fn insert(&mut self, key: &[u8], loc: Loc) -> Result<Option<Loc>, KeyMapFull> {
        let hash = self.hasher.hash_one(key);
        let arena = &self.arena;
        // Not hashbrown's `entry`: it makes room before it looks, so an overwrite in a full
        // table would grow it, by hashbrown's own slow rehash. A new key's second probe finds
        // the control bytes the first one just read.
        if let Some(slot) = self.table.find_mut(hash, |s| arena.get(s.key) == key) {
            return Ok(Some(std::mem::replace(&mut slot.loc, loc)));
        }
        self.insert_absent(hash, key, loc).map(|()| None)
    }

    /// Whether a new key needs [`KeyMap::grow`] first. A full table is grown here before
    /// hashbrown would: its own growth rehashes every key in table order, which reads the keys
    /// from the arena in random order, one waiting cache miss per key (10% of a pipelined
    /// SET's CPU); `grow` moves the slots a batch at a time with those reads hinted ahead.
    /// The rule is hashbrown's: no room left (`capacity` counts live keys plus room; deleted
    /// keys' tombstones take room) and more than half the full capacity live; with fewer live
    /// keys hashbrown rehashes in place, without growing, and is left to. Small tables too.
    fn full(&self) -> bool {
        let (buckets, live) = (self.table.num_buckets(), self.table.len());
        buckets >= 1024 && self.table.capacity() == live && live + 1 > self.full_capacity() / 2
    }

    /// Keys the table's buckets hold at most (hashbrown's 7/8 load factor).
    fn full_capacity(&self) -> usize {
        self.table.num_buckets() / 8 * 7
    }

    /// Move every slot into a new table of twice as many buckets.
    fn grow(&mut self) {
        const BATCH: usize = 16;
        let capacity = self.full_capacity() + 1;
        let old = std::mem::replace(&mut self.table, HashTable::with_capacity(capacity));
        let (arena, hasher) = (&self.arena, &self.hasher);
        let mut layout: Option<Layout> = None;
        let mut batch = [(0u64, Slot::default()); BATCH];
        let mut slots = old.into_iter().peekable();
        while slots.peek().is_some() {
            let mut n = 0;
            for (entry, slot) in batch.iter_mut().zip(slots.by_ref()) {
                if let Some(start) = arena.start(slot.key) {
                    super::prefetch::object(start);
                }
                entry.1 = slot;
                n += 1;
            }
            for (hash, slot) in &mut batch[..n] {
                *hash = hasher.hash_one(arena.get(slot.key));
                if let Some(layout) = layout {
                    super::prefetch::line(layout.control(layout.home(*hash)));
                    layout.hint_vacant(*hash);
                }
            }
            for &(hash, slot) in &batch[..n] {
                // There is room: the closure never runs.
                self.table
                    .insert_unique(hash, slot, |s| hasher.hash_one(arena.get(s.key)));
            }
            // Taken once: the table does not move while it has room.
            layout = layout.or_else(|| Layout::of(&self.table));
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
    /// Sum of the lengths of the live keys.
    pub fn key_bytes(&self) -> u64 {
        // The arena counts a length byte per live key.
        self.arena.live - self.table.len() as u64
    }

    /// Bytes of memory held (table buckets and arena chunks).
    pub fn memory_bytes(&self) -> u64 {
        let bucket = (std::mem::size_of::<Slot>() + 1) as u64;
        self.table.capacity() as u64 * bucket + self.arena.bytes()
    }
}

#[cfg(test)]
mod tests;
