//! Objects over the in-memory shard store with a real etcd: puts and gets, node loss repaired
//! after the grace period without any command, scrub of rotten and missing shards, and
//! collection of a returned node's stale shards.

mod common;

use common::{STRIPE, TTL, data, eventually, get};
use farm::codec::seal::StoreKey;
use farm::codec::stripe::Shape;
use farm::ids::NodeId;
use farm::meta::Meta;
use farm::meta::records::ObjectMeta;
use farm::meta::registry::Registration;
use farm::ops::Farm;
use farm::ops::repair::{RepairConfig, Repairer};
use farm::store::ShardStore;
use farm::store::mem::MemStore;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn farm(meta: &Meta, store: &MemStore) -> Farm<MemStore> {
    common::small(Farm::new(meta.clone(), store.clone()))
}

/// Every shard of every stripe is where the metadata says and verifies.
async fn fully_redundant(meta: &Meta, store: &MemStore, name: &str) -> bool {
    let Ok(Some(cur)) = meta.object(name).await else {
        return false;
    };
    let m = cur.meta;
    let shape = Shape::new(m.id, m.params).expect("shape");
    for stripe in 0..m.stripes() {
        let nodes = m.nodes_of(stripe).expect("nodes");
        for (p, node) in nodes.iter().enumerate() {
            match store.get(node, &shape.shard_id(stripe, p as u8)).await {
                Ok(Some(b)) if shape.verify(stripe, p as u8, &b).is_ok() => {}
                _ => return false,
            }
        }
    }
    true
}

fn start_repair(
    f: Farm<MemStore>,
    grace: u64,
    scrub: Duration,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let cfg = RepairConfig {
            name: "test-repair".into(),
            grace,
            tick: Duration::from_millis(200),
            scrub_interval: scrub,
        };
        Repairer::new(&f, cfg).run(stopped).await;
    });
    (stop, task)
}

fn uses(m: &ObjectMeta, node: &NodeId) -> bool {
    m.segments.iter().any(|s| s.contains(node))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_and_old_versions_are_collected() {
    let Some(cluster) = common::etcd(1) else {
        return;
    };
    let meta = common::meta(&cluster).await;
    let (ids, _regs, store) = common::nodes(&meta, 7).await;
    let f = farm(&meta, &store);
    let key = StoreKey::generate();
    let s = STRIPE as usize;
    for (i, len) in [0, 1, s - 1, s, s + 1, 9 * s + 5].into_iter().enumerate() {
        let name = format!("obj-{i}");
        let bytes = data(len, i as u8);
        let r = f
            .put(&name, std::io::Cursor::new(bytes.clone()), &key)
            .await
            .expect("put");
        assert_eq!(r.meta.size, len as u64);
        assert_eq!(get(&f, &name, &key).await, bytes, "size {len}");
        assert!(fully_redundant(&meta, &store, &name).await);
    }
    // A 10-stripe object has 3 segments of up to 4 stripes, each on 6 distinct nodes.
    let big = meta
        .object("obj-5")
        .await
        .expect("read")
        .expect("present")
        .meta;
    assert_eq!(big.segments.len(), 3);
    for seg in &big.segments {
        let mut s = seg.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 6);
    }
    // The wrong key reads nothing.
    let mut out = Vec::new();
    assert!(
        f.get("obj-4", &StoreKey::generate(), &mut out)
            .await
            .is_err()
    );
    assert!(out.is_empty());
    // Overwrite and remove: the old versions go to the trash, the repair loop deletes their
    // shards.
    let total_before: usize = store.counts().values().sum();
    let replaced = f
        .put("obj-5", std::io::Cursor::new(data(100, 9)), &key)
        .await
        .expect("put")
        .replaced;
    assert_eq!(replaced, Some(big.id));
    assert_eq!(get(&f, "obj-5", &key).await, data(100, 9));
    assert!(meta.remove("obj-4").await.expect("rm").is_some());
    assert!(matches!(
        f.get("obj-4", &key, &mut Vec::new()).await,
        Err(farm::ops::FarmError::NotFound(_))
    ));
    let (stop, task) = start_repair(farm(&meta, &store), 600, Duration::from_secs(3600));
    eventually(30, "trashed shards deleted", || async {
        let objects: Vec<(String, ObjectMeta)> = meta
            .list_json(&meta.keys().table("objects"))
            .await
            .expect("list");
        let expected: u64 = objects.iter().map(|(_, m)| m.stripes() * 6).sum();
        let total: usize = store.counts().values().sum();
        total as u64 == expected
    })
    .await;
    assert!(store.counts().values().sum::<usize>() < total_before);
    let _ = stop.send(true);
    task.await.expect("repair stops");
    let _ = ids;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_nodes_are_rebuilt_after_the_grace_period_and_collected_when_they_return() {
    let Some(cluster) = common::etcd(1) else {
        return;
    };
    let meta = common::meta(&cluster).await;
    let (ids, mut regs, store) = common::nodes(&meta, 8).await;
    let f = farm(&meta, &store);
    let key = StoreKey::generate();
    let names: Vec<String> = (0..4).map(|i| format!("o{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        f.put(
            n,
            std::io::Cursor::new(data(3 * STRIPE as usize + i, i as u8)),
            &key,
        )
        .await
        .expect("put");
    }
    const GRACE: u64 = 3;
    let (stop, task) = start_repair(farm(&meta, &store), GRACE, Duration::from_secs(3600));
    // Two nodes that hold shards die (m = 2): heartbeats stop, stores stop answering.
    let victims: Vec<NodeId> = {
        let m = meta
            .object("o0")
            .await
            .expect("read")
            .expect("present")
            .meta;
        m.segments[0][..2].to_vec()
    };
    let killed = Instant::now();
    for v in &victims {
        let i = ids.iter().position(|x| x == v).expect("known");
        drop(regs[i].take());
        store.set_down(v, true);
    }
    // Everything still reads while they are down.
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            get(&f, n, &key).await,
            data(3 * STRIPE as usize + i, i as u8)
        );
    }
    // Repair moves their shards without being asked, but not before the grace period.
    eventually(40, "full redundancy restored", || async {
        for n in &names {
            let m = meta.object(n).await.expect("read").expect("present").meta;
            if victims.iter().any(|v| uses(&m, v)) || !fully_redundant(&meta, &store, n).await {
                return false;
            }
        }
        true
    })
    .await;
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_secs(GRACE),
        "repaired after {took:?}, before the {GRACE} s grace period"
    );
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            get(&f, n, &key).await,
            data(3 * STRIPE as usize + i, i as u8)
        );
    }
    // They come back with their stale shards: collected, then they are up again.
    let stale = store.ids(&victims[0]).len();
    assert!(stale > 0);
    for v in &victims {
        store.set_down(v, false);
        let i = ids.iter().position(|x| x == v).expect("known");
        regs[i] = Some(
            Registration::start(&meta, common::record(v, None), 1 << 40, TTL)
                .await
                .expect("register"),
        );
    }
    eventually(30, "stale shards collected and nodes up", || async {
        let nodes = meta.nodes().await.expect("nodes");
        victims.iter().all(|v| store.ids(v).is_empty())
            && nodes
                .iter()
                .filter(|n| victims.contains(&n.record.id))
                .all(|n| farm::ops::states::state_of_view(n).usable())
    })
    .await;
    let _ = stop.send(true);
    task.await.expect("repair stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_rebuilds_rotten_and_missing_shards() {
    let Some(cluster) = common::etcd(1) else {
        return;
    };
    let meta = common::meta(&cluster).await;
    let (_ids, _regs, store) = common::nodes(&meta, 6).await;
    let f = farm(&meta, &store);
    let key = StoreKey::generate();
    let a = data(2 * STRIPE as usize, 1);
    let b = data(STRIPE as usize + 3, 2);
    f.put("a", std::io::Cursor::new(a.clone()), &key)
        .await
        .expect("put");
    f.put("b", std::io::Cursor::new(b.clone()), &key)
        .await
        .expect("put");
    let ma = meta.object("a").await.expect("read").expect("present").meta;
    let mb = meta.object("b").await.expect("read").expect("present").meta;
    let sa = Shape::new(ma.id, ma.params).expect("shape");
    let sb = Shape::new(mb.id, mb.params).expect("shape");
    // Object a: a flipped byte in a data shard and a missing parity shard. The read still
    // returns the right bytes and reports the damage.
    assert!(store.corrupt(&ma.segments[0][1], &sa.shard_id(0, 1), 500));
    assert!(store.remove(&ma.segments[0][4], &sa.shard_id(1, 4)));
    assert_eq!(get(&f, "a", &key).await, a);
    assert!(
        meta.get_raw(&meta.keys().damage(&ma.id))
            .await
            .expect("get")
            .is_some()
    );
    // Object b: rot nobody reads; the periodic scrub finds it.
    assert!(store.corrupt(&mb.segments[0][0], &sb.shard_id(1, 0), 80));
    assert!(!fully_redundant(&meta, &store, "a").await);
    assert!(!fully_redundant(&meta, &store, "b").await);
    let (stop, task) = start_repair(farm(&meta, &store), 600, Duration::from_secs(1));
    eventually(30, "both objects fully redundant again", || async {
        fully_redundant(&meta, &store, "a").await && fully_redundant(&meta, &store, "b").await
    })
    .await;
    assert!(
        meta.get_raw(&meta.keys().damage(&ma.id))
            .await
            .expect("get")
            .is_none()
    );
    // The progress record is written at the end of a tick, after the rebuilds it counts.
    eventually(10, "progress counts the 3 rebuilds", || async {
        meta.get_json::<farm::meta::records::Progress>(&meta.keys().progress())
            .await
            .expect("get")
            .is_some_and(|(p, _)| p.rebuilt >= 3)
    })
    .await;
    let _ = stop.send(true);
    task.await.expect("repair stops");
    assert_eq!(get(&f, "a", &key).await, a);
    assert_eq!(get(&f, "b", &key).await, b);
}
