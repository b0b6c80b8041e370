//! Documents addressed to nodes through etcd (signed blueprints under `deploy/<node>/`, the
//! farm's `store` deployments under `stores/`): [`follow`] streams every entry of a prefix and
//! then every change, and survives disconnects. At start it lists the whole prefix at one
//! revision; then it watches from the revision after that. After a lost watch (a member died,
//! the connection broke, the stream went silent) it watches again from the revision after the
//! last one it delivered, so nothing is missed and nothing delivered twice; when that history
//! was compacted away meanwhile, it lists the prefix again (the consumer must treat a repeated
//! entry as idempotent, which signed blueprints are). What a document means is the consumer's
//! business: this module only moves bytes.

use crate::meta::{Meta, MetaError};
use etcd_client::{EventType, GetOptions, WatchOptions};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// One entry of the followed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key after the prefix.
    pub suffix: String,
    /// Its value; `None` when the key was deleted.
    pub value: Option<Vec<u8>>,
    /// The revision of this change (the key's mod revision).
    pub revision: i64,
}

/// A watch that delivers nothing for this long is asked for a progress report; one that does
/// not answer that either within the same time is considered lost and opened again.
pub const IDLE: Duration = Duration::from_secs(10);
/// Keys read per page of a listing.
const PAGE: i64 = 200;

/// Why a watch ended.
enum Ended {
    Stopped,
    /// The history from the resume revision is gone: list again.
    Compacted,
    /// Watch again from this revision.
    Lost(i64),
}

/// Sends every entry of `prefix` to `tx` (a full listing first), then every change, until
/// `stop` turns true or `tx` is closed. Never returns an error: etcd being unreachable delays
/// delivery (retried with backoff, 0.5 .. 10 s).
pub async fn follow(
    meta: Meta,
    prefix: String,
    tx: mpsc::Sender<Entry>,
    mut stop: watch::Receiver<bool>,
) {
    let mut from: Option<i64> = None;
    let mut pause = Duration::from_millis(500);
    while !*stop.borrow() {
        let start = match from {
            Some(r) => r,
            None => match list(&meta, &prefix).await {
                Ok((entries, revision)) => {
                    for e in entries {
                        if !send(&tx, e, &mut stop).await {
                            return;
                        }
                    }
                    revision + 1
                }
                Err(e) => {
                    tracing::warn!("etcd: listing {prefix}: {e}; retrying");
                    if sleep_or_stop(pause, &mut stop).await {
                        return;
                    }
                    pause = (pause * 2).min(Duration::from_secs(10));
                    continue;
                }
            },
        };
        match watch_from(&meta, &prefix, start, &tx, &mut stop).await {
            Ended::Stopped => return,
            Ended::Compacted => {
                tracing::info!("etcd: history of {prefix} compacted; listing again");
                from = None;
            }
            Ended::Lost(next) => {
                from = Some(next);
                if next > start {
                    pause = Duration::from_millis(500);
                }
                if sleep_or_stop(pause, &mut stop).await {
                    return;
                }
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// True when stopped.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(d) => false,
        r = stop.wait_for(|s| *s) => r.is_ok(),
    };
    stopped || *stop.borrow()
}

/// False when stopped or the consumer is gone.
async fn send(tx: &mpsc::Sender<Entry>, e: Entry, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        r = tx.send(e) => r.is_ok(),
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// Every entry of `prefix` as of one revision (keys in pages, then each value at that
/// revision, so a large document never makes a page too large), and that revision.
pub async fn list(meta: &Meta, prefix: &str) -> Result<(Vec<Entry>, i64), MetaError> {
    let end = crate::meta::client::prefix_end(prefix);
    let mut out = Vec::new();
    let mut revision = 0;
    let mut start = prefix.as_bytes().to_vec();
    loop {
        let resp = meta
            .retry("list", |mut c| {
                let (start, end) = (start.clone(), end.clone());
                let mut opts = GetOptions::new()
                    .with_range(end)
                    .with_limit(PAGE)
                    .with_keys_only();
                if revision > 0 {
                    opts = opts.with_revision(revision);
                }
                async move { c.get(start, Some(opts)).await }
            })
            .await?;
        if revision == 0 {
            revision = resp.header().map_or(0, |h| h.revision());
        }
        let keys: Vec<Vec<u8>> = resp.kvs().iter().map(|kv| kv.key().to_vec()).collect();
        for key in &keys {
            let got = meta
                .retry("get", |mut c| {
                    let key = key.clone();
                    async move {
                        c.get(key, Some(GetOptions::new().with_revision(revision)))
                            .await
                    }
                })
                .await?;
            if let Some(kv) = got.kvs().first()
                && let Some(suffix) = crate::meta::keys::Keys::suffix(kv.key(), prefix)
            {
                out.push(Entry {
                    suffix: suffix.to_string(),
                    value: Some(kv.value().to_vec()),
                    revision: kv.mod_revision(),
                });
            }
        }
        match keys.last() {
            Some(last) if keys.len() as i64 == PAGE => {
                start = last.clone();
                start.push(0);
            }
            _ => return Ok((out, revision)),
        }
    }
}

/// Watches `prefix` from revision `start`, delivering events until the watch ends.
async fn watch_from(
    meta: &Meta,
    prefix: &str,
    start: i64,
    tx: &mpsc::Sender<Entry>,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let mut next = start;
    let opts = WatchOptions::new()
        .with_prefix()
        .with_start_revision(start)
        .with_progress_notify();
    let mut client = meta.client();
    let mut stream = match tokio::time::timeout(
        Meta::REQUEST * 4,
        client.watch(prefix.as_bytes().to_vec(), Some(opts)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!("etcd: watch {prefix}: {e}");
            return Ended::Lost(next);
        }
        Err(_) => return Ended::Lost(next),
    };
    let mut asked = false;
    loop {
        let msg = tokio::select! {
            m = tokio::time::timeout(IDLE, stream.message()) => m,
            _ = stop.wait_for(|s| *s) => return Ended::Stopped,
        };
        let resp = match msg {
            Err(_) if !asked => {
                // Silent for a while: a live watch answers a progress request at once.
                asked = true;
                if stream.request_progress().await.is_err() {
                    return Ended::Lost(next);
                }
                continue;
            }
            Err(_) | Ok(Ok(None)) => return Ended::Lost(next),
            Ok(Err(e)) => {
                tracing::debug!("etcd: watch {prefix}: {e}");
                return Ended::Lost(next);
            }
            Ok(Ok(Some(r))) => r,
        };
        asked = false;
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                return Ended::Compacted;
            }
            tracing::debug!("etcd: watch {prefix} canceled: {}", resp.cancel_reason());
            return Ended::Lost(next);
        }
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let Some(suffix) = crate::meta::keys::Keys::suffix(kv.key(), prefix) else {
                continue;
            };
            let entry = Entry {
                suffix: suffix.to_string(),
                value: match ev.event_type() {
                    EventType::Put => Some(kv.value().to_vec()),
                    EventType::Delete => None,
                },
                revision: kv.mod_revision(),
            };
            next = next.max(entry.revision + 1);
            if !send(tx, entry, stop).await {
                return Ended::Stopped;
            }
        }
        if resp.events().is_empty()
            && let Some(h) = resp.header()
        {
            // A progress report: every later event is above this revision.
            next = next.max(h.revision() + 1);
        }
    }
}
