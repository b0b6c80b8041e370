//! Block encoding (compress, optionally encrypt, hash) and the store-facing block reader
//! that a mount reuses: fetch, check the id, decrypt, decompress, map file offsets.
//!
//! Plain block `P` -> `Z = zstd(P)`; without encryption the stored bytes are `Z`; with
//! convergent encryption `key = blake3::derive_key(KEY_CONTEXT, P)` and the stored bytes are
//! `ChaCha20-Poly1305(key, nonce 0, Z)` (a key is never reused for different plaintexts, so a
//! fixed nonce is safe). The id is always `blake3(stored bytes)`: identical blocks dedup,
//! a store can check what it holds, and it never sees plaintext when encryption is on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rayon::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::format::{BlockRef, Flist, Hash, Params, hex};
use crate::store::{Store, StoreError, check};

/// Context string of the convergent key derivation.
pub const KEY_CONTEXT: &str = "flist v1 convergent block key";

/// A block ready for the store.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub id: Hash,
    pub key: Hash,
    pub stored: Vec<u8>,
    pub plain_len: u32,
}

/// Encode one plain block.
pub fn encode(plain: &[u8], p: &Params) -> std::result::Result<Encoded, String> {
    let z = zstd::bulk::compress(plain, p.level).map_err(|e| format!("zstd: {e}"))?;
    let (stored, key) = if p.encrypted {
        let key = blake3::derive_key(KEY_CONTEXT, plain);
        let c = ChaCha20Poly1305::new(Key::from_slice(&key));
        let s = c
            .encrypt(Nonce::from_slice(&[0u8; 12]), z.as_slice())
            .map_err(|_| "encryption failed".to_string())?;
        (s, key)
    } else {
        (z, [0u8; 32])
    };
    Ok(Encoded {
        id: *blake3::hash(&stored).as_bytes(),
        key,
        stored,
        plain_len: u32::try_from(plain.len()).map_err(|_| "block too large")?,
    })
}

/// Decode stored bytes of a block (checks the id, decrypts, decompresses, checks length).
pub fn decode(stored: &[u8], b: &BlockRef, p: &Params) -> std::result::Result<Vec<u8>, StoreError> {
    if p.hash == crate::rfs::HASH_RFS {
        return crate::rfs::decode_block(stored, b);
    }
    check(&b.id, stored)?;
    let z;
    let z_ref: &[u8] = if p.encrypted {
        let c = ChaCha20Poly1305::new(Key::from_slice(&b.key));
        z = c
            .decrypt(Nonce::from_slice(&[0u8; 12]), stored)
            .map_err(|_| StoreError::Decode("decryption failed (wrong key)".into()))?;
        &z
    } else {
        stored
    };
    let plain = zstd::bulk::decompress(z_ref, b.plain_len as usize)
        .map_err(|e| StoreError::Decode(format!("zstd: {e}")))?;
    if plain.len() != b.plain_len as usize {
        return Err(StoreError::Decode(format!(
            "block is {} bytes, expected {}",
            plain.len(),
            b.plain_len
        )));
    }
    if p.encrypted && blake3::derive_key(KEY_CONTEXT, &plain) != b.key {
        return Err(StoreError::Decode(
            "plaintext does not match its key".into(),
        ));
    }
    Ok(plain)
}

/// Reads file contents of an flist from a store.
pub struct BlockReader {
    pub store: Arc<dyn Store>,
    pub params: Params,
    /// The flist file, for error messages.
    pub file: PathBuf,
}

impl BlockReader {
    pub fn new(store: Arc<dyn Store>, params: Params, file: &Path) -> Self {
        BlockReader {
            store,
            params,
            file: file.to_path_buf(),
        }
    }

    fn err(&self, b: &BlockRef, source: StoreError) -> Error {
        Error::Block {
            path: self.file.clone(),
            id: hex(&b.id),
            source,
        }
    }

    /// Fetch and decode one block.
    pub fn read_block(&self, b: &BlockRef) -> Result<Vec<u8>> {
        let s = self.store.get(&b.id).map_err(|e| self.err(b, e))?;
        decode(&s, b, &self.params).map_err(|e| self.err(b, e))
    }

    /// Fetch and decode several blocks in parallel (results in order).
    pub fn read_blocks(&self, bl: &[BlockRef]) -> Result<Vec<Vec<u8>>> {
        bl.par_iter().map(|b| self.read_block(b)).collect()
    }

    /// Write a whole regular file to `w`.
    pub fn copy_file(&self, fl: &Flist, ino: u32, w: &mut dyn Write, out: &Path) -> Result<()> {
        for group in fl.file_blocks(ino).chunks(8) {
            for data in self.read_blocks(group)? {
                w.write_all(&data).ctx(out)?;
            }
        }
        Ok(())
    }

    /// Read up to `len` bytes of a file at `offset`.
    pub fn read_at(&self, fl: &Flist, ino: u32, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        let bl = fl.file_blocks(ino);
        let Some(mut k) = fl.block_at(ino, offset) else {
            return Ok(out);
        };
        let mut pos = offset;
        while out.len() < len {
            let Some(b) = bl.get(k) else { break };
            let data = self.read_block(b)?;
            let start = (pos - b.file_offset) as usize;
            let take = (len - out.len()).min(data.len().saturating_sub(start));
            out.extend_from_slice(data.get(start..start + take).unwrap_or(&[]));
            pos += take as u64;
            k += 1;
        }
        Ok(out)
    }

    /// Check that every distinct block of the flist is present and decodes.
    pub fn verify_all(&self, fl: &Flist) -> Result<usize> {
        let mut seen = std::collections::HashSet::new();
        let uniq: Vec<&BlockRef> = fl.blocks.iter().filter(|b| seen.insert(b.id)).collect();
        uniq.par_iter()
            .try_for_each(|b| self.read_block(b).map(|_| ()))?;
        Ok(uniq.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_convergence() {
        let data = b"hello hello hello hello".repeat(100);
        for enc in [false, true] {
            let p = Params {
                encrypted: enc,
                ..Params::default()
            };
            let a = encode(&data, &p).expect("enc");
            let b = encode(&data, &p).expect("enc");
            assert_eq!(a.id, b.id);
            if enc {
                assert!(!a.stored.windows(5).any(|w| w == b"hello"));
            }
            let r = BlockRef {
                id: a.id,
                key: a.key,
                file_offset: 0,
                plain_len: a.plain_len,
                stored_len: a.stored.len() as u32,
            };
            assert_eq!(decode(&a.stored, &r, &p).expect("dec"), data);
            let mut t = a.stored.clone();
            t[3] ^= 1;
            assert!(decode(&t, &r, &p).is_err());
        }
    }
}
