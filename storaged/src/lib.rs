//! storaged: the node's disks, btrfs pools, volumes and zdb namespaces, served on the local bus.
//!
//! * [`disk`]: discovery (sysfs, config images on loop devices), content probe, classification.
//! * [`pool`]: one btrfs filesystem per disk, adopted again after restarts, never reformatted.
//! * [`volume`]: subvolumes with qgroup limits.
//! * [`zdbs`]: zdb server supervision and admin client.
//! * [`policy`]: pure placement decisions over a snapshot.
//! * [`node`]: the [`node::Storage`] type, one file per operation.
//! * [`system`]: every kernel side effect, behind a trait with a real and a recording fake.
//! * [`api`] / [`daemon`] / [`cli`]: the bus service, the daemon loop, the operator CLI.
//! * [`bench`]: the io_uring disk benchmark.
#![deny(missing_docs, clippy::unwrap_used, unsafe_code)]

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod disk;
mod error;
pub mod node;
pub mod policy;
pub mod pool;
pub mod state;
pub mod system;
pub mod volume;
pub mod zdbs;

pub use error::{Error, Result};
