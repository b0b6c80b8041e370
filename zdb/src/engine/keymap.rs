//! In-memory index of user-mode keys.
//!
//! One hash table entry per live key: the key bytes (boxed, exact length) and a 16-byte
//! location. No bucket array is preallocated, so an idle server costs nothing; the table
//! grows by doubling. Cost per key on x86_64: 16 (box pointer + length), 16 (location) and
//! 1 control byte, at a load factor of up to 7/8, plus the key's own heap allocation (key
//! length rounded up to the allocator's 16-byte classes).

use hashbrown::HashMap;

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

/// Live user-mode keys.
#[derive(Default)]
pub struct KeyMap {
    map: HashMap<Box<[u8]>, Loc>,
}

impl KeyMap {
    /// Location of a live key.
    pub fn get(&self, key: &[u8]) -> Option<Loc> {
        self.map.get(key).copied()
    }
    /// Insert or replace; returns the previous location.
    pub fn insert(&mut self, key: &[u8], loc: Loc) -> Option<Loc> {
        match self.map.get_mut(key) {
            Some(slot) => Some(std::mem::replace(slot, loc)),
            None => {
                self.map.insert(key.into(), loc);
                None
            }
        }
    }
    /// Remove; returns the location it had.
    pub fn remove(&mut self, key: &[u8]) -> Option<Loc> {
        self.map.remove(key)
    }
    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// No live keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Drop everything.
    pub fn clear(&mut self) {
        self.map = HashMap::new();
    }
    /// All keys, in hash order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.map.keys().map(|k| &**k)
    }
    /// Approximate heap bytes held, for NSINFO `index_size_bytes`.
    pub fn memory_estimate(&self, key_bytes: u64) -> u64 {
        let slot = (std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<Loc>() + 1) as u64;
        self.map.capacity() as u64 * slot + key_bytes
    }
}
