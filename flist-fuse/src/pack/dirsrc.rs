//! Reading a directory tree (never following symlinks).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, Metadata, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::ingest::Ingest;
use super::tree::{Kind, Meta, Node, NodeId, ROOT, Tree};
use crate::error::{Error, IoContext, Result};

/// Extended attributes of a path (not following symlinks).
pub fn read_xattrs(p: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let unsupported = |e: &rustix::io::Errno| {
        *e == rustix::io::Errno::NOTSUP || *e == rustix::io::Errno::OPNOTSUPP
    };
    let n = match rustix::fs::llistxattr_query(p) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(out),
        Err(e) => return Err(Error::io(p, e.into())),
    };
    if n == 0 {
        return Ok(out);
    }
    let mut buf = vec![0u8; n + 256];
    let n = rustix::fs::llistxattr(p, &mut buf[..]).ctx(p)?;
    for name in buf[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let vn = match rustix::fs::lgetxattr_query(p, name) {
            Ok(v) => v,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(Error::io(p, e.into())),
        };
        let mut v = vec![0u8; vn + 256];
        let vn = rustix::fs::lgetxattr(p, name, &mut v[..]).ctx(p)?;
        v.truncate(vn);
        out.insert(name.to_vec(), v);
    }
    Ok(out)
}

fn meta_of(md: &Metadata, p: &Path) -> Result<Meta> {
    Ok(Meta {
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_sec: md.mtime(),
        mtime_nsec: md.mtime_nsec().clamp(0, 999_999_999) as u32,
        xattrs: read_xattrs(p)?,
    })
}

/// Read the tree below `root` into `tree`, feeding file contents to `ing`.
pub fn read_dir_tree(tree: &mut Tree, ing: &mut Ingest, root: &Path) -> Result<()> {
    let md = fs::symlink_metadata(root).ctx(root)?;
    if !md.is_dir() {
        return Err(Error::invalid(root, "not a directory"));
    }
    tree.nodes[ROOT].meta = meta_of(&md, root)?;
    let mut links = HashMap::new();
    walk(tree, ing, root, ROOT, &mut links)
}

fn walk(
    tree: &mut Tree,
    ing: &mut Ingest,
    dir: &Path,
    node: NodeId,
    links: &mut HashMap<(u64, u64), NodeId>,
) -> Result<()> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).ctx(dir)? {
        names.push(e.ctx(dir)?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let p = dir.join(&name);
        let md = fs::symlink_metadata(&p).ctx(&p)?;
        let ft = md.file_type();
        let key = (md.dev(), md.ino());
        let id = if !ft.is_dir() && md.nlink() > 1 && links.contains_key(&key) {
            links[&key]
        } else {
            let meta = meta_of(&md, &p)?;
            let kind = if ft.is_dir() {
                Kind::Dir(BTreeMap::new())
            } else if ft.is_file() {
                Kind::File { size: 0 }
            } else if ft.is_symlink() {
                Kind::Symlink(fs::read_link(&p).ctx(&p)?.as_os_str().as_bytes().to_vec())
            } else if ft.is_char_device() {
                Kind::Char(md.rdev())
            } else if ft.is_block_device() {
                Kind::Block(md.rdev())
            } else if ft.is_fifo() {
                Kind::Fifo
            } else if ft.is_socket() {
                Kind::Socket
            } else {
                return Err(Error::invalid(&p, "unknown file type"));
            };
            let id = tree.add(Node {
                meta,
                kind,
                layer: 0,
            });
            if ft.is_dir() {
                walk(tree, ing, &p, id, links)?;
            } else if ft.is_file() {
                let f = OpenOptions::new()
                    .read(true)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&p)
                    .ctx(&p)?;
                let size = ing.add_file(id, f, &p)?;
                tree.nodes[id].kind = Kind::File { size };
            }
            if !ft.is_dir() && md.nlink() > 1 {
                links.insert(key, id);
            }
            id
        };
        if let Kind::Dir(ch) = &mut tree.nodes[node].kind {
            ch.insert(name.as_bytes().to_vec(), id);
        }
    }
    Ok(())
}
