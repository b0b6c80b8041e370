//! Shared set-up of the farm's tests: a real etcd, fake nodes registered in it, a farm client
//! over the in-memory shard store.
#![allow(dead_code, unused_imports, reason = "each test binary uses part of it")]

use farm::codec::Params;
use farm::codec::seal::StoreKey;
use farm::ids::NodeId;
use farm::meta::Meta;
use farm::meta::records::{NodeRecord, ZdbEndpoint, now};
use farm::meta::registry::Registration;
use farm::ops::Farm;
use farm::store::ShardStore;
use farm::store::mem::MemStore;
pub use farm::testing::eventually;
use farm::testing::{EtcdCluster, has_etcd};

/// Heartbeat TTL of test nodes (etcd's floor is 1.5 s with its default timings).
pub const TTL: i64 = 2;

/// A real etcd cluster of `n` members, or `None` when etcd is not installed (skip locally,
/// fail under CI).
pub fn etcd(n: usize) -> Option<EtcdCluster> {
    if nodeutil::skip::unless(has_etcd(), "etcd (Debian etcd-server)") {
        return None;
    }
    Some(EtcdCluster::start(n).expect("etcd cluster"))
}

/// The zdb binary and a 3-member etcd, or `None` when either is missing (skip locally, fail
/// under CI).
pub fn zdb_and_etcd() -> Option<(std::path::PathBuf, EtcdCluster)> {
    let bin = farm::testing::zdb::zdb_bin();
    if nodeutil::skip::unless(bin.is_some(), "zdb binary (cargo build -p zdb)") {
        return None;
    }
    Some((bin?, etcd(3)?))
}

/// A farm of a fresh name on `cluster`.
pub async fn meta(cluster: &EtcdCluster) -> Meta {
    let farm = format!("t{}", nodeutil::random::hex(6));
    Meta::connect(&cluster.endpoints(), &farm)
        .await
        .expect("connect")
}

/// The record of test node `id`.
pub fn record(id: &NodeId, group: Option<&str>) -> NodeRecord {
    NodeRecord {
        id: id.clone(),
        public_key: "00".repeat(32),
        group: group.map(str::to_string),
        capacity: 1 << 40,
        disk_classes: vec!["hdd".into()],
        zdb: vec![ZdbEndpoint {
            address: "127.0.0.1:9900".into(),
            namespace: "farm".into(),
            store: None,
        }],
        registered: now(),
    }
}

/// Nodes `n0..n{count}` registered with heartbeats and present in a fresh in-memory store.
pub async fn nodes(
    meta: &Meta,
    count: usize,
) -> (Vec<NodeId>, Vec<Option<Registration>>, MemStore) {
    let ids: Vec<NodeId> = (0..count).map(|i| NodeId(format!("n{i}"))).collect();
    let store = MemStore::new(&ids);
    let mut regs = Vec::new();
    for id in &ids {
        regs.push(Some(
            Registration::start(meta, record(id, None), 1 << 40, TTL)
                .await
                .expect("register"),
        ));
    }
    (ids, regs, store)
}

/// `len` bytes determined by `seed`.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&[seed])
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Plain bytes per stripe in the tests: small, so objects have several stripes.
pub const STRIPE: u32 = 64 * 1024;

/// `f` with the tests' small stripes, and segments of 4 stripes so an object spans several
/// node sets.
pub fn small<S>(mut f: Farm<S>) -> Farm<S> {
    f.params = Params {
        stripe: STRIPE,
        ..Params::default()
    };
    f.segment = 4;
    f
}

/// The whole of object `name`.
pub async fn get<S: ShardStore + Clone>(f: &Farm<S>, name: &str, key: &StoreKey) -> Vec<u8> {
    let mut out = Vec::new();
    f.get(name, key, &mut out).await.expect("get");
    out
}
