//! The node image under qemu (software emulation) as a farm member: `scripts/build-image.sh`
//! (packing the built debug binaries into `target/image-test`, or `ZOS_IMAGE_DIR` names an
//! image), booted by `scripts/boot-image.sh` with two fresh virtio disks, one throttled, and
//! one etcd on the host, which the guest reaches at qemu's host address 10.0.2.2 (the farm
//! and etcd given on the kernel command line). The etcd is secured (TLS, client
//! certificates, auth): the node's credentials are on a third, read-only disk, an ext4 file
//! system labelled ZOSCONFIG (boot::config), never on the command line.
//!
//! First boot: the console shows `node ready` with both disks pooled, the throttled one
//! classified HDD; the node registers in the farm (its record and heartbeat seen in etcd from
//! the host) and publishes its services (`zos services --etcd`: storaged running, nothing
//! restarted); a signed zdb blueprint written into etcd (`zos deploy --etcd`) is applied and
//! `redis-cli` on the host reaches its namespace through a qemu port forward. A clean
//! power-off (Ctrl-Alt-Del through qemu's monitor), then a boot with the same disks: same node
//! id, registered again, the same namespace with the data written before. No daemon exits or
//! restarts on either boot.
//!
//! Needs qemu-system-x86_64, etcd and redis-cli (and, to build the image, what
//! scripts/deps.sh installs); skipped without them, failed under CI. Each wait is bounded;
//! qemu (killed with its process group), etcd and the temporary folders go when the test
//! ends, also on failure. Prints the boot times and the image size (BENCHMARKS.md).
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

use farm::ids::NodeId;
use farm::meta::Meta;
use farm::testing::EtcdCluster;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tests::vm::{Boot, Vm, crashes, free_port, image, node_id};

/// TCG on a shared 2-core machine: a boot formats and measures two disks.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Registration, publication, a blueprint applied: each within this after `node ready`.
const FARM_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the console is watched after the last step for daemons exiting.
const WATCH: Duration = Duration::from_secs(10);
/// PID 1's first line: the kernel has booted (the time before it is firmware, loading and
/// unpacking the image, the kernel's own start).
const PID1: &str = "init: zos node image";
/// The zdb ports storaged gives the pools' servers in the image (boot::ZDB_BASE_PORT, +1).
const ZDB_PORTS: [u16; 2] = [9900, 9901];

fn zos(args: &[&str], env: &[(&str, std::ffi::OsString)]) -> (bool, String) {
    let out = Command::new(nodeutil::skip::workspace_binary("zos").unwrap())
        .args(args)
        .env_remove("ZOS_NODE")
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    (out.status.success(), tests::printed(&out))
}

/// redis-cli on the host, bounded (a hung guest must not hang the test).
fn redis(port: u16, script: &str) -> String {
    use std::io::Write;
    let mut c = Command::new("timeout")
        .args([
            "20",
            "redis-cli",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = c.wait_with_output().unwrap();
    tests::printed(&out)
}

/// Polls `f` every second until it gives a value, within `timeout`; panics with `what`.
fn until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The farm as the host sees it.
struct Farm {
    rt: tokio::runtime::Runtime,
    meta: Meta,
    name: String,
    etcd: String,
    /// `ZOS_ETCD_*`: the files that reach the secured etcd.
    env: Vec<(&'static str, std::ffi::OsString)>,
}

impl Farm {
    /// Whether node `id` is registered with a live heartbeat.
    fn registered(&self, id: &str) -> bool {
        let id = NodeId(id.to_string());
        self.rt.block_on(async {
            let rec = self.meta.get_raw(&self.meta.keys().node(&id)).await;
            let alive = self.meta.get_raw(&self.meta.keys().alive(&id)).await;
            matches!((rec, alive), (Ok(Some(_)), Ok(Some(_))))
        })
    }

    /// `zos ARGS --etcd URL --farm NAME --node ID`.
    fn zos(&self, id: &str, args: &[&str]) -> (bool, String) {
        let mut a = args.to_vec();
        a.extend(["--etcd", &self.etcd, "--farm", &self.name, "--node", id]);
        zos(&a, &self.env)
    }

    /// The services node `id` published, once storaged shows running in them.
    fn services(&self, id: &str) -> Value {
        until(
            "storaged running in the published services",
            FARM_TIMEOUT,
            || {
                let (ok, out) = self.zos(id, &["services", "--json"]);
                let v: Value = serde_json::from_str(&out).ok().filter(|_| ok)?;
                let running = v["list"]["services"]
                    .as_array()?
                    .iter()
                    .any(|s| s["name"] == "storaged" && s["state"] == "running");
                running.then_some(v)
            },
        )
    }
}

/// Services that are not running or were restarted.
fn unhealthy(services: &Value) -> Vec<String> {
    services["list"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] != "running" || s["restarts"] != 0)
        .map(|s| s.to_string())
        .collect()
}

fn blueprint(owner: &str) -> String {
    tests::example_blueprint("zdb.json", owner, |v| {
        v["workloads"][0]["data"]["size"] = (256u64 << 20).into();
        v["workloads"][0]["data"]["password"] = "image-pass".into();
    })
}

fn boot<'a>(image: &'a Path, disks: &'a Path, farm: &Farm, fwd: &[(u16, u16)]) -> Vm {
    let port = farm.etcd.rsplit(':').next().unwrap();
    Vm::boot(&Boot {
        image,
        disks,
        append: format!("zos.farm={} zos.etcd=https://10.0.2.2:{port}", farm.name),
        fwd: fwd.to_vec(),
        monitor: Some(disks.join("monitor.sock")),
        config: Some(disks.join("config.img")),
    })
}

/// The config disk: an ext4 file system labelled ZOSCONFIG holding the etcd credentials as
/// `etcd/ca.pem`, `cert.pem`, `key.pem`, `user`, `password` (boot::config).
fn config_disk(cluster: &EtcdCluster, disks: &Path) {
    let f = cluster.access_files().unwrap();
    let dir = disks.join("config/etcd");
    std::fs::create_dir_all(&dir).unwrap();
    for (from, to) in [
        (f.ca, "ca.pem"),
        (f.cert, "cert.pem"),
        (f.key, "key.pem"),
        (f.password_file, "password"),
    ] {
        std::fs::copy(from.unwrap(), dir.join(to)).unwrap();
    }
    std::fs::write(dir.join("user"), f.user.unwrap()).unwrap();
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-L", "ZOSCONFIG", "-d"])
        .arg(disks.join("config"))
        .arg(disks.join("config.img"))
        .arg("8M")
        .output()
        .unwrap();
    assert!(out.status.success(), "mkfs.ext4: {out:?}");
}

/// The host port forwarded to guest port `guest`.
fn host_port(fwd: &[(u16, u16)], guest: u64) -> u16 {
    fwd.iter()
        .find(|(_, g)| u64::from(*g) == guest)
        .unwrap_or_else(|| panic!("zdb on guest port {guest}: not forwarded"))
        .0
}

#[test]
fn image_joins_its_farm_and_keeps_identity_and_data_across_a_reboot() {
    let tools = ["qemu-system-x86_64", "etcd", "redis-cli"];
    let have = tools.iter().all(|t| nodeutil::skip::has_tool(t));
    if nodeutil::skip::unless(
        have,
        "qemu-system-x86_64, etcd, redis-cli (scripts/deps.sh)",
    ) {
        return;
    }
    let image = image();
    let size = ["vmlinuz", "initramfs.img"]
        .iter()
        .map(|f| std::fs::metadata(image.join(f)).unwrap().len())
        .sum::<u64>();
    let disks = tempfile::Builder::new()
        .prefix("image-test-")
        .tempdir()
        .unwrap();
    // etcd on the host's loopback: qemu's user network sends the guest's 10.0.2.2 there;
    // secured (TLS, client certificates, auth), the node's credentials on its config disk
    let cluster = EtcdCluster::start_secured(1).unwrap();
    config_disk(&cluster, disks.path());
    let etcd = cluster.endpoint(0).unwrap().to_string();
    let name = format!("img{}", nodeutil::random::hex(6));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let meta = rt
        .block_on(Meta::connect_with(
            std::slice::from_ref(&etcd),
            &cluster.access(),
            &name,
        ))
        .unwrap();
    let env = tests::etcd_env(&cluster);
    let farm = Farm {
        rt,
        meta,
        name,
        etcd,
        env,
    };
    let key = disks.path().join("owner.key");
    let (ok, owner) = zos(&["key", "new", key.to_str().unwrap()], &[]);
    assert!(ok, "{owner}");
    let bp = disks.path().join("zdb.json");
    std::fs::write(&bp, blueprint(owner.trim())).unwrap();

    // First boot: pools, identity, registration, services, a namespace through etcd.
    let fwd: Vec<(u16, u16)> = ZDB_PORTS.iter().map(|g| (free_port(), *g)).collect();
    let mut vm = boot(&image, disks.path(), &farm, &fwd);
    vm.expect(PID1, READY_TIMEOUT);
    let first_pid1 = vm.started.elapsed();
    vm.expect(
        "init: farm credentials from config disk /dev/vdc",
        READY_TIMEOUT,
    );
    let ready = vm.expect("node ready: id ", READY_TIMEOUT);
    let first_ready = vm.started.elapsed();
    let id = node_id(&ready);
    let shown = vm.expect("node disks:", Duration::from_secs(60));
    // the fast disk is an SSD, the throttled one an HDD, both pooled
    assert!(shown.contains("vda ssd pool"), "{shown}");
    assert!(shown.contains("vdb hdd pool"), "{shown}");
    until("registration in etcd", FARM_TIMEOUT, || {
        farm.registered(&id).then_some(())
    });
    let first_registered = vm.started.elapsed();
    let services = farm.services(&id);
    let (ok, table) = farm.zos(&id, &["services"]);
    assert!(ok && table.contains("storaged"), "{table}");

    let (ok, out) = farm.zos(
        &id,
        &[
            "deploy",
            bp.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--wait",
            "240",
            "--json",
        ],
    );
    assert!(ok, "deploy through etcd: {out}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let result = &r["view"]["deployment"]["workloads"][0]["result"];
    assert_eq!(result["state"], "ok", "{r}");
    let ns = result["data"]["namespace"].as_str().unwrap().to_string();
    let port = host_port(&fwd, result["data"]["port"].as_u64().unwrap());
    let out = redis(
        port,
        &format!("SELECT {ns} image-pass\nSET k hello\nGET k\n"),
    );
    assert!(out.contains("hello"), "{out}");
    vm.watch(WATCH);
    assert_eq!(crashes(&vm.console), Vec::<String>::new());
    assert_eq!(unhealthy(&farm.services(&id)), Vec::<String>::new());
    vm.power_off(Duration::from_secs(120));
    drop(vm);

    // Second boot, same disks: same node, registered again, the namespace and its data.
    let fwd: Vec<(u16, u16)> = ZDB_PORTS.iter().map(|g| (free_port(), *g)).collect();
    let mut vm = boot(&image, disks.path(), &farm, &fwd);
    vm.expect(PID1, READY_TIMEOUT);
    let second_pid1 = vm.started.elapsed();
    vm.expect("init: pool on /dev/vda mounted", READY_TIMEOUT);
    let ready = vm.expect("node ready: id ", READY_TIMEOUT);
    let second_ready = vm.started.elapsed();
    assert_eq!(node_id(&ready), id, "a reboot changed the node id");
    let shown = vm.expect("node disks:", Duration::from_secs(60));
    assert!(shown.contains("vdb hdd pool"), "{shown}");
    until("registration after the reboot", FARM_TIMEOUT, || {
        farm.registered(&id).then_some(())
    });
    let (ok, out) = farm.zos(&id, &["get", "mydb", "--json"]);
    assert!(ok, "{out}");
    let again: Value = serde_json::from_str(&out).unwrap();
    let result = &again["view"]["deployment"]["workloads"][0]["result"];
    assert_eq!(result["data"]["namespace"].as_str(), Some(ns.as_str()));
    let port = host_port(&fwd, result["data"]["port"].as_u64().unwrap());
    let out = until(
        "the namespace served after the reboot",
        FARM_TIMEOUT,
        || {
            let out = redis(port, &format!("SELECT {ns} image-pass\nGET k\n"));
            out.contains("hello").then_some(out)
        },
    );
    assert!(out.contains("hello"), "{out}");
    vm.watch(WATCH);
    assert_eq!(crashes(&vm.console), Vec::<String>::new());
    assert_eq!(unhealthy(&farm.services(&id)), Vec::<String>::new());
    eprintln!(
        "image {:.1} MiB; qemu start to PID 1 / node ready / registered: first boot {:.1} / \
         {:.1} / {:.1} s, reboot {:.1} / {:.1} s; services seen from the host: {}",
        size as f64 / 1048576.0,
        first_pid1.as_secs_f64(),
        first_ready.as_secs_f64(),
        first_registered.as_secs_f64(),
        second_pid1.as_secs_f64(),
        second_ready.as_secs_f64(),
        services["list"]["services"].as_array().map_or(0, Vec::len),
    );
    drop(vm);
    drop(cluster);
}
