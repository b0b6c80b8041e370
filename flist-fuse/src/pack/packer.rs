//! Packing small files together: files below a threshold are laid out, in the order given
//! (inode order: a folder's files sit together), in blocks of about the block size, so that a
//! folder of small files costs a handful of store requests instead of one per file. A file
//! whose content was already placed reuses that slice (identical small files dedup too).
//!
//! [`Packer`] is the pure layout; [`store_packs`] encodes and stores the packs it closed.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::codec::flist::encode;
use crate::format::{BlockRef, Hash, Params};
use crate::store::{Store, StoreError};

/// Where a small file's bytes are: `len` bytes at `off` of pack number `pack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Index of the pack (in the order packs were closed).
    pub pack: usize,
    /// Offset in the pack.
    pub off: u32,
    /// Bytes of the file.
    pub len: u32,
}

/// Lays out small files in packs of at most `size` bytes.
#[derive(Debug)]
pub struct Packer {
    size: usize,
    current: Vec<u8>,
    closed: usize,
    seen: HashMap<Hash, Slot>,
}

/// The threshold actually used: files below `small_files` bytes, but never a file that
/// would not fit in one pack of `pack_size` bytes.
pub fn threshold(small_files: u32, pack_size: u32) -> u32 {
    small_files.min(pack_size)
}

impl Packer {
    /// A packer closing packs at `size` bytes.
    pub fn new(size: u32) -> Self {
        Packer {
            size: size as usize,
            current: Vec::new(),
            closed: 0,
            seen: HashMap::new(),
        }
    }

    /// Place one file (non-empty, at most the pack size). Returns its slot and, when the
    /// current pack had no room left, the pack that was closed to make room (its index is
    /// the one before the slot's).
    pub fn add(&mut self, content: &[u8]) -> (Slot, Option<Vec<u8>>) {
        let h = *blake3::hash(content).as_bytes();
        if let Some(s) = self.seen.get(&h) {
            return (*s, None);
        }
        let mut full = None;
        if !self.current.is_empty() && self.current.len() + content.len() > self.size {
            full = Some(std::mem::take(&mut self.current));
            self.closed += 1;
        }
        let slot = Slot {
            pack: self.closed,
            off: self.current.len() as u32,
            len: content.len() as u32,
        };
        self.current.extend_from_slice(content);
        self.seen.insert(h, slot);
        (slot, full)
    }

    /// Close the last pack (if it holds anything).
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.current.is_empty()).then_some(self.current)
    }
}

/// An encoded pack as the block table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Block id.
    pub id: Hash,
    /// Convergent key (zero without encryption).
    pub key: Hash,
    /// Bytes of the pack.
    pub plain_len: u32,
    /// Bytes the store holds.
    pub stored_len: u32,
}

impl Stored {
    /// The reference of the file at `slot` of this pack.
    pub fn slice(&self, slot: &Slot) -> BlockRef {
        BlockRef {
            off: slot.off,
            len: slot.len,
            ..BlockRef::whole(self.id, self.key, 0, self.plain_len, self.stored_len)
        }
    }
}

/// Encode packs (in parallel) and put them to `store`; all are durable on return.
pub fn store_packs(
    packs: &[Vec<u8>],
    params: &Params,
    store: &Arc<dyn Store>,
) -> Result<Vec<Stored>, PackError> {
    let enc: Vec<_> = packs
        .par_iter()
        .map(|p| encode(p, params))
        .collect::<Result<_, String>>()
        .map_err(PackError::Encode)?;
    let batch: Vec<(Hash, Vec<u8>)> = enc.iter().map(|e| (e.id, e.stored.clone())).collect();
    store.put_batch(&batch).map_err(PackError::Store)?;
    Ok(enc
        .iter()
        .map(|e| Stored {
            id: e.id,
            key: e.key,
            plain_len: e.plain_len,
            stored_len: e.stored.len() as u32,
        })
        .collect())
}

/// Why packs could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Compression or encryption failed.
    #[error("{0}")]
    Encode(String),
    /// The store refused.
    #[error(transparent)]
    Store(StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_fill_in_order_and_identical_files_share_a_slice() {
        let mut p = Packer::new(10);
        let (a, full) = p.add(b"aaaa");
        assert_eq!(
            (a, full),
            (
                Slot {
                    pack: 0,
                    off: 0,
                    len: 4
                },
                None
            )
        );
        let (b, full) = p.add(b"bbbbbb");
        assert_eq!(
            (b, full),
            (
                Slot {
                    pack: 0,
                    off: 4,
                    len: 6
                },
                None
            )
        );
        // No room: the first pack closes, exactly full.
        let (c, full) = p.add(b"cc");
        assert_eq!(
            c,
            Slot {
                pack: 1,
                off: 0,
                len: 2
            }
        );
        assert_eq!(full.as_deref(), Some(&b"aaaabbbbbb"[..]));
        // The same bytes again: the first slice, nothing appended.
        assert_eq!(p.add(b"aaaa"), (a, None));
        let (d, full) = p.add(b"dddddddd");
        assert_eq!(
            (d, full),
            (
                Slot {
                    pack: 1,
                    off: 2,
                    len: 8
                },
                None
            )
        );
        assert_eq!(p.finish().as_deref(), Some(&b"ccdddddddd"[..]));
        assert_eq!(threshold(128 << 10, 1 << 20), 128 << 10);
        assert_eq!(threshold(128 << 10, 64 << 10), 64 << 10);
    }
}
