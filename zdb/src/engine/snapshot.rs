//! Key map snapshot: a user-mode namespace's in-memory index, written at clean shutdown so the
//! next open skips replaying every index entry (file layout: `format/keymap_snapshot.rs`).
//!
//! Replaying 10M entries costs ~3 s, nearly all of it cache misses: each insert lands in a
//! random bucket. The snapshot lists the keys in table order and the map keeps its hash seed,
//! so restoring inserts them in (nearly) ascending bucket order: sequential memory.
//!
//! Trust: the snapshot names every index file with its length and CRC-32C over its whole
//! content, and is used only if all of them, and no other index file, are there exactly so.
//! Any change by anyone (a later write of ours after a crash, the C 0-db, a repair) means a
//! normal replay; so does a snapshot that is torn or fails its own trailing CRC. The data tail
//! scan after it runs as always, and the last index entry must still match its data entry.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::FileKind;
use super::keymap::{KeyMap, Loc};
use super::namespace::Namespace;
use crate::format::keymap_snapshot::{
    FILE_NAME, FILE_RECORD_LEN, FileRecord, HEADER_LEN, Header, KeyLoc, LOC_LEN,
    MIN_KEY_RECORD_LEN, TRAILER_LEN,
};
use crate::storage::{OpenMode, StorageFile};

/// Read and write in pieces of this size.
const CHUNK: usize = 4 << 20;

/// CRC-32C of a whole file, read in chunks.
fn file_crc(f: &dyn StorageFile, len: u64) -> io::Result<u32> {
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
    let (mut crc, mut off) = (0u32, 0u64);
    while off < len {
        let n = buf
            .len()
            .min(usize::try_from(len - off).unwrap_or(usize::MAX));
        let part = buf.get_mut(..n).unwrap_or_default();
        f.read_exact_at(part, off)?;
        crc = crc32c::crc32c_append(crc, part);
        off += n as u64;
    }
    Ok(crc)
}

/// Buffered writer into a storage file, computing the CRC of what it wrote.
struct Out {
    file: std::sync::Arc<dyn StorageFile>,
    buf: Vec<u8>,
    off: u64,
    crc: u32,
}

impl Out {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, &self.buf);
        self.file.write_at(&self.buf, self.off)?;
        self.off += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl Namespace {
    fn snapshot_path(&self) -> PathBuf {
        self.files.index_dir.join(FILE_NAME)
    }

    /// Writes the snapshot (temp file, fsync, rename, folder fsync) when
    /// [`Namespace::snapshot_wanted`]; returns whether it did. Call after
    /// [`Namespace::sync_now`], under a lock that keeps writers out. A failure leaves the
    /// previous state: no snapshot, or one that no longer matches and will be ignored.
    pub fn save_snapshot(&self) -> io::Result<bool> {
        if !self.snapshot_wanted() {
            return Ok(false);
        }
        let marker = self.change_marker();
        let storage = self.files.storage.clone();
        let path = self.snapshot_path();
        let files = u32::try_from(self.index_sizes.len()).map_err(io::Error::other)?;
        let mut head = Vec::with_capacity(HEADER_LEN + FILE_RECORD_LEN * files as usize);
        let header = Header {
            seed: self.keys.seed(),
            files,
            keys: self.keys.len() as u64,
            next_entry: self.next_entry,
            live_bytes: self.usage.live_bytes(),
            index_faults: self.stats.index_faults,
            last_index_off: self.last_index_off,
            last_data_off: self.last_data_off,
            tail_start: u64::from(self.active.data_size),
        };
        head.extend_from_slice(&header.encode());
        for id in 0..files {
            let f = self.files.get(FileKind::Index, id)?;
            let index_len = f.len()?;
            let record = FileRecord {
                index_len,
                index_crc: file_crc(&*f, index_len)?,
                first_entry: self.seq_first.get(id as usize).copied().unwrap_or(0),
                dead_bytes: self.usage.dead_in(id),
            };
            head.extend_from_slice(&record.encode());
        }
        crate::storage::replace_with(&*storage, &path, |file| {
            let mut out = Out {
                file,
                buf: Vec::with_capacity(CHUNK + 512),
                off: 0,
                crc: 0,
            };
            out.put(&head)?;
            let mut record = Vec::with_capacity(MIN_KEY_RECORD_LEN + 255);
            for (key, loc) in self.keys.iter() {
                record.clear();
                KeyLoc {
                    file: loc.file,
                    idx_off: loc.idx_off,
                    data_off: loc.data_off,
                    len: loc.len,
                }
                .encode_record(key, &mut record);
                out.put(&record)?;
            }
            out.flush()?;
            let crc = out.crc;
            out.put(&crc.to_le_bytes())?;
            out.flush()
        })?;
        self.snapshot_marker.store(marker, Ordering::Relaxed);
        Ok(true)
    }

    /// Back to the blank state a replay starts from.
    pub(crate) fn reset_loaded(&mut self) {
        self.keys = KeyMap::default();
        self.seq_first.clear();
        self.index_sizes.clear();
        self.next_entry = 0;
        self.usage = Default::default();
        self.stats.index_faults = 0;
        self.last_index_off = 0;
        self.last_data_off = 0;
    }

    /// Drops a snapshot that did not match (it never will again).
    pub(crate) fn discard_snapshot(&self, why: &str) {
        tracing::info!(namespace = %String::from_utf8_lossy(self.name()), why, "key map snapshot not used: replaying the index");
        let _ = self.files.storage.remove_file(&self.snapshot_path());
    }

    /// Restores the key map and counters from a snapshot matching the `count` index files
    /// exactly; returns where the data tail scan starts, or `None` (nothing changed) to
    /// replay the index instead.
    pub(crate) fn restore_snapshot(&mut self, count: u32) -> Option<u64> {
        let file = self
            .files
            .storage
            .open(&self.snapshot_path(), OpenMode::ReadOnly)
            .ok()?;
        match self.apply_snapshot(file, count) {
            Ok(tail_start) => Some(tail_start),
            Err(why) => {
                self.reset_loaded();
                self.discard_snapshot(why);
                None
            }
        }
    }

    /// Streams the snapshot in (no copy of it in memory: the map itself is big enough),
    /// checking its CRC at the end, before anything is kept.
    fn apply_snapshot(
        &mut self,
        file: std::sync::Arc<dyn StorageFile>,
        count: u32,
    ) -> Result<u64, &'static str> {
        let len = file.len().map_err(|_| "unreadable")?;
        let body = len.checked_sub(TRAILER_LEN as u64).ok_or("torn")?;
        let mut c = Input {
            file: &*file,
            end: body,
            off: 0,
            buf: Vec::new(),
            pos: 0,
            crc: 0,
        };
        let torn = "torn";
        let head = Header::decode(c.take(HEADER_LEN).ok_or(torn)?).map_err(|e| match e {
            crate::format::FormatError::Invalid(_) => "not a snapshot",
            _ => torn,
        })?;
        if head.files != count {
            return Err("index files added or removed since");
        }
        let mut sizes = Vec::with_capacity(count as usize);
        let mut firsts = Vec::with_capacity(count as usize);
        let mut dead = Vec::with_capacity(count as usize);
        for id in 0..count {
            let record =
                FileRecord::decode(c.take(FILE_RECORD_LEN).ok_or(torn)?).map_err(|_| torn)?;
            let f = self
                .files
                .get(FileKind::Index, id)
                .map_err(|_| "index file unreadable")?;
            let len = record.index_len;
            if f.len().ok() != Some(len) || file_crc(&*f, len).ok() != Some(record.index_crc) {
                return Err("an index file changed since");
            }
            sizes.push(u32::try_from(len).map_err(|_| "index file too large")?);
            firsts.push(record.first_entry);
            dead.push(record.dead_bytes);
        }
        // A count beyond what the file can hold is garbage.
        if head.keys > body / MIN_KEY_RECORD_LEN as u64 {
            return Err("impossible key count");
        }
        let mut keys = KeyMap::with_seed(head.seed);
        keys.reserve(usize::try_from(head.keys).map_err(|_| torn)?);
        for _ in 0..head.keys {
            let klen = usize::from(c.u8().ok_or(torn)?);
            let rec = c.take(klen + LOC_LEN).ok_or(torn)?;
            let (key, loc) = rec.split_at(klen);
            let loc = KeyLoc::decode(loc).map_err(|_| torn)?;
            let loc = Loc {
                file: loc.file,
                idx_off: loc.idx_off,
                data_off: loc.data_off,
                len: loc.len,
            };
            if klen == 0 || loc.file >= count {
                return Err("impossible entry");
            }
            keys.insert_new(key, loc).map_err(|_| "key arena full")?;
        }
        if c.remaining() != 0 {
            return Err("trailing bytes");
        }
        let mut trailer = [0u8; 4];
        file.read_exact_at(&mut trailer, body).map_err(|_| torn)?;
        if c.crc.to_le_bytes() != trailer {
            return Err("checksum mismatch");
        }
        if keys.len() as u64 != head.keys {
            return Err("duplicate keys");
        }
        self.keys = keys;
        self.index_sizes = sizes;
        self.seq_first = firsts;
        self.next_entry = head.next_entry;
        self.usage = super::usage::Usage::restored(head.live_bytes, dead);
        self.stats.index_faults = head.index_faults;
        self.last_index_off = head.last_index_off;
        self.last_data_off = head.last_data_off;
        Ok(head.tail_start)
    }
}

/// Buffered sequential reader over the snapshot body, computing its CRC as it goes.
struct Input<'a> {
    file: &'a dyn StorageFile,
    /// End of the body (the trailer follows).
    end: u64,
    /// File offset of `buf[0]`'s successor chunk.
    off: u64,
    buf: Vec<u8>,
    pos: usize,
    crc: u32,
}

impl Input<'_> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64 + (self.end - self.off)
    }

    /// The next `n` bytes (`n` well under a chunk), or `None` past the body's end.
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.buf.len() - self.pos < n {
            self.buf.drain(..self.pos);
            self.pos = 0;
            let want = usize::try_from(self.end - self.off)
                .unwrap_or(usize::MAX)
                .min(CHUNK);
            let have = self.buf.len();
            self.buf.resize(have + want, 0);
            let fresh = self.buf.get_mut(have..)?;
            self.file.read_exact_at(fresh, self.off).ok()?;
            self.crc = crc32c::crc32c_append(self.crc, fresh);
            self.off += want as u64;
            if self.buf.len() < n {
                return None;
            }
        }
        let out = self.buf.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
}
