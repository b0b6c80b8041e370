//! Prefetch lists: record the blocks a real run reads (`flist mount --record FILE`), embed
//! them in the flist (`flist embed-prefetch`) or pass them at mount (`--prefetch FILE`), so
//! the next cold start fetches them in parallel up front.
//!
//! The list file is text: a first line `flist-prefetch v1 <identity hex>`, then one block id
//! (hex) per line in first-touch order. Ids (not table positions) make a list usable with a
//! repacked image that shares blocks.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Error, IoContext, Result};
use crate::format::{BlockRef, Flist, Hash, hex};

const HEADER: &str = "flist-prefetch v1";

/// Collects the block table indices that reads touch, in first-touch order.
pub struct Recorder {
    inner: Mutex<(Vec<bool>, Vec<u32>)>,
}

impl Recorder {
    /// A recorder over a block table of `n_blocks`.
    pub fn new(n_blocks: usize) -> Self {
        Recorder {
            inner: Mutex::new((vec![false; n_blocks], Vec::new())),
        }
    }

    /// Note blocks `a..=b` of the block table.
    pub fn touch_range(&self, a: usize, b: usize) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (seen, order) = &mut *g;
        for k in a..=b {
            if let Some(s) = seen.get_mut(k)
                && !*s
            {
                *s = true;
                order.push(k as u32);
            }
        }
    }

    /// The recorded indices.
    pub fn indices(&self) -> Vec<u32> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Write the list file (atomically).
    pub fn write(&self, fl: &Flist, path: &Path) -> Result<usize> {
        let idx = self.indices();
        let mut s = format!("{HEADER} {}\n", hex(&fl.identity));
        let mut seen = HashSet::new();
        let mut n = 0;
        for i in idx {
            if let Some(b) = fl.blocks.get(i as usize)
                && seen.insert(b.id)
            {
                s.push_str(&hex(&b.id));
                s.push('\n');
                n += 1;
            }
        }
        nodeutil::fs::write_durable(path, s.as_bytes(), 0o644)?;
        Ok(n)
    }
}

/// Read a list file into block table indices of `fl` (ids the image lacks are skipped).
pub fn read_list(fl: &Flist, path: &Path) -> Result<Vec<u32>> {
    let text = std::fs::read_to_string(path).ctx(path)?;
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    if !first.starts_with(HEADER) {
        return Err(Error::invalid(
            path,
            format!("not a prefetch list (expected a first line {HEADER:?})"),
        ));
    }
    let mut pos: HashMap<Hash, u32> = HashMap::new();
    for (k, b) in fl.blocks.iter().enumerate() {
        pos.entry(b.id).or_insert(k as u32);
    }
    let mut out = Vec::new();
    for (n, l) in lines.enumerate() {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let id: Hash = nodeutil::hex::decode(l)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::invalid(path, format!("line {}: bad block id", n + 2)))?;
        if let Some(p) = pos.get(&id) {
            out.push(*p);
        }
    }
    Ok(out)
}

/// The blocks to prefetch at mount: the trailer's block list, the blocks of its inode list,
/// then the extra lists; each id once, in order.
pub fn plan(fl: &Flist, extra: &[Vec<u32>]) -> Vec<BlockRef> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push = |b: &BlockRef| {
        if seen.insert(b.id) {
            out.push(*b);
        }
    };
    for i in &fl.trailer.prefetch_blocks {
        if let Some(b) = fl.blocks.get(*i as usize) {
            push(b);
        }
    }
    for ino in &fl.trailer.prefetch {
        for b in fl.file_blocks(*ino) {
            push(b);
        }
    }
    for l in extra {
        for i in l {
            if let Some(b) = fl.blocks.get(*i as usize) {
                push(b);
            }
        }
    }
    out
}

/// `flist embed-prefetch FLIST LIST`: store the list in the flist's trailer (the identity is
/// unchanged; an empty LIST removes it). Returns the number of blocks embedded.
pub fn embed(file: &Path, list: Option<&Path>) -> Result<usize> {
    let mut fl = crate::rfs::read_ours(file)?;
    let idx = match list {
        Some(l) => read_list(&fl, l)?,
        None => Vec::new(),
    };
    fl.trailer.prefetch_blocks = idx;
    nodeutil::fs::write_durable(file, &fl.to_bytes(), 0o644)?;
    Ok(fl.trailer.prefetch_blocks.len())
}
