//! Key map snapshot: a user-mode namespace's in-memory index, written at clean shutdown so the
//! next open skips replaying every index entry.
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
//!
//! ```text
//! "ZDBKMAP1"  seed u64  files u32  keys u64
//! next_entry u64  live_bytes u64  dead_bytes u64  index_faults u64
//! last_index_off u32  last_data_off u32  tail_start u64
//! per file: index length u64, index CRC-32C u32, first entry (seq_first) u64
//! per key, table order: key length u8, key, file u32, idx_off u32, data_off u32, len u32
//! CRC-32C u32 of everything above                      (all integers little endian)
//! ```

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::FileKind;
use super::keymap::{KeyMap, Loc};
use super::namespace::Namespace;
use crate::storage::{OpenMode, StorageFile};

/// File name in the namespace's index folder (ours: not part of the 0-db format).
pub(crate) const NAME: &str = "zdb-keymap.snapshot";
const MAGIC: &[u8; 8] = b"ZDBKMAP1";
const LOC_LEN: usize = 16;
const CHUNK: usize = 4 << 20;

/// What a snapshot restores besides the keys.
struct Head {
    seed: u64,
    files: u32,
    keys: u64,
    next_entry: u64,
    live_bytes: u64,
    dead_bytes: u64,
    index_faults: u64,
    last_index_off: u32,
    last_data_off: u32,
    tail_start: u64,
}

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
        self.files.index_dir.join(NAME)
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
        let mut head = Vec::with_capacity(80 + 20 * files as usize);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&self.keys.seed().to_le_bytes());
        head.extend_from_slice(&files.to_le_bytes());
        for v in [
            self.keys.len() as u64,
            self.next_entry,
            self.live_bytes,
            self.dead_bytes,
            self.stats.index_faults,
        ] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        head.extend_from_slice(&self.last_index_off.to_le_bytes());
        head.extend_from_slice(&self.last_data_off.to_le_bytes());
        head.extend_from_slice(&u64::from(self.active.data_size).to_le_bytes());
        for id in 0..files {
            let f = self.files.get(FileKind::Index, id)?;
            let len = f.len()?;
            head.extend_from_slice(&len.to_le_bytes());
            head.extend_from_slice(&file_crc(&*f, len)?.to_le_bytes());
            let first = self.seq_first.get(id as usize).copied().unwrap_or(0);
            head.extend_from_slice(&first.to_le_bytes());
        }
        let tmp = self.files.index_dir.join(format!("{NAME}.tmp"));
        let mut out = Out {
            file: storage.open(&tmp, OpenMode::Truncate)?,
            buf: Vec::with_capacity(CHUNK + 512),
            off: 0,
            crc: 0,
        };
        let res = (|| {
            out.put(&head)?;
            for (key, loc) in self.keys.iter() {
                out.put(&[key.len() as u8])?;
                out.put(key)?;
                for v in [loc.file, loc.idx_off, loc.data_off, loc.len] {
                    out.put(&v.to_le_bytes())?;
                }
            }
            out.flush()?;
            let crc = out.crc;
            out.put(&crc.to_le_bytes())?;
            out.flush()?;
            out.file.sync()
        })();
        drop(out);
        if let Err(e) = res {
            let _ = storage.remove_file(&tmp);
            return Err(e);
        }
        storage.rename(&tmp, &path)?;
        storage.sync_dir(&self.files.index_dir)?;
        self.snapshot_marker.store(marker, Ordering::Relaxed);
        Ok(true)
    }

    /// Back to the blank state a replay starts from.
    pub(crate) fn reset_loaded(&mut self) {
        self.keys = KeyMap::default();
        self.seq_first.clear();
        self.index_sizes.clear();
        self.next_entry = 0;
        self.live_bytes = 0;
        self.dead_bytes = 0;
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
        let body = len.checked_sub(4).ok_or("torn")?;
        let mut c = Input {
            file: &*file,
            end: body,
            off: 0,
            buf: Vec::new(),
            pos: 0,
            crc: 0,
        };
        let torn = "torn";
        if c.take(8).ok_or(torn)? != MAGIC.as_slice() {
            return Err("not a snapshot");
        }
        let head = (|| {
            Some(Head {
                seed: c.u64()?,
                files: c.u32()?,
                keys: c.u64()?,
                next_entry: c.u64()?,
                live_bytes: c.u64()?,
                dead_bytes: c.u64()?,
                index_faults: c.u64()?,
                last_index_off: c.u32()?,
                last_data_off: c.u32()?,
                tail_start: c.u64()?,
            })
        })()
        .ok_or(torn)?;
        if head.files != count {
            return Err("index files added or removed since");
        }
        let mut sizes = Vec::with_capacity(count as usize);
        let mut firsts = Vec::with_capacity(count as usize);
        for id in 0..count {
            let (len, crc, first) = (|| Some((c.u64()?, c.u32()?, c.u64()?)))().ok_or(torn)?;
            let f = self
                .files
                .get(FileKind::Index, id)
                .map_err(|_| "index file unreadable")?;
            if f.len().ok() != Some(len) || file_crc(&*f, len).ok() != Some(crc) {
                return Err("an index file changed since");
            }
            sizes.push(u32::try_from(len).map_err(|_| "index file too large")?);
            firsts.push(first);
        }
        // Each key takes at least 1 + 1 + 16 bytes: a count beyond that is garbage.
        if head.keys > body / 18 {
            return Err("impossible key count");
        }
        let mut keys = KeyMap::with_seed(head.seed);
        keys.reserve(usize::try_from(head.keys).map_err(|_| torn)?);
        for _ in 0..head.keys {
            let klen = usize::from(c.u8().ok_or(torn)?);
            let rec = c.take(klen + LOC_LEN).ok_or(torn)?;
            let (key, loc) = rec.split_at(klen);
            let word = |i: usize| {
                loc.get(4 * i..4 * i + 4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_le_bytes)
            };
            let loc = Loc {
                file: word(0),
                idx_off: word(1),
                data_off: word(2),
                len: word(3),
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
        self.live_bytes = head.live_bytes;
        self.dead_bytes = head.dead_bytes;
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
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::engine::{EngineConfig, RunMode};
    use crate::storage::Storage;
    use crate::storage::sim::SimStorage;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    fn open(sim: &SimStorage) -> Namespace {
        open_sized(sim, 4096)
    }

    fn open_sized(sim: &SimStorage, datasize: u32) -> Namespace {
        let storage: Arc<dyn Storage> = Arc::new(sim.clone());
        storage.create_dir_all(Path::new("/i")).unwrap();
        storage.create_dir_all(Path::new("/d")).unwrap();
        let cfg = EngineConfig {
            datasize,
            sync: false,
            synctime: None,
            run_mode: RunMode::Mixed,
            group_commit: false,
        };
        Namespace::open(storage, Path::new("/i"), Path::new("/d"), b"ns", cfg).unwrap()
    }

    fn snap() -> &'static Path {
        Path::new("/i/ns/zdb-keymap.snapshot")
    }

    /// What a reopen computes, for comparing a restore with a replay. With `counters`, also
    /// the entry count and dead bytes: a compaction makes the running figures differ from a
    /// replay's (both estimates), and a snapshot keeps the running ones.
    fn state(ns: &Namespace, counters: bool) -> String {
        let keys: BTreeMap<Vec<u8>, Loc> = ns.keys.iter().map(|(k, l)| (k.to_vec(), l)).collect();
        let mut s = format!(
            "keys {keys:?} live {} faults {} last_idx {} last_data {} sizes {:?} active {} {} {}",
            ns.live_bytes,
            ns.stats.index_faults,
            ns.last_index_off,
            ns.last_data_off,
            ns.index_sizes,
            ns.active.id,
            ns.active.index_size,
            ns.active.data_size,
        );
        if counters {
            s += &format!(
                " next {} dead {} first {:?}",
                ns.next_entry, ns.dead_bytes, ns.seq_first
            );
        }
        s
    }

    /// A namespace over several file pairs with overwrites, deletes and (odd seeds) one
    /// compaction, saved with a snapshot.
    fn churn(sim: &SimStorage, seed: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ns = open(sim);
        let mut model = BTreeMap::new();
        for step in 0..600 {
            let key = format!("k{}", rng.gen_range(0..120)).into_bytes();
            random_write(&mut ns, &mut rng, &mut model, key, 0.15, step as u8, 90);
            if step == 400
                && seed % 2 == 1
                && let Some(plan) = ns.compact_plan(1)
            {
                ns.compact_commit(plan.build().unwrap()).unwrap();
            }
        }
        ns.sync_now().unwrap();
        ns.save_snapshot().unwrap();
        model
    }

    /// Delete `key` with probability `del`, else set it to 1..`max_len` bytes of `fill`; the
    /// model follows what was acknowledged.
    fn random_write(
        ns: &mut Namespace,
        rng: &mut StdRng,
        model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
        key: Vec<u8>,
        del: f64,
        fill: u8,
        max_len: usize,
    ) {
        if rng.gen_bool(del) {
            if ns.del(&key, 1).is_ok() {
                model.remove(&key);
            }
        } else {
            let value = vec![fill; rng.gen_range(1..max_len)];
            ns.set(&key, &value, 1).unwrap();
            model.insert(key, value);
        }
    }

    fn serves(ns: &Namespace, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
        assert_eq!(ns.entries(), model.len() as u64);
        for (k, v) in model {
            assert_eq!(ns.get(k).unwrap().as_ref(), Some(v));
        }
    }

    #[test]
    fn a_restore_builds_exactly_what_a_replay_builds() {
        for seed in 0..8 {
            let sim = SimStorage::new();
            let model = churn(&sim, seed);
            // Saved with temp file, fsync, rename and folder fsync: it survives a power cut.
            let sim = sim.power_cut();
            let restored = open(&sim);
            assert!(restored.from_snapshot, "seed {seed}: snapshot not used");
            serves(&restored, &model);
            let a = state(&restored, seed % 2 == 0);
            drop(restored);
            sim.write_file(snap(), b"");
            let replayed = open(&sim);
            assert!(!replayed.from_snapshot);
            assert_eq!(a, state(&replayed, seed % 2 == 0), "seed {seed}");
        }
    }

    #[test]
    fn a_replay_of_a_big_file_builds_what_the_writes_built() {
        // 120k overwrites and deletes of 60k keys in one file pair: the replay must arrive at
        // the same map and counters as the writes did.
        let sim = SimStorage::new();
        let mut ns = open_sized(&sim, 64 << 20);
        let mut rng = StdRng::seed_from_u64(3);
        let mut model = BTreeMap::new();
        for step in 0..120_000u32 {
            let key = format!("key{}", rng.gen_range(0..60_000)).into_bytes();
            random_write(&mut ns, &mut rng, &mut model, key, 0.1, step as u8, 20);
        }
        assert_eq!(ns.active.id, 0, "all in one file pair");
        ns.sync_now().unwrap();
        let written = state(&ns, true);
        drop(ns);
        let replayed = open_sized(&sim, 64 << 20);
        assert!(!replayed.from_snapshot);
        assert_eq!(state(&replayed, true), written);
        serves(&replayed, &model);
    }

    #[test]
    fn any_change_to_the_index_files_means_a_replay() {
        let sim = SimStorage::new();
        let mut model = churn(&sim, 42);
        // A later write (its process died before the next clean shutdown): the index grew.
        let mut ns = open(&sim);
        assert!(ns.from_snapshot);
        ns.set(b"late", b"write", 1).unwrap();
        ns.sync_now().unwrap();
        drop(ns);
        model.insert(b"late".to_vec(), b"write".to_vec());
        let ns = open(&sim);
        assert!(!ns.from_snapshot);
        serves(&ns, &model);
        // The stale snapshot was dropped.
        assert!(sim.read_file(snap()).is_none());

        // A change in place, same length (as 0-db does when it flags an entry deleted).
        ns.save_snapshot().unwrap();
        drop(ns);
        let i0 = Path::new("/i/ns/i0");
        let mut bytes = sim.read_file(i0).unwrap();
        let flip = bytes.len() - 1;
        bytes[flip] ^= 1;
        sim.write_file(i0, &bytes);
        let ns = open(&sim);
        assert!(!ns.from_snapshot);
        // Restored file: the snapshot was discarded, so this replays too.
        bytes[flip] ^= 1;
        sim.write_file(i0, &bytes);
        drop(ns);
        assert!(!open(&sim).from_snapshot);
    }

    #[test]
    fn a_torn_or_corrupt_snapshot_means_a_replay() {
        let sim = SimStorage::new();
        let model = churn(&sim, 9);
        let good = sim.read_file(snap()).unwrap();
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            good[..good.len() - 1].to_vec(),
            good[..good.len() / 2].to_vec(),
        ];
        for at in [0, 9, 30, good.len() / 2, good.len() - 2] {
            let mut b = good.clone();
            b[at] ^= 0x40;
            cases.push(b);
        }
        for (i, bad) in cases.into_iter().enumerate() {
            sim.write_file(snap(), &bad);
            let ns = open(&sim);
            assert!(!ns.from_snapshot, "case {i}");
            serves(&ns, &model);
        }
        sim.write_file(snap(), &good);
        assert!(open(&sim).from_snapshot);
    }

    #[test]
    fn data_cut_behind_a_valid_snapshot_means_a_replay() {
        let sim = SimStorage::new();
        let _ = churn(&sim, 5);
        let ns = open(&sim);
        let last = ns.active.id;
        drop(ns);
        // The last data file lost its tail (the index, and so the snapshot, still match).
        let d = format!("/d/ns/d{last}");
        let bytes = sim.read_file(Path::new(&d)).unwrap();
        sim.write_file(Path::new(&d), &bytes[..bytes.len() - 3]);
        let ns = open(&sim);
        assert!(!ns.from_snapshot);
    }
}
