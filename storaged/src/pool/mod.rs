//! Pools: one btrfs filesystem per disk, mounted at `<root>/pools/<disk>`, quotas on.
//!
//! btrfs rather than ext4/xfs: subvolumes give volumes and the zdb folder their own trees,
//! qgroups enforce volume sizes without a loop file per volume, `chattr +C` turns copy-on-write
//! off where zdb appends, and the label carries the node identity readable without mounting.

mod adopt;
mod health;

pub use adopt::{Outcome, adopt, label};
pub use health::check;

use crate::state::PoolRecord;
use std::path::PathBuf;

/// A mounted, adopted pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Mount point.
    pub mountpoint: PathBuf,
    /// Its persisted record.
    pub record: PoolRecord,
}

impl Pool {
    /// Saves the record atomically.
    pub fn save(&self) -> crate::Result<()> {
        self.record
            .save(&self.mountpoint)
            .map_err(crate::Error::state(PoolRecord::path(&self.mountpoint)))
    }
}
