//! Storage over the recording fake system (no root): what a hung pool holds up, and what two
//! operations on one name at once make.
#![expect(clippy::unwrap_used, reason = "tests")]

use super::*;
use crate::config::{FileDisk, ZdbConfig};
use crate::system::{Call, Fake};
use bus::api::storage::{DiskClass, VolumeCreate};
use std::time::Duration;

const MIB: u64 = 1 << 20;

struct World {
    _dir: tempfile::TempDir,
    sys: Arc<Fake>,
    storage: Storage,
}

impl Drop for World {
    fn drop(&mut self) {
        // Also when a test fails: the runtime waits for its blocking threads on shutdown.
        self.sys.release();
    }
}

/// SSD disks `names` of 100 MiB each, scanned and ready.
async fn world(names: &[&str], step: Duration) -> World {
    let dir = tempfile::tempdir().unwrap();
    let sys_root = dir.path().join("sys");
    let disks = names
        .iter()
        .map(|n| {
            let image = dir.path().join("img").join(format!("{n}.img"));
            // The fake's loop device is the image itself: sysfs knows it by its file name.
            let block = sys_root.join("block").join(format!("{n}.img"));
            std::fs::create_dir_all(&block).unwrap();
            std::fs::write(block.join("size"), (100 * MIB / 512).to_string()).unwrap();
            FileDisk {
                path: image,
                size: 100 * MIB,
                class: Some(DiskClass::Ssd),
            }
        })
        .collect();
    let cfg = Config {
        node_id: "t".into(),
        disks,
        real_disks: false,
        class_overrides: Default::default(),
        zdb: ZdbConfig::default(),
        state_volume_size: MIB,
        refresh_secs: 1,
        sys_root,
    };
    let sys = Arc::new(Fake::new());
    let limits = Limits {
        step,
        probe: Duration::from_secs(5),
        adopt: Duration::from_secs(5),
        scan: Duration::from_secs(5),
    };
    let paths = Paths::new(dir.path().join("root"), None);
    let storage = Storage::with_limits(sys.clone(), cfg, paths, limits);
    storage.refresh().await;
    assert_eq!(storage.list_disks().disks.len(), names.len());
    assert!(storage.state_path().is_some());
    World {
        _dir: dir,
        sys,
        storage,
    }
}

fn vol(name: &str, size: u64) -> VolumeCreate {
    VolumeCreate {
        name: name.into(),
        size,
    }
}

/// Runs `f` and checks it took less than a second.
async fn quick<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let t = Instant::now();
    let v = tokio::time::timeout(Duration::from_secs(1), f)
        .await
        .unwrap_or_else(|_| panic!("{what} waited for the hung disk"));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "{what}: {:?}",
        t.elapsed()
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_pool_holds_up_nothing_else() {
    // The step deadline leaves the quick checks below ample time before the hung step
    // gives up and drops its reservation, on a loaded machine too.
    let w = world(&["a", "b"], Duration::from_secs(5)).await;
    let s = &w.storage;
    let v1 = s.vol_create(vol("v1", 20 * MIB)).await.unwrap();
    let (hung, other) = if v1.path.to_string_lossy().contains("/a/") {
        ("a", "b")
    } else {
        ("b", "a")
    };
    let hung_mnt = s.paths().pool(hung);
    w.sys.hang(&hung_mnt);
    // Best fit: the next small volume goes to the fuller disk, whose commands now hang.
    let s2 = s.clone();
    let stuck = tokio::spawn(async move { s2.vol_create(vol("v2", 10 * MIB)).await });
    // Waits for the create to reserve (it then goes straight into the hung step).
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.with_state(|st| st.pending.is_empty()) {
        assert!(Instant::now() < deadline, "the create never reserved");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!stuck.is_finished());
    // Reads answer at once, and count the 10 MiB in flight as reserved.
    quick("list", async { s.list_disks() }).await;
    quick("pools", async { s.list_pools() }).await;
    let cap = quick("capacity", async { s.capacity() }).await;
    assert_eq!(cap.classes[0].reserved, 20 * MIB + 10 * MIB + MIB);
    quick("get", async { s.vol_get("v1").unwrap() }).await;
    quick("health", async { s.problems() }).await;
    // A change on the other disk goes through meanwhile (80 MiB fits only there).
    let v3 = quick("create elsewhere", s.vol_create(vol("v3", 80 * MIB)))
        .await
        .unwrap();
    assert!(v3.path.starts_with(s.paths().pool(other)), "{v3:?}");
    // The hung step gives up at its deadline; its disk is failed, the other serves.
    let e = stuck.await.unwrap().unwrap_err();
    assert!(matches!(e, Error::Hung(_)), "{e}");
    let disks = s.list_disks().disks;
    let failed = disks.iter().find(|d| d.name == hung).unwrap();
    assert!(
        failed
            .problem
            .as_deref()
            .unwrap_or_default()
            .contains("hangs")
    );
    assert!(
        disks
            .iter()
            .find(|d| d.name == other)
            .unwrap()
            .problem
            .is_none()
    );
    assert!(s.problems().unwrap().contains(hung));
    // Nothing is promised any more.
    assert!(s.with_state(|st| st.pending.is_empty()));
    let e = quick("refused on a failed disk", s.vol_grow("v1", 30 * MIB))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Unavailable(_) | Error::NoCapacity(_)),
        "{e}"
    );
    w.sys.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_name_created_twice_at_once_is_made_once() {
    let w = world(&["a"], Duration::from_secs(10)).await;
    let s = &w.storage;
    w.sys.hang(&s.paths().pool("a"));
    let (s1, s2) = (s.clone(), s.clone());
    let first = tokio::spawn(async move { s1.vol_create(vol("v", 5 * MIB)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = tokio::spawn(async move { s2.vol_create(vol("v", 5 * MIB)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.sys.release();
    let (a, b) = (
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    );
    assert_eq!(a, b);
    let creates = w
        .sys
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::SubvolCreate(p) if p == &a.path))
        .count();
    assert_eq!(creates, 1);
    assert_eq!(s.capacity().classes[0].reserved, 5 * MIB + MIB);
}
