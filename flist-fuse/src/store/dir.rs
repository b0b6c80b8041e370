//! `dir://PATH`: one file per block at `PATH/<first two hex digits>/<hex id>`.
//!
//! Writes go to a temp file (`.<id>.tmp-*`, ignored by readers), are made durable, then
//! renamed into place, so a block file is never half written. A single put does
//! fsync(file) + rename + fsync(dir); a batch writes every temp file, calls syncfs once,
//! renames them all and calls syncfs again (same guarantee, two flushes per batch).

use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::{Store, StoreError, block_name};
use crate::format::Hash;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A block store in a local folder.
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// Open (creating if needed) a dir store.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        if path.is_empty() {
            return Err(StoreError::Url {
                url: "dir://".into(),
                msg: "empty path".into(),
            });
        }
        Ok(DirStore {
            root: PathBuf::from(path),
        })
    }

    fn err(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            store: self.url(),
            source,
        }
    }

    fn shard(&self, id: &Hash) -> PathBuf {
        self.root.join(&block_name(id)[..2])
    }

    fn path(&self, id: &Hash) -> PathBuf {
        self.shard(id).join(block_name(id))
    }

    /// Write a temp file next to the block's place; returns the temp path.
    fn write_temp(&self, id: &Hash, data: &[u8], sync: bool) -> Result<PathBuf, StoreError> {
        let shard = self.shard(id);
        fs::create_dir_all(&shard).map_err(|e| self.err(e))?;
        let tmp = shard.join(format!(
            ".{}.tmp-{}-{}",
            block_name(id),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let res = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            if sync {
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(self.err(e));
        }
        Ok(tmp)
    }

    fn sync_fs(&self) -> Result<(), StoreError> {
        let f = File::open(&self.root).map_err(|e| self.err(e))?;
        rustix::fs::syncfs(&f).map_err(|e| self.err(e.into()))
    }
}

impl Store for DirStore {
    fn get(&self, id: &Hash) -> Result<Vec<u8>, StoreError> {
        match fs::read(self.path(id)) {
            Ok(d) => Ok(d),
            // A block is missing only from a store that is there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.root.is_dir() => {
                Err(StoreError::NotFound { store: self.url() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(self.err(
                std::io::Error::new(e.kind(), "the store's folder is missing"),
            )),
            Err(e) => Err(self.err(e)),
        }
    }

    fn put(&self, id: &Hash, data: &[u8]) -> Result<(), StoreError> {
        if self.exists(id)? {
            return Ok(());
        }
        let tmp = self.write_temp(id, data, true)?;
        let dst = self.path(id);
        fs::rename(&tmp, &dst).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.err(e)
        })?;
        nodeutil::fs::sync_dir(&self.shard(id)).map_err(|e| self.err(e))
    }

    fn exists(&self, id: &Hash) -> Result<bool, StoreError> {
        match fs::symlink_metadata(self.path(id)) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    fn put_batch(&self, blocks: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        fs::create_dir_all(&self.root).map_err(|e| self.err(e))?;
        let mut todo = Vec::new();
        for (id, d) in blocks {
            if !self.exists(id)? {
                todo.push((id, d));
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        if todo.len() == 1 {
            let (id, d) = todo[0];
            return self.put(id, d);
        }
        let temps: Vec<Result<(PathBuf, PathBuf), StoreError>> = todo
            .par_iter()
            .map(|(id, d)| Ok((self.write_temp(id, d, false)?, self.path(id))))
            .collect();
        let mut pairs = Vec::with_capacity(temps.len());
        let mut first_err = None;
        for t in temps {
            match t {
                Ok(p) => pairs.push(p),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            for (tmp, _) in &pairs {
                let _ = fs::remove_file(tmp);
            }
            return Err(e);
        }
        let synced = self.sync_fs();
        if let Err(e) = synced {
            for (tmp, _) in &pairs {
                let _ = fs::remove_file(tmp);
            }
            return Err(e);
        }
        for (tmp, dst) in &pairs {
            if let Err(e) = fs::rename(tmp, dst) {
                let _ = fs::remove_file(tmp);
                return Err(self.err(e));
            }
        }
        self.sync_fs()
    }

    fn url(&self) -> String {
        format!("dir://{}", self.root.display())
    }
}
