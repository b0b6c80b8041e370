//! The whole server (connections, group commit, buffered appends) on the power-cut storage
//! model: with `--sync`, every write acknowledged before the power went is there afterwards;
//! without it, the namespace still opens clean.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zdb::config::Config;
use zdb::engine::{EngineConfig, Namespace};
use zdb::server::{Listeners, Shared, run};
use zdb::storage::Storage;
use zdb::storage::sim::SimStorage;

/// Acknowledged (key, value) pairs, in order.
type Acked = Vec<(Vec<u8>, Vec<u8>)>;

fn config(sync: bool) -> Config {
    Config {
        engine: EngineConfig {
            datasize: 64 * 1024,
            sync,
            ..inprocess_config().engine
        },
        slow: Duration::from_secs(1),
        // Small, so reads after a cut go through the cache and its evictions.
        read_cache: 64 * 1024,
        metrics: true,
        ..inprocess_config()
    }
}

async fn set(conn: &mut TcpStream, key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    let mut req = format!("*3\r\n$3\r\nSET\r\n${}\r\n", key.len()).into_bytes();
    req.extend_from_slice(key);
    req.extend_from_slice(format!("\r\n${}\r\n", value.len()).as_bytes());
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\n");
    conn.write_all(&req).await.ok()?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n")
        || (reply.first() == Some(&b'$') && reply.iter().filter(|&&b| b == b'\n').count() < 2)
    {
        if conn.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        reply.push(byte[0]);
    }
    Some(reply)
}

async fn trial(sync: bool, cut_after: Duration) {
    let sim = SimStorage::new();
    let shared = Shared::open(config(sync), Arc::new(sim.clone())).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(
        Listeners {
            tcp: Some(listener),
            unix: None,
        },
        shared,
        async {
            let _ = stopped.await;
        },
    ));
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let acked = acked.clone();
            tokio::spawn(async move {
                let mut conn = TcpStream::connect(addr).await.unwrap();
                for i in 0u32.. {
                    let key = format!("c{c}-{}", i % 64).into_bytes();
                    let value = format!("{c}:{i}:")
                        .repeat(1 + (i as usize % 40))
                        .into_bytes();
                    match set(&mut conn, &key, &value).await {
                        Some(r) if r.starts_with(b"$") => acked.lock().unwrap().push((key, value)),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(cut_after).await;
    // The image and the list of acknowledgements are taken together.
    let (image, acked_now) = {
        let list = acked.lock().unwrap();
        (sim.power_cut(), list.clone())
    };
    let _ = stop.send(());
    let _ = server.await;
    for c in clients {
        c.abort();
    }
    let storage: Arc<dyn Storage> = Arc::new(image);
    let ns = Namespace::open(
        storage,
        Path::new("/i"),
        Path::new("/d"),
        b"default",
        config(sync).engine,
    )
    .unwrap();
    assert!(ns.check_all().clean(), "{}", ns.check_all().render());
    if sync {
        // Latest acknowledged value per key must be there (or a later one that was in flight).
        let mut latest = std::collections::HashMap::new();
        for (k, v) in &acked_now {
            latest.insert(k.clone(), v.clone());
        }
        assert!(!latest.is_empty(), "no write acknowledged before the cut");
        for (k, v) in latest {
            let got = ns
                .get(&k)
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged key {k:?} lost"));
            let (c_got, c_want) = (String::from_utf8_lossy(&got), String::from_utf8_lossy(&v));
            let seq = |s: &str| {
                s.split(':')
                    .nth(1)
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap()
            };
            assert!(
                seq(&c_got) >= seq(&c_want),
                "key {k:?}: {c_got} older than acknowledged {c_want}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_acknowledgements_survive_power_cuts() {
    for ms in [30, 80, 150, 250] {
        trial(true, Duration::from_millis(ms)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sync_the_namespace_opens_clean_after_power_cuts() {
    for ms in [30, 120] {
        trial(false, Duration::from_millis(ms)).await;
    }
}
