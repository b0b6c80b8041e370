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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::cmd::{self, Flow, Output, Session};
use crate::protocol::{self, Args, FrameError, Reply};
use crate::shared::{Shared, Tally};

/// Input bytes a client may buffer without drawing on the shared budget.
const BASE_INPUT: usize = 64 * 1024;
/// How long a client may wait for input budget before it is disconnected.
const BUDGET_WAIT: Duration = Duration::from_secs(5);

/// Serve one client until it leaves or breaks the protocol.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    shared: Arc<Shared>,
) {
    let (mut reader, writer) = tokio::io::split(stream);
    shared.metrics.clients.inc();
    let _connected = Connected(shared.clone());
    let mut out = Output::new(writer, shared.clone());
    // Idle clients cost little: buffers start empty and grow with what arrives.
    let mut input = BytesMut::new();
    let mut budget = Budget {
        shared: shared.clone(),
        held_kib: 0,
    };
    let id = shared.new_client();
    let (mut admin, mut nonce) = (shared.cfg.admin.is_none(), None);
    if !shared.loading.is_ready()
        && !while_loading(
            &mut reader,
            &mut input,
            &mut budget,
            &mut out,
            &shared,
            (&mut admin, &mut nonce),
        )
        .await
    {
        return;
    }
    let mut session = Session {
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
                    session.tally.failed();
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
        if out.flush().await.is_err() || !make_room(&mut input, &mut budget, &mut out).await {
            return;
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
        if !received(&shared, read) {
            return;
        }
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
