//! computed: containers booted from flists.
//!
//! The daemon ([`daemon`], bus API in [`api`], supervision and health in [`supervise`]) keeps
//! the node's containers; the lifecycle lives in [`engine`], one module per operation, with
//! admission and request checks apart. Every side effect the engine causes goes through
//! [`system::System`] (real: [`system::Linux`]; recording fake: [`system::Fake`]). A container
//! stands on an flist pinned by [`rootfs`] and mounted read-only by flist-fuse with an overlay
//! on top, in its own namespaces with cgroup limits, capabilities and seccomp decided in
//! [`bundle`] and [`seccomp`]. Each container has a single-threaded [`shim`] process that runs
//! youki's libcontainer (which forks its caller), captures output into bounded rotating
//! [`logs`] and applies the restart policy; it outlives computed. On-disk state: [`state`].
#![deny(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice,
    unsafe_code
)]

pub mod api;
pub mod bundle;
pub mod cli;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod logs;
pub mod rootfs;
pub mod seccomp;
pub mod shim;
pub mod state;
pub mod supervise;
pub mod system;
pub mod testing;

pub use error::{Error, Result};
