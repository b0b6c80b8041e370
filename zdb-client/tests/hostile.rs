//! The client against a fake server that misbehaves: each case must end in a clear typed
//! error within its time bound, never a panic, an abort or a hang, and leave the client
//! usable (after a reconnect).
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

use std::time::{Duration, Instant};

use zdb_client::fake::{Act, FakeServer};
use zdb_client::{AsyncClient, Client, Config, Error, ProtocolError, Reconnect, Value};

/// A fake that accepts the login and answers `GET` as `get` says.
fn fake(get: impl Fn() -> Act + Send + Sync + 'static) -> FakeServer {
    FakeServer::start(move |args| match args.first().map(|a| &a[..]) {
        Some(b"GET") => get(),
        Some(b"PING") => Act::Reply(Value::Status("PONG".into())),
        _ => Act::Reply(Value::ok()),
    })
    .unwrap()
}

fn config(f: &FakeServer, timeout: Duration) -> Config {
    Config::tcp(f.addr().to_string())
        .with_namespace("ns")
        .with_timeout(timeout)
}

/// GET against a fake answering `act` under `timeout`; the error and how long it took.
/// The login runs under [`LONG`]: only the hostile reply is meant to meet the deadline.
fn get_err(act: Act, timeout: Duration) -> (Error, Duration) {
    let f = fake(move || act.clone());
    let mut c = Client::connect(config(&f, LONG)).unwrap();
    c.set_timeout(timeout);
    let t = Instant::now();
    let e = c.get(b"k").unwrap_err();
    let took = t.elapsed();
    assert!(e.is_connection() && !c.is_connected(), "{e}");
    assert!(matches!(c.ping(), Err(Error::NotConnected)));
    (e, took)
}

const SHORT: Duration = Duration::from_millis(400);
const LONG: Duration = Duration::from_secs(30);
/// Room past a deadline for a loaded machine: enough to tell a late wake-up from a hang.
const SLACK: Duration = Duration::from_secs(5);

#[test]
fn huge_declared_bulk() {
    let (e, took) = get_err(Act::Raw(b"$99999999999\r\n".to_vec()), LONG);
    assert!(
        matches!(
            e,
            Error::Protocol(ProtocolError::BulkTooLarge {
                declared: 99_999_999_999,
                ..
            })
        ),
        "{e}"
    );
    assert!(took < Duration::from_secs(2));
    assert_eq!(
        e.to_string(),
        "protocol error: bulk of 99999999999 bytes exceeds the limit of 8388608"
    );
}

#[test]
fn deep_nesting() {
    let (e, _) = get_err(Act::Endless(b"*1\r\n".to_vec()), LONG);
    assert!(
        matches!(e, Error::Protocol(ProtocolError::TooDeep { .. })),
        "{e}"
    );
}

#[test]
fn endless_line() {
    let (e, took) = get_err(Act::Endless(b"aaaaaaaaaaaaaaaa".to_vec()), LONG);
    // The first byte is not a type byte; a line that starts well goes on forever too.
    assert!(
        matches!(e, Error::Protocol(ProtocolError::BadType(b'a'))),
        "{e}"
    );
    let (e, _) = get_err(Act::Raw([b"+".to_vec(), vec![b'a'; 70_000]].concat()), LONG);
    assert!(
        matches!(e, Error::Protocol(ProtocolError::LineTooLong { .. })),
        "{e}"
    );
    assert!(took < Duration::from_secs(2));
}

#[test]
fn endless_valid_line_is_cut_at_the_limit() {
    let f = FakeServer::start(|args| match args.first().map(|a| &a[..]) {
        Some(b"GET") => Act::Endless(b"-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_vec()),
        _ => Act::Reply(Value::ok()),
    })
    .unwrap();
    let mut c = Client::connect(config(&f, LONG)).unwrap();
    let e = c.get(b"k").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Protocol(ProtocolError::LineTooLong { limit: 65536 })
        ),
        "{e}"
    );
}

#[test]
fn garbage_type_byte() {
    let (e, _) = get_err(Act::Raw(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()), LONG);
    assert_eq!(
        e.to_string(),
        "protocol error: unexpected reply type byte 0x48"
    );
}

#[test]
fn slow_drip_hits_the_reply_deadline() {
    let drip = Act::Drip {
        bytes: b"$5\r\nhello\r\n".to_vec(),
        every: Duration::from_millis(100),
    };
    let (e, took) = get_err(drip, SHORT);
    assert!(matches!(e, Error::Timeout { what: "reply", .. }), "{e}");
    assert!(took >= SHORT && took < SHORT + SLACK, "{took:?}");
    // The same drip within the deadline is a reply.
    let f = fake(|| Act::Drip {
        bytes: b"$2\r\nhi\r\n".to_vec(),
        every: Duration::from_millis(10),
    });
    let mut c = Client::connect(config(&f, Duration::from_secs(5))).unwrap();
    assert_eq!(c.get(b"k").unwrap().as_deref(), Some(&b"hi"[..]));
}

#[test]
fn close_mid_reply() {
    let (e, _) = get_err(Act::RawThenClose(b"$10\r\nabc".to_vec()), LONG);
    assert!(matches!(e, Error::Closed { mid_reply: true }), "{e}");
    let (e, _) = get_err(Act::Close, LONG);
    assert!(matches!(e, Error::Closed { mid_reply: false }), "{e}");
}

#[test]
fn never_answering() {
    let (e, took) = get_err(Act::Silent, SHORT);
    assert!(matches!(e, Error::Timeout { what: "reply", .. }), "{e}");
    assert!(took < SHORT + SLACK, "{took:?}");
}

#[test]
fn silent_during_login_bounds_connect() {
    let f = FakeServer::start(|_| Act::Silent).unwrap();
    let t = Instant::now();
    let e = Client::connect(config(&f, SHORT)).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(t.elapsed() < SHORT + SLACK, "{:?}", t.elapsed());
}

#[test]
fn refused_connection_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Client::connect(Config::tcp(format!("127.0.0.1:{port}"))).unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
}

#[test]
fn auto_policy_reconnects_on_the_next_call() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let f = fake(move || {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Act::Raw(b"$99999999999\r\n".to_vec())
        } else {
            Act::Reply(Value::bulk("fine"))
        }
    });
    let mut c = Client::connect(config(&f, LONG).with_reconnect(Reconnect::Auto)).unwrap();
    assert!(c.get(b"k").unwrap_err().is_connection());
    assert_eq!(c.get(b"k").unwrap().as_deref(), Some(&b"fine"[..]));
    assert_eq!(f.connections(), 2);
}

#[test]
fn async_client_survives_the_same() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (act, check) in [
            (
                Act::Raw(b"$99999999999\r\n".to_vec()),
                (|e: &Error| matches!(e, Error::Protocol(ProtocolError::BulkTooLarge { .. })))
                    as fn(&Error) -> bool,
            ),
            (Act::Endless(b"*1\r\n".to_vec()), |e| {
                matches!(e, Error::Protocol(ProtocolError::TooDeep { .. }))
            }),
            (Act::Silent, |e| matches!(e, Error::Timeout { .. })),
            (
                Act::Drip {
                    bytes: b"+OK\r\n".to_vec(),
                    every: Duration::from_millis(200),
                },
                |e| matches!(e, Error::Timeout { .. }),
            ),
            (Act::RawThenClose(b"*2\r\n:1\r\n".to_vec()), |e| {
                matches!(e, Error::Closed { mid_reply: true })
            }),
        ] {
            let f = fake(move || act.clone());
            // Logs in under LONG; only the hostile reply meets the short deadline.
            let mut c = AsyncClient::connect(config(&f, LONG)).await.unwrap();
            c.set_timeout(SHORT);
            let t = Instant::now();
            let e = c.get(b"k").await.unwrap_err();
            assert!(check(&e), "{e}");
            assert!(t.elapsed() < SHORT + SLACK, "{:?}", t.elapsed());
            assert!(!c.is_connected());
            assert!(matches!(c.ping().await, Err(Error::NotConnected)));
        }
    });
}
