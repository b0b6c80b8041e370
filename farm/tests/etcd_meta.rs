//! The farm's registry and metadata against a real 3-member etcd cluster on loopback.

mod common;

use common::{TTL, eventually};
use farm::codec::Params;
use farm::ids::{NodeId, ObjectId};
use farm::meta::Meta;
use farm::meta::election::Leadership;
use farm::meta::records::{ObjectMeta, now};
use farm::meta::registry::Registration;
use farm::ops::states::{NodeState, state_of_view, transition};
use std::time::{Duration, Instant};

async fn state(meta: &Meta, id: &NodeId) -> Option<NodeState> {
    let nodes = meta.nodes().await.expect("nodes");
    nodes.iter().find(|v| &v.record.id == id).map(state_of_view)
}

/// What the repair leader does with states, once.
async fn apply_transitions(meta: &Meta, grace: u64) {
    for v in meta.nodes().await.expect("nodes") {
        if let Some(next) = transition(v.alive.is_some(), &v.state, now(), grace) {
            meta.set_node_state(&v.record.id, &next, v.state_revision, None)
                .await
                .expect("set state");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_then_lease_expiry_then_down_then_out() {
    let Some(cluster) = common::etcd(3) else {
        return;
    };
    let meta = common::meta(&cluster).await;
    let a = NodeId::from("node-a");
    let b = NodeId::from("node-b");
    let reg_a = Registration::start(&meta, common::record(&a, Some("rack1")), 100, TTL)
        .await
        .expect("register a");
    let reg_b = Registration::start(&meta, common::record(&b, Some("rack2")), 200, TTL)
        .await
        .expect("register b");
    assert_eq!(state(&meta, &a).await, Some(NodeState::Up));
    // The heartbeat keeps the lease alive well past its TTL.
    tokio::time::sleep(Duration::from_secs(3 * TTL as u64)).await;
    apply_transitions(&meta, 3).await;
    assert_eq!(state(&meta, &a).await, Some(NodeState::Up));
    let nodes = meta.nodes().await.expect("nodes");
    let va = nodes.iter().find(|v| v.record.id == a).expect("a listed");
    assert_eq!(va.record.group.as_deref(), Some("rack1"));
    assert_eq!(va.alive.as_ref().map(|x| x.free), Some(100));

    // A crash: the heartbeat stops without revoking; the lease expires after its TTL.
    let crashed = Instant::now();
    drop(reg_a);
    eventually(10, "a's heartbeat expires", || async {
        let nodes = meta.nodes().await.expect("nodes");
        nodes.iter().any(|v| v.record.id == a && v.alive.is_none())
    })
    .await;
    assert!(
        crashed.elapsed() >= Duration::from_millis(1000),
        "lease went too early"
    );
    apply_transitions(&meta, 3).await;
    assert!(matches!(
        state(&meta, &a).await,
        Some(NodeState::Down { .. })
    ));
    assert_eq!(state(&meta, &b).await, Some(NodeState::Up));
    // Out once the grace period passed, not before.
    eventually(10, "a is out after the grace period", || async {
        apply_transitions(&meta, 3).await;
        matches!(state(&meta, &a).await, Some(NodeState::Out { .. }))
    })
    .await;
    let down_for = crashed.elapsed();
    assert!(
        down_for >= Duration::from_secs(3),
        "out after {down_for:?}, grace is 3 s"
    );

    // It comes back: returned (its stale shards are collected before it takes new ones).
    let _reg_a = Registration::start(&meta, common::record(&a, Some("rack1")), 100, TTL)
        .await
        .expect("register again");
    assert_eq!(state(&meta, &a).await, Some(NodeState::Returned));
    // A clean stop removes the heartbeat at once.
    reg_b.stop().await;
    let nodes = meta.nodes().await.expect("nodes");
    assert!(nodes.iter().any(|v| v.record.id == b && v.alive.is_none()));
}

fn object(name: &str) -> ObjectMeta {
    ObjectMeta {
        id: ObjectId::random(),
        name: name.to_string(),
        size: 10,
        params: Params::default(),
        created: now(),
        segment: 256,
        segments: vec![(0..6).map(|i| NodeId(format!("n{i}"))).collect()],
    }
}

/// Puts object `name` (metadata only: the shard side does not matter here).
async fn commit(meta: &Meta, name: &str) -> ObjectMeta {
    let obj = object(name);
    let put = meta.begin_put(name, obj.id).await.expect("begin");
    meta.commit_put(put, &obj).await.expect("commit");
    obj
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_replace_and_remove_atomically() {
    let Some(cluster) = common::etcd(3) else {
        return;
    };
    let meta = common::meta(&cluster).await;
    let first = commit(&meta, "a/b").await;
    let cur = meta.object("a/b").await.expect("read").expect("present");
    assert_eq!(cur.meta, first);
    // Overwrite: the old version moves to the trash in the same transaction.
    let second = object("a/b");
    let put = meta.begin_put("a/b", second.id).await.expect("begin");
    assert!(
        meta.get_raw(&meta.keys().pending(&second.id))
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        meta.commit_put(put, &second).await.expect("commit"),
        Some(first.id)
    );
    assert_eq!(
        meta.object("a/b")
            .await
            .expect("read")
            .expect("present")
            .meta,
        second
    );
    assert!(meta.object_by_id(&first.id).await.expect("read").is_none());
    assert!(
        meta.get_raw(&meta.keys().trash(&first.id))
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        meta.get_raw(&meta.keys().pending(&second.id))
            .await
            .expect("get")
            .is_none()
    );
    // Remove.
    assert_eq!(meta.remove("a/b").await.expect("rm"), Some(second.id));
    assert!(meta.object("a/b").await.expect("read").is_none());
    assert_eq!(meta.remove("a/b").await.expect("rm"), None);
    // A put whose pending record is gone cannot commit.
    let third = object("c");
    let put = meta.begin_put("c", third.id).await.expect("begin");
    meta.delete(&meta.keys().pending(&third.id))
        .await
        .expect("delete");
    assert!(meta.commit_put(put, &third).await.is_err());
    assert!(meta.object("c").await.expect("read").is_none());
    // Bad names are refused before etcd is asked.
    assert!(meta.begin_put("", ObjectId::random()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_repair_leader_at_a_time() {
    let Some(cluster) = common::etcd(3) else {
        return;
    };
    let meta = common::meta(&cluster).await;
    let first = Leadership::campaign(&meta, "one").await.expect("campaign");
    let m2 = meta.clone();
    let second = tokio::spawn(async move { Leadership::campaign(&m2, "two").await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!second.is_finished(), "two leaders at once");
    // A leader's fenced write works; after it resigns its fence fails.
    let obj = commit(&meta, "x").await;
    let cur = meta.object("x").await.expect("read").expect("present");
    assert!(
        meta.update_object(&obj, cur.revision, Some(first.fence()))
            .await
            .expect("update")
    );
    let fence = first.fence().to_vec();
    first.resign().await;
    let second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("elected")
        .expect("join")
        .expect("campaign");
    let cur = meta.object("x").await.expect("read").expect("present");
    let mut changed = obj.clone();
    changed.size = 11;
    assert!(
        !meta
            .update_object(&changed, cur.revision, Some(&fence))
            .await
            .expect("update")
    );
    assert!(
        meta.update_object(&changed, cur.revision, Some(second.fence()))
            .await
            .expect("update")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_etcd_leader_loses_no_write_and_stalls_under_two_seconds() {
    let Some(mut cluster) = common::etcd(3) else {
        return;
    };
    let meta = common::meta(&cluster).await;
    let writer = {
        let meta = meta.clone();
        tokio::spawn(async move {
            // (name, id, when it finished) of every acknowledged put.
            let mut done = Vec::new();
            let start = Instant::now();
            let mut i = 0u32;
            while start.elapsed() < Duration::from_secs(8) {
                let name = format!("obj-{i:05}");
                let obj = commit(&meta, &name).await;
                done.push((name, obj, Instant::now()));
                i += 1;
            }
            done
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = cluster.leader().await.expect("a leader");
    let killed = Instant::now();
    cluster.kill(victim);
    let done = writer.await.expect("writer");
    // The longest pause between two acknowledged puts around the kill.
    let mut worst = Duration::ZERO;
    for w in done.windows(2) {
        if w[1].2 >= killed {
            worst = worst.max(w[1].2 - w[0].2.max(killed));
        }
        if w[0].2 > killed + Duration::from_secs(4) {
            break;
        }
    }
    assert!(done.iter().any(|d| d.2 > killed), "no write after the kill");
    assert!(
        worst < Duration::from_secs(2),
        "writes stalled {worst:?} after the leader was killed"
    );
    // Every acknowledged put is there, whole: name -> id -> metadata, no pending record left.
    let names: Vec<(String, String)> = meta
        .list_json(&meta.keys().table("names"))
        .await
        .expect("names");
    assert_eq!(names.len(), done.len(), "names listed vs acknowledged");
    for (name, obj, _) in &done {
        let cur = meta
            .object(name)
            .await
            .expect("read")
            .expect("acknowledged put missing");
        assert_eq!(&cur.meta, obj);
    }
    let pending: Vec<(String, serde_json::Value)> = meta
        .list_json(&meta.keys().table("pending"))
        .await
        .expect("pending");
    assert!(pending.is_empty(), "half-done puts visible: {pending:?}");
    eprintln!(
        "{} puts, worst stall after killing member {victim}: {worst:?}",
        done.len()
    );
}
