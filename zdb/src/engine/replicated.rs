//! Follower side of replication in the engine: a data entry streamed from the leader is
//! applied as the write that made it, with the leader's timestamp.

use super::namespace::Namespace;
use super::pairs::Rotation;
use super::{Mode, OpError};

impl Namespace {
    /// Follower: apply one data entry streamed from the leader (SET or tombstone), with the
    /// leader's timestamp. The leader already applied worm and maxsize; sequential ids come
    /// out the same because the leader's operations are replayed in order.
    pub fn apply_replicated(
        &mut self,
        key: &[u8],
        value: &[u8],
        deleted: bool,
        ts: u32,
    ) -> Result<Option<Rotation>, OpError> {
        self.replaying = true;
        let result = self.apply_replicated_inner(key, value, deleted, ts);
        self.replaying = false;
        let rotation = self.take_rotation();
        result.map(|()| rotation)
    }

    fn apply_replicated_inner(
        &mut self,
        key: &[u8],
        value: &[u8],
        deleted: bool,
        ts: u32,
    ) -> Result<(), OpError> {
        if deleted {
            return match self.del(key, ts) {
                Err(OpError::KeyNotFound) => Ok(()),
                other => other,
            };
        }
        let key = match self.mode {
            Mode::Seq => {
                let id = key
                    .try_into()
                    .map(u64::from_le_bytes)
                    .map_err(|_| OpError::SeqUpdateOnly)?;
                if id == self.next_entry {
                    &[][..]
                } else if id > self.next_entry {
                    return Err(OpError::SeqUpdateOnly);
                } else {
                    key
                }
            }
            Mode::User => key,
        };
        match self.set(key, value, ts) {
            // Already applied before a restart of either side.
            Ok(_) | Err(OpError::SeqUpdateOnly) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
