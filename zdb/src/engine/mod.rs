//! The storage engine: one [`Namespace`] per 0-db namespace, holding its in-memory index and
//! its active index/data file pair.
//!
//! Invariants (see ARCHITECTURE.md):
//! - Index file N and data file N rotate together; only the highest pair is appended to.
//! - A write appends the data entry, then the index entry, then flags the superseded index
//!   entry; a crash between any two steps leaves a state that [`Namespace::open`] repairs
//!   without losing the key.
//! - After an I/O error on a write or an fsync the namespace is poisoned and refuses writes.

mod cache;
mod check;
mod compact;
mod disk_read;
mod durability;
mod entries;
mod error;
mod files;
mod history;
mod keymap;
mod namespace;
mod open;
mod pairs;
mod prefetch;
mod read;
mod recover;
mod repair;
mod replay;
mod replicated;
mod scan;
mod snapshot;
mod usage;
mod write;

pub use cache::ReadCache;
pub use check::{CheckCursor, CheckReport};
pub use compact::{CompactBuilt, CompactPlan, CompactStats};
pub use disk_read::{DiskRead, Lookup};
pub use durability::Durability;
pub use error::{OpError, OpenError};
pub use history::{HistoryError, HistoryItem, RawEntry, RawError};
pub use keymap::{KeyMap, Loc};
pub use namespace::{LockState, Namespace, NsStats};
pub use pairs::Rotation;
pub use read::CheckResult;
pub use repair::RebuildReport;
pub use scan::{BadCursor, CURSOR_LEN, ScanItem, ScanPage};
pub use write::SetOutcome;

use std::time::Duration;

/// `dataid` of a dead sequential slot whose value was reclaimed by compaction (the slot itself
/// stays: ids are positions).
pub const RECLAIMED: u32 = u32::MAX;

/// Key mode of a namespace, as stored in its index headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Arbitrary 1..=255-byte keys, all held in memory.
    User,
    /// 8-byte little-endian ids assigned by the server; slots computed, nothing in memory.
    Seq,
}

impl Mode {
    /// Byte stored in index headers.
    pub fn as_byte(self) -> u8 {
        match self {
            Mode::User => 0,
            Mode::Seq => 1,
        }
    }
    /// From the byte stored in index headers.
    pub fn from_byte(b: u8) -> Self {
        if b == 1 { Mode::Seq } else { Mode::User }
    }
}

/// Server-wide running mode (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// No `--mode`: namespaces start in user mode and may be switched while fresh.
    Mixed,
    /// Every namespace in user mode.
    User,
    /// Every namespace in sequential mode.
    Seq,
}

/// Settings shared by every namespace of a server.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Rotate to a new file pair before a data file would exceed this size.
    pub datasize: u32,
    /// fsync before acknowledging every write (`--sync`).
    pub sync: bool,
    /// fsync on the next write when the last one is older than this (`--synctime`).
    pub synctime: Option<Duration>,
    /// Server mode.
    pub run_mode: RunMode,
    /// With `sync`: leave the fsync to the caller, who waits on [`Namespace::commit_token`]
    /// through [`Durability`] so concurrent writers share fsyncs (the server does this).
    pub group_commit: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            datasize: 256 * 1024 * 1024,
            sync: false,
            synctime: None,
            run_mode: RunMode::Mixed,
            group_commit: false,
        }
    }
}

/// Which file of a pair an I/O error hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `iN`
    Index,
    /// `dN`
    Data,
}

#[cfg(test)]
mod tests;
