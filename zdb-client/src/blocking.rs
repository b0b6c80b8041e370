//! The blocking client: std sockets with a deadline on every reply and every send.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::codec::{encode_framing, segments};
use crate::config::{Address, Config};
use crate::core::{Core, rearm, session_of, settle};
use crate::error::{Error, Result};
use crate::handshake::{Handshake, Session};
use crate::pipeline::Pipeline;
use crate::scan::{Direction, Next, ScanEntry, ScanState};
use crate::value::Value;

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                read.map_or(Ok(()), |t| s.set_read_timeout(Some(t)))?;
                write.map_or(Ok(()), |t| s.set_write_timeout(Some(t)))
            }
            Stream::Unix(s) => {
                read.map_or(Ok(()), |t| s.set_read_timeout(Some(t)))?;
                write.map_or(Ok(()), |t| s.set_write_timeout(Some(t)))
            }
        }
    }
}

/// Resolves `addr` within `timeout` (a literal address needs no lookup; a name is looked up
/// on a helper thread so that a stuck resolver cannot hold the caller).
fn resolve(addr: &str, timeout: Duration) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = addr.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(owned.to_socket_addrs().map(Iterator::collect));
    });
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(std::io::Error::new(
            ErrorKind::TimedOut,
            "name lookup timed out",
        ))
    })
}

fn connect_unix(path: &Path, timeout: Duration) -> std::io::Result<UnixStream> {
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    sock.connect_timeout(&socket2::SockAddr::unix(path)?, timeout)?;
    Ok(UnixStream::from(std::os::fd::OwnedFd::from(sock)))
}

fn open_stream(cfg: &Config) -> Result<Stream> {
    let t = cfg.connect_timeout;
    let fail = |source: std::io::Error| Error::Connect {
        addr: cfg.address.to_string(),
        source,
    };
    match &cfg.address {
        Address::Unix(p) => connect_unix(p, t).map(Stream::Unix).map_err(fail),
        Address::Tcp(a) => {
            let deadline = Instant::now() + t;
            let mut last = std::io::Error::new(ErrorKind::NotFound, "address resolves to nothing");
            for sa in resolve(a, t).map_err(fail)? {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(fail(std::io::Error::new(
                        ErrorKind::TimedOut,
                        "connect timed out",
                    )));
                }
                match TcpStream::connect_timeout(&sa, left) {
                    Ok(s) => {
                        s.set_nodelay(true).map_err(fail)?;
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(fail(last))
        }
    }
}

/// One open connection (no policy: the [`Client`] drops it after a connection error).
struct Conn {
    stream: Stream,
    core: Core,
    timeout: Duration,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl Conn {
    fn open(cfg: &Config, session: &Session) -> Result<Conn> {
        let mut c = Conn {
            stream: open_stream(cfg)?,
            core: Core::new(cfg.limits),
            timeout: cfg.timeout,
            read_timeout: None,
            write_timeout: None,
        };
        c.login(session)?;
        Ok(c)
    }

    fn login(&mut self, session: &Session) -> Result<()> {
        let mut hs = Handshake::new(session);
        let mut reply = None;
        while let Some(req) = hs.next(reply.take())? {
            reply = Some(self.call(&req.args)?);
        }
        Ok(())
    }

    /// Sends `parts` in order (as few system calls as the socket allows).
    fn send(&mut self, parts: &[&[u8]]) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut slices: Vec<IoSlice<'_>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| IoSlice::new(p))
            .collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    what: "send",
                    after: self.timeout,
                });
            }
            if let Some(t) = rearm(self.write_timeout, left, self.timeout) {
                self.stream.set_timeouts(None, Some(t))?;
                self.write_timeout = Some(t);
            }
            match self.stream.write_vectored(rest) {
                Ok(0) => return Err(Error::Closed { mid_reply: false }),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if retry(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Sends one request: its framing from the request buffer, large arguments from where
    /// they are.
    fn send_request<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        let mut framing = std::mem::take(&mut self.core.wbuf);
        let gaps = encode_framing(&mut framing, args);
        let r = self.send(&segments(&framing, &gaps, args));
        self.core.restore_wbuf(framing);
        r
    }

    /// Reads one reply, within the timeout from now.
    fn read_value(&mut self) -> Result<Value> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(v) = self.core.take_reply()? {
                return Ok(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    what: "reply",
                    after: self.timeout,
                });
            }
            if let Some(t) = rearm(self.read_timeout, left, self.timeout) {
                self.stream.set_timeouts(Some(t), None)?;
                self.read_timeout = Some(t);
            }
            match self.stream.read(self.core.rbuf.spare()) {
                Ok(0) => return Err(self.core.closed()),
                Ok(n) => self.core.rbuf.filled(n),
                Err(e) if retry(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value> {
        self.send_request(args)?;
        self.read_value()
    }

    fn pipeline(&mut self, p: &Pipeline) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(p.len());
        for (bytes, n) in p.chunks() {
            self.send(&[bytes])?;
            for _ in 0..n {
                out.push(self.read_value()?);
            }
        }
        Ok(out)
    }
}

/// A socket timeout or an interrupted call: look at the deadline and go on.
fn retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// A blocking connection to a 0-db server (see the crate docs for an example).
pub struct Client {
    cfg: Config,
    session: Session,
    conn: Option<Conn>,
}

impl Client {
    /// Connects, logs in and selects the namespace the configuration names.
    pub fn connect(cfg: Config) -> Result<Client> {
        let session = session_of(&cfg);
        let conn = Some(Conn::open(&cfg, &session)?);
        Ok(Client { cfg, session, conn })
    }

    /// Drops the connection (if any) and opens a new one, replaying the logins and the
    /// namespace selected so far.
    pub fn reconnect(&mut self) -> Result<()> {
        self.conn = None;
        self.conn = Some(Conn::open(&self.cfg, &self.session)?);
        Ok(())
    }

    /// Whether a connection is open (an error that broke it closes it).
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        if self.conn.is_none() && self.cfg.reconnect == crate::Reconnect::Auto {
            self.reconnect()?;
        }
        self.conn.as_mut().ok_or(Error::NotConnected)
    }

    /// Sends one request (command name first) and returns its reply as it came; an error
    /// reply is a `Value::Error`, not an `Err`.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value> {
        let r = self.conn()?.call(args);
        settle(&mut self.conn, r)
    }

    /// Sends every request of `p`, then returns their replies in order.
    pub fn pipeline(&mut self, p: &Pipeline) -> Result<Vec<Value>> {
        let r = self.conn()?.pipeline(p);
        settle(&mut self.conn, r)
    }

    /// Sends one request without reading its reply (for commands that stream, such as
    /// REPLICATE or MIRROR; read with [`Client::read_reply`]).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        let r = self.conn()?.send_request(args);
        settle(&mut self.conn, r)
    }

    /// Reads the next reply, within the timeout.
    pub fn read_reply(&mut self) -> Result<Value> {
        let r = self.conn()?.read_value();
        settle(&mut self.conn, r)
    }

    fn login(&mut self, s: &Session) -> Result<()> {
        let r = self.conn()?.login(s);
        settle(&mut self.conn, r)
    }

    /// Iterates over the live keys of the current namespace (SCAN or RSCAN pages).
    pub fn scan(&mut self, dir: Direction) -> ScanIter<'_> {
        ScanIter {
            client: self,
            state: ScanState::new(dir),
        }
    }
}

crate::commands::commands!("Client" {} {});

/// The entries of a scan, fetched a page at a time. An error ends it.
pub struct ScanIter<'a> {
    client: &'a mut Client,
    state: ScanState,
}

impl Iterator for ScanIter<'_> {
    type Item = Result<ScanEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.state.next() {
                Next::Entry(e) => return Some(Ok(e)),
                Next::End => return None,
                Next::Fetch => {
                    let r = self.client.scan_page(self.state.dir, self.state.cursor());
                    if let Some(e) = self.state.feed(r) {
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}
