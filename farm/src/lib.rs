//! The storage farm: objects cut into stripes, each compressed, encrypted with the object's own
//! key and erasure-coded into k + m shards that live on k + m different nodes; the farm's
//! registry (nodes, their state) and object metadata live in etcd; a repair loop, one per farm
//! by election, rebuilds lost or corrupted shards by itself.
//!
//! - [`codec`]: the pure object pipeline (stripes, keys, Reed-Solomon, shard framing);
//! - [`ids`]: object, node and shard identifiers;
//! - [`placement`]: which node gets which shard, as a pure function of a farm snapshot;
//! - [`meta`]: the registry and object metadata in etcd;
//! - [`store`]: the `ShardStore` trait (zdb, and an in-memory fake);
//! - [`ops`]: put, get, node states, repair, scrub, collection;
//! - [`testing`]: a real etcd cluster on loopback for tests.
#![deny(missing_docs, clippy::unwrap_used)]

pub mod codec;
pub mod ids;
pub mod meta;
pub mod ops;
pub mod placement;
pub mod store;
pub mod testing;
