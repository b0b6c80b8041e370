//! End to end: `zos upgrade` on a dev node running a zdb server and a container in a network.
//! storaged, computed and netd are upgraded in turn to a new build (the same binary with bytes
//! appended, so its hash differs): only that daemon restarts, the workloads keep their pids
//! and namespaces, netd's state is migrated. Then broken builds, each reverted by node-init
//! itself with the old version serving: one that exits at start (computed), one never ready
//! (storaged), one whose migration fails (netd). Last, `zos upgrade --rollback netd`. The
//! flist mount process is upgraded under a container reading a large file.
#![expect(clippy::unwrap_used, reason = "tests")]

use serde_json::{Value, json};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tests::{
    Node, World, bin, busybox_flist, example_blueprint, flist, hdd_zdbs, health_pid, rebuilt,
    require, script, signed_release, zdb_pids, zos_upgrade,
};

/// What the daemons run: zdb servers and shims (pids), the container, netd's namespaces
/// (name and inode).
#[derive(Debug, PartialEq, Eq)]
struct Workloads {
    zdbs: Vec<u32>,
    shims: Vec<u32>,
    container: u32,
    netns: Vec<(String, u64)>,
}

fn pids_where(dir: &Path, f: impl Fn(u32) -> bool) -> Vec<u32> {
    let mut out: Vec<u32> = nodeutil::teardown::processes_under(dir)
        .into_iter()
        .filter(|p| f(*p))
        .collect();
    out.sort();
    out
}

fn workloads(dir: &Path, container: u32, netns_prefix: &str) -> Workloads {
    let zdbs = zdb_pids(dir);
    let shims = pids_where(dir, |p| {
        std::fs::read(format!("/proc/{p}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"shim"))
    });
    let mut netns: Vec<(String, u64)> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let ino = std::fs::metadata(e.path()).ok()?.ino();
            name.starts_with(netns_prefix).then_some((name, ino))
        })
        .collect();
    netns.sort();
    assert!(
        Path::new(&format!("/proc/{container}")).exists(),
        "container {container} gone"
    );
    Workloads {
        zdbs,
        shims,
        container,
        netns,
    }
}

/// A "new build" of `name`: the binary with bytes appended (still runs, hash differs).
fn new_build(tmp: &Path, name: &str) -> PathBuf {
    rebuilt(name, &tmp.join(format!("new-{name}")), "\nnew build\n")
}

fn versions(node: &Node) -> Value {
    let v = node.zos_json(&["version", "--json"]);
    v["services"].clone()
}

/// Waits (5 s at most) until `zos version` shows `want` for `service`: the supervisor hashes a
/// new binary off its loop, a moment after the start.
fn assert_version(node: &Node, service: &str, want: &Value) {
    let t = std::time::Instant::now();
    loop {
        let v = versions(node);
        if v[service] == *want {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{service}: version {} , want {want}",
            v[service]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The inodes of the UDP sockets process `pid` holds (netd's tunnels).
fn udp_sockets(pid: u32) -> std::collections::BTreeSet<u64> {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).unwrap_or_default();
    let udp: std::collections::BTreeSet<u64> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(9)?.parse().ok())
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let l = std::fs::read_link(e.path()).ok()?;
            let l = l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            l.parse().ok()
        })
        .filter(|i| udp.contains(i))
        .collect()
}

fn def_exec(dir: &Path, service: &str) -> String {
    let d: Value = serde_json::from_slice(
        &std::fs::read(dir.join("services").join(format!("{service}.json"))).unwrap(),
    )
    .unwrap();
    d["exec"].as_str().unwrap().to_string()
}

#[test]
fn daemons_upgrade_alone_keep_their_workloads_and_broken_builds_revert() {
    if !require(&[("/bin/busybox", "apt-get install busybox-static")]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let node = Node::start(&dir);
    let key = tmp.path().join("k.key");
    let owner = node.new_owner(&key);
    let k = key.to_str().unwrap();
    let zdb = tmp.file(
        "zdb.json",
        &example_blueprint("zdb.json", &owner, |v| {
            v["workloads"][0]["data"]["password"] = "up-pass".into();
        }),
    );
    let view = node.zos_json(&["deploy", &zdb, "--key", k, "--wait", "--json"]);
    assert_eq!(
        view["deployment"]["workloads"][0]["result"]["state"], "ok",
        "{view}"
    );
    let (flist, identity) = busybox_flist(tmp.path());
    let mesh = json!({
        "id": "mesh", "version": 0, "owner": owner,
        "signers": {"threshold": 1, "keys": [{"key": owner, "weight": 1}]},
        "workloads": [
            {"name": "net", "type": "network", "version": 0, "data": {
                "ip_range": "10.61.0.0/16", "subnet": "10.61.1.0/24", "peers": []}},
            {"name": "app", "type": "container", "version": 0, "data": {
                "flist": flist.display().to_string(), "identity": identity,
                "entrypoint": ["/bin/sh", "-c", "while true; do sleep 1; done"],
                "memory": 64 << 20, "rootfs_size": 64 << 20, "network": "net"}},
        ],
        "signatures": [],
    });
    let mesh = tmp.file("mesh.json", &mesh.to_string());
    let view = node.zos_json(&["deploy", &mesh, "--key", k, "--wait", "--json"]);
    for w in view["deployment"]["workloads"].as_array().unwrap() {
        assert_eq!(w["result"]["state"], "ok", "{view}");
    }
    let container = view["deployment"]["workloads"][1]["result"]["data"]["pid"]
        .as_u64()
        .unwrap() as u32;
    let netd_def: Value =
        serde_json::from_slice(&std::fs::read(dir.join("services/netd.json")).unwrap()).unwrap();
    let args: Vec<&str> = netd_def["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let prefix = args[args.iter().position(|a| *a == "--netns-prefix").unwrap() + 1].to_string();
    hdd_zdbs(&dir);
    let before = workloads(&dir, container, &prefix);
    assert!(
        !before.zdbs.is_empty() && !before.shims.is_empty() && !before.netns.is_empty(),
        "{before:?}"
    );
    let original = versions(&node);
    let tunnels = udp_sockets(health_pid(&dir, "netd").unwrap());
    assert!(!tunnels.is_empty(), "netd holds no UDP socket");

    // each daemon to a new build: only it restarts, the workloads stay; netd's state needs
    // no migration, so the new netd takes the running one's tunnels over live
    for service in ["storaged", "computed", "netd"] {
        let old_pid = health_pid(&dir, service).unwrap();
        let others: Vec<_> = ["storaged", "computed", "netd"]
            .into_iter()
            .filter(|s| *s != service)
            .map(|s| (s, health_pid(&dir, s).unwrap()))
            .collect();
        let new = new_build(tmp.path(), service);
        let (ok, r) = zos_upgrade(&dir, &[service, "--from", new.to_str().unwrap()]);
        assert!(ok, "{r}");
        assert_eq!(r["outcome"], "upgraded", "{r}");
        assert_ne!(r["from_version"], r["to_version"], "{r}");
        assert_eq!(r["migrated"], false, "{r}");
        assert_eq!(
            r["taken_over"].as_bool().unwrap_or(false),
            service == "netd",
            "{r}"
        );
        let pid = health_pid(&dir, service).unwrap();
        assert_ne!(pid, old_pid);
        assert_eq!(r["pid"].as_u64(), Some(pid as u64), "{r}");
        for (s, p) in others {
            assert_eq!(
                health_pid(&dir, s),
                Some(p),
                "{s} restarted by {service}'s upgrade"
            );
        }
        assert!(
            def_exec(&dir, service).contains("/versions/"),
            "{}",
            def_exec(&dir, service)
        );
        assert_version(&node, service, &r["to_version"]);
        assert_eq!(
            workloads(&dir, container, &prefix),
            before,
            "workloads after upgrading {service}"
        );
    }
    let upgraded = versions(&node);
    let netd_state = dir.join("netd");
    assert_eq!(
        udp_sockets(health_pid(&dir, "netd").unwrap()),
        tunnels,
        "the new netd holds the old one's tunnel sockets"
    );
    let schema: Value =
        serde_json::from_slice(&std::fs::read(netd_state.join("schema.json")).unwrap()).unwrap();
    assert_eq!(schema["schema"], 1, "{schema}");
    assert!(!netd_state.with_extension("rollback").exists());

    // broken builds: reverted by node-init, the old version serves
    let real_netd = bin("netd");
    let broken = [
        (
            "computed",
            script(tmp.path(), "exits", "echo broken build >&2; exit 3"),
            "exit code 3",
        ),
        (
            "storaged",
            script(tmp.path(), "never-ready", "exec sleep 1000"),
            "not ready",
        ),
        (
            "netd",
            script(
                tmp.path(),
                "bad-migration",
                &format!(
                    "if [ \"$1\" = --migrate ]; then echo cannot migrate >&2; exit 4; fi\nexec {} \"$@\"",
                    real_netd.display()
                ),
            ),
            "migration failed",
        ),
    ];
    for (service, build, why) in broken {
        let exec = def_exec(&dir, service);
        let (ok, r) = zos_upgrade(
            &dir,
            &[
                service,
                "--from",
                build.to_str().unwrap(),
                "--ready-timeout",
                "3",
            ],
        );
        assert!(!ok, "{r}");
        assert_eq!(r["outcome"], "reverted", "{r}");
        assert!(r["detail"].as_str().unwrap().contains(why), "{r}");
        assert_eq!(r["running_version"], upgraded[service], "{r}");
        let pid = health_pid(&dir, service).expect("the old version serves");
        assert_eq!(r["pid"].as_u64(), Some(pid as u64), "{r}");
        assert_eq!(def_exec(&dir, service), exec);
        assert_version(&node, service, &upgraded[service]);
        assert!(!dir.join(format!("upgrade/{service}.journal.json")).exists());
        assert_eq!(
            workloads(&dir, container, &prefix),
            before,
            "workloads after the broken {service}"
        );
    }
    assert!(!netd_state.with_extension("next").exists());

    // on demand: back to the version before the upgrade, live too (the same state)
    let (ok, r) = zos_upgrade(&dir, &["netd", "--rollback"]);
    assert!(ok, "{r}");
    assert_eq!(r["outcome"], "rolled_back", "{r}");
    assert_eq!(r["taken_over"], true, "{r}");
    assert_eq!(r["to_version"], original["netd"], "{r}");
    assert_version(&node, "netd", &original["netd"]);
    assert_eq!(udp_sockets(health_pid(&dir, "netd").unwrap()), tunnels);
    assert_eq!(workloads(&dir, container, &prefix), before);

    // a build whose migration changes the state: stopped, migrated, started (the tunnels
    // are made again), and its rollback brings the old state back
    let changing = script(
        tmp.path(),
        "changing-netd",
        &format!(
            "real={}\nif [ \"$1\" = --migrate ]; then \"$real\" \"$@\" || exit $?; echo '{{}}' > \"$3/note.json\"; exit 0; fi\nexec \"$real\" \"$@\"",
            real_netd.display()
        ),
    );
    let (ok, r) = zos_upgrade(&dir, &["netd", "--from", changing.to_str().unwrap()]);
    assert!(ok, "{r}");
    assert_eq!(
        (&r["migrated"], &r["taken_over"]),
        (&json!(true), &Value::Null),
        "{r}"
    );
    assert!(netd_state.join("note.json").exists());
    assert!(netd_state.with_extension("rollback").is_dir());
    assert_eq!(workloads(&dir, container, &prefix), before);
    let (ok, r) = zos_upgrade(&dir, &["netd", "--rollback"]);
    assert!(ok, "{r}");
    assert_eq!(r["outcome"], "rolled_back", "{r}");
    assert!(
        !netd_state.join("note.json").exists(),
        "the old state is back"
    );
    assert_version(&node, "netd", &original["netd"]);
    assert!(health_pid(&dir, "netd").is_some());
    assert_eq!(workloads(&dir, container, &prefix), before);
    // the network is still served by the rolled-back netd
    let view = node.zos_json(&["get", "mesh", "--json"]);
    assert_eq!(
        view["deployment"]["workloads"][0]["result"]["state"], "ok",
        "{view}"
    );
    drop(node);
    tmp.destroy_node();
}

/// A minimal RESP client on one TCP connection.
struct Resp {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

impl Resp {
    fn connect(addr: &str, port: u64) -> Resp {
        let host = if addr.contains(':') {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        };
        let s = std::net::TcpStream::connect(host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Resp {
            r: std::io::BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// Sends one command; its reply as text (`-` prefixed for an error), or the I/O error.
    fn call(&mut self, args: &[&str]) -> std::io::Result<String> {
        use std::io::{BufRead, Read, Write};
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.w.write_all(req.as_bytes())?;
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        let line = line.trim_end().to_string();
        match line.as_bytes().first() {
            Some(b'$') => {
                let n: i64 = line[1..].parse().unwrap();
                if n < 0 {
                    return Ok("(nil)".into());
                }
                let mut buf = vec![0; n as usize + 2];
                self.r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Ok(String::from_utf8_lossy(&buf).into_owned())
            }
            Some(b'+' | b':') => Ok(line[1..].to_string()),
            _ => Ok(line),
        }
    }
}

#[test]
fn zdb_is_upgraded_under_a_busy_client_without_an_error() {
    if !require(&[]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let node = Node::start(&dir);
    let key = tmp.path().join("k.key");
    let owner = node.new_owner(&key);
    let file = tmp.file(
        "zdb.json",
        &example_blueprint("zdb.json", &owner, |v| {
            v["workloads"][0]["data"]["password"] = "live-pass".into();
        }),
    );
    let view = node.zos_json(&[
        "deploy",
        &file,
        "--key",
        key.to_str().unwrap(),
        "--wait",
        "--json",
    ]);
    let result = view["deployment"]["workloads"][0]["result"].clone();
    assert_eq!(result["state"], "ok", "{view}");
    let ns = result["data"]["namespace"].as_str().unwrap().to_string();
    let addr = result["data"]["address"].as_str().unwrap().to_string();
    let port = result["data"]["port"].as_u64().unwrap();
    // one server per HDD pool
    let before = hdd_zdbs(&dir);

    let mut c = Resp::connect(&addr, port);
    assert_eq!(c.call(&["SELECT", &ns, "live-pass"]).unwrap(), "OK");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut acked, mut errors) = (Vec::new(), Vec::new());
            let mut worst = Duration::ZERO;
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (k, v) = (format!("k{i}"), format!("value-{i}"));
                let t = std::time::Instant::now();
                match c.call(&["SET", &k, &v]) {
                    Ok(r) if !r.starts_with('-') => acked.push((k.clone(), v.clone())),
                    Ok(r) => errors.push(format!("SET {k}: {r}")),
                    Err(e) => {
                        errors.push(format!("SET {k}: {e}"));
                        break;
                    }
                }
                match c.call(&["GET", &k]) {
                    Ok(r) if r == v => {}
                    Ok(r) => errors.push(format!("GET {k}: {r}")),
                    Err(e) => {
                        errors.push(format!("GET {k}: {e}"));
                        break;
                    }
                }
                worst = worst.max(t.elapsed());
                i += 1;
            }
            (c, acked, errors, worst)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let new = new_build(tmp.path(), "zdb");
    let (ok, r) = zos_upgrade(&dir, &["zdb", "--from", new.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut c, acked, errors, worst) = client.join().unwrap();
    assert!(ok, "{r}");
    assert_eq!(r["outcome"], "upgraded", "{r}");
    let servers = r["zdb"].as_array().unwrap();
    assert_eq!(servers.len(), before.len(), "{r}");
    assert!(servers.iter().all(|s| s["upgraded"] == true), "{r}");
    assert_eq!(
        errors,
        Vec::<String>::new(),
        "client errors during the hand-over"
    );
    eprintln!(
        "{} SET+GET pairs during the upgrade, worst pair {worst:?}",
        acked.len()
    );
    // the same connection (the client never reconnects), now served by the new process
    let after = zdb_pids(&dir);
    assert_eq!(after.len(), before.len(), "{after:?}");
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} {after:?}"
    );
    let mut reported: Vec<u64> = servers.iter().map(|s| s["pid"].as_u64().unwrap()).collect();
    reported.sort();
    assert_eq!(
        reported,
        after.iter().map(|p| *p as u64).collect::<Vec<_>>()
    );
    for p in &after {
        let exe = std::fs::read_link(format!("/proc/{p}/exe")).unwrap();
        assert!(
            exe.starts_with(dir.join("versions/zdb")),
            "{}",
            exe.display()
        );
    }
    for (k, v) in &acked {
        assert_eq!(&c.call(&["GET", k]).unwrap(), v, "{k} after the upgrade");
    }
    // --rollback zdb: handed back to the old binary the same live way, same connection
    let (ok, r) = zos_upgrade(&dir, &["zdb", "--rollback"]);
    assert!(ok, "{r}");
    assert_eq!(r["outcome"], "rolled_back", "{r}");
    let back = zdb_pids(&dir);
    assert_eq!(back.len(), before.len(), "{back:?}");
    assert!(
        back.iter().all(|p| !after.contains(p)),
        "{after:?} {back:?}"
    );
    for p in &back {
        let exe = std::fs::read_link(format!("/proc/{p}/exe")).unwrap();
        let old = std::fs::canonicalize(bin("zdb")).unwrap();
        assert_eq!(exe, old, "zdb {p} after the rollback");
    }
    let (k, v) = acked.last().unwrap();
    assert_eq!(&c.call(&["GET", k]).unwrap(), v, "{k} after the rollback");
    let r = c.call(&["SET", "after-rollback", "x"]).unwrap();
    assert!(!r.starts_with('-'), "SET after the rollback: {r}");
    // storaged supervises the new one (a later restart would run the new binary)
    let (ok, text) = node.zos(&["services", "--json"]);
    assert!(ok, "{text}");
    drop(node);
    tmp.destroy_node();
}

/// `tree/bin/computed` (a new build) packed into `name` in a dir store, signed with `key`.
fn release(tmp: &Path, name: &str, key: &Path) -> PathBuf {
    let tree = tmp.join(format!("{name}-tree"));
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::copy(new_build(tmp, "computed"), tree.join("bin/computed")).unwrap();
    std::fs::copy(new_build(tmp, "flist"), tree.join("bin/flist")).unwrap();
    let file = tmp.join(name);
    signed_release(&tree, &file, &tmp.join("release-store"), key);
    file
}

#[test]
fn a_release_flist_is_refused_unless_the_pinned_key_signed_it() {
    if !require(&[]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let (key, other) = (tmp.path().join("release.key"), tmp.path().join("other.key"));
    let public = flist(&["keygen".as_ref(), "-o".as_ref(), key.as_os_str()]);
    flist(&["keygen".as_ref(), "-o".as_ref(), other.as_os_str()]);
    let mut cmd = Command::new(bin("node-init"));
    cmd.arg("--dev")
        .arg(&dir)
        .args(["--release-key", &public])
        .env("PATH", tests::path_with_bins());
    let node = tests::start_node(cmd, &dir);
    let good = release(tmp.path(), "good.flist", &key);
    let foreign = release(tmp.path(), "foreign.flist", &other);
    // a byte of the signed flist changed
    let tampered = tmp.path().join("tampered.flist");
    let mut bytes = std::fs::read(&good).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&tampered, bytes).unwrap();

    // the tampered and the good release are fetched over http
    let web = serve_files(tmp.path());
    let exec = def_exec(&dir, "computed");
    let pid = health_pid(&dir, "computed").unwrap();
    for bad in [
        format!("{web}/tampered.flist"),
        foreign.display().to_string(),
    ] {
        let out = Command::new(bin("zos"))
            .args(["upgrade", "--flist", &bad])
            .env("ZOS_NODE", &dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("refused"), "{text}");
        // nothing changed: same definition, same process, nothing installed
        assert_eq!(def_exec(&dir, "computed"), exec);
        assert_eq!(health_pid(&dir, "computed"), Some(pid));
        assert!(!dir.join("versions").exists());
        assert!(!dir.join("upgrade/computed.journal.json").exists());
    }
    let out = Command::new(bin("zos"))
        .args(["upgrade", "--json", "--flist", &format!("{web}/good.flist")])
        .env("ZOS_NODE", &dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["signer"], public.as_str(), "{r}");
    assert_eq!(r["services"][0]["service"], "computed", "{r}");
    assert_eq!(r["services"][0]["outcome"], "upgraded", "{r}");
    // then the flist mount binary (no mount to hand over: the next ones use it)
    assert_eq!(r["services"][1]["service"], "flist", "{r}");
    assert_eq!(r["services"][1]["outcome"], "upgraded", "{r}");
    assert!(dir.join("versions/flist").is_dir());
    assert!(def_exec(&dir, "computed").contains("/versions/computed/"));
    assert_ne!(health_pid(&dir, "computed"), Some(pid));
    drop(node);
    tmp.destroy_node();
}

/// Serves the files of `dir` by name over http on a local port for the rest of the test (a
/// thread per request, HTTP/1.0 answers); the base URL.
fn serve_files(dir: &Path) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let mut r = BufReader::new(&conn);
                if r.read_line(&mut line).is_err() {
                    return;
                }
                // the rest of the request: closing with it unread would reset the connection
                let mut header = String::new();
                while r.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let name = line
                    .split(' ')
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let mut w = &conn;
                match std::fs::read(dir.join(name))
                    .ok()
                    .filter(|_| !name.contains('/'))
                {
                    Some(body) => {
                        let head =
                            format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                        let _ = w.write_all(head.as_bytes());
                        let _ = w.write_all(&body);
                    }
                    None => {
                        let _ = w.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                    }
                }
            });
        }
    });
    base
}

/// The pids of the `flist-mount[PID]` lines of a mount daemon's log (a take-over appends to
/// the same log, and a drained process may still write after its successor did).
fn mount_log_pids(log: &Path) -> std::collections::BTreeSet<i32> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split("flist-mount[")
        .skip(1)
        .filter_map(|s| s.split(']').next()?.parse().ok())
        .collect()
}

fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
    })
}

#[test]
fn flist_mount_is_upgraded_under_a_container_reading_a_large_file() {
    if !require(&[("/bin/busybox", "apt-get install busybox-static")]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let node = Node::start(&dir);
    let key = tmp.path().join("k.key");
    let owner = node.new_owner(&key);
    let k = key.to_str().unwrap();
    // 16 MiB of noise and its md5 (by busybox, as the container computes it).
    let mut big = Vec::with_capacity(16 << 20);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while big.len() < 16 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    let raw = tmp.path().join("big.raw");
    std::fs::write(&raw, &big).unwrap();
    let out = Command::new("/bin/busybox")
        .arg("md5sum")
        .arg(&raw)
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (flist, identity) = tests::busybox_flist_with(
        tmp.path(),
        &["md5sum"],
        &[("big", &big), ("want", want.as_bytes())],
    );
    let bp = example_blueprint("container.json", &owner, |v| {
        let app = &mut v["workloads"][1]["data"];
        app["flist"] = flist.display().to_string().into();
        app["identity"] = identity.clone().into();
        app["memory"] = (128u64 << 20).into();
        app["entrypoint"] = json!([
            "/bin/sh",
            "-c",
            "want=$(cat /want); while true; do s=$(md5sum /big); \
             if [ \"${s%% *}\" = \"$want\" ]; then echo pass; else echo \"BAD: $s\"; fi; done"
        ]);
    });
    let file = tmp.file("web.json", &bp);
    let view = node.zos_json(&["deploy", &file, "--key", k, "--wait", "--json"]);
    let app = &view["deployment"]["workloads"][1]["result"];
    assert_eq!(app["data"]["state"], "running", "{view}");
    let pid = app["data"]["pid"].as_u64().unwrap();

    // The container's reads go through FUSE every pass: the host drops the mount's page
    // cache of the file all along.
    let base = dir.join("computed/flist/mounts").join(&identity);
    let log = base.join("daemon.log");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dropper = {
        let (stop, f) = (stop.clone(), base.join("ro/big"));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(f) = std::fs::File::open(&f) {
                    let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let passes = |at_least: usize| {
        let t = std::time::Instant::now();
        loop {
            let (_, logs) = node.zos(&["logs", "web", "app"]);
            assert!(
                !logs.contains("BAD") && !logs.contains("md5sum:"),
                "read error in the container: {logs}"
            );
            let n = logs
                .lines()
                .filter(|l| l.trim_end().ends_with("pass"))
                .count();
            if n >= at_least {
                return n;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "no progress: {logs}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut seen = passes(2);
    // Before any take-over, the one process that wrote the log is the one serving.
    let first = mount_log_pids(&log);
    assert_eq!(first.len(), 1, "{first:?}");
    let mut serving = *first.first().unwrap();
    for round in 1..=2u8 {
        let old = serving;
        let new_bin = rebuilt(
            "flist",
            &tmp.path().join(format!("new-flist-{round}")),
            &format!("\nnew build {round}\n"),
        );
        let (ok, r) = zos_upgrade(&dir, &["flist", "--from", new_bin.to_str().unwrap()]);
        assert!(ok, "{r}");
        assert_eq!(r["outcome"], "upgraded", "{r}");
        let m = &r["flist"][0];
        assert_eq!(m["identity"], identity.as_str(), "{r}");
        assert_eq!(m["upgraded"], true, "{r}");
        let new = m["pid"].as_i64().unwrap() as i32;
        serving = new;
        assert!(gone(old), "old mount process {old} still runs");
        assert!(!gone(new), "new mount process {new} is not running");
        assert_eq!(
            std::fs::read_link(format!("/proc/{new}/exe")).unwrap(),
            dir.join("versions/flist")
                .read_dir()
                .unwrap()
                .flatten()
                .map(|e| e.path().join("flist"))
                .find(|p| std::fs::read(p)
                    .is_ok_and(|b| b.ends_with(format!("new build {round}\n").as_bytes())))
                .unwrap()
        );
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "container died"
        );
        seen = passes(seen + 2);
    }
    // A broken build: the upgrade fails and says so; the mount process serves on, and no
    // other process wrote to the mount's log.
    let old = serving;
    let mut writers = mount_log_pids(&log);
    writers.insert(old);
    let broken = script(tmp.path(), "broken-flist", "echo broken >&2; exit 3");
    let (ok, text) = node.zos(&["upgrade", "flist", "--from", broken.to_str().unwrap()]);
    assert!(!ok && text.contains("broken"), "{text}");
    assert!(
        !gone(old),
        "the mount process {old} went with a failed upgrade"
    );
    assert_eq!(mount_log_pids(&log), writers);
    seen = passes(seen + 2);
    // on demand: the mounts go back to the build they ran before the last upgrade, live too
    let (ok, r) = zos_upgrade(&dir, &["flist", "--rollback"]);
    assert!(ok, "{r}");
    assert_eq!(r["outcome"], "rolled_back", "{r}");
    let back = r["flist"][0]["pid"].as_i64().unwrap() as i32;
    assert!(
        gone(old),
        "the mount process {old} still runs after the rollback"
    );
    let exe = std::fs::read(format!("/proc/{back}/exe")).unwrap();
    assert!(exe.ends_with(b"\nnew build 1\n"), "not the first build");
    seen = passes(seen + 2);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    dropper.join().unwrap();
    eprintln!("{seen} checked passes over the large file, no read error");
    let view = node.zos_json(&["delete", "web", "--key", k, "--wait", "--json"]);
    assert_eq!(view["state"], "deleted");
    drop(node);
    tmp.destroy_node();
}
