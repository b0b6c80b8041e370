//! Two owners' stores sharing one farm's nodes, over real parts (a 3-member etcd, six real
//! zdbs): each store has its own objects under the same names, its own placement (only the
//! nodes hosting it, their free space in it), its own repair leader; a node that stops hosting
//! one store has that store's shards rebuilt elsewhere while the other store's stay put.

mod common;

use common::{STRIPE, data, eventually, get};
use farm::codec::seal::StoreKey;
use farm::ids::NodeId;
use farm::meta::Meta;
use farm::meta::records::{NodeRecord, ObjectMeta, Progress, ZdbEndpoint};
use farm::meta::registry::{Free, Registration};
use farm::meta::stores::pick;
use farm::ops::Farm;
use farm::ops::repair::{RepairConfig, Repairer};
use farm::store::zdb::{ZdbStore, ZdbStoreConfig};
use farm::testing::zdb::{ZdbServer, node_record};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use zdb_client::Secret;

const A: &str = "ownera/dep1/photos";
const B: &str = "ownerb/dep7/backups";

/// Node `i`'s record: a namespace in each store it hosts, on its one zdb.
fn record(i: usize, z: &ZdbServer, stores: &[&str]) -> NodeRecord {
    let mut r = node_record(&format!("z{i}"), z.address(), "unused", None);
    r.zdb = stores
        .iter()
        .map(|s| ZdbEndpoint {
            address: z.address(),
            namespace: namespace(s).into(),
            store: Some(s.to_string()),
        })
        .collect();
    r
}

fn namespace(store: &str) -> &'static str {
    if store == A { "sa" } else { "sb" }
}

fn password(store: &str) -> &'static str {
    if store == A { "pw-a" } else { "pw-b" }
}

async fn client(meta: &Meta, store: &str) -> Farm<ZdbStore> {
    let cfg = ZdbStoreConfig {
        store: Some(store.into()),
        password: Some(Secret::new(password(store))),
        connect_timeout: Duration::from_millis(500),
        ..ZdbStoreConfig::default()
    };
    let mut f = common::small(Farm::over(meta, cfg).await.expect("client"));
    (f.params.k, f.params.m) = (2, 2);
    f
}

/// The current version of `name` in `f`'s store.
async fn object(f: &Farm<ZdbStore>, name: &str) -> ObjectMeta {
    f.meta.object(name).await.expect("read").expect(name).meta
}

/// Every node holding a shard of `m`.
fn nodes_of(m: &ObjectMeta) -> Vec<NodeId> {
    let mut all: Vec<NodeId> = m.segments.iter().flatten().cloned().collect();
    all.sort();
    all.dedup();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_share_the_nodes_and_nothing_else() {
    let Some((bin, cluster)) = common::zdb_and_etcd() else {
        return;
    };
    let meta = common::meta(&cluster).await;
    // z0..z4 host both stores, z5 only B.
    let hosts = |i: usize| if i < 5 { vec![A, B] } else { vec![B] };
    let zdbs: Vec<ZdbServer> = (0..6)
        .map(|i| {
            let z = ZdbServer::start(&bin).expect("zdb");
            for s in hosts(i) {
                z.provision(namespace(s), password(s)).expect("provision");
            }
            z
        })
        .collect();
    let mut regs = Vec::new();
    for (i, z) in zdbs.iter().enumerate() {
        // B's namespaces on z0..z4 report less free space than A's.
        let stores: BTreeMap<String, u64> = hosts(i)
            .iter()
            .map(|s| (s.to_string(), if *s == A { 1 << 30 } else { 1 << 29 }))
            .collect();
        let free = Free { free: 0, stores };
        regs.push(
            Registration::start_reporting(&meta, record(i, z, &hosts(i)), free, common::TTL)
                .await
                .expect("register"),
        );
    }

    // Which stores the farm holds, and which one a client means.
    let known = meta.stores().await.expect("stores");
    assert_eq!(known, [Some(A.into()), Some(B.into())].into());
    assert!(pick(None, &known).is_err(), "two stores: one must be named");
    assert_eq!(pick(Some("photos"), &known), Ok(Some(A.into())));

    let (fa, fb) = (client(&meta, A).await, client(&meta, B).await);
    let seen = fa.meta.nodes().await.expect("nodes of A");
    assert_eq!(seen.len(), 5, "A is on z0..z4 only");
    assert!(
        seen.iter()
            .all(|v| v.alive.as_ref().is_some_and(|a| a.free == 1 << 30)),
        "A's free space is its namespaces': {seen:?}"
    );
    assert_eq!(fb.meta.nodes().await.expect("nodes of B").len(), 6);

    // The same name in both stores: two objects, each read with its own key.
    let (ka, kb) = (StoreKey::generate(), StoreKey::generate());
    let len = 3 * STRIPE as usize + 5;
    fa.put("same", std::io::Cursor::new(data(len, 1)), &ka)
        .await
        .expect("put A");
    fb.put("same", std::io::Cursor::new(data(len, 2)), &kb)
        .await
        .expect("put B");
    fa.put("only-a", std::io::Cursor::new(data(7, 3)), &ka)
        .await
        .expect("put A");
    assert_eq!(get(&fa, "same", &ka).await, data(len, 1));
    assert_eq!(get(&fb, "same", &kb).await, data(len, 2));
    assert!(fb.meta.object("only-a").await.expect("read").is_none());
    let mut wide = client(&meta, B).await;
    (wide.params.k, wide.params.m) = (4, 2);
    wide.put("wide", std::io::Cursor::new(data(len, 4)), &kb)
        .await
        .expect("4+2 in B: six nodes");
    let z5 = NodeId("z5".into());
    let wide_meta = object(&wide, "wide").await;
    assert!(nodes_of(&wide_meta).contains(&z5));
    let mut too_wide = client(&meta, A).await;
    (too_wide.params.k, too_wide.params.m) = (4, 2);
    let e = too_wide
        .put("wide", std::io::Cursor::new(data(9, 5)), &ka)
        .await
        .expect_err("4+2 in A: five nodes");
    assert!(e.to_string().contains("node"), "{e}");
    let a_same = object(&fa, "same").await;
    assert!(!nodes_of(&a_same).contains(&z5), "A never on z5");

    // One repair leader per store.
    let mut stops = Vec::new();
    for (name, store) in [("rep-a", A), ("rep-b", B)] {
        let f = client(&meta, store).await;
        let (stop, stopped) = watch::channel(false);
        let cfg = RepairConfig {
            name: name.into(),
            grace: 3,
            tick: Duration::from_millis(200),
            scrub_interval: Duration::from_secs(3600),
        };
        stops.push((
            stop,
            tokio::spawn(async move { Repairer::new(&f, cfg).run(stopped).await }),
        ));
    }
    eventually(30, "both stores' leaders made a pass", || {
        let (fa, fb) = (&fa, &fb);
        async move {
            let led = |f: &Farm<ZdbStore>, name: &'static str| {
                let (meta, key) = (f.meta.clone(), f.meta.keys().progress());
                async move {
                    matches!(meta.get_json::<Progress>(&key).await,
                        Ok(Some((p, _))) if p.leader == name && p.passes > 0)
                }
            };
            led(fa, "rep-a").await && led(fb, "rep-b").await
        }
    })
    .await;

    // A node that stops hosting A (its namespace revoked) leaves A: A's shards on it are
    // rebuilt on A's spare node, B's stay where they are.
    let leaver = a_same.segments[0][0].clone();
    let i: usize = leaver.0[1..].parse().expect("z<i>");
    let b_same = object(&fb, "same").await;
    meta.put_json(&meta.keys().node(&leaver), &record(i, &zdbs[i], &[B]), None)
        .await
        .expect("rewrite record");
    eventually(30, "A's object moved off the node that left A", || {
        let fa = &fa;
        let leaver = &leaver;
        async move {
            fa.meta.object("same").await.is_ok_and(|c| {
                c.is_some_and(|c| !c.meta.segments.iter().flatten().any(|n| n == leaver))
            })
        }
    })
    .await;
    assert_eq!(get(&fa, "same", &ka).await, data(len, 1));
    let b_after = object(&fb, "same").await;
    assert_eq!(b_after.segments, b_same.segments, "B untouched");
    assert_eq!(get(&fb, "same", &kb).await, data(len, 2));

    for (stop, task) in stops {
        let _ = stop.send(true);
        task.await.expect("repairer");
    }
    for r in regs {
        r.stop().await;
    }
}
