//! The object pipeline, pure: a stripe of plain bytes is compressed (zstd), sealed with the
//! object's key (AES-256-GCM), split into k data + m parity shards (Reed-Solomon), and each
//! shard framed with its identity and a blake3 checksum. Reading takes any k shards that
//! verify, and returns bytes only when the decryption tag holds.
//!
//! - [`params`]: the shape of an object (k, m, stripe size, zstd level);
//! - [`seal`]: per-object keys, compression and authenticated encryption of one stripe;
//! - [`erasure`]: Reed-Solomon over equal-length shards (`reed-solomon-simd`);
//! - [`shard`]: the stored bytes of one shard (header, checksum, payload);
//! - [`stripe`]: one stripe through all of the above, both ways;
//! - [`stream`]: objects of any size as a sequence of stripes, memory bounded.

pub mod erasure;
pub mod params;
pub mod seal;
pub mod shard;
pub mod stream;
pub mod stripe;

pub use params::Params;
