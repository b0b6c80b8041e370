//! `http(s)://BASE`: read-only, any static file server over a dir store
//! (`BASE/<first two hex digits>/<hex id>`). Requests time out and are retried.

use std::io::Read;
use std::time::Duration;

use super::{Store, StoreError, block_name};
use crate::chunk::MAX_BLOCK;
use crate::format::Hash;

const RETRIES: usize = 3;

/// A read-only HTTP store.
pub struct HttpStore {
    base: String,
    agent: ureq::Agent,
}

impl HttpStore {
    /// Build the store (no request is made).
    pub fn open(url: &str) -> Result<Self, StoreError> {
        // Kept-alive connections for every parallel fetch worker (ureq keeps one by default).
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .max_idle_connections_per_host(64)
            .build();
        Ok(HttpStore {
            base: url.trim_end_matches('/').to_string(),
            agent,
        })
    }

    fn block_url(&self, id: &Hash) -> String {
        let n = block_name(id);
        format!("{}/{}/{}", self.base, &n[..2], n)
    }

    /// An error whose message never carries the URL's credentials (ureq quotes the URL).
    fn err(&self, msg: String) -> StoreError {
        StoreError::Protocol {
            store: self.url(),
            msg: super::redact_in(&msg, &self.base),
        }
    }

    /// GET (or HEAD) with retries; `Ok(None)` on 404.
    fn fetch(&self, id: &Hash, head: bool) -> Result<Option<Vec<u8>>, StoreError> {
        let url = self.block_url(id);
        let mut last = String::new();
        for attempt in 0..RETRIES {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            let req = if head {
                self.agent.head(&url)
            } else {
                self.agent.get(&url)
            };
            match req.call() {
                Ok(resp) => {
                    if head {
                        return Ok(Some(Vec::new()));
                    }
                    let mut buf = Vec::new();
                    match resp
                        .into_reader()
                        .take(MAX_BLOCK as u64 + 65536)
                        .read_to_end(&mut buf)
                    {
                        Ok(_) => return Ok(Some(buf)),
                        Err(e) => last = e.to_string(),
                    }
                }
                Err(ureq::Error::Status(404, _)) => return Ok(None),
                Err(ureq::Error::Status(code, _)) if code < 500 => {
                    return Err(self.err(format!("HTTP {code} for /{}", block_name(id))));
                }
                Err(ureq::Error::Transport(t)) => last = transport_error(&t),
                Err(e) => last = e.to_string(),
            }
        }
        Err(self.err(last))
    }
}

/// A transport failure without the URL ureq puts first (the store is named once, by the
/// caller, and without its credentials).
fn transport_error(t: &ureq::Transport) -> String {
    let mut m = t.kind().to_string();
    if let Some(msg) = t.message() {
        m.push_str(": ");
        m.push_str(msg);
    }
    if let Some(src) = std::error::Error::source(t) {
        m.push_str(": ");
        m.push_str(&src.to_string());
    }
    m
}

impl Store for HttpStore {
    fn get(&self, id: &Hash) -> Result<Vec<u8>, StoreError> {
        self.fetch(id, false)?
            .ok_or_else(|| StoreError::NotFound { store: self.url() })
    }

    fn put(&self, _id: &Hash, _data: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly { store: self.url() })
    }

    fn exists(&self, id: &Hash) -> Result<bool, StoreError> {
        Ok(self.fetch(id, true)?.is_some())
    }

    fn url(&self) -> String {
        super::redact(&self.base)
    }
}
