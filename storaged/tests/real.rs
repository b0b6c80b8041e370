//! End-to-end tests on real loop devices, btrfs and zdb servers, through the daemon's bus API.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use bus::ErrorCode;
use bus::api::Secret;
use bus::api::storage::*;
use common::{Env, MIB, redis_ns, require};
use storaged::node::{DiskStatus, ListPools, PoolList};

async fn alloc(
    env: &Env,
    name: &str,
    size: u64,
    pw: Option<&str>,
) -> Result<ZdbNamespace, bus::BusError> {
    env.client()
        .call::<AllocateZdb>(&ZdbAllocate {
            name: name.into(),
            size,
            mode: ZdbMode::User,
            password: pw.map(|p| Secret(p.into())),
            public: false,
        })
        .await
}

fn code(e: &bus::BusError) -> Option<ErrorCode> {
    e.remote().map(|r| r.code)
}

async fn pools(env: &Env) -> PoolList {
    env.client()
        .call::<ListPools>(&bus::api::Empty {})
        .await
        .expect("pool list")
}

async fn zdb_pid(env: &Env, disk: &str) -> Option<u32> {
    pools(env)
        .await
        .pools
        .into_iter()
        .find(|p| p.name == disk)?
        .zdb?
        .pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_fill_disks_survive_restarts_and_zdb_crashes() {
    let Some(()) = require() else { return };
    let mut env = Env::new(&[
        ("hdd0", 300, "hdd"),
        ("hdd1", 300, "hdd"),
        ("ssd0", 300, "ssd"),
    ]);
    env.start().await;
    let c = env.client();
    // Wait for both HDD zdb servers.
    env.wait_for("zdb servers", || async {
        let cap = c.call::<GetCapacity>(&bus::api::Empty {}).await.ok()?;
        (cap.max_zdb == 300 * MIB).then_some(())
    })
    .await;
    let cap = c.call::<GetCapacity>(&bus::api::Empty {}).await.unwrap();
    let hdd = cap
        .classes
        .iter()
        .find(|k| k.class == DiskClass::Hdd)
        .unwrap();
    assert_eq!((hdd.disks, hdd.total, hdd.reserved), (2, 600 * MIB, 0));

    // Fill one disk, then the other; then a clear refusal.
    let a1 = alloc(&env, "a1", 100 * MIB, Some("pw1")).await.unwrap();
    let a2 = alloc(&env, "a2", 100 * MIB, None).await.unwrap();
    let a3 = alloc(&env, "a3", 100 * MIB, None).await.unwrap();
    assert!(a1.disk.starts_with("hdd"));
    assert_eq!(
        (a2.disk.as_str(), a3.disk.as_str()),
        (a1.disk.as_str(), a1.disk.as_str())
    );
    let b1 = alloc(&env, "b1", 150 * MIB, None).await.unwrap();
    assert_ne!(b1.disk, a1.disk, "a full disk must not get more");
    let b2 = alloc(&env, "b2", 150 * MIB, None).await.unwrap();
    assert_eq!(b2.disk, b1.disk);
    let full = alloc(&env, "c1", MIB, None).await.unwrap_err();
    assert_eq!(code(&full), Some(ErrorCode::NoCapacity), "{full}");
    // Bad names and mode changes: clear errors, nothing created.
    let long = "x".repeat(129);
    for bad in ["bad/name", "default", "", long.as_str()] {
        let e = alloc(&env, bad, MIB, None).await.unwrap_err();
        assert_eq!(code(&e), Some(ErrorCode::InvalidArgument), "{bad}: {e}");
    }
    let e = c
        .call::<AllocateZdb>(&ZdbAllocate {
            name: "a1".into(),
            size: MIB,
            mode: ZdbMode::Seq,
            password: None,
            public: false,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::Conflict));
    // Idempotent replay returns the same namespace.
    assert_eq!(alloc(&env, "a1", 100 * MIB, Some("pw1")).await.unwrap(), a1);

    // A real redis client with the password.
    let mut con = redis_ns(a1.port, "a1", Some("pw1")).unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg("v1")
        .query::<()>(&mut con)
        .unwrap();
    assert!(redis_ns(a1.port, "a1", Some("wrong")).is_err());
    assert!(
        redis_ns(a1.port, "a1", None).is_err(),
        "private namespace needs its password"
    );

    // Grow: refused without room, works after a delete; never shrinks.
    let e = c
        .call::<GrowZdb>(&Resize {
            name: "a1".into(),
            size: 200 * MIB,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::NoCapacity));
    c.call::<DeleteZdb>(&Name { name: "a3".into() })
        .await
        .unwrap();
    c.call::<DeleteZdb>(&Name { name: "a3".into() })
        .await
        .unwrap();
    assert_eq!(
        c.call::<GrowZdb>(&Resize {
            name: "a1".into(),
            size: 200 * MIB
        })
        .await
        .unwrap()
        .size,
        200 * MIB
    );
    let e = c
        .call::<GrowZdb>(&Resize {
            name: "a1".into(),
            size: MIB,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::Conflict));

    // Pause freezes, resume thaws.
    assert!(
        c.call::<PauseZdb>(&Name { name: "a2".into() })
            .await
            .unwrap()
            .paused
    );
    let mut con2 = redis_ns(a2.port, "a2", None).unwrap();
    assert!(
        redis::cmd("GET")
            .arg("x")
            .query::<Option<String>>(&mut con2)
            .is_err()
    );

    // Restart storaged: everything adopted, same zdb process, data intact, pause kept.
    let pid = zdb_pid(&env, &a1.disk).await.unwrap();
    env.kill();
    env.start().await;
    let c = env.client();
    env.wait_for("adoption", || async { zdb_pid(&env, &a1.disk).await })
        .await;
    assert_eq!(
        zdb_pid(&env, &a1.disk).await,
        Some(pid),
        "running zdb adopted, not restarted"
    );
    assert_eq!(
        c.call::<GetZdb>(&Name { name: "a1".into() })
            .await
            .unwrap()
            .size,
        200 * MIB
    );
    assert!(
        c.call::<GetZdb>(&Name { name: "a2".into() })
            .await
            .unwrap()
            .paused
    );
    let mut con = redis_ns(a1.port, "a1", Some("pw1")).unwrap();
    assert_eq!(
        redis::cmd("GET")
            .arg("k")
            .query::<String>(&mut con)
            .unwrap(),
        "v1"
    );

    // Kill the zdb server: restarted, serves again, freeze re-applied.
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status();
    let new_pid = env
        .wait_for("zdb restart", || async {
            let p = zdb_pid(&env, &a1.disk).await?;
            (p != pid).then_some(p)
        })
        .await;
    assert_ne!(new_pid, pid);
    let mut con = env
        .wait_for("namespace serving", || async {
            redis_ns(a1.port, "a1", Some("pw1")).ok()
        })
        .await;
    assert_eq!(
        redis::cmd("GET")
            .arg("k")
            .query::<String>(&mut con)
            .unwrap(),
        "v1"
    );
    let mut con2 = redis_ns(a2.port, "a2", None).unwrap();
    assert!(
        redis::cmd("GET")
            .arg("x")
            .query::<Option<String>>(&mut con2)
            .is_err(),
        "freeze re-applied"
    );
    c.call::<ResumeZdb>(&Name { name: "a2".into() })
        .await
        .unwrap();
    let mut con2 = redis_ns(a2.port, "a2", None).unwrap();
    assert_eq!(
        redis::cmd("GET")
            .arg("x")
            .query::<Option<String>>(&mut con2)
            .unwrap(),
        None
    );

    // NOCOW zdb folders, and the state volume on the SSD.
    let list = pools(&env).await;
    let h = list.pools.iter().find(|p| p.name == a1.disk).unwrap();
    let attrs = std::process::Command::new("lsattr")
        .arg("-d")
        .arg(h.mountpoint.as_ref().unwrap().join("zdb/data"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&attrs.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .contains('C')
    );
    let s = list.pools.iter().find(|p| p.name == "ssd0").unwrap();
    assert!(s.state_volume);
    assert!(env.root.join("state").exists());
}

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
