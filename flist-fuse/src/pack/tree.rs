//! The in-memory tree a source is read into, and its encoding into an flist body.

use std::collections::{BTreeMap, HashMap};

use crate::format::{
    self, BlockRef, Dirent, Inode, Params, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG,
    S_IFSOCK, XattrRef,
};

/// Index of a node in [`Tree::nodes`].
pub type NodeId = usize;
/// The root folder's node.
pub const ROOT: NodeId = 0;

/// Metadata of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits incl. setuid/setgid/sticky (no file type).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds.
    pub mtime_sec: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Extended attributes by name.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A folder: its entries by name.
    Dir(BTreeMap<Vec<u8>, NodeId>),
    /// A regular file (content goes to the store as it is read).
    File {
        /// Bytes of content.
        size: u64,
    },
    /// A symbolic link and its target.
    Symlink(Vec<u8>),
    /// A character device and its number.
    Char(u64),
    /// A block device and its number.
    Block(u64),
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
}

/// One file, folder or other entry (hard links share one).
#[derive(Debug, Clone)]
pub struct Node {
    /// Owner, mode, times, attributes.
    pub meta: Meta,
    /// What it is.
    pub kind: Kind,
    /// The image layer that last wrote the node (0 for plain sources).
    pub layer: u32,
}

/// A tree of nodes; hard links are several entries naming one node.
#[derive(Debug, Clone)]
pub struct Tree {
    /// All nodes; the root is [`ROOT`].
    pub nodes: Vec<Node>,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

/// Split a path from an archive into safe components; `..` and absolute paths are refused.
pub fn split_path(raw: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if raw.first() == Some(&b'/') {
        return Err(format!(
            "absolute path {:?} escapes the root",
            String::from_utf8_lossy(raw)
        ));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        if c.is_empty() || c == b"." {
            continue;
        }
        if c == b".." || c.contains(&0) {
            return Err(format!(
                "path {:?} escapes the root",
                String::from_utf8_lossy(raw)
            ));
        }
        out.push(c.to_vec());
    }
    Ok(out)
}

impl Tree {
    /// A tree holding an empty root directory.
    pub fn new() -> Self {
        Tree {
            nodes: vec![Node {
                meta: Meta {
                    mode: 0o755,
                    ..Meta::default()
                },
                kind: Kind::Dir(BTreeMap::new()),
                layer: 0,
            }],
        }
    }

    /// Add a node (not yet linked anywhere).
    pub fn add(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn children_mut(&mut self, id: NodeId) -> Option<&mut BTreeMap<Vec<u8>, NodeId>> {
        match &mut self.nodes.get_mut(id)?.kind {
            Kind::Dir(c) => Some(c),
            _ => None,
        }
    }

    /// Look a path up.
    pub fn lookup(&self, comps: &[Vec<u8>]) -> Option<NodeId> {
        let mut cur = ROOT;
        for c in comps {
            match &self.nodes.get(cur)?.kind {
                Kind::Dir(ch) => cur = *ch.get(c)?,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// The directory at `comps`, creating missing ones (mode 0755, owned by root).
    pub fn dir(&mut self, comps: &[Vec<u8>], layer: u32) -> Result<NodeId, String> {
        let mut cur = ROOT;
        for c in comps {
            let next = match &self.nodes[cur].kind {
                Kind::Dir(ch) => ch.get(c).copied(),
                _ => None,
            };
            cur = match next {
                Some(n) if matches!(self.nodes[n].kind, Kind::Dir(_)) => n,
                Some(_) => {
                    return Err(format!(
                        "{:?} is not a directory",
                        String::from_utf8_lossy(&comps.join(&b'/'))
                    ));
                }
                None => {
                    let n = self.add(Node {
                        meta: Meta {
                            mode: 0o755,
                            ..Meta::default()
                        },
                        kind: Kind::Dir(BTreeMap::new()),
                        layer,
                    });
                    if let Some(ch) = self.children_mut(cur) {
                        ch.insert(c.clone(), n);
                    }
                    n
                }
            };
        }
        Ok(cur)
    }

    /// Put `node` at `comps`, replacing what was there; a directory over a directory
    /// keeps the children and takes the new metadata. Returns the node's id.
    pub fn insert(&mut self, comps: &[Vec<u8>], node: Node) -> Result<NodeId, String> {
        let Some((name, parent)) = comps.split_last() else {
            // The root itself.
            if !matches!(node.kind, Kind::Dir(_)) {
                return Err("the root must be a directory".into());
            }
            self.nodes[ROOT].meta = node.meta;
            self.nodes[ROOT].layer = node.layer;
            return Ok(ROOT);
        };
        let p = self.dir(parent, node.layer)?;
        let existing = self.nodes[p].kind_child(name);
        if let Some(e) = existing
            && matches!(self.nodes[e].kind, Kind::Dir(_))
            && matches!(node.kind, Kind::Dir(_))
        {
            self.nodes[e].meta = node.meta;
            self.nodes[e].layer = node.layer;
            return Ok(e);
        }
        let id = self.add(node);
        if let Some(ch) = self.children_mut(p) {
            ch.insert(name.clone(), id);
        }
        Ok(id)
    }

    /// Add a hard link at `comps` to the node at `target`.
    pub fn link(
        &mut self,
        comps: &[Vec<u8>],
        target: &[Vec<u8>],
        layer: u32,
    ) -> Result<(), String> {
        let t = self.lookup(target).ok_or_else(|| {
            format!(
                "hard link target {:?} not found",
                String::from_utf8_lossy(&target.join(&b'/'))
            )
        })?;
        if matches!(self.nodes[t].kind, Kind::Dir(_)) {
            return Err("hard link to a directory".into());
        }
        let (name, parent) = comps.split_last().ok_or("hard link at the root")?;
        let p = self.dir(parent, layer)?;
        if let Some(ch) = self.children_mut(p) {
            ch.insert(name.clone(), t);
        }
        Ok(())
    }

    /// Remove the entry at `comps` (no error if absent).
    pub fn remove(&mut self, comps: &[Vec<u8>]) {
        if let Some((name, parent)) = comps.split_last()
            && let Some(p) = self.lookup(parent)
            && let Some(ch) = self.children_mut(p)
        {
            ch.remove(name);
        }
    }

    /// Opaque directory: hide everything lower layers put below `dir`.
    pub fn make_opaque(&mut self, dir: NodeId, layer: u32) {
        let Kind::Dir(ch) = &self.nodes[dir].kind else {
            return;
        };
        let ch: Vec<(Vec<u8>, NodeId)> = ch.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (name, id) in ch {
            if self.nodes[id].layer < layer {
                if let Some(c) = self.children_mut(dir) {
                    c.remove(&name);
                }
            } else if matches!(self.nodes[id].kind, Kind::Dir(_)) {
                self.make_opaque(id, layer);
            }
        }
    }
}

impl Node {
    fn kind_child(&self, name: &[u8]) -> Option<NodeId> {
        match &self.kind {
            Kind::Dir(ch) => ch.get(name).copied(),
            _ => None,
        }
    }
}

fn off32(n: usize, what: &str) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("{what} exceed 4 GiB"))
}

/// The inode numbering of a tree: breadth-first from the root, entries in name order, a node
/// numbered where it is first named (hard links).
#[derive(Debug, Clone, Default)]
pub struct InodeOrder {
    /// Node of each inode.
    pub nodes: Vec<NodeId>,
    /// Parent folder (inode) of each inode.
    pub parent: Vec<u32>,
    /// Inode of each node.
    pub ino_of: HashMap<NodeId, u32>,
}

impl Tree {
    /// Number the nodes reachable from the root; a folder named twice is an error.
    pub fn inode_order(&self) -> Result<InodeOrder, String> {
        let mut o = InodeOrder {
            nodes: vec![ROOT],
            parent: vec![0],
            ino_of: HashMap::from([(ROOT, 0)]),
        };
        let mut k = 0;
        while let Some(&node) = o.nodes.get(k) {
            let ino = off32(k, "inodes")?;
            k += 1;
            let Some(Node {
                kind: Kind::Dir(ch),
                ..
            }) = self.nodes.get(node)
            else {
                continue;
            };
            for child in ch.values() {
                let is_dir = matches!(self.nodes.get(*child).map(|n| &n.kind), Some(Kind::Dir(_)));
                if o.ino_of.contains_key(child) {
                    if is_dir {
                        return Err("a directory is linked twice".into());
                    }
                    continue;
                }
                o.ino_of.insert(*child, off32(o.nodes.len(), "inodes")?);
                o.nodes.push(*child);
                o.parent.push(ino);
            }
        }
        Ok(o)
    }
}

/// Encode the tree (with file blocks) into a canonical flist body, inodes numbered by `order`
/// ([`Tree::inode_order`]).
pub fn build_body(
    tree: &Tree,
    order: &InodeOrder,
    blocks_of: &HashMap<NodeId, Vec<BlockRef>>,
    params: &Params,
) -> Result<Vec<u8>, String> {
    let mut inodes: Vec<Inode> = Vec::new();
    let mut dirents: Vec<Dirent> = Vec::new();
    let mut blocks: Vec<BlockRef> = Vec::new();
    let mut xattrs: Vec<XattrRef> = Vec::new();
    let mut names: Vec<u8> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    for (&id, &parent) in order.nodes.iter().zip(&order.parent) {
        let node = tree.nodes.get(id).ok_or("node out of range")?;
        let m = &node.meta;
        let mut i = Inode {
            mode: m.mode & 0o7777,
            uid: m.uid,
            gid: m.gid,
            nlink: 1,
            mtime_sec: m.mtime_sec,
            mtime_nsec: m.mtime_nsec,
            parent,
            xattr_first: off32(xattrs.len(), "xattrs")?,
            xattr_count: off32(m.xattrs.len(), "xattrs")?,
            ..Inode::default()
        };
        for (n, v) in &m.xattrs {
            xattrs.push(XattrRef {
                name_off: off32(names.len(), "names")?,
                name_len: off32(n.len(), "names")?,
                val_off: off32(data.len(), "data")?,
                val_len: off32(v.len(), "data")?,
            });
            names.extend_from_slice(n);
            data.extend_from_slice(v);
        }
        match &node.kind {
            Kind::Dir(ch) => {
                i.mode |= S_IFDIR;
                i.first = dirents.len() as u64;
                i.count = ch.len() as u64;
                let mut subdirs = 0u32;
                for (name, child) in ch {
                    if !format::valid_name(name) {
                        return Err(format!("invalid name {:?}", String::from_utf8_lossy(name)));
                    }
                    let cino = *order
                        .ino_of
                        .get(child)
                        .ok_or("an entry missing from the inode order")?;
                    if matches!(tree.nodes.get(*child).map(|n| &n.kind), Some(Kind::Dir(_))) {
                        subdirs += 1;
                    }
                    dirents.push(Dirent {
                        name_off: off32(names.len(), "names")?,
                        name_len: off32(name.len(), "names")?,
                        ino: cino,
                    });
                    names.extend_from_slice(name);
                }
                i.nlink = 2 + subdirs;
            }
            Kind::File { size } => {
                i.mode |= S_IFREG;
                let bl = blocks_of.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                i.first = blocks.len() as u64;
                i.count = bl.len() as u64;
                i.size = *size;
                blocks.extend_from_slice(bl);
            }
            Kind::Symlink(t) => {
                if t.is_empty() {
                    return Err("empty symlink target".into());
                }
                i.mode |= S_IFLNK;
                i.first = data.len() as u64;
                i.count = t.len() as u64;
                i.size = t.len() as u64;
                data.extend_from_slice(t);
            }
            Kind::Char(r) => {
                i.mode |= S_IFCHR;
                i.rdev = *r;
            }
            Kind::Block(r) => {
                i.mode |= S_IFBLK;
                i.rdev = *r;
            }
            Kind::Fifo => i.mode |= S_IFIFO,
            Kind::Socket => i.mode |= S_IFSOCK,
        }
        inodes.push(i);
    }
    // nlink of non-directories: the number of entries naming them.
    let mut refs = vec![0u32; inodes.len()];
    for d in &dirents {
        if let Some(r) = refs.get_mut(d.ino as usize) {
            *r += 1;
        }
    }
    for (i, r) in inodes.iter_mut().zip(refs) {
        if !i.is_dir() {
            i.nlink = r.max(1);
        }
    }
    Ok(format::encode_body(
        params, &inodes, &dirents, &blocks, &xattrs, &names, &data,
    ))
}
