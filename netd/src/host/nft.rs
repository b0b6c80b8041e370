//! The kernel's packet filter through the standard tool: `nft -f -` run inside a namespace, so a
//! rule set is applied as one transaction (all or nothing).

use super::netns;
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on one `nft` run.
const NFT_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies `script` with `nft -f -` inside namespace `ns` (`None`: netd's own).
pub fn apply(ns: Option<&str>, script: String) -> io::Result<()> {
    netns::run_in(ns, move || run(&script))?
}

fn run(script: &str) -> io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > NFT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "nft did not finish",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(4096).read_to_string(&mut err);
    }
    Err(io::Error::other(format!(
        "nft failed ({status}): {}",
        err.trim()
    )))
}
