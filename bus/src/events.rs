//! Event fan-out: each subscriber has a bounded queue; a subscriber whose queue is full is dropped
//! (never blocks the publisher) and told so by a last [`DROPPED_TOPIC`](crate::DROPPED_TOPIC)
//! event.

use crate::frame::{Event, ServerFrame};
use bytes::Bytes;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Default per-subscriber queue length, in events.
pub(crate) const DEFAULT_QUEUE: usize = 256;

struct Subscriber {
    filter: String,
    tx: mpsc::Sender<Bytes>,
    overflowed: Arc<AtomicBool>,
}

#[derive(Default)]
struct Inner {
    subs: Mutex<Vec<Subscriber>>,
    seq: AtomicU64,
}

/// Publishes events to the subscribers of one server. Cheap to clone.
#[derive(Clone, Default)]
pub struct Publisher {
    inner: Arc<Inner>,
}

/// What the connection task of one subscriber holds.
pub(crate) struct Subscription {
    pub(crate) rx: mpsc::Receiver<Bytes>,
    pub(crate) overflowed: Arc<AtomicBool>,
}

/// True when `topic` is selected by `filter`: empty or `*` selects all, otherwise the filter must
/// equal the topic or be a dot-separated prefix of it (`storage` selects `storage.zdb`).
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    if filter.is_empty() || filter == "*" {
        return true;
    }
    topic == filter
        || (topic.starts_with(filter) && topic.as_bytes().get(filter.len()) == Some(&b'.'))
}

impl Publisher {
    /// Publishes `data` on `topic` to every matching subscriber. Never blocks; returns how many
    /// subscribers got it.
    pub fn publish<T: Serialize>(&self, topic: &str, data: &T) -> usize {
        let data = match serde_json::to_value(data) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(topic, error = %e, "event payload does not serialize");
                return 0;
            }
        };
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let frame = ServerFrame::Event(Event {
            topic: topic.to_string(),
            seq,
            data,
        });
        let body = match serde_json::to_vec(&frame) {
            Ok(b) => Bytes::from(b),
            Err(_) => return 0,
        };
        let Ok(mut subs) = self.inner.subs.lock() else {
            return 0;
        };
        let mut delivered = 0;
        subs.retain(|s| {
            if !matches(&s.filter, topic) {
                return !s.tx.is_closed();
            }
            match s.tx.try_send(body.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    s.overflowed.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        delivered
    }

    /// Number of live subscribers.
    pub fn subscribers(&self) -> usize {
        self.inner.subs.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub(crate) fn subscribe(&self, filter: &str, queue: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let overflowed = Arc::new(AtomicBool::new(false));
        if let Ok(mut subs) = self.inner.subs.lock() {
            subs.push(Subscriber {
                filter: filter.to_string(),
                tx,
                overflowed: overflowed.clone(),
            });
        }
        Subscription { rx, overflowed }
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn topic_filters() {
        assert!(matches("", "storage.zdb"));
        assert!(matches("*", "x"));
        assert!(matches("storage", "storage.zdb"));
        assert!(matches("storage.zdb", "storage.zdb"));
        assert!(!matches("storage", "storaged.zdb"));
        assert!(!matches("storage.zdb", "storage"));
    }

    #[tokio::test]
    async fn full_queue_drops_subscriber() {
        let p = Publisher::default();
        let mut sub = p.subscribe("", 2);
        assert_eq!(p.publish("a", &1), 1);
        assert_eq!(p.publish("a", &2), 1);
        assert_eq!(p.publish("a", &3), 0);
        assert!(sub.overflowed.load(Ordering::Acquire));
        assert_eq!(p.subscribers(), 0);
        assert!(sub.rx.recv().await.is_some());
        assert!(sub.rx.recv().await.is_some());
        assert!(sub.rx.recv().await.is_none());
    }
}
