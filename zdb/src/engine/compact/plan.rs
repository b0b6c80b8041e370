//! Phase 1, under the shared lock: list the entries of a pair that are still current.

use super::CompactPlan;
use crate::engine::namespace::Namespace;
use crate::engine::{FileKind, Mode};
use crate::format::{IndexEntryHeader, data, index};

impl Namespace {
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
}
