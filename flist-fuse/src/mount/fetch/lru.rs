//! Memory LRU of decoded blocks, bounded in bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::format::Hash;

/// The LRU (`order` maps last use -> id).
pub struct Lru {
    map: HashMap<Hash, (Arc<Vec<u8>>, u64)>,
    order: BTreeMap<u64, Hash>,
    tick: u64,
    bytes: u64,
    max: u64,
}

impl Lru {
    /// An empty LRU holding at most `max` bytes (and always the last block inserted).
    pub fn new(max: u64) -> Self {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            max,
        }
    }

    /// Whether a block is held (does not count as a use).
    pub fn contains(&self, id: &Hash) -> bool {
        self.map.contains_key(id)
    }

    /// A block, now the most recently used.
    pub fn get(&mut self, id: &Hash) -> Option<Arc<Vec<u8>>> {
        self.tick += 1;
        let t = self.tick;
        let (d, u) = self.map.get_mut(id)?;
        self.order.remove(u);
        self.order.insert(t, *id);
        *u = t;
        Some(d.clone())
    }

    /// Hold a block, dropping the least recently used ones past the bound.
    pub fn insert(&mut self, id: Hash, d: Arc<Vec<u8>>) {
        self.tick += 1;
        let n = d.len() as u64;
        if let Some((old, u)) = self.map.insert(id, (d, self.tick)) {
            self.bytes -= old.len() as u64;
            self.order.remove(&u);
        }
        self.order.insert(self.tick, id);
        self.bytes += n;
        while self.bytes > self.max && self.map.len() > 1 {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            if let Some((d, _)) = self.map.remove(&victim) {
                self.bytes -= d.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_is_bounded_and_keeps_recent() {
        let mut l = Lru::new(30);
        for k in 0..3u8 {
            l.insert([k; 32], Arc::new(vec![k; 10]));
        }
        assert!(l.get(&[0; 32]).is_some());
        l.insert([9; 32], Arc::new(vec![9; 10]));
        assert_eq!(l.bytes, 30);
        assert!(l.get(&[1; 32]).is_none(), "least recently used goes first");
        assert!(l.get(&[0; 32]).is_some() && l.get(&[9; 32]).is_some());
        assert_eq!(l.map.len(), l.order.len());
    }
}
