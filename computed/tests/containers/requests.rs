//! Bad requests, logs, flists from URLs.

use crate::harness::Env;
use crate::{code, create};
use bus::ErrorCode;
use bus::api::compute::*;
use std::time::Duration;

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
