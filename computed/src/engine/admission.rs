//! Admission: whether a new container fits. Pure policy over a snapshot of the machine and of
//! what the other containers hold. Memory is reserved (the sum of limits stays within the
//! machine's memory minus what the node keeps for itself); CPU is a quota, not reserved.

use crate::error::{Error, Result};

/// What admission looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Physical memory.
    pub memory_total: u64,
    /// Kept for the node's own daemons.
    pub memory_system: u64,
    /// Sum of the memory limits of the other containers (existing and being created).
    pub memory_others: u64,
}

impl Snapshot {
    /// Memory still free for a new container.
    pub fn memory_free(&self) -> u64 {
        self.memory_total
            .saturating_sub(self.memory_system)
            .saturating_sub(self.memory_others)
    }
}

/// Admits a container whose memory limit is `memory`, or says why not.
pub fn admit(s: &Snapshot, memory: u64) -> Result<()> {
    if memory > s.memory_free() {
        return Err(Error::NoCapacity(format!(
            "{memory} bytes of memory asked, {} free for containers",
            s.memory_free()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn memory_is_reserved_up_to_what_the_node_does_not_keep() {
        let s = Snapshot {
            memory_total: 8 * GIB,
            memory_system: GIB,
            memory_others: 3 * GIB,
        };
        assert_eq!(s.memory_free(), 4 * GIB);
        assert!(admit(&s, 4 * GIB).is_ok());
        let e = admit(&s, 4 * GIB + 1).unwrap_err();
        assert!(matches!(e, Error::NoCapacity(_)), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "{} bytes of memory asked, {} free for containers",
                4 * GIB + 1,
                4 * GIB
            )
        );
    }

    #[test]
    fn an_overcommitted_or_tiny_machine_admits_nothing_and_does_not_overflow() {
        let s = Snapshot {
            memory_total: GIB,
            memory_system: 2 * GIB,
            memory_others: u64::MAX,
        };
        assert_eq!(s.memory_free(), 0);
        assert!(admit(&s, 1).is_err());
        assert!(admit(&s, 0).is_ok());
    }
}
