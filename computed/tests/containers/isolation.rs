//! Isolation and limits: namespaces, capabilities, seccomp, cgroups, the overlay.

use crate::harness::{Env, MIB};
use crate::{create, pid_alive, stop};
use bus::api::compute::*;
use std::time::Duration;

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
