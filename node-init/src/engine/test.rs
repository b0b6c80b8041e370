#![expect(clippy::unwrap_used, reason = "tests")]

use super::*;
use crate::blueprint::sign;
use crate::keys::KeyPair;
use bus::api::node::{
    DeleteRequest, Deployment, DeploymentState, SignerKey, Signers, Workload, WorkloadState,
};
use bus::api::storage::Capacity;
use serde_json::{Value, json};
use std::sync::atomic::AtomicU32;

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    fail_next: AtomicU32,
    /// What `observe` reports for the zdb workload (`ns`).
    observed: Mutex<Option<Observed>>,
}

impl WorkloadHandler for Fake {
    fn apply<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        wl: &'a Workload,
    ) -> BoxFuture<'a, Result<Value, HandlerError>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(format!(
                "apply {} {}",
                ctx.global_name(),
                wl.data["size"]
            ));
            if self.fail_next.load(Ordering::SeqCst) > 0 {
                self.fail_next.fetch_sub(1, Ordering::SeqCst);
                return Err(HandlerError("storaged is not running".into()));
            }
            Ok(json!({"namespace": ctx.global_name(), "size": wl.data["size"]}))
        })
    }
    fn remove<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        _wl: &'a Workload,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push(format!("remove {}", ctx.global_name()));
            Ok(())
        })
    }
    fn observe<'a>(
        &'a self,
        ctx: &'a WorkloadCtx,
        _recorded: &'a Value,
    ) -> BoxFuture<'a, Observed> {
        Box::pin(async move {
            match self.observed.lock().unwrap().clone() {
                Some(o) if ctx.name == "ns" => o,
                _ => Observed::Unknown,
            }
        })
    }
}

struct Cap(u64);
impl CapacitySource for Cap {
    fn capacity(&self) -> BoxFuture<'_, Result<Capacity, HandlerError>> {
        Box::pin(async move {
            Ok(Capacity {
                classes: vec![],
                max_zdb: self.0,
                max_volume: self.0,
            })
        })
    }
    fn memory_free(&self) -> BoxFuture<'_, Result<u64, HandlerError>> {
        Box::pin(async move { Ok(self.0) })
    }
}

fn engine(dir: &Path, fake: &Arc<Fake>) -> Engine {
    let mut h: HashMap<String, Arc<dyn WorkloadHandler>> = HashMap::new();
    h.insert("zdb".into(), fake.clone());
    h.insert("volume".into(), fake.clone());
    let backoff = Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(100),
    };
    Engine::start(
        dir,
        h,
        Arc::new(Cap(4 << 30)),
        Publisher::default(),
        backoff,
    )
    .unwrap()
}

fn blueprint(k: &KeyPair, version: u64, size: u64) -> Deployment {
    let mut d = Deployment {
        id: "db".into(),
        version,
        owner: k.public_hex(),
        description: None,
        signers: Signers {
            threshold: 1,
            keys: vec![SignerKey {
                key: k.public_hex(),
                weight: 1,
            }],
        },
        workloads: vec![
            Workload {
                name: "vol".into(),
                kind: "volume".into(),
                version: 0,
                description: None,
                data: json!({"size": 1 << 20}),
                result: None,
            },
            Workload {
                name: "ns".into(),
                kind: "zdb".into(),
                version,
                description: None,
                data: json!({"size": size, "mode": "user", "password": "pw-secret"}),
                result: None,
            },
        ],
        signatures: vec![],
    };
    sign(&mut d, k).unwrap();
    d
}

async fn wait_for(
    e: &Engine,
    f: impl Fn(&bus::api::node::DeploymentView) -> bool,
) -> bus::api::node::DeploymentView {
    for _ in 0..200 {
        if let Ok(v) = e.get("db", None).await
            && f(&v)
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached: {:?}", e.get("db", None).await);
}

fn all_ok(v: &bus::api::node::DeploymentView) -> bool {
    v.deployment.as_ref().is_some_and(|d| {
        d.workloads.iter().all(|w| {
            w.result
                .as_ref()
                .is_some_and(|r| r.state == WorkloadState::Ok && r.version == w.version)
        })
    })
}

fn record_bytes(dir: &Path, k: &KeyPair) -> Vec<u8> {
    std::fs::read(dir.join("deployments").join(k.public_hex()).join("db.json")).unwrap()
}

#[tokio::test]
async fn deploy_update_refusals_restart_delete() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let k = KeyPair::from_seed([7; 32]);
    let e = engine(dir.path(), &fake);

    let r = e.deploy(blueprint(&k, 0, 1 << 30)).await.unwrap();
    assert!(r.changed);
    let v = wait_for(&e, all_ok).await;
    let text = serde_json::to_string(&v).unwrap();
    assert!(!text.contains("pw-secret"), "password leaked: {text}");
    assert!(text.contains(crate::blueprint::REDACTED));
    // volume (rank 0) and zdb (rank 0) both applied; re-submit is a no-op
    assert!(!e.deploy(blueprint(&k, 0, 1 << 30)).await.unwrap().changed);

    // update: grow
    e.deploy(blueprint(&k, 1, 2 << 30)).await.unwrap();
    wait_for(&e, |v| v.version == 1 && all_ok(v)).await;
    assert!(
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.ends_with(&format!(" {}", 2u64 << 30)))
    );

    // refusals change nothing
    let before = record_bytes(dir.path(), &k);
    let mut forged = blueprint(&k, 2, 3 << 30);
    forged.workloads[1].data["size"] = json!(4u64 << 30);
    let replay = blueprint(&k, 0, 1 << 30);
    let mut unsigned = blueprint(&k, 2, 3 << 30);
    unsigned.signatures.clear();
    let wrong = {
        let mut d = blueprint(&k, 2, 3 << 30);
        d.signatures.clear();
        sign(&mut d, &KeyPair::from_seed([8; 32])).unwrap();
        d
    };
    let too_big = blueprint(&k, 2, 64 << 30);
    for (what, bad) in [
        ("forged", forged),
        ("replay", replay),
        ("unsigned", unsigned),
        ("wrong", wrong),
        ("too big", too_big),
    ] {
        let err = e.deploy(bad).await.unwrap_err();
        assert!(!matches!(err, EngineError::Store(_)), "{what}: {err}");
        assert_eq!(
            record_bytes(dir.path(), &k),
            before,
            "{what} changed the record"
        );
    }

    // restart: every active deployment is re-applied (idempotently)
    drop(e);
    let n = fake.calls.lock().unwrap().len();
    let e = engine(dir.path(), &fake);
    for _ in 0..200 {
        if fake.calls.lock().unwrap().len() >= n + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        fake.calls.lock().unwrap().len() >= n + 2,
        "not reconciled after restart"
    );

    // signed delete
    let h = crate::blueprint::delete_hash(&k.public_hex(), "db", 1).unwrap();
    let mut req = DeleteRequest {
        owner: k.public_hex(),
        id: "db".into(),
        version: 1,
        signatures: vec![],
    };
    assert!(e.delete(req.clone()).await.is_err());
    crate::blueprint::add_signature(&mut req.signatures, &h, &k);
    e.delete(req).await.unwrap();
    let v = wait_for(&e, |v| v.state == DeploymentState::Deleted).await;
    assert!(v.deployment.is_none());
    assert!(
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with("remove"))
            .count()
            == 2
    );
    // tombstone: old versions cannot be replayed
    let err = e.deploy(blueprint(&k, 0, 1 << 30)).await.unwrap_err();
    assert!(err.to_string().contains("was deleted"), "{err}");
}

#[tokio::test]
async fn failures_are_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    fake.fail_next.store(3, Ordering::SeqCst);
    let k = KeyPair::from_seed([9; 32]);
    let e = engine(dir.path(), &fake);
    e.deploy(blueprint(&k, 0, 1 << 30)).await.unwrap();
    wait_for(&e, all_ok).await;
    assert!(fake.calls.lock().unwrap().len() >= 5);
}

#[tokio::test]
async fn drift_is_repaired_and_live_state_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let k = KeyPair::from_seed([10; 32]);
    let e = engine(dir.path(), &fake);
    e.deploy(blueprint(&k, 0, 1 << 30)).await.unwrap();
    wait_for(&e, all_ok).await;
    let applies = || {
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with("apply") && c.contains("-db-ns "))
            .count()
    };
    let before = applies();

    // nothing drifted: nothing done
    assert_eq!(e.check_drift().await.unwrap(), DriftReport::default());

    // drifted: recorded, re-applied, ok again
    *fake.observed.lock().unwrap() = Some(Observed::Drifted("namespace gone".into()));
    let report = e.check_drift().await.unwrap();
    assert_eq!(report.repaired, vec!["db/ns".to_string()]);
    *fake.observed.lock().unwrap() = None;
    let v = wait_for(&e, |v| all_ok(v) && applies() > before).await;
    let ns = &v.deployment.unwrap().workloads[1];
    assert_eq!(
        ns.result.as_ref().unwrap().message,
        "repaired: namespace gone"
    );
    let rec = e.inner.store.load(&k.public_hex(), "db").unwrap().unwrap();
    assert!(
        rec.history
            .iter()
            .any(|c| c.event == "drift" && c.message == "repairing: namespace gone"),
        "{:?}",
        rec.history
    );

    // live outputs follow what runs, in the record and in `get`
    let live = json!({"state": "exited"}).as_object().unwrap().clone();
    *fake.observed.lock().unwrap() = Some(Observed::Live(live));
    let report = e.check_drift().await.unwrap();
    assert_eq!(report.updated, vec!["db/ns".to_string()]);
    assert!(report.repaired.is_empty());
    let rec = e.inner.store.load(&k.public_hex(), "db").unwrap().unwrap();
    assert_eq!(rec.workloads["ns"].result.data["state"], "exited");
    assert_eq!(
        rec.workloads["ns"].result.data["size"],
        json!(1u64 << 30),
        "recorded outputs kept"
    );
    // a second pass has nothing new to record
    assert_eq!(e.check_drift().await.unwrap(), DriftReport::default());
}

#[test]
fn backoff_doubles_and_caps() {
    let b = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(10),
    };
    assert_eq!(b.delay(1), Duration::from_secs(1));
    assert_eq!(b.delay(3), Duration::from_secs(4));
    assert_eq!(b.delay(50), Duration::from_secs(10));
}
