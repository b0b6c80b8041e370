//! `node-init --etcd URLS --farm NAME ...`: the flags that make the node join a storage farm
//! (node_init::farm_node does the work: blueprints from etcd, registration, heartbeat, repair).

use anyhow::Context;
use node_init::farm_join::FarmJoin;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct JoinArgs {
    /// Join the storage farm whose etcd is at these client URLs (comma separated)
    #[arg(long, env = "ZOS_ETCD", value_delimiter = ',')]
    etcd: Vec<String>,
    /// The farm's name
    #[arg(long = "farm", env = "ZOS_FARM", default_value = "default")]
    farm_name: String,
    #[command(flatten)]
    security: node_init::etcd_args::EtcdSecurity,
    /// host:port of a zdb shard namespace made by hand (default: the namespace provisioned
    /// for the farm's `store` deployment)
    #[arg(long, value_name = "ADDR")]
    farm_zdb: Option<String>,
    /// The shard namespace in that zdb
    #[arg(long, default_value = "farm", value_name = "NS")]
    farm_namespace: String,
    /// Failure domain (rack, room) of this node
    #[arg(long, value_name = "NAME")]
    farm_group: Option<String>,
    /// Storage offered to the farm (e.g. 500G)
    #[arg(long, default_value = "100G", value_name = "SIZE")]
    farm_capacity: String,
    /// Disk classes offered (comma separated)
    #[arg(long, value_delimiter = ',', default_value = "hdd")]
    farm_disk_classes: Vec<String>,
    /// Heartbeat lease TTL in seconds (the node counts as down this long after it stops)
    #[arg(long, default_value_t = 10)]
    farm_ttl: i64,
    /// Seconds a node may be down before the repair leader rebuilds its shards elsewhere
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    farm_grace: u64,
    /// Seconds between the repair leader's passes
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    farm_repair_tick: u64,
    /// Never run the farm's repair loop on this node
    #[arg(long)]
    farm_no_repair: bool,
}

impl JoinArgs {
    /// The farm to join, if `--etcd` was given.
    pub fn config(&self) -> anyhow::Result<Option<FarmJoin>> {
        if self.etcd.is_empty() {
            return Ok(None);
        }
        let capacity = nodeutil::size::parse_size(&self.farm_capacity)
            .with_context(|| format!("--farm-capacity {}", self.farm_capacity))?;
        let access = self.security.load()?;
        access.check(&self.etcd).context("--etcd")?;
        Ok(Some(FarmJoin {
            etcd: self.etcd.clone(),
            access,
            farm: self.farm_name.clone(),
            zdb: self.farm_zdb.clone().unwrap_or_default(),
            namespace: self.farm_namespace.clone(),
            group: self.farm_group.clone(),
            capacity,
            disk_classes: self.farm_disk_classes.clone(),
            ttl: self.farm_ttl.max(2),
            repair: (!self.farm_no_repair).then(|| farm::ops::repair::RepairConfig {
                grace: self.farm_grace,
                tick: Duration::from_secs(self.farm_repair_tick.max(1)),
                ..Default::default()
            }),
        }))
    }
}

/// Reads the node's identity from its own API, then runs its farm membership until `stop`.
pub async fn run(mut j: FarmJoin, socket: PathBuf, stop: watch::Receiver<bool>) {
    let api = bus::Client::new(socket);
    let identity = loop {
        match api
            .call::<bus::api::node::GetIdentity>(&bus::api::Empty {})
            .await
        {
            Ok(i) => break i,
            Err(e) => tracing::warn!("farm registration: node identity: {e}"),
        }
        if *stop.borrow() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    if let Some(r) = j.repair.as_mut() {
        r.name = identity.node_id.clone();
    }
    node_init::farm_node::run(j, identity.node_id, identity.public_key, api, stop).await;
}
