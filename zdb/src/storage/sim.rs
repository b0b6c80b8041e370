//! In-memory storage with a power-cut model, for crash tests.
//!
//! Every file keeps two images: what the program sees now, and what was last made durable by
//! `sync`. Every directory keeps its entries as seen now, and as of its last `sync_dir`.
//! [`SimStorage::power_cut`] returns the filesystem a reboot would find: only durable names,
//! each with only its durable bytes. Directories themselves are durable once created (zdb
//! creates them before any data goes in, and syncs their parents).
//!
//! Faults: [`SimStorage::set_capacity`] makes writes past a total size fail with ENOSPC, and
//! [`SimStorage::fail_syncs`] makes every later `sync` fail with EIO.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{OpenMode, Storage, StorageFile};

#[derive(Default, Clone)]
struct Inode {
    now: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Default)]
struct State {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    dirs: BTreeSet<PathBuf>,
    capacity: Option<u64>,
    fail_syncs: bool,
    /// Mutating operations so far, and the one after which to take a power-cut image.
    ops: u64,
    cut_at: Option<u64>,
    cut_image: Option<Box<State>>,
}

impl State {
    /// What a reboot would find: durable names with their durable bytes.
    fn durable_image(&self) -> State {
        let mut out = State {
            dirs: self.dirs.clone(),
            ..State::default()
        };
        for (path, &ino) in &self.durable_names {
            let bytes = self
                .inodes
                .get(ino)
                .map(|n| n.durable.clone())
                .unwrap_or_default();
            out.inodes.push(Inode {
                now: bytes.clone(),
                durable: bytes,
            });
            out.names.insert(path.clone(), out.inodes.len() - 1);
            out.durable_names.insert(path.clone(), out.inodes.len() - 1);
        }
        out
    }

    /// Count a mutating operation; take the armed power-cut image when its turn comes.
    fn tick(&mut self) {
        self.ops += 1;
        if self.cut_at == Some(self.ops) {
            self.cut_image = Some(Box::new(self.durable_image()));
        }
    }

    fn used(&self) -> u64 {
        let live: BTreeSet<usize> = self.names.values().copied().collect();
        live.iter()
            .filter_map(|&i| self.inodes.get(i))
            .map(|n| n.now.len() as u64)
            .sum()
    }
}

/// In-memory filesystem that remembers what is durable.
#[derive(Default, Clone)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
}

impl SimStorage {
    /// An empty filesystem.
    pub fn new() -> Self {
        Self::default()
    }

    /// What a machine would find after losing power now.
    pub fn power_cut(&self) -> SimStorage {
        SimStorage {
            state: Arc::new(Mutex::new(self.state.lock().durable_image())),
        }
    }

    /// Cut the power right after the `n`-th mutating operation from now (write, truncate,
    /// sync, rename, remove): the image is kept for [`SimStorage::cut_image`] while the
    /// program goes on, unaware.
    pub fn arm_power_cut(&self, n: u64) {
        let mut st = self.state.lock();
        st.cut_at = Some(st.ops + n);
        st.cut_image = None;
    }

    /// The image taken by an armed power cut, once it happened.
    pub fn cut_image(&self) -> Option<SimStorage> {
        let st = self.state.lock();
        st.cut_image.as_ref().map(|img| SimStorage {
            state: Arc::new(Mutex::new(img.durable_image())),
        })
    }

    /// Whether the armed power cut happened.
    pub fn cut_happened(&self) -> bool {
        self.state.lock().cut_image.is_some()
    }

    /// Limit the total bytes of all files; writes beyond fail with ENOSPC.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state.lock().capacity = bytes;
    }

    /// Make every later `sync` and `sync_dir` fail with EIO.
    pub fn fail_syncs(&self, fail: bool) {
        self.state.lock().fail_syncs = fail;
    }

    /// Current contents of a file, for assertions.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state.lock();
        st.names
            .get(path)
            .and_then(|&i| st.inodes.get(i))
            .map(|n| n.now.clone())
    }

    /// Overwrite a file's current and durable contents (to plant corruption).
    pub fn write_file(&self, path: &Path, bytes: &[u8]) {
        let mut st = self.state.lock();
        let ino = match st.names.get(path) {
            Some(&i) => i,
            None => {
                st.inodes.push(Inode::default());
                let i = st.inodes.len() - 1;
                st.names.insert(path.to_path_buf(), i);
                st.durable_names.insert(path.to_path_buf(), i);
                i
            }
        };
        if let Some(n) = st.inodes.get_mut(ino) {
            n.now = bytes.to_vec();
            n.durable = bytes.to_vec();
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not found", path.display()),
    )
}

struct SimFile {
    state: Arc<Mutex<State>>,
    ino: usize,
    writable: bool,
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        let st = self.state.lock();
        let data = &st
            .inodes
            .get(self.ino)
            .ok_or_else(|| io::Error::other("stale"))?
            .now;
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(data.get(start..start + n).unwrap_or_default());
        Ok(n)
    }
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from_raw_os_error(9));
        }
        let mut st = self.state.lock();
        let off = usize::try_from(off).map_err(io::Error::other)?;
        let end = off + buf.len();
        let cur = st.inodes.get(self.ino).map(|n| n.now.len()).unwrap_or(0);
        if let Some(cap) = st.capacity {
            let grow = end.saturating_sub(cur) as u64;
            if st.used() + grow > cap {
                return Err(io::Error::from_raw_os_error(28));
            }
        }
        let node = st
            .inodes
            .get_mut(self.ino)
            .ok_or_else(|| io::Error::other("stale"))?;
        if node.now.len() < end {
            node.now.resize(end, 0);
        }
        node.now
            .get_mut(off..end)
            .unwrap_or_default()
            .copy_from_slice(buf);
        st.tick();
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        let st = self.state.lock();
        Ok(st
            .inodes
            .get(self.ino)
            .map(|n| n.now.len() as u64)
            .unwrap_or(0))
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        let len = usize::try_from(len).map_err(io::Error::other)?;
        if let Some(n) = st.inodes.get_mut(self.ino) {
            n.now.resize(len, 0);
        }
        st.tick();
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        if st.fail_syncs {
            return Err(io::Error::from_raw_os_error(5));
        }
        if let Some(n) = st.inodes.get_mut(self.ino) {
            n.durable = n.now.clone();
        }
        st.tick();
        Ok(())
    }
}

impl Storage for SimStorage {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let mut st = self.state.lock();
        let existing = st.names.get(path).copied();
        let ino = match (mode, existing) {
            (OpenMode::ReadOnly | OpenMode::ReadWrite, Some(i)) => i,
            (OpenMode::ReadOnly | OpenMode::ReadWrite, None) => return Err(not_found(path)),
            (OpenMode::CreateNew, Some(_)) => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
            }
            (OpenMode::Truncate, Some(i)) => {
                if let Some(n) = st.inodes.get_mut(i) {
                    n.now.clear();
                }
                i
            }
            (OpenMode::CreateNew | OpenMode::Truncate, None) => {
                let parent = path.parent().unwrap_or(Path::new("/"));
                if !st.dirs.contains(parent) {
                    return Err(not_found(parent));
                }
                st.inodes.push(Inode::default());
                let i = st.inodes.len() - 1;
                st.names.insert(path.to_path_buf(), i);
                i
            }
        };
        Ok(Arc::new(SimFile {
            state: self.state.clone(),
            ino,
            writable: mode != OpenMode::ReadOnly,
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        for anc in path.ancestors() {
            st.dirs.insert(anc.to_path_buf());
        }
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        let ino = st.names.remove(from).ok_or_else(|| not_found(from))?;
        st.names.insert(to.to_path_buf(), ino);
        st.tick();
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.tick();
        st.names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.names.retain(|p, _| !p.starts_with(path));
        st.durable_names.retain(|p, _| !p.starts_with(path));
        st.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        if st.fail_syncs {
            return Err(io::Error::from_raw_os_error(5));
        }
        let in_dir = |p: &Path| p.parent() == Some(path);
        let now: Vec<(PathBuf, usize)> = st
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        st.durable_names.retain(|p, _| !in_dir(p));
        st.durable_names.extend(now);
        st.tick();
        Ok(())
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let st = self.state.lock();
        if !st.dirs.contains(path) {
            return Err(not_found(path));
        }
        let files = st
            .names
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()));
        let dirs = st
            .dirs
            .iter()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()));
        Ok(files.chain(dirs).collect())
    }
    fn exists(&self, path: &Path) -> bool {
        let st = self.state.lock();
        st.names.contains_key(path) || st.dirs.contains(path)
    }
    fn free_space(&self, _path: &Path) -> io::Result<u64> {
        let st = self.state.lock();
        Ok(st
            .capacity
            .map(|c| c.saturating_sub(st.used()))
            .unwrap_or(u64::MAX / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_cut_keeps_only_synced_state() {
        let s = SimStorage::new();
        let dir = Path::new("/d");
        s.create_dir_all(dir).unwrap_or_default();
        let a = s.open(&dir.join("a"), OpenMode::CreateNew).expect("create");
        a.write_at(b"hello", 0).expect("write");
        a.sync().expect("sync");
        // Name not yet durable: the file vanishes.
        assert!(s.power_cut().read_file(&dir.join("a")).is_none());
        s.sync_dir(dir).expect("sync dir");
        a.write_at(b" world", 5).expect("write");
        let after = s.power_cut();
        assert_eq!(
            after.read_file(&dir.join("a")).as_deref(),
            Some(&b"hello"[..])
        );
    }
}
