//! Disk classes measured on a real loop device over a FUSE file whose reads are slow.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use bus::api::storage::*;
use common::{Env, MIB, alloc, redis_ns, require};
use storaged::node::{DiskStatus, ListPools};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_classes_are_measured_persisted_and_overridable() {
    let Some(()) = require() else { return };
    if nodeutil::skip::unless(std::path::Path::new("/dev/fuse").exists(), "/dev/fuse") {
        return;
    }
    // Two disks without a class in the config: a plain image (reads at page-cache speed) and
    // one whose every read takes 4 ms, as a spinning disk's seek does.
    let mut env = Env::new(&[("fast", 300, "")]);
    let slow = common::slowdisk::SlowDisk::new(
        &env.dir.join("slow"),
        "slow",
        300 * MIB,
        std::time::Duration::from_millis(4),
    );
    env.add_disk(serde_json::json!({"path": slow.image, "size": 300 * MIB}));
    env.keep(slow);
    env.start().await;
    let ready = |env: &Env| {
        let c = env.client();
        async move {
            let l = c.call::<ListPools>(&bus::api::Empty {}).await.ok()?.pools;
            l.iter()
                .all(|p| p.status == DiskStatus::Ready)
                .then_some(l)
                .filter(|l| l.len() == 2)
        }
    };
    let l = env.wait_for("both pools", || ready(&env)).await;
    let get = |l: &[storaged::node::PoolReport], n: &str| {
        l.iter().find(|p| p.name == n).cloned().unwrap()
    };
    let (fast, slow) = (get(&l, "fast"), get(&l, "slow"));
    assert_eq!(fast.class, Some(DiskClass::Ssd), "{fast:?}");
    assert_eq!(
        fast.class_source,
        Some(storaged::disk::ClassSource::Measured)
    );
    assert!(fast.seek_us.unwrap() < 2000, "{fast:?}");
    assert_eq!(slow.class, Some(DiskClass::Hdd), "{slow:?}");
    assert_eq!(
        slow.class_source,
        Some(storaged::disk::ClassSource::Measured)
    );
    assert!(slow.seek_us.unwrap() >= 4000, "{slow:?}");
    // The measured HDD hosts the zdb server, so a namespace lands on it and serves.
    let ns = alloc(&env, "onslow", 10 * MIB, Some("pw")).await.unwrap();
    assert_eq!(ns.disk, "slow");
    let mut con = redis_ns(ns.port, &ns.namespace, Some("pw")).unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg("on a slow disk")
        .query::<Vec<u8>>(&mut con)
        .unwrap();

    // Measured once: a restart reads the class from the pool record (same figure).
    env.kill();
    env.set_override("slow", Some("ssd"));
    env.start().await;
    let l = env.wait_for("both pools", || ready(&env)).await;
    let (fast2, slow2) = (get(&l, "fast"), get(&l, "slow"));
    assert_eq!(fast2.seek_us, fast.seek_us);
    assert_eq!(slow2.seek_us, slow.seek_us);
    // The override beats the measurement.
    assert_eq!(slow2.class, Some(DiskClass::Ssd));
    assert_eq!(
        slow2.class_source,
        Some(storaged::disk::ClassSource::Config)
    );
    // Dropping it restores the measured class.
    env.kill();
    env.set_override("slow", None);
    env.start().await;
    let l = env.wait_for("both pools", || ready(&env)).await;
    let slow3 = get(&l, "slow");
    assert_eq!(slow3.class, Some(DiskClass::Hdd));
    assert_eq!(
        slow3.class_source,
        Some(storaged::disk::ClassSource::Measured)
    );
    assert_eq!(slow3.seek_us, slow.seek_us);
    let mut con = redis_ns(ns.port, &ns.namespace, Some("pw")).unwrap();
    let v: Vec<u8> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, b"on a slow disk");
}
