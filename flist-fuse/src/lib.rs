//! flist: a versioned, content-addressed root filesystem image format, its block stores
//! (`dir`, `zdb`, `http`, routes) and the `flist` command line. See FORMAT.md.
//!
//! Modules: [`format`] (encode/decode), [`chunk`] (fixed/CDC), [`blocks`] (block codec and
//! the store-facing reader a mount reuses), [`store`], [`pack`], [`unpack`], [`sign`], [`rfs`] (the field's `.fl` flists), [`cli`], [`mount`] (the lazy FUSE mount and containers).

pub mod blocks;
pub mod chunk;
pub mod cli;
pub mod error;
pub mod format;
pub mod mount;
pub mod pack;
pub mod rfs;
pub mod sign;
pub mod store;
pub mod unpack;

pub use error::{Error, Result};
