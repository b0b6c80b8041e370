//! Pools and volumes on real loop devices and btrfs, through the daemon's bus API: quotas, failures, foreign disks, hot-plug, reboots.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use bus::ErrorCode;
use bus::api::storage::*;
use common::{Env, MIB, alloc, pools, redis_ns, require};
use storaged::node::DiskStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_have_enforced_sizes() {
    let Some(()) = require() else { return };
    let mut env = Env::new(&[("ssd0", 300, "ssd"), ("hdd0", 300, "hdd")]);
    env.start().await;
    let c = env.client();
    let v = c
        .call::<CreateVolume>(&VolumeCreate {
            name: "v1".into(),
            size: 20 * MIB,
        })
        .await
        .unwrap();
    assert!(
        v.path.to_string_lossy().contains("ssd0"),
        "volumes prefer SSD: {v:?}"
    );
    // Writing past the quota fails.
    let big = vec![7u8; 40 * MIB as usize];
    let res = std::fs::write(v.path.join("f"), &big)
        .and_then(|_| std::fs::File::open(v.path.join("f"))?.sync_all());
    assert!(res.is_err(), "quota not enforced");
    let _ = std::fs::remove_file(v.path.join("f"));
    let v = c
        .call::<GrowVolume>(&Resize {
            name: "v1".into(),
            size: 60 * MIB,
        })
        .await
        .unwrap();
    assert_eq!(v.size, 60 * MIB);
    std::fs::write(v.path.join("f"), &big).unwrap();
    let e = c
        .call::<CreateVolume>(&VolumeCreate {
            name: "huge".into(),
            size: 1 << 40,
        })
        .await
        .unwrap_err();
    assert_eq!(e.remote().map(|r| r.code), Some(ErrorCode::NoCapacity));
    // A big one spills to the HDD.
    let v2 = c
        .call::<CreateVolume>(&VolumeCreate {
            name: "v2".into(),
            size: 280 * MIB,
        })
        .await
        .unwrap();
    assert!(v2.path.to_string_lossy().contains("hdd0"), "{v2:?}");
    c.call::<DeleteVolume>(&Name { name: "v1".into() })
        .await
        .unwrap();
    assert!(!v.path.exists());
    let e = c
        .call::<GetVolume>(&Name { name: "v1".into() })
        .await
        .unwrap_err();
    assert_eq!(e.remote().map(|r| r.code), Some(ErrorCode::NotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_disk_is_reported_and_others_keep_working() {
    let Some(()) = require() else { return };
    let mut env = Env::new(&[("hdd0", 300, "hdd"), ("hdd1", 300, "hdd")]);
    env.start().await;
    let c = env.client();
    env.wait_for("zdb servers", || async {
        let cap = c.call::<GetCapacity>(&bus::api::Empty {}).await.ok()?;
        (cap.max_zdb == 300 * MIB).then_some(())
    })
    .await;
    let n0 = alloc(&env, "n0", 250 * MIB, None).await.unwrap();
    let n1 = alloc(&env, "n1", 250 * MIB, None).await.unwrap();
    assert_ne!(n0.disk, n1.disk);
    // Shrink the backing file of n0's disk and refresh its loop device.
    let list = pools(&env).await;
    let bad = list
        .pools
        .iter()
        .find(|p| p.name == n0.disk)
        .unwrap()
        .clone();
    std::fs::OpenOptions::new()
        .write(true)
        .open(env.image(&n0.disk))
        .unwrap()
        .set_len(100 * MIB)
        .unwrap();
    assert!(
        std::process::Command::new("losetup")
            .arg("-c")
            .arg(&bad.device)
            .status()
            .unwrap()
            .success()
    );
    env.wait_for("failure reported", || async {
        let l = pools(&env).await;
        matches!(
            l.pools.iter().find(|p| p.name == n0.disk)?.status,
            DiskStatus::Failed(_)
        )
        .then_some(())
    })
    .await;
    let h = c.health().await.unwrap();
    assert_eq!(h.status, bus::api::health::HealthStatus::Degraded);
    assert!(h.detail.unwrap_or_default().contains(&n0.disk));
    let disks = c.call::<ListDisks>(&bus::api::Empty {}).await.unwrap();
    let failed = disks.disks.iter().find(|d| d.name == n0.disk).unwrap();
    assert!(failed.mountpoint.is_none());
    assert!(
        failed
            .problem
            .as_deref()
            .is_some_and(|p| p.starts_with("failed")),
        "{failed:?}"
    );
    let good = disks.disks.iter().find(|d| d.name == n1.disk).unwrap();
    assert_eq!(good.problem, None);
    // The other disk still serves and takes new namespaces; the failed one takes none.
    let mut con = redis_ns(n1.port, "n1", None).unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap();
    assert_eq!(
        alloc(&env, "n2", 10 * MIB, None).await.unwrap().disk,
        n1.disk
    );
    let cap = c.call::<GetCapacity>(&bus::api::Empty {}).await.unwrap();
    assert_eq!(
        cap.classes
            .iter()
            .find(|k| k.class == DiskClass::Hdd)
            .unwrap()
            .disks,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_and_data_disks_are_reported_never_adopted() {
    let Some(()) = require() else { return };
    let mut env = Env::new(&[
        ("other", 300, "hdd"),
        ("junk", 300, "hdd"),
        ("mine", 300, "ssd"),
    ]);
    // "other": a pool of another node; "junk": some data in its first MiB.
    let other = env.image("other");
    std::fs::File::create(&other)
        .unwrap()
        .set_len(300 * MIB)
        .unwrap();
    assert!(
        std::process::Command::new("mkfs.btrfs")
            .args(["-q", "-L", "storaged:othernode"])
            .arg(&other)
            .status()
            .unwrap()
            .success()
    );
    let junk = env.image("junk");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&junk)
        .unwrap();
    f.set_len(300 * MIB).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, b"precious data", 4096).unwrap();
    env.start().await;
    let list = pools(&env).await;
    let st = |n: &str| {
        list.pools
            .iter()
            .find(|p| p.name == n)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(st("other"), DiskStatus::Foreign("othernode".into()));
    assert!(
        matches!(st("junk"), DiskStatus::HasData(_)),
        "{:?}",
        st("junk")
    );
    assert_eq!(st("mine"), DiskStatus::Ready);
    let mut buf = [0u8; 13];
    std::os::unix::fs::FileExt::read_at(&f, &mut buf, 4096).unwrap();
    assert_eq!(&buf, b"precious data");
    let h = env.client().health().await.unwrap();
    assert!(h.detail.unwrap_or_default().contains("othernode"));
    // With no HDD pool of ours, zdb runs on the SSD.
    let ns = alloc(&env, "s1", MIB, None).await.unwrap();
    assert_eq!(ns.disk, "mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disks_added_and_removed_while_running_are_noticed() {
    let Some(()) = require() else { return };
    let mut env = Env::new(&[("hdd0", 300, "hdd")]);
    env.start().await;
    // Add a disk to the node config while storaged runs.
    env.add_disk(serde_json::json!({"path": env.image("ssd9"), "size": 300 * MIB, "class": "ssd"}));
    env.wait_for("new disk adopted", || async {
        let l = pools(&env).await;
        (l.pools.iter().find(|p| p.name == "ssd9")?.status == DiskStatus::Ready).then_some(())
    })
    .await;
    // The state volume stays where it was placed first.
    let l = pools(&env).await;
    assert!(
        l.pools
            .iter()
            .find(|p| p.name == "hdd0")
            .unwrap()
            .state_volume
    );
    // Remove it again.
    env.edit_config(|cfg| {
        cfg["disks"].as_array_mut().unwrap().pop();
    });
    env.wait_for("disk reported missing", || async {
        let l = pools(&env).await;
        (l.pools.iter().find(|p| p.name == "ssd9")?.status == DiskStatus::Missing).then_some(())
    })
    .await;
    let cap = env
        .client()
        .call::<GetCapacity>(&bus::api::Empty {})
        .await
        .unwrap();
    assert_eq!(
        cap.classes
            .iter()
            .find(|k| k.class == DiskClass::Ssd)
            .unwrap()
            .disks,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reboot_everything_is_adopted_and_nothing_reformatted() {
    let Some(()) = require() else { return };
    let mut env = Env::new(&[("hdd0", 300, "hdd"), ("ssd0", 300, "ssd")]);
    env.start().await;
    let c = env.client();
    env.wait_for("zdb", || async {
        let cap = c.call::<GetCapacity>(&bus::api::Empty {}).await.ok()?;
        (cap.max_zdb > 0).then_some(())
    })
    .await;
    let ns = alloc(&env, "r1", 50 * MIB, Some("pw")).await.unwrap();
    let mut con = redis_ns(ns.port, "r1", Some("pw")).unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg("kept")
        .query::<()>(&mut con)
        .unwrap();
    drop(con);
    c.call::<PauseZdb>(&Name { name: "r1".into() })
        .await
        .unwrap();
    let v = c
        .call::<CreateVolume>(&VolumeCreate {
            name: "v".into(),
            size: 10 * MIB,
        })
        .await
        .unwrap();
    std::fs::write(v.path.join("file"), b"volume data").unwrap();
    std::fs::write(env.root.join("state/node-state"), b"state").unwrap();

    env.reboot();
    assert!(!v.path.exists(), "pools are unmounted after the reboot");
    env.start().await;
    let c = env.client();
    env.wait_for("zdb after reboot", || async {
        let cap = c.call::<GetCapacity>(&bus::api::Empty {}).await.ok()?;
        (cap.max_zdb > 0).then_some(())
    })
    .await;
    assert_eq!(
        env.log().matches("formatted=true").count(),
        2,
        "only the first boot formats"
    );
    assert_eq!(std::fs::read(v.path.join("file")).unwrap(), b"volume data");
    assert_eq!(
        std::fs::read(env.root.join("state/node-state")).unwrap(),
        b"state"
    );
    let got = c.call::<GetZdb>(&Name { name: "r1".into() }).await.unwrap();
    assert!(
        got.paused,
        "pause survives a reboot (re-applied to the new zdb)"
    );
    c.call::<ResumeZdb>(&Name { name: "r1".into() })
        .await
        .unwrap();
    let mut con = redis_ns(got.port, "r1", Some("pw")).unwrap();
    assert_eq!(
        redis::cmd("GET")
            .arg("k")
            .query::<String>(&mut con)
            .unwrap(),
        "kept"
    );
}
