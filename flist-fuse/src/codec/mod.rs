//! Block codecs: how the stored bytes of a block are checked against its id and turned back
//! into plain bytes. One trait, one implementation per family of images:
//! [`flist::FlistCodec`] (blake3 ids, zstd, optional convergent ChaCha20-Poly1305) and
//! [`rfs::RfsCodec`] (BLAKE2b-256 ids and keys, snappy, AES-256-GCM). The image's parameters
//! pick the codec once ([`for_params`]); stores, readers and the mount only see the trait.

pub mod flist;
pub mod rfs;

use std::sync::Arc;

use crate::error::StoreError;
use crate::format::{BlockRef, Hash, Params};

/// [`Params::hash`] of blake3 block ids (our format; the only value written to a file).
pub const HASH_BLAKE3: u8 = 1;
/// [`Params::hash`] of BLAKE2b-256 block ids (rfs; in memory only).
pub const HASH_BLAKE2B: u8 = 2;
/// [`Params::compression`] of zstd.
pub const COMPRESSION_ZSTD: u8 = 1;
/// [`Params::compression`] of raw snappy (rfs; in memory only).
pub const COMPRESSION_SNAPPY: u8 = 2;

/// Checks and decodes the stored bytes of blocks.
pub trait BlockCodec: Send + Sync {
    /// Check stored bytes against the block id (so a store replica that lies is skipped).
    fn check(&self, id: &Hash, stored: &[u8]) -> Result<(), StoreError>;
    /// Check the id, decrypt and decompress; the result has exactly `b.plain_len` bytes.
    fn decode(&self, stored: &[u8], b: &BlockRef) -> Result<Vec<u8>, StoreError>;
    /// How blocks are stored, for `flist inspect`.
    fn describe(&self) -> String;
}

/// The codec of an image's blocks.
pub fn for_params(p: &Params) -> Result<Arc<dyn BlockCodec>, String> {
    match (p.hash, p.compression) {
        (HASH_BLAKE3, COMPRESSION_ZSTD) => Ok(Arc::new(flist::FlistCodec::new(p))),
        (HASH_BLAKE2B, COMPRESSION_SNAPPY) => Ok(Arc::new(rfs::RfsCodec)),
        (h, c) => Err(format!(
            "no block codec for hash algorithm {h} with compression {c}"
        )),
    }
}
