//! Reading entries out of index and data files: the walks shared by opening (replay and the
//! data tail scan), repair and compaction. A leaf: it knows the formats and the storage
//! trait, nothing of the namespace.

use crate::format::{DataEntryHeader, IndexEntryHeader, data, index};
use crate::storage::StorageFile;

use super::Mode;

/// A whole file, read into memory (index files: at most a few MiB each).
pub(crate) fn read_all(file: &dyn StorageFile) -> std::io::Result<Vec<u8>> {
    let len = usize::try_from(file.len()?).map_err(std::io::Error::other)?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// One parsed index entry; its key is `buf[off + ENTRY_HEADER_LEN..][..idlength]`.
pub(crate) struct Parsed {
    pub(crate) off: u32,
    pub(crate) hdr: IndexEntryHeader,
}

impl Parsed {
    pub(crate) fn key<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let start = self.off as usize + index::ENTRY_HEADER_LEN;
        buf.get(start..start + usize::from(self.hdr.idlength))
            .unwrap_or_default()
    }
}

/// Entries of an index file image, in order, until one does not fit or is impossible;
/// `end` is then the end of the last whole entry.
pub(crate) struct Entries<'a> {
    buf: &'a [u8],
    mode: Mode,
    pub(crate) end: usize,
}

impl<'a> Entries<'a> {
    pub(crate) fn new(buf: &'a [u8], mode: Mode) -> Self {
        Self {
            buf,
            mode,
            end: index::HEADER_LEN.min(buf.len()),
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Parsed;
    fn next(&mut self) -> Option<Parsed> {
        let rest = self.buf.get(self.end..)?;
        let hdr = IndexEntryHeader::decode(rest).ok()?;
        let key_ok = match self.mode {
            Mode::User => hdr.idlength > 0,
            Mode::Seq => usize::from(hdr.idlength) == index::SEQ_KEY_LEN,
        };
        // A length over the value limit is garbage: stop here, never allocate it.
        if !key_ok
            || hdr.entry_len() > rest.len()
            || hdr.length as usize > crate::MAX_VALUE
            || hdr.flags & !crate::format::FLAG_DELETED != 0
        {
            return None;
        }
        let off = u32::try_from(self.end).ok()?;
        self.end += hdr.entry_len();
        Some(Parsed { off, hdr })
    }
}

/// One whole data entry found by [`read_entry_at`].
pub(crate) struct FoundEntry {
    pub(crate) hdr: DataEntryHeader,
    /// Key then value.
    pub(crate) body: Vec<u8>,
    /// Offset just past the entry.
    pub(crate) end: u64,
}

impl FoundEntry {
    pub(crate) fn key(&self) -> &[u8] {
        self.body
            .get(..usize::from(self.hdr.idlength))
            .unwrap_or_default()
    }
    /// Tombstones carry no value to check; others must match their CRC.
    pub(crate) fn crc_ok(&self) -> bool {
        self.hdr.deleted()
            || crate::format::crc32(
                self.body
                    .get(usize::from(self.hdr.idlength)..)
                    .unwrap_or_default(),
            ) == self.hdr.crc
    }
}

/// The data entry at `pos` of a file of `len` bytes, if its header is plausible for `mode` and
/// the whole entry is there; `None` where a walk must stop (end, torn or garbage bytes).
pub(crate) fn read_entry_at(
    data: &dyn StorageFile,
    pos: u64,
    len: u64,
    mode: Mode,
) -> std::io::Result<Option<FoundEntry>> {
    let mut hbuf = [0u8; data::ENTRY_HEADER_LEN];
    if pos >= len || data.read_exact_at(&mut hbuf, pos).is_err() {
        return Ok(None);
    }
    let Ok(hdr) = DataEntryHeader::decode(&hbuf) else {
        return Ok(None);
    };
    let key_ok = match mode {
        Mode::User => hdr.idlength > 0,
        Mode::Seq => usize::from(hdr.idlength) == index::SEQ_KEY_LEN,
    };
    let end = pos + hdr.entry_len();
    if !key_ok
        || end > len
        || hdr.datalength as usize > crate::MAX_VALUE
        || (hdr.deleted() && hdr.datalength != 0)
    {
        return Ok(None);
    }
    let mut body = vec![0u8; usize::from(hdr.idlength) + hdr.datalength as usize];
    data.read_exact_at(&mut body, pos + data::ENTRY_HEADER_LEN as u64)?;
    Ok(Some(FoundEntry { hdr, body, end }))
}

pub(crate) fn read_header(file: &dyn StorageFile) -> [u8; data::HEADER_LEN] {
    let mut h = [0u8; data::HEADER_LEN];
    let _ = file.read_exact_at(&mut h, 0);
    h
}

/// Placeholder handle used only while a namespace is being built.
pub(crate) struct NullFile;

impl StorageFile for NullFile {
    fn read_at(&self, _buf: &mut [u8], _off: u64) -> std::io::Result<usize> {
        Ok(0)
    }
    fn write_at(&self, _buf: &[u8], _off: u64) -> std::io::Result<()> {
        Err(std::io::Error::other("namespace not open"))
    }
    fn len(&self) -> std::io::Result<u64> {
        Ok(0)
    }
    fn set_len(&self, _len: u64) -> std::io::Result<()> {
        Ok(())
    }
    fn sync(&self) -> std::io::Result<()> {
        Ok(())
    }
}
