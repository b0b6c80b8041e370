//! An object as a sequence of stripes: the input is read one stripe at a time into one reused
//! buffer, so encoding an object of any size holds one stripe of plain bytes (and its shards)
//! at a time.

use std::io::{self, Read};

/// Cuts a reader into stripes of `stripe` bytes; the last one may be shorter. An empty input
/// is one empty stripe (see [`crate::codec::Params::stripes`]).
pub struct StripeReader<R> {
    inner: R,
    buf: Vec<u8>,
    stripe: usize,
    next: u64,
    done: bool,
    total: u64,
}

impl<R: Read> StripeReader<R> {
    /// Reads `inner` in stripes of `stripe` bytes.
    pub fn new(inner: R, stripe: usize) -> Self {
        StripeReader {
            inner,
            buf: Vec::with_capacity(stripe),
            stripe,
            next: 0,
            done: false,
            total: 0,
        }
    }

    /// The next stripe and its index, or `None` after the last.
    pub fn next_stripe(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        if self.done {
            return Ok(None);
        }
        self.buf.clear();
        let n = (&mut self.inner)
            .take(self.stripe as u64)
            .read_to_end(&mut self.buf)?;
        if n < self.stripe {
            self.done = true;
            if n == 0 && self.next > 0 {
                return Ok(None);
            }
        }
        let index = self.next;
        self.next += 1;
        self.total += n as u64;
        Ok(Some((index, &self.buf)))
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
        let mut r = StripeReader::new(&data[..], stripe);
        let mut out = vec![];
        while let Some((i, s)) = r.next_stripe().expect("read") {
            out.push((i, s.len()));
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
