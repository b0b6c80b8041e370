//! The async client on tokio: the same codec, commands and policy as the blocking one, with
//! `tokio::time` deadlines on connecting, every send and every reply.

use std::io::IoSlice;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, timeout, timeout_at};

use bytes::{Bytes, BytesMut};

use crate::codec::{BulkHead, bulk_head, encode_framing, segments};
use crate::config::{Address, Config};
use crate::core::{Core, session_of, settle};
use crate::error::{Error, Result};
use crate::handshake::{Handshake, Session};
use crate::pipeline::Pipeline;
use crate::scan::{Direction, Next, ScanEntry, ScanState};
use crate::value::Value;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn open_stream(cfg: &Config) -> Result<Box<dyn Io>> {
    let fail = |source: std::io::Error| Error::Connect {
        addr: cfg.address.to_string(),
        source,
    };
    let connect = async {
        Ok::<Box<dyn Io>, std::io::Error>(match &cfg.address {
            Address::Unix(p) => Box::new(UnixStream::connect(p).await?),
            Address::Tcp(a) => {
                let s = TcpStream::connect(a.as_str()).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
        })
    };
    match timeout(cfg.connect_timeout, connect).await {
        Ok(r) => r.map_err(fail),
        Err(_) => Err(fail(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        ))),
    }
}

fn reply_timeout(after: Duration) -> Error {
    Error::Timeout {
        what: "reply",
        after,
    }
}

/// How far [`Client::get_split`] grows a body with no room left, per step.
const STEP: usize = 256 << 10;

struct Conn {
    stream: Box<dyn Io>,
    core: Core,
    timeout: Duration,
}

impl Conn {
    async fn open(cfg: &Config, session: &Session) -> Result<Conn> {
        let mut c = Conn {
            stream: open_stream(cfg).await?,
            core: Core::new(cfg.limits),
            timeout: cfg.timeout,
        };
        c.login(session).await?;
        Ok(c)
    }

    async fn login(&mut self, session: &Session) -> Result<()> {
        let mut hs = Handshake::new(session);
        let mut reply = None;
        while let Some(req) = hs.next(reply.take())? {
            reply = Some(self.call(&req.args).await?);
        }
        Ok(())
    }

    /// Sends `parts` in order, within the timeout.
    async fn send(&mut self, parts: &[&[u8]]) -> Result<()> {
        let stream = &mut self.stream;
        let write = async {
            let mut slices: Vec<IoSlice<'_>> = parts
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| IoSlice::new(p))
                .collect();
            let mut rest = &mut slices[..];
            while !rest.is_empty() {
                match stream.write_vectored(rest).await {
                    Ok(0) => return Err(Error::Closed { mid_reply: false }),
                    Ok(n) => IoSlice::advance_slices(&mut rest, n),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        };
        match timeout(self.timeout, write).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                what: "send",
                after: self.timeout,
            }),
        }
    }

    /// Sends one request: its framing from the request buffer, large arguments from where
    /// they are.
    async fn send_request<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        let mut framing = std::mem::take(&mut self.core.wbuf);
        let gaps = encode_framing(&mut framing, args);
        let r = self.send(&segments(&framing, &gaps, args)).await;
        self.core.restore_wbuf(framing);
        r
    }

    async fn read_value(&mut self) -> Result<Value> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(v) = self.core.take_reply()? {
                return Ok(v);
            }
            let read = self.stream.read(self.core.rbuf.spare());
            match timeout_at(deadline, read).await {
                Ok(Ok(0)) => return Err(self.core.closed()),
                Ok(Ok(n)) => self.core.rbuf.filled(n),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    return Err(Error::Timeout {
                        what: "reply",
                        after: self.timeout,
                    });
                }
            }
        }
    }

    async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value> {
        self.send_request(args).await?;
        self.read_value().await
    }

    /// Sends `SET key head++body`, the parts from where they are.
    async fn send_split(&mut self, key: &[u8], head: &[u8], body: &[u8]) -> Result<()> {
        let mut framing = std::mem::take(&mut self.core.wbuf);
        let mut num = itoa::Buffer::new();
        framing.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$");
        framing.extend_from_slice(num.format(key.len()).as_bytes());
        framing.extend_from_slice(b"\r\n");
        framing.extend_from_slice(key);
        framing.extend_from_slice(b"\r\n$");
        framing.extend_from_slice(num.format(head.len() + body.len()).as_bytes());
        framing.extend_from_slice(b"\r\n");
        let r = self
            .send(&[framing.as_slice(), head, body, b"\r\n".as_slice()])
            .await;
        self.core.restore_wbuf(framing);
        r
    }

    /// Reads more bytes into the read buffer before `deadline`.
    async fn fill(&mut self, deadline: Instant) -> Result<()> {
        loop {
            let read = self.stream.read(self.core.rbuf.spare());
            match timeout_at(deadline, read).await {
                Ok(Ok(0)) => return Err(self.core.closed()),
                Ok(Ok(n)) => {
                    self.core.rbuf.filled(n);
                    return Ok(());
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(self.reply_timeout()),
            }
        }
    }

    fn reply_timeout(&self) -> Error {
        reply_timeout(self.timeout)
    }

    /// The reply to a GET just sent, its value split into `head` and `body` (see
    /// [`Client::get_split`]).
    async fn read_split(&mut self, head: &mut [u8], body: &mut BytesMut) -> Result<Split> {
        let deadline = Instant::now() + self.timeout;
        let (line, len) = loop {
            match bulk_head(self.core.rbuf.unread(), &self.core.limits) {
                BulkHead::Bulk { line, len } => break (line, len),
                BulkHead::NeedMore => self.fill(deadline).await?,
                BulkHead::Other => {
                    return crate::reply::get(self.read_value().await?).map(Split::Whole);
                }
            }
        };
        if len < head.len() {
            return crate::reply::get(self.read_value().await?).map(Split::Whole);
        }
        self.core.rbuf.consume(line);
        // What already arrived comes from the read buffer, the rest straight from the socket.
        let buffered = self.core.rbuf.unread();
        let take = buffered.len().min(len);
        let in_head = take.min(head.len());
        let (to_head, to_body) = buffered.split_at(in_head);
        if let Some(h) = head.get_mut(..in_head) {
            h.copy_from_slice(to_head);
        }
        body.extend_from_slice(to_body.get(..take - in_head).unwrap_or_default());
        self.core.rbuf.consume(take);
        let closed = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::Closed { mid_reply: true },
            _ => Error::Io(e),
        };
        let after = self.timeout;
        if let Some(h) = head.get_mut(in_head..).filter(|h| !h.is_empty()) {
            timeout_at(deadline, self.stream.read_exact(h))
                .await
                .map_err(|_| reply_timeout(after))?
                .map_err(closed)?;
        }
        let mut rest = len - head.len() - (take - in_head);
        while rest > 0 {
            // Into the room the caller gave; past it, grown a bounded step at a time, so
            // nothing is allocated for a declared length before its bytes arrive.
            let room = body.capacity() - body.len();
            if room == 0 {
                body.reserve(rest.min(STEP));
            }
            let mut limited = (&mut self.stream).take(rest as u64);
            match timeout_at(deadline, limited.read_buf(body)).await {
                Ok(Ok(0)) => return Err(Error::Closed { mid_reply: true }),
                Ok(Ok(n)) => rest = rest.saturating_sub(n),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(closed(e)),
                Err(_) => return Err(reply_timeout(after)),
            }
        }
        while self.core.rbuf.unread().len() < 2 {
            self.fill(deadline).await?;
        }
        if self.core.rbuf.unread().get(..2) != Some(b"\r\n".as_slice()) {
            return Err(crate::ProtocolError::MissingCrlf.into());
        }
        self.core.rbuf.consume(2);
        Ok(Split::Parts(len))
    }

    async fn pipeline(&mut self, p: &Pipeline) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(p.len());
        for (bytes, n) in p.chunks() {
            self.send(&[bytes]).await?;
            for _ in 0..n {
                out.push(self.read_value().await?);
            }
        }
        Ok(out)
    }
}

/// What [`Client::get_split`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// A value of this many bytes: the head filled, the rest appended to the body.
    Parts(usize),
    /// No such key (`None`), or a value shorter than the head, whole.
    Whole(Option<Bytes>),
}

/// An async connection to a 0-db server (tokio). Dropping a call's future mid-way leaves
/// the connection in an unknown state: such a connection is closed on the next call.
pub struct Client {
    cfg: Config,
    session: Session,
    conn: Option<Conn>,
    /// Set while a call runs; still set on entry means the last call was cancelled.
    busy: bool,
}

impl Client {
    /// Connects, logs in and selects the namespace the configuration names.
    pub async fn connect(cfg: Config) -> Result<Client> {
        let session = session_of(&cfg);
        let conn = Some(Conn::open(&cfg, &session).await?);
        Ok(Client {
            cfg,
            session,
            conn,
            busy: false,
        })
    }

    /// Drops the connection (if any) and opens a new one, replaying the logins and the
    /// namespace selected so far.
    pub async fn reconnect(&mut self) -> Result<()> {
        self.conn = None;
        self.busy = false;
        self.conn = Some(Conn::open(&self.cfg, &self.session).await?);
        Ok(())
    }

    /// Whether a connection is open (an error that broke it closes it).
    pub fn is_connected(&self) -> bool {
        self.conn.is_some() && !self.busy
    }

    async fn conn(&mut self) -> Result<&mut Conn> {
        if self.busy {
            // A cancelled call may have left half a request or reply on the wire.
            self.conn = None;
            self.busy = false;
        }
        if self.conn.is_none() && self.cfg.reconnect == crate::Reconnect::Auto {
            self.reconnect().await?;
        }
        self.busy = true;
        self.conn.as_mut().ok_or(Error::NotConnected)
    }

    fn finish<T>(&mut self, r: Result<T>) -> Result<T> {
        self.busy = false;
        settle(&mut self.conn, r)
    }

    /// Sends one request (command name first) and returns its reply as it came; an error
    /// reply is a `Value::Error`, not an `Err`.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value> {
        let r = self.conn().await?.call(args).await;
        self.finish(r)
    }

    /// Sends every request of `p`, then returns their replies in order.
    pub async fn pipeline(&mut self, p: &Pipeline) -> Result<Vec<Value>> {
        let r = self.conn().await?.pipeline(p).await;
        self.finish(r)
    }

    /// Sends one request without reading its reply (for commands that stream, such as
    /// REPLICATE or MIRROR; read with [`Client::read_reply`]).
    pub async fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        let r = self.conn().await?.send_request(args).await;
        self.finish(r)
    }

    /// Reads the next reply, within the timeout.
    pub async fn read_reply(&mut self) -> Result<Value> {
        let r = self.conn().await?.read_value().await;
        self.finish(r)
    }

    /// GET of a value made of a fixed-size head and a large body (a header and a payload):
    /// the first `head.len()` bytes fill `head`, the rest is appended to `body`, read straight
    /// from the socket into `body`'s spare capacity, so a large value is neither copied out of
    /// the read buffer nor grows it, and lands where the caller wants it (a region of a larger
    /// buffer). Other replies mean what they mean for [`Client::get`].
    pub async fn get_split(
        &mut self,
        key: &[u8],
        head: &mut [u8],
        body: &mut BytesMut,
    ) -> Result<Split> {
        let c = self.conn().await?;
        let r = match c.send_request(&[b"GET", key]).await {
            Ok(()) => c.read_split(head, body).await,
            Err(e) => Err(e),
        };
        self.finish(r)
    }

    /// SET of a value given in two parts (a header and a payload), sent as one value without
    /// joining them first; `true` as for [`Client::set`].
    pub async fn set_split(&mut self, key: &[u8], head: &[u8], body: &[u8]) -> Result<bool> {
        let c = self.conn().await?;
        let r = match c.send_split(key, head, body).await {
            Ok(()) => c.read_value().await,
            Err(e) => Err(e),
        };
        let v = self.finish(r)?;
        crate::reply::set(v)
    }

    async fn login(&mut self, s: &Session) -> Result<()> {
        let r = self.conn().await?.login(s).await;
        self.finish(r)
    }

    /// The live keys of the current namespace, a page at a time (`next().await`).
    pub fn scan(&mut self, dir: Direction) -> Scan<'_> {
        Scan {
            client: self,
            state: ScanState::new(dir),
        }
    }
}

crate::commands::commands!("AsyncClient" {async} {.await});

/// The entries of an async scan, fetched a page at a time. An error ends it.
pub struct Scan<'a> {
    client: &'a mut Client,
    state: ScanState,
}

impl Scan<'_> {
    /// The next entry, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<ScanEntry>> {
        loop {
            match self.state.next() {
                Next::Entry(e) => return Some(Ok(e)),
                Next::End => return None,
                Next::Fetch => {
                    let r = self
                        .client
                        .scan_page(self.state.dir, self.state.cursor())
                        .await;
                    if let Some(e) = self.state.feed(r) {
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}
