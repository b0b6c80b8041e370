//! What a disk that stops answering and a zdb that takes long to start do to storaged, on
//! real loop devices, btrfs and zdb servers.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use bus::api::Empty;
use bus::api::storage::*;
use common::{Env, MIB, alloc, pools, redis_ns, require};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use storaged::node::{DiskStatus, ListPools};

/// Calls `f` and checks that the daemon answered within a second.
async fn within_a_second<T, E: std::fmt::Debug>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> T {
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(1), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 1 s while a disk hangs"));
    assert!(t.elapsed() < Duration::from_secs(1));
    r.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_disk_leaves_storaged_answering_within_a_second() {
    let Some(()) = require() else { return };
    if nodeutil::skip::unless(std::path::Path::new("/dev/fuse").exists(), "/dev/fuse") {
        return;
    }
    let mut env = Env::new(&[("good", 300, "hdd")]);
    let slow =
        common::slowdisk::SlowDisk::new(&env.dir.join("slow"), "slow", 300 * MIB, Duration::ZERO);
    // Dropped before `env`: the disk answers again before the teardown unmounts it.
    let hang = slow.hang_control();
    env.add_disk(serde_json::json!({"path": slow.image, "size": 300 * MIB, "class": "hdd"}));
    env.start().await;
    let c = env.client();
    env.wait_for("both zdb servers", || async {
        let cap = c.call::<GetCapacity>(&Empty {}).await.ok()?;
        let hdd = cap.classes.iter().find(|k| k.class == DiskClass::Hdd)?;
        (hdd.disks == 2 && cap.max_zdb == 300 * MIB).then_some(())
    })
    .await;
    // Something on each disk: the good one holds a namespace the test reads later.
    let on_good = alloc(&env, "kept", 250 * MIB, Some("pw")).await.unwrap();
    // Too big for what is left on the good disk: it goes to the slow one.
    let on_slow = alloc(&env, "doomed", 100 * MIB, None).await.unwrap();
    assert_eq!(
        (on_good.disk.as_str(), on_slow.disk.as_str()),
        ("good", "slow")
    );
    env.keep(slow);
    hang.start();

    // From now on every read, write and fsync of the slow disk blocks. storaged answers every
    // method at once, the good disk keeps serving, and the slow one is reported failed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = within_a_second("health", c.health()).await;
        within_a_second("disk list", c.call::<ListDisks>(&Empty {})).await;
        within_a_second("capacity", c.call::<GetCapacity>(&Empty {})).await;
        within_a_second(
            "get",
            c.call::<GetZdb>(&Name {
                name: "kept".into(),
            }),
        )
        .await;
        let list = within_a_second("pool list", c.call::<ListPools>(&Empty {})).await;
        let slow = list.pools.iter().find(|p| p.name == "slow").unwrap();
        if let DiskStatus::Failed(why) = &slow.status {
            assert!(why.contains("hangs"), "{why}");
            assert!(h.detail.unwrap_or_default().contains("slow"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hung disk was never reported: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The good disk still takes changes and serves its data.
    let more = within_a_second(
        "allocate on the good disk",
        alloc(&env, "more", 10 * MIB, None),
    )
    .await;
    assert_eq!(more.disk, "good");
    let mut con = redis_ns(on_good.port, "kept", Some("pw")).unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap();
    hang.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zdb_that_works_long_before_it_listens_is_not_killed() {
    let Some(()) = require() else { return };
    let mut env = Env::new(&[("hdd0", 300, "hdd")]);
    // A zdb that replays for 14 s before it listens (longer than the 10 s storaged used to
    // give it before killing it): it works all along, so it must be waited for. The work runs
    // at nice 19 (re-executed, same pid: still the watched process's work) so as not to take a
    // core from the rest of a loaded machine; zdb itself runs at the usual priority.
    let wrapper = env.dir.join("slow-zdb");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\n\
             [ \"$1\" = --niced ] || exec nice -n 19 \"$0\" --niced \"$@\"\n\
             shift\n\
             while [ $SECONDS -lt 14 ]; do :; done\n\
             exec nice -n -19 {} \"$@\"\n",
            common::zdb_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.edit_config(|cfg| cfg["zdb"]["binary"] = wrapper.display().to_string().into());
    let started = Instant::now();
    env.start().await;
    let c = env.client();
    let first_pid = env
        .wait_for("a zdb process", || async {
            pools(&env).await.pools.first()?.zdb.as_ref()?.pid
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = pools(&env).await;
        let z = list.pools.first().and_then(|p| p.zdb.clone()).unwrap();
        assert_eq!(z.pid, Some(first_pid), "restarted while it worked: {z:?}");
        assert_eq!(z.failures, 0, "{z:?}");
        let cap = c.call::<GetCapacity>(&Empty {}).await.unwrap();
        if cap.max_zdb > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "zdb never came up: {z:?}\n{}",
            env.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        started.elapsed() > Duration::from_secs(8),
        "the wrapper did not delay zdb"
    );
    let ns = alloc(&env, "late", 10 * MIB, Some("pw")).await.unwrap();
    let mut con = redis_ns(ns.port, "late", Some("pw")).unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap();
}
