//! The shape of an object: how it is cut into stripes and shards.

use serde::{Deserialize, Serialize};

/// Largest k + m: every shard of a stripe goes to a different node, and a farm of more than
/// 32 nodes per stripe gains nothing but metadata.
pub const MAX_SHARDS: usize = 32;
/// Largest stripe: with k = 1 a shard carries the whole sealed stripe, and a zdb value holds
/// at most 8 MiB.
pub const MAX_STRIPE: usize = 6 * 1024 * 1024;

/// How objects are encoded. Stored with each object, so a farm can change its defaults without
/// making old objects unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Data shards per stripe.
    pub k: u8,
    /// Parity shards per stripe: any m of the k + m shards can be lost.
    pub m: u8,
    /// Plain bytes per stripe (the last stripe of an object may be shorter).
    pub stripe: u32,
    /// zstd level (1..=19; negative levels are faster and compress less).
    pub zstd: i8,
}

impl Default for Params {
    /// 4+2 with 4 MiB stripes: 1 MiB shards, the size the Reed-Solomon benchmark measured
    /// fastest per byte; zstd level 1, which gives up little ratio for a much faster put.
    fn default() -> Self {
        Params {
            k: 4,
            m: 2,
            stripe: 4 * 1024 * 1024,
            zstd: 1,
        }
    }
}

/// A shape that cannot be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    /// k or m is zero, or k + m is too large.
    #[error("shape {k}+{m} is not supported (k >= 1, m >= 1, k + m <= {MAX_SHARDS})")]
    Shape {
        /// Data shards asked for.
        k: u8,
        /// Parity shards asked for.
        m: u8,
    },
    /// The stripe size is zero or larger than a zdb value can carry.
    #[error("stripe size {0} is not between 1 and {MAX_STRIPE} bytes")]
    Stripe(u32),
}

impl Params {
    /// Checks that the shape can be encoded.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let (k, m) = (usize::from(self.k), usize::from(self.m));
        if k == 0 || m == 0 || k + m > MAX_SHARDS {
            return Err(ParamsError::Shape {
                k: self.k,
                m: self.m,
            });
        }
        if self.stripe == 0 || self.stripe as usize > MAX_STRIPE {
            return Err(ParamsError::Stripe(self.stripe));
        }
        Ok(())
    }

    /// Shards per stripe.
    pub fn shards(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }

    /// Number of stripes of an object of `size` bytes. An empty object still has one (empty)
    /// stripe, so that its shards carry a tag that proves it is empty.
    pub fn stripes(&self, size: u64) -> u64 {
        size.div_ceil(u64::from(self.stripe)).max(1)
    }

    /// Plain length of stripe `index` of an object of `size` bytes.
    pub fn stripe_len(&self, size: u64, index: u64) -> usize {
        let start = index.saturating_mul(u64::from(self.stripe));
        let len = size.saturating_sub(start).min(u64::from(self.stripe));
        // At most `stripe`, which is a u32.
        usize::try_from(len).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_and_lengths() {
        let p = Params {
            stripe: 10,
            ..Params::default()
        };
        assert_eq!(p.stripes(0), 1);
        assert_eq!(p.stripe_len(0, 0), 0);
        assert_eq!(p.stripes(1), 1);
        assert_eq!(p.stripes(10), 1);
        assert_eq!(p.stripes(11), 2);
        assert_eq!(p.stripe_len(11, 1), 1);
        assert_eq!(p.stripe_len(11, 2), 0);
        assert_eq!(p.stripe_len(u64::MAX, u64::MAX), 0);
    }

    #[test]
    fn validate_refuses_bad_shapes() {
        assert!(Params::default().validate().is_ok());
        for (k, m) in [(0, 2), (4, 0), (30, 3)] {
            let p = Params {
                k,
                m,
                ..Params::default()
            };
            assert!(matches!(p.validate(), Err(ParamsError::Shape { .. })));
        }
        let p = Params {
            stripe: 0,
            ..Params::default()
        };
        assert_eq!(p.validate(), Err(ParamsError::Stripe(0)));
    }
}
