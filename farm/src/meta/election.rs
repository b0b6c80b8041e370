//! One active repair loop per store, by etcd's election API: candidates campaign under a lease;
//! the winner works until its lease is lost. Every metadata change the leader makes is fenced
//! on its election key, so a leader that lost its lease (paused, partitioned) cannot overwrite
//! what its successor did.

use crate::meta::lease::Lease;
use crate::meta::{Meta, MetaError};
use std::time::Duration;

/// TTL of the leader's lease: a dead leader is replaced this long after its last keepalive.
pub const LEADER_TTL: i64 = 5;

/// Being the farm's repair leader.
pub struct Leadership {
    key: Vec<u8>,
    lease: Lease,
}

impl Leadership {
    /// Campaigns as `name` until elected (waits while another candidate leads).
    pub async fn campaign(meta: &Meta, name: &str) -> Result<Leadership, MetaError> {
        let lease = Lease::grant(meta, LEADER_TTL).await?;
        let election = meta.keys().election();
        loop {
            if lease.lost() {
                return Err(MetaError::Conflict(
                    "election lease lost while campaigning".into(),
                ));
            }
            // A campaign blocks until elected; each request has a deadline, after which the
            // same lease campaigns again (etcd keeps its candidate key).
            let mut c = meta.client();
            match c.campaign(election.as_str(), name, lease.id()).await {
                Ok(r) => {
                    if let Some(l) = r.leader() {
                        return Ok(Leadership {
                            key: l.key().to_vec(),
                            lease,
                        });
                    }
                }
                Err(e) => {
                    tracing::debug!("campaign: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// The election key: its existence is the fence on the leader's writes.
    pub fn fence(&self) -> &[u8] {
        &self.key
    }

    /// Whether leadership was lost (lease expired).
    pub fn lost(&self) -> bool {
        self.lease.lost()
    }

    /// Steps down at once.
    pub async fn resign(self) {
        self.lease.revoke().await;
    }
}
