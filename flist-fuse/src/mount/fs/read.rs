//! The read path: file offsets to blocks, sequential read-ahead per inode, and answering
//! from one block without a copy when a read falls inside it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::format::{BlockRef, Flist};
use crate::mount::errno::FsError;
use crate::mount::fetch::{Fetcher, Priority};
use crate::mount::prefetch::Recorder;

/// Most blocks read ahead of a sequential reader.
const MAX_READAHEAD_BLOCKS: usize = 16;

/// Per-inode read state (sequential detection for read-ahead).
#[derive(Debug, Default, Clone, Copy)]
struct Handle {
    /// End offset of the last read.
    next: u64,
    /// Consecutive sequential reads.
    streak: u32,
    /// Highest block index already queued for read-ahead.
    ahead: usize,
}

/// The bytes of a read: a slice of one cached block, or assembled from several.
pub enum ReadOut {
    /// A range of one decoded block.
    Shared(Arc<Vec<u8>>, std::ops::Range<usize>),
    /// Bytes assembled from several blocks.
    Owned(Vec<u8>),
}

/// Reads file contents of one image through the fetcher.
pub struct Reader {
    fl: Arc<Flist>,
    fetch: Arc<Fetcher>,
    recorder: Option<Arc<Recorder>>,
    handles: Mutex<HashMap<u64, Handle>>,
}

impl Reader {
    /// A reader of `fl`'s files; reads are noted in `recorder` when recording.
    pub fn new(fl: Arc<Flist>, fetch: Arc<Fetcher>, recorder: Option<Arc<Recorder>>) -> Self {
        Reader {
            fl,
            fetch,
            recorder,
            handles: Mutex::new(HashMap::new()),
        }
    }

    /// Forget the read-ahead state of a handle.
    pub fn release(&self, key: u64) {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }

    /// Up to `size` bytes of regular file `n` at `offset`; `key` names its read-ahead state.
    pub fn read(&self, n: u32, key: u64, offset: u64, size: u32) -> Result<ReadOut, FsError> {
        let i = self.fl.inode(n).ok_or(FsError::NotFound)?;
        if i.is_dir() {
            return Err(FsError::IsDir);
        }
        if !i.is_reg() {
            return Err(FsError::Invalid);
        }
        if offset >= i.size || size == 0 {
            return Ok(ReadOut::Owned(Vec::new()));
        }
        let end = (offset + size as u64).min(i.size);
        let bl = self.fl.file_blocks(n);
        let (Some(first), Some(last)) = (self.fl.block_at(n, offset), self.fl.block_at(n, end - 1))
        else {
            return Ok(ReadOut::Owned(Vec::new()));
        };
        // Read-ahead: a sequential reader gets a window doubling up to 16 blocks.
        let window = {
            let mut hs = self.handles.lock().unwrap_or_else(|p| p.into_inner());
            if hs.len() > 4096 {
                hs.clear();
            }
            let h = hs.entry(key).or_default();
            let sequential = offset == h.next || (offset == 0 && h.next == 0);
            h.streak = if sequential { h.streak + 1 } else { 0 };
            h.next = end;
            let w = if sequential {
                (1usize << h.streak.min(5)).min(MAX_READAHEAD_BLOCKS)
            } else {
                0
            };
            let from = (last + 1).max(if sequential { h.ahead + 1 } else { 0 });
            let to = (last + w).min(bl.len().saturating_sub(1));
            if w > 0 && from <= to {
                h.ahead = to;
                Some(from..=to)
            } else {
                None
            }
        };
        if let Some(r) = window
            && let Some(ra) = bl.get(r)
        {
            self.fetch.prefetch(ra, Priority::ReadAhead);
        }
        let want = &bl[first..=last];
        if let Some(rec) = &self.recorder {
            let base = self.fl.inode(n).map(|i| i.first as usize).unwrap_or(0);
            rec.touch_range(base + first, base + last);
        }
        let mut got = self.fetch.get_many(want);
        let span = |b: &BlockRef| {
            let s = offset.max(b.file_offset) - b.file_offset;
            let e = end.min(b.file_end()) - b.file_offset;
            b.off as usize + s as usize..b.off as usize + e as usize
        };
        if let ([b], [_]) = (want, got.as_slice()) {
            // Within one block (the common case): answer from the block, no copy.
            let d = got.pop().ok_or(FsError::Invalid)??;
            let r = span(b);
            if d.get(r.clone()).is_none() {
                return Err(FsError::Invalid);
            }
            return Ok(ReadOut::Shared(d, r));
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (b, d) in want.iter().zip(got) {
            let d = d?;
            out.extend_from_slice(d.get(span(b)).ok_or(FsError::Invalid)?);
        }
        Ok(ReadOut::Owned(out))
    }
}
