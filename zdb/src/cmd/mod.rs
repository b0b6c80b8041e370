//! Command dispatch: exact, case-insensitive names (0-db's prefix matching is a quirk we do
//! not copy), permission checks, and one module per command group with 0-db's replies.

mod admin;
mod data;
mod namespace;
mod output;
mod replicate;
mod scan;
mod session;
mod system;

pub use output::Output;
pub use session::Session;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::AsyncWrite;

use crate::engine::{LockState, Namespace};
use crate::protocol::{Args, Reply};
use crate::shared::Shared;

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving.
    Continue,
    /// Flush and close.
    Close,
}

macro_rules! commands {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Every command, in 0-db's table order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Cmd { $(#[doc = $name] $variant),* }

        impl Cmd {
            /// The table name (what WAIT replies with).
            pub fn name(self) -> &'static str {
                match self { $(Cmd::$variant => $name),* }
            }
            /// Exact, case-insensitive lookup.
            pub fn lookup(arg: &[u8]) -> Option<Cmd> {
                $(if arg.eq_ignore_ascii_case($name.as_bytes()) { return Some(Cmd::$variant); })*
                None
            }
        }
    };
}

commands! {
    Any => "*", Wait => "WAIT", Mirror => "MIRROR", Master => "MASTER", Ping => "PING",
    Time => "TIME", Auth => "AUTH", Hooks => "HOOKS", Index => "INDEX", Data => "DATA",
    Set => "SET", SetX => "SETX", Get => "GET", MGet => "MGET", Del => "DEL",
    Exists => "EXISTS", Check => "CHECK", Scan => "SCAN", ScanX => "SCANX", RScan => "RSCAN",
    KScan => "KSCAN", History => "HISTORY", KeyCur => "KEYCUR", Length => "LENGTH",
    KeyTime => "KEYTIME", Info => "INFO", Stop => "STOP", DbSize => "DBSIZE", NsNew => "NSNEW",
    NsDel => "NSDEL", NsList => "NSLIST", NsSet => "NSSET", NsInfo => "NSINFO",
    NsJump => "NSJUMP", Select => "SELECT", Reload => "RELOAD", Flush => "FLUSH",
    Echo => "ECHO", NsCheck => "NSCHECK", Compact => "COMPACT", Replicate => "REPLICATE",
    Promote => "PROMOTE",
}

/// `-Permission denied`
pub(crate) const PERMISSION_DENIED: &str = "Permission denied";
const NS_GONE: &str = "Your active namespace is not available anymore (probably removed).";

/// Run one command and append its reply to `out`.
pub async fn execute<W: AsyncWrite + Unpin>(
    s: &mut Session,
    sh: &Arc<Shared>,
    args: Args,
    out: &mut Output<W>,
) -> std::io::Result<Flow> {
    let precise = sh.cfg.metrics;
    let started = clock(precise);
    let name = args
        .first()
        .and_then(Cmd::lookup)
        .map_or("unknown", Cmd::name);
    let flow = dispatch(s, sh, args, out).await;
    let took = clock(precise).saturating_sub(started);
    if precise {
        // This connection's own failure flag: set by this command or by nothing.
        sh.metrics.command(name, took, s.tally.take_failure());
    }
    if took >= sh.cfg.slow {
        tracing::warn!(
            command = name,
            client = s.id,
            namespace = %String::from_utf8_lossy(s.ns.ns.read().name()),
            ms = took.as_millis() as u64,
            "slow command"
        );
    }
    flow
}

/// Monotonic time for command timing. Without `--metrics` only the slow-command log
/// (`--slow-ms`, milliseconds) needs it, and the coarse clock (a few ms resolution) is several
/// times cheaper to read: two reads per command were 4% of a pipelined SET's CPU.
fn clock(precise: bool) -> std::time::Duration {
    use rustix::time::{ClockId, clock_gettime};
    let t = clock_gettime(if precise {
        ClockId::Monotonic
    } else {
        ClockId::MonotonicCoarse
    });
    std::time::Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

async fn dispatch<W: AsyncWrite + Unpin>(
    s: &mut Session,
    sh: &Arc<Shared>,
    mut args: Args,
    out: &mut Output<W>,
) -> std::io::Result<Flow> {
    if s.master && args.len() > 1 {
        args.pop();
    }
    if s.ns.removed.load(Ordering::SeqCst) {
        out.reply(Reply::err(NS_GONE));
        return Ok(Flow::Close);
    }
    s.tally.command();
    if s.mirror.is_none() && sh.mirror.listened() {
        mirror_copy(s, sh, &args);
    }
    // A failure flagged earlier (a malformed request) is not this command's.
    let _ = s.tally.take_failure();
    let Some(cmd) = args.first().and_then(Cmd::lookup) else {
        s.tally.failed();
        out.reply(Reply::err("Command not supported"));
        return Ok(Flow::Continue);
    };
    let reply = match cmd {
        Cmd::Any => Reply::err("This is not a valid command"),
        Cmd::Wait => {
            // WAIT may block for minutes: what this connection ran before it is counted now.
            s.tally.settle();
            system::wait(s, sh, &args).await
        }
        Cmd::Mirror => system::mirror(s, sh),
        Cmd::Master => system::master(s),
        Cmd::Ping => Reply::Status("PONG".into()),
        // Not in 0-db: `redis-cli --pipe` ends a bulk load with ECHO to know it is done.
        Cmd::Echo if args.len() == 2 => Reply::Bulk(args.bytes(1)),
        Cmd::Echo => Reply::err("Unexpected arguments"),
        Cmd::Time => system::time(),
        Cmd::Auth => system::auth(&mut s.admin, &mut s.nonce, sh, &args),
        Cmd::Hooks => system::hooks(s, sh),
        Cmd::Info => {
            s.tally.settle();
            system::info(sh)
        }
        Cmd::Stop => system::stop(s, sh),
        Cmd::Index => admin::index(s, &args),
        Cmd::Data => admin::data(s, &args),
        Cmd::Set | Cmd::SetX => data::set(s, sh, &args).await,
        Cmd::Get => return data::get(s, sh, &args, out).await.map(|()| publish(s, cmd)),
        Cmd::MGet => return data::mget(s, &args, out).await.map(|()| publish(s, cmd)),
        Cmd::Replicate => {
            return replicate::stream(s, sh, &args, out)
                .await
                .map(|()| Flow::Close);
        }
        Cmd::Promote => system::promote(s, sh),
        Cmd::Del => data::del(s, sh, &args).await,
        Cmd::Exists => data::exists(s, &args),
        Cmd::Check => data::check(s, &args),
        Cmd::Length => data::length(s, &args),
        Cmd::KeyTime => data::keytime(s, &args),
        Cmd::KeyCur => data::keycur(s, &args),
        Cmd::History => data::history(s, &args),
        Cmd::DbSize => data::dbsize(s),
        Cmd::Scan | Cmd::ScanX => scan::scan(s, &args, false),
        Cmd::RScan => scan::scan(s, &args, true),
        Cmd::KScan => scan::kscan(s, &args),
        Cmd::NsNew => namespace::nsnew(s, sh, &args),
        Cmd::NsDel => namespace::nsdel(s, sh, &args),
        Cmd::NsList => namespace::nslist(sh),
        Cmd::NsSet => namespace::nsset(s, sh, &args),
        Cmd::NsInfo => namespace::nsinfo(s, sh, &args),
        Cmd::NsJump => namespace::nsjump(s, sh).await,
        Cmd::Select => namespace::select(s, sh, &args),
        Cmd::Reload => namespace::reload(s, sh, &args),
        Cmd::Flush => namespace::flush(s, sh),
        Cmd::NsCheck => namespace::nscheck(s, sh, &args).await,
        Cmd::Compact => namespace::compact(s, sh, &args).await,
    };
    if let Reply::Error(msg) = &reply {
        s.tally.failed();
        if msg == PERMISSION_DENIED {
            sh.stats
                .commands_unauthorized
                .fetch_add(1, Ordering::Relaxed);
        }
    }
    if matches!(cmd, Cmd::Set | Cmd::SetX | Cmd::Del)
        && !matches!(reply, Reply::Error(_) | Reply::Nil)
    {
        out.acknowledges_write(&s.ns);
    }
    out.reply(reply);
    let flow = publish(s, cmd);
    if cmd == Cmd::Stop && s.admin {
        return Ok(Flow::Close);
    }
    Ok(flow)
}

/// While zdb loads its namespaces: INFO (with the progress) and AUTH answer (AUTH on the
/// connection's `admin` flag and `nonce`, which its session then starts with); every other
/// command gets [`crate::shared::LOADING_ERROR`], as redis answers while it loads.
pub fn execute_loading<W: AsyncWrite + Unpin>(
    admin: &mut bool,
    nonce: &mut Option<String>,
    sh: &Shared,
    args: &Args,
    out: &mut Output<W>,
) {
    let reply = match args.first().and_then(Cmd::lookup) {
        Some(Cmd::Info) => system::info(sh),
        Some(Cmd::Auth) => system::auth(admin, nonce, sh, args),
        _ => Reply::err(crate::shared::LOADING_ERROR),
    };
    if matches!(reply, Reply::Error(_)) {
        sh.stats.commands_failed.fetch_add(1, Ordering::Relaxed);
    }
    out.reply(reply);
}

/// Most reads whose memory is warmed together (more would evict each other's lines before
/// they run).
pub const PREFETCH_BATCH: usize = 32;

/// Before a batch of pipelined requests runs, warm the memory its GETs will touch
/// ([`Namespace::prefetch`]). Only a hint: the requests still run one by one, in order, and
/// one that changes what a later GET finds (a SET, a SELECT) changes nothing but the hint's use.
pub fn prefetch<'a>(s: &Session, requests: impl Iterator<Item = &'a Args>) {
    let keys: Vec<&[u8]> = requests
        .filter(|args| {
            (args.len() == 2 && args[0].eq_ignore_ascii_case(b"GET"))
                || (args.len() >= 3 && args[0].eq_ignore_ascii_case(b"SET"))
        })
        .map(|args| &args[1])
        .take(PREFETCH_BATCH)
        .collect();
    s.ns.ns.read().prefetch(&keys);
}

/// Send MIRROR clients a copy of this command: `*N :ts $namespace :owner <args...>`.
fn mirror_copy(s: &Session, sh: &Shared, args: &Args) {
    let mut frame = bytes::BytesMut::new();
    Reply::ArrayHeader(args.len() + 3).encode(&mut frame);
    Reply::Int(crate::now_secs() as i64).encode(&mut frame);
    crate::protocol::encode_bulk(&mut frame, s.ns.ns.read().name());
    Reply::Int(s.id as i64).encode(&mut frame);
    for a in args.iter() {
        crate::protocol::encode_bulk(&mut frame, a);
    }
    sh.mirror.send(frame.freeze());
}

/// Tell WAITing clients of this namespace that `cmd` ran.
fn publish(s: &Session, cmd: Cmd) -> Flow {
    s.ns.events.send((s.id, cmd.name()));
    Flow::Continue
}

/// Refuse unless admin.
pub(crate) fn need_admin(s: &Session) -> Result<(), Reply> {
    if s.admin {
        Ok(())
    } else {
        Err(Reply::err(PERMISSION_DENIED))
    }
}

/// Refuse reads on a frozen namespace.
pub(crate) fn readable(ns: &Namespace) -> Result<(), Reply> {
    if ns.lock == LockState::Frozen {
        return Err(Reply::err(
            "Namespace is temporarily frozen (read-write disabled)",
        ));
    }
    Ok(())
}

/// Refuse writes for read-only sessions, followers, and locked or frozen namespaces.
pub(crate) fn writable(s: &Session, ns: &Namespace) -> Result<(), Reply> {
    Rights::of(s).check(ns)
}

/// The session's part of the write permission, taken along when a write runs on a blocking
/// thread and checked there under the namespace lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rights {
    follower: bool,
    writable: bool,
}

impl Rights {
    /// The rights of `s` now.
    pub(crate) fn of(s: &Session) -> Self {
        Rights {
            follower: s.follower.load(Ordering::SeqCst),
            writable: s.writable,
        }
    }

    /// Refuse writes for read-only sessions, followers, and locked or frozen namespaces.
    pub(crate) fn check(self, ns: &Namespace) -> Result<(), Reply> {
        readable(ns)?;
        if self.follower {
            return Err(Reply::err(
                "Read-only replica (PROMOTE it to accept writes)",
            ));
        }
        if !self.writable {
            return Err(Reply::err("Namespace is in read-only mode"));
        }
        if ns.lock == LockState::Locked {
            return Err(Reply::err("Namespace is temporarily locked (read-only)"));
        }
        Ok(())
    }
}

/// Unwrap a `Result<Reply, Reply>` built with `?`.
pub(crate) fn either(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}
