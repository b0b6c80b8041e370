//! Pipelining: many requests encoded into one buffer, sent together, then their replies
//! read in order. A long pipeline goes out in chunks of about [`CHUNK`] bytes, each chunk's
//! replies read before the next is sent: the server never has to hold more replies than a
//! chunk made while the client is still writing, so neither side can block the other.

use crate::codec::encode_command;

/// Request bytes sent before their replies are read.
pub const CHUNK: usize = 256 << 10;

/// A batch of requests; run it with the client's `pipeline` (replies in order).
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    buf: Vec<u8>,
    /// End offset in `buf` of each request.
    ends: Vec<usize>,
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Adds a request (command name first).
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> &mut Pipeline {
        encode_command(&mut self.buf, args);
        self.ends.push(self.buf.len());
        self
    }

    /// Adds `GET key` (read the reply with [`crate::reply::get`]).
    pub fn get(&mut self, key: &[u8]) -> &mut Pipeline {
        self.cmd(&[b"GET".as_slice(), key])
    }

    /// Adds `SET key value` (read the reply with [`crate::reply::set`]).
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> &mut Pipeline {
        self.cmd(&[b"SET".as_slice(), key, value])
    }

    /// Adds `DEL key` (read the reply with [`crate::reply::del`]).
    pub fn del(&mut self, key: &[u8]) -> &mut Pipeline {
        self.cmd(&[b"DEL".as_slice(), key])
    }

    /// Adds `EXISTS key`.
    pub fn exists(&mut self, key: &[u8]) -> &mut Pipeline {
        self.cmd(&[b"EXISTS".as_slice(), key])
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no request.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Removes every request, keeping the buffer for reuse.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// The chunks to send: bytes and how many replies they make.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = (&[u8], usize)> {
        let mut start = 0;
        let mut next = 0;
        std::iter::from_fn(move || {
            let first = next;
            while let Some(&end) = self.ends.get(next) {
                next += 1;
                if end - start >= CHUNK {
                    break;
                }
            }
            let end = *self.ends.get(next.checked_sub(1)?)?;
            if next == first {
                return None;
            }
            let bytes = self.buf.get(start..end)?;
            start = end;
            Some((bytes, next - first))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_request_once() {
        let mut p = Pipeline::new();
        assert_eq!(p.chunks().count(), 0);
        let big = vec![7u8; CHUNK / 3];
        for i in 0..10u8 {
            p.set(&[i], &big);
        }
        p.get(b"x");
        let chunks: Vec<(usize, usize)> = p.chunks().map(|(b, n)| (b.len(), n)).collect();
        assert_eq!(chunks.iter().map(|c| c.1).sum::<usize>(), 11);
        assert_eq!(chunks.iter().map(|c| c.0).sum::<usize>(), p.buf.len());
        assert!(
            chunks.iter().all(|c| c.0 < CHUNK + big.len() + 64),
            "{chunks:?}"
        );
        assert_eq!(chunks.len(), 4);
        // One request larger than a chunk goes alone.
        let mut p = Pipeline::new();
        p.set(b"k", &vec![0u8; CHUNK * 2]).get(b"k");
        let n: Vec<usize> = p.chunks().map(|c| c.1).collect();
        assert_eq!(n, [1, 1]);
    }
}
