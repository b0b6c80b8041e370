//! Bytes of the hand-over protocol. Each frame is one `SOCK_SEQPACKET` message (boundaries
//! kept by the kernel) of at most [`MAX_FRAME`] bytes; integers are big-endian.
//!
//! ```text
//! tag 1 Hello   new -> old  "ZDBHANDOVER" (11) | version u16
//! tag 2 Fd      old -> new  kind u8 (1 tcp, 2 unix, 3 metrics, 4 hand-over, 5 lock)    + 1 fd
//! tag 3 Conn    old -> new  id u64 | kind u8 (1 tcp, 2 unix) | flags u8 (1 writable,
//!                           2 admin, 4 master, 8 mirror) | ns_len u8 | ns | nonce_len u8 |
//!                           nonce | input_len u32                                      + 1 fd
//! tag 4 Input   old -> new  bytes of the last Conn's input (frames follow Conn until
//!                           input_len bytes came)
//! tag 5 End     old -> new  next_client u64 | fds u32 | conns u32 (what was sent)
//! tag 6 Ready   new -> old  (namespaces loaded, hooks run)
//! tag 7 Commit  old -> new  (the old one serves nothing more: go)
//! tag 8 Abort   either      reason (UTF-8, at most 1024 bytes)
//! ```
//! Decoding checks every length against the frame and the limits below: a torn or hostile
//! frame is an error, never a panic or an allocation it names.

use crate::shared::{ConnKind, ConnState};

/// Largest frame (a Conn with its longest fields fits; Input frames carry up to this).
pub const MAX_FRAME: usize = 64 * 1024;
/// Bytes of an Input frame's payload.
pub const INPUT_CHUNK: usize = MAX_FRAME - 1;
/// Largest input a connection may carry (what a connection may buffer: one request).
pub const MAX_INPUT: usize = crate::protocol::MAX_FRAME;
/// Protocol version sent in Hello.
pub const VERSION: u16 = 1;
const MAGIC: &[u8; 11] = b"ZDBHANDOVER";
const MAX_REASON: usize = 1024;
const MAX_NS: usize = 255;
const MAX_NONCE: usize = 255;

/// What a descriptor sent with a Fd frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// TCP listener.
    Tcp = 1,
    /// Unix stream listener (`--socket`).
    Unix = 2,
    /// Metrics listener (`--metrics`).
    Metrics = 3,
    /// The hand-over listener itself (`--handover`), for the next upgrade.
    Handover = 4,
    /// A folder lock (`.lockfile`, flock'ed): the lock goes with the open file.
    Lock = 5,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Protocol version of the new process.
    Hello(u16),
    /// A descriptor follows.
    Fd(FdKind),
    /// A connection (its input follows in Input frames).
    Conn {
        /// State, `input` empty.
        state: ConnState,
        /// Bytes of input that follow.
        input_len: u32,
    },
    /// Part of the last connection's input.
    Input(Vec<u8>),
    /// Everything was sent.
    End {
        /// Next client id.
        next_client: u64,
        /// Fd frames sent.
        fds: u32,
        /// Conn frames sent.
        conns: u32,
    },
    /// The new process serves once told to.
    Ready,
    /// The old process stopped: serve.
    Commit,
    /// Give up (the old one serves on).
    Abort(String),
}

/// A frame that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than its fields say.
    #[error("hand-over frame torn: {0}")]
    Torn(&'static str),
    /// A field out of its range.
    #[error("hand-over frame invalid: {0}")]
    Invalid(&'static str),
    /// Bytes left after the last field.
    #[error("hand-over frame has trailing bytes")]
    Trailing,
}

impl Frame {
    /// Whether this frame carries exactly one descriptor.
    pub fn carries_fd(&self) -> bool {
        matches!(self, Frame::Fd(_) | Frame::Conn { .. })
    }
}

impl nodeutil::handover::Frame for Frame {
    const MAX: usize = MAX_FRAME;
    type Error = WireError;

    /// The frame's bytes (at most [`MAX_FRAME`]: callers keep fields within the limits,
    /// longer ones are cut).
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        match self {
            Frame::Hello(v) => {
                b.push(1);
                b.extend_from_slice(MAGIC);
                b.extend_from_slice(&v.to_be_bytes());
            }
            Frame::Fd(k) => b.extend_from_slice(&[2, *k as u8]),
            Frame::Conn { state, input_len } => {
                b.push(3);
                b.extend_from_slice(&state.id.to_be_bytes());
                b.push(match state.kind {
                    ConnKind::Tcp => 1,
                    ConnKind::Unix => 2,
                });
                let flags = u8::from(state.writable)
                    | u8::from(state.admin) << 1
                    | u8::from(state.master) << 2
                    | u8::from(state.mirror) << 3;
                b.push(flags);
                short_field(&mut b, &state.ns, MAX_NS);
                short_field(
                    &mut b,
                    state.nonce.as_deref().unwrap_or("").as_bytes(),
                    MAX_NONCE,
                );
                b.extend_from_slice(&input_len.to_be_bytes());
            }
            Frame::Input(data) => {
                b.push(4);
                b.extend_from_slice(&data[..data.len().min(INPUT_CHUNK)]);
            }
            Frame::End {
                next_client,
                fds,
                conns,
            } => {
                b.push(5);
                b.extend_from_slice(&next_client.to_be_bytes());
                b.extend_from_slice(&fds.to_be_bytes());
                b.extend_from_slice(&conns.to_be_bytes());
            }
            Frame::Ready => b.push(6),
            Frame::Commit => b.push(7),
            Frame::Abort(reason) => {
                b.push(8);
                b.extend_from_slice(nodeutil::handover::reason_bytes(reason, MAX_REASON));
            }
        }
        b
    }

    /// Read one frame.
    fn decode(buf: &[u8]) -> Result<Frame, WireError> {
        if buf.len() > MAX_FRAME {
            return Err(WireError::Invalid("longer than a frame may be"));
        }
        let mut r = Reader(buf);
        let frame = match r.u8("tag")? {
            1 => {
                if r.take(MAGIC.len(), "magic")? != MAGIC {
                    return Err(WireError::Invalid("not a zdb hand-over"));
                }
                Frame::Hello(u16::from_be_bytes(r.array("version")?))
            }
            2 => Frame::Fd(match r.u8("fd kind")? {
                1 => FdKind::Tcp,
                2 => FdKind::Unix,
                3 => FdKind::Metrics,
                4 => FdKind::Handover,
                5 => FdKind::Lock,
                _ => return Err(WireError::Invalid("unknown fd kind")),
            }),
            3 => {
                let id = u64::from_be_bytes(r.array("client id")?);
                let kind = match r.u8("connection kind")? {
                    1 => ConnKind::Tcp,
                    2 => ConnKind::Unix,
                    _ => return Err(WireError::Invalid("unknown connection kind")),
                };
                let flags = r.u8("flags")?;
                if flags & !0x0f != 0 {
                    return Err(WireError::Invalid("unknown session flags"));
                }
                let ns_len = usize::from(r.u8("namespace length")?);
                let ns = r.take(ns_len, "namespace")?.to_vec();
                let nonce_len = usize::from(r.u8("nonce length")?);
                let nonce = r.take(nonce_len, "nonce")?;
                let nonce = match nonce_len {
                    0 => None,
                    _ => Some(
                        std::str::from_utf8(nonce)
                            .map_err(|_| WireError::Invalid("nonce not UTF-8"))?
                            .to_string(),
                    ),
                };
                let input_len = u32::from_be_bytes(r.array("input length")?);
                if input_len as usize > MAX_INPUT {
                    return Err(WireError::Invalid("input longer than a request may be"));
                }
                Frame::Conn {
                    state: ConnState {
                        id,
                        kind,
                        ns,
                        writable: flags & 1 != 0,
                        admin: flags & 2 != 0,
                        master: flags & 4 != 0,
                        mirror: flags & 8 != 0,
                        nonce,
                        input: Vec::new(),
                    },
                    input_len,
                }
            }
            4 => {
                let data = r.rest().to_vec();
                if data.is_empty() {
                    return Err(WireError::Invalid("empty input frame"));
                }
                Frame::Input(data)
            }
            5 => Frame::End {
                next_client: u64::from_be_bytes(r.array("next client")?),
                fds: u32::from_be_bytes(r.array("fd count")?),
                conns: u32::from_be_bytes(r.array("connection count")?),
            },
            6 => Frame::Ready,
            7 => Frame::Commit,
            8 => {
                let rest = r.rest();
                if rest.len() > MAX_REASON {
                    return Err(WireError::Invalid("abort reason too long"));
                }
                Frame::Abort(String::from_utf8_lossy(rest).into_owned())
            }
            _ => return Err(WireError::Invalid("unknown frame tag")),
        };
        if !r.0.is_empty() {
            return Err(WireError::Trailing);
        }
        Ok(frame)
    }

    fn fds(&self) -> usize {
        usize::from(self.carries_fd())
    }

    fn refusal(&self) -> Option<&str> {
        match self {
            Frame::Abort(reason) => Some(reason),
            _ => None,
        }
    }

    fn refuse(reason: String) -> Self {
        Frame::Abort(reason)
    }
}

/// A length byte and up to `max` bytes of `field`.
fn short_field(b: &mut Vec<u8>, field: &[u8], max: usize) {
    let field = &field[..field.len().min(max)];
    b.push(field.len() as u8);
    b.extend_from_slice(field);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Torn(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodeutil::handover::Frame as _;

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Hello(VERSION),
            Frame::Fd(FdKind::Lock),
            Frame::Conn {
                state: ConnState {
                    id: 42,
                    kind: ConnKind::Unix,
                    ns: b"ns-1".to_vec(),
                    writable: true,
                    admin: false,
                    master: true,
                    mirror: false,
                    nonce: Some("abcdef".into()),
                    input: Vec::new(),
                },
                input_len: 17,
            },
            Frame::Input(b"*3\r\n$3\r\nSET".to_vec()),
            Frame::End {
                next_client: 9,
                fds: 3,
                conns: 1,
            },
            Frame::Ready,
            Frame::Commit,
            Frame::Abort("ready hook failed".into()),
        ]
    }

    #[test]
    fn every_frame_reads_back() {
        for f in samples() {
            assert_eq!(Frame::decode(&f.encode()), Ok(f));
        }
    }

    #[test]
    fn a_torn_frame_is_an_error() {
        for f in samples() {
            let bytes = f.encode();
            for cut in 0..bytes.len() {
                // Input and Abort carry their rest: a cut one is shorter, still whole, unless
                // nothing is left of an input.
                let r = Frame::decode(&bytes[..cut]);
                let whole = match f {
                    Frame::Input(_) => cut > 1,
                    Frame::Abort(_) => cut > 0,
                    _ => false,
                };
                if whole {
                    assert!(r.is_ok(), "{f:?} cut at {cut}");
                } else {
                    assert!(r.is_err(), "{f:?} cut at {cut} decoded: {r:?}");
                }
            }
        }
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(t) = b.first_mut() {
                *t = (*t % 9) + 1;
            }
            let _ = Frame::decode(&b);
        }
    }

    #[test]
    fn limits_hold() {
        let mut conn = samples()[2].encode();
        let at = conn.len() - 4;
        conn[at..].copy_from_slice(&(MAX_INPUT as u32 + 1).to_be_bytes());
        assert!(Frame::decode(&conn).is_err());
        assert!(Frame::decode(&[2, 9]).is_err());
        assert!(Frame::decode(&[7, 0]).is_err(), "trailing bytes");
        assert!(Frame::decode(&vec![4; MAX_FRAME + 1]).is_err());
        let mut hello = Frame::Hello(1).encode();
        hello[1] = b'X';
        assert!(Frame::decode(&hello).is_err());
    }
}
