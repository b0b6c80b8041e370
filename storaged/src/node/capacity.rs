//! `storage.capacity`: totals and reservations per disk class, for admission checks.

use super::Storage;
use crate::policy;
use bus::api::storage::{Capacity, ClassCapacity, DiskClass};

impl Storage {
    /// Capacity of healthy pools per class, and the largest namespace and volume possible now
    /// (bytes promised to operations in flight count as reserved).
    pub fn capacity(&self) -> Capacity {
        let views = self.views();
        let healthy: Vec<_> = views.iter().filter(|v| v.healthy).collect();
        let classes = [DiskClass::Ssd, DiskClass::Hdd]
            .into_iter()
            .map(|class| {
                let of: Vec<_> = healthy.iter().filter(|v| v.class == class).collect();
                let total: u64 = of.iter().map(|v| v.size).sum();
                let reserved: u64 = of.iter().map(|v| v.reserved.min(v.size)).sum();
                ClassCapacity {
                    class,
                    disks: u32::try_from(of.len()).unwrap_or(u32::MAX),
                    total,
                    reserved,
                    free: total - reserved,
                }
            })
            .collect();
        let zclass = policy::zdb_class(&views);
        let max_zdb = healthy
            .iter()
            .filter(|v| v.class == zclass && v.zdb_up)
            .map(|v| v.free())
            .max()
            .unwrap_or(0);
        let max_volume = healthy.iter().map(|v| v.free()).max().unwrap_or(0);
        Capacity {
            classes,
            max_zdb,
            max_volume,
        }
    }
}
