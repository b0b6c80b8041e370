//! The harness's own load generators, through zdb-client: pipelined SETs of many small
//! keys, and 1 MiB values over several connections.

use std::thread;
use std::time::{Duration, Instant};

use zdb_client::{Client, Config, Pipeline, Value};

use super::R;
use super::opts::MIB;

/// A connection to a server on 127.0.0.1 (zdb or redis-server: both speak RESP).
pub(crate) fn connect(port: u16) -> R<Client> {
    let cfg = Config::tcp(format!("127.0.0.1:{port}"))
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(120));
    Ok(Client::connect(cfg)?)
}

/// Pipelined SETs per round trip when loading.
const BATCH: usize = 4096;

/// Send `n` SETs of `key_of(i)` (i in `range`) with value `val`, pipelined in batches of
/// [`BATCH`] (zdb-client sends each in chunks and reads their replies). Returns error
/// replies seen.
pub(crate) fn pipelined_sets(
    port: u16,
    range: std::ops::Range<u64>,
    key_of: fn(u64) -> Vec<u8>,
    val: &'static [u8],
) -> R<u64> {
    let mut c = connect(port)?;
    let mut p = Pipeline::new();
    let mut errors = 0;
    let mut next = range.start;
    while next < range.end {
        p.clear();
        let end = range.end.min(next + BATCH as u64);
        for i in next..end {
            p.set(&key_of(i), val);
        }
        next = end;
        for reply in c.pipeline(&p)? {
            if let Value::Error(e) = reply {
                if errors == 0 {
                    eprintln!("  error reply: {e}");
                }
                errors += 1;
            }
        }
    }
    Ok(errors)
}

/// Load keys `0..n` over `conns` connections.
pub(crate) fn load(
    port: u16,
    n: u64,
    conns: u64,
    key_of: fn(u64) -> Vec<u8>,
    val: &'static [u8],
) -> R<u64> {
    let hs: Vec<_> = (0..conns)
        .map(|c| {
            let r = n * c / conns..n * (c + 1) / conns;
            thread::spawn(move || pipelined_sets(port, r, key_of, val))
        })
        .collect();
    let mut errs = 0;
    for h in hs {
        errs += h.join().map_err(|_| "loader panicked")??;
    }
    Ok(errs)
}

/// redis-benchmark's key for `-r`: `key:` + 12 digits.
pub(crate) fn rb_key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}
/// A 16-byte key.
pub(crate) fn key16(i: u64) -> Vec<u8> {
    format!("k{i:015}").into_bytes()
}

pub(crate) static VAL100: [u8; 100] = [b'x'; 100];

/// Writes `bytes` of distinct 1 MiB values to zdb over 4 connections; returns MiB/s.
pub(crate) fn zdb_large(port: u16, bytes: u64, run: usize) -> R<f64> {
    const CONNS: u64 = 4;
    let count = bytes / MIB;
    let t = Instant::now();
    let hs: Vec<_> = (0..CONNS)
        .map(|c| {
            thread::spawn(move || -> R<()> {
                let mut conn = connect(port)?;
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (c + 1) ^ ((run as u64) << 32);
                let mut val: Vec<u8> = (0..MIB / 8)
                    .flat_map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed.to_le_bytes()
                    })
                    .collect();
                for i in (c * count / CONNS)..((c + 1) * count / CONNS) {
                    let key = format!("big:{run:03}:{i:08}");
                    // Stamp every 4 KiB block so that no two values (or blocks) are equal.
                    for blk in val.chunks_mut(4096) {
                        if let Some(stamp) = blk.get_mut(..8) {
                            stamp.copy_from_slice(&(i ^ ((run as u64) << 40)).to_le_bytes());
                        }
                    }
                    conn.set(key.as_bytes(), &val)
                        .map_err(|e| format!("SET big value: {e}"))?;
                }
                Ok(())
            })
        })
        .collect();
    for h in hs {
        h.join().map_err(|_| "large writer panicked")??;
    }
    Ok(count as f64 / t.elapsed().as_secs_f64())
}
