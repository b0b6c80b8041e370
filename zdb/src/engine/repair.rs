//! Rebuilding index files from data files: at open when no index exists but data does, and
//! offline by `zdb check --repair`, which keeps a copy of the old index files.
//!
//! Every data file is walked entry by entry; entries whose value matches its CRC are replayed
//! (the same code that re-indexes a torn tail), entries that fail it are skipped and reported,
//! and a file whose entry headers stop making sense is indexed up to that point.

use std::path::Path;
use std::sync::Arc;

use super::entries::read_entry_at;
use super::error::io_err;
use super::files::Files;
use super::namespace::{Active, Namespace};
use super::{EngineConfig, FileKind, Mode, OpenError};
use crate::format::{Descriptor, IndexHeader, data, index};
use crate::storage::append::Appender;
use crate::storage::{OpenMode, Storage, StorageFile};

/// What a rebuild did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// Data entries re-indexed.
    pub indexed: u64,
    /// Entries skipped (value does not match its CRC) or bytes left unindexed, described.
    pub skipped: Vec<String>,
}

impl Namespace {
    /// Write fresh index files for every data file into this namespace's index directory,
    /// leaving the namespace loaded.
    pub(crate) fn rebuild_from_data(&mut self, mode: Mode) -> Result<RebuildReport, OpenError> {
        self.mode = mode;
        let storage = self.files.storage.clone();
        let mut report = RebuildReport::default();
        let mut count = 0u32;
        while storage.exists(&self.files.path(FileKind::Data, count)) {
            count += 1;
        }
        for id in 0..count {
            let ipath = self.files.path(FileKind::Index, id);
            let dpath = self.files.path(FileKind::Data, id);
            let idx = storage
                .open(&ipath, OpenMode::Truncate)
                .map_err(io_err("create index", &ipath))?;
            idx.write_at(
                &IndexHeader {
                    fileid: id,
                    mode: mode.as_byte(),
                }
                .encode(),
                0,
            )
            .map_err(io_err("write index", &ipath))?;
            let dat = storage
                .open(&dpath, OpenMode::ReadWrite)
                .map_err(io_err("open data", &dpath))?;
            let dlen = dat.len().map_err(io_err("stat data", &dpath))?;
            self.files.put(FileKind::Index, id, idx.clone());
            self.files.put(FileKind::Data, id, dat.clone());
            self.active = Active {
                id,
                index: Arc::new(Appender::new(idx, index::HEADER_LEN as u64)),
                data: Arc::new(Appender::new(dat.clone(), dlen)),
                index_size: index::HEADER_LEN as u32,
                data_size: u32::try_from(dlen).unwrap_or(u32::MAX),
            };
            self.index_sizes.push(index::HEADER_LEN as u32);
            self.seq_first.push(self.next_entry);
            let end = self
                .reindex_file(&*dat, dlen, &mut report)
                .map_err(io_err("rebuild index", &ipath))?;
            if end < dlen {
                report.skipped.push(format!(
                    "d{id}@{end}: {} bytes after this offset are not whole entries",
                    dlen - end
                ));
                if id + 1 == count {
                    // The active file: cut its torn tail, as at any open.
                    dat.set_len(end).map_err(io_err("truncate data", &dpath))?;
                    self.active.data = Arc::new(Appender::new(dat.clone(), end));
                    self.active.data_size = u32::try_from(end).unwrap_or(u32::MAX);
                }
            }
            self.sync_now().map_err(io_err("sync index", &ipath))?;
        }
        if count == 0 {
            self.create_pair(0)
                .map_err(|(path, source)| OpenError::Io {
                    op: "create file",
                    path,
                    source,
                })?;
        }
        storage
            .sync_dir(&self.files.index_dir)
            .map_err(io_err("sync directory", &self.files.index_dir))?;
        Ok(report)
    }

    /// Replay every whole entry of one data file; returns where whole entries end.
    fn reindex_file(
        &mut self,
        dat: &dyn StorageFile,
        len: u64,
        report: &mut RebuildReport,
    ) -> std::io::Result<u64> {
        let mut pos = data::HEADER_LEN as u64;
        while let Some(e) = read_entry_at(dat, pos, len, self.mode)? {
            let Ok(pos32) = u32::try_from(pos) else { break };
            if e.crc_ok() {
                self.replay_data_entry(pos32, &e.hdr, e.key())?;
                self.last_data_off = pos32;
                report.indexed += 1;
            } else {
                report.skipped.push(format!(
                    "d{}@{pos}: key {}: value does not match its crc, not indexed",
                    self.active.id,
                    hex::encode(e.key())
                ));
            }
            pos = e.end;
        }
        Ok(pos)
    }

    /// Offline repair: rebuild every index file of namespace `name` from its data files.
    /// The old index files are copied to `<index>/<ns>/.backup-<unix time>/` first.
    pub fn repair(
        storage: Arc<dyn Storage>,
        index_root: &Path,
        data_root: &Path,
        name: &[u8],
        cfg: EngineConfig,
    ) -> Result<RebuildReport, OpenError> {
        // Opening first settles the mode and the descriptor (and repairs torn tails).
        let current = Namespace::open(storage.clone(), index_root, data_root, name, cfg.clone())?;
        let (mode, desc): (Mode, Descriptor) = (current.mode, current.desc.clone());
        drop(current);
        let (idir, ddir) = Self::dirs_for(index_root, data_root, name);
        let backup = idir.join(format!(".backup-{}", crate::now_secs()));
        storage
            .create_dir_all(&backup)
            .map_err(io_err("create backup", &backup))?;
        let mut old = Vec::new();
        let mut n = 0u32;
        loop {
            let path = idir.join(format!("i{n}"));
            let Ok(f) = storage.open(&path, OpenMode::ReadOnly) else {
                break;
            };
            let len = f.len().map_err(io_err("stat index", &path))?;
            let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
            f.read_exact_at(&mut bytes, 0)
                .map_err(io_err("read index", &path))?;
            let copy = backup.join(format!("i{n}"));
            let out = storage
                .open(&copy, OpenMode::Truncate)
                .map_err(io_err("write backup", &copy))?;
            out.write_at(&bytes, 0)
                .map_err(io_err("write backup", &copy))?;
            out.sync().map_err(io_err("sync backup", &copy))?;
            old.push(path);
            n += 1;
        }
        storage
            .sync_dir(&backup)
            .map_err(io_err("sync backup", &backup))?;
        let files = Files::new(storage.clone(), idir.clone(), ddir);
        let mut ns = Namespace::blank(cfg, files, desc, mode);
        let report = ns.rebuild_from_data(mode)?;
        // Index files beyond the last data file would point at nothing.
        for path in old.iter().skip(ns.active.id as usize + 1) {
            storage
                .remove_file(path)
                .map_err(io_err("remove index", path))?;
        }
        storage
            .sync_dir(&idir)
            .map_err(io_err("sync directory", &idir))?;
        Ok(report)
    }
}
