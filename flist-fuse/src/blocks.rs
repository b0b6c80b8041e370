//! The store-facing block reader of commands that read content (`cat`, `unpack`, `verify`,
//! `convert`): fetch, check and decode with the image's codec, and map file offsets.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::codec::{self, BlockCodec};
use crate::error::{Error, IoContext, Result};
use crate::format::{BlockRef, Flist, Hash, hex};
use crate::store::{self, Store, StoreError};

/// Reads file contents of an flist from a store.
pub struct BlockReader {
    /// Where the blocks are.
    pub store: Arc<dyn Store>,
    /// How they are checked and decoded.
    pub codec: Arc<dyn BlockCodec>,
    /// The flist file, for error messages.
    pub file: PathBuf,
}

impl BlockReader {
    /// A reader over `store` for blocks decoded by `codec`.
    pub fn new(store: Arc<dyn Store>, codec: Arc<dyn BlockCodec>, file: &Path) -> Self {
        BlockReader {
            store,
            codec,
            file: file.to_path_buf(),
        }
    }

    /// Open the block reader for an flist: `stores` override, else the trailer's routes.
    pub fn open(fl: &Flist, file: &Path, stores: &[String]) -> Result<BlockReader> {
        let specs: Vec<String> = if stores.is_empty() {
            fl.trailer.routes.clone()
        } else {
            stores.to_vec()
        };
        if specs.is_empty() {
            return Err(Error::invalid(
                file,
                "the flist names no store; pass --store URL",
            ));
        }
        let codec = codec::for_params(&fl.params).map_err(|m| Error::corrupt(file, m))?;
        let c = codec.clone();
        let check: store::Check = Arc::new(move |id, data| c.check(id, data));
        let st = store::open_checked(&specs, check).map_err(|e| Error::Store {
            path: file.to_path_buf(),
            source: e,
        })?;
        Ok(BlockReader::new(st, codec, file))
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
        self.codec.decode(&s, b).map_err(|e| self.err(b, e))
    }

    /// Fetch and decode several blocks in parallel (results in order).
    pub fn read_blocks(&self, bl: &[BlockRef]) -> Result<Vec<Vec<u8>>> {
        bl.par_iter().map(|b| self.read_block(b)).collect()
    }

    /// Write a whole regular file to `w`.
    pub fn copy_file(&self, fl: &Flist, ino: u32, w: &mut dyn Write, out: &Path) -> Result<()> {
        for group in fl.file_blocks(ino).chunks(8) {
            for (b, data) in group.iter().zip(self.read_blocks(group)?) {
                let bytes = data.get(b.slice()).ok_or_else(|| {
                    self.err(b, StoreError::Decode("slice out of the block".into()))
                })?;
                w.write_all(bytes).ctx(out)?;
            }
        }
        Ok(())
    }

    /// Check every distinct block of the flist (all of them, whatever fails).
    pub fn verify_all(&self, fl: &Flist) -> VerifyReport {
        let mut seen = HashSet::new();
        let uniq: Vec<&BlockRef> = fl.blocks.iter().filter(|b| seen.insert(b.id)).collect();
        let failed: Vec<(BlockRef, StoreError)> = uniq
            .par_iter()
            .filter_map(|b| {
                let r = self.store.get(&b.id).and_then(|s| self.codec.decode(&s, b));
                r.err().map(|e| (**b, e))
            })
            .collect();
        let (bad, unreadable) = failed.into_iter().partition(|(_, e)| {
            matches!(
                e,
                StoreError::NotFound { .. } | StoreError::Mismatch | StoreError::Decode(_)
            )
        });
        VerifyReport {
            blocks: uniq.len(),
            bad,
            unreadable,
        }
    }
}

/// What [`BlockReader::verify_all`] found.
#[derive(Debug)]
pub struct VerifyReport {
    /// Distinct blocks checked.
    pub blocks: usize,
    /// Blocks the store does not hold, or whose bytes do not check.
    pub bad: Vec<(BlockRef, StoreError)>,
    /// Blocks the store could not be asked about (unreachable, refusing).
    pub unreadable: Vec<(BlockRef, StoreError)>,
}

/// The paths (from the root, without a leading `/`) of the files holding each of `ids`, in
/// breadth-first order; a hard-linked file under each of its names.
pub fn paths_holding(fl: &Flist, ids: &HashSet<Hash>) -> HashMap<Hash, Vec<Vec<u8>>> {
    let mut out: HashMap<Hash, Vec<Vec<u8>>> = HashMap::new();
    for (path, ino) in fl.walk() {
        let mut mine = HashSet::new();
        for b in fl.file_blocks(ino) {
            if ids.contains(&b.id) && mine.insert(b.id) {
                out.entry(b.id).or_default().push(path.clone());
            }
        }
    }
    out
}
