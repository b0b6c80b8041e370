//! zdb: an append-only key-value engine and RESP server, a drop-in replacement for 0-db.
//!
//! Layers, each in its own module:
//! - [`format`]: the 0-db v2 on-disk layout, byte for byte;
//! - [`storage`]: the file I/O trait (real filesystem, and an in-memory power-cut model);
//! - [`engine`]: namespaces: index replay, recovery, the write and read paths;
//! - [`protocol`]: RESP framing (arrays and inline commands) and reply encoding;
//! - [`shared`]: what connections and background tasks share (namespaces, counters, hooks);
//! - [`cmd`]: one handler per command group, with 0-db's exact replies, and the session and
//!   reply buffer they work on;
//! - [`server`]: listeners, connections, limits, background tasks, replication follower.
#![deny(missing_docs)]

pub mod cmd;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod handover;
pub mod hooks;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod shared;
pub mod storage;

/// Largest value accepted (8 MiB, inclusive).
pub const MAX_VALUE: usize = 8 * 1024 * 1024;
/// Largest user key.
pub const MAX_KEY: usize = 255;
/// Most arguments in one command, including its name.
pub const MAX_ARGS: usize = 1024;

/// Current unix time in seconds. Every SET stamps one: the coarse clock (the time of the last
/// tick) is exact enough for seconds and cheaper to read than the precise one.
pub fn now_secs() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    u64::try_from(t.tv_sec).unwrap_or(0)
}
