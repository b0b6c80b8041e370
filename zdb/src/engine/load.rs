//! Opening a namespace: descriptor, index replay, and repair of torn tails.
//!
//! Recovery rules (0-db itself has none):
//! - Index entries are parsed until one does not fit the file or has an impossible key length;
//!   in the last index file, entries are then checked from the end against the data entry
//!   they point to (key, length, CRC of the value) and every failing trailing entry is cut.
//! - The last data file is walked from the end of the last indexed entry: every whole entry
//!   whose value matches its CRC is re-indexed (a tombstone deletes its key), and the file is
//!   cut at the first entry that is torn or fails its checksum. Replaying is idempotent.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::entries::{Entries, NullFile, Parsed, read_all, read_entry_at, read_header};
use super::error::io_err;
use super::files::Files;
use super::keymap::{KeyMap, Loc};
use super::namespace::{Active, LockState, Namespace, NsStats};
use super::{EngineConfig, FileKind, Mode, OpenError, RunMode};
use crate::format::{
    DataEntryHeader, DataHeader, Descriptor, IndexEntryHeader, IndexHeader, data, descriptor, index,
};
use crate::storage::append::Appender;
use crate::storage::{OpenMode, Storage, StorageFile, write_atomic};

impl Namespace {
    /// Directory names for a namespace under the two roots.
    pub fn dirs_for(index_root: &Path, data_root: &Path, name: &[u8]) -> (PathBuf, PathBuf) {
        let name = OsStr::from_bytes(name);
        (index_root.join(name), data_root.join(name))
    }

    /// Create a new namespace on disk (directories, descriptor, first file pair) and open it.
    pub fn create(
        storage: Arc<dyn Storage>,
        index_root: &Path,
        data_root: &Path,
        desc: Descriptor,
        cfg: EngineConfig,
    ) -> Result<Namespace, OpenError> {
        let (idir, ddir) = Self::dirs_for(index_root, data_root, &desc.name);
        for (dir, root) in [(&idir, index_root), (&ddir, data_root)] {
            storage
                .create_dir_all(dir)
                .map_err(io_err("create directory", dir))?;
            storage
                .sync_dir(root)
                .map_err(io_err("sync directory", root))?;
        }
        let path = idir.join(descriptor::FILE_NAME);
        write_atomic(&*storage, &path, &desc.encode())
            .map_err(io_err("write descriptor", &path))?;
        Self::open(storage, index_root, data_root, &desc.name, cfg)
    }

    /// Open (and repair if needed) an existing namespace; creates what is missing.
    pub fn open(
        storage: Arc<dyn Storage>,
        index_root: &Path,
        data_root: &Path,
        name: &[u8],
        cfg: EngineConfig,
    ) -> Result<Namespace, OpenError> {
        let (idir, ddir) = Self::dirs_for(index_root, data_root, name);
        for dir in [&idir, &ddir] {
            if !storage.exists(dir) {
                storage
                    .create_dir_all(dir)
                    .map_err(io_err("create directory", dir))?;
            }
        }
        let desc_path = idir.join(descriptor::FILE_NAME);
        let desc = match storage.open(&desc_path, OpenMode::ReadOnly) {
            Ok(f) => {
                let bytes = read_all(&*f).map_err(io_err("read descriptor", &desc_path))?;
                Descriptor::decode(&bytes).map_err(|source| OpenError::Descriptor {
                    path: desc_path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let d = Descriptor::new(name);
                write_atomic(&*storage, &desc_path, &d.encode())
                    .map_err(io_err("write descriptor", &desc_path))?;
                d
            }
            Err(e) => return Err(io_err("open descriptor", &desc_path)(e)),
        };

        super::compact::settle_compactions(&*storage, &idir, &ddir)
            .map_err(io_err("settle compaction", &idir))?;
        let files = Files::new(storage.clone(), idir, ddir);
        let mut count = 0u32;
        while storage.exists(&files.path(FileKind::Index, count)) {
            count += 1;
        }
        let default_mode = if cfg.run_mode == RunMode::Seq {
            Mode::Seq
        } else {
            Mode::User
        };
        let mut ns = Self::blank(cfg, files, desc, default_mode);
        let d0 = ns.files.path(FileKind::Data, 0);
        let has_data = storage
            .open(&d0, OpenMode::ReadOnly)
            .and_then(|f| f.len())
            .is_ok_and(|len| len > data::HEADER_LEN as u64);
        if count == 0 && has_data {
            // Index lost but data present: rebuild the index rather than start empty.
            tracing::warn!(path = %d0.display(), "no index files: rebuilding the index from the data files");
            ns.rebuild_from_data(cfg_mode_hint(&ns))?;
            return Ok(ns);
        }
        if count == 0 {
            ns.create_pair(0).map_err(|(path, source)| OpenError::Io {
                op: "create file",
                path,
                source,
            })?;
            return Ok(ns);
        }
        ns.load(count)?;
        Ok(ns)
    }

    /// A namespace object with no files loaded yet.
    pub(crate) fn blank(
        cfg: EngineConfig,
        files: Files,
        desc: Descriptor,
        default_mode: Mode,
    ) -> Namespace {
        let placeholder = Active {
            id: 0,
            index: Arc::new(Appender::new(Arc::new(NullFile), 0)),
            data: Arc::new(Appender::new(Arc::new(NullFile), 0)),
            index_size: index::HEADER_LEN as u32,
            data_size: data::HEADER_LEN as u32,
        };
        Namespace {
            cfg,
            files,
            desc,
            mode: default_mode,
            active: placeholder,
            keys: KeyMap::default(),
            seq_first: Vec::new(),
            next_entry: 0,
            rotation: None,
            usage: Default::default(),
            last_index_off: 0,
            last_data_off: 0,
            index_sizes: Vec::new(),
            dirty: Default::default(),
            unsynced: Vec::new(),
            poisoned: None,
            durability: Default::default(),
            commit_token: None,
            replaying: false,
            last_sync: Instant::now(),
            lock: LockState::Open,
            maxsize_override: None,
            stats: NsStats::default(),
            from_snapshot: false,
            snapshot_marker: std::sync::atomic::AtomicU64::new(u64::MAX),
            read_cache: None,
        }
    }

    fn load(&mut self, count: u32) -> Result<(), OpenError> {
        let last = count - 1;
        let t = Instant::now();
        if self.mode == Mode::User
            && let Some(tail_start) = self.restore_snapshot(count)
        {
            if self.last_entry_matches_data(last) {
                self.from_snapshot = true;
                tracing::info!(
                    namespace = %String::from_utf8_lossy(self.name()),
                    keys = self.keys.len(),
                    ms = t.elapsed().as_millis() as u64,
                    "key map restored from its snapshot"
                );
                let restored = self.next_entry;
                self.open_active(last, tail_start)?;
                // What the snapshot holds, unless the tail scan found more.
                if self.next_entry == restored {
                    self.snapshot_marker
                        .store(self.change_marker(), std::sync::atomic::Ordering::Relaxed);
                }
                return Ok(());
            }
            self.reset_loaded();
            self.discard_snapshot("the last index entry no longer matches its data");
        }
        let tail_start = self.replay_index(count)?;
        self.open_active(last, tail_start)
    }

    /// Whether the last entry of index file `last` (if any; the restored `last_index_off`)
    /// ends the file and points at a whole data entry, so a replay would cut nothing.
    fn last_entry_matches_data(&self, last: u32) -> bool {
        let size = self.index_sizes.last().copied().unwrap_or(0) as usize;
        if size <= index::HEADER_LEN {
            return size == index::HEADER_LEN;
        }
        // Not `read_index_entry`: it reads the active pair through handles not opened yet.
        let Ok(file) = self.files.get(FileKind::Index, last) else {
            return false;
        };
        let mut buf = [0u8; index::ENTRY_HEADER_LEN + 255];
        let off = self.last_index_off as usize;
        let n = file.read_at(&mut buf, off as u64).unwrap_or(0);
        let got = buf.get(..n).unwrap_or_default();
        let Ok(hdr) = IndexEntryHeader::decode(got) else {
            return false;
        };
        if off + hdr.entry_len() != size {
            return false;
        }
        let e = Parsed {
            off: self.last_index_off,
            hdr,
        };
        let key = got
            .get(index::ENTRY_HEADER_LEN..index::ENTRY_HEADER_LEN + usize::from(hdr.idlength))
            .unwrap_or_default();
        self.entry_matches_data(last, &e, key)
    }

    /// Replays every index file into the key map and counters; returns where the data tail
    /// scan of the last data file starts.
    fn replay_index(&mut self, count: u32) -> Result<u64, OpenError> {
        let last = count - 1;
        // Highest data end referenced by the index inside data file `last`: where the tail
        // scan starts.
        let mut tail_start = data::HEADER_LEN as u64;
        // Size the key table once, from the first file's entry density, instead of rehashing
        // every time it doubles (a third of the load time for millions of keys).
        let total_index_bytes: u64 = (0..count)
            .filter_map(|i| self.files.get(FileKind::Index, i).ok()?.len().ok())
            .sum();
        let mut reserved = false;
        for id in 0..count {
            let path = self.files.path(FileKind::Index, id);
            let file = self
                .files
                .get(FileKind::Index, id)
                .map_err(io_err("open index", &path))?;
            let buf = read_all(&*file).map_err(io_err("read index", &path))?;
            let header = IndexHeader::decode(&buf);
            let mode = match header {
                Ok(h) => Mode::from_byte(h.mode),
                Err(_) if id == last => self.mode,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable index header, file skipped");
                    self.stats.index_faults += 1;
                    self.index_sizes.push(index::HEADER_LEN as u32);
                    self.seq_first.push(self.next_entry);
                    continue;
                }
            };
            if id == 0 {
                match (self.cfg.run_mode, mode) {
                    (RunMode::User, Mode::Seq) | (RunMode::Seq, Mode::User) => {
                        return Err(OpenError::ModeMismatch { path });
                    }
                    _ => self.mode = mode,
                }
            }
            if header.is_err() {
                // Torn creation of the last index file: write its header again.
                let hdr = IndexHeader {
                    fileid: id,
                    mode: self.mode.as_byte(),
                };
                file.set_len(0).map_err(io_err("truncate index", &path))?;
                file.write_at(&hdr.encode(), 0)
                    .map_err(io_err("write index", &path))?;
                file.sync().map_err(io_err("sync index", &path))?;
            }
            // A file whose header was torn holds no entries.
            let image: &[u8] = if header.is_ok() { &buf } else { &[] };
            if !reserved && self.mode == Mode::User && image.len() > index::HEADER_LEN {
                let here = Entries::new(image, self.mode).count() as u64;
                let estimate = here * total_index_bytes / image.len() as u64;
                self.keys.reserve(usize::try_from(estimate).unwrap_or(0));
                reserved = true;
            }
            self.seq_first.push(self.next_entry);
            let mut entries = Entries::new(image, self.mode);
            let end = if id == last {
                let mut list: Vec<Parsed> = entries.by_ref().collect();
                let mut end = entries.end;
                // Cut trailing entries whose data is not whole.
                while let Some(e) = list.last() {
                    if self.entry_matches_data(id, e, e.key(&buf)) {
                        break;
                    }
                    tracing::warn!(path = %path.display(), offset = e.off, "index entry without valid data cut");
                    end = e.off as usize;
                    list.pop();
                }
                if end.max(index::HEADER_LEN) < buf.len() {
                    tracing::warn!(path = %path.display(), from = buf.len(), to = end, "torn index tail cut");
                    file.set_len(end.max(index::HEADER_LEN) as u64)
                        .map_err(io_err("truncate index", &path))?;
                    file.sync().map_err(io_err("sync index", &path))?;
                }
                for e in &list {
                    self.apply_loaded(id, last, e, &buf, &mut tail_start);
                }
                end.max(index::HEADER_LEN)
            } else {
                for e in entries.by_ref() {
                    self.apply_loaded(id, last, &e, &buf, &mut tail_start);
                }
                if entries.end < buf.len() {
                    tracing::warn!(path = %path.display(), offset = entries.end, "index file has unreadable entries past this offset");
                    self.stats.index_faults += 1;
                }
                entries.end
            };
            self.index_sizes
                .push(u32::try_from(end).unwrap_or(u32::MAX));
        }

        self.keys.shrink_if_sparse();
        Ok(tail_start)
    }

    /// Opens the active pair `last` and re-indexes the data past `tail_start`.
    fn open_active(&mut self, last: u32, tail_start: u64) -> Result<(), OpenError> {
        let ipath = self.files.path(FileKind::Index, last);
        let index_file = self
            .files
            .get(FileKind::Index, last)
            .map_err(io_err("open index", &ipath))?;
        let dpath = self.files.path(FileKind::Data, last);
        let data_file = match self.files.get(FileKind::Data, last) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let f = self
                    .files
                    .storage
                    .open(&dpath, OpenMode::CreateNew)
                    .map_err(io_err("create data", &dpath))?;
                self.files.put(FileKind::Data, last, f.clone());
                f
            }
            Err(e) => return Err(io_err("open data", &dpath)(e)),
        };
        let dlen = data_file.len().map_err(io_err("stat data", &dpath))?;
        if dlen < data::HEADER_LEN as u64 || DataHeader::decode(&read_header(&*data_file)).is_err()
        {
            if dlen > data::HEADER_LEN as u64 {
                tracing::warn!(path = %dpath.display(), "bad data header rewritten");
            }
            data_file
                .set_len(0)
                .map_err(io_err("truncate data", &dpath))?;
            data_file
                .write_at(&DataHeader { fileid: last }.encode(), 0)
                .map_err(io_err("write data", &dpath))?;
            data_file.sync().map_err(io_err("sync data", &dpath))?;
            self.files
                .storage
                .sync_dir(&self.files.data_dir)
                .map_err(io_err("sync directory", &dpath))?;
        }
        let index_len = index_file.len().map_err(io_err("stat index", &ipath))?;
        let data_len = data_file.len().map_err(io_err("stat data", &dpath))?;
        self.active = Active {
            id: last,
            index: Arc::new(Appender::new(index_file, index_len)),
            data: Arc::new(Appender::new(data_file, data_len)),
            index_size: self
                .index_sizes
                .last()
                .copied()
                .unwrap_or(index::HEADER_LEN as u32),
            data_size: 0,
        };
        self.tail_scan(tail_start)
            .map_err(io_err("recover data tail", &dpath))?;
        Ok(())
    }

    /// Apply one entry read at open, tracking where the data tail scan must start.
    fn apply_loaded(&mut self, id: u32, last: u32, e: &Parsed, buf: &[u8], tail_start: &mut u64) {
        if self.data_file_of(id, &e.hdr) == last {
            let e_end = u64::from(e.hdr.offset)
                + Self::data_entry_len(usize::from(e.hdr.idlength), e.hdr.length as usize);
            if e_end > *tail_start {
                *tail_start = e_end;
                self.last_data_off = e.hdr.offset;
            }
        }
        self.apply_index_entry(id, e.off, &e.hdr, e.key(buf));
    }

    /// Account one index entry read at open.
    fn apply_index_entry(&mut self, file: u32, off: u32, hdr: &IndexEntryHeader, key: &[u8]) {
        self.next_entry += 1;
        self.last_index_off = off;
        match self.mode {
            Mode::Seq => {
                if hdr.deleted() {
                    self.usage.found_dead(key.len(), hdr.length);
                } else {
                    self.usage.stored_id(hdr.length);
                }
            }
            Mode::User => {
                // 0-db replays a deleted entry as an insert followed by a delete.
                let old = if hdr.deleted() {
                    self.usage.found_dead(key.len(), hdr.length);
                    self.keys.remove(key)
                } else {
                    let loc = Loc {
                        file,
                        idx_off: off,
                        data_off: hdr.offset,
                        len: hdr.length,
                    };
                    self.usage.stored(hdr.length);
                    let Ok(old) = self.keys.insert(key, loc) else {
                        self.stats.index_faults += 1;
                        tracing::error!("in-memory key arena full: key not indexed");
                        return;
                    };
                    old
                };
                if let Some(old) = old {
                    self.usage.superseded(key.len(), old.len);
                }
            }
        }
    }

    /// Does this index entry point at a whole data entry with the same key, length and CRC?
    fn entry_matches_data(&self, file: u32, e: &Parsed, key: &[u8]) -> bool {
        // A dead sequential slot whose value compaction reclaimed is whole by definition.
        if self.mode == Mode::Seq && e.hdr.deleted() && e.hdr.dataid == super::RECLAIMED {
            return true;
        }
        let df = self.data_file_of(file, &e.hdr);
        let Ok(data) = self.files.get(FileKind::Data, df) else {
            return false;
        };
        let mut buf = vec![0u8; data::ENTRY_HEADER_LEN + key.len() + e.hdr.length as usize];
        if data
            .read_exact_at(&mut buf, u64::from(e.hdr.offset))
            .is_err()
        {
            return false;
        }
        let Ok(dh) = DataEntryHeader::decode(&buf) else {
            return false;
        };
        let key_end = data::ENTRY_HEADER_LEN + key.len();
        dh.idlength == e.hdr.idlength
            && dh.datalength == e.hdr.length
            && dh.crc == e.hdr.crc
            && buf.get(data::ENTRY_HEADER_LEN..key_end) == Some(key)
            && crate::format::crc32(buf.get(key_end..).unwrap_or_default()) == dh.crc
    }

    /// Walk the active data file from `start`, re-index whole entries, cut the torn tail.
    fn tail_scan(&mut self, start: u64) -> std::io::Result<()> {
        let data = self.active.data.clone();
        let len = data.len()?;
        let mut pos = start.max(data::HEADER_LEN as u64);
        let mut replayed = 0u64;
        while let Some(e) = read_entry_at(&*data, pos, len, self.mode)? {
            if !e.crc_ok() {
                break;
            }
            let Ok(pos32) = u32::try_from(pos) else { break };
            self.active.data_size = u32::try_from(e.end).unwrap_or(u32::MAX);
            self.replay_data_entry(pos32, &e.hdr, e.key())?;
            self.last_data_off = pos32;
            replayed += 1;
            pos = e.end;
        }
        if pos < len {
            tracing::warn!(
                file = self.active.id,
                from = len,
                to = pos,
                "torn data tail cut"
            );
            data.set_len(pos)?;
        }
        self.active.data_size = u32::try_from(pos).unwrap_or(u32::MAX);
        if replayed > 0 || pos < len {
            if replayed > 0 {
                tracing::info!(
                    file = self.active.id,
                    entries = replayed,
                    "data entries re-indexed"
                );
            }
            data.sync()?;
            self.active.index.sync()?;
            for f in std::mem::take(&mut self.unsynced) {
                f.sync()?;
            }
        }
        Ok(())
    }
}

/// Mode to rebuild a namespace in when no index header says: sequential if the first data
/// entry carries id 0 as an 8-byte key (what a sequential namespace always starts with).
fn cfg_mode_hint(ns: &Namespace) -> Mode {
    match ns.cfg.run_mode {
        RunMode::Seq => return Mode::Seq,
        RunMode::User => return Mode::User,
        RunMode::Mixed => {}
    }
    let Ok(d0) = ns.files.get(FileKind::Data, 0) else {
        return Mode::User;
    };
    let mut head = [0u8; data::ENTRY_HEADER_LEN + index::SEQ_KEY_LEN];
    if d0
        .read_exact_at(&mut head, data::HEADER_LEN as u64)
        .is_err()
    {
        return Mode::User;
    }
    let first_is_id0 = head.first() == Some(&(index::SEQ_KEY_LEN as u8))
        && head
            .get(data::ENTRY_HEADER_LEN..)
            .is_some_and(|k| k.iter().all(|&b| b == 0));
    if first_is_id0 { Mode::Seq } else { Mode::User }
}
