//! A real etcd cluster on loopback for tests (the Debian `etcd-server` binary): members in a
//! temporary folder on free ports, killed and removed when the value drops, also when the test
//! fails. Tests that need it skip locally without `etcd` and fail under `CI=true`. Real zdb
//! servers, the same way: [`zdb`].

pub mod secure;
pub mod zdb;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member's process and addresses.
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    /// Plain http `/health` and `/metrics`, whatever the client URL's scheme.
    metrics: String,
    child: Option<Child>,
}

/// A running etcd cluster.
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    token: String,
    tls: Option<secure::TlsFiles>,
}

/// The cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Spawning or waiting for a member failed.
    #[error("etcd harness: {0}")]
    Io(#[from] std::io::Error),
    /// A member did not answer in time; the end of its log says why.
    #[error("harness: {0} not healthy in time; its log ends with:\n{1}")]
    NotHealthy(String, String),
}

/// Whether the etcd binary is installed; tests call
/// `nodeutil::skip::unless(farm::testing::has_etcd(), "etcd")`.
pub fn has_etcd() -> bool {
    nodeutil::skip::has_tool("etcd")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdCluster {
    /// Starts `n` members and waits until every one answers its health endpoint.
    pub fn start(n: usize) -> Result<Self, HarnessError> {
        Self::start_in(n, &std::env::temp_dir())
    }

    /// [`Self::start`] with the members' data under `parent`: a benchmark gives etcd a disk
    /// of its own there, as etcd's operators are told to (its fsyncs otherwise queue behind
    /// the zdbs' writeback on a machine with one disk).
    pub fn start_in(n: usize, parent: &std::path::Path) -> Result<Self, HarnessError> {
        Self::start_with(n, parent, false)
    }

    /// [`Self::start`] secured as a farm's etcd should be: clients over TLS only (the
    /// members' certificate from a CA made here, for 127.0.0.1 and qemu's host address
    /// 10.0.2.2), a client certificate from that CA required, and etcd's auth on with user
    /// `root`. [`Self::access_files`] names what a client needs; `openssl` makes the
    /// certificates.
    pub fn start_secured(n: usize) -> Result<Self, HarnessError> {
        Self::start_with(n, &std::env::temp_dir(), true)
    }

    fn start_with(n: usize, parent: &Path, secured: bool) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("farm-etcd-")
            .tempdir_in(parent)?;
        let tls = if secured {
            Some(secure::make(dir.path())?)
        } else {
            None
        };
        let scheme = if secured { "https" } else { "http" };
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            members.push(Member {
                name: format!("m{i}"),
                client_url: format!("{scheme}://127.0.0.1:{}", free_port()?),
                peer_url: format!("http://127.0.0.1:{}", free_port()?),
                metrics: format!("http://127.0.0.1:{}", free_port()?),
                child: None,
            });
        }
        let mut cluster = EtcdCluster {
            dir,
            members,
            token: nodeutil::random::hex(8),
            tls,
        };
        for i in 0..n {
            cluster.spawn(i, "new")?;
        }
        for i in 0..n {
            cluster.wait_healthy(i)?;
        }
        if let (Some(tls), Some(url)) = (&cluster.tls, cluster.endpoint(0)) {
            secure::enable_auth(url, tls)?;
        }
        Ok(cluster)
    }

    /// What a client of a secured cluster needs (none for a plain one).
    pub fn access_files(&self) -> Option<crate::meta::AccessFiles> {
        self.tls.as_ref().map(secure::TlsFiles::access)
    }

    /// The certificates and password file of a secured cluster.
    pub fn tls_files(&self) -> Option<&secure::TlsFiles> {
        self.tls.as_ref()
    }

    /// How a client reaches the cluster.
    pub fn access(&self) -> crate::meta::EtcdAccess {
        self.access_files()
            .and_then(|f| crate::meta::EtcdAccess::load(&f).ok())
            .unwrap_or_default()
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}.log"))
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<(), HarnessError> {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        let data = self.dir.path().join(format!("m{i}.data"));
        let Some(m) = self.members.get(i) else {
            return Err(std::io::Error::other("no such member").into());
        };
        let mut cmd = Command::new("etcd");
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server.0)
                .arg("--key-file")
                .arg(&t.server.1)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth")
                .arg("--auth-token")
                .arg(t.auth_token());
        }
        let child = cmd
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-metrics-urls", &m.metrics])
            .args(["--listen-client-urls", &m.client_url])
            .args(["--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url])
            .args(["--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            // The farm's etcd timings (farm/README.md): a site's members are a LAN apart, so a
            // 50 ms heartbeat and 500 ms election timeout; a dead leader is replaced in 0.5-1 s
            // instead of etcd's default 1-2 s.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        if let Some(m) = self.members.get_mut(i) {
            m.child = Some(child);
        }
        Ok(())
    }

    fn wait_healthy(&self, i: usize) -> Result<(), HarnessError> {
        let Some(m) = self.members.get(i) else {
            return Err(std::io::Error::other("no such member").into());
        };
        let addr = m.metrics.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if health(&addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read(self.log_path(i)).unwrap_or_default();
        let tail = String::from_utf8_lossy(
            log.get(log.len().saturating_sub(3000)..)
                .unwrap_or_default(),
        )
        .into_owned();
        Err(HarnessError::NotHealthy(m.name.clone(), tail))
    }

    /// Client URLs of all members (also of stopped ones: clients are expected to cope).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> Option<&str> {
        self.members.get(i).map(|m| m.client_url.as_str())
    }

    /// Kills member `i` (SIGKILL, as a crash) and waits for it to exit.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members.get_mut(i).and_then(|m| m.child.take()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data folder after [`Self::kill`], and waits for it.
    pub fn restart(&mut self, i: usize) -> Result<(), HarnessError> {
        self.spawn(i, "existing")?;
        self.wait_healthy(i)
    }

    /// Index of the member that leads now (each running member is asked, 1 s at most each).
    pub async fn leader(&self) -> Option<usize> {
        for (i, m) in self.members.iter().enumerate() {
            if m.child.is_none() {
                continue;
            }
            let opts = self.access().apply(etcd_client::ConnectOptions::new());
            let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_secs(1),
                etcd_client::Client::connect([m.client_url.as_str()], Some(opts)),
            )
            .await
            else {
                continue;
            };
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(1), c.status()).await
                && s.header().map(|h| h.member_id()) == Some(s.leader())
            {
                return Some(i);
            }
        }
        None
    }

    /// The folder holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// GET /health over plain HTTP/1.0 on loopback: `{"health":"true"}` once the member has a
/// leader and serves requests.
fn health(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = s.take(4096).read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

/// Polls `f` every 100 ms until it returns true or `secs` pass; panics with `what` then.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("not within {secs} s: {what}");
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
