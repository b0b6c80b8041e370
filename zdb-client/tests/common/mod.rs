//! A real zdb server for the tests: the workspace's binary (`$ZDB_BIN`, else
//! `target/{debug,release}/zdb`, built by `cargo build -p zdb`), on a free 127.0.0.1 port
//! and a unix socket in a temporary folder, with an admin password from a file. Without
//! the binary a test is skipped locally and fails under `CI=true`.
#![allow(dead_code, reason = "each test binary uses part of it")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "admin-pw";

pub fn zdb_bin() -> Option<PathBuf> {
    nodeutil::skip::workspace_binary("zdb")
}

/// A running zdb; killed (and its folder removed) on drop.
pub struct Zdb {
    child: Child,
    pub port: u16,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Zdb {
    /// Starts one, or `None` (skip) when the binary is not built.
    pub fn start() -> Option<Zdb> {
        let bin = zdb_bin();
        if nodeutil::skip::unless(bin.is_some(), "zdb binary (cargo build -p zdb)") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin"), ADMIN).unwrap();
        let bin = bin.unwrap();
        let (child, port) = spawn(&bin, dir.path(), None);
        Some(Zdb {
            child,
            port,
            socket: dir.path().join("zdb.sock"),
            dir,
            bin,
        })
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it and starts it again on the same port and folders.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, _) = spawn(&self.bin, self.dir.path(), Some(self.port));
        self.child = child;
    }
}

impl Drop for Zdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(bin: &Path, dir: &Path, port: Option<u16>) -> (Child, u16) {
    for _ in 0..5 {
        let port = port.unwrap_or_else(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        });
        let _ = std::fs::remove_file(dir.join("zdb.sock"));
        let mut child = Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--dualnet",
            ])
            .arg("--socket")
            .arg(dir.join("zdb.sock"))
            .arg("--data")
            .arg(dir.join("data"))
            .arg("--index")
            .arg(dir.join("index"))
            .arg("--admin-file")
            .arg(dir.join("admin"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && dir.join("zdb.sock").exists()
                && serves(port)
            {
                return (child, port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("zdb did not start");
}

/// Whether the server on `port` serves: it listens at once and answers `-LOADING` until its
/// namespaces are loaded.
fn serves(port: u16) -> bool {
    let cfg = zdb_client::Config::tcp(format!("127.0.0.1:{port}"));
    match zdb_client::Client::connect(cfg).and_then(|mut c| c.ping()) {
        Ok(()) => true,
        Err(e) => {
            assert!(e.is_loading() || e.is_connection(), "PING: {e}");
            false
        }
    }
}
