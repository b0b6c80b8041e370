#![expect(clippy::unwrap_used, reason = "tests")]
use super::system::Fake;
use super::*;

/// A root folder as the image would see it after the early mounts.
fn fake_root(cmdline: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for dir in [
        "etc",
        "proc",
        "sys/class/net/eth0",
        "sys/block/vda",
        "sys/block/vdb",
        "dev",
    ] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::fs::write(r.join("etc/modules"), "crc32c_generic\nbtrfs\n\n# note\n").unwrap();
    std::fs::write(r.join("proc/cmdline"), cmdline).unwrap();
    let mut pool = vec![0u8; disks::PROBE_LEN];
    pool[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
    pool[0x1012b..0x1012b + 12].copy_from_slice(b"storaged:abc");
    std::fs::write(r.join("dev/vdb"), pool).unwrap();
    std::fs::write(r.join("dev/vda"), vec![0u8; disks::PROBE_LEN]).unwrap();
    d
}

#[test]
fn boot_steps_in_order() {
    let d = fake_root("console=ttyS0 zos.farm=f1 zos.etcd=http://10.0.2.2:2379");
    let mut k = Fake::default();
    k.outputs.insert(
        "ip".into(),
        "2: eth0 inet 10.0.2.15/24 scope global eth0\n".into(),
    );
    let (pid, _) = boot(&k, d.path());
    assert_eq!(pid, Some(4242));
    let calls = k.calls.lock().unwrap().clone();
    let r = d.path().display().to_string();
    assert_eq!(calls[0], format!("mount proc proc {r}/proc "));
    assert_eq!(
        calls[6],
        format!("mount cgroup2 cgroup2 {r}/sys/fs/cgroup ")
    );
    assert_eq!(calls[7..9], ["modprobe crc32c_generic", "modprobe btrfs"]);
    assert!(calls[11].starts_with("udhcpc -i eth0"), "{calls:?}");
    // only the disk labelled as a pool is mounted, where storaged mounts it
    let pool_mount = format!("mount btrfs /dev/vdb {r}/var/node/storaged/pools/vdb noatime");
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("mount btrfs"))
            .count(),
        1
    );
    assert!(calls.contains(&pool_mount), "{calls:?}");
    let last = calls.last().unwrap();
    assert!(
        last.starts_with(&format!(
            "spawn /usr/bin/node-init --node {r}/var/node --start-storaged --state-on-volume"
        )),
        "{last}"
    );
    assert!(
        last.contains("--etcd http://10.0.2.2:2379 --farm-zdb 10.0.2.15:9900 --farm f1"),
        "{last}"
    );
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("var/node/storaged.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["real_disks"], true);
    assert_eq!(cfg["zdb"]["address"], "10.0.2.15");
}

#[test]
fn no_network_no_farm() {
    let d = fake_root("zos.net=off zos.shell");
    let k = Fake::default();
    boot(&k, d.path());
    let calls = k.calls.lock().unwrap().clone();
    assert!(!calls.iter().any(|c| c.starts_with("udhcpc")));
    assert!(calls.iter().any(|c| c.starts_with("spawn /bin/sh")));
    assert!(!calls.last().unwrap().contains("--etcd"));
    let cfg = storaged_config(None);
    assert_eq!(cfg["zdb"]["address"], "::1");
}

#[test]
fn farm_credentials_come_from_the_config_disk_and_never_show() {
    let d = fake_root("zos.farm=f1 zos.etcd=https://10.0.2.2:2379");
    let r = d.path();
    let on_disk = r.join("run/zos/config-disk/etcd");
    std::fs::create_dir_all(&on_disk).unwrap();
    for (f, text) in [
        ("ca.pem", "CA"),
        ("cert.pem", "CERT"),
        ("key.pem", "KEY"),
        ("password", "s3cret-pw\n"),
        ("user", "node7\n"),
    ] {
        std::fs::write(on_disk.join(f), text).unwrap();
    }
    let mut k = Fake::default();
    k.outputs.insert("blkid".into(), "/dev/vdc\n".into());
    boot(&k, r);
    let calls = k.calls.lock().unwrap().clone();
    let mnt = format!("{}/run/zos/config-disk", r.display());
    let mount = format!("mount -o ro,nosuid,nodev,noexec /dev/vdc {mnt}");
    let at = |c: &str| calls.iter().position(|x| x == c);
    let (m, u) = (at(&mount).unwrap(), at(&format!("umount {mnt}")).unwrap());
    assert!(calls[..m].contains(&"blkid -L ZOSCONFIG".to_string()));
    let last = calls.last().unwrap();
    assert!(m < u && u < calls.len() - 1, "{calls:?}");
    let copies = r.join("run/zos/etcd");
    for (flag, f) in [
        ("--etcd-ca", "ca.pem"),
        ("--etcd-cert", "cert.pem"),
        ("--etcd-key", "key.pem"),
        ("--etcd-password-file", "password"),
    ] {
        let copy = copies.join(f);
        assert!(
            last.contains(&format!("{flag} {}", copy.display())),
            "{last}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    assert_eq!(
        std::fs::read(copies.join("password")).unwrap(),
        b"s3cret-pw\n"
    );
    assert!(last.contains("--etcd-user node7"), "{last}");
    assert!(!calls.iter().any(|c| c.contains("s3cret")), "{calls:?}");

    // a node outside a farm does not look for it; a bad user name drops the credentials
    let d = fake_root("zos.net=off");
    let mut k = Fake::default();
    k.outputs.insert("blkid".into(), "/dev/vdc\n".into());
    boot(&k, d.path());
    assert!(
        !k.calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("blkid"))
    );
    std::fs::write(on_disk.join("user"), "two words").unwrap();
    let k2 = Fake {
        outputs: k.outputs.clone(),
        ..Fake::default()
    };
    boot(&k2, r);
    let calls = k2.calls.lock().unwrap().clone();
    assert!(!calls.last().unwrap().contains("--etcd-"), "{calls:?}");
    assert!(calls.iter().any(|c| c == &format!("umount {mnt}")));
}
