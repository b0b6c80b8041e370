//! A minimal, exact RESP client: replies as the server sent them, byte for byte.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}
impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{s}"),
            Reply::Error(s) => write!(f, "-{s}"),
            Reply::Int(i) => write!(f, ":{i}"),
            Reply::Bulk(None) => write!(f, "$-1"),
            Reply::Bulk(Some(b)) => {
                if b.len() > 80 {
                    write!(
                        f,
                        "${}<{:?}...>",
                        b.len(),
                        String::from_utf8_lossy(&b[..80])
                    )
                } else {
                    write!(f, "${:?}", String::from_utf8_lossy(b))
                }
            }
            Reply::Array(None) => write!(f, "*-1"),
            Reply::Array(Some(v)) => f.debug_list().entries(v.iter()).finish(),
        }
    }
}
impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }
    pub fn simple(s: &str) -> Reply {
        Reply::Simple(s.into())
    }
    pub fn err(s: &str) -> Reply {
        Reply::Error(s.into())
    }
    pub fn bulk(b: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Some(b.as_ref().to_vec()))
    }
    pub fn nil() -> Reply {
        Reply::Bulk(None)
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Reply::Bulk(Some(b)) => b.clone(),
            other => panic!("expected a bulk string, got {other:?}"),
        }
    }
    pub fn text(&self) -> String {
        match self {
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Simple(s) => s.clone(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected an integer, got {other:?}"),
        }
    }
    pub fn array(&self) -> Vec<Reply> {
        match self {
            Reply::Array(Some(v)) => v.clone(),
            other => panic!("expected an array, got {other:?}"),
        }
    }
}
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}
impl Client {
    pub fn connect(port: u16) -> io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_write_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client { reader, stream })
    }

    pub fn set_timeout(&self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
    }

    /// Sends one command and reads its reply; panics on I/O failure.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("command {:?}: {e}", show_args(args)))
    }

    /// Same as `cmd` but with `&str` arguments.
    pub fn c(&mut self, args: &[&str]) -> Reply {
        let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd(&v)
    }

    pub fn try_cmd(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.send(args)?;
        self.read_reply()
    }

    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        self.stream.write_all(&encode(args))
    }

    pub fn send_raw(&mut self, raw: &[u8]) -> io::Result<()> {
        self.stream.write_all(raw)
    }

    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }

    /// True if the server closed the connection (EOF or reset) within `wait`.
    pub fn is_closed(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 64];
        let r = self.reader.read(&mut buf);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        match r {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
        }
    }

    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    // Convenience wrappers --------------------------------------------------
    pub fn set(&mut self, k: &[u8], v: &[u8]) -> Reply {
        self.cmd(&[b"SET", k, v])
    }
    pub fn get(&mut self, k: &[u8]) -> Reply {
        self.cmd(&[b"GET", k])
    }
    pub fn del(&mut self, k: &[u8]) -> Reply {
        self.cmd(&[b"DEL", k])
    }
    pub fn dbsize(&mut self) -> i64 {
        self.c(&["DBSIZE"]).int()
    }
    pub fn select(&mut self, ns: &str) {
        assert_eq!(self.c(&["SELECT", ns]), Reply::ok(), "SELECT {ns}");
    }
    /// Waits until at least `n` clients wait in WAIT (INFO `blocked_clients`, counted once
    /// a WAIT is subscribed): the signal that a command sent now will be seen by them.
    pub fn wait_blocked(&mut self, n: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let info = parse_info(&self.c(&["INFO"]).text());
            let blocked: u64 = info_get(&info, "blocked_clients")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if blocked >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no client waiting in WAIT after 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// NSINFO as a key → value map.
    pub fn nsinfo(&mut self, ns: &str) -> Vec<(String, String)> {
        parse_info(&self.c(&["NSINFO", ns]).text())
    }
}
pub fn show_args(args: &[&[u8]]) -> Vec<String> {
    args.iter()
        .map(|a| {
            if a.len() > 60 {
                format!("<{} bytes>", a.len())
            } else {
                String::from_utf8_lossy(a).into_owned()
            }
        })
        .collect()
}
pub fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}
pub fn info_get(info: &[(String, String)], key: &str) -> Option<String> {
    info.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by server",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line without CRLF: {:?}", String::from_utf8_lossy(&line)),
        ));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}
pub fn read_reply<R: BufRead>(r: &mut R) -> io::Result<Reply> {
    let line = read_line(r)?;
    let bad = |l: &[u8]| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad reply line {:?}", String::from_utf8_lossy(l)),
        )
    };
    if line.is_empty() {
        return Err(bad(&line));
    }
    let rest = String::from_utf8_lossy(&line[1..]).into_owned();
    match line[0] {
        b'+' => Ok(Reply::Simple(rest)),
        b'-' => Ok(Reply::Error(rest)),
        b':' => rest.parse().map(Reply::Int).map_err(|_| bad(&line)),
        b'$' => {
            let n: i64 = rest.parse().map_err(|_| bad(&line))?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf)?;
            if &buf[n as usize..] != b"\r\n" {
                return Err(bad(&line));
            }
            buf.truncate(n as usize);
            Ok(Reply::Bulk(Some(buf)))
        }
        b'*' => {
            let n: i64 = rest.parse().map_err(|_| bad(&line))?;
            if n < 0 {
                return Ok(Reply::Array(None));
            }
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(read_reply(r)?);
            }
            Ok(Reply::Array(Some(v)))
        }
        _ => Err(bad(&line)),
    }
}
