//! One client connection: read, frame, execute, reply.
//!
//! Memory per client is bounded: the input buffer grows only as bytes arrive, never past
//! `MAX_FRAME`, and growth beyond a small base is paid for from a server-wide budget; a client
//! whose budget cannot be granted within a few seconds is disconnected. Replies are flushed
//! before more input is read, so a client that does not read its replies stops being read.
//!
//! Before it waits for input (replies flushed, no whole request buffered), a connection looks
//! at the hand-over gate: when frozen it parks with its session and unparsed bytes
//! (`crate::handover`), then either goes on or leaves its socket to the new process.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::watch;

use crate::cmd::{self, Flow, Output, Session};
use crate::protocol::{self, Args, FrameError, Reply};
use crate::shared::{ConnKind, ConnState, Live, Shared, Tally, Verdict};

/// Input bytes a client may buffer without drawing on the shared budget.
const BASE_INPUT: usize = 64 * 1024;
/// How long a client may wait for input budget before it is disconnected.
const BUDGET_WAIT: Duration = Duration::from_secs(5);

/// A client socket split in owned halves, whose read half still names the socket (to hand a
/// copy of it over).
pub trait Socket: Send + 'static {
    /// Read half.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// Write half.
    type Write: AsyncWrite + Unpin + Send + 'static;
    /// Which listener kind it comes from.
    const KIND: ConnKind;
    /// Split.
    fn halves(self) -> (Self::Read, Self::Write);
    /// The socket, through its read half.
    fn fd(read: &Self::Read) -> BorrowedFd<'_>;
    /// Drop the write half without shutting the socket down (another process serves it).
    fn forget(write: Self::Write);
}

impl Socket for tokio::net::TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    const KIND: ConnKind = ConnKind::Tcp;
    fn halves(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }
    fn fd(read: &Self::Read) -> BorrowedFd<'_> {
        read.as_ref().as_fd()
    }
    fn forget(write: Self::Write) {
        write.forget();
    }
}

impl Socket for tokio::net::UnixStream {
    type Read = tokio::net::unix::OwnedReadHalf;
    type Write = tokio::net::unix::OwnedWriteHalf;
    const KIND: ConnKind = ConnKind::Unix;
    fn halves(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }
    fn fd(read: &Self::Read) -> BorrowedFd<'_> {
        read.as_ref().as_fd()
    }
    fn forget(write: Self::Write) {
        write.forget();
    }
}

/// A connection's halves and buffers.
struct Conn<S: Socket> {
    reader: S::Read,
    out: Output<S::Write>,
    input: BytesMut,
    budget: Budget,
    gate: watch::Receiver<bool>,
    _live: Live,
    _connected: Connected,
}

impl<S: Socket> Conn<S> {
    fn new(stream: S, shared: &Arc<Shared>, live: Live) -> Self {
        let (reader, writer) = stream.halves();
        shared.metrics.clients.inc();
        Conn {
            reader,
            out: Output::new(writer, shared.clone()),
            // Idle clients cost little: buffers start empty and grow with what arrives.
            input: BytesMut::new(),
            budget: Budget {
                shared: shared.clone(),
                held_kib: 0,
            },
            gate: shared.gate.subscribe(),
            _live: live,
            _connected: Connected(shared.clone()),
        }
    }
}

/// Serve one client until it leaves or breaks the protocol (`live`: counted at its accept).
pub async fn serve<S: Socket>(stream: S, shared: Arc<Shared>, live: Live) {
    let mut c = Conn::<S>::new(stream, &shared, live);
    let id = shared.new_client();
    let (mut admin, mut nonce) = (shared.cfg.admin.is_none(), None);
    if !shared.loading.is_ready()
        && !while_loading(
            &mut c.reader,
            &mut c.input,
            &mut c.budget,
            &mut c.out,
            &shared,
            (&mut admin, &mut nonce),
        )
        .await
    {
        return;
    }
    let session = Session {
        id,
        ns: shared.default_ns(),
        writable: !shared.cfg.protect,
        admin,
        nonce,
        master: false,
        mirror: None,
        follower: shared.follower.clone(),
        tally: Tally::new(shared.clone()),
    };
    run(c, session, shared).await;
}

/// Serve a connection handed over by another process, from the request boundary where it
/// was parked there. A namespace that vanished meanwhile (it cannot, unless the folders were
/// changed behind both processes) leaves the client in `default`, read-only.
pub async fn resume<S: Socket>(stream: S, shared: Arc<Shared>, live: Live, state: ConnState) {
    let mut c = Conn::<S>::new(stream, &shared, live);
    c.input.extend_from_slice(&state.input);
    let (ns, writable) = match shared.get(&state.ns) {
        Some(ns) => (ns, state.writable),
        None => (shared.default_ns(), false),
    };
    let session = Session {
        id: state.id,
        ns,
        writable,
        admin: state.admin,
        nonce: state.nonce,
        master: state.master,
        mirror: state.mirror.then(|| shared.mirror.subscribe()),
        follower: shared.follower.clone(),
        tally: Tally::new(shared.clone()),
    };
    run(c, session, shared).await;
}

/// Serve until the client leaves; a connection handed over is left open for the new process
/// (an owned write half shuts the socket down when dropped).
async fn run<S: Socket>(mut c: Conn<S>, session: Session, shared: Arc<Shared>) {
    if let Exit::Gone = serve_requests(&mut c, session, shared).await {
        S::forget(c.out.into_writer());
    }
}

/// How [`serve_requests`] ended.
enum Exit {
    /// The client left, broke the protocol or was closed.
    Closed,
    /// Handed over to another process.
    Gone,
}

async fn serve_requests<S: Socket>(
    c: &mut Conn<S>,
    mut session: Session,
    shared: Arc<Shared>,
) -> Exit {
    let Conn {
        reader,
        out,
        input,
        budget,
        gate,
        ..
    } = c;
    // Requests parsed but not yet run: parsing a batch ahead lets its reads be prefetched.
    let mut ahead = VecDeque::new();
    // The gate moved while this connection waited for input: look at it at the boundary.
    let mut look = false;
    loop {
        // Execute every whole request already buffered.
        loop {
            if ahead.is_empty() {
                parse_ahead(input, &mut ahead);
                if ahead.len() > 1 {
                    cmd::prefetch(&session, ahead.iter().flatten());
                }
            }
            let Some(parsed) = ahead.pop_front() else {
                break;
            };
            match parsed {
                Ok(args) => match cmd::execute(&mut session, &shared, args, out).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Close) | Err(_) => {
                        let _ = out.flush().await;
                        return Exit::Closed;
                    }
                },
                Err(e) => {
                    session.tally.failed();
                    out.reply(Reply::err(e.to_string()));
                    if !e.keeps_connection() {
                        let _ = out.flush().await;
                        return Exit::Closed;
                    }
                }
            }
            if out.flush_if_big().await.is_err() {
                return Exit::Closed;
            }
        }
        session.tally.settle();
        if out.flush().await.is_err() {
            return Exit::Closed;
        }
        // A request boundary: park here if a hand-over asks.
        if (std::mem::take(&mut look) || gate.has_changed().unwrap_or(false))
            && *gate.borrow_and_update()
        {
            match park::<S>(reader, &session, input, &shared).await {
                Verdict::Resume => {}
                Verdict::Gone => return Exit::Gone,
            }
        }
        if !make_room(input, budget, out).await {
            return Exit::Closed;
        }
        let read = match session.mirror.as_mut() {
            None => tokio::select! {
                biased;
                r = reader.read_buf(input) => r,
                _ = gate.changed() => {
                    look = true;
                    continue;
                }
            },
            Some(rx) => tokio::select! {
                biased;
                r = reader.read_buf(input) => r,
                _ = gate.changed() => {
                    look = true;
                    continue;
                }
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
        if !received(&shared, read) {
            return Exit::Closed;
        }
    }
}

/// Park at a request boundary until the hand-over decides (see `shared::Gate`).
async fn park<S: Socket>(
    reader: &S::Read,
    session: &Session,
    input: &BytesMut,
    shared: &Shared,
) -> Verdict {
    let Ok(fd) = S::fd(reader).try_clone_to_owned() else {
        // Out of descriptors: this connection cannot be handed over, so neither can the
        // others; by never parking it makes the hand-over time out and fail.
        return Verdict::Resume;
    };
    let state = ConnState {
        id: session.id,
        kind: S::KIND,
        ns: session.ns.ns.read().name().to_vec(),
        writable: session.writable,
        admin: session.admin,
        master: session.master,
        mirror: session.mirror.is_some(),
        nonce: session.nonce.clone(),
        input: input.to_vec(),
    };
    match shared.gate.park(fd, state) {
        // A verdict never sent (the coordinator gave up on it) means serve on.
        Some(rx) => rx.await.unwrap_or(Verdict::Resume),
        None => Verdict::Resume,
    }
}

/// Answer a client while the namespaces load (`cmd::execute_loading`); returns true once
/// loading is over, with the requests not yet answered left in `input`, or false when the
/// client left or broke the protocol.
async fn while_loading<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut R,
    input: &mut BytesMut,
    budget: &mut Budget,
    out: &mut Output<W>,
    shared: &Shared,
    (admin, nonce): (&mut bool, &mut Option<String>),
) -> bool {
    loop {
        while !shared.loading.is_ready() {
            match protocol::parse(input) {
                Ok(None) => break,
                Ok(Some(args)) if args.is_empty() => {}
                Ok(Some(args)) => cmd::execute_loading(admin, nonce, shared, &args, out),
                Err(e) => {
                    out.reply(Reply::err(e.to_string()));
                    if !e.keeps_connection() {
                        let _ = out.flush().await;
                        return false;
                    }
                }
            }
        }
        if out.flush().await.is_err() {
            return false;
        }
        if shared.loading.is_ready() {
            return true;
        }
        if !make_room(input, budget, out).await {
            return false;
        }
        tokio::select! {
            read = reader.read_buf(input) => {
                if !received(shared, read) {
                    return false;
                }
            }
            () = shared.loading.wait_ready() => {}
        }
    }
}

/// Before a read: give back budget a shrunken buffer no longer needs, take what the next
/// read may need (false: it did not come in time; the client was told and must go), and
/// make room in the buffer.
async fn make_room<W: AsyncWrite + Unpin>(
    input: &mut BytesMut,
    budget: &mut Budget,
    out: &mut Output<W>,
) -> bool {
    budget.fit(input.len()).await;
    if !budget.covers(input.len() + BASE_INPUT / 2) && !budget.grow(input.len() + BASE_INPUT).await
    {
        out.reply(Reply::err("Server input buffers full, try again later"));
        let _ = out.flush().await;
        return false;
    }
    if input.is_empty() && input.capacity() < 512 {
        input.reserve(512);
    } else if input.capacity() - input.len() < 4096 {
        // Grow geometrically with what has arrived (never by a declared length), so a large
        // value is not copied over and over while it streams in.
        input.reserve(input.len().max(16 * 1024));
    }
    true
}

/// Count what a read brought; false when the client left (or the read failed).
fn received(shared: &Shared, read: std::io::Result<usize>) -> bool {
    match read {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            shared
                .stats
                .network_rx
                .fetch_add(n as u64, Ordering::Relaxed);
            true
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
