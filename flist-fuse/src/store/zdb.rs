//! `zdb://[user:password@]host:port/namespace`: a 0-db compatible server, user-mode
//! namespace, the 32-byte block id is the key.
//!
//! Through the shared `zdb-client`: replies are bounded (a store that answers a huge length,
//! a deep array or an endless line gets a clear error for that block, never an abort or
//! unbounded memory) and every connect, send and reply has a deadline. Connections are
//! pooled; a command whose connection broke is retried on a fresh one, but not after a
//! timeout or a protocol violation (that store is reported at once). Batches are pipelined.
//! A `SET` of an identical value answers nil, which means "already stored". 0-db writes are
//! appended to its data file before the reply (it syncs on its own policy), so a reply is
//! the durability point this store can observe. Errors carry the URL without its password.

use std::sync::Mutex;
use std::time::Duration;

use zdb_client::{Client, Config};

use super::{Store, StoreError, redact};
use crate::format::Hash;

const TIMEOUT: Duration = Duration::from_secs(30);
const RETRIES: usize = 3;
const PIPELINE: usize = 64;

/// A zdb namespace used as a block store.
pub struct ZdbStore {
    cfg: Config,
    url: String,
    pool: Mutex<Vec<Client>>,
}

impl ZdbStore {
    /// Parse the URL; the connection is made on first use.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with_timeout(url, TIMEOUT)
    }

    /// As [`ZdbStore::open`], with `timeout` on connecting and on each reply.
    pub fn open_with_timeout(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let bad = |msg: String| StoreError::Url {
            url: redact(url),
            msg,
        };
        let cfg = Config::from_url(url).map_err(|e| bad(e.to_string()))?;
        if cfg.namespace.is_none() {
            return Err(bad("missing /namespace".into()));
        }
        Ok(ZdbStore {
            cfg: cfg.with_connect_timeout(timeout).with_timeout(timeout),
            url: redact(url),
            pool: Mutex::new(Vec::new()),
        })
    }

    fn err(&self, e: zdb_client::Error) -> StoreError {
        match e {
            zdb_client::Error::Io(source) | zdb_client::Error::Connect { source, .. } => {
                StoreError::Io {
                    store: self.url.clone(),
                    source,
                }
            }
            e if e.is_connection() => StoreError::Io {
                store: self.url.clone(),
                source: std::io::Error::other(e.to_string()),
            },
            e => StoreError::Protocol {
                store: self.url.clone(),
                msg: e.to_string(),
            },
        }
    }

    /// Run `f` on a pooled connection, retrying on fresh connections while the failure is a
    /// broken or refused connection.
    fn with_conn<T>(
        &self,
        f: impl Fn(&mut Client) -> zdb_client::Result<T>,
    ) -> Result<T, StoreError> {
        let mut last = None;
        for attempt in 0..RETRIES {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
            let r = match pooled {
                Some(c) => Ok(c),
                None => Client::connect(self.cfg.clone()),
            }
            .and_then(|mut c| f(&mut c).map(|v| (v, c)));
            match r {
                Ok((v, c)) => {
                    if let Ok(mut p) = self.pool.lock() {
                        p.push(c);
                    }
                    return Ok(v);
                }
                Err(e) if retryable(&e) => last = Some(e),
                Err(e) => return Err(self.err(e)),
            }
        }
        Err(self.err(last.unwrap_or(zdb_client::Error::NotConnected)))
    }
}

/// A broken or refused connection may work again at once; a refusal, a timeout or a
/// protocol violation will not.
fn retryable(e: &zdb_client::Error) -> bool {
    e.is_connection()
        && !matches!(
            e,
            zdb_client::Error::Timeout { .. } | zdb_client::Error::Protocol(_)
        )
}

impl Store for ZdbStore {
    fn get(&self, id: &Hash) -> Result<Vec<u8>, StoreError> {
        match self.with_conn(|c| c.get(id))? {
            Some(b) => Ok(b.into()),
            None => Err(StoreError::NotFound {
                store: self.url.clone(),
            }),
        }
    }

    fn put(&self, id: &Hash, data: &[u8]) -> Result<(), StoreError> {
        // Written, or nil: the identical block was already there.
        self.with_conn(|c| c.set(id, data)).map(drop)
    }

    fn exists(&self, id: &Hash) -> Result<bool, StoreError> {
        self.with_conn(|c| c.exists(id))
    }

    fn put_batch(&self, blocks: &[(Hash, Vec<u8>)]) -> Result<(), StoreError> {
        for part in blocks.chunks(PIPELINE) {
            for r in self.with_conn(|c| c.set_many(part))? {
                r.map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    fn get_batch(&self, ids: &[Hash]) -> Vec<Result<Vec<u8>, StoreError>> {
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(PIPELINE) {
            match self.with_conn(|c| c.get_many(part)) {
                Ok(v) => out.extend(v.into_iter().map(|r| match r {
                    Ok(Some(b)) => Ok(b.into()),
                    Ok(None) => Err(StoreError::NotFound {
                        store: self.url.clone(),
                    }),
                    Err(e) => Err(self.err(e)),
                })),
                Err(e) => {
                    let msg = e.to_string();
                    out.extend(part.iter().map(|_| {
                        Err(StoreError::Protocol {
                            store: self.url.clone(),
                            msg: msg.clone(),
                        })
                    }));
                }
            }
        }
        out
    }

    fn url(&self) -> String {
        self.url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_redaction() {
        let s = ZdbStore::open("zdb://u:hidden@127.0.0.1:1/ns").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.url(), "zdb://127.0.0.1:1/ns");
        for bad in [
            "zdb://u:hidden@h:1",
            "zdb://u:hidden@h:1/",
            "zdb://u:hidden@/ns",
        ] {
            let e = ZdbStore::open(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.starts_with("bad store url") && !e.contains("hidden"),
                "{e}"
            );
        }
        // A refused connection names the store, not the password.
        let e = s
            .get(&[0; 32])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("zdb://127.0.0.1:1/ns: ") && !e.contains("hidden"),
            "{e}"
        );
    }
}
