//! Request framing.
//!
//! [`parse`] first checks that a whole request is buffered, then takes it off the buffer as
//! one shared [`Args`]: the request's bytes and where each argument lies in them, so that
//! neither the arguments nor their list cost an allocation or a reference count of their own
//! (three of each per SET were 7% of a pipelined SET's CPU). It never allocates by a declared
//! length: a request only grows the buffer as its bytes arrive, and [`MAX_FRAME`] bounds what
//! one request may buffer.
//!
//! Accepted: RESP arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
//! commands (`GET k\r\n`, as typed into telnet or redis-cli's interactive mode).

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

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

/// Where one argument lies in its request: start and length (a request is under 4 GiB).
type Span = (u32, u32);

/// One request's arguments, sharing the request's bytes. Equal when the arguments are,
/// however they were framed.
#[derive(Clone, Debug, Default)]
pub struct Args {
    frame: Bytes,
    /// Four inline: SET with a timestamp, the longest hot request.
    spans: SmallVec<[Span; 4]>,
}

impl Args {
    /// Arguments copied from slices (requests made up inside the server, and tests).
    pub fn from_slices<A: AsRef<[u8]>>(args: &[A]) -> Args {
        let mut frame = Vec::with_capacity(args.iter().map(|a| a.as_ref().len()).sum());
        let mut spans = SmallVec::with_capacity(args.len());
        for a in args {
            spans.push((frame.len() as u32, a.as_ref().len() as u32));
            frame.extend_from_slice(a.as_ref());
        }
        Args {
            frame: frame.into(),
            spans,
        }
    }

    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True for a request with no arguments (a blank inline line).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.spans.get(i).map(|&s| self.at(s))
    }

    /// The command name.
    pub fn first(&self) -> Option<&[u8]> {
        self.get(0)
    }

    /// Argument `i` as shared bytes (no copy). Panics if there is no argument `i`.
    pub fn bytes(&self, i: usize) -> Bytes {
        let (start, len) = self.spans[i];
        self.frame
            .slice(start as usize..start as usize + len as usize)
    }

    /// Every argument in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.spans.iter().map(|&s| self.at(s))
    }

    /// Drop the last argument (MASTER mode's trailing owner id).
    pub fn pop(&mut self) {
        self.spans.pop();
    }

    fn at(&self, (start, len): Span) -> &[u8] {
        &self.frame[start as usize..start as usize + len as usize]
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Args) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Args {}

impl std::ops::Index<usize> for Args {
    type Output = [u8];

    fn index(&self, i: usize) -> &[u8] {
        self.at(self.spans[i])
    }
}

/// Outcome of looking at the buffer.
type Parsed = Result<Option<Args>, FrameError>;

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
    let mut spans = SmallVec::with_capacity(count.min(64));
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
        // Both fit: the whole frame is under MAX_FRAME.
        spans.push((start as u32, len as u32));
        pos = start + len + 2;
    }
    Ok(Some(Args {
        frame: buf.split_to(pos).freeze(),
        spans,
    }))
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
    let line = buf.split_to(nl + 1);
    let text = line[..nl].strip_suffix(b"\r").unwrap_or(&line[..nl]);
    if text.iter().any(|&b| b < 0x20 && b != b'\t') {
        return Err(FrameError::NotArray);
    }
    let args = split_inline(text).ok_or(FrameError::Malformed)?;
    if args.len() > MAX_ARGS {
        return Err(FrameError::TooManyArguments);
    }
    Ok(Some(Args::from_slices(&args)))
}

/// Split an inline line on blanks, honouring "double" and 'single' quotes (with `\"` escapes
/// inside double quotes), like redis-cli.
fn split_inline(text: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = text;
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
                out.push(arg);
            }
            _ => {
                let start = i;
                while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                out.push(b[start..i].to_vec());
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
            Ok(Some(Args::from_slices(&[
                b"GET".as_slice(),
                b"k".as_slice()
            ])))
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
            Ok(Some(Args::from_slices(&[
                b"SET".as_slice(),
                b"k".as_slice(),
                b"a b\"c".as_slice()
            ])))
        );
        assert_eq!(p(b"PING").0, Ok(None));
        assert_eq!(
            p(b"\r\nPING\n").0,
            Ok(Some(Args::from_slices(&[b"PING".as_slice()])))
        );
    }

    #[test]
    fn args_are_views_of_the_request() {
        let mut buf =
            BytesMut::from(&b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n$2\r\nts\r\n"[..]);
        let Ok(Some(mut a)) = parse(&mut buf) else {
            panic!("a whole request must parse")
        };
        assert!(buf.is_empty());
        assert_eq!(a.len(), 4);
        assert_eq!(a.first(), Some(&b"SET"[..]));
        assert_eq!(&a[2], b"value");
        assert_eq!(a.get(4), None);
        assert_eq!(a.bytes(1), Bytes::from_static(b"k"));
        a.pop();
        assert_eq!(a.iter().collect::<Vec<_>>(), [&b"SET"[..], b"k", b"value"]);
        assert_eq!(a, Args::from_slices(&["SET", "k", "value"]));
        assert_ne!(a, Args::from_slices(&["SET", "k", "valu", "e"]));
        // A blank inline line is a request without arguments (skipped by the connection).
        assert_eq!(p(b"  \r\n").0, Ok(Some(Args::default())));
    }
}
