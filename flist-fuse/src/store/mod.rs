//! Content-addressed block stores.
//!
//! URLs: `dir://PATH`, `zdb://[user:password@]host:port/namespace`, `http(s)://...`
//! (read-only, any static server over a dir store). A spec may be prefixed with an id
//! prefix range, `00-7f=URL`; several specs form a [`route::RouteStore`] that shards by the
//! first byte of the id and replicates to every store whose range matches.

pub mod dir;
pub mod http;
pub mod route;
pub mod zdb;

use std::sync::Arc;

pub use crate::error::StoreError;
use crate::format::{Hash, hex};

/// A block store. Implementations are safe to share between threads.
pub trait Store: Send + Sync {
    /// Fetch a block's stored bytes.
    fn get(&self, id: &Hash) -> Result<Vec<u8>, StoreError>;
    /// Store a block durably; storing an existing block is a no-op.
    fn put(&self, id: &Hash, data: &[u8]) -> Result<(), StoreError>;
    /// Whether the store holds the block.
    fn exists(&self, id: &Hash) -> Result<bool, StoreError>;
    /// Store many blocks; all are durable when this returns `Ok`.
    fn put_batch(&self, blocks: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        for (id, d) in blocks {
            self.put(id, d)?;
        }
        Ok(())
    }
    /// Fetch many blocks.
    fn get_batch(&self, ids: &[Hash]) -> Vec<Result<Vec<u8>, StoreError>> {
        ids.iter().map(|id| self.get(id)).collect()
    }
    /// Ask about many blocks.
    fn exists_batch(&self, ids: &[Hash]) -> Result<Vec<bool>, StoreError> {
        ids.iter().map(|id| self.exists(id)).collect()
    }
    /// The store's URL (passwords removed).
    fn url(&self) -> String;
}

/// The `user:password@` part of a URL (up to the last `@` before the path), if it has one.
pub fn userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let at = authority.rfind('@')?;
    authority.get(..=at)
}

/// Remove `user:password@` from a URL.
pub fn redact(url: &str) -> String {
    match userinfo(url) {
        Some(info) => url.replacen(info, "", 1),
        None => url.to_string(),
    }
}

/// Remove the `user:password@` of `url` wherever it appears in `text` (an error message of a
/// library that quotes the URL it was given), and the password itself when it is long enough
/// not to be mistaken for other words.
pub fn redact_in(text: &str, url: &str) -> String {
    let Some(info) = userinfo(url) else {
        return text.to_string();
    };
    let out = text.replace(info, "");
    let password = info
        .trim_end_matches('@')
        .split_once(':')
        .map_or("", |(_, p)| p);
    if password.len() >= 4 {
        out.replace(password, "<redacted>")
    } else {
        out
    }
}

/// Open one store from its URL (without a range prefix).
pub fn open_url(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(p) = url.strip_prefix("dir://") {
        return Ok(Arc::new(dir::DirStore::open(p)?));
    }
    if url.starts_with("zdb://") {
        return Ok(Arc::new(zdb::ZdbStore::open(url)?));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Arc::new(http::HttpStore::open(url)?));
    }
    Err(StoreError::Url {
        url: redact(url),
        msg: "unknown scheme (dir://, zdb://, http://, https://)".into(),
    })
}

/// Parse `[LO-HI=]URL` into a prefix range and a URL.
pub fn parse_spec(spec: &str) -> Result<(u8, u8, &str), StoreError> {
    if let Some((r, url)) = spec.split_once('=')
        && !r.contains("://")
        && let Some((lo, hi)) = r.split_once('-')
    {
        let p = |s: &str| u8::from_str_radix(s, 16);
        return match (p(lo), p(hi)) {
            (Ok(lo), Ok(hi)) if lo <= hi => Ok((lo, hi, url)),
            _ => Err(StoreError::Url {
                url: redact(spec),
                msg: "bad range, expected e.g. 00-7f=URL".into(),
            }),
        };
    }
    Ok((0, 0xff, spec))
}

/// How a store checks stored bytes against a block id (a [`crate::codec::BlockCodec`]'s).
pub type Check = Arc<dyn Fn(&Hash, &[u8]) -> Result<(), StoreError> + Send + Sync>;

/// Open the store described by one or more specs (for writing our blocks).
pub fn open(specs: &[String]) -> Result<Arc<dyn Store>, StoreError> {
    open_checked(specs, Arc::new(crate::codec::flist::check))
}

/// Open the store described by one or more specs; routes check replicas with `check`
/// (blake3 for our blocks, BLAKE2b for rfs blocks).
pub fn open_checked(specs: &[String], check: Check) -> Result<Arc<dyn Store>, StoreError> {
    match specs {
        [] => Err(StoreError::Url {
            url: String::new(),
            msg: "no store given".into(),
        }),
        [one] if parse_spec(one)?.0 == 0 && parse_spec(one)?.1 == 0xff => {
            open_url(parse_spec(one)?.2)
        }
        many => {
            let mut routes = Vec::new();
            for s in many {
                let (lo, hi, url) = parse_spec(s)?;
                routes.push((lo, hi, open_url(url)?));
            }
            Ok(Arc::new(route::RouteStore::with_check(routes, check)))
        }
    }
}

/// Hex file name of a block.
pub fn block_name(id: &Hash) -> String {
    hex(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(redact("zdb://u:p@h:1/ns"), "zdb://h:1/ns");
        assert_eq!(redact("dir:///a@b/c"), "dir:///a@b/c");
        assert_eq!(
            redact_in("GET http://u:pw@h/x failed", "http://u:pw@h"),
            "GET http://h/x failed"
        );
        assert_eq!(redact_in("any text", "dir:///s"), "any text");
        assert_eq!(redact("zdb://u:p@ss@h:1/ns"), "zdb://h:1/ns");
        assert_eq!(
            redact_in("auth secret1 refused", "zdb://u:secret1@h/ns"),
            "auth <redacted> refused"
        );
        assert_eq!(
            parse_spec("00-7f=dir:///x").ok(),
            Some((0, 0x7f, "dir:///x"))
        );
        assert_eq!(parse_spec("dir:///x=y").ok(), Some((0, 0xff, "dir:///x=y")));
        assert!(parse_spec("80-7f=dir:///x").is_err());
    }
}
