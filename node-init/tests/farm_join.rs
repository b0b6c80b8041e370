//! `node-init --etcd URLS --farm NAME`: a real node-init process joins a real etcd: it starts
//! while etcd is down (the node serves anyway), registers once etcd is back (id and public key
//! from its identity, group, capacity, zdb endpoint, a heartbeat), and on SIGTERM its heartbeat
//! goes at once, long before the lease TTL would end it.

use farm::ids::NodeId;
use farm::meta::Meta;
use farm::testing::{EtcdCluster, eventually};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_registers_when_etcd_comes_and_leaves_on_sigterm() {
    if nodeutil::skip::unless(farm::testing::has_etcd(), "etcd (Debian etcd-server)") {
        return;
    }
    let mut cluster = EtcdCluster::start(1).expect("etcd");
    let farm_name = format!("t{}", nodeutil::random::hex(6));
    cluster.kill(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = Node(
        Command::new(env!("CARGO_BIN_EXE_node-init"))
            .arg("--node")
            .arg(dir.path())
            .args(["--etcd", &cluster.endpoints().join(",")])
            .args(["--farm", &farm_name])
            .args(["--farm-zdb", "127.0.0.1:9900", "--farm-namespace", "shards"])
            .args(["--farm-group", "rack1", "--farm-capacity", "1G"])
            .args(["--farm-ttl", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node-init"),
    );
    let stdout = node.0.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        BufReader::new(stdout).read_line(&mut l).map(|_| l)
    })
    .await
    .expect("join")
    .expect("read");
    let id = line
        .strip_prefix("node ready: id ")
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("the node serves without etcd: {line}"))
        .to_string();

    cluster.restart(0).expect("etcd back");
    let meta = Meta::connect(&cluster.endpoints(), &farm_name)
        .await
        .expect("meta");
    let node_id = NodeId(id.clone());
    eventually(20, "registered with a heartbeat", || {
        let meta = meta.clone();
        let node_id = node_id.clone();
        async move {
            meta.nodes().await.is_ok_and(|ns| {
                ns.iter()
                    .any(|v| v.record.id == node_id && v.alive.is_some())
            })
        }
    })
    .await;
    let views = meta.nodes().await.expect("nodes");
    let r = &views.first().expect("one node").record;
    assert_eq!(node_init::identity::node_id_of(&r.public_key), id);
    assert_eq!(r.group.as_deref(), Some("rack1"));
    assert_eq!(r.capacity, 1 << 30);
    assert_eq!(r.zdb.first().map(|z| z.namespace.as_str()), Some("shards"));

    let pid = rustix::process::Pid::from_raw(node.0.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("sigterm");
    eventually(
        10,
        "heartbeat removed on a clean stop (TTL is 60 s)",
        || {
            let meta = meta.clone();
            let node_id = node_id.clone();
            async move {
                meta.nodes().await.is_ok_and(|ns| {
                    ns.iter()
                        .any(|v| v.record.id == node_id && v.alive.is_none())
                })
            }
        },
    )
    .await;
    let status = tokio::task::spawn_blocking(move || node.0.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "{status}");
}
