//! Real containers from a busybox flist: isolation, limits, policies, logs, stop, delete and
//! re-adoption. Needs root (see `common`).
#![allow(clippy::unwrap_used)]

mod common;

use bus::ErrorCode;
use bus::api::compute::*;
use common::{Env, MIB};
use std::time::Duration;

fn code(e: &bus::BusError) -> Option<ErrorCode> {
    e.remote().map(|r| r.code)
}

async fn create(env: &Env, spec: &ContainerSpec) -> Container {
    env.client.call::<CreateContainer>(spec).await.unwrap()
}

async fn stop(env: &Env, name: &str) -> Container {
    env.client
        .call::<StopContainer>(&Name { name: name.into() })
        .await
        .unwrap()
}

/// Alive and not a zombie (an orphan reparented to a pid 1 that does not reap stays one).
fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_runs_isolated_with_its_limits_and_writes_to_overlay_and_volume() {
    let Some(env) = Env::new() else { return };
    let vol = env.dir.join("volume");
    std::fs::create_dir_all(&vol).unwrap();
    let mut spec = env.spec(
        "app",
        "echo pid=$$; echo host=$(hostname); echo env=$GREETING; echo cwd=$(pwd); \
         grep -E '^(Seccomp|CapEff):' /proc/self/status; \
         echo ifaces=$(ls /sys/class/net); echo loflags=$(cat /sys/class/net/lo/flags); \
         echo procs=$(ls /proc | grep -c '^[0-9]'); \
         echo written > /etc/new-file; echo persisted > /data/out; cat /etc/motd; \
         touch /etc/ready; sleep 600",
    );
    spec.hostname = Some("web1".into());
    spec.env.insert("GREETING".into(), "hi there".into());
    spec.workdir = "/tmp".into();
    spec.mounts.push(Mount {
        source: vol.clone(),
        target: "/data".into(),
        readonly: false,
    });
    let c = create(&env, &spec).await;
    assert_eq!(c.state, ContainerState::Running);
    assert!(c.timings.rootfs_ms > 0 || c.timings.runtime_ms > 0);
    let upper = spec.rw.join("upper/etc/ready");
    let t0 = std::time::Instant::now();
    while !upper.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "script did not finish: {}",
            env.logs(&spec.name).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The shim copies the script's output to the log on its own schedule: /etc/ready can
    // exist before the last lines are logged (an empty log was seen on a loaded CI run).
    let mut out = env.logs(&spec.name).await;
    while !out.contains("from the flist\n") && t0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        out = env.logs(&spec.name).await;
    }
    for want in [
        "pid=1\n",
        "host=web1\n",
        "env=hi there\n",
        "cwd=/tmp\n",
        "Seccomp:\t2\n",
        // AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE NET_RAW
        // SETFCAP SETGID SETPCAP SETUID SYS_CHROOT, nothing else
        "CapEff:\t00000000a80425fb\n",
        "ifaces=lo\n",
        "loflags=0x9\n",
        "procs=",
        "from the flist\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in output:\n{out}");
    }
    // only the shell and the command substitution's processes are visible (pid namespace)
    let procs: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(procs <= 5, "{procs} processes visible");
    // writes went to the overlay's upper folder and to the volume, not to the flist
    assert_eq!(
        std::fs::read_to_string(spec.rw.join("upper/etc/new-file")).unwrap(),
        "written\n"
    );
    assert_eq!(
        std::fs::read_to_string(vol.join("out")).unwrap(),
        "persisted\n"
    );
    // limits on the host side
    let mem = env.cgroup_dir("memory", &spec.name);
    assert_eq!(
        std::fs::read_to_string(mem.join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        (64 * MIB).to_string()
    );
    assert_eq!(
        std::fs::read_to_string(env.cgroup_dir("pids", &spec.name).join("pids.max"))
            .unwrap()
            .trim(),
        "64"
    );
    assert_eq!(
        std::fs::read_to_string(env.cgroup_dir("cpu", &spec.name).join("cpu.cfs_quota_us"))
            .unwrap()
            .trim(),
        "50000"
    );
    // the network namespace is a file the network daemon can attach to
    assert_eq!(c.netns, format!("{}{}", env.netns_prefix, spec.name));
    assert!(std::path::Path::new("/run/netns").join(&c.netns).exists());

    // stop: sh as pid 1 ignores SIGTERM, so SIGKILL comes after the grace period
    let t0 = std::time::Instant::now();
    let s = stop(&env, &spec.name).await;
    assert_eq!(s.state, ContainerState::Stopped);
    assert_eq!(s.signal, Some(9));
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "SIGKILL before the grace period"
    );
    assert!(!mem.exists(), "cgroup left behind");
    // the entrypoint's pid is gone
    assert!(!pid_alive(c.pid.unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_sends_sigterm_first_and_start_runs_it_again() {
    let Some(env) = Env::new() else { return };
    let spec = env.spec(
        "term",
        "trap 'echo got-term; exit 0' TERM; echo up; while true; do sleep 0.05; done",
    );
    create(&env, &spec).await;
    env.wait(&spec.name, 10, |_| true).await;
    let s = stop(&env, &spec.name).await;
    assert_eq!(
        (s.state, s.exit_code, s.signal),
        (ContainerState::Stopped, Some(0), None)
    );
    assert!(env.logs(&spec.name).await.contains("got-term"));
    let c = env
        .client
        .call::<StartContainer>(&Name {
            name: spec.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(c.state, ContainerState::Running);
    let t0 = std::time::Instant::now();
    while env.logs(&spec.name).await.matches("up\n").count() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_container_of_the_same_flist_sees_none_of_the_first_ones_writes() {
    let Some(env) = Env::new() else { return };
    let a = env.spec(
        "first",
        "echo mine > /etc/secret; rm /etc/motd; touch /tmp/done; sleep 600",
    );
    create(&env, &a).await;
    let t0 = std::time::Instant::now();
    while !a.rw.join("upper/tmp/done").exists() {
        assert!(t0.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = env.spec(
        "second",
        "if [ -e /etc/secret ]; then echo sees-secret; else echo no-secret; fi; cat /etc/motd",
    );
    create(&env, &b).await;
    let c = env.wait_final(&b.name, 20).await;
    assert_eq!(c.exit_code, Some(0));
    let out = env.logs(&b.name).await;
    assert_eq!(out, "no-secret\nfrom the flist\n");
    // one shared read-only mount of the flist for both
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let ro = mounts
        .lines()
        .filter(|l| l.contains(&env.dir.display().to_string()) && l.contains(" fuse"))
        .count();
    assert_eq!(ro, 1, "{mounts}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_hog_is_killed_and_a_fork_bomb_stops_at_the_pids_limit() {
    let Some(env) = Env::new() else { return };
    // 200 MiB in one buffer against a 64 MiB limit
    let hog = env.spec(
        "hog",
        "echo start; exec dd if=/dev/zero of=/dev/null bs=200M count=1",
    );
    create(&env, &hog).await;
    let c = env.wait_final(&hog.name, 30).await;
    assert!(c.oom_killed, "{c:?}");
    assert_ne!(c.exit_code, Some(0), "{c:?}");
    assert_eq!(c.signal, Some(9), "{c:?}");

    let mut bomb = env.spec(
        "bomb",
        // the forking subshell dies at the first failed fork; pid 1 then waits without forking
        "(i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done) & exec tail -f /dev/null",
    );
    bomb.pids = 32;
    create(&env, &bomb).await;
    let t0 = std::time::Instant::now();
    while !env.logs(&bomb.name).await.contains("can't fork") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{}",
            env.logs(&bomb.name).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pids = env.cgroup_dir("pids", &bomb.name);
    let current: u32 = std::fs::read_to_string(pids.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((16..=32).contains(&current), "{current} tasks");
    // forks refused by the limit
    let events = std::fs::read_to_string(pids.join("pids.events")).unwrap();
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(refused > 0, "{events}");
    // the machine is fine and the container can still be stopped
    let s = stop(&env, &bomb.name).await;
    assert_eq!(s.state, ContainerState::Stopped);
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_policies_never_on_failure_with_a_cap_and_always() {
    let Some(env) = Env::new() else { return };
    let never = env.spec("never", "echo run; exit 3");
    create(&env, &never).await;
    let c = env.wait_final(&never.name, 20).await;
    assert_eq!(
        (c.state, c.exit_code, c.restarts),
        (ContainerState::Exited, Some(3), 0)
    );

    let mut capped = env.spec("capped", "echo run; exit 3");
    capped.restart = RestartPolicy::OnFailure { max_retries: 2 };
    create(&env, &capped).await;
    let c = env.wait_final(&capped.name, 30).await;
    assert_eq!(
        (c.state, c.exit_code, c.restarts),
        (ContainerState::Exited, Some(3), 2)
    );
    assert_eq!(env.logs(&capped.name).await, "run\nrun\nrun\n");

    let mut ok = env.spec("ok", "echo run; exit 0");
    ok.restart = RestartPolicy::OnFailure { max_retries: 5 };
    create(&env, &ok).await;
    let c = env.wait_final(&ok.name, 20).await;
    assert_eq!((c.exit_code, c.restarts), (Some(0), 0));

    let mut always = env.spec("always", "echo run; exit 0");
    always.restart = RestartPolicy::Always;
    create(&env, &always).await;
    env.wait(&always.name, 30, |c| c.restarts >= 3).await;
    let s = stop(&env, &always.name).await;
    assert_eq!(s.state, ContainerState::Stopped);
    let r = s.restarts;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = env.wait(&always.name, 5, |_| true).await;
    assert_eq!((again.state, again.restarts), (ContainerState::Stopped, r));
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_survive_a_computed_restart_and_a_dead_shim_is_replaced() {
    let Some(mut env) = Env::new() else { return };
    let spec = env.spec(
        "long",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    );
    let c = create(&env, &spec).await;
    let pid = c.pid.unwrap();
    env.kill_daemon();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pid_alive(pid), "the container died with computed");
    env.start_daemon();
    let again = env.wait(&spec.name, 5, |_| true).await;
    assert_eq!(
        (again.state, again.pid),
        (ContainerState::Running, Some(pid))
    );
    // output kept flowing and is still readable
    let before = env.logs(&spec.name).await.lines().count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.logs(&spec.name).await.lines().count() > before);

    // kill the shim: computed notices, and a new shim runs the container again
    let shim = shim_pid(&env.state_dir(&spec.name)).unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(shim).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let c = env
        .wait(&spec.name, 20, |c| {
            c.state == ContainerState::Running && c.pid.is_some_and(|p| p != pid)
        })
        .await;
    assert!(!pid_alive(pid), "the old run was not cleaned up");
    assert!(pid_alive(c.pid.unwrap()));
    let s = stop(&env, &spec.name).await;
    assert_eq!(s.state, ContainerState::Stopped);
}

/// Pid of the process running `computed shim DIR`.
fn shim_pid(dir: &std::path::Path) -> Option<i32> {
    let want = format!("shim\0{}\0", dir.display());
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmd).contains(&want).then_some(pid)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_releases_overlay_namespace_and_state_and_same_spec_is_idempotent() {
    let Some(env) = Env::new() else { return };
    let spec = env.spec("gone", "sleep 600");
    let c = create(&env, &spec).await;
    // same spec again: the same running container
    let c2 = create(&env, &spec).await;
    assert_eq!(c2.pid, c.pid);
    // a changed spec replaces it (new run, fresh writable layer)
    std::fs::write(spec.rw.join("upper/marker"), "old").unwrap();
    let mut changed = spec.clone();
    changed.env.insert("V".into(), "2".into());
    let c3 = create(&env, &changed).await;
    assert_ne!(c3.pid, c.pid);
    assert!(!spec.rw.join("upper/marker").exists());

    let rootfs = env.state_dir(&spec.name).join("rootfs");
    env.client
        .call::<DeleteContainer>(&Name {
            name: spec.name.clone(),
        })
        .await
        .unwrap();
    assert!(!env.state_dir(&spec.name).exists());
    assert!(!std::path::Path::new("/run/netns").join(&c.netns).exists());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(&rootfs.display().to_string()));
    assert!(
        !mounts.contains(&env.dir.display().to_string()),
        "shared mount left:\n{mounts}"
    );
    assert!(!pid_alive(c3.pid.unwrap()));
    // absent is fine; unknown is not_found for get
    env.client
        .call::<DeleteContainer>(&Name {
            name: spec.name.clone(),
        })
        .await
        .unwrap();
    let e = env
        .client
        .call::<GetContainer>(&Name {
            name: spec.name.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::NotFound));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_and_leave_nothing_behind() {
    let Some(env) = Env::new() else { return };
    let base = env.spec("bad", "true");
    let mut wrong_id = base.clone();
    wrong_id.identity = "00".repeat(32);
    let mut bad_name = base.clone();
    bad_name.name = "no/slashes".into();
    let mut tiny = base.clone();
    tiny.memory = 1024;
    let mut huge = base.clone();
    huge.memory = 1 << 50;
    let mut escape = base.clone();
    escape.mounts.push(Mount {
        source: env.dir.clone(),
        target: "/../etc".into(),
        readonly: true,
    });
    let mut no_entry = base.clone();
    no_entry.entrypoint.clear();
    for (spec, want) in [
        (&wrong_id, ErrorCode::InvalidArgument),
        (&bad_name, ErrorCode::InvalidArgument),
        (&tiny, ErrorCode::InvalidArgument),
        (&huge, ErrorCode::NoCapacity),
        (&escape, ErrorCode::InvalidArgument),
        (&no_entry, ErrorCode::InvalidArgument),
    ] {
        let e = env.client.call::<CreateContainer>(spec).await.unwrap_err();
        assert_eq!(code(&e), Some(want), "{e}");
    }
    let list = env
        .client
        .call::<ListContainers>(&bus::api::Empty {})
        .await
        .unwrap();
    assert!(list.containers.is_empty(), "{list:?}");
    // a missing program fails clearly and can be deleted
    let mut missing = base.clone();
    missing.entrypoint = vec!["/bin/not-there".into()];
    let e = env
        .client
        .call::<CreateContainer>(&missing)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("not-there") || e.to_string().contains("runtime"),
        "{e}"
    );
    env.client
        .call::<DeleteContainer>(&Name {
            name: missing.name.clone(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_bounded_and_followed_by_offset() {
    let Some(env) = Env::new() else { return };
    let mut spec = env.spec("chatty", "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done");
    spec.log_max_bytes = 64 << 10;
    create(&env, &spec).await;
    env.wait_final(&spec.name, 30).await;
    let kept: u64 = std::fs::read_dir(env.state_dir(&spec.name))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("out-"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(kept <= 64 << 10, "{kept} bytes kept");
    let first = env
        .client
        .call::<ContainerLogs>(&LogsRequest {
            name: spec.name.clone(),
            offset: 0,
            max: 1 << 20,
        })
        .await
        .unwrap();
    assert!(first.offset > 0, "old output should be rotated away");
    assert!(first.finished);
    let all = env.logs(&spec.name).await;
    assert!(all.ends_with("line-2999-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"));
    // total written = 3000 lines; the next offset counts every byte ever written
    let total: u64 = (0..3000u64)
        .map(|i| format!("line-{i}-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n").len() as u64)
        .sum();
    let end = env
        .client
        .call::<ContainerLogs>(&LogsRequest {
            name: spec.name.clone(),
            offset: total,
            max: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        (end.offset, end.data.as_str(), end.next),
        (total, "", total)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_flist_url_is_fetched_once_and_pinned_by_identity() {
    let Some(env) = Env::new() else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&env.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/busybox.flist");
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "http server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // another identity under the same URL is refused, nothing kept
    let mut wrong = env.spec("urlbad", "true");
    wrong.flist = url.clone();
    wrong.identity = "ab".repeat(32);
    let e = env
        .client
        .call::<CreateContainer>(&wrong)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::InvalidArgument), "{e}");
    let mut spec = env.spec("url", "cat /etc/motd");
    spec.flist = url;
    create(&env, &spec).await;
    let c = env.wait_final(&spec.name, 20).await;
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(c.exit_code, Some(0), "{c:?}");
    assert_eq!(env.logs(&spec.name).await, "from the flist\n");
    let pinned = env
        .dir
        .join("root/flists")
        .join(format!("{}.flist", env.identity));
    assert!(pinned.exists());
    let kept: Vec<_> = std::fs::read_dir(env.dir.join("root/flists"))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1, "temporary files left: {kept:?}");
}
