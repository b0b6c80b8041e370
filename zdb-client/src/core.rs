//! What the blocking and async connections share: the read buffer, the decoder, the
//! request buffer, the per-reply deadline rule and the policy after a failure. The shells
//! only move bytes between this and their socket.

use std::time::Duration;

use crate::codec::{Decoder, Limits};
use crate::config::{AuthMethod, Config};
use crate::error::{Error, Result};
use crate::handshake::Session;
use crate::value::Value;

/// Size of a fresh read buffer.
const INITIAL: usize = 16 << 10;
/// A buffer that grew past this (for a large value) is released once it is drained.
const KEEP: usize = 1 << 20;

/// Unread bytes between `start` and `end`; grows by doubling only when full of unread
/// bytes, so it never holds more than twice what the server actually sent.
#[derive(Debug)]
pub(crate) struct ReadBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn new() -> ReadBuf {
        ReadBuf {
            data: vec![0; INITIAL],
            start: 0,
            end: 0,
        }
    }

    pub(crate) fn unread(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or_default()
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.data.len() > KEEP {
                self.data = vec![0; INITIAL];
            }
        }
    }

    /// Room to read into (never empty).
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let len = self.data.len();
        if self.start > 0 && len - self.end < len / 4 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.data.len() {
            self.data.resize(len * 2, 0);
        }
        self.data.get_mut(self.end..).unwrap_or_default()
    }

    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }
}

/// One connection's protocol state.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) rbuf: ReadBuf,
    /// Requests encoded but not sent yet.
    pub(crate) wbuf: Vec<u8>,
    decoder: Decoder,
    pub(crate) limits: Limits,
}

impl Core {
    pub(crate) fn new(limits: Limits) -> Core {
        Core {
            rbuf: ReadBuf::new(),
            wbuf: Vec::with_capacity(INITIAL),
            decoder: Decoder::new(limits),
            limits,
        }
    }

    /// Puts the request buffer back once sent, empty (and small again after a large value).
    pub(crate) fn restore_wbuf(&mut self, mut wbuf: Vec<u8>) {
        wbuf.clear();
        if wbuf.capacity() > KEEP {
            wbuf = Vec::with_capacity(INITIAL);
        }
        self.wbuf = wbuf;
    }

    /// The next whole reply among the bytes read so far.
    pub(crate) fn take_reply(&mut self) -> Result<Option<Value>> {
        let (n, v) = self.decoder.decode(self.rbuf.unread())?;
        self.rbuf.consume(n);
        Ok(v)
    }

    /// The error for a connection the server closed.
    pub(crate) fn closed(&self) -> Error {
        Error::Closed {
            mid_reply: self.decoder.in_reply(self.rbuf.unread()),
        }
    }
}

/// When a socket should wake up to look at the deadline: the timeout it has unless that is
/// later than the time left plus an eighth of the timeout, or much shorter than needed
/// (`None`: keep it). A reply thus waits at most 9/8 of the timeout, and a fast connection
/// never pays a system call to move its socket timeout.
pub(crate) fn rearm(
    current: Option<Duration>,
    left: Duration,
    timeout: Duration,
) -> Option<Duration> {
    let slack = timeout / 8;
    let want = left.max(Duration::from_millis(1));
    match current {
        Some(cur) if cur <= left + slack && cur >= left.min(slack) => None,
        _ => Some(want),
    }
}

/// The logins a new connection replays, from the configuration.
pub(crate) fn session_of(cfg: &Config) -> Session {
    Session {
        admin: cfg.admin.clone().map(|a| (a, cfg.auth)),
        select: cfg.namespace.clone().map(|ns| {
            let method = if cfg.password.is_some() {
                cfg.auth
            } else {
                AuthMethod::Plain
            };
            (ns, cfg.password.clone(), method)
        }),
    }
}

/// After a call: an error that broke the connection drops it (`conn` becomes `None`).
pub(crate) fn settle<C, T>(conn: &mut Option<C>, r: Result<T>) -> Result<T> {
    if let Err(e) = &r
        && e.is_connection()
    {
        *conn = None;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_buffer_grows_only_when_full_and_shrinks_when_drained() {
        let mut b = ReadBuf::new();
        let n = b.spare().len();
        assert_eq!(n, INITIAL);
        b.filled(n);
        assert_eq!(b.spare().len(), INITIAL);
        b.filled(INITIAL);
        for _ in 0..6 {
            let n = b.spare().len();
            b.filled(n);
        }
        assert_eq!(b.unread().len(), 2 * KEEP);
        b.consume(2 * KEEP);
        assert_eq!(b.spare().len(), INITIAL);
        // Partly read: compacted before growing.
        b.filled(INITIAL);
        b.consume(INITIAL - 10);
        assert_eq!(b.spare().len(), INITIAL - 10);
        assert_eq!(b.unread().len(), 10);
    }

    #[test]
    fn rearm_moves_the_socket_timeout_only_when_needed() {
        let t = Duration::from_secs(8);
        assert_eq!(rearm(None, t, t), Some(t));
        assert_eq!(rearm(Some(t), t, t), None);
        assert_eq!(rearm(Some(t), Duration::from_millis(7500), t), None);
        assert_eq!(
            rearm(Some(t), Duration::from_secs(6), t),
            Some(Duration::from_secs(6))
        );
        assert_eq!(rearm(Some(Duration::from_millis(1)), t, t), Some(t));
    }
}
