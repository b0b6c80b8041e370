//! Replies, decoded incrementally from the unread bytes of a connection: each call takes
//! whole elements off the front (the caller drops the bytes it reports consumed) and keeps
//! unfinished arrays on a stack, so bytes are looked at once however slowly they arrive. A
//! declared length is checked against the limits before the client waits for its bytes, and
//! nothing is allocated for it before they are there.

use bytes::Bytes;

use super::Limits;
use crate::error::ProtocolError;
use crate::value::Value;

/// What one reply element costs beyond its wire bytes.
const ELEMENT_COST: usize = std::mem::size_of::<Value>();

/// An array still waiting for elements.
#[derive(Debug)]
struct Partial {
    want: usize,
    items: Vec<Value>,
}

/// The sans-io reply decoder. After an error it must be dropped with its connection.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    stack: Vec<Partial>,
    /// Budget taken by the reply being decoded.
    used: usize,
    /// Unread bytes already searched for a line end.
    scanned: usize,
    /// Bytes the element at the front still needs (a hint for how much to read).
    missing: usize,
}

enum Step {
    Done(usize, Value),
    Opened(usize),
    NeedMore,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            stack: Vec::new(),
            used: 0,
            scanned: 0,
            missing: 0,
        }
    }

    /// Decodes from `unread` (the bytes not consumed yet): how many bytes it consumed, and
    /// the next whole reply if it is complete.
    pub fn decode(&mut self, unread: &[u8]) -> Result<(usize, Option<Value>), ProtocolError> {
        let mut pos = 0;
        loop {
            let rest = unread.get(pos..).unwrap_or_default();
            let mut value = match self.element(rest)? {
                Step::NeedMore => return Ok((pos, None)),
                Step::Opened(n) => {
                    pos += n;
                    continue;
                }
                Step::Done(n, v) => {
                    pos += n;
                    v
                }
            };
            loop {
                let Some(top) = self.stack.last_mut() else {
                    self.used = 0;
                    return Ok((pos, Some(value)));
                };
                top.items.push(value);
                if top.items.len() < top.want {
                    break;
                }
                match self.stack.pop() {
                    Some(done) => value = Value::Array(done.items),
                    None => break,
                }
            }
        }
    }

    /// Whether part of a reply was consumed already or waits in `unread`.
    pub fn in_reply(&self, unread: &[u8]) -> bool {
        !self.stack.is_empty() || !unread.is_empty()
    }

    /// How many more bytes the element at the front needs, when known (0 otherwise).
    pub fn missing(&self) -> usize {
        self.missing
    }

    fn charge(&mut self, bytes: usize) -> Result<(), ProtocolError> {
        let used = self.used.saturating_add(bytes).saturating_add(ELEMENT_COST);
        if used > self.limits.max_reply {
            return Err(ProtocolError::ReplyTooLarge {
                limit: self.limits.max_reply,
            });
        }
        self.used = used;
        Ok(())
    }

    /// The index of the `\n` ending the first line, once it arrived.
    fn line_end(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let window = buf.len().min(self.limits.max_line.saturating_add(2));
        let from = self.scanned.min(window);
        if let Some(i) = buf.get(from..window).and_then(|w| memchr::memchr(b'\n', w)) {
            return Ok(Some(from + i));
        }
        if buf.len() >= self.limits.max_line.saturating_add(2) {
            return Err(ProtocolError::LineTooLong {
                limit: self.limits.max_line,
            });
        }
        self.scanned = window;
        Ok(None)
    }

    /// Takes `n` bytes: the caller consumes them.
    fn took(&mut self, n: usize) -> usize {
        self.scanned = 0;
        self.missing = 0;
        n
    }

    fn element(&mut self, buf: &[u8]) -> Result<Step, ProtocolError> {
        // Garbage is refused at its first byte, not after a line's worth of it.
        if let Some(&b) = buf.first()
            && !b"+-:$*\r\n".contains(&b)
        {
            return Err(ProtocolError::BadType(b));
        }
        let Some(nl) = self.line_end(buf)? else {
            self.missing = 0;
            return Ok(Step::NeedMore);
        };
        if nl == 0 || buf.get(nl - 1) != Some(&b'\r') {
            return Err(ProtocolError::MissingCrlf);
        }
        let kind = *buf.first().ok_or(ProtocolError::EmptyLine)?;
        if nl == 1 {
            return Err(ProtocolError::EmptyLine);
        }
        let body = buf.get(1..nl - 1).unwrap_or_default();
        let head = nl + 1;
        match kind {
            b'+' | b'-' => {
                let text = String::from_utf8_lossy(body).into_owned();
                self.charge(head)?;
                Ok(Step::Done(
                    self.took(head),
                    if kind == b'+' {
                        Value::Status(text)
                    } else {
                        Value::Error(text)
                    },
                ))
            }
            b':' => {
                let n = number(body)?;
                self.charge(head)?;
                Ok(Step::Done(self.took(head), Value::Int(n)))
            }
            b'$' => self.bulk(buf, number(body)?, head),
            b'*' => self.array(number(body)?, head),
            other => Err(ProtocolError::BadType(other)),
        }
    }

    fn bulk(&mut self, buf: &[u8], declared: i64, head: usize) -> Result<Step, ProtocolError> {
        if declared == -1 {
            self.charge(head)?;
            return Ok(Step::Done(self.took(head), Value::Nil));
        }
        let n = usize::try_from(declared).map_err(|_| ProtocolError::BadLength(declared))?;
        if n > self.limits.max_bulk {
            return Err(ProtocolError::BulkTooLarge {
                declared,
                limit: self.limits.max_bulk,
            });
        }
        let total = head + n + 2;
        if self.used.saturating_add(total).saturating_add(ELEMENT_COST) > self.limits.max_reply {
            return Err(ProtocolError::ReplyTooLarge {
                limit: self.limits.max_reply,
            });
        }
        if buf.len() < total {
            self.missing = total - buf.len();
            return Ok(Step::NeedMore);
        }
        if buf.get(head + n..total) != Some(b"\r\n".as_slice()) {
            return Err(ProtocolError::MissingCrlf);
        }
        self.charge(total)?;
        let data = Bytes::copy_from_slice(buf.get(head..head + n).unwrap_or_default());
        Ok(Step::Done(self.took(total), Value::Bulk(data)))
    }

    fn array(&mut self, declared: i64, head: usize) -> Result<Step, ProtocolError> {
        if declared == -1 || declared == 0 {
            self.charge(head)?;
            let v = if declared == 0 {
                Value::Array(Vec::new())
            } else {
                Value::NilArray
            };
            return Ok(Step::Done(self.took(head), v));
        }
        let n = usize::try_from(declared).map_err(|_| ProtocolError::BadLength(declared))?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(ProtocolError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let budget = self.limits.max_reply.saturating_sub(self.used);
        if n.saturating_mul(ELEMENT_COST) > budget {
            return Err(ProtocolError::ReplyTooLarge {
                limit: self.limits.max_reply,
            });
        }
        self.charge(head)?;
        self.stack.push(Partial {
            want: n,
            items: Vec::with_capacity(n.min(64)),
        });
        Ok(Step::Opened(self.took(head)))
    }
}

/// A strict decimal `i64`: an optional `-`, then digits only.
fn number(text: &[u8]) -> Result<i64, ProtocolError> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(ProtocolError::BadNumber);
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(ProtocolError::BadNumber);
        }
        let d = i64::from(d - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if negative {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
            })
            .ok_or(ProtocolError::BadNumber)?;
    }
    Ok(n)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
