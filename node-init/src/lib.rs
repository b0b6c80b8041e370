//! node-init: node identity, the blueprint engine and the node daemon (`node-init`), plus the
//! library behind the `zos` CLI.
#![deny(missing_docs, clippy::unwrap_used, unsafe_code)]

pub mod api;
pub mod blueprint;
pub mod boot;
pub mod daemon;
pub mod dev;
pub mod engine;
pub mod etcd_args;
pub mod farm_inbox;
pub mod farm_join;
pub mod farm_node;
pub mod farm_services;
pub mod handlers;
pub mod identity;
pub mod jcs;
pub mod keys;
pub mod supervisor;
pub mod upgrade;
