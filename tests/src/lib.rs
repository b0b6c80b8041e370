//! Shared pieces of the end-to-end tests: [`lab`] runs several nodes on one machine.

pub mod lab;
