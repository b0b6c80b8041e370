//! The eviction policy: least recently used files go first, down to a low-water mark.

use std::path::PathBuf;

/// One cache file as seen by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The cache file.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Last use (mtime), seconds since the epoch.
    pub last_use: i64,
}

/// Eviction policy: which entries to delete (indices into `entries`) so that the total is at
/// most `low_water`, least recently used first; nothing when the total is within `max`.
pub fn plan_eviction(entries: &[Entry], max: u64, low_water: u64) -> Vec<usize> {
    let total: u64 = entries.iter().map(|e| e.size).sum();
    if total <= max {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|a, b| {
        entries[*a]
            .last_use
            .cmp(&entries[*b].last_use)
            .then_with(|| entries[*a].path.cmp(&entries[*b].path))
    });
    let mut left = total;
    let mut out = Vec::new();
    for k in order {
        if left <= low_water {
            break;
        }
        left -= entries[k].size;
        out.push(k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(n: &str, size: u64, t: i64) -> Entry {
        Entry {
            path: PathBuf::from(n),
            size,
            last_use: t,
        }
    }

    #[test]
    fn policy_evicts_lru_down_to_low_water() {
        let v = vec![e("a", 40, 5), e("b", 40, 1), e("c", 40, 3)];
        assert!(plan_eviction(&v, 120, 100).is_empty());
        // 120 > 100: drop the oldest (b) then c until <= 50.
        assert_eq!(plan_eviction(&v, 100, 90), vec![1]);
        assert_eq!(plan_eviction(&v, 100, 50), vec![1, 2]);
        assert_eq!(plan_eviction(&v, 10, 0), vec![1, 2, 0]);
    }
}
