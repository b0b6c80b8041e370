//! Reply encoding, straight into the connection's output buffer.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

/// A reply value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text` (fixed texts such as `OK` are borrowed, not allocated per reply)
    Status(Cow<'static, str>),
    /// `-text` (0-db errors carry no `ERR ` prefix)
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` + bytes (shared: a key echoed back is a view of the request, not a copy)
    Bulk(Bytes),
    /// `$-1`
    Nil,
    /// `*n` + items
    Array(Vec<Reply>),
    /// `*n` alone; the `n` items follow separately.
    ArrayHeader(usize),
}

impl Reply {
    /// `+OK`
    pub fn ok() -> Reply {
        Reply::Status("OK".into())
    }
    /// An error reply.
    pub fn err(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }
    /// A bulk reply.
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    /// Append the RESP encoding to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Int(n) => line(out, b':', itoa::Buffer::new().format(*n).as_bytes()),
            Reply::Bulk(b) => encode_bulk(out, b),
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::ArrayHeader(n) => line(out, b'*', itoa::Buffer::new().format(*n).as_bytes()),
            Reply::Array(items) => {
                line(
                    out,
                    b'*',
                    itoa::Buffer::new().format(items.len()).as_bytes(),
                );
                for i in items {
                    i.encode(out);
                }
            }
        }
    }
}

fn line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(tag);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

/// Append a bulk string without building a `Reply` (the GET fast path).
pub fn encode_bulk(out: &mut BytesMut, b: &[u8]) {
    line(out, b'$', itoa::Buffer::new().format(b.len()).as_bytes());
    out.reserve(b.len() + 2);
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

impl Reply {
    /// An array header announcing `n` items that the caller encodes itself (streamed replies).
    pub fn with_len(self, n: usize) -> Reply {
        Reply::ArrayHeader(n)
    }
}
