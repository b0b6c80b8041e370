//! Building our model from the tables of an open `.fl` (see the [module doc](super)).

use std::collections::HashMap;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::{BLOCK_SIZE, params};
use crate::format::{
    BlockRef, Dirent, Flist, Hash, ImageKind, Inode, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK,
    S_IFMT, S_IFREG, S_IFSOCK, Trailer, valid_name,
};
use crate::store;

type R<T> = std::result::Result<T, String>;

fn sql(table: &str) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("table {table}: {e}")
}

fn int(v: ValueRef<'_>, what: &str) -> R<i64> {
    match v {
        ValueRef::Integer(i) => Ok(i),
        ValueRef::Null => Err(format!("{what} is NULL")),
        _ => Err(format!("{what} is not an integer")),
    }
}

fn ranged<T: TryFrom<i64>>(v: ValueRef<'_>, what: &str) -> R<T> {
    let i = int(v, what)?;
    T::try_from(i).map_err(|_| format!("{what} {i} out of range"))
}

fn bytes(v: ValueRef<'_>, what: &str) -> R<Vec<u8>> {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => Ok(b.to_vec()),
        ValueRef::Null => Err(format!("{what} is NULL")),
        _ => Err(format!("{what} is not text")),
    }
}

fn hash32(v: ValueRef<'_>, what: &str) -> R<Hash> {
    let b = bytes(v, what)?;
    let raw = if b.len() == 64 {
        nodeutil::hex::decode(&b).ok()
    } else {
        Some(b)
    };
    raw.and_then(|r| <Hash>::try_from(r.as_slice()).ok())
        .ok_or_else(|| format!("{what} is not a 32-byte hash"))
}

struct Row {
    ino: i64,
    parent: i64,
    name: Vec<u8>,
    size: u64,
    uid: u32,
    gid: u32,
    mode: u32,
    rdev: u64,
    mtime: i64,
}

/// Parse one store route of the `route` table into `LO-HI=URL`.
pub fn route_spec(start: i64, end: i64, url: &str) -> R<String> {
    if !(0..=255).contains(&start) || !(0..=255).contains(&end) || start > end {
        return Err(format!(
            "route {start}-{end} {url:?}: range must be 0..=255 with start <= end"
        ));
    }
    let ok = match url.split_once("://") {
        Some(("dir", p)) => !p.is_empty(),
        Some(("zdb", rest)) => !rest.is_empty(),
        Some(("http" | "https", rest)) => !rest.is_empty(),
        _ => false,
    };
    if !ok {
        return Err(format!(
            "route {start}-{end} {:?}: not a dir://, zdb:// or http(s):// store URL",
            store::redact(url)
        ));
    }
    Ok(format!("{start:02x}-{end:02x}={url}"))
}

fn tables(conn: &Connection) -> R<Vec<String>> {
    let mut st = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .map_err(|e| format!("not a readable SQLite database: {e}"))?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| format!("not a readable SQLite database: {e}"))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("not a readable SQLite database: {e}"))?;
    Ok(names)
}

/// Build our model from an open `.fl`.
/// Build our model from an open `.fl` (the identity is set by the caller).
pub fn load(conn: &Connection) -> R<Flist> {
    let have = tables(conn)?;
    for t in ["inode", "extra", "block", "route"] {
        if !have.iter().any(|h| h == t) {
            return Err(format!("missing table {t:?}"));
        }
    }

    // inode
    let mut rows: Vec<Row> = Vec::new();
    {
        let e = sql("inode");
        let mut st = conn
            .prepare("SELECT ino, parent, name, size, uid, gid, mode, rdev, mtime FROM inode ORDER BY ino")
            .map_err(&e)?;
        let mut q = st.query([]).map_err(&e)?;
        while let Some(r) = q.next().map_err(&e)? {
            let g = |k: usize| r.get_ref(k).map_err(&e);
            let ino = int(g(0)?, "inode.ino")?;
            let w = |f: &str| format!("inode {ino}: {f}");
            rows.push(Row {
                ino,
                parent: int(g(1)?, &w("parent"))?,
                name: bytes(g(2)?, &w("name"))?,
                size: ranged(g(3)?, &w("size"))?,
                uid: ranged(g(4)?, &w("uid"))?,
                gid: ranged(g(5)?, &w("gid"))?,
                mode: ranged(g(6)?, &w("mode"))?,
                rdev: ranged(g(7)?, &w("rdev"))?,
                mtime: int(g(8)?, &w("mtime"))?,
            });
        }
    }
    if rows.len() >= u32::MAX as usize {
        return Err("too many inodes".into());
    }
    let mut by_ino: HashMap<i64, usize> = HashMap::with_capacity(rows.len());
    for (k, r) in rows.iter().enumerate() {
        if r.ino < 1 {
            return Err(format!("invalid inode number {}", r.ino));
        }
        if by_ino.insert(r.ino, k).is_some() {
            return Err(format!("inode {} listed twice", r.ino));
        }
        let ft = r.mode & S_IFMT;
        if r.mode > 0o177777
            || !matches!(
                ft,
                S_IFDIR | S_IFREG | S_IFLNK | S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK
            )
        {
            return Err(format!("inode {}: invalid mode {:o}", r.ino, r.mode));
        }
    }
    let roots: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.parent == 0)
        .map(|(k, _)| k)
        .collect();
    let root = match roots.as_slice() {
        [one] => *one,
        [] => return Err("no root inode (an inode with parent 0)".into()),
        _ => return Err(format!("{} root inodes (parent 0)", roots.len())),
    };
    if rows[root].mode & S_IFMT != S_IFDIR {
        return Err("the root inode is not a directory".into());
    }
    let mut children: HashMap<i64, Vec<usize>> = HashMap::new();
    for (k, r) in rows.iter().enumerate() {
        if k == root {
            continue;
        }
        match by_ino.get(&r.parent) {
            Some(&p) if rows[p].mode & S_IFMT == S_IFDIR => {}
            Some(_) => {
                return Err(format!(
                    "inode {}: parent {} is not a directory",
                    r.ino, r.parent
                ));
            }
            None => {
                return Err(format!(
                    "inode {}: parent {} does not exist",
                    r.ino, r.parent
                ));
            }
        }
        if !valid_name(&r.name) {
            return Err(format!(
                "inode {}: invalid name {:?}",
                r.ino,
                String::from_utf8_lossy(&r.name)
            ));
        }
        children.entry(r.parent).or_default().push(k);
    }

    // extra
    let mut extra: HashMap<i64, Vec<u8>> = HashMap::new();
    {
        let e = sql("extra");
        let mut st = conn.prepare("SELECT ino, data FROM extra").map_err(&e)?;
        let mut q = st.query([]).map_err(&e)?;
        while let Some(r) = q.next().map_err(&e)? {
            let ino = int(r.get_ref(0).map_err(&e)?, "extra.ino")?;
            let d = bytes(
                r.get_ref(1).map_err(&e)?,
                &format!("extra of inode {ino}: data"),
            )?;
            extra.insert(ino, d);
        }
    }

    // block (rowid order is file order)
    let mut blocks_of: HashMap<i64, Vec<(Hash, Hash)>> = HashMap::new();
    {
        let e = sql("block");
        let mut st = conn
            .prepare("SELECT ino, id, key FROM block ORDER BY rowid")
            .map_err(&e)?;
        let mut q = st.query([]).map_err(&e)?;
        while let Some(r) = q.next().map_err(&e)? {
            let ino = int(r.get_ref(0).map_err(&e)?, "block.ino")?;
            let id = hash32(
                r.get_ref(1).map_err(&e)?,
                &format!("block of inode {ino}: id"),
            )?;
            let key = hash32(
                r.get_ref(2).map_err(&e)?,
                &format!("block of inode {ino}: key"),
            )?;
            match by_ino.get(&ino) {
                None => return Err(format!("block row for inode {ino}, which does not exist")),
                Some(&k) if rows[k].mode & S_IFMT != S_IFREG => {
                    return Err(format!(
                        "block row for inode {ino}, which is not a regular file"
                    ));
                }
                Some(_) => blocks_of.entry(ino).or_default().push((id, key)),
            }
        }
    }

    // route
    let mut routes = Vec::new();
    {
        let e = sql("route");
        let mut st = conn
            .prepare("SELECT start, \"end\", url FROM route")
            .map_err(&e)?;
        let mut q = st.query([]).map_err(&e)?;
        while let Some(r) = q.next().map_err(&e)? {
            let start = int(r.get_ref(0).map_err(&e)?, "route.start")?;
            let end = int(r.get_ref(1).map_err(&e)?, "route.end")?;
            let url = bytes(r.get_ref(2).map_err(&e)?, "route.url")?;
            let url = String::from_utf8(url).map_err(|_| "route url is not UTF-8".to_string())?;
            routes.push(route_spec(start, end, &url)?);
        }
    }

    // Breadth-first in name order, like `flist pack`.
    let mut order: Vec<usize> = vec![root];
    let mut inodes: Vec<Inode> = Vec::with_capacity(rows.len());
    let mut dirents: Vec<Dirent> = Vec::new();
    let mut blocks: Vec<BlockRef> = Vec::new();
    let mut names: Vec<u8> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    let mut parents: Vec<u32> = vec![0];
    let mut k = 0;
    while k < order.len() {
        let r = &rows[order[k]];
        let ft = r.mode & S_IFMT;
        let mut i = Inode {
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            nlink: 1,
            size: r.size,
            rdev: r.rdev,
            mtime_sec: r.mtime,
            parent: parents[k],
            ..Inode::default()
        };
        match ft {
            S_IFDIR => {
                let mut ch = children.remove(&r.ino).unwrap_or_default();
                ch.sort_by(|a, b| rows[*a].name.cmp(&rows[*b].name));
                if let Some(w) = ch.windows(2).find(|w| rows[w[0]].name == rows[w[1]].name) {
                    return Err(format!(
                        "directory inode {}: two entries named {:?}",
                        r.ino,
                        String::from_utf8_lossy(&rows[w[0]].name)
                    ));
                }
                i.first = dirents.len() as u64;
                i.count = ch.len() as u64;
                let mut subdirs = 0u32;
                for c in ch {
                    let cr = &rows[c];
                    if cr.mode & S_IFMT == S_IFDIR {
                        subdirs = subdirs.saturating_add(1);
                    }
                    let name_off = u32::try_from(names.len()).map_err(|_| "names too large")?;
                    names.extend_from_slice(&cr.name);
                    dirents.push(Dirent {
                        name_off,
                        name_len: cr.name.len() as u32,
                        ino: order.len() as u32,
                    });
                    parents.push(k as u32);
                    order.push(c);
                }
                i.nlink = subdirs.saturating_add(2);
            }
            S_IFREG => {
                let bl = blocks_of.remove(&r.ino).unwrap_or_default();
                let want = r.size.div_ceil(BLOCK_SIZE as u64);
                if bl.len() as u64 != want {
                    return Err(format!(
                        "inode {} ({:?}): {} block rows for {} bytes (expected {want}): block rows missing, extra or out of order",
                        r.ino,
                        String::from_utf8_lossy(&r.name),
                        bl.len(),
                        r.size
                    ));
                }
                i.first = blocks.len() as u64;
                i.count = bl.len() as u64;
                for (n, (id, key)) in bl.into_iter().enumerate() {
                    let off = n as u64 * BLOCK_SIZE as u64;
                    blocks.push(BlockRef::whole(
                        id,
                        key,
                        off,
                        (r.size - off).min(BLOCK_SIZE as u64) as u32,
                        0,
                    ));
                }
            }
            S_IFLNK => {
                let t = extra
                    .get(&r.ino)
                    .filter(|t| !t.is_empty() && !t.contains(&0))
                    .ok_or_else(|| format!("symlink inode {}: no target in table extra", r.ino))?;
                i.first = data.len() as u64;
                i.count = t.len() as u64;
                i.size = t.len() as u64;
                data.extend_from_slice(t);
            }
            _ => i.size = 0,
        }
        inodes.push(i);
        k += 1;
    }
    if order.len() != rows.len() {
        let mut seen = vec![false; rows.len()];
        for o in &order {
            seen[*o] = true;
        }
        if let Some((_, r)) = rows.iter().enumerate().find(|(k, _)| !seen[*k]) {
            return Err(format!(
                "inode {} ({:?}) is not reachable from the root (parent cycle)",
                r.ino,
                String::from_utf8_lossy(&r.name)
            ));
        }
    }
    if data.len() > u32::MAX as usize {
        return Err("symlink targets too large".into());
    }
    let fl = Flist {
        identity: [0; 32],
        kind: ImageKind::Rfs,
        params: params(),
        inodes,
        dirents,
        blocks,
        xattrs: Vec::new(),
        names,
        data,
        trailer: Trailer {
            routes,
            ..Trailer::default()
        },
        body: Vec::new(),
    };
    fl.validate()?;
    Ok(fl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route_spec(0, 255, "dir://store").ok().as_deref(),
            Some("00-ff=dir://store")
        );
        assert!(route_spec(0, 256, "dir://x").is_err());
        assert!(route_spec(9, 3, "dir://x").is_err());
        assert!(route_spec(0, 255, "ftp://x").is_err());
        assert!(route_spec(0, 255, "dir://").is_err());
    }
}
