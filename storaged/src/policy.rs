//! Placement policy: pure decisions over a snapshot of the pools, no side effects. The node code
//! carries the choice out.
//!
//! * zdb servers run on HDD pools; on a node without HDDs, on SSD pools.
//! * A namespace goes to a zdb host with unreserved room (sum of maxsizes never above the disk),
//!   best fit (the fullest disk that still fits), so large holes stay available.
//! * Volumes prefer SSD, then HDD, best fit in each class.
//! * The node's state volume goes to the SSD with most room, else the HDD with most room: a
//!   node with only HDDs still comes online.

use bus::api::storage::DiskClass;

/// What the policy sees of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolView {
    /// Disk name.
    pub disk: String,
    /// Class.
    pub class: DiskClass,
    /// Size in bytes.
    pub size: u64,
    /// Reserved bytes.
    pub reserved: u64,
    /// Mounted and passing its health probe.
    pub healthy: bool,
    /// Its zdb server answers.
    pub zdb_up: bool,
}

impl PoolView {
    /// Unreserved bytes.
    pub fn free(&self) -> u64 {
        self.size.saturating_sub(self.reserved)
    }
}

/// A placement decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Put it on this disk.
    Disk(String),
    /// No eligible disk has the room; the largest free space among eligible disks.
    NoRoom {
        /// Largest unreserved room on an eligible disk.
        largest_free: u64,
    },
    /// No eligible disk at all.
    NoDisk,
}

/// The class whose pools host zdb servers: HDD when the node has any HDD pool, else SSD.
pub fn zdb_class(pools: &[PoolView]) -> DiskClass {
    if pools.iter().any(|p| p.class == DiskClass::Hdd) {
        DiskClass::Hdd
    } else {
        DiskClass::Ssd
    }
}

/// Whether the pool on `disk` should run a zdb server.
pub fn hosts_zdb(pools: &[PoolView], disk: &str) -> bool {
    let class = zdb_class(pools);
    pools.iter().any(|p| p.disk == disk && p.class == class)
}

fn best_fit<'a>(eligible: impl Iterator<Item = &'a PoolView>, size: u64) -> Choice {
    let eligible: Vec<&PoolView> = eligible.collect();
    if eligible.is_empty() {
        return Choice::NoDisk;
    }
    eligible
        .iter()
        .filter(|p| p.free() >= size)
        .min_by(|a, b| a.free().cmp(&b.free()).then_with(|| a.disk.cmp(&b.disk)))
        .map(|p| Choice::Disk(p.disk.clone()))
        .unwrap_or_else(|| Choice::NoRoom {
            largest_free: eligible.iter().map(|p| p.free()).max().unwrap_or(0),
        })
}

/// Where a new namespace of `size` bytes goes.
pub fn place_namespace(pools: &[PoolView], size: u64) -> Choice {
    let class = zdb_class(pools);
    best_fit(
        pools
            .iter()
            .filter(|p| p.class == class && p.healthy && p.zdb_up),
        size,
    )
}

/// Where a new volume of `size` bytes goes.
pub fn place_volume(pools: &[PoolView], size: u64) -> Choice {
    let ssd = best_fit(
        pools
            .iter()
            .filter(|p| p.healthy && p.class == DiskClass::Ssd),
        size,
    );
    if let Choice::Disk(_) = ssd {
        return ssd;
    }
    match best_fit(
        pools
            .iter()
            .filter(|p| p.healthy && p.class == DiskClass::Hdd),
        size,
    ) {
        Choice::Disk(d) => Choice::Disk(d),
        Choice::NoDisk => ssd,
        Choice::NoRoom { largest_free } => Choice::NoRoom {
            largest_free: match ssd {
                Choice::NoRoom { largest_free: s } => s.max(largest_free),
                _ => largest_free,
            },
        },
    }
}

/// Where the node's state volume goes: the best disk available (SSD first, most room).
pub fn place_state(pools: &[PoolView], size: u64) -> Choice {
    for class in [DiskClass::Ssd, DiskClass::Hdd] {
        if let Some(p) = pools
            .iter()
            .filter(|p| p.healthy && p.class == class && p.free() >= size)
            .max_by(|a, b| a.free().cmp(&b.free()).then_with(|| b.disk.cmp(&a.disk)))
        {
            return Choice::Disk(p.disk.clone());
        }
    }
    if pools.iter().any(|p| p.healthy) {
        Choice::NoRoom {
            largest_free: pools
                .iter()
                .filter(|p| p.healthy)
                .map(|p| p.free())
                .max()
                .unwrap_or(0),
        }
    } else {
        Choice::NoDisk
    }
}

/// Whether a reservation on `pool` can change from `old` to `new` bytes.
pub fn can_resize(pool: &PoolView, old: u64, new: u64) -> bool {
    pool.reserved.saturating_sub(old).saturating_add(new) <= pool.size
}

/// zdb `--datasize` for a pool of `size` bytes: 1/64 of the pool in whole MiB, between 1 MiB
/// and zdb's 256 MiB default, so a small pool does not hold a few huge half-empty files.
pub fn zdb_datasize(size: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    ((size / 64) / MIB).clamp(1, 256) * MIB
}

#[cfg(test)]
#[path = "policy_test.rs"]
mod test;
