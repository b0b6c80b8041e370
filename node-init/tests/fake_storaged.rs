//! node-init's daemon and the zos CLI against an in-memory fake storaged (no root needed).
#![expect(clippy::unwrap_used, reason = "tests")]

use bus::api::Empty;
use bus::api::storage::*;
use node_init::daemon::{Config, run};
use node_init::engine::Backoff;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Namespaces = Arc<Mutex<HashMap<String, ZdbNamespace>>>;

async fn fake_storaged(run_dir: &Path, pool: PathBuf) -> Namespaces {
    let nss: Namespaces = Arc::default();
    let mut s = bus::Server::new("storaged");
    s.handle::<GetCapacity, _, _>(|_| async {
        Ok(Capacity {
            classes: vec![],
            max_zdb: 10 << 30,
            max_volume: 10 << 30,
        })
    });
    s.handle::<ListDisks, _, _>(move |_| {
        let pool = pool.clone();
        async move {
            Ok(DiskList {
                disks: vec![Disk {
                    name: "d0".into(),
                    device: "/dev/null".into(),
                    class: DiskClass::Hdd,
                    size: 10 << 30,
                    reserved: 0,
                    mountpoint: Some(pool),
                    problem: None,
                }],
            })
        }
    });
    let n = nss.clone();
    s.handle::<AllocateZdb, _, _>(move |r: ZdbAllocate| {
        let n = n.clone();
        async move {
            let ns = ZdbNamespace {
                namespace: r.name.clone(),
                address: "127.0.0.1".into(),
                port: 9900,
                size: r.size,
                mode: r.mode,
                public: r.public,
                paused: false,
                disk: "d0".into(),
            };
            n.lock().unwrap().insert(r.name, ns.clone());
            Ok(ns)
        }
    });
    let n = nss.clone();
    s.handle::<DeleteZdb, _, _>(move |r: Name| {
        let n = n.clone();
        async move {
            n.lock().unwrap().remove(&r.name);
            Ok(Empty {})
        }
    });
    let l = bus::bind(&bus::service_socket(run_dir, "storaged"))
        .await
        .unwrap();
    tokio::spawn(s.serve(l, std::future::pending()));
    nss
}

fn zos(node: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zos"))
        .args(args)
        .env("ZOS_NODE", node)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_get_delete_through_zos() {
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("node");
    // zos with no node running: prompt, clear error
    let (ok, text) = zos(&node, &["list"]);
    assert!(
        !ok && text.contains("node-init is not running (no socket at"),
        "{text}"
    );

    let pool = tmp.path().join("pool");
    let nss = fake_storaged(&node.join("run"), pool.clone()).await;
    let cfg = Config {
        node_dir: node.clone(),
        start_storaged: false,
        dev: false,
        storaged_bin: "storaged".into(),
        start_computed: false,
        computed_bin: "computed".into(),
        start_netd: false,
        netd_bin: "netd".into(),
        netd_netns_prefix: "n-".into(),
        computed_netns_prefix: "c-".into(),
        computed_cgroup_parent: "computed".into(),
        storaged_timeout: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        state_on_volume: false,
        release_key: None,
        reconcile_every: Duration::from_secs(30),
        handed: Default::default(),
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(run(cfg, std::future::pending(), move |id, _| {
        let _ = ready_tx.send(id.to_string());
    }));
    let node_id = ready_rx.await.unwrap();
    assert!(
        pool.join(node_init::identity::IDENTITY_IN_POOL).exists(),
        "identity not copied to the pool"
    );
    let (_, shown) = zos(&node, &["node"]);
    assert!(shown.contains(&node_id));

    let key = tmp.path().join("k.key");
    let (_, owner) = zos(&node, &["key", "new", key.to_str().unwrap()]);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/blueprints/zdb.json"),
    )
    .unwrap();
    let bp = tmp.path().join("bp.json");
    std::fs::write(&bp, text.replace("OWNER_KEY", owner.trim())).unwrap();
    let (ok, text) = zos(&node, &["deploy", bp.to_str().unwrap()]);
    assert!(!ok && text.contains("not enough signatures"), "{text}");
    let (ok, text) = zos(
        &node,
        &["sign", bp.to_str().unwrap(), "--key", key.to_str().unwrap()],
    );
    assert!(ok, "{text}");
    let (ok, text) = zos(&node, &["deploy", bp.to_str().unwrap(), "--wait", "--json"]);
    assert!(ok, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["deployment"]["workloads"][0]["result"]["state"], "ok",
        "{v}"
    );
    assert!(!text.contains("change-me"));
    assert_eq!(nss.lock().unwrap().len(), 1);
    let (ok, text) = zos(&node, &["list"]);
    assert!(ok && text.contains("mydb"), "{text}");

    let (ok, text) = zos(
        &node,
        &[
            "delete",
            "mydb",
            "--key",
            key.to_str().unwrap(),
            "--wait",
            "--json",
        ],
    );
    assert!(ok, "{text}");
    assert!(nss.lock().unwrap().is_empty());
    // logs and records: state file private
    let rec = node
        .join("state/deployments")
        .join(owner.trim())
        .join("mydb.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(rec).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
