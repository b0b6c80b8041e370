//! Request framing.
//!
//! [`parse`] first checks that a whole request is buffered, then splits it into arguments
//! without copying. It never allocates by a declared length: a request only grows the
//! buffer as its bytes arrive, and [`MAX_FRAME`] bounds what one request may buffer.
//!
//! Accepted: RESP arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
//! commands (`GET k\r\n`, as typed into telnet or redis-cli's interactive mode).

use bytes::{Bytes, BytesMut};

use crate::{MAX_ARGS, MAX_VALUE};

/// Most bytes one request may occupy: one maximal value plus room for a key and arguments.
pub const MAX_FRAME: usize = MAX_VALUE + 1024 * 1024;
/// Longest inline command or header line.
const MAX_LINE: usize = 64 * 1024;

/// A request that cannot be served; `Display` is the error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// `*0` or a negative count: the frame is consumed, the connection stays usable.
    #[error("Missing arguments")]
    MissingArguments,
    /// More than 1024 arguments.
    #[error("Too many arguments")]
    TooManyArguments,
    /// An array element that is not a bulk string, or a malformed length.
    #[error("Malformed query string")]
    Malformed,
    /// A bulk string over 8 MiB, or a request over [`MAX_FRAME`].
    #[error("Payload too big")]
    TooBig,
    /// Neither an array nor a text line.
    #[error("Malformed request, array expected")]
    NotArray,
}

impl FrameError {
    /// Whether the stream can be resynchronised after this error (else the connection closes).
    pub fn keeps_connection(self) -> bool {
        matches!(self, FrameError::MissingArguments)
    }
}

/// Outcome of looking at the buffer.
type Parsed = Result<Option<Vec<Bytes>>, FrameError>;

/// Take one request off the front of `buf`: `Ok(None)` if it is not whole yet.
pub fn parse(buf: &mut BytesMut) -> Parsed {
    loop {
        match buf.first() {
            None => return Ok(None),
            Some(b'*') => return parse_array(buf),
            // Blank lines between inline commands are ignored, as Redis does.
            Some(b'\r' | b'\n') => {
                let _ = buf.split_to(1);
            }
            Some(_) => return parse_inline(buf),
        }
    }
}

/// Find `\r\n` starting at `from`; returns the index of `\r`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let hay = buf.get(from..)?;
    memchr_crlf(hay).map(|i| i + from)
}

fn memchr_crlf(hay: &[u8]) -> Option<usize> {
    hay.windows(2).position(|w| w == b"\r\n")
}

/// Parse a decimal integer line (as in `*12` or `$5`).
fn parse_int(digits: &[u8]) -> Option<i64> {
    let (neg, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    Some(if neg { -v } else { v })
}

fn parse_array(buf: &mut BytesMut) -> Parsed {
    let Some(end) = find_crlf(buf, 1) else {
        return if buf.len() > 32 {
            Err(FrameError::Malformed)
        } else {
            Ok(None)
        };
    };
    let count = buf
        .get(1..end)
        .and_then(parse_int)
        .ok_or(FrameError::Malformed)?;
    if count <= 0 {
        let _ = buf.split_to(end + 2);
        return Err(FrameError::MissingArguments);
    }
    let count = count as usize;
    if count > MAX_ARGS {
        return Err(FrameError::TooManyArguments);
    }
    // First pass: is the whole frame here? Record (start, len) of each argument.
    let mut spans = Vec::with_capacity(count.min(64));
    let mut pos = end + 2;
    for _ in 0..count {
        match buf.get(pos) {
            None => return need_more(buf),
            Some(b'$') => {}
            Some(_) => return Err(FrameError::Malformed),
        }
        let Some(line_end) = find_crlf(buf, pos + 1) else {
            return if buf.len() - pos > 32 {
                Err(FrameError::Malformed)
            } else {
                need_more(buf)
            };
        };
        let len = buf
            .get(pos + 1..line_end)
            .and_then(parse_int)
            .ok_or(FrameError::Malformed)?;
        if len < 0 {
            return Err(FrameError::Malformed);
        }
        let len = len as usize;
        if len > MAX_VALUE {
            return Err(FrameError::TooBig);
        }
        let start = line_end + 2;
        if buf.len() < start + len + 2 {
            return need_more(buf);
        }
        if buf.get(start + len..start + len + 2) != Some(b"\r\n") {
            return Err(FrameError::Malformed);
        }
        spans.push((start, len));
        pos = start + len + 2;
    }
    let frame = buf.split_to(pos).freeze();
    Ok(Some(
        spans
            .into_iter()
            .map(|(s, l)| frame.slice(s..s + l))
            .collect(),
    ))
}

fn need_more(buf: &BytesMut) -> Parsed {
    if buf.len() > MAX_FRAME {
        Err(FrameError::TooBig)
    } else {
        Ok(None)
    }
}

fn parse_inline(buf: &mut BytesMut) -> Parsed {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_LINE {
            Err(FrameError::NotArray)
        } else {
            Ok(None)
        };
    };
    let line = buf.split_to(nl + 1).freeze();
    let text = line.slice(..line.len() - 1);
    let text = text
        .strip_suffix(b"\r")
        .map(|t| line.slice_ref(t))
        .unwrap_or(text);
    if text.iter().any(|&b| b < 0x20 && b != b'\t') {
        return Err(FrameError::NotArray);
    }
    let args = split_inline(&text).ok_or(FrameError::Malformed)?;
    if args.is_empty() {
        return Ok(Some(Vec::new()));
    }
    if args.len() > MAX_ARGS {
        return Err(FrameError::TooManyArguments);
    }
    Ok(Some(args))
}

/// Split an inline line on blanks, honouring "double" and 'single' quotes (with `\"` escapes
/// inside double quotes), like redis-cli.
fn split_inline(text: &Bytes) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = &text[..];
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        match b[i] {
            q @ (b'"' | b'\'') => {
                let mut arg = Vec::new();
                i += 1;
                loop {
                    let c = *b.get(i)?;
                    i += 1;
                    if c == q {
                        break;
                    }
                    if c == b'\\' && q == b'"' {
                        let n = *b.get(i)?;
                        i += 1;
                        arg.push(match n {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            other => other,
                        });
                    } else {
                        arg.push(c);
                    }
                }
                out.push(Bytes::from(arg));
            }
            _ => {
                let start = i;
                while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                out.push(text.slice(start..i));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(input: &[u8]) -> (Parsed, usize) {
        let mut buf = BytesMut::from(input);
        let r = parse(&mut buf);
        (r, buf.len())
    }

    #[test]
    fn array_and_partial() {
        let full = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let (r, left) = p(full);
        assert_eq!(
            r,
            Ok(Some(vec![
                Bytes::from_static(b"GET"),
                Bytes::from_static(b"k")
            ]))
        );
        assert_eq!(left, 0);
        for cut in 0..full.len() {
            let (r, left) = p(&full[..cut]);
            assert_eq!(r, Ok(None), "cut at {cut}");
            assert_eq!(left, cut);
        }
    }

    #[test]
    fn errors() {
        assert_eq!(p(b"*0\r\n"), (Err(FrameError::MissingArguments), 0));
        assert_eq!(p(b"*1\r\n*1\r\n$1\r\na\r\n").0, Err(FrameError::Malformed));
        assert_eq!(p(b"*1\r\n:1\r\n").0, Err(FrameError::Malformed));
        assert_eq!(p(b"*1\r\n$8388609\r\n").0, Err(FrameError::TooBig));
        assert_eq!(p(b"*1\r\n$999999999999\r\n").0, Err(FrameError::TooBig));
        assert_eq!(p(b"*1025\r\n").0, Err(FrameError::TooManyArguments));
        assert_eq!(p(b"*1\r\n$3\r\nabcX\r\n").0, Err(FrameError::Malformed));
        assert_eq!(p(b"\x00\x01\x02\n").0, Err(FrameError::NotArray));
        assert_eq!(p(b"*abc\r\n").0, Err(FrameError::Malformed));
    }

    #[test]
    fn inline() {
        let (r, _) = p(b"SET k \"a b\\\"c\"\r\n");
        assert_eq!(
            r,
            Ok(Some(vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"k"),
                Bytes::from_static(b"a b\"c")
            ]))
        );
        assert_eq!(p(b"PING").0, Ok(None));
        assert_eq!(
            p(b"\r\nPING\n").0,
            Ok(Some(vec![Bytes::from_static(b"PING")]))
        );
    }
}
