//! The node image under qemu (software emulation): `scripts/build-image.sh` (packing the
//! built debug binaries into `target/image-test`, or `ZOS_IMAGE_DIR` names an image), booted by `scripts/boot-image.sh`
//! with two fresh virtio disks, one throttled. The console shows `node ready` with a node id and
//! both disks pooled, the throttled one classified HDD, and no daemon exiting; after a power
//! off, a boot with the same disks finds its pools and comes up with the same node id.
//!
//! Needs qemu-system-x86_64 (and, to build the image, what scripts/deps.sh installs); skipped
//! without it, failed under CI. Each boot is bounded (`READY_TIMEOUT`); qemu is killed with its
//! process group when the test ends, also on failure. Prints the boot times and image size
//! (BENCHMARKS.md).
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// TCG on a shared 2-core machine: a boot formats and measures two disks.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the console is watched after `node ready` for daemons exiting.
const WATCH: Duration = Duration::from_secs(15);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The image to boot: `ZOS_IMAGE_DIR` when it names a built one, else an image packed now from
/// the workspace's built binaries (the debug ones the suite runs against: a release build
/// would add minutes of CI for a figure the benchmark records), so it never boots stale code.
fn image() -> PathBuf {
    if let Some(dir) = std::env::var_os("ZOS_IMAGE_DIR") {
        return PathBuf::from(dir);
    }
    let bins = nodeutil::skip::workspace_binary("node-init")
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .expect("node-init is built (cargo build --workspace --bins)");
    let dir = repo().join("target/image-test");
    let st = Command::new("bash")
        .arg(repo().join("scripts/build-image.sh"))
        .arg(&dir)
        .env("ZOS_IMAGE_NO_BUILD", "1")
        .env("ZOS_BIN_DIR", &bins)
        .status()
        .unwrap();
    assert!(st.success(), "build-image.sh failed");
    dir
}

/// A running VM: qemu (through boot-image.sh) in its own process group, its console read line
/// by line on a thread.
struct Vm {
    child: Child,
    lines: Receiver<String>,
    console: Vec<String>,
    started: Instant,
}

impl Vm {
    fn boot(image: &Path, disks: &Path) -> Vm {
        let mut child = Command::new("bash")
            .arg(repo().join("scripts/boot-image.sh"))
            .arg("--image")
            .arg(image)
            .arg("--disks")
            .arg(disks)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
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
        }
    }

    /// The first console line containing `needle`, within `timeout`.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
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

    /// Fails with the console when `needle` does not show.
    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        match self.wait_for(needle, timeout) {
            Some(l) => l,
            None => panic!(
                "no {needle:?} on the console within {timeout:?}; last lines:\n{}",
                self.console[self.console.len().saturating_sub(40)..].join("\n")
            ),
        }
    }

    fn kill(&mut self) {
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

fn node_id(ready: &str) -> String {
    ready
        .split("node ready: id ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .to_string()
}

/// Lines that mean a daemon died: PID 1 reaped the node daemon or an orphan, or a panic.
fn crashes(console: &[String]) -> Vec<String> {
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

#[test]
fn image_boots_to_node_ready_and_keeps_its_identity_across_a_reboot() {
    let qemu = nodeutil::skip::has_tool("qemu-system-x86_64");
    if nodeutil::skip::unless(qemu, "qemu-system-x86_64 (scripts/deps.sh)") {
        return;
    }
    let image = image();
    let size = ["vmlinuz", "initramfs.img"]
        .iter()
        .map(|f| std::fs::metadata(image.join(f)).unwrap().len())
        .sum::<u64>();
    let disks = tempfile::Builder::new()
        .prefix("image-test-")
        .tempdir()
        .unwrap();

    let mut vm = Vm::boot(&image, disks.path());
    let ready = vm.expect("node ready: id ", READY_TIMEOUT);
    let first_boot = vm.started.elapsed();
    let id = node_id(&ready);
    let shown = vm.expect("node disks:", Duration::from_secs(60));
    // the fast disk is an SSD, the throttled one an HDD, both pooled
    assert!(shown.contains("vda ssd pool"), "{shown}");
    assert!(shown.contains("vdb hdd pool"), "{shown}");
    let _ = vm.wait_for("never printed", WATCH);
    assert_eq!(crashes(&vm.console), Vec::<String>::new());
    vm.kill();
    drop(vm);

    let mut vm = Vm::boot(&image, disks.path());
    vm.expect("init: pool on /dev/vda mounted", READY_TIMEOUT);
    let ready = vm.expect("node ready: id ", READY_TIMEOUT);
    let second_boot = vm.started.elapsed();
    assert_eq!(node_id(&ready), id, "a reboot changed the node id");
    let shown = vm.expect("node disks:", Duration::from_secs(60));
    assert!(shown.contains("vdb hdd pool"), "{shown}");
    let _ = vm.wait_for("never printed", WATCH);
    assert_eq!(crashes(&vm.console), Vec::<String>::new());
    eprintln!(
        "image {:.1} MiB; qemu start to node ready: first boot {:.1} s, reboot {:.1} s",
        size as f64 / 1048576.0,
        first_boot.as_secs_f64(),
        second_boot.as_secs_f64()
    );
}
