//! Real zdb servers for tests (the workspace's binary: `$ZDB_BIN`, else
//! `$CARGO_TARGET_DIR/{debug,release}/zdb`, built by `cargo build -p zdb`): each on a free
//! loopback port in its own temporary folder, with an admin password, killed and removed when
//! the value drops (also when the test fails). Tests skip locally without the binary and fail
//! under `CI=true` (`nodeutil::skip::unless(zdb_bin().is_some(), ..)`).

use super::{HarnessError, free_port};
use crate::ids::NodeId;
use crate::meta::records::{NodeRecord, ZdbEndpoint, now};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zdb_client::{Client, Config};

/// The admin password of test servers.
pub const ADMIN: &str = "farm-test-admin";

/// Where the zdb binary is, if built.
pub fn zdb_bin() -> Option<PathBuf> {
    nodeutil::skip::workspace_binary("zdb")
}

/// The registration of test node `id` whose shards live in namespace `ns` of the zdb at
/// `address` (1 GiB offered, `hdd`).
pub fn node_record(id: &str, address: String, ns: &str, group: Option<String>) -> NodeRecord {
    NodeRecord {
        id: NodeId(id.to_string()),
        public_key: "00".repeat(32),
        group,
        capacity: 1 << 30,
        disk_classes: vec!["hdd".into()],
        zdb: vec![ZdbEndpoint {
            address,
            namespace: ns.to_string(),
            store: None,
        }],
        registered: now(),
    }
}

/// One running zdb.
pub struct ZdbServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl ZdbServer {
    /// Starts one with `bin` and waits until it accepts connections.
    pub fn start(bin: &Path) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new().prefix("farm-zdb-").tempdir()?;
        std::fs::write(dir.path().join("admin"), ADMIN)?;
        let mut s = ZdbServer {
            bin: bin.to_path_buf(),
            dir,
            port: free_port()?,
            child: None,
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("zdb.log"))?;
        let child = Command::new(&self.bin)
            .args(["--listen", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--data")
            .arg(d.join("data"))
            .arg("--index")
            .arg(d.join("index"))
            .arg("--admin-file")
            .arg(d.join("admin"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                break;
            }
            // Serving once PING answers (`-LOADING` until its namespaces are loaded).
            let ping =
                Client::connect(Config::tcp(self.address()).with_timeout(Duration::from_secs(2)))
                    .and_then(|mut c| c.ping());
            if ping.is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read(d.join("zdb.log")).unwrap_or_default();
        let tail = log
            .get(log.len().saturating_sub(3000)..)
            .unwrap_or_default();
        Err(HarnessError::NotHealthy(
            format!("zdb on port {}", self.port),
            String::from_utf8_lossy(tail).into_owned(),
        ))
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates namespace `ns` with `password` (private: nobody reads it without the password).
    pub fn provision(&self, ns: &str, password: &str) -> Result<(), zdb_client::Error> {
        let mut a = Client::connect(
            Config::tcp(self.address())
                .with_admin(ADMIN)
                .with_timeout(Duration::from_secs(5)),
        )?;
        a.nsnew(ns)?;
        a.nsset(ns, "password", password)?;
        a.nsset(ns, "public", "0")
    }

    /// Kills it (SIGKILL, as a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data after [`Self::kill`].
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for ZdbServer {
    fn drop(&mut self) {
        self.kill();
    }
}
