//! The store-facing block reader of commands that read content (`cat`, `unpack`, `verify`,
//! `convert`): fetch, check and decode with the image's codec, and map file offsets.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::codec::{self, BlockCodec};
use crate::error::{Error, IoContext, Result};
use crate::format::{BlockRef, Flist, hex};
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
            for data in self.read_blocks(group)? {
                w.write_all(&data).ctx(out)?;
            }
        }
        Ok(())
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
