//! Harness for real containers (as root): a busybox root filesystem packed into an flist in a
//! dir store, a computed daemon per test, and cleanup that holds when a test fails.
//!
//! Every test gets a folder `/tmp/cdt-<pid>-<n>`, network namespaces named `c<pid>x<n>-*` and
//! an outer cgroup `cdt-<pid>-<n>` (memory and pids capped) that holds all its containers, so a
//! bug in ours cannot take the machine down. The [`Env`] guard deletes the containers, kills
//! the daemon, the shims and whatever is left in the outer cgroup, unmounts everything under the
//! folder and removes namespaces, cgroups and the folder. Leftovers of dead runs are swept at
//! start. Without root, busybox-static, iproute2 or cgroups the tests skip, but fail when
//! `CI=true` (`nodeutil::skip`).

use bus::api::compute::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const MIB: u64 = 1 << 20;
const BUSYBOX: &str = "/bin/busybox";
/// Caps on the outer cgroup of a test.
const OUTER_MEMORY: u64 = 1 << 30;
const OUTER_PIDS: u32 = 1000;
static SEQ: AtomicU32 = AtomicU32::new(0);

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The `flist` binary of the workspace.
pub fn flist_bin() -> PathBuf {
    target_dir().join("debug/flist")
}

pub fn computed_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_computed"))
}

fn cgroup_roots() -> [PathBuf; 2] {
    [
        PathBuf::from("/sys/fs/cgroup/memory"),
        PathBuf::from("/sys/fs/cgroup/pids"),
    ]
}

/// `Some(())` when real containers can run; otherwise skips (or panics under CI=true).
pub fn require() -> Option<()> {
    let mut missing = Vec::new();
    if !nodeutil::skip::is_root() {
        missing.push("root".to_string());
    }
    if !Path::new(BUSYBOX).exists() {
        missing.push(format!("{BUSYBOX} (apt-get install busybox-static)"));
    }
    if !nodeutil::skip::has_tool("ip") {
        missing.push("ip (apt-get install iproute2)".into());
    }
    if !Path::new("/dev/fuse").exists() {
        missing.push("/dev/fuse".into());
    }
    for r in cgroup_roots() {
        if !r.exists() {
            missing.push(format!("cgroup v1 controller {}", r.display()));
        }
    }
    if !flist_bin().exists() {
        missing.push(format!(
            "{} (cargo build -p flist-fuse)",
            flist_bin().display()
        ));
    }
    let msg = format!("container test needs: {}", missing.join(", "));
    (!nodeutil::skip::unless(missing.is_empty(), &msg)).then_some(())
}

fn sh(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills every task of a cgroup tree, then removes its folders bottom-up.
fn remove_cgroup_tree(path: &Path) {
    for _ in 0..50 {
        let mut any = false;
        for procs in walk(path, "cgroup.procs") {
            for pid in std::fs::read_to_string(&procs).unwrap_or_default().lines() {
                if let Ok(p) = pid.trim().parse::<i32>() {
                    any = true;
                    if let Some(p) = rustix::process::Pid::from_raw(p) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                }
            }
        }
        if !any {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut dirs: Vec<PathBuf> = walk(path, "").into_iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(&d);
    }
}

/// Folders under `root` (itself included); with `file`, that file in each.
fn walk(root: &Path, file: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if !d.is_dir() {
            continue;
        }
        out.push(if file.is_empty() {
            d.clone()
        } else {
            d.join(file)
        });
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    out
}

/// Unmounts everything mounted under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut under: Vec<String> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(|m| m.replace("\\040", " "))
            .filter(|m| Path::new(m).starts_with(dir))
            .collect();
        if under.is_empty() {
            return;
        }
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            if !sh("umount", &[&m]) {
                sh("umount", &["-l", &m]);
            }
        }
    }
}

fn remove_netns(prefix: &str) {
    for e in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with(prefix) {
            sh("ip", &["netns", "delete", &n]);
        }
    }
}

/// Removes what dead test runs left behind.
fn sweep() {
    for e in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("cdt-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        for r in cgroup_roots() {
            remove_cgroup_tree(&r.join(&name));
        }
        kill_shims_under(&e.path());
        unmount_under(&e.path());
        remove_netns(&format!("c{pid}x"));
        let _ = std::fs::remove_dir_all(e.path());
    }
}

/// Kills computed processes (daemon and shims) whose command line names `dir`.
fn kill_shims_under(dir: &Path) {
    let needle = dir.to_string_lossy().to_string();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("computed")
            && cmd.contains(&needle)
            && let Some(p) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
}

/// One test's world.
pub struct Env {
    pub dir: PathBuf,
    pub netns_prefix: String,
    pub cgroup: String,
    pub flist: PathBuf,
    pub identity: String,
    pub client: bus::Client,
    daemon: Option<Child>,
}

impl Env {
    /// Sets up the folder, the outer cgroup and the busybox flist, and starts computed.
    pub fn new() -> Option<Env> {
        require()?;
        sweep();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = PathBuf::from(format!("/tmp/cdt-{pid}-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cgroup = format!("cdt-{pid}-{n}");
        for r in cgroup_roots() {
            std::fs::create_dir_all(r.join(&cgroup)).unwrap();
        }
        std::fs::write(
            Path::new("/sys/fs/cgroup/memory")
                .join(&cgroup)
                .join("memory.limit_in_bytes"),
            OUTER_MEMORY.to_string(),
        )
        .unwrap();
        std::fs::write(
            Path::new("/sys/fs/cgroup/pids")
                .join(&cgroup)
                .join("pids.max"),
            OUTER_PIDS.to_string(),
        )
        .unwrap();
        let store = dir.join("store");
        let flist = dir.join("busybox.flist");
        pack_busybox(&dir.join("tree"), &store, &flist);
        let identity = identity_of(&flist);
        let run = dir.join("run");
        let mut env = Env {
            client: bus::Client::new(bus::service_socket(&run, "computed")),
            netns_prefix: format!("c{pid}x{n}-"),
            cgroup,
            flist,
            identity,
            dir,
            daemon: None,
        };
        env.start_daemon();
        Some(env)
    }

    /// Starts the computed daemon and waits for its socket.
    pub fn start_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("computed.log"))
            .unwrap();
        let child = Command::new(computed_bin())
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--run")
            .arg(self.dir.join("run"))
            .arg("--flist-bin")
            .arg(flist_bin())
            .arg("--cgroup-parent")
            .arg(&self.cgroup)
            .arg("--netns-prefix")
            .arg(&self.netns_prefix)
            .arg("--cache-size")
            .arg("256M")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let t0 = Instant::now();
        let socket = bus::service_socket(&self.dir.join("run"), "computed");
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "computed did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Another client of the daemon (for calls made from spawned tasks).
    pub fn new_client(&self) -> bus::Client {
        bus::Client::new(bus::service_socket(&self.dir.join("run"), "computed"))
    }

    /// SIGKILLs the daemon (its shims and containers keep running).
    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A spec running `script` with `sh -c`, a fresh writable folder, 64 MiB, 64 tasks.
    pub fn spec(&self, short: &str, script: &str) -> ContainerSpec {
        let name = format!("{}{short}", self.netns_prefix);
        let rw = self.dir.join("rw").join(short);
        std::fs::create_dir_all(&rw).unwrap();
        computed::testing::spec(
            &name,
            &self.flist,
            &self.identity,
            rw,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        )
    }

    /// Polls until `pred` holds (panics with the last state after `secs`).
    pub async fn wait(
        &self,
        name: &str,
        secs: u64,
        pred: impl Fn(&Container) -> bool,
    ) -> Container {
        let t0 = Instant::now();
        loop {
            let c = self
                .client
                .call::<GetContainer>(&Name {
                    name: name.to_string(),
                })
                .await
                .unwrap();
            if pred(&c) {
                return c;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "timed out; last state: {c:?}\nlogs: {}",
                self.logs(name).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the container is final.
    pub async fn wait_final(&self, name: &str, secs: u64) -> Container {
        self.wait(name, secs, |c| c.state.is_final()).await
    }

    /// All captured output.
    pub async fn logs(&self, name: &str) -> String {
        let mut out = Vec::new();
        // on an error (unknown container), what was read so far
        let _ = copy_logs(&self.client, name, false, &mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The container's cgroup folder in controller `ctl`.
    pub fn cgroup_dir(&self, ctl: &str, name: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(ctl)
            .join(&self.cgroup)
            .join(name)
    }

    /// The container's state folder.
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.dir.join("root/containers").join(name)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // the orderly way first: the daemon deletes its containers
        if self.daemon.is_some() {
            for e in std::fs::read_dir(self.dir.join("root/containers"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = Command::new(computed_bin())
                    .arg("--run")
                    .arg(self.dir.join("run"))
                    .arg("delete")
                    .arg(e.file_name())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        self.kill_daemon();
        kill_shims_under(&self.dir);
        for r in cgroup_roots() {
            remove_cgroup_tree(&r.join(&self.cgroup));
        }
        unmount_under(&self.dir);
        remove_netns(&self.netns_prefix);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A busybox root filesystem: the static binary, its applets as symlinks, empty mount points.
pub fn pack_busybox(tree: &Path, store: &Path, flist: &Path) {
    let bin = tree.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    for d in ["proc", "dev", "sys", "tmp", "etc", "data"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::write(tree.join("etc/motd"), "from the flist\n").unwrap();
    std::fs::create_dir_all(store).unwrap();
    let out = Command::new(flist_bin())
        .args(["pack", "--quiet", "--store"])
        .arg(format!("dir://{}", store.display()))
        .arg("-o")
        .arg(flist)
        .arg(tree)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "flist pack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Identity of an flist (from `flist inspect`).
pub fn identity_of(flist: &Path) -> String {
    let out = Command::new(flist_bin())
        .arg("inspect")
        .arg(flist)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("identity: "))
        .unwrap()
        .trim()
        .to_string()
}
