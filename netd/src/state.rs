//! netd's records on disk: one JSON file per network (`STATE/networks/<id>.json`, mode 0600,
//! replaced atomically and durably), holding the spec as last applied, the private key, the
//! listen port, the transfer link and the attachments. The record is the truth a restarted
//! netd re-adopts from; the kernel objects are re-made from it.

use crate::keys::PrivateKey;
use bus::api::network::NetworkSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// One attached namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    /// Its address.
    pub address: Ipv4Addr,
    /// Attachment number (names its veth `va<n>`).
    pub number: u32,
}

/// Everything netd keeps about a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The spec last applied.
    pub spec: NetworkSpec,
    /// The network's WireGuard key.
    pub private_key: PrivateKey,
    /// UDP port, chosen once.
    pub listen_port: u16,
    /// Transfer link number, chosen once.
    pub transfer: u16,
    /// Attached namespaces by name.
    #[serde(default)]
    pub attachments: BTreeMap<String, AttachmentRecord>,
    /// Next attachment number.
    #[serde(default)]
    pub next_attachment: u32,
}

/// The folder of records.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Records under `state/networks` (created 0700).
    pub fn open(state: &Path) -> io::Result<Self> {
        let dir = state.join("networks");
        nodeutil::fs::create_private_dir(&dir)?;
        Ok(Store { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every record; a file that does not parse is reported by name and skipped (it is never
    /// overwritten: an operator looks at it).
    pub fn load_all(&self) -> io::Result<(Vec<NetworkRecord>, Vec<String>)> {
        let mut records = Vec::new();
        let mut bad = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let is_record = path.extension().is_some_and(|e| e == "json")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_record {
                continue;
            }
            match nodeutil::fs::read_json::<NetworkRecord>(&path) {
                Ok(Some(r)) if path.file_stem() == Some(r.spec.id.as_ref()) => records.push(r),
                Ok(_) => bad.push(format!("{}: id does not match its name", path.display())),
                Err(e) => bad.push(e.to_string()),
            }
        }
        records.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        Ok((records, bad))
    }

    /// Writes a record durably (0600).
    pub fn save(&self, r: &NetworkRecord) -> Result<(), nodeutil::fs::WriteError> {
        nodeutil::fs::write_json(&self.path(&r.spec.id), r)
    }

    /// Removes a record (absent is fine) and syncs the folder.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => nodeutil::fs::sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn record(id: &str) -> NetworkRecord {
        NetworkRecord {
            spec: NetworkSpec {
                id: id.into(),
                ip_range: "10.1.0.0/16".into(),
                subnet: "10.1.1.0/24".into(),
                peers: vec![],
            },
            private_key: PrivateKey::generate(),
            listen_port: 51820,
            transfer: 0,
            attachments: BTreeMap::new(),
            next_attachment: 0,
        }
    }

    #[test]
    fn records_round_trip_private_and_skip_bad_files() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let r = record("a");
        s.save(&r).unwrap();
        s.save(&record("b")).unwrap();
        std::fs::write(d.path().join("networks/c.json"), b"{").unwrap();
        std::fs::write(d.path().join("networks/.d.json.tmp-1-1"), b"{").unwrap();
        let (all, bad) = s.load_all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], r);
        assert_eq!(bad.len(), 1, "{bad:?}");
        let mode = std::fs::metadata(d.path().join("networks/a.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
        s.remove("a").unwrap();
        s.remove("a").unwrap();
        assert_eq!(s.load_all().unwrap().0.len(), 1);
    }
}
