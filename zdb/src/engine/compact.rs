//! Online compaction: rewrite a closed file pair N with only its live entries, reclaiming the
//! space of overwritten and deleted versions, while the namespace keeps serving.
//!
//! Three phases, so the exclusive lock is held only for the swap:
//! 1. plan (shared lock): walk `iN`, list the entries that are still the current version;
//! 2. build (no lock): write `dN.compact` and `iN.compact` holding only those, fsync them;
//! 3. commit (exclusive lock): entries superseded meanwhile are flagged in the new index, a
//!    journal `compact-N` is made durable, both files are renamed over the old pair, the
//!    journal is removed, and the in-memory index is pointed at the new offsets.
//!
//! A crash before the journal exists leaves the old pair (stray `.compact` files are removed
//! at open); a crash after it is rolled forward at open. The result keeps the 0-db layout.
//! HISTORY of a compacted-away version ends (new entries carry no parent), and SCAN or
//! HISTORY cursors into the rewritten file fail with their usual errors. Sequential-mode
//! namespaces are not compacted yet (their live slots can point into any data file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::keymap::Loc;
use super::load::io_err;
use super::namespace::Namespace;
use super::{FileKind, Mode, OpenError};
use crate::format::{
    DataEntryHeader, DataHeader, FLAG_DELETED, IndexEntryHeader, IndexHeader, crc32, data, index,
};
use crate::storage::{OpenMode, Storage, write_atomic};

/// What to copy out of pair N.
pub struct CompactPlan {
    file: u32,
    mode: Mode,
    /// Live entries: old index offset, header, key.
    live: Vec<(u32, IndexEntryHeader, Vec<u8>)>,
    dead_bytes: u64,
    storage: Arc<dyn Storage>,
    index_dir: PathBuf,
    data_dir: PathBuf,
}

/// The rewritten pair, durable under temporary names.
pub struct CompactBuilt {
    plan: CompactPlan,
    /// New (index offset, data offset) of each live entry, in plan order.
    placed: Vec<(u32, u32)>,
    index_len: u32,
}

/// Outcome of compacting one pair.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactStats {
    /// Pairs rewritten.
    pub files: u32,
    /// Bytes no longer on disk.
    pub reclaimed: u64,
}

fn tmp(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".compact");
    PathBuf::from(s)
}

fn journal(index_dir: &Path, file: u32) -> PathBuf {
    index_dir.join(format!("compact-{file}"))
}

impl Namespace {
    /// Closed pairs that may be compacted.
    pub fn compactable_files(&self) -> Vec<u32> {
        if self.mode == Mode::Seq {
            Vec::new()
        } else {
            (0..self.active.id).collect()
        }
    }

    /// Phase 1 (shared lock): list the live entries of pair `file`; `None` if nothing to reclaim.
    pub fn compact_plan(&self, file: u32) -> Option<CompactPlan> {
        if self.mode == Mode::Seq || file >= self.active.id {
            return None;
        }
        let size = *self.index_sizes.get(file as usize)?;
        let mut off = index::HEADER_LEN as u32;
        let mut live = Vec::new();
        let mut dead_bytes = 0;
        while off < size {
            let (hdr, key) = self.read_index_entry(file, off).ok()?;
            let current = !hdr.deleted()
                && self
                    .keys
                    .get(&key)
                    .is_some_and(|l| l.file == file && l.idx_off == off);
            if current {
                live.push((off, hdr, key));
            } else {
                dead_bytes += (data::ENTRY_HEADER_LEN + index::ENTRY_HEADER_LEN) as u64
                    + 2 * u64::from(hdr.idlength)
                    + u64::from(hdr.length);
            }
            off += hdr.entry_len() as u32;
        }
        let data_len = self
            .files
            .get(FileKind::Data, file)
            .and_then(|f| f.len())
            .unwrap_or(0);
        let live_data: u64 = live
            .iter()
            .map(|(_, h, k)| Self::data_entry_len(k.len(), h.length as usize))
            .sum();
        // Tombstones and torn leftovers in the data file are dead too.
        let data_dead = data_len.saturating_sub(data::HEADER_LEN as u64 + live_data);
        if dead_bytes == 0 && data_dead == 0 {
            return None;
        }
        Some(CompactPlan {
            file,
            mode: self.mode,
            live,
            dead_bytes: dead_bytes.max(data_dead),
            storage: self.files.storage.clone(),
            index_dir: self.files.index_dir.clone(),
            data_dir: self.files.data_dir.clone(),
        })
    }

    /// Phase 3 (exclusive lock): swap the rewritten pair in.
    pub fn compact_commit(&mut self, built: CompactBuilt) -> Result<CompactStats, OpenError> {
        let plan = &built.plan;
        let file = plan.file;
        let storage = plan.storage.clone();
        let (ipath, dpath) = (
            self.files.path(FileKind::Index, file),
            self.files.path(FileKind::Data, file),
        );
        let (itmp, dtmp) = (tmp(&ipath), tmp(&dpath));
        // Entries overwritten or deleted since the plan: flag them in the new index.
        let new_index = storage
            .open(&itmp, OpenMode::ReadWrite)
            .map_err(io_err("open", &itmp))?;
        for ((old_off, _, key), (new_off, _)) in plan.live.iter().zip(&built.placed) {
            let still = self
                .keys
                .get(key)
                .is_some_and(|l| l.file == file && l.idx_off == *old_off);
            if !still {
                new_index
                    .write_at(
                        &[FLAG_DELETED],
                        u64::from(*new_off) + index::FLAGS_OFFSET as u64,
                    )
                    .map_err(io_err("write", &itmp))?;
            }
        }
        new_index.sync().map_err(io_err("sync", &itmp))?;
        let jpath = journal(&self.files.index_dir, file);
        write_atomic(&*storage, &jpath, file.to_string().as_bytes())
            .map_err(io_err("write journal", &jpath))?;
        storage
            .rename(&dtmp, &dpath)
            .map_err(io_err("rename", &dtmp))?;
        storage
            .rename(&itmp, &ipath)
            .map_err(io_err("rename", &itmp))?;
        storage
            .sync_dir(&self.files.data_dir)
            .map_err(io_err("sync directory", &dpath))?;
        storage
            .sync_dir(&self.files.index_dir)
            .map_err(io_err("sync directory", &ipath))?;
        storage
            .remove_file(&jpath)
            .map_err(io_err("remove journal", &jpath))?;
        storage
            .sync_dir(&self.files.index_dir)
            .map_err(io_err("sync directory", &jpath))?;

        self.files.forget(FileKind::Index, file);
        self.files.forget(FileKind::Data, file);
        for ((old_off, hdr, key), (new_off, new_data)) in plan.live.iter().zip(&built.placed) {
            if self
                .keys
                .get(key)
                .is_some_and(|l| l.file == file && l.idx_off == *old_off)
            {
                let loc = Loc {
                    file,
                    idx_off: *new_off,
                    data_off: *new_data,
                    len: hdr.length,
                };
                let _ = self.keys.insert(key, loc);
            }
        }
        if let Some(size) = self.index_sizes.get_mut(file as usize) {
            *size = built.index_len;
        }
        self.dirty.insert(file);
        self.dead_bytes = self.dead_bytes.saturating_sub(plan.dead_bytes);
        Ok(CompactStats {
            files: 1,
            reclaimed: plan.dead_bytes,
        })
    }
}

impl CompactPlan {
    /// Phase 2 (no lock): write the live entries to `dN.compact` / `iN.compact` and fsync them.
    pub fn build(self) -> Result<CompactBuilt, OpenError> {
        let storage = self.storage.clone();
        let ipath = self.index_dir.join(format!("i{}", self.file));
        let dpath = self.data_dir.join(format!("d{}", self.file));
        let (itmp, dtmp) = (tmp(&ipath), tmp(&dpath));
        let old_data = storage
            .open(&dpath, OpenMode::ReadOnly)
            .map_err(io_err("open", &dpath))?;
        let mut dbuf = DataHeader { fileid: self.file }.encode().to_vec();
        let mut ibuf = IndexHeader {
            fileid: self.file,
            mode: self.mode.as_byte(),
        }
        .encode()
        .to_vec();
        let mut placed = Vec::with_capacity(self.live.len());
        let mut prev_index = 0u32;
        let mut prev_data = 0u32;
        for (_, hdr, key) in &self.live {
            if hdr.length as usize > crate::MAX_VALUE {
                return Err(io_err("verify", &ipath)(std::io::Error::other(
                    "impossible length in index",
                )));
            }
            let mut entry = vec![0u8; data::ENTRY_HEADER_LEN + key.len() + hdr.length as usize];
            old_data
                .read_exact_at(&mut entry, u64::from(hdr.offset))
                .map_err(io_err("read", &dpath))?;
            let dh = DataEntryHeader::decode(&entry)
                .map_err(|e| io_err("decode", &dpath)(std::io::Error::other(e)))?;
            let value = entry
                .get(data::ENTRY_HEADER_LEN + key.len()..)
                .unwrap_or_default();
            if crc32(value) != dh.crc || dh.crc != hdr.crc {
                // Never copy a corrupt value under a fresh header: keep the file as it is.
                return Err(io_err("verify", &dpath)(std::io::Error::other(format!(
                    "entry at {} fails its crc; run `zdb check --repair` first",
                    hdr.offset
                ))));
            }
            let data_off = dbuf.len() as u32;
            DataEntryHeader {
                previous: prev_data,
                ..dh
            }
            .encode_into(key, value, &mut dbuf);
            prev_data = data_off;
            let idx_off = ibuf.len() as u32;
            IndexEntryHeader {
                offset: data_off,
                previous: prev_index,
                flags: 0,
                dataid: self.file,
                parentid: 0,
                parentoff: 0,
                ..*hdr
            }
            .encode_into(key, &mut ibuf);
            prev_index = idx_off;
            placed.push((idx_off, data_off));
        }
        for (path, bytes) in [(&dtmp, &dbuf), (&itmp, &ibuf)] {
            let f = storage
                .open(path, OpenMode::Truncate)
                .map_err(io_err("create", path))?;
            f.write_at(bytes, 0).map_err(io_err("write", path))?;
            f.sync().map_err(io_err("sync", path))?;
        }
        let index_len = ibuf.len() as u32;
        Ok(CompactBuilt {
            plan: self,
            placed,
            index_len,
        })
    }
}

/// At open: finish a compaction whose journal exists, or drop the leftovers of one that
/// never reached it.
pub(crate) fn settle_compactions(
    storage: &dyn Storage,
    index_dir: &Path,
    data_dir: &Path,
) -> std::io::Result<()> {
    let names = storage.list_dir(index_dir).unwrap_or_default();
    let mut journals = Vec::new();
    for n in &names {
        let n = n.to_string_lossy();
        if let Some(id) = n
            .strip_prefix("compact-")
            .and_then(|i| i.parse::<u32>().ok())
        {
            journals.push(id);
        }
    }
    for id in &journals {
        for (dir, prefix) in [(data_dir, 'd'), (index_dir, 'i')] {
            let path = dir.join(format!("{prefix}{id}"));
            let t = tmp(&path);
            if storage.exists(&t) {
                tracing::warn!(file = %path.display(), "finishing an interrupted compaction");
                storage.rename(&t, &path)?;
                storage.sync_dir(dir)?;
            }
        }
        storage.remove_file(&journal(index_dir, *id))?;
        storage.sync_dir(index_dir)?;
    }
    for dir in [index_dir, data_dir] {
        for n in storage.list_dir(dir).unwrap_or_default() {
            if n.to_string_lossy().ends_with(".compact") {
                tracing::warn!(file = %dir.join(&n).display(), "dropping an unfinished compaction");
                storage.remove_file(&dir.join(&n))?;
            }
        }
    }
    Ok(())
}
