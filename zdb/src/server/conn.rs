//! One client connection: read, frame, execute, reply.
//!
//! Memory per client is bounded: the input buffer grows only as bytes arrive, never past
//! `MAX_FRAME`, and growth beyond a small base is paid for from a server-wide budget; a client
//! whose budget cannot be granted within a few seconds is disconnected. Replies are flushed
//! before more input is read, so a client that does not read its replies stops being read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::state::{NsHandle, Shared};
use crate::cmd::{self, Flow};
use crate::protocol::{self, Args, FrameError, Reply};

/// Input bytes a client may buffer without drawing on the shared budget.
const BASE_INPUT: usize = 64 * 1024;
/// Flush replies once this much is pending.
pub(crate) const FLUSH_AT: usize = 64 * 1024;
/// How long a client may wait for input budget before it is disconnected.
const BUDGET_WAIT: Duration = Duration::from_secs(5);

/// Per-connection state.
pub struct Session {
    /// Client id.
    pub id: u64,
    /// Current namespace.
    pub ns: Arc<NsHandle>,
    /// May write in the current namespace.
    pub writable: bool,
    /// Logged in as admin (always true without `--admin`).
    pub admin: bool,
    /// Pending AUTH SECURE challenge.
    pub nonce: Option<String>,
    /// MASTER mode: requests carry a trailing owner id.
    pub master: bool,
    /// MIRROR mode: copies of other clients' commands arrive here.
    pub mirror: Option<super::Listener<bytes::Bytes>>,
    /// Set while this server follows a leader: client writes are refused.
    pub follower: Arc<std::sync::atomic::AtomicBool>,
    /// Counters not yet added to the shared ones.
    pub tally: super::Tally,
}

/// Output side of a connection: a reply buffer and the socket it drains into.
pub struct Output<W> {
    /// Pending reply bytes.
    pub buf: BytesMut,
    writer: W,
    shared: Arc<Shared>,
    /// Namespaces holding buffered appends that replies in `buf` acknowledge.
    wrote: Vec<Arc<NsHandle>>,
    /// Where in `buf` the first reply acknowledging a buffered append starts.
    first_ack: Option<usize>,
}

impl<W: AsyncWrite + Unpin> Output<W> {
    /// Append a reply.
    pub fn reply(&mut self, r: Reply) {
        r.encode(&mut self.buf);
    }

    /// Send pending bytes if there are many (keeps large replies bounded in memory).
    pub async fn flush_if_big(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Note that the reply about to be encoded at the current end of `buf` acknowledges an
    /// append buffered in `ns`: it may only leave once that append is in the file.
    pub fn acknowledges_write(&mut self, ns: &Arc<NsHandle>) {
        self.first_ack.get_or_insert(self.buf.len());
        if !self.wrote.iter().any(|w| Arc::ptr_eq(w, ns)) {
            self.wrote.push(ns.clone());
        }
    }

    /// Write the appends that pending replies acknowledge. If that fails, the replies from the
    /// first such acknowledgement on are replaced by one error and the connection must close.
    fn settle(&mut self) -> std::io::Result<()> {
        let mut failed = None;
        for ns in self.wrote.drain(..) {
            if let Err(e) = ns.ns.write().flush_pending() {
                failed = Some(e);
            }
        }
        let first = self.first_ack.take();
        if let (Some(e), Some(pos)) = (failed, first) {
            self.buf.truncate(pos);
            Reply::err(e.to_string()).encode(&mut self.buf);
            return Err(std::io::Error::other("write failed before acknowledgement"));
        }
        Ok(())
    }

    /// Send all pending bytes (after the appends they acknowledge).
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.wrote.is_empty() {
            // Let the other ready connections append first: the first of them to flush then
            // writes everyone's entries in one pwrite per file, and the rest find nothing to do.
            tokio::task::yield_now().await;
        }
        let settled = self.settle();
        if !self.buf.is_empty() {
            self.writer.write_all(&self.buf).await?;
            self.shared
                .stats
                .network_tx
                .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            self.buf.clear();
        }
        settled
    }
}

/// Serve one client until it leaves or breaks the protocol.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    shared: Arc<Shared>,
) {
    let (mut reader, writer) = tokio::io::split(stream);
    shared.metrics.clients.inc();
    let _connected = Connected(shared.clone());
    let mut session = Session {
        id: shared.new_client(),
        ns: shared.default_ns(),
        writable: !shared.cfg.protect,
        admin: shared.cfg.admin.is_none(),
        nonce: None,
        master: false,
        mirror: None,
        follower: shared.follower.clone(),
        tally: super::Tally::new(shared.clone()),
    };
    let mut out = Output {
        buf: BytesMut::new(),
        writer,
        shared: shared.clone(),
        wrote: Vec::new(),
        first_ack: None,
    };
    // Idle clients cost little: buffers start empty and grow with what arrives.
    let mut input = BytesMut::new();
    let mut budget = Budget {
        shared: shared.clone(),
        held_kib: 0,
    };
    // Requests parsed but not yet run: parsing a batch ahead lets its reads be prefetched.
    let mut ahead = VecDeque::new();
    loop {
        // Execute every whole request already buffered.
        loop {
            if ahead.is_empty() {
                parse_ahead(&mut input, &mut ahead);
                if ahead.len() > 1 {
                    cmd::prefetch(&session, ahead.iter().flatten());
                }
            }
            let Some(parsed) = ahead.pop_front() else {
                break;
            };
            match parsed {
                Ok(args) => match cmd::execute(&mut session, &shared, args, &mut out).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Close) | Err(_) => {
                        let _ = out.flush().await;
                        return;
                    }
                },
                Err(e) => {
                    shared.stats.commands_failed.fetch_add(1, Ordering::Relaxed);
                    out.reply(Reply::err(e.to_string()));
                    if !e.keeps_connection() {
                        let _ = out.flush().await;
                        return;
                    }
                }
            }
            if out.flush_if_big().await.is_err() {
                return;
            }
        }
        session.tally.settle();
        if out.flush().await.is_err() {
            return;
        }
        budget.fit(input.len()).await;
        if !budget.covers(input.len() + BASE_INPUT / 2)
            && !budget.grow(input.len() + BASE_INPUT).await
        {
            out.reply(Reply::err("Server input buffers full, try again later"));
            let _ = out.flush().await;
            return;
        }
        if input.is_empty() && input.capacity() < 512 {
            input.reserve(512);
        } else if input.capacity() - input.len() < 4096 {
            // Grow geometrically with what has arrived (never by a declared length), so a large
            // value is not copied over and over while it streams in.
            input.reserve(input.len().max(16 * 1024));
        }
        let read = match session.mirror.as_mut() {
            None => reader.read_buf(&mut input).await,
            Some(rx) => tokio::select! {
                r = reader.read_buf(&mut input) => r,
                copy = rx.recv() => {
                    match copy {
                        Ok(frame) => out.buf.extend_from_slice(&frame),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(client = session.id, skipped = n, "mirror client too slow, copies dropped");
                        }
                        Err(_) => session.mirror = None,
                    }
                    continue;
                }
            },
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                shared
                    .stats
                    .network_rx
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Move up to [`cmd::PREFETCH_BATCH`] whole requests from `input` to `ahead`, stopping after
/// a malformed one (it is answered in its turn, and parsing resumes after it if it may).
fn parse_ahead(input: &mut BytesMut, ahead: &mut VecDeque<Result<Args, FrameError>>) {
    while ahead.len() < cmd::PREFETCH_BATCH {
        match protocol::parse(input) {
            Ok(None) => return,
            Ok(Some(args)) if args.is_empty() => {}
            Ok(Some(args)) => ahead.push_back(Ok(args)),
            Err(e) => {
                ahead.push_back(Err(e));
                return;
            }
        }
    }
}

/// Input-buffer bytes a client holds from the shared budget (in KiB), beyond `BASE_INPUT`.
struct Budget {
    shared: Arc<Shared>,
    held_kib: u32,
}

impl Budget {
    fn need_kib(len: usize) -> u32 {
        u32::try_from(len.saturating_sub(BASE_INPUT).div_ceil(1024)).unwrap_or(u32::MAX)
    }

    fn covers(&self, len: usize) -> bool {
        Self::need_kib(len) <= self.held_kib
    }

    /// Give back what a shrunken buffer no longer needs.
    async fn fit(&mut self, len: usize) {
        let need = Self::need_kib(len);
        if need < self.held_kib {
            self.shared
                .input_budget
                .add_permits((self.held_kib - need) as usize);
            self.held_kib = need;
        }
    }

    /// Take enough budget for `len` buffered bytes; false if it did not come in time.
    async fn grow(&mut self, len: usize) -> bool {
        let need = Self::need_kib(len);
        if need <= self.held_kib {
            return true;
        }
        let more = need - self.held_kib;
        let acquire = self.shared.input_budget.clone().acquire_many_owned(more);
        match tokio::time::timeout(BUDGET_WAIT, acquire).await {
            Ok(Ok(permit)) => {
                permit.forget();
                self.held_kib = need;
                true
            }
            _ => false,
        }
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        if self.held_kib > 0 {
            self.shared.input_budget.add_permits(self.held_kib as usize);
        }
    }
}

/// Counts a client in the `clients` gauge for as long as it is connected.
struct Connected(Arc<Shared>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.metrics.clients.dec();
    }
}
