//! INDEX DIRTY [RESET] and DATA RAW: introspection for incremental backup tools.

use super::Session;
use super::{either, need_admin};
use crate::engine::RawError;
use crate::protocol::{Args, Reply};

pub(super) fn index(s: &Session, args: &Args) -> Reply {
    either((|| {
        need_admin(s)?;
        let sub = args.get(1).ok_or_else(|| Reply::err("Missing arguments"))?;
        if !sub.eq_ignore_ascii_case(b"DIRTY") {
            return Err(Reply::err("Unknown INDEX subcommand"));
        }
        match args.get(2) {
            None => {
                let dirty = s.ns.ns.read().dirty();
                Ok(Reply::Array(
                    dirty
                        .into_iter()
                        .map(|d| Reply::Int(i64::from(d)))
                        .collect(),
                ))
            }
            Some(r) if r.eq_ignore_ascii_case(b"RESET") && args.len() == 3 => {
                s.ns.ns.write().reset_dirty();
                Ok(Reply::ok())
            }
            Some(_) => Err(Reply::err("Unknown INDEX DIRTY subcommand")),
        }
    })())
}

fn number<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

pub(super) fn data(s: &Session, args: &Args) -> Reply {
    either((|| {
        need_admin(s)?;
        let sub = args.get(1).ok_or_else(|| Reply::err("Missing arguments"))?;
        if !sub.eq_ignore_ascii_case(b"RAW") {
            return Err(Reply::err("Unknown DATA subcommand"));
        }
        if args.len() != 4 {
            return Err(Reply::err("Missing arguments"));
        }
        let (Some(file), Some(off)) = (number::<u32>(&args[2]), number::<u64>(&args[3])) else {
            return Err(Reply::err("Invalid Request"));
        };
        let raw = s.ns.ns.read().data_raw(file, off).map_err(|e| match e {
            RawError::Eof => Reply::err("EOF"),
            RawError::Invalid => Reply::err("Unexpected Internal Error"),
        })?;
        Ok(Reply::Array(vec![
            Reply::bulk(raw.key),
            Reply::Int(i64::from(raw.previous)),
            Reply::bulk(format!("0x{:08x}", raw.crc)),
            Reply::Int(i64::from(raw.flags)),
            Reply::Int(i64::from(raw.timestamp)),
            Reply::bulk(raw.payload),
        ]))
    })())
}
