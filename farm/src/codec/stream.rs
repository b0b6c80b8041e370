//! An object as a sequence of stripes: the input is read one stripe at a time, each into a
//! buffer of its own laid out for sealing in place ([`crate::codec::seal::PREFIX`] spare bytes,
//! the plain bytes, room for the tag and the erasure padding), so a stripe's bytes are copied
//! once, from the input, before they become shards. Memory is bounded by how many stripes the
//! caller keeps at once.

use crate::codec::seal::PREFIX;
use std::io::{self, Read};

/// Cuts a reader into stripes of `stripe` bytes; the last one may be shorter. An empty input
/// is one empty stripe (see [`crate::codec::Params::stripes`]).
pub struct StripeReader<R> {
    inner: R,
    stripe: usize,
    reserve: usize,
    next: u64,
    done: bool,
    total: u64,
}

impl<R: Read> StripeReader<R> {
    /// Reads `inner` in stripes of `stripe` bytes, each buffer with `reserve` bytes of spare
    /// capacity after the stripe (see [`crate::codec::stripe::StripeCodec::reserve`]).
    pub fn new(inner: R, stripe: usize, reserve: usize) -> Self {
        StripeReader {
            inner,
            stripe,
            reserve,
            next: 0,
            done: false,
            total: 0,
        }
    }

    /// The next stripe's index and buffer ([`PREFIX`] spare bytes, then the plain bytes), or
    /// `None` after the last.
    pub fn next_stripe(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(PREFIX + self.stripe + self.reserve);
        buf.resize(PREFIX, 0);
        let n = (&mut self.inner)
            .take(self.stripe as u64)
            .read_to_end(&mut buf)?;
        if n < self.stripe {
            self.done = true;
            if n == 0 && self.next > 0 {
                return Ok(None);
            }
        }
        let index = self.next;
        self.next += 1;
        self.total += n as u64;
        Ok(Some((index, buf)))
    }

    /// Bytes read so far.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Params;

    fn stripes(len: usize, stripe: usize) -> Vec<(u64, usize)> {
        let data = vec![1u8; len];
        let mut r = StripeReader::new(&data[..], stripe, 17);
        let mut out = vec![];
        while let Some((i, s)) = r.next_stripe().expect("read") {
            assert!(s.capacity() >= s.len() + 17, "room for sealing in place");
            assert!(s[PREFIX..].iter().all(|&b| b == 1));
            out.push((i, s.len() - PREFIX));
        }
        assert_eq!(r.total(), len as u64);
        out
    }

    #[test]
    fn cuts_like_params_counts() {
        assert_eq!(stripes(0, 10), vec![(0, 0)]);
        assert_eq!(stripes(1, 10), vec![(0, 1)]);
        assert_eq!(stripes(9, 10), vec![(0, 9)]);
        assert_eq!(stripes(10, 10), vec![(0, 10)]);
        assert_eq!(stripes(11, 10), vec![(0, 10), (1, 1)]);
        let p = Params {
            stripe: 10,
            ..Params::default()
        };
        for len in [0u64, 1, 9, 10, 11, 25] {
            let got = stripes(len as usize, 10);
            assert_eq!(got.len() as u64, p.stripes(len));
            for (i, l) in got {
                assert_eq!(l, p.stripe_len(len, i));
            }
        }
    }
}
