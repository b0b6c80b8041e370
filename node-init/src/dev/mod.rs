//! What node-init prepares for the storaged it starts: the storaged config (`<node>/storaged.json`)
//! and, in dev mode, sparse disk images in `<node>/disks`; and removing a dev node again
//! ([`destroy`]).

mod destroy;

pub use destroy::{DestroyError, Destroyed, destroy};

use serde_json::{Value, json};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

/// Size of every dev disk image. Sparse, so it costs only what is written. Big enough for the
/// 1 GiB namespace of the example blueprint and its growth to 2 GiB on one HDD pool (storaged
/// places a namespace where the sum of the reserved maxsizes stays within the disk size), and for
/// the 1 GiB state volume on the SSD; btrfs alone needs about 110 MiB.
pub const DEV_DISK_SIZE: u64 = 3 << 30;

/// Dev disks: two HDDs (zdb hosts) and one SSD (state volume, volumes).
pub const DEV_DISKS: [(&str, &str); 3] = [("hdd0", "hdd"), ("hdd1", "hdd"), ("ssd0", "ssd")];

/// The storaged config node-init writes.
pub fn config_path(node_dir: &Path) -> PathBuf {
    node_dir.join("storaged.json")
}

/// Writes (or updates) `<node>/storaged.json` for `node_id` and returns its path. An existing
/// config is kept (an operator may have edited it) except for `node_id`, and in dev mode missing
/// dev disks are added; the file is rewritten only when it changes (storaged re-reads it).
pub fn write_config(node_dir: &Path, node_id: &str, dev: bool) -> std::io::Result<PathBuf> {
    let path = config_path(node_dir);
    let old = std::fs::read(&path)
        .ok()
        .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
        .filter(Value::is_object);
    let mut cfg = old.clone().unwrap_or_else(|| {
        json!({
            "disks": [],
            // a dev node is reached from this machine only
            "zdb": {"listen": "127.0.0.1", "address": "127.0.0.1", "base_port": free_base_port(node_dir)},
        })
    });
    cfg["node_id"] = node_id.into();
    if dev {
        let disks_dir = node_dir.join("disks");
        nodeutil::fs::create_private_dir(&disks_dir)?;
        if !cfg["disks"].is_array() {
            cfg["disks"] = json!([]);
        }
        for (name, class) in DEV_DISKS {
            let image = disks_dir.join(format!("{name}.img"));
            if !image.exists() {
                // sparse: set_len allocates nothing
                std::fs::File::create(&image)?.set_len(DEV_DISK_SIZE)?;
            }
            let listed = cfg["disks"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["path"] == json!(image)));
            if !listed && let Some(d) = cfg["disks"].as_array_mut() {
                d.push(json!({"path": image, "size": DEV_DISK_SIZE, "class": class}));
            }
        }
    }
    if old.as_ref() != Some(&cfg) {
        nodeutil::fs::write_json(&path, &cfg)?;
    }
    Ok(path)
}

/// A first zdb port whose next few ports are free on 127.0.0.1, starting from a value derived
/// from the node folder (two dev nodes rarely collide; storaged skips a port taken later).
fn free_base_port(node_dir: &Path) -> u16 {
    let h = blake3::hash(node_dir.as_os_str().as_encoded_bytes());
    let start = u16::from_le_bytes([h.as_bytes()[0], h.as_bytes()[1]]) % 2000;
    let free = |p: u16| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok();
    (0..2000u16)
        .map(|i| 21000 + (start + i * 7) % 2000 * 5)
        .find(|&p| (p..p + DEV_DISKS.len() as u16).all(free))
        .unwrap_or(21000)
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn dev_config_and_sparse_images() {
        let d = tempfile::tempdir().unwrap();
        let p = write_config(d.path(), "node-a", true).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["node_id"], "node-a");
        assert_eq!(v["zdb"]["listen"], "127.0.0.1");
        assert_eq!(v["disks"].as_array().unwrap().len(), 3);
        let img = d.path().join("disks/hdd0.img");
        let m = std::fs::metadata(&img).unwrap();
        assert_eq!(m.len(), DEV_DISK_SIZE);
        assert!(m.blocks() * 512 < 1 << 20, "image not sparse");
        // a second run keeps the port and the disks, updates the node id
        let port = v["zdb"]["base_port"].clone();
        write_config(d.path(), "node-b", true).unwrap();
        let w: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(w["node_id"], "node-b");
        assert_eq!(w["zdb"]["base_port"], port);
        assert_eq!(w["disks"].as_array().unwrap().len(), 3);
    }
}
