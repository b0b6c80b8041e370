//! The async client on tokio: the same codec, commands and policy as the blocking one, with
//! `tokio::time` deadlines on connecting, every send and every reply.

use std::io::IoSlice;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, timeout, timeout_at};

use crate::codec::{encode_framing, segments};
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
