//! computed: containers booted from flists.
//!
//! The daemon ([`daemon`], bus API in [`api`]) keeps the node's containers; the lifecycle
//! policy lives in [`engine`]. A container stands on an flist mounted read-only by flist-fuse
//! with an overlay on top ([`rootfs`]), in its own namespaces with cgroup limits, capabilities
//! and seccomp decided in [`bundle`] and [`seccomp`]. Each container has a single-threaded
//! [`shim`] process that runs youki's libcontainer (which forks its caller), captures output
//! into bounded rotating [`logs`] and applies the restart policy; it outlives computed. On-disk
//! state: [`state`].

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

pub use error::{Error, Result};
