//! RESP framing: requests in (arrays of bulk strings, or inline text lines), replies out.

mod frame;
mod reply;

pub use frame::{Args, FrameError, MAX_FRAME, parse};
pub use reply::{Reply, encode_bulk};
