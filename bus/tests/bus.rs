//! The bus as a daemon and its callers see it: a real server on a socket in a temp run folder.
#![expect(clippy::unwrap_used, reason = "tests")]

use bus::api::Empty;
use bus::api::health::HealthStatus;
use bus::api::storage::{GetZdb, Name, ZdbMode, ZdbNamespace};
use bus::{BusError, Client, ErrorCode, RemoteError, Server};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

bus::method!(Echo, "test.echo" @ 1, serde_json::Value => serde_json::Value);
bus::method!(Echo2, "test.echo" @ 2, serde_json::Value => serde_json::Value);

struct Running {
    _dir: tempfile::TempDir,
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    publisher: bus::Publisher,
    task: tokio::task::JoinHandle<()>,
}

async fn start(queue: usize) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = bus::service_socket(&dir.path().join("run"), "storaged");
    let mut server = Server::new("storaged");
    server.event_queue(queue);
    server.handle::<Echo, _, _>(|v| async move { Ok(v) });
    server.handle::<GetZdb, _, _>(|req: Name| async move {
        if req.name == "ns1" {
            Ok(ZdbNamespace {
                namespace: req.name,
                address: "127.0.0.1".into(),
                port: 9900,
                size: 1 << 30,
                mode: ZdbMode::User,
                public: false,
                paused: false,
                disk: "d0".into(),
            })
        } else {
            Err(RemoteError::not_found(format!("no namespace {}", req.name)))
        }
    });
    let publisher = server.publisher();
    let listener = bus::bind(&path).await.unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = rx.await;
    }));
    Running {
        _dir: dir,
        path,
        stop: Some(tx),
        publisher,
        task,
    }
}

#[tokio::test]
async fn typed_call_and_errors() {
    let s = start(16).await;
    let c = Client::new(&s.path);
    let ns = c
        .call::<GetZdb>(&Name { name: "ns1".into() })
        .await
        .unwrap();
    assert_eq!(ns.port, 9900);
    let err = c
        .call::<GetZdb>(&Name { name: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(err.remote().unwrap().code, ErrorCode::NotFound);
    let v = c
        .call::<Echo>(&serde_json::json!({"a": [1, 2]}))
        .await
        .unwrap();
    assert_eq!(v, serde_json::json!({"a": [1, 2]}));
    // unknown version and method
    let err = c.call::<Echo2>(&serde_json::json!(1)).await.unwrap_err();
    assert_eq!(err.remote().unwrap().code, ErrorCode::UnknownMethod);
    assert!(err.to_string().contains("versions [1]"), "{err}");
    let err = c
        .call_raw("nope", 1, serde_json::Value::Null)
        .await
        .unwrap_err();
    assert_eq!(err.remote().unwrap().code, ErrorCode::UnknownMethod);
    // bad params
    let err = c
        .call_raw("storage.zdb.get", 1, serde_json::json!({"nom": 1}))
        .await
        .unwrap_err();
    assert_eq!(err.remote().unwrap().code, ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn health_and_permissions() {
    let s = start(16).await;
    let h = Client::new(&s.path).health().await.unwrap();
    assert_eq!(h.service, "storaged");
    assert_eq!(h.status, HealthStatus::Ok);
    assert!(h.methods.contains(&"storage.zdb.get@1".to_string()));
    let mode = std::fs::metadata(&s.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(s.path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    // a second server on the same path is refused
    assert!(matches!(
        bus::bind(&s.path).await,
        Err(BusError::AlreadyRunning(_))
    ));
}

#[tokio::test]
async fn down_daemon_gives_prompt_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storaged.sock");
    let t = std::time::Instant::now();
    let err = Client::new(&path)
        .call::<GetZdb>(&Name { name: "a".into() })
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(err.is_unreachable());
    let msg = err.to_string();
    assert!(
        msg.starts_with("storaged is not running (no socket at"),
        "{msg}"
    );

    // stale socket file: connection refused, then a new server replaces it
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = Client::new(&path).health().await.unwrap_err();
    assert!(err.to_string().contains("connection refused"), "{err}");
    let l = bus::bind(&path).await.unwrap();
    drop(l);
}

#[tokio::test]
async fn shutdown_removes_socket() {
    let mut s = start(16).await;
    s.stop.take().unwrap().send(()).unwrap();
    (&mut s.task).await.unwrap();
    assert!(!s.path.exists());
    let err = Client::new(&s.path).health().await.unwrap_err();
    assert!(err.is_unreachable());
}

#[tokio::test]
async fn events_by_topic() {
    let s = start(16).await;
    let c = Client::new(&s.path);
    let mut zdb = c.subscribe("storage.zdb").await.unwrap();
    let mut all = c.subscribe("").await.unwrap();
    assert_eq!(
        s.publisher
            .publish("storage.disk", &serde_json::json!({"d": 1})),
        1
    );
    assert_eq!(
        s.publisher
            .publish("storage.zdb", &serde_json::json!({"n": 1})),
        2
    );
    let e = zdb.next().await.unwrap().unwrap();
    assert_eq!(e.topic, "storage.zdb");
    assert_eq!(e.data["n"], 1);
    let e1 = all.next().await.unwrap().unwrap();
    let e2 = all.next().await.unwrap().unwrap();
    assert_eq!(
        (e1.topic.as_str(), e2.topic.as_str()),
        ("storage.disk", "storage.zdb")
    );
    assert!(e2.seq > e1.seq);
}

#[tokio::test]
async fn slow_subscriber_is_dropped_with_notice() {
    let s = start(4).await;
    let c = Client::new(&s.path);
    let mut slow = c.subscribe("").await.unwrap();
    let big = "x".repeat(64 * 1024);
    // Far more than the queue plus socket buffers hold while nobody reads.
    let mut sent = 0;
    for i in 0..2000 {
        if s.publisher
            .publish("t", &serde_json::json!({"i": i, "pad": big}))
            == 0
        {
            break;
        }
        sent += 1;
        tokio::task::yield_now().await;
    }
    assert!(sent < 2000, "subscriber was never dropped");
    assert_eq!(s.publisher.subscribers(), 0);
    let mut last = None;
    while let Some(e) = slow.next().await.unwrap() {
        last = Some(e);
    }
    let last = last.unwrap();
    assert_eq!(last.topic, bus::DROPPED_TOPIC);
    assert!(last.data["reason"].as_str().unwrap().contains("too slow"));
}

#[tokio::test]
async fn concurrent_clients() {
    let s = start(16).await;
    let c = Arc::new(Client::new(&s.path));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.call::<Echo>(&serde_json::json!(i)).await.unwrap()
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), serde_json::json!(i));
    }
    let _: Empty = Empty {};
}

bus::method!(Slow, "test.slow" @ 1, serde_json::Value => serde_json::Value);

#[tokio::test]
async fn a_draining_server_answers_the_calls_it_accepted_and_keeps_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = bus::service_socket(&dir.path().join("run"), "netd");
    let mut server = Server::new("netd");
    server.handle::<Slow, _, _>(|v| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(v)
    });
    // A grace long enough for the late call on a loaded machine, short of the drain limit
    // (10 s) that would also end an idle connection.
    server.drain_on_stop(Duration::from_secs(3)).keep_socket();
    let listener = bus::bind(&path).await.unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let serve = tokio::spawn(server.serve(listener, async {
        let _ = rx.await;
    }));
    // one call being answered, one connection accepted whose call comes late, one idle
    let c = Client::new(&path);
    let busy = tokio::spawn({
        let c = c.clone();
        async move { c.call::<Slow>(&serde_json::json!(1)).await }
    });
    let mut late = tokio::net::UnixStream::connect(&path).await.unwrap();
    let _idle = tokio::net::UnixStream::connect(&path).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = std::time::Instant::now();
    tx.send(()).unwrap();
    // the late call: written after the stop, within the grace
    tokio::time::sleep(Duration::from_millis(100)).await;
    let call = serde_json::json!({"type": "call", "id": 7, "method": "test.slow", "version": 1, "params": 2});
    let body = serde_json::to_vec(&call).unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    late.write_all(&(body.len() as u32).to_be_bytes())
        .await
        .unwrap();
    late.write_all(&body).await.unwrap();
    assert_eq!(busy.await.unwrap().unwrap(), serde_json::json!(1));
    let mut len = [0u8; 4];
    late.read_exact(&mut len).await.unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    late.read_exact(&mut reply).await.unwrap();
    assert!(
        String::from_utf8_lossy(&reply).contains("\"result\":2"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // closed after its one call
    assert_eq!(late.read(&mut len).await.unwrap(), 0);
    serve.await.unwrap();
    // the idle connection was given its grace, not the idle timeout nor the drain limit
    assert!(t.elapsed() < Duration::from_secs(9), "{:?}", t.elapsed());
    assert!(path.exists(), "the socket file stays for a successor");
}
