//! The storage farm's scenarios on real dev nodes (issue 23's test list): six storage-only
//! dev nodes on one machine (each node-init with its own storaged, loop disks and zdb;
//! `--storage-only`: no computed, no netd) and a real 3-member etcd. Nothing is provisioned
//! by hand: the owner signs one `store` deployment and writes it to the farm through etcd
//! (`zos deploy --etcd`); every node applies it through its engine, which has storaged
//! allocate the shard namespace, and registers that namespace.
//!
//! The scenarios share the nodes, the harmless first and the destructive last:
//! 1. objects of 0 B, 1 B, a stripe - 1, a stripe, a stripe + 1 and 100 MiB round-trip
//!    through `zos store put/get` (2+2);
//!    then a second owner authorises a store of their own on the same nodes: the same name
//!    holds another object there, each store lists only its own, naming no store is refused;
//! 2. the etcd leader is killed during a stream of puts (the farm library, as `zos store`
//!    uses it): they resume within 2 s, none is lost or half-visible;
//! 3. a shard flipped and another deleted inside the nodes' zdbs: a read returns the right
//!    bytes, reports the damage, and the repair loop rebuilds both in place;
//! 4. m = 2 nodes holding shards crash (node-init, storaged and zdb SIGKILLed): every object
//!    reads back; after the grace period the repair loop the nodes run restores full
//!    redundancy without any command (`zos store status NAME` says so);
//! 5. one of them comes back after being declared out: its stale shards are collected and it
//!    is up again; everything still reads.
//!
//! Needs root (loop devices, btrfs mounts), etcd, btrfs-progs and the binaries (`cargo build
//! --workspace --bins`); skipped otherwise, failed under CI.
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

mod harness;

use bytes::Bytes;
use farm::codec::stripe::Shape;
use farm::ids::NodeId;
use farm::meta::records::Progress;
use farm::ops::Farm;
use farm::ops::health::health;
use farm::ops::snapshot::Snapshot;
use farm::store::ShardStore;
use farm::store::zdb::ZdbStore;
use harness::{GRACE, Nodes, block_on, data, fully_redundant, holders, shards_on, until};
use serde_json::json;
use std::time::{Duration, Instant};

const NODES: usize = 6;
const SHAPE: &str = "2+2";
const STRIPE: usize = 4 << 20;

/// The owner signs the farm's `store` deployment and writes it through etcd; every node
/// provisions its namespace and registers it. Also writes the user's store key, and the
/// store's name (`store`) that the harness's `zos` and client name.
fn authorise(nodes: &Nodes) {
    let store = authorise_store(nodes, "owner", "shards", "shards", 1 << 30);
    std::fs::write(nodes.path("store"), store).unwrap();
    nodes.ok(&["store", "keygen", nodes.path("store.key").to_str().unwrap()]);
}

/// Owner `who` (a new key `<who>.key`) signs deployment `id` holding `store` workload
/// `workload` of `size` bytes per node, with a fresh password in `<who>.pw`, and writes it to
/// the farm; the store's name.
fn authorise_store(nodes: &Nodes, who: &str, id: &str, workload: &str, size: u64) -> String {
    let password = format!("pw-{}", nodeutil::random::hex(8));
    let pw_file = if who == "owner" {
        nodes.path("pw")
    } else {
        nodes.path(&format!("{who}.pw"))
    };
    std::fs::write(pw_file, &password).unwrap();
    let owner = nodes.path(&format!("{who}.key"));
    let owner = owner.to_str().unwrap();
    nodes.ok(&["key", "new", owner]);
    let owner_pub = nodes.text(&["key", "show", owner]);
    let owner_pub = owner_pub.split_whitespace().last().unwrap().to_string();
    let store = json!({
        "id": id,
        "version": 0,
        "owner": owner_pub,
        "signers": {"threshold": 1, "keys": [{"key": owner_pub, "weight": 1}]},
        "workloads": [{
            "name": workload, "type": "store", "version": 0,
            "data": {"farm": nodes.name, "size": size, "password": password},
        }],
    });
    let bp = nodes.path(&format!("{who}-store.json"));
    std::fs::write(&bp, store.to_string()).unwrap();
    let (etcd, name) = (nodes.endpoints(), nodes.name.clone());
    nodes.ok(&[
        "deploy",
        bp.to_str().unwrap(),
        "--key",
        owner,
        "--etcd",
        &etcd,
        "--farm",
        &name,
    ]);
    format!("{owner_pub}/{id}/{workload}")
}

/// A second owner's store on the same nodes: every node provisions and advertises a second
/// namespace; the store has its own objects under the same names and its own key; a client
/// must say which store it means.
fn a_second_owner_shares_the_nodes(nodes: &Nodes, client: &Farm<ZdbStore>, one: &[u8]) {
    let vault = authorise_store(nodes, "other", "second", "vault", 256 << 20);
    let key = nodes.path("other-store.key");
    let (key, pw) = (key.to_str().unwrap(), nodes.path("other.pw"));
    nodes.ok(&["store", "keygen", key]);
    until(90, "every node advertises both stores", || {
        let all = block_on(client.meta.stores());
        let vault_nodes = block_on(client.meta.scoped(Some(&vault)).unwrap().nodes());
        all.is_ok_and(|s| s.len() == 2)
            && vault_nodes.is_ok_and(|v| {
                v.iter()
                    .filter(|v| v.alive.as_ref().is_some_and(|a| a.free > 0))
                    .count()
                    == NODES
            })
    });
    let as_other = |args: &[&str]| {
        let mut all = vec!["store", "--store", "vault", "--password-file"];
        all.push(pw.to_str().unwrap());
        all.extend_from_slice(args);
        nodes.ok(&all)
    };
    let mine = data(STRIPE + 3, 77);
    let input = nodes.path("vault-in");
    std::fs::write(&input, &mine).unwrap();
    as_other(&[
        "put",
        "--key",
        key,
        "--shards",
        SHAPE,
        "one",
        input.to_str().unwrap(),
    ]);
    let out = nodes.path("vault-out");
    as_other(&["get", "--key", key, "one", out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == mine, "the vault's one");
    reads_back(nodes, "one", one, "beside the vault's own one");
    let ls = String::from_utf8(as_other(&["ls"])).unwrap();
    assert_eq!(
        ls.lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect::<Vec<_>>(),
        ["one"],
        "the vault lists only its own: {ls}"
    );
    // Naming no store in a farm of two is refused, with the choices.
    let o = nodes.unnamed(&["store", "ls"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("several stores") && err.contains("vault"),
        "{err}"
    );
    // The owner's key does not open the other's object.
    let wrong = nodes.zos(&[
        "store",
        "--store",
        "vault",
        "--password-file",
        pw.to_str().unwrap(),
        "get",
        "one",
        out.to_str().unwrap(),
    ]);
    assert!(!wrong.status.success(), "another owner's key opens nothing");
}

/// Puts `data` as `name` with `zos store put` from a file.
fn put(nodes: &Nodes, name: &str, data: &[u8]) {
    let p = nodes.path(&format!("in-{name}"));
    std::fs::write(&p, data).unwrap();
    nodes.ok(&["store", "put", "--shards", SHAPE, name, p.to_str().unwrap()]);
    std::fs::remove_file(&p).unwrap();
}

/// `zos store get NAME FILE` returns exactly `data`.
fn reads_back(nodes: &Nodes, name: &str, data: &[u8], when: &str) {
    let p = nodes.path(&format!("out-{name}"));
    nodes.ok(&["store", "get", name, p.to_str().unwrap()]);
    let got = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    assert!(
        got == data,
        "{name} ({} bytes) reads back {when}: got {} bytes",
        data.len(),
        got.len()
    );
}

/// The last line of `zos store status NAME`.
fn redundancy(nodes: &Nodes, name: &str) -> String {
    let out = nodes.text(&["store", "status", name]);
    out.lines().last().unwrap_or_default().to_string()
}

/// The repair loop's progress as `zos store status` shows it (`None`: no pass yet).
fn progress(client: &Farm<ZdbStore>) -> Option<Progress> {
    block_on(
        client
            .meta
            .get_json::<Progress>(&client.meta.keys().progress()),
    )
    .unwrap()
    .map(|(p, _)| p)
}

/// Whether every object in `names` has all its positions on up nodes.
fn all_full(client: &Farm<ZdbStore>, names: &[String]) -> bool {
    block_on(async {
        let Ok(nodes) = client.meta.nodes().await else {
            return false;
        };
        let states = Snapshot { nodes }.states();
        for n in names {
            match client.meta.object(n).await {
                Ok(Some(c)) if health(&c.meta, &states).full() => {}
                _ => return false,
            }
        }
        true
    })
}

/// A stream of small puts through the library for 8 s; the etcd leader is killed 2 s in.
/// Returns the names and seeds acknowledged, when each was, and when the leader died.
fn puts_while_the_leader_dies(
    nodes: &mut Nodes,
    client: &Farm<ZdbStore>,
) -> (Vec<(String, u64, Instant)>, Instant, usize) {
    let key = nodes.key();
    let etcd = &mut nodes.etcd;
    block_on(async {
        let writer = async {
            let mut done = Vec::new();
            let t0 = Instant::now();
            let mut i = 0u64;
            while t0.elapsed() < Duration::from_secs(8) {
                let name = format!("stream/{i:04}");
                let bytes = data(4096 + i as usize, 1000 + i);
                client
                    .put(&name, std::io::Cursor::new(bytes), &key)
                    .await
                    .unwrap_or_else(|e| panic!("put {name}: {e}"));
                done.push((name, 1000 + i, Instant::now()));
                i += 1;
            }
            done
        };
        let killer = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let victim = etcd.leader().await.expect("an etcd leader");
            etcd.kill(victim);
            (Instant::now(), victim)
        };
        let (done, (killed, victim)) = tokio::join!(writer, killer);
        (done, killed, victim)
    })
}

#[test]
fn farm_on_dev_nodes_round_trips_survives_losses_and_repairs_itself() {
    if harness::skip() {
        return;
    }
    let t0 = Instant::now();
    let mut nodes = Nodes::start(NODES);
    authorise(&nodes);
    let mut client = nodes.client();
    (client.params.k, client.params.m) = (2, 2);

    // Every node provisions its namespace through storaged and registers it; heartbeats
    // report the namespace's free space.
    until(90, "six nodes registered with a store namespace", || {
        block_on(client.meta.nodes()).is_ok_and(|ns| {
            ns.iter()
                .filter(|v| {
                    v.alive.is_some() && v.record.zdb.iter().any(|z| z.namespace.contains("shards"))
                })
                .count()
                == NODES
        })
    });
    let views = block_on(client.meta.nodes()).unwrap();
    assert!(
        views.iter().all(|v| v
            .alive
            .as_ref()
            .is_some_and(|a| a.free > 0 && a.free <= 1 << 30)),
        "heartbeats report the namespaces' free space: {views:?}"
    );
    block_on(client.store.refresh(&client.meta)).unwrap();
    eprintln!("{:?}: {NODES} nodes ready", t0.elapsed());

    // 1. Round trips through `zos store`.
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    let sizes = [
        ("empty", 0),
        ("one", 1),
        ("stripe-1", STRIPE - 1),
        ("stripe", STRIPE),
        ("stripe+1", STRIPE + 1),
        ("big", 100 << 20),
    ];
    for (seed, (name, size)) in sizes.into_iter().enumerate() {
        let bytes = data(size, seed as u64);
        put(&nodes, name, &bytes);
        reads_back(&nodes, name, &bytes, "after its put");
        objects.push((name.to_string(), bytes));
    }
    let ls = nodes.text(&["store", "ls"]);
    for (name, bytes) in &objects {
        assert!(
            ls.lines()
                .any(|l| l.starts_with(&format!("{name}\t{}\t", bytes.len()))),
            "{name} listed: {ls}"
        );
    }
    for (name, _) in &objects {
        assert!(
            block_on(fully_redundant(&client, name)),
            "{name} all shards"
        );
    }
    eprintln!("{:?}: round trips done", t0.elapsed());
    a_second_owner_shares_the_nodes(&nodes, &client, &objects[1].1);
    eprintln!(
        "{:?}: a second owner's store beside the first",
        t0.elapsed()
    );

    // 2. The etcd leader dies during a stream of puts.
    let (stream, killed, victim) = puts_while_the_leader_dies(&mut nodes, &client);
    let mut worst = Duration::ZERO;
    for w in stream.windows(2) {
        if w[1].2 >= killed {
            worst = worst.max(w[1].2 - w[0].2.max(killed));
        }
    }
    assert!(stream.iter().any(|s| s.2 > killed), "no put after the kill");
    assert!(
        worst < Duration::from_secs(2),
        "puts stalled {worst:?} after the etcd leader was killed"
    );
    eprintln!(
        "{:?}: {} puts, worst stall {worst:?} after killing etcd member {victim}",
        t0.elapsed(),
        stream.len()
    );
    nodes.etcd.restart(victim).unwrap();
    // None lost, none half-visible: every name is an acknowledged put or an object of step 1,
    // each acknowledged put reads back whole, no pending record is left.
    let names = block_on(client.meta.names(None, 10_000)).unwrap();
    assert_eq!(names.len(), objects.len() + stream.len(), "names vs puts");
    let pending: Vec<(String, serde_json::Value)> =
        block_on(client.meta.list_json(&client.meta.keys().table("pending"))).unwrap();
    assert!(pending.is_empty(), "half-done puts visible: {pending:?}");
    let key = nodes.key();
    for (name, seed, _) in &stream {
        let mut out = Vec::new();
        block_on(client.get(name, &key, &mut out)).unwrap();
        let i = seed - 1000;
        assert!(out == data(4096 + i as usize, *seed), "{name} reads back");
    }
    let mut all: Vec<String> = objects.iter().map(|(n, _)| n.clone()).collect();
    all.extend(stream.iter().map(|s| s.0.clone()));

    // 3. Rot: in "stripe+1", stripe 1's first data shard gets flipped bytes and the second is
    // deleted, inside the nodes' zdbs. A read still returns the right bytes and reports it;
    // the repair loop rebuilds both in place.
    let m = block_on(client.meta.object("stripe+1"))
        .unwrap()
        .unwrap()
        .meta;
    let shape = Shape::new(m.id, m.params).unwrap();
    let at = m.nodes_of(1).unwrap().to_vec();
    let (flipped, deleted) = (shape.shard_id(1, 0), shape.shard_id(1, 1));
    block_on(async {
        let good = client.store.get(&at[0], &flipped).await.unwrap().unwrap();
        let mut bad = good.to_vec();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x5a;
        bad[mid + 1] ^= 0xff;
        client
            .store
            .put(&at[0], &flipped, Bytes::from(bad))
            .await
            .unwrap();
        client.store.delete(&at[1], &deleted).await.unwrap();
    });
    assert!(!block_on(fully_redundant(&client, "stripe+1")));
    let before = progress(&client).unwrap_or_default();
    reads_back(
        &nodes,
        "stripe+1",
        &objects[4].1,
        "with a shard rotten, one gone",
    );
    until(30, "the rotten and the missing shard rebuilt", || {
        block_on(fully_redundant(&client, "stripe+1"))
    });
    // The leader writes its progress at the end of its pass (a new leader starts from 0).
    until(30, "zos store status counts the two rebuilt shards", || {
        progress(&client).is_some_and(|p| {
            p.rebuilt >= before.rebuilt + 2 || (p.leader != before.leader && p.rebuilt >= 2)
        })
    });
    eprintln!("{:?}: rot repaired", t0.elapsed());

    // 4. Two nodes holding shards of "big" crash.
    let victims: Vec<NodeId> = holders(&client.meta, "big")[..2].to_vec();
    let crashed = Instant::now();
    for v in &victims {
        let i = nodes.index(v);
        nodes.crash(i);
    }
    for (name, bytes) in &objects {
        reads_back(&nodes, name, bytes, "with two nodes gone");
    }
    for (name, seed, _) in stream.iter().step_by(7) {
        let mut out = Vec::new();
        block_on(client.get(name, &key, &mut out)).unwrap();
        assert!(
            out == data(4096 + (seed - 1000) as usize, *seed),
            "{name} with two nodes gone"
        );
    }
    until(30, "big's status degraded", || {
        redundancy(&nodes, "big") == "redundancy: 0 of 2 (degraded)"
    });
    // Full redundancy back without any command: positions moved off the dead nodes.
    until(
        180,
        "every object fully redundant without the dead nodes",
        || all_full(&client, &all),
    );
    assert!(
        crashed.elapsed() >= Duration::from_secs(GRACE),
        "repaired before the grace period"
    );
    let status = nodes.text(&["store", "status"]);
    for v in &victims {
        assert!(
            status
                .lines()
                .any(|l| l.starts_with(&format!("{v}\tout\t"))),
            "{v} out: {status}"
        );
    }
    for (name, bytes) in &objects {
        assert_eq!(
            redundancy(&nodes, name),
            "redundancy: 2 of 2 (full)",
            "{name}"
        );
        assert!(
            block_on(fully_redundant(&client, name)),
            "{name} all shards"
        );
        reads_back(&nodes, name, bytes, "after the repair");
    }
    eprintln!(
        "{:?}: repaired {:?} after the crash",
        t0.elapsed(),
        crashed.elapsed()
    );

    // 5. The first comes back, after being declared out: its stale shards are collected.
    let back = nodes.index(&victims[0]);
    nodes.spawn(back);
    nodes.wait_ready(back, Duration::from_secs(120));
    let id = victims[0].clone();
    until(
        60,
        "the returned node's stale shards collected, and it up",
        || {
            let up = nodes
                .text(&["store", "status"])
                .lines()
                .any(|l| l.starts_with(&format!("{id}\tup\t")));
            up && block_on(async {
                client.store.refresh(&client.meta).await.is_ok()
                    && shards_on(&client, &id).await == Some(0)
            })
        },
    );
    let logs: String = (0..NODES)
        .map(|i| std::fs::read_to_string(nodes.path(&format!("node{i}.log"))).unwrap_or_default())
        .collect();
    let collected: u64 = logs
        .lines()
        .filter_map(|l| l.split(&format!("node {id} returned: ")).nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    assert!(
        collected > 0,
        "the returned node had stale shards collected"
    );
    for (name, bytes) in &objects {
        reads_back(&nodes, name, bytes, "after the node returned");
    }
    eprintln!(
        "{:?}: {collected} stale shards of the returned node collected",
        t0.elapsed()
    );
}
