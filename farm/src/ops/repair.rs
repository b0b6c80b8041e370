//! The repair loop: one per store (etcd election), started by every node that can run it and
//! active on one. Each tick it:
//! 1. moves node states on (down when a heartbeat is gone, out after the grace period, up
//!    again when it returns within it);
//! 2. collects the stale shards of nodes that returned after being out, then takes them back;
//! 3. deletes the shards of trashed versions;
//! 4. scrubs objects readers reported damaged;
//! 5. walks all objects: positions on out nodes are rebuilt onto new nodes (only those), and
//!    every [`RepairConfig::scrub_interval`] every shard is read and verified, bad or missing
//!    ones rebuilt in place, and every up node is swept for shards nothing references.
//!
//! Every metadata write is fenced on the leader's election key.

use crate::ids::{NodeId, ObjectId};
use crate::meta::MetaError;
use crate::meta::election::Leadership;
use crate::meta::records::{ObjectMeta, Progress, now};
use crate::ops::collect::{collect_node, empty_trash};
use crate::ops::scrub::{Counts, SegmentPlan, repair_segment};
use crate::ops::snapshot::Snapshot;
use crate::ops::states::{NodeState, transition};
use crate::ops::{Farm, FarmError};
use crate::placement;
use crate::store::ShardStore;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct RepairConfig {
    /// This candidate's name in the election (its node id).
    pub name: String,
    /// Seconds a node may be down before it is out (Ceph's default is 600).
    pub grace: u64,
    /// Pause between ticks.
    pub tick: Duration,
    /// How often every shard is re-read and verified.
    pub scrub_interval: Duration,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            name: "repair".into(),
            grace: 600,
            tick: Duration::from_secs(10),
            scrub_interval: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The repair loop of one candidate.
pub struct Repairer<'a, S> {
    farm: &'a Farm<S>,
    cfg: RepairConfig,
    progress: Progress,
    last_scrub: Option<Instant>,
}

impl<'a, S: ShardStore + Clone> Repairer<'a, S> {
    /// A candidate for `farm`.
    pub fn new(farm: &'a Farm<S>, cfg: RepairConfig) -> Self {
        Repairer {
            farm,
            progress: Progress {
                leader: cfg.name.clone(),
                ..Progress::default()
            },
            cfg,
            last_scrub: None,
        }
    }

    /// Campaigns, then repairs while leader, until `stop` turns true; campaigns again after
    /// losing leadership.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let lead = tokio::select! {
                r = Leadership::campaign(&self.farm.meta, &self.cfg.name) => r,
                _ = stop.changed() => break,
            };
            let lead = match lead {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("repair campaign: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            tracing::info!("{} leads the farm's repair", self.cfg.name);
            while !lead.lost() && !*stop.borrow() {
                if let Err(e) = self.tick(&lead).await {
                    tracing::warn!("repair tick: {e}");
                }
                tokio::select! {
                    () = tokio::time::sleep(self.cfg.tick) => {}
                    _ = stop.changed() => {}
                }
            }
            if lead.lost() {
                tracing::warn!("{} lost the repair leadership", self.cfg.name);
            } else {
                lead.resign().await;
            }
        }
    }

    /// One pass of everything the leader does.
    pub async fn tick(&mut self, lead: &Leadership) -> Result<(), FarmError> {
        let meta = &self.farm.meta;
        let fence = Some(lead.fence());
        // 1. Node states.
        let t = now();
        for v in meta.nodes().await? {
            if let Some(next) = transition(v.alive.is_some(), &v.state, t, self.cfg.grace) {
                tracing::info!("node {}: {:?} -> {:?}", v.record.id, v.state, next);
                meta.set_node_state(&v.record.id, &next, v.state_revision, fence)
                    .await?;
            }
        }
        let snapshot = Snapshot {
            nodes: meta.nodes().await?,
        };
        let states = snapshot.states();
        // 2. Returned nodes: collect, then take back.
        for v in &snapshot.nodes {
            if states.get(&v.record.id) == Some(&NodeState::Returned) {
                let n = collect_node(meta, &self.farm.store, &v.record.id).await?;
                tracing::info!("node {} returned: {n} stale shards collected", v.record.id);
                self.progress.collected += n;
                meta.set_node_state(&v.record.id, &Default::default(), v.state_revision, fence)
                    .await?;
            }
        }
        // 3. Trash.
        self.progress.collected += empty_trash(meta, &self.farm.store, &states).await?;
        // 4. Damage reports.
        let damage = meta.keys().table("damage");
        for (suffix, _, _) in meta.page(&damage, None, 100).await? {
            if let Ok(id) = suffix.parse::<ObjectId>()
                && let Some(c) = meta.object_by_id(&id).await?
            {
                self.object(&c.meta, c.revision, &snapshot, &states, true, fence)
                    .await?;
            }
            meta.delete(&format!("{damage}{suffix}")).await?;
        }
        // 5. All objects.
        let deep = self
            .last_scrub
            .is_none_or(|t| t.elapsed() >= self.cfg.scrub_interval);
        if deep {
            self.last_scrub = Some(Instant::now());
            self.progress.pass_started = now();
        }
        self.progress.objects = 0;
        let prefix = meta.keys().table("objects");
        let mut after: Option<String> = None;
        loop {
            let page = meta.page(&prefix, after.as_deref(), 200).await?;
            let full = page.len() == 200;
            for (suffix, value, rev) in page {
                after = Some(suffix.clone());
                let obj: ObjectMeta = crate::meta::client::parse(&suffix, &value)?;
                if let Err(e) = self
                    .object(&obj, rev, &snapshot, &states, deep, fence)
                    .await
                {
                    tracing::warn!("repair of {}: {e}", obj.name);
                }
                self.progress.objects += 1;
            }
            if !full {
                break;
            }
        }
        if deep {
            for (node, state) in &states {
                if *state == NodeState::Up {
                    match collect_node(meta, &self.farm.store, node).await {
                        Ok(n) => self.progress.collected += n,
                        Err(e) => tracing::warn!("sweep of {node}: {e}"),
                    }
                }
            }
            self.progress.passes += 1;
            self.progress.last_pass = Some(now());
        }
        meta.put_json(&meta.keys().progress(), &self.progress, None)
            .await?;
        Ok(())
    }

    /// Repairs one object: relocates positions on out (or unknown) nodes, and with `deep`
    /// verifies everything.
    async fn object(
        &mut self,
        obj: &ObjectMeta,
        revision: i64,
        snapshot: &Snapshot,
        states: &BTreeMap<NodeId, NodeState>,
        deep: bool,
        fence: Option<&[u8]>,
    ) -> Result<(), FarmError> {
        obj.check().map_err(FarmError::Corrupt)?;
        let candidates = snapshot.candidates();
        let shard_bytes = u64::from(obj.params.stripe) / u64::from(obj.params.k) + 1024;
        let mut updated = obj.clone();
        let mut moved: Vec<(usize, Vec<(usize, NodeId)>)> = Vec::new();
        let mut counts = Counts::default();
        for (seg, nodes) in obj.segments.iter().enumerate() {
            let lost: Vec<usize> = nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| matches!(states.get(*n), None | Some(NodeState::Out { .. })))
                .map(|(i, _)| i)
                .collect();
            let moves = if lost.is_empty() {
                Vec::new()
            } else {
                match placement::replace(
                    &candidates,
                    nodes,
                    &lost,
                    shard_bytes,
                    &obj.id,
                    seg as u64,
                ) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!("object {}: segment {seg}: {e}", obj.name);
                        Vec::new()
                    }
                }
            };
            if moves.is_empty() && !deep {
                continue;
            }
            let plan = SegmentPlan {
                moves: moves.clone(),
                deep,
            };
            let c = repair_segment(&self.farm.store, obj, seg, &plan, states).await?;
            counts += c;
            if !moves.is_empty() && c.unrecoverable == 0 {
                if let Some(seg_nodes) = updated.segments.get_mut(seg) {
                    for (p, n) in &moves {
                        if let Some(slot) = seg_nodes.get_mut(*p) {
                            *slot = n.clone();
                        }
                    }
                }
                moved.push((seg, moves));
            }
        }
        self.progress.verified += counts.verified;
        self.progress.rebuilt += counts.rebuilt;
        if moved.is_empty() {
            return Ok(());
        }
        if self
            .farm
            .meta
            .update_object(&updated, revision, fence)
            .await?
        {
            tracing::info!(
                "object {}: {} shard positions moved",
                obj.name,
                moved.iter().map(|(_, m)| m.len()).sum::<usize>()
            );
            return Ok(());
        }
        // The object changed meanwhile (removed, replaced, or another leader): the shards just
        // written belong to nobody.
        for (seg, moves) in moved {
            for stripe in obj.segment_stripes(seg) {
                for (p, node) in &moves {
                    let id = crate::ids::ShardId {
                        object: obj.id,
                        stripe,
                        index: *p as u8,
                    };
                    let _ = self.farm.store.delete(node, &id).await;
                }
            }
        }
        Err(FarmError::Meta(MetaError::Conflict(format!(
            "object {} changed during repair",
            obj.name
        ))))
    }
}
