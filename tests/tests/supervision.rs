//! End to end: node-init's supervisor on a dev node. storaged, computed and netd are killed
//! with SIGKILL in turn: each is back within a second (asserted generously; the times are
//! printed) and the workloads outlive it with the same pids (the zdb server, the container and
//! its shim). Then node-init as PID 1 of a fresh pid namespace: an orphan is reaped, and
//! SIGTERM stops the daemons in reverse order.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::{
    Node, World, bin, busybox_flist, example_blueprint, hdd_zdbs, require, start_node, zdb_pids,
};

/// [`tests::health_pid`] with shorter bounds: polled to time a restart.
fn health_pid(dir: &Path, service: &str) -> Option<u32> {
    tests::health_pid_within(
        dir,
        service,
        Duration::from_millis(200),
        Duration::from_secs(1),
    )
}

/// pids of processes whose command line names `dir` and contains `word` as an argument.
fn pids_with(dir: &Path, word: &str) -> Vec<u32> {
    let mut out: Vec<u32> = nodeutil::teardown::processes_under(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == word.as_bytes()))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn killed_daemons_are_back_within_a_second_and_keep_their_workloads() {
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
            v["workloads"][0]["data"]["password"] = "sup-pass".into();
        }),
    );
    let view = node.zos_json(&["deploy", &zdb, "--key", k, "--wait", "--json"]);
    assert_eq!(
        view["deployment"]["workloads"][0]["result"]["state"], "ok",
        "{view}"
    );
    let (flist, identity) = busybox_flist(tmp.path());
    let web = tmp.file(
        "web.json",
        &example_blueprint("container.json", &owner, |v| {
            let app = &mut v["workloads"][1]["data"];
            app["flist"] = flist.display().to_string().into();
            app["identity"] = identity.into();
        }),
    );
    let view = node.zos_json(&["deploy", &web, "--key", k, "--wait", "--json"]);
    let app = &view["deployment"]["workloads"][1]["result"];
    assert_eq!(app["data"]["state"], "running", "{view}");
    let container = app["data"]["pid"].as_u64().unwrap() as u32;
    let zdbs = hdd_zdbs(&dir);
    let shims = pids_with(&dir, "shim");
    assert!(!zdbs.is_empty() && !shims.is_empty(), "{zdbs:?} {shims:?}");

    let mut times = Vec::new();
    for service in ["storaged", "computed", "netd"] {
        let old = health_pid(&dir, service).unwrap();
        assert!(
            Command::new("kill")
                .args(["-KILL", &old.to_string()])
                .status()
                .unwrap()
                .success()
        );
        let t = Instant::now();
        loop {
            if health_pid(&dir, service).is_some_and(|p| p != old) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{service} not back after 5 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        times.push((service, t.elapsed()));
        // what it runs outlived it and is adopted, not restarted
        assert_eq!(zdb_pids(&dir), zdbs, "zdb servers after killing {service}");
        assert_eq!(
            pids_with(&dir, "shim"),
            shims,
            "shims after killing {service}"
        );
        assert!(Path::new(&format!("/proc/{container}")).exists());
    }
    eprintln!("back after SIGKILL: {times:?}");
    // the supervisor's own readiness probe (every 100 ms) may lag the test's by a round
    let t = Instant::now();
    let list = loop {
        let list = node.zos_json(&["services", "--json"]);
        let all = list["services"].as_array().unwrap();
        if all.iter().all(|s| s["state"] == "running") || t.elapsed() > Duration::from_secs(5) {
            break list;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for s in list["services"].as_array().unwrap() {
        assert_eq!(s["state"], "running", "{list}");
        assert_eq!(s["restarts"], 1, "{list}");
        assert_eq!(s["readiness"], "ok", "{list}");
    }
    // the container is still served by the new computed
    let view = node.zos_json(&["get", "web", "--json"]);
    assert_eq!(
        view["deployment"]["workloads"][1]["result"]["data"]["pid"].as_u64(),
        Some(container as u64),
        "{view}"
    );
    let (ok, log) = node.zos(&["logs", "storaged"]);
    assert!(ok && !log.is_empty(), "{log}");
    drop(node);
    tmp.destroy_node();
}

/// The host pid of the child of `parent` (unshare's forked node-init).
fn child_of(parent: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn ppid_and_cmd(pid: u32) -> Option<(u32, Vec<u8>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ppid = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ppid, std::fs::read(format!("/proc/{pid}/cmdline")).ok()?))
}

#[test]
fn node_init_as_pid1_reaps_orphans_and_stops_in_order() {
    if !require(&[("/usr/bin/unshare", "apt-get install util-linux")]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    std::fs::create_dir_all(dir.join("services")).unwrap();
    // a service whose background child is orphaned at once and ends after 2 s
    std::fs::write(
        dir.join("services/orphans.json"),
        r#"{"exec": "/bin/sh", "args": ["-c", "(sleep 2.5 &); exec sleep 1000"]}"#,
    )
    .unwrap();
    let err_log: PathBuf = tmp.path().join("node-init.err");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--mount-proc", "--kill-child"])
        .arg(bin("node-init"))
        .arg("--dev")
        .arg(&dir)
        .env("PATH", tests::path_with_bins())
        .env("ZOS_LOG_FORMAT", "plain")
        .stderr(Stdio::from(std::fs::File::create(&err_log).unwrap()));
    let node = start_node(cmd, &dir);
    // start_node's child is unshare; node-init is its only child
    let unshare_pid = {
        let mut found = None;
        for p in nodeutil::teardown::processes_under(&dir) {
            if let Some((_, cmd)) = ppid_and_cmd(p)
                && cmd.starts_with(b"unshare\0")
            {
                found = Some(p);
            }
        }
        found.expect("unshare process")
    };
    let init = child_of(unshare_pid).expect("node-init in the namespace");
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("NSpid:") && l.trim_end().ends_with("\t1")),
        "node-init is not PID 1 of its namespace: {status}"
    );

    // the orphan: re-parented to node-init, reaped (gone from /proc) soon after it ends
    let t = Instant::now();
    let orphan = loop {
        let o = all_pids()
            .into_iter()
            .find(|p| ppid_and_cmd(*p).is_some_and(|(pp, c)| pp == init && c == b"sleep\x002.5\0"));
        if let Some(o) = o {
            break o;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no orphan seen");
        std::thread::sleep(Duration::from_millis(50));
    };
    while Path::new(&format!("/proc/{orphan}")).exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "orphan {orphan} not reaped: {:?}",
            std::fs::read_to_string(format!("/proc/{orphan}/stat"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // SIGTERM: the daemons stop, dependents first, then node-init exits
    assert!(
        Command::new("kill")
            .args(["-TERM", &init.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let t = Instant::now();
    while Path::new(&format!("/proc/{init}")).exists()
        && ppid_and_cmd(init).is_some_and(|(pp, _)| pp == unshare_pid)
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "node-init still running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(node);
    let log = std::fs::read_to_string(&err_log).unwrap();
    let stopped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("service stopped"))
        .filter_map(|l| {
            ["storaged", "computed", "netd", "orphans"]
                .into_iter()
                .find(|s| l.contains(&format!("service={s}")))
        })
        .collect();
    eprintln!("orphan {orphan} reaped; stop order {stopped:?}");
    let at = |s: &str| {
        stopped
            .iter()
            .position(|x| *x == s)
            .unwrap_or_else(|| panic!("{s} not stopped:\n{log}"))
    };
    assert!(
        at("computed") < at("storaged") && at("netd") < at("storaged"),
        "{stopped:?}"
    );
    tmp.destroy_node();
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
