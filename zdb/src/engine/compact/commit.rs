//! Phase 3, under the exclusive lock: journal the swap, rename the rewritten files over the old
//! ones, point the in-memory index at the new offsets, remove the journal.

use super::settle::apply_slot_patches;
use super::{CompactBuilt, CompactStats, journal, tmp};
use crate::engine::error::{OpenError, io_err};
use crate::engine::keymap::Loc;
use crate::engine::namespace::Namespace;
use crate::engine::{FileKind, Mode};
use crate::format::compact_journal::{DATAID_FIELD, Journal, OFFSET_FIELD, SlotPatch};
use crate::format::{FLAG_DELETED, index};
use crate::storage::{OpenMode, write_atomic};

impl Namespace {
    /// Sequential mode commit: journal the slot patches, swap the data file, patch the slots.
    fn compact_commit_seq(&mut self, built: CompactBuilt) -> Result<CompactStats, OpenError> {
        let plan = &built.plan;
        let file = plan.file;
        let storage = plan.storage.clone();
        let dpath = self.files.path(FileKind::Data, file);
        let mut patches = Vec::new();
        for (((off, hdr, key), m), (_, new_data)) in
            plan.live.iter().zip(&plan.slot_files).zip(&built.placed)
        {
            // Only slots still pointing where the plan saw them (not updated or deleted since).
            let current = self.read_index_entry(*m, *off).ok();
            if current.is_some_and(|(h, k)| {
                !h.deleted() && h.dataid == file && h.offset == hdr.offset && k == *key
            }) {
                patches.push(SlotPatch {
                    file: *m,
                    off: u64::from(*off),
                    field: OFFSET_FIELD,
                    old: hdr.offset,
                    new: *new_data,
                });
            }
        }
        // Dead slots keep their place but no longer point at reclaimed data.
        for (m, off) in &plan.dead_slots {
            patches.push(SlotPatch {
                file: *m,
                off: u64::from(*off),
                field: DATAID_FIELD,
                old: file,
                new: crate::engine::RECLAIMED,
            });
        }
        let jpath = journal(&self.files.index_dir, file);
        write_atomic(
            &*storage,
            &jpath,
            &Journal::SlotPatches(patches.clone()).encode(),
        )
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
        remove_journal(&*storage, &self.files.index_dir, &jpath)?;
        self.dirty.extend(plan.slot_files.iter().copied());
        self.usage.reclaimed(file, plan.dead_bytes);
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
        write_atomic(&*storage, &jpath, &Journal::Pair(file).encode())
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
        remove_journal(&*storage, &self.files.index_dir, &jpath)?;

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
        self.usage.reclaimed(file, plan.dead_bytes);
        Ok(CompactStats {
            files: 1,
            reclaimed: plan.dead_bytes,
        })
    }
}

/// The swap is complete: the journal goes (durably).
fn remove_journal(
    storage: &dyn crate::storage::Storage,
    index_dir: &std::path::Path,
    jpath: &std::path::Path,
) -> Result<(), OpenError> {
    storage
        .remove_file(jpath)
        .map_err(io_err("remove journal", jpath))?;
    storage
        .sync_dir(index_dir)
        .map_err(io_err("sync directory", jpath))
}
