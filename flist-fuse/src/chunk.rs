//! Cutting file contents into blocks: fixed-size or content-defined (FastCDC 2020).
//!
//! The default (fixed 1 MiB) was chosen by measurement, see BENCHMARKS.md `## flist`.

use std::io::{self, Read};

/// The zdb value limit: no block may be larger.
pub const MAX_BLOCK: u32 = 8 * 1024 * 1024;

/// Chunking algorithm (its byte value is stored in the flist body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Chunking {
    /// Blocks of one size (the last one shorter).
    Fixed = 1,
    /// FastCDC 2020 content-defined boundaries.
    FastCdc = 2,
}

/// Chunking parameters. For fixed chunking `min == avg == max` is the block size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkParams {
    /// The algorithm.
    pub chunking: Chunking,
    /// Smallest block (but the last).
    pub min: u32,
    /// Target block size.
    pub avg: u32,
    /// Largest block.
    pub max: u32,
}

impl Default for ChunkParams {
    fn default() -> Self {
        ChunkParams::fixed(1024 * 1024)
    }
}

impl ChunkParams {
    /// Fixed blocks of `size` bytes.
    pub fn fixed(size: u32) -> Self {
        ChunkParams {
            chunking: Chunking::Fixed,
            min: size,
            avg: size,
            max: size,
        }
    }

    /// FastCDC with average `avg`, min `avg/4`, max `avg*4` (capped at 8 MiB).
    pub fn cdc(avg: u32) -> Self {
        ChunkParams {
            chunking: Chunking::FastCdc,
            min: (avg / 4).max(64),
            avg,
            max: avg.saturating_mul(4).min(MAX_BLOCK),
        }
    }

    /// Check the parameters are usable.
    pub fn check(&self) -> Result<(), String> {
        match self.chunking {
            Chunking::Fixed => {
                if self.max == 0
                    || self.max > MAX_BLOCK
                    || self.min != self.max
                    || self.avg != self.max
                {
                    return Err(format!("block size must be 1..={MAX_BLOCK}"));
                }
            }
            Chunking::FastCdc => {
                use fastcdc::v2020 as f;
                if !(f::MINIMUM_MIN..=f::MINIMUM_MAX).contains(&self.min)
                    || !(f::AVERAGE_MIN..=f::AVERAGE_MAX).contains(&self.avg)
                    || !(f::MAXIMUM_MIN..=MAX_BLOCK).contains(&self.max)
                    || self.min > self.avg
                    || self.avg > self.max
                {
                    return Err("invalid content-defined chunking sizes".into());
                }
            }
        }
        Ok(())
    }
}

/// Parse `fixed:SIZE` or `cdc:AVG` (sizes as [`nodeutil::size::parse_size`] reads them).
pub fn parse_chunking(s: &str) -> Result<ChunkParams, String> {
    let (kind, size) = s.split_once(':').unwrap_or((s, "1M"));
    let size = nodeutil::size::parse_size(size)
        .map_err(|e| e.to_string())
        .and_then(|n| u32::try_from(n).map_err(|_| format!("size in {s:?} is too large")))?;
    let p = match kind {
        "fixed" => ChunkParams::fixed(size),
        "cdc" | "fastcdc" => ChunkParams::cdc(size),
        _ => return Err(format!("unknown chunking {kind:?} (fixed:SIZE or cdc:AVG)")),
    };
    p.check()?;
    Ok(p)
}

/// Read `r` to its end, calling `f` with each chunk in order.
pub fn for_each_chunk<R: Read>(
    mut r: R,
    p: &ChunkParams,
    mut f: impl FnMut(Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    p.check().map_err(io::Error::other)?;
    match p.chunking {
        Chunking::Fixed => loop {
            let mut buf = vec![0u8; p.max as usize];
            let mut n = 0;
            while n < buf.len() {
                match r.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            let last = n < p.max as usize;
            f(buf)?;
            if last {
                return Ok(());
            }
        },
        Chunking::FastCdc => {
            for c in fastcdc::v2020::StreamCDC::new(r, p.min, p.avg, p.max) {
                let c = c.map_err(|e| match e {
                    fastcdc::v2020::Error::IoError(e) => e,
                    e => io::Error::other(e.to_string()),
                })?;
                f(c.data)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(data: &[u8], p: ChunkParams) -> Vec<usize> {
        let mut v = Vec::new();
        for_each_chunk(data, &p, |c| {
            v.push(c.len());
            Ok(())
        })
        .expect("chunk");
        v
    }

    #[test]
    fn fixed_and_cdc() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert_eq!(cut(&data, ChunkParams::fixed(100_000)), vec![100_000; 3]);
        assert_eq!(cut(&data[..5], ChunkParams::fixed(100_000)), vec![5]);
        assert!(cut(&[], ChunkParams::fixed(10)).is_empty());
        let c = cut(&data, ChunkParams::cdc(16 * 1024));
        assert_eq!(c.iter().sum::<usize>(), data.len());
        assert!(parse_chunking("cdc:1M").is_ok());
        assert!(parse_chunking("fixed:16M").is_err());
        assert_eq!(
            parse_chunking("fixed:64k").ok(),
            Some(ChunkParams::fixed(64 << 10))
        );
        assert!(parse_chunking("fixed:8G").is_err());
    }
}
