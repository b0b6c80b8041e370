//! Shared harness for the zdb black-box tests: start/stop the server binary (`server.rs`), a
//! minimal exact RESP client (`resp.rs`), small helpers for the on-disk layout (`disk.rs`),
//! and in-process servers over the simulated storage (`inprocess.rs`).
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses its own subset of these helpers"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

mod disk;
mod inprocess;
mod resp;
mod server;

pub use disk::*;
pub use inprocess::*;
pub use resp::*;
pub use server::*;
