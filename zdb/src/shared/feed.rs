//! A broadcast channel that can tell, without taking its lock, whether anyone listens.
//!
//! Every command publishes itself for WAIT and offers a copy to MIRROR clients, and nearly
//! always nobody listens; asking tokio's channel (`receiver_count`, `send`) takes its mutex,
//! two locked instructions each, which wait for the CPU's store buffer to drain (with the
//! other per-command atomics, a tenth of a pipelined SET's CPU).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::broadcast;

/// The sending side, with a count of live [`Listener`]s.
pub struct Feed<T> {
    tx: broadcast::Sender<T>,
    listeners: Arc<AtomicUsize>,
}

impl<T: Clone> Feed<T> {
    /// A channel keeping up to `capacity` messages for slow listeners.
    pub fn new(capacity: usize) -> Self {
        Feed {
            tx: broadcast::channel(capacity).0,
            listeners: Arc::default(),
        }
    }

    /// Start listening. A message sent before the subscription below is missed, as it was
    /// without the count (tokio delivers to subscribed receivers only); counting first means
    /// a sender never skips a listener that is already subscribed.
    pub fn subscribe(&self) -> Listener<T> {
        self.listeners.fetch_add(1, Ordering::SeqCst);
        Listener {
            rx: self.tx.subscribe(),
            listeners: self.listeners.clone(),
        }
    }

    /// Whether anyone listens (a plain load).
    pub fn listened(&self) -> bool {
        self.listeners.load(Ordering::Relaxed) > 0
    }

    /// Send if anyone listens.
    pub fn send(&self, message: T) {
        if self.listened() {
            let _ = self.tx.send(message);
        }
    }
}

/// A receiver that uncounts itself when dropped.
pub struct Listener<T> {
    rx: broadcast::Receiver<T>,
    listeners: Arc<AtomicUsize>,
}

impl<T> Drop for Listener<T> {
    fn drop(&mut self) {
        self.listeners.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T> Deref for Listener<T> {
    type Target = broadcast::Receiver<T>;
    fn deref(&self) -> &Self::Target {
        &self.rx
    }
}

impl<T> DerefMut for Listener<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_listeners_and_delivers_only_to_them() {
        let feed = Feed::new(4);
        assert!(!feed.listened());
        feed.send(1);
        let mut a = feed.subscribe();
        let mut b = feed.subscribe();
        assert!(feed.listened());
        feed.send(2);
        assert_eq!(a.recv().await.ok(), Some(2));
        drop(a);
        assert!(feed.listened());
        assert_eq!(b.recv().await.ok(), Some(2));
        drop(b);
        assert!(!feed.listened());
    }
}
