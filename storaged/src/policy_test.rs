use super::*;
use bus::api::storage::DiskClass::{Hdd, Ssd};

fn pool(disk: &str, class: DiskClass, size: u64, reserved: u64) -> PoolView {
    PoolView {
        disk: disk.into(),
        class,
        size,
        reserved,
        healthy: true,
        zdb_up: true,
    }
}

#[test]
fn namespaces_go_to_hdds_best_fit() {
    let pools = vec![
        pool("s", Ssd, 1000, 0),
        pool("h1", Hdd, 1000, 500),
        pool("h2", Hdd, 1000, 100),
    ];
    assert_eq!(place_namespace(&pools, 400), Choice::Disk("h1".into()));
    assert_eq!(place_namespace(&pools, 600), Choice::Disk("h2".into()));
    assert_eq!(
        place_namespace(&pools, 901),
        Choice::NoRoom { largest_free: 900 }
    );
    assert!(hosts_zdb(&pools, "h1"));
    assert!(!hosts_zdb(&pools, "s"));
}

#[test]
fn ssd_only_node_hosts_zdb_on_ssd() {
    let pools = vec![pool("s", Ssd, 1000, 0)];
    assert_eq!(place_namespace(&pools, 10), Choice::Disk("s".into()));
    assert_eq!(place_namespace(&[], 10), Choice::NoDisk);
}

#[test]
fn unhealthy_or_down_pools_are_skipped() {
    let mut a = pool("h1", Hdd, 1000, 0);
    a.healthy = false;
    let mut b = pool("h2", Hdd, 1000, 0);
    b.zdb_up = false;
    let c = pool("h3", Hdd, 100, 0);
    assert_eq!(
        place_namespace(&[a.clone(), b.clone(), c], 50),
        Choice::Disk("h3".into())
    );
    assert_eq!(place_namespace(&[a, b], 50), Choice::NoDisk);
}

#[test]
fn volumes_prefer_ssd_then_hdd() {
    let pools = vec![pool("s", Ssd, 100, 50), pool("h", Hdd, 1000, 0)];
    assert_eq!(place_volume(&pools, 40), Choice::Disk("s".into()));
    assert_eq!(place_volume(&pools, 60), Choice::Disk("h".into()));
    assert_eq!(
        place_volume(&pools, 2000),
        Choice::NoRoom { largest_free: 1000 }
    );
}

#[test]
fn state_volume_on_best_disk_and_hdd_only_nodes_come_online() {
    let pools = vec![
        pool("h", Hdd, 1000, 0),
        pool("s1", Ssd, 100, 0),
        pool("s2", Ssd, 200, 0),
    ];
    assert_eq!(place_state(&pools, 50), Choice::Disk("s2".into()));
    assert_eq!(place_state(&pools, 500), Choice::Disk("h".into()));
    assert_eq!(
        place_state(&[pool("h", Hdd, 1000, 0)], 50),
        Choice::Disk("h".into())
    );
    assert_eq!(place_state(&[], 50), Choice::NoDisk);
}

#[test]
fn resize_and_datasize() {
    let p = pool("h", Hdd, 1000, 600);
    assert!(can_resize(&p, 100, 500));
    assert!(!can_resize(&p, 100, 501));
    assert_eq!(zdb_datasize(300 << 20), 4 << 20);
    assert_eq!(zdb_datasize(10 << 20), 1 << 20);
    assert_eq!(zdb_datasize(4 << 40), 256 << 20);
}
