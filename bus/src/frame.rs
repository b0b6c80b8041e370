//! Framing: `u32` big-endian length, then that many bytes of JSON.
//!
//! ```text
//! +----------------+---------------------------+
//! | len: u32 BE    | body: len bytes of JSON   |   len <= MAX_FRAME
//! +----------------+---------------------------+
//! ```

use crate::error::RemoteError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest accepted frame body, in bytes.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

const LEN_SIZE: usize = size_of::<u32>();

/// A frame sent by a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientFrame {
    Call {
        id: u64,
        method: String,
        version: u32,
        #[serde(default)]
        params: Value,
    },
    Subscribe {
        #[serde(default)]
        topic: String,
    },
}

/// A frame sent by a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerFrame {
    Reply {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<RemoteError>,
    },
    Subscribed {
        topic: String,
    },
    Event(Event),
}

/// One published event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Dotted topic, `service.object[.detail]`.
    pub topic: String,
    /// Per-server sequence number, increasing; a gap means events were missed.
    pub seq: u64,
    /// Payload.
    pub data: Value,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge(usize),
    #[error("i/o")]
    Io(#[from] std::io::Error),
    #[error("invalid json frame: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes one frame holding an already-encoded body.
pub(crate) async fn write_raw<W: AsyncWrite + Unpin>(
    w: &mut W,
    body: &[u8],
) -> Result<(), FrameError> {
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    let mut buf = Vec::with_capacity(LEN_SIZE + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Encodes and writes one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    frame: &T,
) -> Result<(), FrameError> {
    let body = serde_json::to_vec(frame)?;
    write_raw(w, &body).await
}

/// Reads and decodes one frame; [`FrameError::Closed`] on a clean end of stream.
///
/// The body buffer grows with the bytes that arrive (`read_to_end` doubles it), never to the
/// declared length up front: a peer that announces 16 MiB and sends nothing costs nothing.
pub(crate) async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> Result<T, FrameError> {
    let mut len = [0u8; LEN_SIZE];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = Vec::new();
    (&mut *r).take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(serde_json::from_slice(&body)?)
}
