//! `flist convert`: an older image (an rfs `.fl`, or an flist of format version 1) rewritten
//! into the current layout, small files packed together.
//!
//! Small files (below the threshold) are read, verified and packed in inode order, exactly as
//! `flist pack` lays them out. Larger files keep their block boundaries: a version-1 flist's
//! blocks are reused as they are (copied into the target store when it lacks them, checked
//! against their ids on the way), unless the encryption changes; an rfs block is fetched
//! once, verified (id and key), decoded and re-encoded as ours. The new flist is written
//! atomically after every block is durable. The tree, and so every file's bytes, are those
//! of the source; the identity is new, so signatures are not carried over (sign again).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::blocks::BlockReader;
use crate::codec::flist::encode;
use crate::error::{Error, Result};
use crate::format::{self, BlockRef, Flist, Hash, ImageKind, Params, Trailer};
use crate::pack::packer::{self, PackError, Packer, Slot, Stored};
use crate::store::{self, Store};

/// Small files read from the source at once (in parallel).
const READ_GROUP: usize = 256;
/// Large blocks handled at once (in parallel).
const BLOCK_GROUP: usize = 32;

/// How to convert.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Where the new blocks go (`[LO-HI=]URL`).
    pub stores: Vec<String>,
    /// zstd level of new blocks.
    pub level: i32,
    /// Convergent encryption of the result.
    pub encrypt: bool,
    /// Pack files below this size (capped at the block size; 0: none).
    pub small_files: u32,
}

/// What `flist convert` did.
#[derive(Debug, Clone, Default)]
pub struct ConvertReport {
    /// Identity of the new flist.
    pub identity: Hash,
    /// Entries of the tree (root included).
    pub entries: usize,
    /// Distinct source blocks fetched and verified.
    pub fetched: usize,
    /// Plain bytes of those blocks.
    pub plain_bytes: u64,
    /// Small files packed together.
    pub packed_files: usize,
    /// Blocks holding them.
    pub packs: usize,
    /// Source blocks kept as they are (version 1, same encryption).
    pub kept: usize,
    /// Signatures of the source, not valid for the new identity.
    pub dropped_signatures: usize,
}

fn store_err(output: &Path) -> impl Fn(crate::store::StoreError) -> Error + '_ {
    move |source| Error::Store {
        path: output.to_path_buf(),
        source,
    }
}

/// The bytes of a file, assembled from its (decoded) blocks.
fn file_bytes(fl: &Flist, ino: u32, blocks: &HashMap<Hash, Vec<u8>>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for b in fl.file_blocks(ino) {
        out.extend_from_slice(blocks.get(&b.id)?.get(b.slice())?);
    }
    Some(out)
}

/// Rewrite `src` (read through `reader`) into the current layout at `output`.
pub fn convert(
    src: &Flist,
    reader: &BlockReader,
    opts: &ConvertOptions,
    output: &Path,
) -> Result<ConvertReport> {
    if src.kind
        == (ImageKind::Flist {
            version: format::VERSION,
        })
    {
        return Err(Error::invalid(
            &reader.file,
            format!(
                "already in the current layout (format version {})",
                format::VERSION
            ),
        ));
    }
    let mut params = Params {
        chunk: src.params.chunk,
        level: opts.level,
        encrypted: opts.encrypt,
        ..Params::default()
    };
    params.small_files = packer::threshold(opts.small_files, params.chunk.avg);
    let reuse = src.kind != ImageKind::Rfs && src.params.encrypted == opts.encrypt;
    let target = store::open(&opts.stores).map_err(store_err(output))?;
    let mut c = Converter {
        src,
        reader,
        params,
        target,
        output,
        report: ConvertReport {
            dropped_signatures: src.trailer.signatures.len(),
            ..ConvertReport::default()
        },
        fetched: HashSet::new(),
    };
    let small: Vec<u32> = (0..src.inodes.len() as u32)
        .filter(|&i| c.is_small(i))
        .collect();
    let slices = c.pack_small(&small)?;
    let large = c.large_blocks(reuse)?;
    // The block table, inode by inode; old block indices map to new ones for the prefetch list.
    let mut blocks: Vec<BlockRef> = Vec::new();
    let mut inodes = src.inodes.clone();
    let mut index_of: HashMap<usize, u32> = HashMap::new();
    for (ino, i) in inodes.iter_mut().enumerate() {
        if !i.is_reg() {
            continue;
        }
        let old_first = i.first as usize;
        let new_first = blocks.len();
        if let Some(r) = slices.get(&(ino as u32)) {
            blocks.push(*r);
            for k in 0..i.count as usize {
                index_of.insert(old_first + k, new_first as u32);
            }
        } else {
            for (k, b) in src.file_blocks(ino as u32).iter().enumerate() {
                let nb = large.get(&b.id).ok_or_else(|| {
                    Error::invalid(&reader.file, "a block went missing in conversion")
                })?;
                index_of.insert(old_first + k, blocks.len() as u32);
                blocks.push(BlockRef {
                    file_offset: b.file_offset,
                    ..*nb
                });
            }
        }
        i.first = new_first as u64;
        i.count = (blocks.len() - new_first) as u64;
    }
    let body = format::encode_body(
        &params,
        &inodes,
        &src.dirents,
        &blocks,
        &src.xattrs,
        &src.names,
        &src.data,
    );
    let mut seen = HashSet::new();
    let trailer = Trailer {
        routes: opts.stores.iter().map(|s| store::redact(s)).collect(),
        prefetch: src.trailer.prefetch.clone(),
        prefetch_blocks: src
            .trailer
            .prefetch_blocks
            .iter()
            .filter_map(|k| index_of.get(&(*k as usize)).copied())
            .filter(|k| seen.insert(*k))
            .collect(),
        signatures: Vec::new(),
    };
    let bytes = format::encode_file(&body, &trailer);
    // Never write a file we could not read back.
    let fl = format::decode(&bytes).map_err(|m| Error::invalid(&reader.file, m))?;
    nodeutil::fs::write_durable(output, &bytes, 0o644)?;
    c.report.identity = fl.identity;
    c.report.entries = fl.dirents.len() + 1;
    c.report.fetched = c.fetched.len();
    Ok(c.report)
}

struct Converter<'a> {
    src: &'a Flist,
    reader: &'a BlockReader,
    params: Params,
    target: Arc<dyn Store>,
    output: &'a Path,
    report: ConvertReport,
    /// Distinct source blocks fetched.
    fetched: HashSet<Hash>,
}

impl Converter<'_> {
    fn is_small(&self, ino: u32) -> bool {
        self.src
            .inode(ino)
            .is_some_and(|i| i.is_reg() && i.size > 0 && i.size < self.params.small_files as u64)
    }

    /// Fetch and decode distinct blocks in parallel.
    fn fetch(&mut self, bl: &[BlockRef]) -> Result<HashMap<Hash, Vec<u8>>> {
        let mut seen = HashSet::new();
        let uniq: Vec<&BlockRef> = bl.iter().filter(|b| seen.insert(b.id)).collect();
        let got: Vec<(Hash, Vec<u8>)> = uniq
            .par_iter()
            .map(|b| Ok((b.id, self.reader.read_block(b)?)))
            .collect::<Result<_>>()?;
        for (id, d) in &got {
            if self.fetched.insert(*id) {
                self.report.plain_bytes += d.len() as u64;
            }
        }
        Ok(got.into_iter().collect())
    }

    fn store_packs(&self, packs: &mut Vec<Vec<u8>>) -> Result<Vec<Stored>> {
        let r = packer::store_packs(packs, &self.params, &self.target).map_err(|e| match e {
            PackError::Encode(m) => Error::invalid(self.output, m),
            PackError::Store(s) => store_err(self.output)(s),
        });
        packs.clear();
        r
    }

    /// Pack the small files (in inode order); their new references by inode.
    fn pack_small(&mut self, small: &[u32]) -> Result<HashMap<u32, BlockRef>> {
        let mut packer = Packer::new(self.params.chunk.avg);
        let mut placed: Vec<(u32, Slot)> = Vec::new();
        let mut closed = Vec::new();
        let mut stored = Vec::new();
        for group in small.chunks(READ_GROUP) {
            let bl: Vec<BlockRef> = group
                .iter()
                .flat_map(|i| self.src.file_blocks(*i).iter().copied())
                .collect();
            let data = self.fetch(&bl)?;
            for &ino in group {
                let bytes = file_bytes(self.src, ino, &data).ok_or_else(|| {
                    Error::invalid(&self.reader.file, format!("inode {ino}: block missing"))
                })?;
                let (slot, full) = packer.add(&bytes);
                placed.push((ino, slot));
                if let Some(p) = full {
                    closed.push(p);
                }
            }
            if closed.len() >= BLOCK_GROUP {
                stored.extend(self.store_packs(&mut closed)?);
            }
        }
        if let Some(p) = packer.finish() {
            closed.push(p);
        }
        stored.extend(self.store_packs(&mut closed)?);
        self.report.packs = stored.len();
        self.report.packed_files = placed.len();
        placed
            .into_iter()
            .map(|(ino, slot)| {
                let s = stored.get(slot.pack).ok_or_else(|| {
                    Error::invalid(&self.reader.file, "a pack went missing in conversion")
                })?;
                Ok((ino, s.slice(&slot)))
            })
            .collect()
    }

    /// The new reference (file offset aside) of every block of the large files, by old id.
    fn large_blocks(&mut self, reuse: bool) -> Result<HashMap<Hash, BlockRef>> {
        let mut seen = HashSet::new();
        let uniq: Vec<BlockRef> = (0..self.src.inodes.len() as u32)
            .filter(|&i| !self.is_small(i))
            .flat_map(|i| self.src.file_blocks(i).iter().copied())
            .filter(|b| seen.insert(b.id))
            .collect();
        let mut out = HashMap::with_capacity(uniq.len());
        for group in uniq.chunks(BLOCK_GROUP) {
            if reuse {
                self.copy_missing(group)?;
                for b in group {
                    out.insert(b.id, BlockRef { off: 0, ..*b });
                }
                self.report.kept += group.len();
                continue;
            }
            let data = self.fetch(group)?;
            let enc: Vec<(Hash, _)> = group
                .par_iter()
                .map(|b| {
                    let plain = data.get(&b.id).ok_or_else(|| {
                        Error::invalid(&self.reader.file, "a block went missing in conversion")
                    })?;
                    let e = encode(plain, &self.params)
                        .map_err(|m| Error::invalid(&self.reader.file, m))?;
                    Ok((b.id, e))
                })
                .collect::<Result<_>>()?;
            let batch: Vec<(Hash, Vec<u8>)> =
                enc.iter().map(|(_, e)| (e.id, e.stored.clone())).collect();
            self.target
                .put_batch(&batch)
                .map_err(store_err(self.output))?;
            for (old, e) in enc {
                let r = BlockRef::whole(e.id, e.key, 0, e.plain_len, e.stored.len() as u32);
                out.insert(old, r);
            }
        }
        Ok(out)
    }

    /// Copy blocks the target lacks from the source store, checking each against its id.
    fn copy_missing(&mut self, group: &[BlockRef]) -> Result<()> {
        let ids: Vec<Hash> = group.iter().map(|b| b.id).collect();
        let have = self
            .target
            .exists_batch(&ids)
            .map_err(store_err(self.output))?;
        let want: Vec<&BlockRef> = group
            .iter()
            .zip(have)
            .filter(|(_, h)| !h)
            .map(|(b, _)| b)
            .collect();
        let copied: Vec<(Hash, Vec<u8>)> = want
            .par_iter()
            .map(|b| {
                let stored = self
                    .reader
                    .store
                    .get(&b.id)
                    .and_then(|s| self.reader.codec.check(&b.id, &s).map(|()| s))
                    .map_err(|source| Error::Block {
                        path: self.reader.file.clone(),
                        id: format::hex(&b.id),
                        source,
                    })?;
                Ok((b.id, stored))
            })
            .collect::<Result<_>>()?;
        for (id, _) in &copied {
            self.fetched.insert(*id);
        }
        self.target
            .put_batch(&copied)
            .map_err(store_err(self.output))
    }
}
