//! The lazy FUSE mount of an flist (`flist mount`) and the container helper.
//!
//! Modules: [`serve`] (one mount in the foreground), [`lifecycle`] (the transition table
//! that decides what a mount does on signals and at the end), [`fs`] (the read-only
//! filesystem), [`fetch`] (worker pool, memory LRU, read-ahead and prefetch queues),
//! [`cache`] (the shared on-disk block cache), [`prefetch`] (recording and embedding
//! prefetch lists), [`errno`] (errors to errno), [`args`] and [`daemon`] (the detached
//! daemon and its serialised arguments), [`kernel`] (mountinfo, unmount), [`overlay`]
//! (overlayfs containers sharing one read-only mount), [`handover`] (a new binary taking
//! over a running mount), [`log`].

pub mod args;
pub mod cache;
pub mod daemon;
pub mod errno;
pub mod fetch;
pub mod fs;
pub mod handover;
pub mod kernel;
pub mod lifecycle;
pub mod log;
pub mod overlay;
pub mod prefetch;
pub mod serve;

pub use args::MountArgs;
pub use kernel::{mounted_type, unmount};
pub use serve::{run, take_over};

/// Default cache folder, shared by every mount of the node.
pub const DEFAULT_CACHE: &str = "/var/cache/flist";
