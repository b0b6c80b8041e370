//! The decoded image: tables indexed directly by a mount, and the lookups over them.
//!
//! The tables are those of the file (see the [module doc](super)); an `.fl` of rfs is read
//! into the same model, so everything downstream serves both.

use crate::chunk::ChunkParams;

/// The root folder's inode number.
pub const ROOT_INO: u32 = 0;

/// File type mask of a mode.
pub const S_IFMT: u32 = 0o170000;
/// Socket.
pub const S_IFSOCK: u32 = 0o140000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Block device.
pub const S_IFBLK: u32 = 0o060000;
/// Folder.
pub const S_IFDIR: u32 = 0o040000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;
/// Named pipe.
pub const S_IFIFO: u32 = 0o010000;

/// A 32-byte hash (block id or flist identity).
pub type Hash = [u8; 32];

/// Files below this size are packed together by default (see [`Params::small_files`]).
pub const DEFAULT_SMALL_FILES: u32 = 128 * 1024;

/// Block parameters of an flist: how file contents were cut and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// How contents are cut into blocks.
    pub chunk: ChunkParams,
    /// Hash algorithm of block ids (1 = blake3; the codec module names the others).
    pub hash: u8,
    /// Compression algorithm of blocks (1 = zstd).
    pub compression: u8,
    /// Compression level.
    pub level: i32,
    /// Convergent encryption of blocks.
    pub encrypted: bool,
    /// Regular files smaller than this many bytes were packed together, several to a block
    /// (0: none; format version 1 never packs).
    pub small_files: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            chunk: ChunkParams::default(),
            hash: 1,
            compression: 1,
            level: 3,
            encrypted: false,
            small_files: DEFAULT_SMALL_FILES,
        }
    }
}

/// One inode (see the layout in the [module doc](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inode {
    /// File type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Number of names (folders: 2 + sub-folders).
    pub nlink: u32,
    /// Bytes of content (symlinks: of the target).
    pub size: u64,
    /// Device number of a device node.
    pub rdev: u64,
    /// Modification time, seconds.
    pub mtime_sec: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Number of extended attributes.
    pub xattr_count: u32,
    /// First extended attribute (index into the xattr table).
    pub xattr_first: u32,
    /// Parent folder (of the first name).
    pub parent: u32,
    /// Start of the range this inode owns: dirents, blocks or data blob bytes.
    pub first: u64,
    /// Length of that range.
    pub count: u64,
}

impl Inode {
    /// The `S_IF*` type bits.
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
    /// A folder.
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    /// A regular file.
    pub fn is_reg(&self) -> bool {
        self.file_type() == S_IFREG
    }
    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }
}

/// A directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirent {
    /// Offset of the name in the names blob.
    pub name_off: u32,
    /// Length of the name.
    pub name_len: u32,
    /// The inode it names.
    pub ino: u32,
}

/// A reference from a file to one stored block, or to a slice of it: a small file packed
/// with others is `len` bytes at `off` of a shared block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// Id of the stored bytes (what the store is asked for).
    pub id: Hash,
    /// Decryption key (zero unless encrypted).
    pub key: Hash,
    /// Where this reference's bytes start in the file.
    pub file_offset: u64,
    /// Bytes of the decoded block.
    pub plain_len: u32,
    /// Bytes the store holds (0 when unknown, as in rfs flists).
    pub stored_len: u32,
    /// Where the file's bytes start in the decoded block.
    pub off: u32,
    /// How many bytes of the decoded block belong to the file here.
    pub len: u32,
}

impl BlockRef {
    /// A reference to a whole block.
    pub fn whole(id: Hash, key: Hash, file_offset: u64, plain_len: u32, stored_len: u32) -> Self {
        BlockRef {
            id,
            key,
            file_offset,
            plain_len,
            stored_len,
            off: 0,
            len: plain_len,
        }
    }

    /// The file's bytes within the decoded block.
    pub fn slice(&self) -> std::ops::Range<usize> {
        self.off as usize..self.off as usize + self.len as usize
    }

    /// The file offset just past this reference's bytes.
    pub fn file_end(&self) -> u64 {
        self.file_offset + self.len as u64
    }
}

/// An extended attribute reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrRef {
    /// Offset of the name in the names blob.
    pub name_off: u32,
    /// Length of the name.
    pub name_len: u32,
    /// Offset of the value in the data blob.
    pub val_off: u32,
    /// Length of the value.
    pub val_len: u32,
}

/// A signature record of the trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRec {
    /// ed25519 public key.
    pub public_key: [u8; 32],
    /// ed25519 signature over [`signed_message`] of the identity.
    pub signature: [u8; 64],
}

/// The trailer: what may change without changing the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailer {
    /// Signatures over the identity.
    pub signatures: Vec<SignatureRec>,
    /// Store routes (`[LO-HI=]URL`, passwords removed).
    pub routes: Vec<String>,
    /// Inodes whose blocks to fetch up front at mount.
    pub prefetch: Vec<u32>,
    /// Blocks to fetch up front at mount (indices into the block table).
    pub prefetch_blocks: Vec<u32>,
}

/// Which file an image was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// Our format, with its version.
    Flist {
        /// The header's format version.
        version: u32,
    },
    /// An rfs `.fl` (SQLite).
    Rfs,
}

/// A decoded, validated flist.
#[derive(Debug, Clone)]
pub struct Flist {
    /// blake3 of the body (of the whole `.fl` file for rfs).
    pub identity: Hash,
    /// Which file format it came from.
    pub kind: ImageKind,
    /// How blocks were cut and stored.
    pub params: Params,
    /// Inode table; the root is inode 0.
    pub inodes: Vec<Inode>,
    /// Directory entries, contiguous and sorted per folder.
    pub dirents: Vec<Dirent>,
    /// Block references, contiguous per file.
    pub blocks: Vec<BlockRef>,
    /// Extended attributes, contiguous per inode.
    pub xattrs: Vec<XattrRef>,
    /// Names of entries and attributes.
    pub names: Vec<u8>,
    /// Symlink targets and attribute values.
    pub data: Vec<u8>,
    /// Signatures, routes, prefetch lists.
    pub trailer: Trailer,
    /// Raw body bytes (re-used when the trailer is rewritten).
    pub body: Vec<u8>,
}

/// `first..first+count` when it lies within `len`.
pub(crate) fn range(first: u64, count: u64, len: usize) -> Option<std::ops::Range<usize>> {
    let f = usize::try_from(first).ok()?;
    let c = usize::try_from(count).ok()?;
    let e = f.checked_add(c)?;
    (e <= len).then_some(f..e)
}

/// `blob[off..off+len]`, empty when out of range (validated images never are).
fn slice(blob: &[u8], off: u32, len: u32) -> &[u8] {
    range(off as u64, len as u64, blob.len())
        .and_then(|r| blob.get(r))
        .unwrap_or(&[])
}

impl Flist {
    /// Inode by number.
    pub fn inode(&self, ino: u32) -> Option<&Inode> {
        self.inodes.get(ino as usize)
    }

    /// Entries of a directory inode (empty for other inodes).
    pub fn children(&self, ino: u32) -> &[Dirent] {
        match self.inode(ino) {
            Some(i) if i.is_dir() => range(i.first, i.count, self.dirents.len())
                .and_then(|r| self.dirents.get(r))
                .unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Name of an entry.
    pub fn name(&self, d: &Dirent) -> &[u8] {
        slice(&self.names, d.name_off, d.name_len)
    }

    /// Look a name up in a directory (binary search).
    pub fn lookup_in(&self, dir: u32, name: &[u8]) -> Option<u32> {
        let ch = self.children(dir);
        ch.binary_search_by(|d| self.name(d).cmp(name))
            .ok()
            .and_then(|k| ch.get(k))
            .map(|d| d.ino)
    }

    /// Look a path up from the root; `/`, `` and `.` are the root. `..` is refused.
    pub fn lookup(&self, path: &[u8]) -> Option<u32> {
        let mut ino = ROOT_INO;
        for c in path.split(|b| *b == b'/') {
            if c.is_empty() || c == b"." {
                continue;
            }
            if c == b".." {
                return None;
            }
            ino = self.lookup_in(ino, c)?;
        }
        Some(ino)
    }

    /// Target of a symlink inode.
    pub fn symlink_target(&self, ino: u32) -> &[u8] {
        match self.inode(ino) {
            Some(i) if i.is_symlink() => range(i.first, i.count, self.data.len())
                .and_then(|r| self.data.get(r))
                .unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Blocks of a regular file.
    pub fn file_blocks(&self, ino: u32) -> &[BlockRef] {
        match self.inode(ino) {
            Some(i) if i.is_reg() => range(i.first, i.count, self.blocks.len())
                .and_then(|r| self.blocks.get(r))
                .unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Index (into `file_blocks`) of the block holding `offset` of a file.
    pub fn block_at(&self, ino: u32, offset: u64) -> Option<usize> {
        let bl = self.file_blocks(ino);
        let k = bl.partition_point(|b| b.file_offset <= offset);
        let k = k.checked_sub(1)?;
        let b = bl.get(k)?;
        (offset < b.file_end()).then_some(k)
    }

    /// Extended attributes of an inode.
    pub fn xattrs_of(&self, ino: u32) -> Vec<(&[u8], &[u8])> {
        let Some(i) = self.inode(ino) else {
            return Vec::new();
        };
        let Some(r) = range(
            i.xattr_first as u64,
            i.xattr_count as u64,
            self.xattrs.len(),
        ) else {
            return Vec::new();
        };
        self.xattrs
            .get(r)
            .unwrap_or(&[])
            .iter()
            .map(|x| {
                (
                    slice(&self.names, x.name_off, x.name_len),
                    slice(&self.data, x.val_off, x.val_len),
                )
            })
            .collect()
    }

    /// Paths of all inodes, breadth-first (`(path, ino)`, root is the empty path).
    pub fn walk(&self) -> Vec<(Vec<u8>, u32)> {
        let mut out = vec![(Vec::new(), ROOT_INO)];
        let mut k = 0;
        while let Some((p, ino)) = out.get(k).cloned() {
            k += 1;
            for d in self.children(ino) {
                let mut q = p.clone();
                if !q.is_empty() {
                    q.push(b'/');
                }
                q.extend_from_slice(self.name(d));
                out.push((q, d.ino));
            }
        }
        out
    }

    /// The message a signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(&self.identity)
    }
}

/// The message an ed25519 signature covers for an identity.
pub fn signed_message(identity: &Hash) -> Vec<u8> {
    let mut m = b"flist-signature-v1\0".to_vec();
    m.extend_from_slice(identity);
    m
}
