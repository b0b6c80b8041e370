//! Namespaces on real loop devices, btrfs and zdb servers, through the daemon's bus API: placement, limits, restarts of storaged and of zdb.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use bus::ErrorCode;
use bus::api::storage::*;
use common::{Env, MIB, alloc, code, pools, redis_ns, require, zdb_pid};

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
