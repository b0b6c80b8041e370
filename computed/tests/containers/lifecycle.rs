//! Stop, start, restart policies, re-adoption after a computed restart, delete.

use crate::harness::Env;
use crate::{code, create, pid_alive, stop};
use bus::ErrorCode;
use bus::api::compute::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn stop_sends_sigterm_first_and_start_runs_it_again() {
    let Some(env) = Env::new() else { return };
    let spec = env.spec(
        "term",
        "trap 'echo got-term; exit 0' TERM; echo up; while true; do sleep 0.05; done",
    );
    create(&env, &spec).await;
    // "up" is printed after the trap is set: a SIGTERM before it is ignored by sh as pid 1
    // (seen on a loaded machine: SIGKILL after the grace period instead)
    let t0 = std::time::Instant::now();
    while !env.logs(&spec.name).await.contains("up\n") {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
