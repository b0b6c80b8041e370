//! A RESP2 value as 0-db sends it, and its encoding (used by the fake server and for
//! commands, which are arrays of bulk strings).

use bytes::Bytes;

/// One reply (or request) value.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// `+text`
    Status(String),
    /// `-text`: the server refused the command.
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` then n bytes.
    Bulk(Bytes),
    /// `$-1`: 0-db's "no such key" and "already stored".
    Nil,
    /// `*n` then n values.
    Array(Vec<Value>),
    /// `*-1`.
    NilArray,
}

impl Value {
    /// A bulk string of `b`.
    pub fn bulk(b: impl AsRef<[u8]>) -> Value {
        Value::Bulk(Bytes::copy_from_slice(b.as_ref()))
    }

    /// `+OK`.
    pub fn ok() -> Value {
        Value::Status("OK".into())
    }

    /// An error reply.
    pub fn error(msg: impl Into<String>) -> Value {
        Value::Error(msg.into())
    }

    /// Appends the wire form of this value to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Status(s) => line(out, b'+', s.as_bytes()),
            Value::Error(s) => line(out, b'-', s.as_bytes()),
            Value::Int(n) => line(out, b':', itoa::Buffer::new().format(*n).as_bytes()),
            Value::Bulk(b) => {
                line(out, b'$', itoa::Buffer::new().format(b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Value::Nil => out.extend_from_slice(b"$-1\r\n"),
            Value::Array(items) => {
                line(
                    out,
                    b'*',
                    itoa::Buffer::new().format(items.len()).as_bytes(),
                );
                for i in items {
                    i.encode(out);
                }
            }
            Value::NilArray => out.extend_from_slice(b"*-1\r\n"),
        }
    }

    /// A short description for error messages: the kind, and a bounded, escaped prefix of
    /// any text (a hostile server's bytes never flood a log).
    pub fn describe(&self) -> String {
        const SHOWN: usize = 48;
        let text = |b: &[u8]| {
            let head = b.get(..SHOWN).unwrap_or(b);
            let more = if b.len() > SHOWN { "..." } else { "" };
            format!("{:?}{more}", String::from_utf8_lossy(head))
        };
        match self {
            Value::Status(s) => format!("status {}", text(s.as_bytes())),
            Value::Error(s) => format!("error {}", text(s.as_bytes())),
            Value::Int(n) => format!("integer {n}"),
            Value::Bulk(b) => format!("bulk of {} bytes {}", b.len(), text(b)),
            Value::Nil => "nil".into(),
            Value::Array(v) => format!("array of {}", v.len()),
            Value::NilArray => "nil array".into(),
        }
    }
}

fn line(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Array(v) => f.debug_list().entries(v).finish(),
            other => f.write_str(&other.describe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_kind() {
        let v = Value::Array(vec![
            Value::ok(),
            Value::error("No"),
            Value::Int(-3),
            Value::bulk("ab"),
            Value::Nil,
            Value::NilArray,
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(
            out,
            b"*6\r\n+OK\r\n-No\r\n:-3\r\n$2\r\nab\r\n$-1\r\n*-1\r\n"
        );
    }

    #[test]
    fn describe_is_bounded() {
        let d = Value::bulk(vec![b'x'; 10_000]).describe();
        assert!(d.len() < 100, "{d}");
        assert!(d.starts_with("bulk of 10000 bytes"));
    }
}
