//! SCAN, SCANX, RSCAN, KSCAN.

use super::Session;
use super::{either, readable};
use crate::engine::Mode;
use crate::protocol::{Args, Reply};

/// SCAN / SCANX / RSCAN [cursor]: arguments after the cursor are ignored, as 0-db does.
pub(super) fn scan(s: &Session, args: &Args, reverse: bool) -> Reply {
    either((|| {
        let ns = s.ns.ns.read();
        readable(&ns)?;
        let cursor = args.get(1);
        let page = if reverse {
            ns.rscan(cursor)
        } else {
            ns.scan(cursor)
        }
        .map_err(|_| Reply::err("Invalid key format"))?;
        if page.items.is_empty() {
            return Err(Reply::err("No more data"));
        }
        let items = page
            .items
            .into_iter()
            .map(|i| {
                Reply::Array(vec![
                    Reply::bulk(i.key),
                    Reply::Int(i64::from(i.size)),
                    Reply::Int(i64::from(i.timestamp)),
                ])
            })
            .collect();
        Ok(Reply::Array(vec![
            Reply::bulk(page.cursor),
            Reply::Array(items),
        ]))
    })())
}

pub(super) fn kscan(s: &Session, args: &Args) -> Reply {
    either((|| {
        if args.len() != 2 {
            return Err(Reply::err("Unexpected arguments"));
        }
        let ns = s.ns.ns.read();
        readable(&ns)?;
        if ns.mode() == Mode::Seq {
            return Err(Reply::err(
                "Index running mode doesn't support this feature",
            ));
        }
        let keys = ns.kscan(&args[1]);
        if keys.is_empty() {
            return Err(Reply::err("No keys match"));
        }
        Ok(Reply::Array(vec![
            Reply::bulk("0"),
            Reply::Array(keys.into_iter().map(Reply::bulk).collect()),
        ]))
    })())
}
