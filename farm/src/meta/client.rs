//! The connection to etcd, with a deadline on every call and retries of what etcd reports as
//! transient (no leader, leader changed, member unreachable): a leader election costs about
//! one election timeout (1 s by default), so calls retry for up to [`Meta::RETRY`] before
//! giving up.

use crate::meta::access::EtcdAccess;
use crate::meta::keys::{BadFarmName, BadStoreName, Keys};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::{Duration, Instant};

/// Entries per page when listing a table.
const PAGE: i64 = 500;

/// A metadata operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// etcd refused the request (not a transient failure).
    #[error("etcd {what}: {err}")]
    Etcd {
        /// The operation.
        what: String,
        /// etcd's answer.
        err: String,
    },
    /// etcd did not answer in time, retries included.
    #[error("etcd {what}: no answer within {secs} s: {err}")]
    Unavailable {
        /// The operation.
        what: String,
        /// How long it was retried.
        secs: u64,
        /// The last error.
        err: String,
    },
    /// A stored value does not parse.
    #[error("etcd record {key}: {err}")]
    Record {
        /// Its key.
        key: String,
        /// Why.
        err: String,
    },
    /// The farm name is not valid.
    #[error(transparent)]
    Farm(#[from] BadFarmName),
    /// The store name is not valid.
    #[error(transparent)]
    Store(#[from] BadStoreName),
    /// The object name is not valid.
    #[error(transparent)]
    Name(#[from] crate::meta::keys::BadName),
    /// A precondition no longer holds (the object changed meanwhile, a lease expired).
    #[error("{0}")]
    Conflict(String),
}

/// Whether etcd may answer differently if asked again shortly.
fn transient(e: &etcd_client::Error) -> bool {
    use tonic::Code::*;
    match e {
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            Unavailable | DeadlineExceeded | Cancelled | Aborted | Unknown | ResourceExhausted
        ),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// A farm's view of etcd. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Meta {
    client: Client,
    keys: Keys,
}

impl Meta {
    /// How long an operation is retried through transient failures.
    pub const RETRY: Duration = Duration::from_secs(10);
    /// Deadline of one request. Short on purpose: a request a follower forwarded to a leader
    /// that just died is never answered, and is retried sooner this way (every operation here
    /// is safe to repeat); a new leader is elected within one to two election timeouts.
    pub const REQUEST: Duration = Duration::from_millis(750);

    /// Connects to the etcd members at `endpoints` (`http://host:port`) for farm `farm`.
    pub async fn connect(endpoints: &[String], farm: &str) -> Result<Self, MetaError> {
        Self::connect_with(endpoints, &EtcdAccess::plain(), farm).await
    }

    /// [`Self::connect`] through `access` (TLS, user): `https://` endpoints with TLS. With a
    /// user, the token is fetched here, so a wrong password fails now, not at first use.
    pub async fn connect_with(
        endpoints: &[String],
        access: &EtcdAccess,
        farm: &str,
    ) -> Result<Self, MetaError> {
        let keys = Keys::new(farm)?;
        let connect_err = |err: String| MetaError::Etcd {
            what: "connect".into(),
            err,
        };
        access
            .check(endpoints)
            .map_err(|e| connect_err(e.to_string()))?;
        let options = access.apply(
            ConnectOptions::new()
                .with_connect_timeout(Self::REQUEST)
                .with_timeout(Self::REQUEST)
                .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
                .with_require_leader(true),
        );
        // The first call (the token, with a user) may meet a member that just lost its
        // leader: retried like any other.
        let start = Instant::now();
        loop {
            match Client::connect(endpoints, Some(options.clone())).await {
                Ok(client) => return Ok(Meta { client, keys }),
                Err(e) if transient(&e) && start.elapsed() < Self::RETRY => {
                    tracing::debug!("etcd connect: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(connect_err(e.to_string())),
            }
        }
    }

    /// The same connection for store `store` (`None`: the unnamed one): object tables, node
    /// states and the repair election are the store's own ([`Keys::scoped`]).
    pub fn scoped(&self, store: Option<&str>) -> Result<Meta, MetaError> {
        Ok(Meta {
            client: self.client.clone(),
            keys: self.keys.scoped(store)?,
        })
    }

    /// The farm's key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A handle on the raw client (for watches and leases).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Runs `f` until it succeeds, fails for good, or [`Self::RETRY`] passes.
    pub async fn retry<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T, MetaError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let start = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match f(self.client.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && start.elapsed() < Self::RETRY => {
                    tracing::debug!("etcd {what}: {e}; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(e) if transient(&e) => {
                    return Err(MetaError::Unavailable {
                        what: what.into(),
                        secs: Self::RETRY.as_secs(),
                        err: e.to_string(),
                    });
                }
                Err(e) => {
                    return Err(MetaError::Etcd {
                        what: what.into(),
                        err: e.to_string(),
                    });
                }
            }
        }
    }

    /// Reads a JSON record and its mod revision.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, i64)>, MetaError> {
        match self.get_raw(key).await? {
            None => Ok(None),
            Some((value, rev)) => Ok(Some((parse(key, &value)?, rev))),
        }
    }

    /// Reads a raw value and its mod revision.
    pub async fn get_raw(&self, key: &str) -> Result<Option<(Vec<u8>, i64)>, MetaError> {
        let resp = self
            .retry("get", |mut c| {
                let key = key.to_string();
                async move { c.get(key, None).await }
            })
            .await?;
        Ok(resp
            .kvs()
            .first()
            .map(|kv| (kv.value().to_vec(), kv.mod_revision())))
    }

    /// Runs a transaction (retried through transient failures: callers make their
    /// transactions safe to apply twice, or check afterwards).
    pub async fn txn(&self, what: &str, txn: Txn) -> Result<TxnResponse, MetaError> {
        self.retry(what, |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
        .await
    }

    /// Writes a JSON record, under `lease` if given.
    pub async fn put_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        lease: Option<i64>,
    ) -> Result<(), MetaError> {
        let bytes = to_json(value);
        self.retry("put", |mut c| {
            let (key, bytes) = (key.to_string(), bytes.clone());
            let opts = lease.map(|l| PutOptions::new().with_lease(l));
            async move { c.put(key, bytes, opts).await }
        })
        .await?;
        Ok(())
    }

    /// Deletes a key.
    pub async fn delete(&self, key: &str) -> Result<(), MetaError> {
        self.retry("delete", |mut c| {
            let key = key.to_string();
            async move { c.delete(key, None).await }
        })
        .await?;
        Ok(())
    }

    /// One page of raw entries of `prefix` (which ends in `/`) whose key is after `after`
    /// (a suffix), in key order: (suffix, value, mod revision).
    pub async fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, Vec<u8>, i64)>, MetaError> {
        let start = match after {
            Some(a) => format!("{prefix}{a}\0"),
            None => prefix.to_string(),
        };
        let end = prefix_end(prefix);
        let resp = self
            .retry("list", |mut c| {
                let (start, end) = (start.clone(), end.clone());
                async move {
                    c.get(
                        start,
                        Some(GetOptions::new().with_range(end).with_limit(limit)),
                    )
                    .await
                }
            })
            .await?;
        Ok(resp
            .kvs()
            .iter()
            .filter_map(|kv| {
                let s = Keys::suffix(kv.key(), prefix)?;
                Some((s.to_string(), kv.value().to_vec(), kv.mod_revision()))
            })
            .collect())
    }

    /// Every JSON record of `prefix`, by suffix, read in pages.
    pub async fn list_json<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, MetaError> {
        self.list_raw(prefix)
            .await?
            .into_iter()
            .map(|(suffix, value, _)| {
                Ok((suffix.clone(), parse(&format!("{prefix}{suffix}"), &value)?))
            })
            .collect()
    }

    /// Every raw entry of `prefix`, read in pages: (suffix, value, mod revision).
    pub async fn list_raw(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>, i64)>, MetaError> {
        let mut out = Vec::new();
        loop {
            let after = out
                .last()
                .map(|(s, _, _): &(String, Vec<u8>, i64)| s.clone());
            let page = self.page(prefix, after.as_deref(), PAGE).await?;
            let full = page.len() as i64 == PAGE;
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }
}

/// Compares of a fenced compare-and-swap: `key` still at `revision` (0: absent) and, if given,
/// the leader's election key `fence` still there.
pub fn cas(key: &str, revision: i64, fence: Option<&[u8]>) -> Vec<Compare> {
    let mut when = vec![Compare::mod_revision(key, CompareOp::Equal, revision)];
    if let Some(f) = fence {
        when.push(Compare::version(f.to_vec(), CompareOp::Greater, 0));
    }
    when
}

/// The first key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Parses a JSON record.
pub fn parse<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, MetaError> {
    serde_json::from_slice(value).map_err(|e| MetaError::Record {
        key: key.to_string(),
        err: e.to_string(),
    })
}

/// Serializes a record (our own types: cannot fail).
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}
