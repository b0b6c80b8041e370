//! End to end: node-init upgrades itself by re-executing in place. On a dev node: `zos upgrade
//! node-init --from NEW` keeps node-init's pid and the daemons' pids (they stay its children,
//! adopted, and a killed one is still collected and restarted), `zos version` shows the new
//! build; `--rollback` goes back the same way; a build failing its self-check is refused with
//! nothing changed; a build that passes it but exits at start is reverted by itself (the
//! guard starts the old one again). Then as PID 1 of a fresh pid namespace: a build failing
//! at start (fault injection) execs the old one back in place, one exiting at once is refused
//! by its self-check; a good one: same pid (PID 1), same daemons, orphans still reaped.
#![expect(clippy::unwrap_used, reason = "tests")]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::{
    Node, World, bin, flist, health_pid, rebuilt, require, script, signed_release, start_node, zos,
    zos_upgrade,
};

fn node_init_version(dir: &Path) -> String {
    let (ok, text) = zos(dir, &["version", "--json"]);
    assert!(ok, "zos version: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["node_init"].as_str().unwrap().to_string()
}

/// The same node-init with bytes appended: runs the same, hashes differently.
fn new_build(tmp: &Path) -> PathBuf {
    build(tmp, "new")
}

fn build(tmp: &Path, name: &str) -> PathBuf {
    rebuilt(
        "node-init",
        &tmp.join(format!("{name}-node-init")),
        &format!("\n{name} build\n"),
    )
}

fn b3(path: &Path) -> String {
    let h = blake3::hash(&std::fs::read(path).unwrap()).to_hex();
    format!("b3:{}", &h[..12])
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn daemons(dir: &Path) -> Vec<(&'static str, u32)> {
    ["storaged", "computed", "netd"]
        .into_iter()
        .map(|s| (s, health_pid(dir, s).unwrap_or_else(|| panic!("{s} down"))))
        .collect()
}

/// Waits (10 s) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn node_init_upgrades_itself_in_place_and_a_broken_build_reverts() {
    if !require(&[]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let _node = Node::start(&dir);
    let pid = health_pid(&dir, "node-init").unwrap();
    let before = daemons(&dir);
    let old_version = node_init_version(&dir);
    assert!(
        old_version.contains(&b3(&bin("node-init"))),
        "{old_version}"
    );

    // a new build: same pid, same daemons (still its children), the new version shown
    let new = new_build(tmp.path());
    let t = Instant::now();
    let (ok, r) = zos_upgrade(&dir, &["node-init", "--from", &new.to_string_lossy()]);
    eprintln!("node-init upgraded in place in {:?}", t.elapsed());
    assert!(ok, "{r}");
    assert_eq!(r["outcome"], "upgraded", "{r}");
    assert_eq!(r["pid"], pid, "{r}");
    assert_eq!(health_pid(&dir, "node-init"), Some(pid));
    assert_eq!(daemons(&dir), before, "daemons restarted");
    for (s, p) in &before {
        assert_eq!(ppid(*p), Some(pid), "{s} is no longer node-init's child");
    }
    assert!(node_init_version(&dir).contains(&b3(&new)));
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.starts_with(dir.join("versions/node-init")),
        "{}",
        exe.display()
    );
    let (ok, text) = zos(&dir, &["services", "--json"]);
    assert!(ok, "{text}");
    // the guard ended with the commit and was collected: no zombie child is left
    eventually("node-init keeps a zombie child after its re-exec", || {
        zombie_children(pid).is_empty()
    });

    // a daemon killed after the re-exec: collected (no zombie) and restarted
    let netd = before.iter().find(|(s, _)| *s == "netd").unwrap().1;
    assert!(
        Command::new("kill")
            .args(["-KILL", &netd.to_string()])
            .status()
            .unwrap()
            .success()
    );
    eventually("netd killed after the re-exec is not back", || {
        health_pid(&dir, "netd").is_some_and(|p| p != netd)
    });
    assert!(
        !Path::new(&format!("/proc/{netd}")).exists(),
        "the killed netd {netd} was not collected"
    );
    let before = daemons(&dir);

    // --rollback: the same way back
    let (ok, r) = zos_upgrade(&dir, &["--rollback", "node-init"]);
    assert!(ok, "{r}");
    assert_eq!(r["outcome"], "rolled_back", "{r}");
    assert_eq!(health_pid(&dir, "node-init"), Some(pid));
    assert_eq!(node_init_version(&dir), old_version);
    assert_eq!(daemons(&dir), before);

    // a build failing its self-check: refused, nothing changed
    let bad = script(tmp.path(), "bad-node-init", "echo no such flag >&2; exit 2");
    let (ok, r) = zos_upgrade(&dir, &["node-init", "--from", &bad.to_string_lossy()]);
    assert!(!ok, "{r}");
    assert!(r.to_string().contains("self-check"), "{r}");
    assert_eq!(health_pid(&dir, "node-init"), Some(pid));
    assert_eq!(node_init_version(&dir), old_version);

    // a build that passes it but exits at start: the guard starts the old one again
    let broken = script(
        tmp.path(),
        "broken-node-init",
        "case \"$*\" in *--self-check*) exit 0;; esac\necho broken at start >&2; exit 3",
    );
    let (ok, r) = zos_upgrade(&dir, &["node-init", "--from", &broken.to_string_lossy()]);
    assert!(!ok, "{r}");
    assert_eq!(r["outcome"], "reverted", "{r}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("before it was ready"),
        "{r}"
    );
    assert_eq!(node_init_version(&dir), old_version);
    assert_eq!(daemons(&dir), before, "daemons restarted by the revert");
    assert!(!dir.join("upgrade/node-init.reexec.json").exists());

    // node-init SIGKILLed in the middle of its own upgrade (journal and guard there, the exec
    // due or done): the guard starts the old one again, the daemons keep running
    let pid = health_pid(&dir, "node-init").unwrap();
    let killed = build(tmp.path(), "killed");
    let zos_run = Command::new(bin("zos"))
        .args(["upgrade", "node-init", "--json", "--from"])
        .arg(&killed)
        .env("ZOS_NODE", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = dir.join("upgrade/node-init.reexec.json");
    eventually("no journal with a guard", || {
        std::fs::read(&journal)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|j| j["guard"].is_u64())
    });
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = zos_run.wait_with_output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(r["outcome"], "reverted", "{r}");
    let back = health_pid(&dir, "node-init").unwrap();
    assert_ne!(back, pid);
    assert_eq!(node_init_version(&dir), old_version);
    assert_eq!(daemons(&dir), before, "daemons restarted");
    drop(_node);
    tmp.destroy_node();
}

fn service_pid(dir: &Path, name: &str) -> u32 {
    let (ok, text) = zos(dir, &["services", "--json"]);
    assert!(ok, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let s = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name}: {v}"));
    s["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} not running: {s}")) as u32
}

/// Zombie children of `parent`.
fn zombie_children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                let f: Vec<&str> = s
                    .rsplit_once(')')
                    .map_or("", |x| x.1)
                    .split_whitespace()
                    .collect();
                f.first() == Some(&"Z") && f.get(1) == Some(&parent.to_string().as_str())
            })
        })
        .collect()
}

/// The host pid of the child of `parent` (unshare's forked node-init).
fn child_of(parent: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[test]
fn node_init_as_pid1_reexecutes_itself_and_still_reaps() {
    if !require(&[("/usr/bin/unshare", "apt-get install util-linux")]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    std::fs::create_dir_all(dir.join("services")).unwrap();
    // a service whose background child is orphaned at each start and ends 1.5 s later
    std::fs::write(
        dir.join("services/orphans.json"),
        r#"{"exec": "/bin/sh", "args": ["-c", "(sleep 1.5 &); exec sleep 1000"]}"#,
    )
    .unwrap();
    // a build that fails at start once re-executed (its trial fails: fault injection)
    let failing = build(tmp.path(), "failing");
    let hanging = build(tmp.path(), "hanging");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin("node-init"))
        .arg("--dev")
        .arg(&dir)
        .env("PATH", tests::path_with_bins())
        .env("ZOS_LOG_FORMAT", "plain")
        .env(
            "ZOS_FAILPOINT_REEXEC",
            format!("{},hang:{}", b3(&failing), b3(&hanging)),
        )
        .stderr(Stdio::from(
            std::fs::File::create(tmp.path().join("node-init.err")).unwrap(),
        ));
    let node = start_node(cmd, &dir);
    let unshare = nodeutil::teardown::processes_under(&dir)
        .into_iter()
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(b"unshare\0"))
        })
        .expect("unshare");
    let init = child_of(unshare).expect("node-init in the namespace");
    let nspid = |p: u32| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("NSpid:"))
            .map(|l| l.trim_end().ends_with("\t1"))
    };
    assert_eq!(nspid(init), Some(true), "node-init is not PID 1");
    let before = daemons(&dir);
    let old_version = node_init_version(&dir);
    // a service without a bus socket is handed over by pid, not started twice
    let sleeper = service_pid(&dir, "orphans");
    let sleepers = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x001000\0")
            })
            // as the namespace sees it (node-init reports those pids)
            .filter_map(|p| {
                let st = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
                let l = st.lines().find(|l| l.starts_with("NSpid:"))?;
                l.split_whitespace().last()?.parse().ok()
            })
            .collect::<Vec<u32>>()
    };
    assert_eq!(sleepers(), [sleeper]);

    // the failing build goes back to the old binary by itself, in place: still PID 1
    let (ok, r) = zos_upgrade(&dir, &["node-init", "--from", &failing.to_string_lossy()]);
    assert!(!ok, "{r}");
    assert_eq!(r["outcome"], "reverted", "{r}");
    assert_eq!(r["pid"], 1, "{r}");
    assert_eq!(child_of(unshare), Some(init), "node-init's pid changed");
    assert_eq!(node_init_version(&dir), old_version);
    assert_eq!(daemons(&dir), before, "daemons restarted");
    // one never ready: its deadline takes it back, in place too
    let t = Instant::now();
    let (ok, r) = zos_upgrade(
        &dir,
        &[
            "node-init",
            "--from",
            &hanging.to_string_lossy(),
            "--ready-timeout",
            "2",
        ],
    );
    assert!(!ok, "{r}");
    assert_eq!(r["outcome"], "reverted", "{r}");
    assert!(
        r["detail"].as_str().unwrap().contains("not ready within"),
        "{r}"
    );
    eprintln!("a hanging build reverted in {:?}", t.elapsed());
    assert_eq!(child_of(unshare), Some(init), "node-init's pid changed");
    assert_eq!(node_init_version(&dir), old_version);
    assert_eq!(daemons(&dir), before, "daemons restarted");
    // one that exits at start is refused by its self-check: as PID 1 nothing could catch it
    let broken = script(tmp.path(), "broken-node-init", "exit 3");
    let (ok, r) = zos_upgrade(&dir, &["node-init", "--from", &broken.to_string_lossy()]);
    assert!(!ok && r.to_string().contains("self-check"), "{r}");

    let new = new_build(tmp.path());
    let (ok, r) = zos_upgrade(&dir, &["node-init", "--from", &new.to_string_lossy()]);
    assert!(ok, "{r}");
    assert_eq!(r["outcome"], "upgraded", "{r}");
    assert_eq!(r["pid"], 1, "{r}");
    assert_eq!(child_of(unshare), Some(init), "node-init's pid changed");
    assert_eq!(nspid(init), Some(true));
    assert!(node_init_version(&dir).contains(&b3(&new)));
    assert_eq!(daemons(&dir), before, "daemons restarted");
    assert_eq!(service_pid(&dir, "orphans"), sleeper);
    assert_eq!(sleepers(), [sleeper], "a service started twice");

    // orphans are still reaped: restart the service, its background child is orphaned again
    let (ok, text) = zos(&dir, &["services", "restart", "orphans"]);
    assert!(ok, "{text}");
    let t = Instant::now();
    let orphan = loop {
        let o = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|p| {
                ppid(*p) == Some(init)
                    && std::fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c == b"sleep\x001.5\0")
            });
        if let Some(o) = o {
            break o;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no orphan seen");
        std::thread::sleep(Duration::from_millis(50));
    };
    eventually("orphan not reaped after the re-exec", || {
        !Path::new(&format!("/proc/{orphan}")).exists()
    });
    drop(node);
    tmp.destroy_node();
}

#[test]
fn a_signed_release_upgrades_node_init_in_place_last() {
    if !require(&[]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let key = tmp.path().join("release.key");
    let public = flist(&["keygen".as_ref(), "-o".as_ref(), key.as_os_str()]);
    let mut cmd = Command::new(bin("node-init"));
    cmd.arg("--dev")
        .arg(&dir)
        .args(["--release-key", &public])
        .env("PATH", tests::path_with_bins());
    let node = start_node(cmd, &dir);
    let pid = health_pid(&dir, "node-init").unwrap();
    let before = daemons(&dir);
    // a release holding node-init only
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    let new = new_build(tmp.path());
    std::fs::copy(&new, tree.join("bin/node-init")).unwrap();
    let file = tmp.path().join("release.flist");
    signed_release(&tree, &file, &tmp.path().join("store"), &key);
    let (ok, r) = zos_upgrade(&dir, &["--flist", &file.to_string_lossy()]);
    assert!(ok, "{r}");
    let s = &r["services"][0];
    assert_eq!(s["service"], "node-init", "{r}");
    assert_eq!(s["outcome"], "upgraded", "{r}");
    assert_eq!(health_pid(&dir, "node-init"), Some(pid));
    assert!(node_init_version(&dir).contains(&b3(&new)));
    assert_eq!(daemons(&dir), before);
    drop(node);
    tmp.destroy_node();
}
