//! The client against the real zdb server: every command family, both transports, both
//! flavours, SECURE logins, sequential mode, pipelines past a chunk, and reconnects.
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

mod common;

use std::time::Duration;

use common::{ADMIN, Zdb};
use zdb_client::{
    AsyncClient, Check, Client, Config, Direction, Error, Mode, Pipeline, Reconnect, Value, seq_key,
};

fn admin(z: &Zdb) -> Client {
    Client::connect(Config::tcp(z.addr()).with_admin(ADMIN)).unwrap()
}

#[test]
fn user_mode_commands_over_tcp() {
    let Some(z) = Zdb::start() else { return };
    let mut a = admin(&z);
    a.ping().unwrap();
    a.nsnew("ns1").unwrap();
    assert!(a.nslist().unwrap().contains(&"ns1".to_string()));
    let mut c = Client::connect(Config::tcp(z.addr()).with_namespace("ns1")).unwrap();
    assert!(c.set(b"k", b"v1").unwrap());
    assert!(!c.set(b"k", b"v1").unwrap(), "identical SET writes nothing");
    assert!(c.set(b"k", b"v2").unwrap());
    assert_eq!(c.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(c.get(b"nope").unwrap(), None);
    assert!(c.exists(b"k").unwrap());
    assert_eq!(c.check(b"k").unwrap(), Check::Valid);
    assert_eq!(c.check(b"nope").unwrap(), Check::Missing);
    assert_eq!(c.length(b"k").unwrap(), Some(2));
    assert!(c.keytime(b"k").unwrap().unwrap() > 1_600_000_000);
    assert_eq!(c.dbsize().unwrap(), 1);
    assert!(c.del(b"k").unwrap());
    assert!(!c.del(b"k").unwrap());
    assert!(!c.exists(b"k").unwrap());
    // A refusal is an error for that call only.
    let e = c.get(b"").unwrap_err();
    assert!(matches!(e, Error::Server { command: "GET", .. }), "{e}");
    assert!(c.is_connected());
    let e = c.nsnew("x").unwrap_err();
    assert_eq!(e.server_message(), Some("Permission denied"));

    let info = a.nsinfo("ns1").unwrap().unwrap();
    assert_eq!((info.name.as_str(), info.entries), ("ns1", 0));
    assert_eq!(info.mode, Mode::User);
    assert!(a.nsinfo("missing").unwrap().is_none());
    assert!(a.info().unwrap().contains("server_name"));
    assert!(a.time().unwrap().0 > 1_600_000_000);
    a.nsset("ns1", "maxsize", "1000000").unwrap();
    assert_eq!(
        a.nsinfo("ns1").unwrap().unwrap().data_limits_bytes,
        1_000_000
    );
    assert!(a.compact(Some("ns1")).unwrap().starts_with("Compacted"));
    assert!(!a.nscheck(Some("ns1")).unwrap().is_empty());
    a.nsdel("ns1").unwrap();
    assert!(a.nsdel("ns1").is_err());
}

#[test]
fn scan_walks_every_page_both_ways() {
    let Some(z) = Zdb::start() else { return };
    let mut c = admin(&z);
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..3000u32)
        .map(|i| {
            (
                format!("key{i:05}").into_bytes(),
                vec![b'x'; (i % 50) as usize],
            )
        })
        .collect();
    assert!(c.set_many(&pairs).unwrap().into_iter().all(|r| r.unwrap()));
    let fwd: Vec<_> = c.scan(Direction::Forward).map(Result::unwrap).collect();
    assert_eq!(fwd.len(), 3000);
    assert_eq!(&fwd[0].key[..], b"key00000");
    assert_eq!(fwd[49].size, 49);
    let back: Vec<_> = c.scan(Direction::Backward).map(Result::unwrap).collect();
    assert_eq!(back.len(), 3000);
    assert_eq!(&back[0].key[..], b"key02999");
}

#[test]
fn pipelines_keep_order_past_a_chunk_and_refusals_stay_in_place() {
    let Some(z) = Zdb::start() else { return };
    let mut c = admin(&z);
    let value = vec![7u8; 1000];
    let pairs: Vec<(String, &[u8])> = (0..20_000).map(|i| (format!("p{i}"), &value[..])).collect();
    let written = c.set_many(&pairs).unwrap();
    assert_eq!(written.len(), 20_000);
    let keys: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
    let got = c.get_many(&keys).unwrap();
    assert!(
        got.iter()
            .all(|g| g.as_ref().unwrap().as_deref() == Some(&value[..]))
    );
    let mut p = Pipeline::new();
    p.set(b"a", b"1").get(b"").get(b"a").cmd(&["DBSIZE"]);
    let r = c.pipeline(&p).unwrap();
    assert_eq!(r[0], Value::bulk("a"));
    assert!(matches!(r[1], Value::Error(_)));
    assert_eq!(r[2], Value::bulk("1"));
    assert_eq!(r[3], Value::Int(20_001));
}

#[test]
fn sequential_mode_allocates_ids() {
    let Some(z) = Zdb::start() else { return };
    let mut a = admin(&z);
    a.nsnew("seq").unwrap();
    a.nsset("seq", "mode", "seq").unwrap();
    a.select("seq", None).unwrap();
    assert_eq!(a.insert(b"zero").unwrap(), 0);
    assert_eq!(a.insert(b"one").unwrap(), 1);
    assert_eq!(a.get(&seq_key(1)).unwrap().as_deref(), Some(&b"one"[..]));
    assert!(a.set(&seq_key(1), b"uno").unwrap());
    assert_eq!(a.get(&seq_key(1)).unwrap().as_deref(), Some(&b"uno"[..]));
    let e = a.set(&seq_key(9), b"x").unwrap_err();
    assert!(e.server_message().unwrap().contains("only update"), "{e}");
    assert_eq!(a.nsinfo("seq").unwrap().unwrap().mode, Mode::Sequential);
}

#[test]
fn unix_socket_and_secure_challenge() {
    let Some(z) = Zdb::start() else { return };
    let mut a =
        Client::connect(Config::unix(&z.socket).with_admin(ADMIN).with_secure_auth()).unwrap();
    a.nsnew("priv").unwrap();
    a.nsset("priv", "password", "pw1").unwrap();
    a.nsset("priv", "public", "0").unwrap();
    let cfg = Config::unix(&z.socket)
        .with_namespace("priv")
        .with_password("pw1");
    let mut c = Client::connect(cfg.clone().with_secure_auth()).unwrap();
    c.set(b"k", b"v").unwrap();
    let mut plain = Client::connect(cfg.clone()).unwrap();
    assert_eq!(plain.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    for bad in [
        cfg.clone().with_password("wrong"),
        cfg.with_password("wrong").with_secure_auth(),
    ] {
        let e = Client::connect(bad).unwrap_err();
        assert_eq!(e.to_string(), "SELECT: Access denied");
    }
    let e =
        Client::connect(Config::tcp(z.addr()).with_admin("nope").with_secure_auth()).unwrap_err();
    assert_eq!(e.to_string(), "AUTH: Access denied");
    // A runtime SECURE select on an open connection.
    let mut d = Client::connect(Config::tcp(z.addr())).unwrap();
    d.select_secure("priv", "pw1").unwrap();
    assert!(d.exists(b"k").unwrap());
}

#[test]
fn reconnect_replays_the_session_manually_or_by_policy() {
    let Some(mut z) = Zdb::start() else { return };
    let mut a = admin(&z);
    a.nsnew("r").unwrap();
    a.select("r", None).unwrap();
    a.set(b"in-r", b"1").unwrap();
    let mut auto = Client::connect(
        Config::tcp(z.addr())
            .with_admin(ADMIN)
            .with_namespace("r")
            .with_reconnect(Reconnect::Auto),
    )
    .unwrap();
    z.restart();

    let e = a.get(b"in-r").unwrap_err();
    assert!(e.is_connection(), "{e}");
    assert!(matches!(a.get(b"in-r"), Err(Error::NotConnected)));
    a.reconnect().unwrap();
    assert_eq!(
        a.get(b"in-r").unwrap().as_deref(),
        Some(&b"1"[..]),
        "namespace re-selected"
    );
    a.nsnew("after").unwrap();

    assert!(auto.get(b"in-r").unwrap_err().is_connection());
    assert_eq!(auto.get(b"in-r").unwrap().as_deref(), Some(&b"1"[..]));
    auto.nsdel("after").unwrap();
}

#[test]
fn async_client_over_both_transports() {
    let Some(z) = Zdb::start() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut a =
            AsyncClient::connect(Config::unix(&z.socket).with_admin(ADMIN).with_secure_auth())
                .await
                .unwrap();
        a.nsnew("as").await.unwrap();
        a.nsset("as", "password", "pw").await.unwrap();
        let mut c = AsyncClient::connect(
            Config::tcp(z.addr())
                .with_namespace("as")
                .with_password("pw")
                .with_secure_auth()
                .with_timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap();
        let pairs: Vec<(String, String)> = (0..5000)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        assert!(
            c.set_many(&pairs)
                .await
                .unwrap()
                .into_iter()
                .all(|r| r.unwrap())
        );
        assert_eq!(c.get(b"k42").await.unwrap().as_deref(), Some(&b"v42"[..]));
        assert_eq!(c.dbsize().await.unwrap(), 5000);
        let mut s = c.scan(Direction::Forward);
        let mut n = 0;
        while let Some(e) = s.next().await {
            e.unwrap();
            n += 1;
        }
        assert_eq!(n, 5000);
        assert_eq!(a.nsinfo("as").await.unwrap().unwrap().entries, 5000);
        assert!(c.del(b"k1").await.unwrap());
        c.ping().await.unwrap();
    });
}

#[test]
fn async_split_values_go_out_and_come_back_in_two_parts() {
    // The farm's shards: a header and a large payload, sent without joining them and read
    // back with the payload straight into a region of a larger buffer.
    let Some(z) = Zdb::start() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = AsyncClient::connect(Config::tcp(z.addr()).with_admin(ADMIN))
            .await
            .unwrap();
        let head = [7u8; 72];
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        assert!(c.set_split(b"shard", &head, &body).await.unwrap());
        let whole = c.get(b"shard").await.unwrap().unwrap();
        assert_eq!(&whole[..72], &head[..]);
        assert_eq!(&whole[72..], &body[..]);
        // Into a region with room (no allocation), and into an empty buffer (grown).
        for room in [body.len(), 0] {
            let mut region = bytes::BytesMut::with_capacity(room);
            let mut h = [0u8; 72];
            let got = c.get_split(b"shard", &mut h, &mut region).await.unwrap();
            assert_eq!(got, zdb_client::Split::Parts(72 + body.len()));
            assert_eq!(h, head);
            assert_eq!(&region[..], &body[..]);
        }
        // Missing, shorter than the head, an error reply: as `get` says; the connection lives.
        let mut h = [0u8; 72];
        let mut region = bytes::BytesMut::new();
        let got = c.get_split(b"nope", &mut h, &mut region).await.unwrap();
        assert_eq!(got, zdb_client::Split::Whole(None));
        c.set(b"short", b"tiny").await.unwrap();
        let got = c.get_split(b"short", &mut h, &mut region).await.unwrap();
        assert_eq!(
            got,
            zdb_client::Split::Whole(Some(bytes::Bytes::from_static(b"tiny")))
        );
        assert!(region.is_empty());
        c.ping().await.unwrap();
    });
}
