//! What a misbehaving peer can make a bus server hold: idle and half-sent connections are
//! closed after the idle timeout, and connections past the cap are refused at once.
#![expect(clippy::unwrap_used, reason = "tests")]

use bus::{Client, Server};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

bus::method!(Echo, "test.echo" @ 1, serde_json::Value => serde_json::Value);

async fn start(configure: impl FnOnce(&mut Server)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = bus::service_socket(dir.path(), "limits");
    let mut server = Server::new("limits");
    server.handle::<Echo, _, _>(|v| async move { Ok(v) });
    configure(&mut server);
    let listener = bus::bind(&path).await.unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    (dir, path)
}

/// Reads until the server closes the connection; the time it took.
async fn closed_after(stream: &mut UnixStream, limit: Duration) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return t.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("connection still open after {limit:?}"),
        }
    }
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed() {
    let (_dir, path) = start(|s| {
        s.idle_timeout(Duration::from_millis(300));
    })
    .await;
    // Connects and says nothing.
    let mut silent = UnixStream::connect(&path).await.unwrap();
    // Announces a 100-byte frame and sends ten bytes of it.
    let mut half = UnixStream::connect(&path).await.unwrap();
    half.write_all(&100u32.to_be_bytes()).await.unwrap();
    half.write_all(b"{\"type\":\"c").await.unwrap();
    assert!(closed_after(&mut silent, Duration::from_secs(5)).await >= Duration::from_millis(250));
    assert!(closed_after(&mut half, Duration::from_secs(5)).await < Duration::from_secs(5));
    // A caller that behaves is served as before.
    let v = Client::new(&path)
        .call::<Echo>(&serde_json::json!("hi"))
        .await
        .unwrap();
    assert_eq!(v, "hi");
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_at_once() {
    let (_dir, path) = start(|s| {
        s.max_connections(2);
    })
    .await;
    let c = Client::new(&path).call_timeout(Duration::from_secs(5));
    let a = UnixStream::connect(&path).await.unwrap();
    let _b = UnixStream::connect(&path).await.unwrap();
    // Give the server the time to accept both.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let err = c.call::<Echo>(&serde_json::json!(1)).await.unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "refusal took {:?}",
        t.elapsed()
    );
    assert!(
        matches!(err, bus::BusError::Closed { .. } | bus::BusError::Io { .. }),
        "{err}"
    );
    // A freed slot serves again.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match c.call::<Echo>(&serde_json::json!(2)).await {
            Ok(v) => {
                assert_eq!(v, 2);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "slot never freed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
