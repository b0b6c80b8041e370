//! Bytes of the take-over protocol. Each frame is one `SOCK_SEQPACKET` message (the kernel
//! keeps boundaries) of at most [`MAX_FRAME`] bytes; integers are big-endian.
//!
//! ```text
//! tag 1 Hello   new -> old  "NETDHANDOVER" (12) | version u16
//! tag 2 Net     old -> new  id_len u8 | id (a valid network id)           + 1 fd (UDP socket)
//! tag 3 End     old -> new  nets u32 (Net frames sent)
//! tag 4 Ready   new -> old  (records loaded)
//! tag 5 Commit  old -> new  (the old one carries no traffic any more: go)
//! tag 6 Abort   either      reason (UTF-8, at most 512 bytes)
//! tag 7 Api     old -> new  (right before Commit)                     + 1 fd (bus listener)
//! ```
//! Api is optional: a netd that sends none leaves the new one to bind its bus socket anew.
//! Decoding checks every length: a torn or hostile frame is an error, never a panic.

/// Largest frame.
pub const MAX_FRAME: usize = 1024;
/// Protocol version sent in Hello.
pub const VERSION: u16 = 1;
const MAGIC: &[u8; 12] = b"NETDHANDOVER";
const MAX_REASON: usize = 512;

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The new process's protocol version.
    Hello(u16),
    /// A network's tunnel; its UDP socket comes with it.
    Net(String),
    /// Everything was sent.
    End(u32),
    /// The new process loaded its records.
    Ready,
    /// The old process let go: take over.
    Commit,
    /// Give up (the old one carries on).
    Abort(String),
    /// The bus API's listening socket comes with it: the old one stopped accepting.
    Api,
}

/// A frame that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad take-over frame: {0}")]
pub struct WireError(pub String);

impl Frame {
    /// Whether a descriptor travels with it.
    pub fn carries_fd(&self) -> bool {
        matches!(self, Frame::Net(_) | Frame::Api)
    }
}

impl nodeutil::handover::Frame for Frame {
    const MAX: usize = MAX_FRAME;
    type Error = WireError;

    /// Its bytes.
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            Frame::Hello(v) => {
                b.push(1);
                b.extend_from_slice(MAGIC);
                b.extend_from_slice(&v.to_be_bytes());
            }
            Frame::Net(id) => {
                b.push(2);
                // ids are checked (at most 100 bytes) before they are sent
                b.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
                b.extend_from_slice(id.as_bytes());
            }
            Frame::End(n) => {
                b.push(3);
                b.extend_from_slice(&n.to_be_bytes());
            }
            Frame::Ready => b.push(4),
            Frame::Commit => b.push(5),
            Frame::Api => b.push(7),
            Frame::Abort(r) => {
                b.push(6);
                b.extend_from_slice(nodeutil::handover::reason_bytes(r, MAX_REASON));
            }
        }
        b
    }

    /// Reads one frame, checking every length.
    fn decode(b: &[u8]) -> Result<Frame, WireError> {
        let bad = |why: &str| Err(WireError(why.to_string()));
        if b.len() > MAX_FRAME {
            return bad("too long");
        }
        let Some((&tag, rest)) = b.split_first() else {
            return bad("empty");
        };
        match tag {
            1 => {
                if rest.len() != MAGIC.len() + 2 || &rest[..MAGIC.len()] != MAGIC {
                    return bad("not a netd hello");
                }
                Ok(Frame::Hello(u16::from_be_bytes([rest[12], rest[13]])))
            }
            2 => {
                let Some((&len, id)) = rest.split_first() else {
                    return bad("net without id");
                };
                if id.len() != usize::from(len) {
                    return bad("net id length");
                }
                let id = std::str::from_utf8(id).map_err(|_| WireError("net id".into()))?;
                crate::spec::check_id(id).map_err(WireError)?;
                Ok(Frame::Net(id.to_string()))
            }
            3 => match <[u8; 4]>::try_from(rest) {
                Ok(n) => Ok(Frame::End(u32::from_be_bytes(n))),
                Err(_) => bad("end length"),
            },
            4 | 5 | 7 if !rest.is_empty() => bad("trailing bytes"),
            4 => Ok(Frame::Ready),
            5 => Ok(Frame::Commit),
            7 => Ok(Frame::Api),
            6 => {
                if rest.len() > MAX_REASON {
                    return bad("reason too long");
                }
                Ok(Frame::Abort(String::from_utf8_lossy(rest).into_owned()))
            }
            _ => bad("unknown tag"),
        }
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

#[cfg(test)]
mod test {
    use super::*;
    use nodeutil::handover::Frame as _;

    #[test]
    fn frames_round_trip() {
        for f in [
            Frame::Hello(VERSION),
            Frame::Net("web".into()),
            Frame::End(3),
            Frame::Ready,
            Frame::Commit,
            Frame::Abort("no".into()),
            Frame::Api,
        ] {
            assert_eq!(Frame::decode(&f.encode()), Ok(f));
        }
    }

    #[test]
    fn hostile_frames_are_errors() {
        let long = vec![6u8; MAX_FRAME + 1];
        let bad: [&[u8]; 12] = [
            b"",
            b"\x01NETDHANDOVE\x00\x01",
            b"\x01NETDHANDOVER\x00",
            b"\x02",
            b"\x02\x05web",
            b"\x02\x03w b",
            b"\x02\x02\xff\xfe",
            b"\x03\x00\x01",
            b"\x04x",
            b"\x07\x00",
            b"\x09",
            &long,
        ];
        for b in bad {
            assert!(Frame::decode(b).is_err(), "{b:?}");
        }
        // every truncation of a good frame, too
        for f in [Frame::Hello(1), Frame::Net("web".into()), Frame::End(1)] {
            let e = f.encode();
            for n in 0..e.len() {
                assert!(Frame::decode(&e[..n]).is_err(), "{f:?} cut at {n}");
            }
        }
    }

    #[test]
    fn a_long_reason_is_cut_on_a_char_boundary() {
        let r = "é".repeat(MAX_REASON);
        let e = Frame::Abort(r).encode();
        assert!(e.len() <= MAX_REASON + 1);
        assert!(matches!(Frame::decode(&e), Ok(Frame::Abort(_))));
    }
}
