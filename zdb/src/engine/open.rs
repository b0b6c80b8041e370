//! Opening a namespace: its descriptor, then a key map snapshot or a replay of the index
//! (`replay.rs`), then the data tail (`recover.rs`). A namespace always opens: what cannot be
//! read is cut or rebuilt (rules in `replay.rs` and `recover.rs`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::entries::{NullFile, Parsed, read_all};
use super::error::io_err;
use super::files::Files;
use super::keymap::KeyMap;
use super::namespace::{Active, LockState, Namespace, NsStats};
use super::{EngineConfig, FileKind, Mode, OpenError, RunMode};
use crate::format::{Descriptor, IndexEntryHeader, data, descriptor, index};
use crate::storage::append::Appender;
use crate::storage::{OpenMode, Storage, write_atomic};

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
}
