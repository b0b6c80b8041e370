//! `zdb://[user:password@]host:port/namespace`: a 0-db compatible server, user-mode
//! namespace, the 32-byte block id is the key.
//!
//! A tiny RESP2 client: connections are pooled, every command has a socket timeout, a
//! failed command is retried on a fresh connection. Batches are pipelined. A `SET` of an
//! identical value answers nil, which means "already stored". 0-db writes are appended
//! to its data file before the reply (it syncs on its own policy), so a reply is the
//! durability point this store can observe.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

use super::{Store, StoreError, redact};
use crate::format::Hash;

const TIMEOUT: Duration = Duration::from_secs(30);
const RETRIES: usize = 3;
const PIPELINE: usize = 64;

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// One RESP connection.
pub struct Conn {
    r: BufReader<TcpStream>,
    w: BufWriter<TcpStream>,
}

impl Conn {
    /// Connect with timeouts.
    pub fn connect(addr: &str) -> std::io::Result<Conn> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, TIMEOUT) {
                Ok(s) => {
                    s.set_read_timeout(Some(TIMEOUT))?;
                    s.set_write_timeout(Some(TIMEOUT))?;
                    s.set_nodelay(true)?;
                    return Ok(Conn {
                        r: BufReader::new(s.try_clone()?),
                        w: BufWriter::with_capacity(256 * 1024, s),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("address resolves to nothing")))
    }

    /// Queue a command.
    pub fn send(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        write!(self.w, "*{}\r\n", args.len())?;
        for a in args {
            write!(self.w, "${}\r\n", a.len())?;
            self.w.write_all(a)?;
            self.w.write_all(b"\r\n")?;
        }
        Ok(())
    }

    /// Flush queued commands.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }

    fn line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut l = Vec::new();
        self.r.read_until(b'\n', &mut l)?;
        if l.len() < 2 || !l.ends_with(b"\r\n") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        l.truncate(l.len() - 2);
        Ok(l)
    }

    /// Read one reply.
    pub fn read(&mut self) -> std::io::Result<Reply> {
        let l = self.line()?;
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad RESP reply");
        let (t, rest) = l.split_first().ok_or_else(bad)?;
        let text = String::from_utf8_lossy(rest).to_string();
        let num = || text.parse::<i64>().map_err(|_| bad());
        Ok(match t {
            b'+' => Reply::Status(text),
            b'-' => Reply::Error(text),
            b':' => Reply::Int(num()?),
            b'$' => {
                let n = num()?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let n = usize::try_from(n).map_err(|_| bad())?;
                    let mut b = vec![0u8; n + 2];
                    self.r.read_exact(&mut b)?;
                    b.truncate(n);
                    Reply::Bulk(Some(b))
                }
            }
            b'*' => {
                let n = num()?;
                if n < 0 {
                    Reply::Array(None)
                } else {
                    let mut v = Vec::new();
                    for _ in 0..n {
                        v.push(self.read()?);
                    }
                    Reply::Array(Some(v))
                }
            }
            _ => return Err(bad()),
        })
    }

    /// Send one command and read its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        self.send(args)?;
        self.flush()?;
        self.read()
    }
}

/// A zdb namespace used as a block store.
pub struct ZdbStore {
    addr: String,
    namespace: String,
    password: Option<String>,
    url: String,
    pool: Mutex<Vec<Conn>>,
}

enum Fail {
    /// Connection-level failure: retry on a new connection.
    Io(std::io::Error),
    /// Server said no: do not retry.
    Server(String),
}

impl ZdbStore {
    /// Parse the URL; the connection is made on first use.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let bad = |msg: &str| StoreError::Url {
            url: redact(url),
            msg: msg.into(),
        };
        let rest = url
            .strip_prefix("zdb://")
            .ok_or_else(|| bad("not zdb://"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (hostport, ns) = rest
            .split_once('/')
            .ok_or_else(|| bad("missing /namespace"))?;
        if ns.is_empty() || ns.contains('/') {
            return Err(bad("bad namespace"));
        }
        if hostport.is_empty() {
            return Err(bad("missing host"));
        }
        let addr = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            hostport.to_string()
        } else {
            format!("{hostport}:9900")
        };
        let password = auth.map(|a| a.split_once(':').map_or(a, |(_, p)| p).to_string());
        Ok(ZdbStore {
            addr,
            namespace: ns.to_string(),
            password,
            url: redact(url),
            pool: Mutex::new(Vec::new()),
        })
    }

    fn connect(&self) -> Result<Conn, Fail> {
        let mut c = Conn::connect(&self.addr).map_err(Fail::Io)?;
        let mut args: Vec<&[u8]> = vec![b"SELECT", self.namespace.as_bytes()];
        if let Some(p) = &self.password {
            args.push(p.as_bytes());
        }
        match c.call(&args).map_err(Fail::Io)? {
            Reply::Status(_) => Ok(c),
            Reply::Error(e) => Err(Fail::Server(format!("SELECT {}: {e}", self.namespace))),
            r => Err(Fail::Server(format!("SELECT: unexpected reply {r:?}"))),
        }
    }

    fn err(&self, f: Fail) -> StoreError {
        match f {
            Fail::Io(source) => StoreError::Io {
                store: self.url.clone(),
                source,
            },
            Fail::Server(msg) => StoreError::Protocol {
                store: self.url.clone(),
                msg,
            },
        }
    }

    /// Run `f` on a pooled connection, retrying I/O failures on fresh connections.
    fn with_conn<T>(&self, f: impl Fn(&mut Conn) -> Result<T, Fail>) -> Result<T, StoreError> {
        let mut last = None;
        for attempt in 0..RETRIES {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
            let mut c = match pooled {
                Some(c) => c,
                None => match self.connect() {
                    Ok(c) => c,
                    Err(Fail::Io(e)) => {
                        last = Some(Fail::Io(e));
                        continue;
                    }
                    Err(e) => return Err(self.err(e)),
                },
            };
            match f(&mut c) {
                Ok(v) => {
                    if let Ok(mut p) = self.pool.lock() {
                        p.push(c);
                    }
                    return Ok(v);
                }
                Err(Fail::Io(e)) => last = Some(Fail::Io(e)),
                Err(e) => return Err(self.err(e)),
            }
        }
        Err(self.err(last.unwrap_or(Fail::Server("no attempt".into()))))
    }
}

fn set_ok(r: Reply) -> Result<(), Fail> {
    match r {
        // The key on a new write, nil when the identical value is already stored.
        Reply::Bulk(_) | Reply::Status(_) => Ok(()),
        Reply::Error(e) => Err(Fail::Server(format!("SET: {e}"))),
        r => Err(Fail::Server(format!("SET: unexpected reply {r:?}"))),
    }
}

impl Store for ZdbStore {
    fn get(&self, id: &Hash) -> Result<Vec<u8>, StoreError> {
        let r = self.with_conn(|c| match c.call(&[b"GET", id]).map_err(Fail::Io)? {
            Reply::Bulk(b) => Ok(b),
            Reply::Error(e) => Err(Fail::Server(format!("GET: {e}"))),
            r => Err(Fail::Server(format!("GET: unexpected reply {r:?}"))),
        })?;
        r.ok_or_else(|| StoreError::NotFound {
            store: self.url.clone(),
        })
    }

    fn put(&self, id: &Hash, data: &[u8]) -> Result<(), StoreError> {
        self.with_conn(|c| set_ok(c.call(&[b"SET", id, data]).map_err(Fail::Io)?))
    }

    fn exists(&self, id: &Hash) -> Result<bool, StoreError> {
        self.with_conn(|c| match c.call(&[b"EXISTS", id]).map_err(Fail::Io)? {
            Reply::Int(n) => Ok(n > 0),
            Reply::Error(e) => Err(Fail::Server(format!("EXISTS: {e}"))),
            r => Err(Fail::Server(format!("EXISTS: unexpected reply {r:?}"))),
        })
    }

    fn put_batch(&self, blocks: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        for part in blocks.chunks(PIPELINE) {
            self.with_conn(|c| {
                for (id, d) in part {
                    c.send(&[b"SET", id, d]).map_err(Fail::Io)?;
                }
                c.flush().map_err(Fail::Io)?;
                let mut res = Ok(());
                for _ in part {
                    let r = set_ok(c.read().map_err(Fail::Io)?);
                    if res.is_ok() {
                        res = r;
                    }
                }
                res
            })?;
        }
        Ok(())
    }

    fn get_batch(&self, ids: &[Hash]) -> Vec<Result<Vec<u8>, StoreError>> {
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(PIPELINE) {
            let r = self.with_conn(|c| {
                for id in part {
                    c.send(&[b"GET", id]).map_err(Fail::Io)?;
                }
                c.flush().map_err(Fail::Io)?;
                let mut v = Vec::with_capacity(part.len());
                for _ in part {
                    v.push(c.read().map_err(Fail::Io)?);
                }
                Ok(v)
            });
            match r {
                Ok(v) => out.extend(v.into_iter().map(|r| match r {
                    Reply::Bulk(Some(b)) => Ok(b),
                    Reply::Bulk(None) => Err(StoreError::NotFound {
                        store: self.url.clone(),
                    }),
                    r => Err(StoreError::Protocol {
                        store: self.url.clone(),
                        msg: format!("GET: unexpected reply {r:?}"),
                    }),
                })),
                Err(e) => {
                    let msg = e.to_string();
                    out.extend(part.iter().map(|_| {
                        Err(StoreError::Protocol {
                            store: self.url.clone(),
                            msg: msg.clone(),
                        })
                    }));
                }
            }
        }
        out
    }

    fn url(&self) -> String {
        self.url.clone()
    }
}
