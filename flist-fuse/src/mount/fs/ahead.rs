//! Fetching ahead across files without a recorded list: when a folder is listed, or one of
//! its files is read, the blocks of its other files are queued in the background (below
//! demand reads and read-ahead; see the fetcher's priorities), once per folder. Only files
//! of at most one block are taken (small files, packed or not: each costs a full round trip
//! when it is opened; a larger file gets sequential read-ahead once it is read), up to
//! `budget` bytes of distinct blocks per folder.

use std::collections::HashSet;
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

/// The blocks to fetch ahead for folder `dir`: distinct blocks of its files of at most one
/// block, in entry order, up to `budget` bytes.
pub fn plan(fl: &Flist, dir: u32, budget: u64) -> Vec<BlockRef> {
    let mut seen = HashSet::new();
    let mut bytes = 0u64;
    let mut out = Vec::new();
    for d in fl.children(dir) {
        let bl = fl.file_blocks(d.ino);
        let [b] = bl else { continue };
        if !seen.insert(b.id) {
            continue;
        }
        bytes += b.plain_len as u64;
        if bytes > budget {
            break;
        }
        out.push(*b);
    }
    out
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
        if flag.swap(true, Ordering::AcqRel) {
            return;
        }
        let blocks = plan(&self.fl, dir, self.budget);
        if !self.fetch.prefetch(blocks.iter(), Priority::Ahead) {
            flag.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Dirent, Inode, Params, S_IFDIR, S_IFREG, Trailer};

    #[test]
    fn plan_takes_one_block_files_once_within_the_budget() {
        let dir = Inode {
            mode: S_IFDIR | 0o755,
            first: 0,
            count: 4,
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
            // Two small files sharing a pack, a two-block file, a small file of its own.
            inodes: vec![
                dir,
                file(0, 1, 10),
                file(1, 1, 20),
                file(2, 2, 200),
                file(4, 1, 5),
            ],
            dirents: (1..5)
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
            ],
            xattrs: Vec::new(),
            names: b"abcd".to_vec(),
            data: Vec::new(),
            trailer: Trailer::default(),
            body: Vec::new(),
        };
        let ids = |v: Vec<BlockRef>| v.iter().map(|b| b.id[0]).collect::<Vec<_>>();
        assert_eq!(ids(plan(&fl, 0, 1 << 20)), vec![1, 4]);
        assert_eq!(ids(plan(&fl, 0, 100)), vec![1]);
        assert_eq!(ids(plan(&fl, 0, 0)), Vec::<u8>::new());
        assert_eq!(ids(plan(&fl, 1, 1 << 20)), Vec::<u8>::new(), "not a folder");
    }
}
