//! Slow operations (an flist download, a stop waiting for its grace period) run outside any
//! lock: `list`, `health` and other containers answer meanwhile, and a retried create joins
//! the running one instead of starting the container twice. Before, one engine lock was held
//! for the whole operation, longer than node-init's 60 s bus timeout.

use crate::harness::Env;
use crate::{create, stop};
use bus::api::Empty;
use bus::api::compute::*;
use bus::api::health::GetHealth;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An HTTP server that answers every request with `body`, but only once released.
struct HeldServer {
    url: String,
    requests: Arc<AtomicUsize>,
    release: Arc<AtomicBool>,
}

impl HeldServer {
    fn start(body: Vec<u8>) -> HeldServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/app.flist", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let (n, go) = (requests.clone(), release.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let (n, go, body) = (n.clone(), go.clone(), body.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|r| r == 1)
                    {
                        head.extend_from_slice(&byte);
                    }
                    n.fetch_add(1, Ordering::SeqCst);
                    while !go.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let _ = write!(
                        conn,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(&body);
                });
            }
        });
        HeldServer {
            url,
            requests,
            release,
        }
    }
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// `list` and `health` answer within 5 s (a loaded machine may be slow; the slow operation
/// holds far longer, so an answer that waited for it still fails).
async fn queries_answer_at_once(env: &Env) -> ContainerList {
    let t0 = Instant::now();
    let list = env.client.call::<ListContainers>(&Empty {}).await.unwrap();
    env.client.call::<GetHealth>(&Empty {}).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    list
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_flist_download_blocks_neither_list_nor_health_and_a_retry_does_not_start_twice() {
    let Some(env) = Env::new() else { return };
    let server = HeldServer::start(std::fs::read(&env.flist).unwrap());
    let mut spec = env.spec("slowurl", "sleep 600");
    spec.flist = server.url.clone();
    let (c1, s1) = (env.new_client(), spec.clone());
    let first = tokio::spawn(async move { c1.call::<CreateContainer>(&s1).await });
    let t0 = Instant::now();
    while server.requests() == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no download started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let list = queries_answer_at_once(&env).await;
    let c = list
        .containers
        .iter()
        .find(|c| c.name == spec.name)
        .unwrap();
    assert_eq!(
        (c.state, c.message.as_str()),
        (ContainerState::Creating, "create in progress")
    );
    // node-init's retry of the same create, while the first one still downloads
    let (c2, s2) = (env.new_client(), spec.clone());
    let second = tokio::spawn(async move { c2.call::<CreateContainer>(&s2).await });
    queries_answer_at_once(&env).await;
    server.release.store(true, Ordering::SeqCst);
    let a = first.await.unwrap().unwrap();
    let b = second.await.unwrap().unwrap();
    assert_eq!(a.state, ContainerState::Running, "{a:?}");
    assert_eq!(
        (b.state, b.pid),
        (a.state, a.pid),
        "started twice: {a:?} {b:?}"
    );
    assert_eq!(server.requests(), 1, "the flist was fetched twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_stop_blocks_neither_list_nor_health_nor_another_container() {
    let Some(env) = Env::new() else { return };
    // sh as pid 1 ignores SIGTERM: the stop waits for the whole grace period, long enough
    // that everything below happens meanwhile even on a loaded machine
    let mut stubborn = env.spec("stubborn", "sleep 600");
    stubborn.stop_grace_secs = 30;
    create(&env, &stubborn).await;
    let (c, name) = (env.new_client(), stubborn.name.clone());
    let t0 = Instant::now();
    let stopping = tokio::spawn(async move { c.call::<StopContainer>(&Name { name }).await });
    env.wait(&stubborn.name, 10, |c| c.message == "stop in progress")
        .await;
    queries_answer_at_once(&env).await;
    let other = env.spec("other", "sleep 600");
    let c = create(&env, &other).await;
    assert_eq!(c.state, ContainerState::Running);
    assert!(
        !stopping.is_finished(),
        "another container waited for the stop: {:?}",
        t0.elapsed()
    );
    let s = stopping.await.unwrap().unwrap();
    assert_eq!(s.state, ContainerState::Stopped);
    assert!(t0.elapsed() >= Duration::from_secs(30));
    stop(&env, &other.name).await;
}
