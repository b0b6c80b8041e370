//! The kernel and programs the boot steps use, behind [`Kernel`] so the steps' order and
//! arguments are tested without booting (`Fake`).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// PATH of the image: our daemons in /usr/bin, Debian's tools in /usr/sbin and /usr/bin.
pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Side effects of the boot steps.
pub trait Kernel {
    /// mount(2); `data` is the file system's option string.
    fn mount(&self, source: &str, target: &Path, fstype: &str, data: &str) -> Result<(), String>;
    /// Runs `program args` with PATH set, stdin closed, stderr on the console; returns its
    /// stdout. Killed after `timeout`.
    fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<String, String>;
    /// Starts `program args` (PATH set, plain logs) with its output on the console and, with
    /// `console_stdin`, its input from it; returns its pid. Not waited for: PID 1 reaps it.
    fn spawn(&self, program: &str, args: &[String], console_stdin: bool) -> Result<u32, String>;
}

/// The real kernel.
pub struct Linux;

impl Kernel for Linux {
    fn mount(&self, source: &str, target: &Path, fstype: &str, data: &str) -> Result<(), String> {
        std::fs::create_dir_all(target).map_err(|e| format!("mkdir {}: {e}", target.display()))?;
        // `noatime` is a mount flag, not a file system option (btrfs refuses it as one)
        let mut flags = rustix::mount::MountFlags::empty();
        let opts: Vec<&str> = data
            .split(',')
            .filter(|o| match *o {
                "noatime" => {
                    flags |= rustix::mount::MountFlags::NOATIME;
                    false
                }
                o => !o.is_empty(),
            })
            .collect();
        let data = std::ffi::CString::new(opts.join(",")).map_err(|e| e.to_string())?;
        rustix::mount::mount(source, target, fstype, flags, data.as_c_str())
            .map_err(|e| format!("mount {fstype} on {}: {e}", target.display()))
    }

    fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
        let mut child = Command::new(program)
            .args(args)
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{program}: {e}"))?;
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{program}: no result after {timeout:?}"));
                }
                Err(e) => return Err(format!("{program}: {e}")),
            }
        };
        // outputs here are a few lines: the pipe's buffer held them
        let mut out = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if status.success() {
            Ok(out)
        } else {
            Err(format!("{program} {}: {status}", args.join(" ")))
        }
    }

    fn spawn(&self, program: &str, args: &[String], console_stdin: bool) -> Result<u32, String> {
        Command::new(program)
            .args(args)
            .env("PATH", PATH)
            .env(nodeutil::log::ENV, "plain")
            .stdin(if console_stdin {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map(|c| c.id())
            .map_err(|e| format!("cannot start {program}: {e}"))
    }
}

/// Records what the boot steps do; answers `run` from a table.
#[cfg(test)]
#[derive(Default)]
pub struct Fake {
    /// Every call, in order, as text.
    pub calls: std::sync::Mutex<Vec<String>>,
    /// stdout per program.
    pub outputs: std::collections::BTreeMap<String, String>,
}

#[cfg(test)]
impl Kernel for Fake {
    fn mount(&self, source: &str, target: &Path, fstype: &str, data: &str) -> Result<(), String> {
        self.calls.lock().map_err(|e| e.to_string())?.push(format!(
            "mount {fstype} {source} {} {data}",
            target.display()
        ));
        Ok(())
    }

    fn run(&self, program: &str, args: &[&str], _timeout: Duration) -> Result<String, String> {
        self.calls
            .lock()
            .map_err(|e| e.to_string())?
            .push(format!("{program} {}", args.join(" ")));
        Ok(self.outputs.get(program).cloned().unwrap_or_default())
    }

    fn spawn(&self, program: &str, args: &[String], _console_stdin: bool) -> Result<u32, String> {
        self.calls
            .lock()
            .map_err(|e| e.to_string())?
            .push(format!("spawn {program} {}", args.join(" ")));
        Ok(4242)
    }
}
