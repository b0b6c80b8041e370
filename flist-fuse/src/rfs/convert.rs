//! `flist convert`: an rfs image into our format.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rayon::prelude::*;

use super::BLOCK_SIZE;
use crate::blocks::BlockReader;
use crate::chunk::ChunkParams;
use crate::codec::flist::{Encoded, encode};
use crate::error::{Error, Result};
use crate::format::{self, BlockRef, Flist, Hash, ImageKind, Params, Trailer, hex};
use crate::store;

/// What `flist convert` did.
#[derive(Debug, Clone, Default)]
pub struct ConvertReport {
    /// Identity of the new flist.
    pub identity: Hash,
    /// Entries of the tree (root included).
    pub entries: usize,
    /// Distinct rfs blocks fetched (each once) and re-stored as our blocks.
    pub blocks: usize,
    /// Plain bytes of those blocks.
    pub plain_bytes: u64,
}

/// Convert an rfs flist (read from `src` with `reader`) into our format: every distinct rfs
/// block is fetched once, verified (id and key), decoded, re-encoded as our block with the
/// same boundaries (fixed 512 KiB) and put into `stores` (a block the target already holds
/// is not written again). The flist is written atomically after every block is durable.
pub fn convert(
    src: &Flist,
    reader: &BlockReader,
    stores: &[String],
    output: &Path,
    level: i32,
    encrypt: bool,
) -> Result<ConvertReport> {
    if src.kind != ImageKind::Rfs {
        return Err(Error::invalid(
            &reader.file,
            "already in flist format (nothing to convert)",
        ));
    }
    let params = Params {
        chunk: ChunkParams::fixed(BLOCK_SIZE),
        level,
        encrypted: encrypt,
        ..Params::default()
    };
    let target = store::open(stores).map_err(|e| Error::Store {
        path: output.to_path_buf(),
        source: e,
    })?;
    let mut seen = HashSet::new();
    let uniq: Vec<BlockRef> = src
        .blocks
        .iter()
        .filter(|b| seen.insert(b.id))
        .copied()
        .collect();
    let mut map: HashMap<Hash, (Hash, Hash, u32)> = HashMap::with_capacity(uniq.len());
    let mut plain_bytes = 0u64;
    for group in uniq.chunks(32) {
        let enc: Vec<(Hash, Encoded)> = group
            .par_iter()
            .map(|b| {
                let plain = reader.read_block(b)?;
                let e = encode(&plain, &params).map_err(|m| Error::invalid(&reader.file, m))?;
                Ok((b.id, e))
            })
            .collect::<Result<_>>()?;
        let batch: Vec<(Hash, Vec<u8>)> =
            enc.iter().map(|(_, e)| (e.id, e.stored.clone())).collect();
        target.put_batch(&batch).map_err(|e| Error::Store {
            path: output.to_path_buf(),
            source: e,
        })?;
        for (rid, e) in enc {
            plain_bytes += e.plain_len as u64;
            map.insert(rid, (e.id, e.key, e.stored.len() as u32));
        }
    }
    let mut blocks = Vec::with_capacity(src.blocks.len());
    for b in &src.blocks {
        let (id, key, stored_len) = *map
            .get(&b.id)
            .ok_or_else(|| Error::invalid(&reader.file, format!("block {} lost", hex(&b.id))))?;
        blocks.push(BlockRef {
            id,
            key,
            stored_len,
            ..*b
        });
    }
    let body = format::encode_body(
        &params,
        &src.inodes,
        &src.dirents,
        &blocks,
        &src.xattrs,
        &src.names,
        &src.data,
    );
    let trailer = Trailer {
        routes: stores.iter().map(|s| store::redact(s)).collect(),
        ..Trailer::default()
    };
    let bytes = format::encode_file(&body, &trailer);
    // Never write a file we could not read back.
    let fl = format::decode(&bytes).map_err(|m| Error::invalid(&reader.file, m))?;
    nodeutil::fs::write_durable(output, &bytes, 0o644)?;
    Ok(ConvertReport {
        identity: fl.identity,
        entries: fl.dirents.len() + 1,
        blocks: uniq.len(),
        plain_bytes,
    })
}
