//! Phase 2, without a lock: write the live entries of a pair to `.compact` files and fsync
//! them. Every value is verified against its CRC before it is copied.

use std::path::PathBuf;

use super::{CompactBuilt, CompactPlan, tmp};
use crate::engine::Mode;
use crate::engine::error::{OpenError, io_err};
use crate::format::{DataEntryHeader, DataHeader, IndexEntryHeader, IndexHeader, crc32, data};
use crate::storage::OpenMode;

impl CompactPlan {
    /// Phase 2 (no lock): write the live entries to `dN.compact` / `iN.compact` and fsync them.
    pub fn build(self) -> Result<CompactBuilt, OpenError> {
        let storage = self.storage.clone();
        let ipath = self.index_dir.join(format!("i{}", self.file));
        let dpath = self.data_dir.join(format!("d{}", self.file));
        let (itmp, dtmp) = (tmp(&ipath), tmp(&dpath));
        let old_data = storage
            .open(&dpath, OpenMode::ReadOnly)
            .map_err(io_err("open", &dpath))?;
        let mut dbuf = DataHeader { fileid: self.file }.encode().to_vec();
        let mut ibuf = IndexHeader {
            fileid: self.file,
            mode: self.mode.as_byte(),
        }
        .encode()
        .to_vec();
        let mut placed = Vec::with_capacity(self.live.len());
        let mut prev_index = 0u32;
        let mut prev_data = 0u32;
        for (_, hdr, key) in &self.live {
            if hdr.length as usize > crate::MAX_VALUE {
                return Err(io_err("verify", &ipath)(std::io::Error::other(
                    "impossible length in index",
                )));
            }
            let mut entry = vec![0u8; data::ENTRY_HEADER_LEN + key.len() + hdr.length as usize];
            old_data
                .read_exact_at(&mut entry, u64::from(hdr.offset))
                .map_err(io_err("read", &dpath))?;
            let dh = DataEntryHeader::decode(&entry)
                .map_err(|e| io_err("decode", &dpath)(std::io::Error::other(e)))?;
            let value = entry
                .get(data::ENTRY_HEADER_LEN + key.len()..)
                .unwrap_or_default();
            if crc32(value) != dh.crc || dh.crc != hdr.crc {
                // Never copy a corrupt value under a fresh header: keep the file as it is.
                return Err(io_err("verify", &dpath)(std::io::Error::other(format!(
                    "entry at {} fails its crc; run `zdb check --repair` first",
                    hdr.offset
                ))));
            }
            let data_off = dbuf.len() as u32;
            DataEntryHeader {
                previous: prev_data,
                ..dh
            }
            .encode_into(key, value, &mut dbuf);
            prev_data = data_off;
            let idx_off = ibuf.len() as u32;
            IndexEntryHeader {
                offset: data_off,
                previous: prev_index,
                flags: 0,
                dataid: self.file,
                parentid: 0,
                parentoff: 0,
                ..*hdr
            }
            .encode_into(key, &mut ibuf);
            prev_index = idx_off;
            placed.push((idx_off, data_off));
        }
        let outputs: &[(&PathBuf, &Vec<u8>)] = if self.mode == Mode::Seq {
            &[(&dtmp, &dbuf)]
        } else {
            &[(&dtmp, &dbuf), (&itmp, &ibuf)]
        };
        for &(path, bytes) in outputs {
            let f = storage
                .open(path, OpenMode::Truncate)
                .map_err(io_err("create", path))?;
            f.write_at(bytes, 0).map_err(io_err("write", path))?;
            f.sync().map_err(io_err("sync", path))?;
            // The name too: once the journal is durable, a restart rolls forward with the
            // `.compact` files it finds, so both must be there (a lone new index beside the
            // old data file was served as corrupted values).
            let dir = path.parent().unwrap_or(&self.index_dir);
            storage
                .sync_dir(dir)
                .map_err(io_err("sync directory", dir))?;
        }
        let index_len = ibuf.len() as u32;
        Ok(CompactBuilt {
            plan: self,
            placed,
            index_len,
        })
    }
}
