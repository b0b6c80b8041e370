//! Identifiers shared by the codec, the metadata and the stores.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An object version: drawn at random for every put, so a name written twice names two
/// different sets of shards and an old shard can never pass for a new one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ObjectId(pub [u8; 16]);

impl ObjectId {
    /// A fresh random id (kernel randomness).
    pub fn random() -> Self {
        ObjectId(nodeutil::random::bytes())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl From<ObjectId> for String {
    fn from(id: ObjectId) -> String {
        id.to_string()
    }
}

/// A string that is not 32 hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("object id is not 32 hex digits")]
pub struct BadObjectId;

impl TryFrom<String> for ObjectId {
    type Error = BadObjectId;
    fn try_from(s: String) -> Result<Self, BadObjectId> {
        s.parse()
    }
}

impl std::str::FromStr for ObjectId {
    type Err = BadObjectId;
    fn from_str(s: &str) -> Result<Self, BadObjectId> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id).map_err(|_| BadObjectId)?;
        Ok(ObjectId(id))
    }
}

/// A node of the farm: node-init's id (hex of the first 16 bytes of blake3 of its public key).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        NodeId(s.to_string())
    }
}

/// One shard of one stripe of one object version: its key in a node's shard namespace.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ShardId {
    /// Object version.
    pub object: ObjectId,
    /// Stripe index in the object.
    pub stripe: u64,
    /// Shard index in the stripe (data shards first, then parity).
    pub index: u8,
}

/// Length of [`ShardId::key`].
pub const SHARD_KEY_LEN: usize = 25;

impl ShardId {
    /// The store key: object id, stripe (big-endian, so a scan lists an object's shards in
    /// order) and index.
    pub fn key(&self) -> [u8; SHARD_KEY_LEN] {
        let mut k = [0u8; SHARD_KEY_LEN];
        let (id, rest) = k.split_at_mut(16);
        id.copy_from_slice(&self.object.0);
        let (stripe, index) = rest.split_at_mut(8);
        stripe.copy_from_slice(&self.stripe.to_be_bytes());
        index[0] = self.index;
        k
    }

    /// Parses a store key; `None` for a key the farm did not write.
    pub fn from_key(key: &[u8]) -> Option<ShardId> {
        let key: &[u8; SHARD_KEY_LEN] = key.try_into().ok()?;
        let (id, rest) = key.split_at(16);
        let (stripe, index) = rest.split_at(8);
        Some(ShardId {
            object: ObjectId(id.try_into().ok()?),
            stripe: u64::from_be_bytes(stripe.try_into().ok()?),
            index: *index.first()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_key_round_trips_and_refuses_foreign_keys() {
        let id = ShardId {
            object: ObjectId::random(),
            stripe: 0x0102_0304_0506_0708,
            index: 5,
        };
        assert_eq!(ShardId::from_key(&id.key()), Some(id));
        assert_eq!(ShardId::from_key(b"short"), None);
        assert_eq!(ShardId::from_key(&[0u8; 26]), None);
    }

    #[test]
    fn object_id_hex_round_trips() {
        let id = ObjectId::random();
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(s.parse::<ObjectId>(), Ok(id));
        assert_eq!("xyz".parse::<ObjectId>(), Err(BadObjectId));
        let json = serde_json::to_string(&id).expect("json");
        assert_eq!(serde_json::from_str::<ObjectId>(&json).expect("parse"), id);
    }
}
