//! The real shard store against real zdb servers: shards round-trip through a password
//! protected namespace, listings page through everything and skip foreign keys, a wrong
//! password is a refusal that writes nothing, a dead node is unavailable within the deadline and
//! usable again when it returns.

use bytes::Bytes;
use farm::ids::{NodeId, ObjectId, ShardId};
use farm::meta::records::NodeRecord;
use farm::store::zdb::{ZdbStore, ZdbStoreConfig};
use farm::store::{ShardStore, StoreError};
use farm::testing::zdb::{ZdbServer, node_record, zdb_bin};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use zdb_client::{Config, Secret};

const NS: &str = "farm";
const PW: &str = "shard-secret";

fn server() -> Option<ZdbServer> {
    let bin = zdb_bin();
    if nodeutil::skip::unless(bin.is_some(), "zdb binary (cargo build -p zdb)") {
        return None;
    }
    let s = ZdbServer::start(&bin?).expect("zdb");
    s.provision(NS, PW).expect("provision");
    Some(s)
}

fn store(password: &str, rec: &NodeRecord) -> ZdbStore {
    let s = ZdbStore::new(
        ZdbStoreConfig {
            password: Some(Secret::new(password)),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            ..ZdbStoreConfig::default()
        },
        None,
    );
    s.set_nodes([rec]);
    s
}

fn shard(object: ObjectId, stripe: u64, index: u8) -> ShardId {
    ShardId {
        object,
        stripe,
        index,
    }
}

#[tokio::test]
async fn shards_round_trip_and_delete() {
    let Some(z) = server() else { return };
    let n = NodeId::from("n0");
    let s = store(PW, &node_record(&n.0, z.address(), NS, None));
    let o = ObjectId::random();
    let mut big = vec![0u8; 1 << 20];
    nodeutil::random::fill(&mut big);
    let big = Bytes::from(big);
    for (i, data) in [Bytes::new(), Bytes::from_static(b"x"), big]
        .into_iter()
        .enumerate()
    {
        let id = shard(o, 0, i as u8);
        s.put(&n, &id, data.clone()).await.expect("put");
        assert_eq!(s.get(&n, &id).await.expect("get"), Some(data));
    }
    // Overwrite (a rebuilt shard replaces a corrupted one).
    let id = shard(o, 0, 2);
    s.put(&n, &id, Bytes::from_static(b"rebuilt"))
        .await
        .expect("overwrite");
    assert_eq!(
        s.get(&n, &id).await.expect("get").as_deref(),
        Some(&b"rebuilt"[..])
    );
    s.delete(&n, &id).await.expect("delete");
    assert_eq!(s.get(&n, &id).await.expect("get deleted"), None);
    s.delete(&n, &id).await.expect("delete of an absent shard");
    assert_eq!(s.get(&n, &shard(o, 9, 0)).await.expect("get absent"), None);
    let (used, _) = s.usage(&n).await.expect("nsinfo");
    assert!(used > 0, "the namespace holds the shards");
    let other = NodeId::from("nobody");
    assert!(matches!(
        s.get(&other, &id).await,
        Err(StoreError::Unknown(_))
    ));
}

#[tokio::test]
async fn list_pages_through_every_shard_and_skips_foreign_keys() {
    let Some(z) = server() else { return };
    let n = NodeId::from("n0");
    let s = store(PW, &node_record(&n.0, z.address(), NS, None));
    let o = ObjectId::random();
    let mut want = BTreeSet::new();
    for stripe in 0..150u64 {
        for index in 0..2u8 {
            let id = shard(o, stripe, index);
            s.put(&n, &id, Bytes::from_static(b"s")).await.expect("put");
            want.insert(id);
        }
    }
    // A key that is not a shard id, written straight into the namespace.
    let mut c = zdb_client::AsyncClient::connect(
        Config::tcp(z.address())
            .with_namespace(NS)
            .with_password(PW)
            .with_secure_auth(),
    )
    .await
    .expect("connect");
    c.set(b"not-a-shard", b"junk").await.expect("set");

    let mut got = BTreeSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (ids, next) = s.list(&n, cursor, 40).await.expect("list");
        pages += 1;
        assert!(pages < 100, "the listing ends");
        for id in ids {
            assert!(got.insert(id), "listed twice: {id:?}");
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, want);
    assert!(pages > 1, "300 shards take more than one page of 40");
}

#[tokio::test]
async fn wrong_password_is_a_refusal_and_writes_nothing() {
    let Some(z) = server() else { return };
    let n = NodeId::from("n0");
    let rec = node_record(&n.0, z.address(), NS, None);
    let bad = store("not-the-password", &rec);
    let id = shard(ObjectId::random(), 0, 0);
    let e = bad
        .put(&n, &id, Bytes::from_static(b"data"))
        .await
        .expect_err("wrong password");
    assert!(matches!(e, StoreError::Refused(..)), "{e}");
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    let good = store(PW, &rec);
    assert_eq!(good.get(&n, &id).await.expect("get"), None);
}

#[tokio::test]
async fn dead_node_is_unavailable_in_time_and_usable_when_back() {
    let Some(mut z) = server() else { return };
    let n = NodeId::from("n0");
    let s = store(PW, &node_record(&n.0, z.address(), NS, None));
    let id = shard(ObjectId::random(), 0, 0);
    s.put(&n, &id, Bytes::from_static(b"kept"))
        .await
        .expect("put");
    z.kill();
    // The pooled connection is dead and a new one is refused.
    for _ in 0..2 {
        let t0 = Instant::now();
        let e = s.get(&n, &id).await.expect_err("node down");
        assert!(matches!(e, StoreError::Unavailable(..)), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }
    z.restart().expect("restart");
    assert_eq!(
        s.get(&n, &id).await.expect("get after restart").as_deref(),
        Some(&b"kept"[..])
    );
}
