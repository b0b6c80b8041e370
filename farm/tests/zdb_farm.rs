//! The farm over real parts only: a 3-member etcd, eight real zdb servers as nodes and the
//! zdb shard store. Objects put and read back; two zdbs killed (heartbeats gone): reads go on,
//! repair restores full redundancy after the grace period without a command; a shard
//! overwritten with garbage inside a zdb is rebuilt by the scrub; the killed zdbs return with
//! their shards and those stale shards are collected.

mod common;

use bytes::Bytes;
use common::{STRIPE, data, eventually, get};
use farm::codec::seal::StoreKey;
use farm::codec::stripe::Shape;
use farm::ids::NodeId;
use farm::meta::Meta;
use farm::meta::records::NodeRecord;
use farm::meta::registry::Registration;
use farm::ops::Farm;
use farm::ops::repair::{RepairConfig, Repairer};
use farm::store::ShardStore;
use farm::store::zdb::{ZdbStore, ZdbStoreConfig};
use farm::testing::zdb::{ZdbServer, node_record};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use zdb_client::Secret;

const NS: &str = "farm";
const PW: &str = "farm-ns-pw";
const GRACE: u64 = 3;
const TTL: i64 = 2;

fn record(i: usize, address: String) -> NodeRecord {
    node_record(
        &format!("z{i}"),
        address,
        NS,
        Some(format!("rack{}", i % 4)),
    )
}

async fn client(meta: &Meta) -> Farm<ZdbStore> {
    let store = ZdbStore::new(
        ZdbStoreConfig {
            password: Some(Secret::new(PW)),
            connect_timeout: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            ..ZdbStoreConfig::default()
        },
        Some(meta.clone()),
    );
    store.refresh(meta).await.expect("registry");
    common::small(Farm::new(meta.clone(), store))
}

/// Every shard of every stripe is where the metadata says and verifies.
async fn fully_redundant(f: &Farm<ZdbStore>, name: &str) -> bool {
    let Ok(Some(cur)) = f.meta.object(name).await else {
        return false;
    };
    let m = cur.meta;
    let shape = Shape::new(m.id, m.params).expect("shape");
    for stripe in 0..m.stripes() {
        let nodes = m.nodes_of(stripe).expect("nodes");
        for (p, node) in nodes.iter().enumerate() {
            match f.store.get(node, &shape.shard_id(stripe, p as u8)).await {
                Ok(Some(b)) if shape.verify(stripe, p as u8, &b).is_ok() => {}
                _ => return false,
            }
        }
    }
    true
}

async fn shards_on(f: &Farm<ZdbStore>, node: &NodeId) -> usize {
    let mut n = 0;
    let mut cursor = None;
    loop {
        let (ids, next) = f.store.list(node, cursor, 500).await.expect("list");
        n += ids.len();
        match next {
            Some(c) => cursor = Some(c),
            None => return n,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_loss_rot_and_return_over_real_zdbs() {
    let Some((bin, cluster)) = common::zdb_and_etcd() else {
        return;
    };
    let meta = common::meta(&cluster).await;
    let mut zdbs: Vec<ZdbServer> = (0..8)
        .map(|_| {
            let z = ZdbServer::start(&bin).expect("zdb");
            z.provision(NS, PW).expect("provision");
            z
        })
        .collect();
    let mut regs = Vec::new();
    for (i, z) in zdbs.iter().enumerate() {
        regs.push(Some(
            Registration::start(&meta, record(i, z.address()), 1 << 30, TTL)
                .await
                .expect("register"),
        ));
    }
    let f = client(&meta).await;
    let key = StoreKey::generate();
    let names: Vec<String> = (0..3).map(|i| format!("o{i}")).collect();
    let len = |i: usize| 5 * STRIPE as usize + i;
    for (i, n) in names.iter().enumerate() {
        f.put(n, std::io::Cursor::new(data(len(i), i as u8)), &key)
            .await
            .expect("put");
        assert!(fully_redundant(&f, n).await);
    }

    let repair = client(&meta).await;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let cfg = RepairConfig {
            name: "zdb-repair".into(),
            grace: GRACE,
            tick: Duration::from_millis(200),
            scrub_interval: Duration::from_secs(2),
        };
        Repairer::new(&repair, cfg).run(stopped).await;
    });

    // Rot inside a zdb: a shard of o1 overwritten with garbage; the scrub rebuilds it.
    let m1 = meta.object("o1").await.expect("read").expect("o1").meta;
    let shape1 = Shape::new(m1.id, m1.params).expect("shape");
    let rot_node = m1.nodes_of(0).expect("nodes")[0].clone();
    f.store
        .put(
            &rot_node,
            &shape1.shard_id(0, 0),
            Bytes::from_static(b"garbage"),
        )
        .await
        .expect("overwrite");
    assert!(!fully_redundant(&f, "o1").await);
    eventually(30, "rotten shard rebuilt by the scrub", || {
        let f = &f;
        async move { fully_redundant(f, "o1").await }
    })
    .await;

    // Two nodes holding shards of o0 die.
    let m0 = meta.object("o0").await.expect("read").expect("o0").meta;
    let victims: Vec<NodeId> = m0.segments[0][..2].to_vec();
    let index = |v: &NodeId| {
        v.0.strip_prefix('z')
            .and_then(|s| s.parse::<usize>().ok())
            .expect("z<i>")
    };
    let killed = Instant::now();
    for v in &victims {
        drop(regs[index(v)].take());
        zdbs[index(v)].kill();
    }
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            get(&f, n, &key).await,
            data(len(i), i as u8),
            "{n} with 2 down"
        );
    }
    eventually(
        60,
        "full redundancy restored without the dead nodes",
        || {
            let (f, names, victims) = (&f, &names, &victims);
            async move {
                for n in names {
                    let Ok(Some(c)) = f.meta.object(n).await else {
                        return false;
                    };
                    if c.meta
                        .segments
                        .iter()
                        .any(|s| victims.iter().any(|v| s.contains(v)))
                        || !fully_redundant(f, n).await
                    {
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;
    assert!(
        killed.elapsed() >= Duration::from_secs(GRACE),
        "repaired before the grace period"
    );

    // They return with their stale shards: collected.
    for v in &victims {
        zdbs[index(v)].restart().expect("restart");
        assert!(shards_on(&f, v).await > 0, "{v} kept its shards");
        regs[index(v)] = Some(
            Registration::start(
                &meta,
                record(index(v), zdbs[index(v)].address()),
                1 << 30,
                TTL,
            )
            .await
            .expect("register again"),
        );
    }
    eventually(40, "stale shards of returned nodes collected", || {
        let (f, victims) = (&f, &victims);
        async move {
            for v in victims {
                if shards_on(f, v).await > 0 {
                    return false;
                }
            }
            true
        }
    })
    .await;
    for (i, n) in names.iter().enumerate() {
        assert_eq!(get(&f, n, &key).await, data(len(i), i as u8));
    }
    let _ = stop.send(true);
    task.await.expect("repair stops");
}
