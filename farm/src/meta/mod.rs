//! The farm's state in etcd: the registry of nodes, object metadata, and the coordination of
//! the repair loop. Layout and sizes are in farm/README.md.
//!
//! - [`keys`]: the key layout under `/zos/farm/<farm>/`;
//! - [`records`]: the JSON values stored there;
//! - [`access`]: TLS and user/password to reach a secured etcd;
//! - [`client`]: connection, timeouts and retries around etcd-client;
//! - [`objects`]: transactional object commits, deletes and reads;
//! - [`registry`]: node registration under a lease (the heartbeat) and the node list;
//! - [`election`]: one repair leader per store;
//! - [`stores`]: the stores a farm holds, and which one a client means;
//! - [`inbox`]: following the documents addressed to nodes (blueprints), across disconnects.

pub mod access;
pub mod client;
pub mod election;
pub mod inbox;
pub mod keys;
pub mod lease;
pub mod objects;
pub mod records;
pub mod registry;
pub mod stores;

pub use access::{AccessFiles, EtcdAccess};
pub use client::{Meta, MetaError};
