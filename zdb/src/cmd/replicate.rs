//! Leader side of replication: `REPLICATE <namespace> <fileid> <offset> <prev-offset> <prev-crc>`
//! (admin) turns the connection into a stream of the namespace's data entries from that
//! position on, tombstones included, then follows new appends as they reach the files.
//!
//! Frames: a header `*3 ["replica-v1", descriptor bytes, :mode]`, then one
//! `*7 [:fileid, :offset, key, :flags, :timestamp, value, :crc]` per entry, and `+PING` every
//! second while idle. The follower names the last entry it applied (offset and CRC); if that
//! entry is no longer where it was (the file was compacted since), streaming restarts at the
//! start of that file, which re-sends live entries the follower already has: harmless, as
//! applying them again changes nothing.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;

use super::Session;
use super::{Output, need_admin};
use crate::engine::RawError;
use crate::format::data;
use crate::protocol::{Args, Reply, encode_bulk};
use crate::shared::Shared;

fn number<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

pub(super) async fn stream<W: AsyncWrite + Unpin>(
    s: &Session,
    sh: &Shared,
    args: &Args,
    out: &mut Output<W>,
) -> std::io::Result<()> {
    if let Err(e) = need_admin(s) {
        out.reply(e);
        return Ok(());
    }
    let parsed = (args.len() == 6).then(|| {
        Some((
            number::<u32>(&args[2])?,
            number::<u64>(&args[3])?,
            number::<u64>(&args[4])?,
            number::<u32>(&args[5])?,
        ))
    });
    let Some(Some((mut file, mut off, prev_off, prev_crc))) = parsed else {
        out.reply(Reply::err("Invalid arguments"));
        return Ok(());
    };
    let Some(handle) = sh.get(&args[1]) else {
        out.reply(Reply::err("Namespace not found"));
        return Ok(());
    };
    {
        let ns = handle.ns.read();
        let resume_ok = off > 0
            && ns.data_entry(file, prev_off).is_ok_and(|e| {
                e.crc == prev_crc
                    && prev_off + (data::ENTRY_HEADER_LEN + e.key.len() + e.payload.len()) as u64
                        == off
            });
        if !resume_ok {
            off = data::HEADER_LEN as u64;
            if ns.data_entry(file, off).is_err() && file > ns.current_position().0 {
                file = 0;
            }
        }
        Reply::Array(vec![
            Reply::bulk("replica-v1"),
            Reply::bulk(ns.descriptor().encode()),
            Reply::Int(i64::from(ns.mode().as_byte())),
        ])
        .encode(&mut out.buf);
    }
    out.flush().await?;
    let mut idle_since = Instant::now();
    loop {
        if handle.removed.load(Ordering::SeqCst) {
            out.reply(Reply::err("Namespace removed"));
            return out.flush().await;
        }
        let next = {
            let ns = handle.ns.read();
            match ns.data_entry(file, off) {
                Ok(e) => Some(e),
                // End of a closed file (or a hole left by a crash): go on with the next one.
                Err(RawError::Eof | RawError::Invalid) if file < ns.current_position().0 => {
                    file += 1;
                    off = data::HEADER_LEN as u64;
                    continue;
                }
                Err(_) => None,
            }
        };
        match next {
            Some(e) => {
                let len = (data::ENTRY_HEADER_LEN + e.key.len() + e.payload.len()) as u64;
                Reply::ArrayHeader(7).encode(&mut out.buf);
                Reply::Int(i64::from(file)).encode(&mut out.buf);
                Reply::Int(off as i64).encode(&mut out.buf);
                encode_bulk(&mut out.buf, &e.key);
                Reply::Int(i64::from(e.flags)).encode(&mut out.buf);
                Reply::Int(i64::from(e.timestamp)).encode(&mut out.buf);
                encode_bulk(&mut out.buf, &e.payload);
                Reply::Int(i64::from(e.crc)).encode(&mut out.buf);
                out.flush_if_big().await?;
                off += len;
                idle_since = Instant::now();
            }
            None => {
                if idle_since.elapsed() >= Duration::from_secs(1) {
                    out.reply(Reply::Status("PING".into()));
                    idle_since = Instant::now();
                }
                out.flush().await?;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
