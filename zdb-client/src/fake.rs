//! A scriptable stand-in for a 0-db server, for tests of code that talks to one (feature
//! `fake`): each request goes to a handler that says what to do, from a proper reply to the
//! hostile things a broken or malicious server does (huge lengths, endless lines, one byte
//! a second, silence, a close in the middle of a reply). It listens on 127.0.0.1 at a free
//! port, one thread per connection, and stops when dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use crate::codec::{Decoder, Limits};
use crate::value::Value;

/// How often a connection thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(20);

/// What the fake does with one request.
#[derive(Debug, Clone)]
pub enum Act {
    /// Answer with a value.
    Reply(Value),
    /// Send these exact bytes (anything, valid or not), then go on.
    Raw(Vec<u8>),
    /// Send these bytes, then close the connection.
    RawThenClose(Vec<u8>),
    /// Send these bytes one at a time, `every` apart.
    Drip {
        /// The bytes.
        bytes: Vec<u8>,
        /// Pause between two bytes.
        every: Duration,
    },
    /// Send this pattern again and again until the client hangs up.
    Endless(Vec<u8>),
    /// Never answer this or any later request on the connection.
    Silent,
    /// Close the connection without answering.
    Close,
}

type Handler = dyn Fn(&[Bytes]) -> Act + Send + Sync;

/// A running fake server.
pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts a server that answers every request (its arguments, command name first) as
    /// `handler` says.
    pub fn start(
        handler: impl Fn(&[Bytes]) -> Act + Send + Sync + 'static,
    ) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, n) = (stop.clone(), accepted.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                n.fetch_add(1, Ordering::SeqCst);
                let (h, s) = (handler.clone(), s.clone());
                std::thread::spawn(move || serve(conn, &*h, &s));
            }
        });
        Ok(FakeServer {
            addr,
            stop,
            accepted,
            accept: Some(accept),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `zdb://127.0.0.1:PORT/ns`.
    pub fn url(&self, ns: &str) -> String {
        format!("zdb://{}/{ns}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Writes all of `bytes` unless the client goes away or the server stops.
fn put(conn: &mut TcpStream, mut bytes: &[u8], stop: &AtomicBool) -> bool {
    while !bytes.is_empty() {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        match conn.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return false,
        }
    }
    true
}

fn serve(mut conn: TcpStream, handler: &Handler, stop: &AtomicBool) {
    if conn.set_read_timeout(Some(TICK)).is_err() || conn.set_write_timeout(Some(TICK)).is_err() {
        return;
    }
    let mut decoder = Decoder::new(Limits {
        max_bulk: 64 << 20,
        max_reply: 256 << 20,
        ..Limits::default()
    });
    let mut unread: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut silent = false;
    while !stop.load(Ordering::SeqCst) {
        let n = match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        };
        if silent {
            continue;
        }
        unread.extend_from_slice(buf.get(..n).unwrap_or_default());
        loop {
            let Ok((used, request)) = decoder.decode(&unread) else {
                return;
            };
            unread.drain(..used.min(unread.len()));
            let Some(request) = request else { break };
            let args: Vec<Bytes> = match request {
                Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::Bulk(b) => b,
                        other => Bytes::from(other.describe()),
                    })
                    .collect(),
                other => vec![Bytes::from(other.describe())],
            };
            let ok = match handler(&args) {
                Act::Reply(v) => {
                    let mut out = Vec::new();
                    v.encode(&mut out);
                    put(&mut conn, &out, stop)
                }
                Act::Raw(b) => put(&mut conn, &b, stop),
                Act::RawThenClose(b) => {
                    put(&mut conn, &b, stop);
                    false
                }
                Act::Drip { bytes, every } => bytes.iter().all(|b| {
                    std::thread::sleep(every);
                    put(&mut conn, std::slice::from_ref(b), stop)
                }),
                Act::Endless(p) => {
                    while !p.is_empty() && put(&mut conn, &p, stop) {}
                    false
                }
                Act::Silent => {
                    silent = true;
                    true
                }
                Act::Close => false,
            };
            if !ok {
                return;
            }
            if silent {
                break;
            }
        }
    }
}
