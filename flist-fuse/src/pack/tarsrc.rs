//! Reading tar streams (plain, gzip, zstd), with OCI whiteouts for image layers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use tar::EntryType;

use super::ingest::Ingest;
use super::tree::{Kind, Meta, Node, Tree, split_path};
use crate::error::{Error, IoContext, Result};

/// Open a file, transparently decompressing gzip or zstd (detected by magic bytes).
pub fn open_decompressed(p: &Path) -> Result<Box<dyn Read>> {
    let f = File::open(p).ctx(p)?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let head = r.fill_buf().ctx(p)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(r)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(
            zstd::stream::read::Decoder::with_buffer(r).ctx(p)?,
        ))
    } else {
        Ok(Box::new(r))
    }
}

/// Whether a tar holds an image (`manifest.json` or `oci-layout` at its top).
pub fn is_image_archive(p: &Path) -> Result<bool> {
    let mut a = tar::Archive::new(open_decompressed(p)?);
    for e in a.entries().ctx(p)? {
        let e = e.ctx(p)?;
        let path = e.path_bytes();
        let n = path.strip_prefix(b"./").unwrap_or(&path);
        if n == b"manifest.json" || n == b"oci-layout" {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Extract an image archive (the tar crate refuses entries escaping `dst`).
pub fn extract(p: &Path, dst: &Path) -> Result<()> {
    let mut a = tar::Archive::new(open_decompressed(p)?);
    a.set_preserve_permissions(false);
    a.set_unpack_xattrs(false);
    a.unpack(dst).ctx(p)
}

fn pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = sec.parse().ok()?;
    let mut ns = 0u32;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        ns += (c - b'0') as u32 * 10u32.pow(8 - i as u32);
    }
    if sec < 0 && ns > 0 {
        return Some((sec - 1, 1_000_000_000 - ns));
    }
    Some((sec, ns))
}

/// Apply one tar stream to the tree. With `whiteouts`, `.wh.NAME` deletes NAME and
/// `.wh..wh..opq` hides what lower layers put in the folder.
pub fn apply_tar<R: Read>(
    tree: &mut Tree,
    ing: &mut Ingest,
    r: R,
    layer: u32,
    whiteouts: bool,
    src: &Path,
) -> Result<()> {
    let mut a = tar::Archive::new(r);
    for e in a.entries().ctx(src)? {
        let mut e = e.ctx(src)?;
        let raw = e.path_bytes().to_vec();
        let shown = String::from_utf8_lossy(&raw).to_string();
        let bad = |m: String| Error::invalid(src, format!("entry {shown:?}: {m}"));
        let comps = split_path(&raw).map_err(bad)?;
        if whiteouts && let Some((last, parent)) = comps.split_last() {
            if last.as_slice() == b".wh..wh..opq" {
                let d = tree.dir(parent, layer).map_err(bad)?;
                tree.make_opaque(d, layer);
                continue;
            }
            if let Some(victim) = last.strip_prefix(b".wh.") {
                let mut v = parent.to_vec();
                v.push(victim.to_vec());
                tree.remove(&v);
                continue;
            }
        }
        let h = e.header().clone();
        let mut meta = Meta {
            mode: h.mode().ctx(src)? & 0o7777,
            uid: h.uid().ctx(src)? as u32,
            gid: h.gid().ctx(src)? as u32,
            mtime_sec: h.mtime().ctx(src)? as i64,
            mtime_nsec: 0,
            xattrs: BTreeMap::new(),
        };
        if let Some(exts) = e.pax_extensions().ctx(src)? {
            for x in exts {
                let x = x.ctx(src)?;
                let k = x.key_bytes();
                let v = x.value_bytes();
                let num = || {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<u32>().ok())
                };
                match k {
                    b"uid" => meta.uid = num().ok_or_else(|| bad("bad pax uid".into()))?,
                    b"gid" => meta.gid = num().ok_or_else(|| bad("bad pax gid".into()))?,
                    b"mtime" => {
                        let (s, ns) = pax_time(v).ok_or_else(|| bad("bad pax mtime".into()))?;
                        meta.mtime_sec = s;
                        meta.mtime_nsec = ns;
                    }
                    _ => {
                        if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                            meta.xattrs.insert(name.to_vec(), v.to_vec());
                        }
                    }
                }
            }
        }
        let dev = || -> Result<u64> {
            let ma = h.device_major().ctx(src)?.unwrap_or(0);
            let mi = h.device_minor().ctx(src)?.unwrap_or(0);
            Ok(rustix::fs::makedev(ma, mi))
        };
        let kind = match h.entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                Kind::File { size: 0 }
            }
            EntryType::Directory => Kind::Dir(BTreeMap::new()),
            EntryType::Symlink => {
                let t = e
                    .link_name_bytes()
                    .ok_or_else(|| bad("symlink without target".into()))?
                    .to_vec();
                Kind::Symlink(t)
            }
            EntryType::Link => {
                let t = e
                    .link_name_bytes()
                    .ok_or_else(|| bad("hard link without target".into()))?
                    .to_vec();
                let tc = split_path(&t).map_err(bad)?;
                tree.link(&comps, &tc, layer).map_err(bad)?;
                continue;
            }
            EntryType::Char => Kind::Char(dev()?),
            EntryType::Block => Kind::Block(dev()?),
            EntryType::Fifo => Kind::Fifo,
            _ => continue,
        };
        let is_file = matches!(kind, Kind::File { .. });
        let id = tree
            .insert(&comps, Node { meta, kind, layer })
            .map_err(bad)?;
        if is_file {
            let shown_path = src.join(&shown);
            let size = ing.add_file(id, &mut e, &shown_path)?;
            tree.nodes[id].kind = Kind::File { size };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(pax_time(b"12.000000001"), Some((12, 1)));
        assert_eq!(pax_time(b"12"), Some((12, 0)));
        assert_eq!(pax_time(b"x"), None);
    }
}
