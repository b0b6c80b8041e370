//! Running a helper program: a deadline, and a bounded copy of the end of its stderr for the
//! error message (redacted, cut at a character boundary: the cut never panics, whatever bytes
//! the child wrote).

use crate::error::{Error, Result};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How much of a failed child's stderr an error quotes (its end, where the reason usually is).
pub const STDERR_KEPT: usize = 2000;
/// How long to wait for the rest of stderr after the child exited (a grandchild may hold it).
const DRAIN: Duration = Duration::from_millis(500);

/// The last `max` bytes of `s` or fewer, starting at a character boundary.
pub fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s.get(start..).unwrap_or_default()
}

/// Runs `cmd` (stdin and stdout closed) until it exits or `timeout` passes (then it is
/// killed). `what` names it in errors (program and subcommand, no arguments).
pub fn run(what: &str, cmd: &mut Command, timeout: Duration) -> Result<()> {
    run_with_input(what, cmd, None, timeout)
}

/// [`run`] with `input` written to the child's stdin (then closed): how a secret reaches a
/// child without appearing on its command line. The write happens on its own thread, so a
/// child that never reads cannot stall the deadline.
pub fn run_with_input(
    what: &str,
    cmd: &mut Command,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<()> {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::command(what, &format!("cannot start: {e}")))?;
    if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
        std::thread::spawn(move || {
            use std::io::Write;
            // A child that exits without reading closes the pipe; its exit status tells why.
            let _ = pipe.write_all(&input);
        });
    }
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    if let Some(mut err) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                if tx.send(buf.get(..n).unwrap_or_default().to_vec()).is_err() {
                    return;
                }
            }
        });
    }
    let mut kept = Vec::new();
    let keep = |kept: &mut Vec<u8>, chunk: Vec<u8>| {
        kept.extend_from_slice(&chunk);
        if kept.len() > 2 * STDERR_KEPT {
            kept.drain(..kept.len() - STDERR_KEPT);
        }
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("no answer in {} s, killed", timeout.as_secs()));
            }
            Ok(None) => {
                if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(10)) {
                    keep(&mut kept, chunk);
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("wait: {e}"));
            }
        }
    };
    let until = Instant::now() + DRAIN;
    while let Ok(chunk) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        keep(&mut kept, chunk);
    }
    let text = String::from_utf8_lossy(&kept);
    let stderr = tail(text.trim(), STDERR_KEPT);
    match status {
        Ok(st) if st.success() => Ok(()),
        Ok(st) => Err(Error::command(what, &format!("{st}: {stderr}"))),
        Err(why) => Err(Error::command(what, &format!("{why}: {stderr}"))),
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn input_reaches_the_child_on_stdin() {
        let store = "zdb://user:secret@host:9900/ns";
        // The child succeeds only if the store line arrives on its stdin.
        let script = format!(r#"read line; [ "$line" = "{store}" ]"#);
        let mut ok = Command::new("sh");
        ok.args(["-c", &script]);
        let input = Some(format!("{store}\n").into_bytes());
        run_with_input("sh", &mut ok, input, Duration::from_secs(10)).unwrap();
        let mut without = Command::new("sh");
        without.args(["-c", &script]);
        assert!(run_with_input("sh", &mut without, None, Duration::from_secs(10)).is_err());
    }

    #[test]
    fn a_child_that_never_reads_its_input_does_not_stall_the_deadline() {
        let mut c = Command::new("sh");
        c.args(["-c", "exec sleep 30"]);
        let t0 = Instant::now();
        let big = vec![b'x'; 4 << 20];
        assert!(run_with_input("sleep", &mut c, Some(big), Duration::from_millis(500)).is_err());
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn tail_cuts_at_a_character_boundary() {
        let s = "€".repeat(1000); // 3000 bytes, two of every three inside a character
        for max in [0, 1, 2, 3, 1999, 2000, 2001, 5000] {
            let t = tail(&s, max);
            assert!(t.len() <= max, "{max}");
            assert!(t.len() + 2 >= max.min(s.len()), "{max}: {}", t.len());
        }
        assert_eq!(tail("abc", 2), "bc");
    }

    /// A child whose stderr ends inside multi-byte characters once cut to the kept length
    /// (the slice `detail[len - 2000..]` panicked there, inside the engine's lock).
    #[test]
    fn a_failing_child_with_multibyte_stderr_is_an_error_not_a_panic() {
        for pad in ["", "x", "xx"] {
            // 1000 three-byte characters: 2000 bytes from the end is never a boundary
            let script = format!(
                "printf '{pad}' >&2; i=0; while [ $i -lt 1000 ]; do printf '€' >&2; i=$((i+1)); done; exit 3"
            );
            let e = run(
                "sh -c",
                Command::new("sh").args(["-c", &script]),
                Duration::from_secs(20),
            )
            .unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("sh -c failed: exit status: 3: "), "{msg}");
            assert!(msg.ends_with("€€"), "{msg}");
        }
    }

    #[test]
    fn a_hung_child_is_killed_at_its_deadline_and_credentials_never_show() {
        let t0 = Instant::now();
        let e = run(
            "sleep",
            Command::new("sh").args(["-c", "echo zdb://me:hunter2@host/ns >&2; sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap_err()
        .to_string();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(e.contains("killed"), "{e}");
        assert!(e.contains("zdb://<redacted>@host/ns"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        run("true", &mut Command::new("true"), Duration::from_secs(5)).unwrap();
    }
}
