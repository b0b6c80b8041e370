//! A tiny RESP client: commands are arrays of bulk strings, replies are parsed recursively.

use super::ZdbError;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` (None for `$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*n`
    Array(Vec<Reply>),
}

/// Encodes a command.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn line(r: &mut BufReader<UnixStream>) -> Result<String, ZdbError> {
    let mut buf = Vec::new();
    let n = r.read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Err(ZdbError::Protocol("connection closed".into()));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| ZdbError::Protocol("non-utf8 status line".into()))
}

fn num(s: &str) -> Result<i64, ZdbError> {
    s.parse()
        .map_err(|_| ZdbError::Protocol(format!("bad number {s:?}")))
}

/// Reads one reply.
pub async fn read(r: &mut BufReader<UnixStream>) -> Result<Reply, ZdbError> {
    let mut stack: Vec<(usize, Vec<Reply>)> = Vec::new();
    loop {
        let l = line(r).await?;
        let (kind, rest) = l
            .split_at_checked(1)
            .ok_or_else(|| ZdbError::Protocol("empty line".into()))?;
        let mut item = match kind {
            "+" => Reply::Simple(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(num(rest)?),
            "$" => {
                let n = num(rest)?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let n = usize::try_from(n)
                        .map_err(|_| ZdbError::Protocol("bulk too large".into()))?;
                    let mut buf = vec![0u8; n + 2];
                    r.read_exact(&mut buf).await?;
                    buf.truncate(n);
                    Reply::Bulk(Some(buf))
                }
            }
            "*" => {
                let n = num(rest)?;
                if n <= 0 {
                    Reply::Array(Vec::new())
                } else {
                    let n = usize::try_from(n)
                        .map_err(|_| ZdbError::Protocol("array too large".into()))?;
                    stack.push((n, Vec::with_capacity(n.min(1024))));
                    continue;
                }
            }
            _ => {
                return Err(ZdbError::Protocol(format!(
                    "unexpected reply type {kind:?}"
                )));
            }
        };
        loop {
            match stack.last_mut() {
                None => return Ok(item),
                Some((want, items)) => {
                    items.push(item);
                    if items.len() < *want {
                        break;
                    }
                }
            }
            match stack.pop() {
                Some((_, items)) => item = Reply::Array(items),
                None => return Err(ZdbError::Protocol("reply stack underflow".into())),
            }
        }
    }
}

/// Sends one command and reads its reply.
pub async fn call(r: &mut BufReader<UnixStream>, args: &[&[u8]]) -> Result<Reply, ZdbError> {
    r.get_mut().write_all(&encode(args)).await?;
    read(r).await
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn encodes_bulk_arrays() {
        assert_eq!(
            encode(&[b"NSINFO", b"ab"]),
            b"*2\r\n$6\r\nNSINFO\r\n$2\r\nab\r\n"
        );
    }

    #[tokio::test]
    async fn parses_nested_replies() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        b.write_all(b"*3\r\n+OK\r\n*2\r\n:5\r\n$-1\r\n$3\r\nabc\r\n-No way\r\n")
            .await
            .expect("write");
        let mut r = BufReader::new(a);
        assert_eq!(
            read(&mut r).await.expect("read"),
            Reply::Array(vec![
                Reply::Simple("OK".into()),
                Reply::Array(vec![Reply::Int(5), Reply::Bulk(None)]),
                Reply::Bulk(Some(b"abc".to_vec())),
            ])
        );
        assert_eq!(
            read(&mut r).await.expect("read"),
            Reply::Error("No way".into())
        );
    }
}
