//! flist: a versioned, content-addressed root filesystem image format, its block stores
//! (`dir`, `zdb`, `http`, routes) and the `flist` command line. See FORMAT.md.
//!
//! Modules, leaves first: [`error`]; [`chunk`] (fixed/CDC); [`format`] (the model, encode,
//! decode, validate); [`codec`] (block codecs behind one trait: ours and rfs's);
//! [`store`]; [`blocks`] (the block reader of commands); [`rfs`] (the field's `.fl`
//! flists: reading them); [`pack`] (with [`pack::packer`], small files together);
//! [`convert`] (older images into the current layout); [`unpack`]; [`sign`]; [`mount`] (the
//! lazy FUSE mount and containers); [`cli`] (one module per subcommand). No module imports one
//! that comes after it in this list.
#![deny(missing_docs, clippy::unwrap_used, unsafe_code)]

pub mod blocks;
pub mod chunk;
pub mod cli;
pub mod codec;
pub mod convert;
pub mod error;
pub mod format;
pub mod mount;
pub mod pack;
pub mod rfs;
pub mod sign;
pub mod store;
pub mod unpack;

pub use error::{Error, Result};
