//! OCI image layouts and `docker save` folders: layers are applied in order.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ingest::Ingest;
use super::tarsrc;
use super::tree::Tree;
use crate::error::{Error, IoContext, Result};

#[derive(Deserialize)]
struct DockerManifest {
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(rename = "mediaType", default)]
    media_type: String,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

fn read_json<T: for<'de> Deserialize<'de>>(p: &Path) -> Result<T> {
    let b = std::fs::read(p).ctx(p)?;
    serde_json::from_slice(&b).map_err(|e| Error::invalid(p, format!("bad JSON: {e}")))
}

fn blob(root: &Path, digest: &str) -> Result<PathBuf> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| Error::invalid(root, format!("bad digest {digest:?}")))?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric());
    if !ok(alg) || !ok(hex) {
        return Err(Error::invalid(root, format!("bad digest {digest:?}")));
    }
    Ok(root.join("blobs").join(alg).join(hex))
}

/// The layer files of an image folder, bottom first.
pub fn layers(root: &Path) -> Result<Vec<PathBuf>> {
    let dm = root.join("manifest.json");
    if dm.exists() {
        let m: Vec<DockerManifest> = read_json(&dm)?;
        let first = m
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid(&dm, "no image in manifest.json"))?;
        return first
            .layers
            .iter()
            .map(|l| {
                let comps =
                    super::tree::split_path(l.as_bytes()).map_err(|m| Error::invalid(&dm, m))?;
                let mut p = root.to_path_buf();
                for c in comps {
                    p.push(String::from_utf8_lossy(&c).to_string());
                }
                Ok(p)
            })
            .collect();
    }
    let ip = root.join("index.json");
    let mut idx: OciIndex = read_json(&ip)?;
    // Follow nested indexes to the first image manifest.
    for _ in 0..4 {
        if !idx.layers.is_empty() {
            break;
        }
        let d = idx
            .manifests
            .first()
            .ok_or_else(|| Error::invalid(&ip, "no manifest in the image index"))?;
        let _ = &d.media_type;
        idx = read_json(&blob(root, &d.digest)?)?;
    }
    idx.layers.iter().map(|l| blob(root, &l.digest)).collect()
}

/// Apply every layer of the image folder to the tree.
pub fn apply_image_dir(tree: &mut Tree, ing: &mut Ingest, root: &Path) -> Result<()> {
    for (i, l) in layers(root)?.iter().enumerate() {
        let r = tarsrc::open_decompressed(l)?;
        tarsrc::apply_tar(tree, ing, r, i as u32 + 1, true, l)?;
    }
    Ok(())
}
