//! Live take-over (issue 21): a new netd takes the running one's tunnels without a restart of
//! the data path's interfaces. The old netd ([`give`]) serves an owner-only `SOCK_SEQPACKET`
//! socket (`--handover PATH`); a new one started with `--take-over PATH` ([`take`]) asks for
//! the tunnels. The old one stops its data-path threads (nobody reads the tun or the socket
//! twice), makes each tun persistent and sends each network's UDP socket (`SCM_RIGHTS`); the new
//! one loads its records and says Ready; the old one stops accepting API calls, sends the bus
//! API's listener (callers wait in its backlog meanwhile, none fails), answers Commit and exits
//! touching nothing; the new one attaches to each tun (same interface, same index: `tun-rs` cannot adopt a tun
//! descriptor opened with offloads, so the tun is reopened by name once the old process has
//! closed it) and runs the data path on the handed socket, with a handshake to every peer at
//! once. Anything failing before Commit gives the old one's threads back their descriptors.

pub mod api_gate;
pub mod channel;
pub mod give;
pub mod take;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

/// The daemon's take-over settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve a take-over socket here (`--handover`).
    pub serve: Option<PathBuf>,
    /// Take the tunnels of the netd serving this socket before anything else (`--take-over`).
    pub take_over: Option<PathBuf>,
}

/// Per call on the socket, before the new one has its records loaded.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// The new one's wait for Commit, and the old one's for Ready (records loaded).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
