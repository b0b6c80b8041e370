//! At open: finish a compaction whose journal exists, drop the leftovers of one that never
//! reached it.

use std::path::Path;
use std::sync::Arc;

use super::{journal, tmp};
use crate::format::compact_journal::{self, Journal, SlotPatch};
use crate::storage::{OpenMode, Storage, StorageFile};

/// Finish a compaction whose journal exists, or drop the leftovers of one that never reached
/// it.
pub(crate) fn settle_compactions(
    storage: &dyn Storage,
    index_dir: &Path,
    data_dir: &Path,
) -> std::io::Result<()> {
    let journals: Vec<u32> = storage
        .list_dir(index_dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| compact_journal::pair_of(&n.to_string_lossy()))
        .collect();
    for id in &journals {
        let bytes = storage
            .open(&journal(index_dir, *id), OpenMode::ReadOnly)
            .and_then(|f| {
                let mut buf = vec![0u8; usize::try_from(f.len()?).unwrap_or(0).min(64 << 20)];
                f.read_exact_at(&mut buf, 0)?;
                Ok(buf)
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
        if let Journal::SlotPatches(patches) = Journal::decode(&bytes, *id) {
            apply_slot_patches(storage, index_dir, &patches)?;
        }
        storage.remove_file(&journal(index_dir, *id))?;
        storage.sync_dir(index_dir)?;
    }
    for dir in [index_dir, data_dir] {
        for n in storage.list_dir(dir).unwrap_or_default() {
            if n.to_string_lossy().ends_with(compact_journal::TMP_SUFFIX) {
                tracing::warn!(file = %dir.join(&n).display(), "dropping an unfinished compaction");
                storage.remove_file(&dir.join(&n))?;
            }
        }
    }
    Ok(())
}

/// Apply journaled slot patches, skipping slots that no longer hold the old value: idempotent,
/// so a crash while patching is finished at the next open. Every patched file is fsynced.
pub(super) fn apply_slot_patches(
    storage: &dyn Storage,
    index_dir: &Path,
    patches: &[SlotPatch],
) -> std::io::Result<()> {
    let mut touched: Vec<(u32, Arc<dyn StorageFile>)> = Vec::new();
    for p in patches {
        let f = match touched.iter().find(|(id, _)| *id == p.file) {
            Some((_, f)) => f.clone(),
            None => {
                let path = index_dir.join(format!("i{}", p.file));
                let f = storage.open(&path, OpenMode::ReadWrite)?;
                touched.push((p.file, f.clone()));
                f
            }
        };
        let at = p.off + p.field;
        let mut cur = [0u8; 4];
        f.read_exact_at(&mut cur, at)?;
        if u32::from_le_bytes(cur) == p.old {
            f.write_at(&p.new.to_le_bytes(), at)?;
        }
    }
    for (_, f) in touched {
        f.sync()?;
    }
    Ok(())
}
