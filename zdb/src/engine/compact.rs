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
//! HISTORY cursors into the rewritten file fail with their usual errors.
//!
//! Sequential mode: slots are never dropped or moved (an id's slot is computed from it); only
//! `dN` is rewritten, and the live slots pointing into it, in any index file, get their data
//! offset patched, from a journal that lists every patch so a crash is finished at open.

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
    pub(crate) live: Vec<(u32, IndexEntryHeader, Vec<u8>)>,
    /// Sequential mode: the index file of each live slot (its offset is in `live`); slots
    /// stay where they are and only their data offset is patched.
    pub(crate) slot_files: Vec<u32>,
    /// Sequential mode: dead slots (file, offset) still pointing into this data file.
    pub(crate) dead_slots: Vec<(u32, u32)>,
    dead_bytes: u64,
    storage: Arc<dyn Storage>,
    index_dir: PathBuf,
    data_dir: PathBuf,
}

/// The rewritten pair, durable under temporary names.
pub struct CompactBuilt {
    pub(crate) plan: CompactPlan,
    /// New (index offset, data offset) of each live entry, in plan order.
    pub(crate) placed: Vec<(u32, u32)>,
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
        (0..self.active.id).collect()
    }

    /// Phase 1 (shared lock): list the live entries of pair `file`; `None` if nothing to reclaim.
    pub fn compact_plan(&self, file: u32) -> Option<CompactPlan> {
        if file >= self.active.id {
            return None;
        }
        if self.mode == Mode::Seq {
            return self.compact_plan_seq(file);
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
        let data_dead = self.data_not_in(file, &live);
        if dead_bytes == 0 && data_dead == 0 {
            return None;
        }
        Some(CompactPlan {
            file,
            mode: self.mode,
            live,
            slot_files: Vec::new(),
            dead_slots: Vec::new(),
            dead_bytes: dead_bytes.max(data_dead),
            storage: self.files.storage.clone(),
            index_dir: self.files.index_dir.clone(),
            data_dir: self.files.data_dir.clone(),
        })
    }

    /// Bytes of data file `file` not held by the `live` entries: superseded versions,
    /// tombstones and torn leftovers.
    fn data_not_in(&self, file: u32, live: &[(u32, IndexEntryHeader, Vec<u8>)]) -> u64 {
        let data_len = self
            .files
            .get(FileKind::Data, file)
            .and_then(|f| f.len())
            .unwrap_or(0);
        let live_data: u64 = live
            .iter()
            .map(|(_, h, k)| Self::data_entry_len(k.len(), h.length as usize))
            .sum();
        data_len.saturating_sub(data::HEADER_LEN as u64 + live_data)
    }

    /// Sequential mode: live slots of any index file whose value is in data file `file`.
    fn compact_plan_seq(&self, file: u32) -> Option<CompactPlan> {
        let mut live = Vec::new();
        let mut slot_files = Vec::new();
        let mut dead_slots = Vec::new();
        for m in 0..=self.active.id {
            let size = self.index_sizes.get(m as usize).copied().unwrap_or(0);
            let mut off = index::HEADER_LEN as u32;
            while off + index::SEQ_ENTRY_LEN as u32 <= size {
                let (hdr, key) = self.read_index_entry(m, off).ok()?;
                if hdr.dataid == file {
                    if hdr.deleted() {
                        dead_slots.push((m, off));
                    } else {
                        live.push((off, hdr, key));
                        slot_files.push(m);
                    }
                }
                off += index::SEQ_ENTRY_LEN as u32;
            }
        }
        // Keep the data file's order.
        let mut order: Vec<usize> = (0..live.len()).collect();
        order.sort_by_key(|&i| live.get(i).map_or(0, |e| e.1.offset));
        let live: Vec<_> = order.iter().filter_map(|&i| live.get(i).cloned()).collect();
        let slot_files: Vec<u32> = order
            .iter()
            .filter_map(|&i| slot_files.get(i).copied())
            .collect();
        let dead = self.data_not_in(file, &live);
        (dead > 0).then(|| CompactPlan {
            file,
            mode: self.mode,
            live,
            slot_files,
            dead_slots,
            dead_bytes: dead,
            storage: self.files.storage.clone(),
            index_dir: self.files.index_dir.clone(),
            data_dir: self.files.data_dir.clone(),
        })
    }

    /// Sequential mode commit: journal the slot patches, swap the data file, patch the slots.
    fn compact_commit_seq(&mut self, built: CompactBuilt) -> Result<CompactStats, OpenError> {
        let plan = &built.plan;
        let file = plan.file;
        let storage = plan.storage.clone();
        let dpath = self.files.path(FileKind::Data, file);
        let mut patches = String::from("seq\n");
        for (((off, hdr, key), m), (_, new_data)) in
            plan.live.iter().zip(&plan.slot_files).zip(&built.placed)
        {
            // Only slots still pointing where the plan saw them (not updated or deleted since).
            let current = self.read_index_entry(*m, *off).ok();
            if current.is_some_and(|(h, k)| {
                !h.deleted() && h.dataid == file && h.offset == hdr.offset && k == *key
            }) {
                patches.push_str(&format!(
                    "{m} {off} {OFFSET_FIELD} {} {new_data}\n",
                    hdr.offset
                ));
            }
        }
        // Dead slots keep their place but no longer point at reclaimed data.
        for (m, off) in &plan.dead_slots {
            patches.push_str(&format!(
                "{m} {off} {DATAID_FIELD} {file} {}\n",
                super::RECLAIMED
            ));
        }
        let jpath = journal(&self.files.index_dir, file);
        write_atomic(&*storage, &jpath, patches.as_bytes())
            .map_err(io_err("write journal", &jpath))?;
        storage
            .rename(&tmp(&dpath), &dpath)
            .map_err(io_err("rename", &dpath))?;
        storage
            .sync_dir(&self.files.data_dir)
            .map_err(io_err("sync directory", &dpath))?;
        self.files.forget(FileKind::Data, file);
        // Patch through the namespace's own handles so buffered bytes stay coherent.
        self.flush_pending()
            .map_err(|e| io_err("flush", &dpath)(std::io::Error::other(e.to_string())))?;
        apply_slot_patches(&*storage, &self.files.index_dir, &patches)
            .map_err(io_err("patch index", &jpath))?;
        self.files.forget_all();
        storage
            .remove_file(&jpath)
            .map_err(io_err("remove journal", &jpath))?;
        storage
            .sync_dir(&self.files.index_dir)
            .map_err(io_err("sync directory", &jpath))?;
        self.dirty.extend(plan.slot_files.iter().copied());
        self.dead_bytes = self.dead_bytes.saturating_sub(plan.dead_bytes);
        Ok(CompactStats {
            files: 1,
            reclaimed: plan.dead_bytes,
        })
    }

    /// Phase 3 (exclusive lock): swap the rewritten pair in.
    pub fn compact_commit(&mut self, built: CompactBuilt) -> Result<CompactStats, OpenError> {
        if built.plan.mode == Mode::Seq {
            return self.compact_commit_seq(built);
        }
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
        let outputs: &[(&PathBuf, &Vec<u8>)] = if self.mode == Mode::Seq {
            &[(&dtmp, &dbuf)]
        } else {
            &[(&dtmp, &dbuf), (&itmp, &ibuf)]
        };
        for &(path, bytes) in outputs {
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
        let text = storage
            .open(&journal(index_dir, *id), OpenMode::ReadOnly)
            .and_then(|f| {
                let mut buf = vec![0u8; usize::try_from(f.len()?).unwrap_or(0).min(64 << 20)];
                f.read_exact_at(&mut buf, 0)?;
                Ok(String::from_utf8_lossy(&buf).into_owned())
            })
            .unwrap_or_default();
        for (dir, prefix) in [(data_dir, 'd'), (index_dir, 'i')] {
            let path = dir.join(format!("{prefix}{id}"));
            let t = tmp(&path);
            if storage.exists(&t) {
                tracing::warn!(file = %path.display(), "finishing an interrupted compaction");
                storage.rename(&t, &path)?;
                storage.sync_dir(dir)?;
            }
        }
        if text.starts_with("seq\n") {
            apply_slot_patches(storage, index_dir, &text)?;
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

/// Offset of the data offset field in an index entry.
const OFFSET_FIELD: u64 = 1;
/// Offset of the data file id field in an index entry.
const DATAID_FIELD: u64 = 14;

/// Apply journaled slot patches `M OFF FIELD OLD NEW` (set the u32 at OFF + FIELD in `iM`
/// from OLD to NEW), skipping slots that no longer hold OLD: idempotent, so a crash while
/// patching is finished at the next open. Every patched file is fsynced.
fn apply_slot_patches(storage: &dyn Storage, index_dir: &Path, text: &str) -> std::io::Result<()> {
    let mut touched: Vec<(u32, Arc<dyn crate::storage::StorageFile>)> = Vec::new();
    for line in text.lines().skip(1) {
        let v: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [m, off, field, old, new] = v.as_slice() else {
            continue;
        };
        let (Ok(m), Ok(old), Ok(new)) =
            (u32::try_from(*m), u32::try_from(*old), u32::try_from(*new))
        else {
            continue;
        };
        let f = match touched.iter().find(|(id, _)| *id == m) {
            Some((_, f)) => f.clone(),
            None => {
                let f = storage.open(&index_dir.join(format!("i{m}")), OpenMode::ReadWrite)?;
                touched.push((m, f.clone()));
                f
            }
        };
        let at = off + field;
        let mut cur = [0u8; 4];
        f.read_exact_at(&mut cur, at)?;
        if u32::from_le_bytes(cur) == old {
            f.write_at(&new.to_le_bytes(), at)?;
        }
    }
    for (_, f) in touched {
        f.sync()?;
    }
    Ok(())
}
