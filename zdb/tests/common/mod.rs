//! Shared harness for the zdb black-box tests: start/stop the server binary (`server.rs`), a
//! minimal exact RESP client (`resp.rs`), and small helpers for the on-disk layout
//! (`disk.rs`).
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses its own subset of these helpers"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

mod disk;
mod resp;
mod server;

pub use disk::*;
pub use resp::*;
pub use server::*;
