//! The node image under qemu for the image tests: `scripts/build-image.sh` packs the built
//! binaries, `scripts/boot-image.sh` boots them with two virtio disks (one throttled: an HDD)
//! and user networking. qemu runs in its own process group, killed with it when the [`Vm`]
//! drops (also when the test fails); its console is read line by line on threads.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The image to boot: `ZOS_IMAGE_DIR` when it names a built one, else an image packed now from
/// the workspace's built binaries (the debug ones the suite runs against: a release build
/// would add minutes of CI for a figure the benchmark records), so it never boots stale code.
pub fn image() -> PathBuf {
    if let Some(dir) = std::env::var_os("ZOS_IMAGE_DIR") {
        return PathBuf::from(dir);
    }
    let bins = nodeutil::skip::workspace_binary("node-init")
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .expect("node-init is built (cargo build --workspace --bins)");
    let dir = crate::repo().join("target/image-test");
    let st = Command::new("bash")
        .arg(crate::repo().join("scripts/build-image.sh"))
        .arg(&dir)
        .env("ZOS_IMAGE_NO_BUILD", "1")
        .env("ZOS_BIN_DIR", &bins)
        .status()
        .expect("bash");
    assert!(st.success(), "build-image.sh failed");
    dir
}

/// How a VM boots: its disks' folder, kernel command line additions, port forwards
/// (host, guest) and a monitor socket.
pub struct Boot<'a> {
    /// The image folder.
    pub image: &'a Path,
    /// Where the disks are (kept across boots).
    pub disks: &'a Path,
    /// More kernel command line.
    pub append: String,
    /// TCP forwards, host port to guest port.
    pub fwd: Vec<(u16, u16)>,
    /// qemu's monitor as a unix socket here (for [`Vm::power_off`]).
    pub monitor: Option<PathBuf>,
    /// The config disk (boot-image.sh `--config`).
    pub config: Option<PathBuf>,
}

/// A running VM.
pub struct Vm {
    child: Child,
    lines: Receiver<String>,
    /// Every console line so far.
    pub console: Vec<String>,
    /// When qemu was started.
    pub started: Instant,
    monitor: Option<PathBuf>,
}

impl Vm {
    /// Starts qemu through boot-image.sh.
    pub fn boot(b: &Boot) -> Vm {
        let mut cmd = Command::new("bash");
        cmd.arg(crate::repo().join("scripts/boot-image.sh"))
            .arg("--image")
            .arg(b.image)
            .arg("--disks")
            .arg(b.disks);
        if !b.append.is_empty() {
            cmd.args(["--append", &b.append]);
        }
        for (h, g) in &b.fwd {
            cmd.args(["--fwd", &format!("{h}:{g}")]);
        }
        if let Some(c) = &b.config {
            cmd.arg("--config").arg(c);
        }
        if let Some(m) = &b.monitor {
            cmd.args([
                "--",
                "-monitor",
                &format!("unix:{},server=on,wait=off", m.display()),
            ]);
        }
        let mut child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("boot-image.sh");
        let (tx, lines) = channel();
        let outs: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for out in outs {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).split(b'\n').map_while(Result::ok) {
                    let l = String::from_utf8_lossy(&l).trim_end().to_string();
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        Vm {
            child,
            lines,
            console: Vec::new(),
            started: Instant::now(),
            monitor: b.monitor.clone(),
        }
    }

    /// The first console line containing `needle`, within `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        if let Some(l) = self.console.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    eprintln!("vm| {l}");
                    let hit = l.contains(needle);
                    self.console.push(l.clone());
                    if hit {
                        return Some(l);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Reads the console for `d` (what it printed is in [`Vm::console`]).
    pub fn watch(&mut self, d: Duration) {
        let _ = self.wait_for("\0never printed", d);
    }

    /// Fails with the console when `needle` does not show.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        match self.wait_for(needle, timeout) {
            Some(l) => l,
            None => panic!(
                "no {needle:?} on the console within {timeout:?}; last lines:\n{}",
                self.console[self.console.len().saturating_sub(40)..].join("\n")
            ),
        }
    }

    /// A clean power-off (Ctrl-Alt-Del through the monitor: the image's PID 1 stops the node,
    /// syncs and powers off); waits for qemu to exit within `timeout`.
    pub fn power_off(&mut self, timeout: Duration) {
        let m = self.monitor.clone().expect("booted with a monitor");
        let mut s = std::os::unix::net::UnixStream::connect(&m).expect("qemu monitor");
        s.write_all(b"sendkey ctrl-alt-delete\n")
            .expect("qemu monitor");
        self.expect("init: file systems synced", timeout);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            self.watch(Duration::from_millis(200));
        }
        panic!("qemu did not exit within {timeout:?} of the power-off");
    }

    /// Kills qemu (a power cut) and its process group.
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The node id in a `node ready: id ID, ...` line.
pub fn node_id(ready: &str) -> String {
    ready
        .split("node ready: id ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .expect("a node ready line")
        .to_string()
}

/// Lines that mean a daemon died: PID 1 reaped the node daemon or an orphan, or a panic.
pub fn crashes(console: &[String]) -> Vec<String> {
    console
        .iter()
        .filter(|l| {
            l.contains("init: node-init (pid")
                || l.contains("init: reaped")
                || l.contains("panicked")
        })
        .cloned()
        .collect()
}

/// A TCP port free on the host now (the forwards and etcd take free ports, never fixed ones).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
