//! The detached mount daemon: `flist mount --daemon` (and `flist container start`) start
//! `flist mount-daemon` in its own session with the [`MountArgs`] as JSON on its stdin, then
//! wait until the mount is there. Nothing but the subcommand name is on its command line.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::args::MountArgs;
use super::kernel::mounted_type;
use crate::error::{Error, IoContext, Result};

/// The hidden subcommand the daemon runs as.
pub const SUBCOMMAND: &str = "mount-daemon";
/// Largest argument document accepted on stdin.
const MAX_ARGS_BYTES: u64 = 1 << 20;
/// How long a daemon may take to mount.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);

/// Start the daemon for `args` (log to `log_file`) and wait until the mount is there.
/// Returns the daemon's pid.
pub fn spawn(args: &MountArgs, log_file: &Path) -> Result<u32> {
    let exe = std::env::current_exe().ctx("current executable")?;
    let json = serde_json::to_vec(&MountArgs {
        new_session: true,
        ..args.clone()
    })
    .map_err(|e| Error::invalid(&args.flist, format!("mount arguments: {e}")))?;
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .ctx(log_file)?;
    let logf2 = logf.try_clone().ctx(log_file)?;
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(logf)
        .stderr(logf2)
        .spawn()
        .ctx("flist mount daemon")?;
    // A daemon that dies before reading says why in its log; the write error says nothing.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&json);
    }
    let mountpoint = &args.mountpoint;
    let t0 = Instant::now();
    loop {
        if mounted_type(mountpoint).is_some_and(|t| t.starts_with("fuse")) {
            return Ok(child.id());
        }
        if let Ok(Some(st)) = child.try_wait() {
            let tail = std::fs::read_to_string(log_file).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(Error::invalid(
                mountpoint,
                format!(
                    "mount daemon exited ({st}): {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            ));
        }
        if t0.elapsed() > MOUNT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::invalid(
                mountpoint,
                format!(
                    "mount daemon did not mount in {} s",
                    MOUNT_TIMEOUT.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Start `flist take-over --new-session SOCKET` detached (log to `log_file`) and wait until
/// it has the mount and the old process is gone (it says so on its stdout). Returns its
/// pid; an error (the old process serving on) if it exits first.
pub fn spawn_take_over(socket: &Path, log_file: &Path) -> Result<u32> {
    let exe = std::env::current_exe().ctx("current executable")?;
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .ctx(log_file)?;
    let mut child = Command::new(exe)
        .arg("take-over")
        .arg("--new-session")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(logf)
        .spawn()
        .ctx("flist take-over")?;
    let out = child.stdout.take();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        if let Some(o) = out {
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(o), &mut line);
        }
        let _ = tx.send(line);
    });
    let limit = super::handover::give::DRAIN_LIMIT + Duration::from_secs(60);
    match rx.recv_timeout(limit) {
        Ok(line) if line.starts_with("took over from") => Ok(child.id()),
        Ok(_) => {
            let st = child.wait().ctx("flist take-over")?;
            let tail = std::fs::read_to_string(log_file).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            Err(Error::invalid(
                socket,
                format!(
                    "take-over failed ({st}): {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            ))
        }
        Err(_) => Err(Error::invalid(
            socket,
            format!(
                "take-over did not finish in {} s (pid {} left running)",
                limit.as_secs(),
                child.id()
            ),
        )),
    }
}

/// Read the arguments a parent sent on `r` (bounded; a clear error for anything else).
pub fn read_args(r: impl Read) -> Result<MountArgs> {
    let mut buf = Vec::new();
    r.take(MAX_ARGS_BYTES + 1)
        .read_to_end(&mut buf)
        .ctx("stdin")?;
    if buf.len() as u64 > MAX_ARGS_BYTES {
        return Err(Error::invalid("stdin", "mount arguments larger than 1 MiB"));
    }
    serde_json::from_slice(&buf)
        .map_err(|e| Error::invalid("stdin", format!("bad mount arguments: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip_and_garbage_is_refused() {
        let a = MountArgs {
            flist: "/f".into(),
            mountpoint: "/m".into(),
            cache: "/c".into(),
            cache_size: 7,
            stores: vec!["zdb://u:pw@h/ns".into()],
            record: None,
            prefetch: vec!["/p".into()],
            fetch_workers: 3,
            threads: 2,
            mem_cache: 9,
            folder_ahead: 0,
            new_session: true,
            handover: Some("/h".into()),
        };
        let json = serde_json::to_vec(&a).unwrap_or_default();
        assert_eq!(read_args(&json[..]).ok(), Some(a));
        assert!(read_args(&b"{"[..]).is_err());
        let huge = vec![b' '; (MAX_ARGS_BYTES + 2) as usize];
        assert!(read_args(&huge[..]).is_err());
    }
}
