//! Blueprints through etcd: a real node-init (`--etcd --farm`, no other daemon) and a real
//! 3-member etcd, driven with the `zos` binary (`zos deploy|get|delete --etcd URLS --node ID`).
//! A signed deployment is applied and its result written back; a forged one and an oversized
//! or misplaced document are refused with the reason written back and nothing changed; an
//! update written while the node is stopped is found by the listing at its start; one written
//! after two etcd members were killed and restarted (the watch lost and resumed) is applied; a
//! signed delete through etcd removes the deployment.

use farm::ids::NodeId;
use farm::meta::Meta;
use farm::testing::{EtcdCluster, eventually};
use node_init::farm_inbox::BlueprintResult;
use node_init::keys::KeyPair;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts node-init on `dir` in farm `farm`; returns it and its node id.
fn start(dir: &Path, etcd: &str, farm: &str) -> (Node, String) {
    let mut node = Node(
        Command::new(env!("CARGO_BIN_EXE_node-init"))
            .arg("--node")
            .arg(dir)
            .args(["--etcd", etcd, "--farm", farm, "--farm-no-repair"])
            .env("ZOS_LOG_FORMAT", "plain")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node-init"),
    );
    let stdout = node.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let id = line
        .strip_prefix("node ready: id ")
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("node-init did not start: {line}"))
        .to_string();
    (node, id)
}

fn stop(mut node: Node) {
    let pid = rustix::process::Pid::from_raw(node.0.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("sigterm");
    let _ = node.0.wait();
}

fn zos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zos"))
        .args(args)
        .env_remove("ZOS_NODE")
        .output()
        .expect("zos")
}

fn blueprint(dir: &Path, name: &str, owner: &KeyPair, version: u64, text: &str) -> String {
    let d = json!({
        "id": "web",
        "version": version,
        "owner": owner.public_hex(),
        "description": text,
        "signers": {"threshold": 1, "keys": [{"key": owner.public_hex(), "weight": 1}]},
        "workloads": [],
    });
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(&d).expect("json")).expect("write");
    p.to_str().expect("utf-8").to_string()
}

async fn result(meta: &Meta, node: &NodeId, suffix: &str) -> Option<BlueprintResult> {
    let key = format!("{}{suffix}", meta.keys().results(node));
    meta.get_json(&key).await.ok().flatten().map(|(r, _)| r)
}

fn description(r: &BlueprintResult) -> Option<String> {
    r.view
        .as_ref()
        .and_then(|v| v.deployment.as_ref())
        .and_then(|d| d.description.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn blueprints_reach_the_node_through_etcd_and_results_come_back() {
    if nodeutil::skip::unless(farm::testing::has_etcd(), "etcd (Debian etcd-server)") {
        return;
    }
    let mut cluster = EtcdCluster::start(3).expect("etcd");
    let etcd = cluster.endpoints().join(",");
    let farm_name = format!("t{}", nodeutil::random::hex(6));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    let (node, id) = start(&dir, &etcd, &farm_name);
    let node_id = NodeId(id.clone());
    let meta = Meta::connect(&cluster.endpoints(), &farm_name)
        .await
        .expect("meta");

    let owner = KeyPair::generate();
    let owner_key = tmp.path().join("owner.key");
    owner.save(&owner_key).expect("key");
    let other = KeyPair::generate();
    let other_key = tmp.path().join("other.key");
    other.save(&other_key).expect("key");
    let key = |p: &Path| p.to_str().expect("utf-8").to_string();
    let common = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(["--etcd", &etcd, "--farm", &farm_name, "--node", &id].map(String::from));
        v
    };
    let run = |args: Vec<String>| zos(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // A signed deployment: accepted, applied, the result written back.
    let v0 = blueprint(tmp.path(), "v0.json", &owner, 0, "v0");
    let out = run(common(&[
        "deploy",
        &v0,
        "--key",
        &key(&owner_key),
        "--wait",
        "30",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let suffix = format!("{}/web", owner.public_hex());
    let r = result(&meta, &node_id, &suffix).await.expect("result");
    assert_eq!(
        (r.refused.as_deref(), description(&r).as_deref()),
        (None, Some("v0"))
    );
    let out = run(common(&["get", "web"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("web version 0 Active"));

    // A forged update (the owner did not sign it): refused, written back, nothing changed.
    let forged = blueprint(tmp.path(), "forged.json", &owner, 1, "forged");
    let out = run(common(&[
        "deploy",
        &forged,
        "--key",
        &key(&other_key),
        "--wait",
        "30",
    ]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused"));
    let r = result(&meta, &node_id, &suffix).await.expect("result");
    assert!(r.refused.is_some());
    assert_eq!(description(&r).as_deref(), Some("v0"), "nothing changed");

    // Oversized, and misplaced, documents are refused without a deploy.
    let prefix = meta.keys().deploy(&node_id);
    let big = vec![b'x'; node_init::farm_inbox::MAX_BLUEPRINT + 1];
    let mut c = meta.client();
    c.put(format!("{prefix}a/big"), big, None)
        .await
        .expect("put");
    let doc = std::fs::read(&v0).expect("read");
    let misplaced = format!("{{\"deploy\":{}}}", String::from_utf8_lossy(&doc));
    c.put(format!("{prefix}b/web"), misplaced, None)
        .await
        .expect("put");
    for (s, why) in [("a/big", "larger"), ("b/web", "must be about")] {
        let (meta, node_id) = (meta.clone(), node_id.clone());
        eventually(10, "a refusal written back", move || {
            let (meta, node_id) = (meta.clone(), node_id.clone());
            async move {
                result(&meta, &node_id, s)
                    .await
                    .is_some_and(|r| r.refused.is_some_and(|e| e.contains(why)))
            }
        })
        .await;
    }

    // An update written while the node is stopped is found when it starts again.
    stop(node);
    let v1 = blueprint(tmp.path(), "v1.json", &owner, 1, "v1");
    let out = run(common(&["deploy", &v1, "--key", &key(&owner_key)]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (node, again) = start(&dir, &etcd, &farm_name);
    assert_eq!(again, id);
    let at = |want: &'static str| {
        let (meta, node_id, suffix) = (meta.clone(), node_id.clone(), suffix.clone());
        move || {
            let (meta, node_id, suffix) = (meta.clone(), node_id.clone(), suffix.clone());
            async move {
                result(&meta, &node_id, &suffix).await.is_some_and(|r| {
                    r.refused.is_none() && description(&r).as_deref() == Some(want)
                })
            }
        }
    };
    eventually(20, "v1 applied after the restart", at("v1")).await;

    // Two members die (no quorum: the watch ends) and come back: the watch resumes.
    cluster.kill(0);
    cluster.kill(1);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    cluster.restart(0).expect("restart");
    cluster.restart(1).expect("restart");
    let v2 = blueprint(tmp.path(), "v2.json", &owner, 2, "v2");
    let out = run(common(&["deploy", &v2, "--key", &key(&owner_key)]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(30, "v2 applied after the watch resumed", at("v2")).await;

    // A signed delete through etcd.
    let out = run(common(&["delete", "web", "--key", &key(&owner_key)]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (m, n, s) = (meta.clone(), node_id.clone(), suffix.clone());
    eventually(20, "deleted", move || {
        let (m, n, s) = (m.clone(), n.clone(), s.clone());
        async move {
            result(&m, &n, &s).await.is_some_and(|r| {
                r.view
                    .is_some_and(|v| v.state == bus::api::node::DeploymentState::Deleted)
            })
        }
    })
    .await;
    stop(node);
}
