//! [`System`] on Linux, through util-linux, btrfs-progs and e2fsprogs commands.

use super::{MountEntry, SysError, System};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The real system.
#[derive(Debug, Default, Clone, Copy)]
pub struct Linux;

fn run(
    op: &'static str,
    target: &Path,
    program: &str,
    args: &[&std::ffi::OsStr],
) -> Result<String, SysError> {
    tracing::debug!(op, program, target = %target.display(), "system command");
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| SysError::Spawn {
            op,
            program: program.to_string(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let msg = err.trim();
        Err(SysError::Failed {
            op,
            target: target.display().to_string(),
            message: if msg.is_empty() {
                out.status.to_string()
            } else {
                msg.lines().last().unwrap_or(msg).to_string()
            },
        })
    }
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

impl System for Linux {
    fn loop_find(&self, image: &Path) -> Result<Option<PathBuf>, SysError> {
        let out = run(
            "losetup -j",
            image,
            "losetup",
            &[os("-j"), image.as_os_str()],
        )?;
        // "/dev/loop3: []: (/path/img)"
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(':').map(|(d, _)| PathBuf::from(d)))
            .next())
    }

    fn loop_attach(&self, image: &Path) -> Result<PathBuf, SysError> {
        let out = run(
            "losetup",
            image,
            "losetup",
            &[os("--find"), os("--show"), image.as_os_str()],
        )?;
        let dev = out.trim();
        if dev.is_empty() {
            return Err(SysError::Failed {
                op: "losetup",
                target: image.display().to_string(),
                message: "no device printed".into(),
            });
        }
        Ok(PathBuf::from(dev))
    }

    fn loop_detach(&self, dev: &Path) -> Result<(), SysError> {
        run("losetup -d", dev, "losetup", &[os("-d"), dev.as_os_str()]).map(drop)
    }

    fn mkfs_btrfs(&self, dev: &Path, label: &str) -> Result<(), SysError> {
        run(
            "mkfs.btrfs",
            dev,
            "mkfs.btrfs",
            &[os("-q"), os("-L"), os(label), dev.as_os_str()],
        )
        .map(drop)
    }

    fn mount_btrfs(&self, dev: &Path, target: &Path) -> Result<(), SysError> {
        std::fs::create_dir_all(target).map_err(|source| SysError::Io {
            op: "mkdir",
            path: target.to_path_buf(),
            source,
        })?;
        run(
            "mount",
            target,
            "mount",
            &[
                os("-t"),
                os("btrfs"),
                os("-o"),
                os("noatime"),
                dev.as_os_str(),
                target.as_os_str(),
            ],
        )
        .map(drop)
    }

    fn umount(&self, target: &Path) -> Result<(), SysError> {
        run("umount", target, "umount", &[target.as_os_str()]).map(drop)
    }

    fn mounts(&self) -> Result<Vec<MountEntry>, SysError> {
        nodeutil::mounts::current().map_err(|source| SysError::Io {
            op: "read",
            path: "/proc/self/mountinfo".into(),
            source,
        })
    }

    fn quota_enable(&self, mnt: &Path) -> Result<(), SysError> {
        run(
            "btrfs quota enable",
            mnt,
            "btrfs",
            &[os("quota"), os("enable"), mnt.as_os_str()],
        )
        .map(drop)
    }

    fn subvolume_create(&self, path: &Path) -> Result<(), SysError> {
        run(
            "btrfs subvolume create",
            path,
            "btrfs",
            &[os("subvolume"), os("create"), path.as_os_str()],
        )
        .map(drop)
    }

    fn subvolume_delete(&self, path: &Path) -> Result<(), SysError> {
        run(
            "btrfs subvolume delete",
            path,
            "btrfs",
            &[os("subvolume"), os("delete"), path.as_os_str()],
        )
        .map(drop)
    }

    fn qgroup_limit(&self, path: &Path, bytes: u64) -> Result<(), SysError> {
        let b = bytes.to_string();
        run(
            "btrfs qgroup limit",
            path,
            "btrfs",
            &[os("qgroup"), os("limit"), os(&b), path.as_os_str()],
        )
        .map(drop)
    }

    fn set_nocow(&self, path: &Path) -> Result<(), SysError> {
        run("chattr +C", path, "chattr", &[os("+C"), path.as_os_str()]).map(drop)
    }

    fn kill(&self, pid: u32, signal: &str) -> Result<(), SysError> {
        let p = pid.to_string();
        let s = format!("-{signal}");
        run("kill", Path::new(&p), "kill", &[os(&s), os(&p)]).map(drop)
    }
}
