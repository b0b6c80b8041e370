//! Fetching ahead across files without a recorded list: when a folder is listed, or one of
//! its files is read, the blocks of the files below it are queued in the background (below
//! demand reads and read-ahead; see the fetcher's priorities): its own files first, then its
//! sub-folders' breadth-first, so that a reader walking the tree (`tar`, an interpreter
//! importing modules) finds the next folder's files already fetched. Only files of at most
//! one block are taken (small files, packed or not, each cost a full round trip when opened;
//! a larger file gets sequential read-ahead once it is read), up to `budget` bytes of
//! distinct blocks per trigger, and a folder whose files were all queued is not planned again.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::format::{BlockRef, Flist};
use crate::mount::fetch::{Fetcher, Priority};

/// Fetches ahead in the folders of one image.
pub struct Ahead {
    fl: Arc<Flist>,
    fetch: Arc<Fetcher>,
    /// Bytes of blocks queued per folder at most (0: off).
    budget: u64,
    /// Folders already done, by inode.
    done: Vec<AtomicBool>,
}

/// Folders looked at per plan, at most (bounds the walk below a folder of large files).
const MAX_FOLDERS: usize = 4096;

/// The blocks to fetch ahead for folder `dir`: distinct blocks of the files of at most one
/// block in it and below it (breadth-first, entries in order), up to `budget` bytes; and the
/// folders whose files all made it.
pub fn plan(fl: &Flist, dir: u32, budget: u64) -> (Vec<BlockRef>, Vec<u32>) {
    let mut seen = HashSet::new();
    let mut bytes = 0u64;
    let mut out = Vec::new();
    let mut covered = Vec::new();
    let mut folders = VecDeque::from([dir]);
    let mut looked = 0;
    while let Some(f) = folders.pop_front() {
        looked += 1;
        if looked > MAX_FOLDERS || !fl.inode(f).is_some_and(|i| i.is_dir()) {
            continue;
        }
        for d in fl.children(f) {
            if fl.inode(d.ino).is_some_and(|i| i.is_dir()) {
                folders.push_back(d.ino);
                continue;
            }
            let [b] = fl.file_blocks(d.ino) else { continue };
            if !seen.insert(b.id) {
                continue;
            }
            bytes += b.plain_len as u64;
            if bytes > budget {
                return (out, covered);
            }
            out.push(*b);
        }
        covered.push(f);
    }
    (out, covered)
}

impl Ahead {
    /// Fetch-ahead over `fl`'s folders, `budget` bytes per folder (0: never).
    pub fn new(fl: Arc<Flist>, fetch: Arc<Fetcher>, budget: u64) -> Self {
        let n = if budget == 0 { 0 } else { fl.inodes.len() };
        Ahead {
            done: (0..n).map(|_| AtomicBool::new(false)).collect(),
            fl,
            fetch,
            budget,
        }
    }

    /// Folder `dir` is being listed, or one of its files read: queue its other files' blocks
    /// (the first time; again later if the queue was full).
    pub fn folder(&self, dir: u32) {
        let Some(flag) = self.done.get(dir as usize) else {
            return;
        };
        // A load first: this runs on every read, and a folder is planned once.
        if flag.load(Ordering::Acquire) || flag.swap(true, Ordering::AcqRel) {
            return;
        }
        let (blocks, covered) = plan(&self.fl, dir, self.budget);
        if !self.fetch.prefetch(blocks.iter(), Priority::Ahead) {
            flag.store(false, Ordering::Release);
            return;
        }
        for f in covered {
            if let Some(c) = self.done.get(f as usize) {
                c.store(true, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Dirent, Inode, Params, S_IFDIR, S_IFREG, Trailer};

    #[test]
    fn plan_takes_one_block_files_once_within_the_budget_folder_first() {
        let dir = |first: u64, count: u64| Inode {
            mode: S_IFDIR | 0o755,
            first,
            count,
            ..Inode::default()
        };
        let file = |first: u64, count: u64, size: u64| Inode {
            mode: S_IFREG | 0o644,
            first,
            count,
            size,
            ..Inode::default()
        };
        let pack = |k: u8, off: u32, len: u32| BlockRef {
            off,
            len,
            ..BlockRef::whole([k; 32], [0; 32], 0, 100, 10)
        };
        let fl = Flist {
            identity: [0; 32],
            kind: crate::format::ImageKind::Flist { version: 2 },
            params: Params::default(),
            // Two small files sharing a pack, a two-block file, a small file of its own, and a
            // sub-folder with one small file.
            inodes: vec![
                dir(0, 5),
                file(0, 1, 10),
                file(1, 1, 20),
                file(2, 2, 200),
                file(4, 1, 5),
                dir(5, 1),
                file(5, 1, 7),
            ],
            dirents: (1..7)
                .map(|k| Dirent {
                    name_off: k - 1,
                    name_len: 1,
                    ino: k,
                })
                .collect(),
            blocks: vec![
                pack(1, 0, 10),
                pack(1, 10, 20),
                BlockRef::whole([2; 32], [0; 32], 0, 100, 10),
                BlockRef::whole([3; 32], [0; 32], 100, 100, 10),
                BlockRef::whole([4; 32], [0; 32], 0, 5, 5),
                BlockRef::whole([5; 32], [0; 32], 0, 7, 7),
            ],
            xattrs: Vec::new(),
            names: b"abcdef".to_vec(),
            data: Vec::new(),
            trailer: Trailer::default(),
            body: Vec::new(),
        };
        let ids = |(v, _): (Vec<BlockRef>, Vec<u32>)| v.iter().map(|b| b.id[0]).collect::<Vec<_>>();
        // The folder's own files, then its sub-folder's.
        assert_eq!(ids(plan(&fl, 0, 1 << 20)), vec![1, 4, 5]);
        assert_eq!(plan(&fl, 0, 1 << 20).1, vec![0, 5]);
        assert_eq!(ids(plan(&fl, 5, 1 << 20)), vec![5]);
        assert_eq!(ids(plan(&fl, 0, 105)), vec![1, 4]);
        assert_eq!(plan(&fl, 0, 105).1, vec![0], "the sub-folder did not fit");
        assert_eq!(ids(plan(&fl, 0, 100)), vec![1]);
        assert!(
            plan(&fl, 0, 100).1.is_empty(),
            "not all of the folder fitted"
        );
        assert_eq!(ids(plan(&fl, 0, 0)), Vec::<u8>::new());
        assert_eq!(ids(plan(&fl, 1, 1 << 20)), Vec::<u8>::new(), "not a folder");
    }
}
