//! Named network namespaces (`/run/netns/<name>`, the `ip netns` convention, so `ip -n` and
//! computed see the same ones) and running code inside one.
//!
//! Entering a namespace changes only the calling thread, so every function here that enters one
//! does it on a fresh thread that ends afterwards: a pooled thread (tokio's) must never be left
//! in another namespace.

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Where named namespaces live.
pub const NETNS_DIR: &str = "/run/netns";
/// `f_type` of the namespace file system (a bind-mounted namespace file).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// The file of namespace `name`.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether `name` is a live namespace (not just a file left by an interrupted creation).
pub fn exists(name: &str) -> bool {
    rustix::fs::statfs(path(name)).is_ok_and(|s| s.f_type == NSFS_MAGIC)
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, so namespaces made by one
/// process are seen by processes in other mount namespaces.
fn share_dir() -> io::Result<()> {
    std::fs::create_dir_all(NETNS_DIR)?;
    let shared = || {
        nix::mount::mount::<str, str, str, str>(
            None,
            NETNS_DIR,
            None,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            nix::mount::mount::<str, str, str, str>(
                Some(NETNS_DIR),
                NETNS_DIR,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(errno)?;
            shared().map_err(errno)
        }
        Err(e) => Err(errno(e)),
    }
}

/// Creates namespace `name` (only loopback, down); an existing one is kept.
pub fn create(name: &str) -> io::Result<()> {
    if exists(name) {
        return Ok(());
    }
    share_dir()?;
    let target = path(name);
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&target)?;
    let t = target.clone();
    let made = std::thread::spawn(move || -> io::Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(errno)?;
        nix::mount::mount::<str, Path, str, str>(
            Some("/proc/thread-self/ns/net"),
            &t,
            None,
            MsFlags::MS_BIND,
            None,
        )
        .map_err(errno)
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?;
    if made.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    made
}

/// Deletes namespace `name`: unmounts and removes its file (absent is fine). The kernel frees
/// it, with every interface inside, once no process or socket uses it.
pub fn delete(name: &str) -> io::Result<()> {
    let p = path(name);
    match nix::mount::umount2(&p, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(errno(e)),
    }
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// An open handle on namespace `name`, to move links into it.
pub fn open(name: &str) -> io::Result<File> {
    if !exists(name) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network namespace {name}"),
        ));
    }
    File::open(path(name))
}

/// Runs `f` on a new thread inside namespace `name` (`None`: the process's own namespace).
pub fn run_in<R: Send + 'static>(
    name: Option<&str>,
    f: impl FnOnce() -> R + Send + 'static,
) -> io::Result<R> {
    let ns = name.map(open).transpose()?;
    std::thread::Builder::new()
        .name("netd-netns".into())
        .spawn(move || -> io::Result<R> {
            if let Some(ns) = ns {
                nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(errno)?;
            }
            Ok(f())
        })?
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
}

/// Writes a sysctl of namespace `name` (`net/ipv4/ip_forward`), from inside it: `/proc/sys/net`
/// shows the namespace of the thread that opens it.
pub fn sysctl(name: Option<&str>, key: &str, value: &str) -> io::Result<()> {
    let file = Path::new("/proc/sys").join(key);
    let value = value.to_string();
    run_in(name, move || std::fs::write(&file, value))?
}
