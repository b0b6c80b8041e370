//! Messages of the mount hand-over. Each is one `SOCK_SEQPACKET` message (the kernel keeps
//! boundaries) of at most [`MAX_FRAME`] bytes of JSON; anything longer, torn or unknown is
//! an error, never a panic.
//!
//! ```text
//! Hello   new -> old  protocol version
//! Offer   old -> new  the mount's arguments, image identity, old pid, the kernel's
//!                     INIT parameters + 2 descriptors: /dev/fuse, the hand-over listener
//! Serving new -> old  (the new one reads /dev/fuse now)
//! Done    old -> new  (every old thread answered what it read and stopped; it exits)
//! Refuse  either      reason
//! ```

use serde::{Deserialize, Serialize};

use crate::mount::args::MountArgs;

/// Largest message.
pub const MAX_FRAME: usize = 64 * 1024;
/// Protocol version sent in Hello.
pub const VERSION: u16 = 1;
/// Longest reason carried by Refuse.
const MAX_REASON: usize = 1024;

/// What the kernel offered in its FUSE_INIT, as the old process saw it: the new one replays
/// it to its own session so that both negotiate alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitParams {
    /// ABI major version.
    pub major: u32,
    /// ABI minor version.
    pub minor: u32,
    /// Capability bits (flags | flags2 << 32).
    pub capabilities: u64,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Frame {
    /// The new process's protocol version.
    Hello {
        /// [`VERSION`] of the sender.
        version: u16,
    },
    /// The mount, offered to the new process (two descriptors come with it).
    Offer {
        /// How the old process serves the mount (store URLs included, which may carry
        /// passwords: they travel only on this owner-only socket, never in a log).
        args: Box<MountArgs>,
        /// blake3 identity of the image served, hex; inode numbers mean the same only for the
        /// same image.
        identity: String,
        /// The old process.
        pid: u32,
        /// The kernel's INIT.
        init: InitParams,
    },
    /// The new process serves the mount.
    Serving {
        /// The new process.
        pid: u32,
    },
    /// The old process drained and exits.
    Done,
    /// The sender gives up; the old process serves on.
    Refuse {
        /// Why.
        reason: String,
    },
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Longer than [`MAX_FRAME`].
    #[error("hand-over message of {0} bytes is too long")]
    TooLong(usize),
    /// Not one of ours.
    #[error("bad hand-over message: {0}")]
    Bad(String),
}

impl Frame {
    /// The message's name, for errors (never its fields: an offer carries store URLs).
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "hello",
            Frame::Offer { .. } => "offer",
            Frame::Serving { .. } => "serving",
            Frame::Done => "done",
            Frame::Refuse { .. } => "refuse",
        }
    }
}

impl nodeutil::handover::Frame for Frame {
    const MAX: usize = MAX_FRAME;
    type Error = WireError;

    /// The bytes of the message.
    fn encode(&self) -> Vec<u8> {
        let f = match self {
            Frame::Refuse { reason } if reason.len() > MAX_REASON => Frame::Refuse {
                reason: reason.chars().take(MAX_REASON / 4).collect(),
            },
            f => f.clone(),
        };
        serde_json::to_vec(&f).unwrap_or_default()
    }

    /// A message from its bytes.
    fn decode(b: &[u8]) -> Result<Frame, WireError> {
        if b.len() > MAX_FRAME {
            return Err(WireError::TooLong(b.len()));
        }
        serde_json::from_slice(b).map_err(|e| WireError::Bad(e.to_string()))
    }

    fn fds(&self) -> usize {
        match self {
            Frame::Offer { .. } => 2,
            _ => 0,
        }
    }

    fn refusal(&self) -> Option<&str> {
        match self {
            Frame::Refuse { reason } => Some(reason),
            _ => None,
        }
    }

    fn refuse(reason: String) -> Self {
        Frame::Refuse { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodeutil::handover::Frame as _;

    #[test]
    fn frames_round_trip_and_garbage_is_an_error() {
        let frames = [
            Frame::Hello { version: VERSION },
            Frame::Offer {
                args: Box::new(MountArgs::new(
                    "/f".into(),
                    "/m".into(),
                    "/c".into(),
                    1,
                    vec!["zdb://u:pw@h/ns".into()],
                )),
                identity: "ab".into(),
                pid: 7,
                init: InitParams {
                    major: 7,
                    minor: 41,
                    capabilities: 1 << 40 | 3,
                },
            },
            Frame::Serving { pid: 9 },
            Frame::Done,
            Frame::Refuse {
                reason: "no".into(),
            },
        ];
        for f in frames {
            assert_eq!(Frame::decode(&f.encode()).ok(), Some(f));
        }
        assert!(Frame::decode(b"{").is_err());
        assert!(Frame::decode(br#"{"type":"nope"}"#).is_err());
        assert!(Frame::decode(&vec![b' '; MAX_FRAME + 1]).is_err());
        let long = Frame::Refuse {
            reason: "x".repeat(MAX_FRAME * 2),
        };
        assert!(Frame::decode(&long.encode()).is_ok());
    }
}
