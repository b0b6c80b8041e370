//! An etcd lease kept alive by a background task: node heartbeats, puts in progress and the
//! repair leader each hold one. When the keepalive cannot renew it before it expires, the
//! lease is lost for good (its keys are gone) and [`Lease::lost`] says so; the holder decides
//! what to do (a node registers again, a put fails, a leader stops).

use crate::meta::{Meta, MetaError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A lease and its keepalive task. Dropping it stops the keepalive (the lease then expires
/// after its TTL); [`Lease::revoke`] ends it at once.
pub struct Lease {
    id: i64,
    lost: Arc<AtomicBool>,
    task: JoinHandle<()>,
    meta: Meta,
}

impl Lease {
    /// Grants a lease of `ttl` seconds and keeps it alive every `ttl / 3`.
    pub async fn grant(meta: &Meta, ttl: i64) -> Result<Lease, MetaError> {
        let resp = meta
            .retry("lease grant", |mut c| async move {
                c.lease_grant(ttl, None).await
            })
            .await?;
        let id = resp.id();
        let granted = Duration::from_secs(u64::try_from(resp.ttl()).unwrap_or(1).max(1));
        let lost = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(keep(meta.clone(), id, granted, lost.clone()));
        Ok(Lease {
            id,
            lost,
            task,
            meta: meta.clone(),
        })
    }

    /// The lease id, to attach keys.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Whether the lease expired (its keys are gone).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Acquire) || self.task.is_finished()
    }

    /// Ends the lease now: its keys go at once.
    pub async fn revoke(self) {
        self.task.abort();
        let id = self.id;
        let _ = tokio::time::timeout(
            Meta::REQUEST * 2,
            self.meta.retry(
                "lease revoke",
                |mut c| async move { c.lease_revoke(id).await },
            ),
        )
        .await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Renews `id` every third of its TTL until etcd says it is gone or it could not be renewed
/// before its deadline.
async fn keep(meta: Meta, id: i64, ttl: Duration, lost: Arc<AtomicBool>) {
    let mut deadline = Instant::now() + ttl;
    let every = ttl / 3;
    loop {
        tokio::time::sleep(every).await;
        let renewed = tokio::time::timeout(Meta::REQUEST, async {
            let mut c = meta.client();
            let (mut keeper, mut stream) = c.lease_keep_alive(id).await?;
            keeper.keep_alive().await?;
            stream.message().await
        })
        .await;
        match renewed {
            Ok(Ok(Some(r))) if r.ttl() > 0 => {
                deadline =
                    Instant::now() + Duration::from_secs(u64::try_from(r.ttl()).unwrap_or(1));
            }
            Ok(Ok(Some(_))) => break,
            other => {
                tracing::debug!("lease {id:x}: keepalive failed: {other:?}");
                if Instant::now() >= deadline {
                    break;
                }
            }
        }
    }
    lost.store(true, Ordering::Release);
}
