//! The farm's etcd secured as a farm past a lab runs it: clients over TLS only, a client
//! certificate required, etcd's auth on with JWT tokens. A client with the right files works,
//! also after the member it talked to dies, and so does one with its certificate alone (etcd
//! takes the certificate's CN as the user); a wrong password, a missing client certificate or
//! a missing CA are refused with an error that never shows the password.

mod common;

use farm::ids::NodeId;
use farm::meta::registry::Registration;
use farm::meta::{AccessFiles, EtcdAccess, Meta};
use farm::testing::{EtcdCluster, has_etcd};

async fn connect(c: &EtcdCluster, files: &AccessFiles, farm: &str) -> Result<Meta, String> {
    let access = EtcdAccess::load(files).map_err(|e| e.to_string())?;
    Meta::connect_with(&c.endpoints(), &access, farm)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secured_etcd_takes_the_right_files_only() {
    let tools = has_etcd() && nodeutil::skip::has_tool("openssl");
    if nodeutil::skip::unless(tools, "etcd (Debian etcd-server) and openssl") {
        return;
    }
    let mut cluster = EtcdCluster::start_secured(3).expect("secured etcd");
    let files = cluster.access_files().expect("secured");
    let password = cluster
        .tls_files()
        .expect("secured")
        .password()
        .expect("password");
    let farm = format!("s{}", nodeutil::random::hex(6));
    let meta = connect(&cluster, &files, &farm).await.expect("connect");
    let id = NodeId::from("node-a");
    let _reg = Registration::start(&meta, common::record(&id, None), 100, common::TTL)
        .await
        .expect("register");
    assert_eq!(meta.nodes().await.expect("nodes").len(), 1);

    let refused = |e: Result<Meta, String>, want: &str| {
        let e = e.err().unwrap_or_else(|| panic!("not refused ({want})"));
        assert!(e.contains(want), "{e}");
        assert!(!e.contains(&password), "the password shows: {e}");
    };
    let dir = tempfile::tempdir().expect("tmp");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\n").expect("write");
    let with_wrong = AccessFiles {
        password_file: Some(wrong),
        ..files.clone()
    };
    refused(
        connect(&cluster, &with_wrong, &farm).await,
        "authentication failed",
    );
    // no CA: https:// endpoints are refused before anything is sent
    let plain = Meta::connect(&cluster.endpoints(), &farm)
        .await
        .map_err(|e| e.to_string());
    refused(plain, "--etcd-ca");
    // no password: the client certificate alone is the user (its CN, etcd's rule)
    let by_cert = AccessFiles {
        user: None,
        password_file: None,
        ..files.clone()
    };
    let m = connect(&cluster, &by_cert, &farm)
        .await
        .expect("connect by certificate");
    assert_eq!(m.nodes().await.expect("nodes by certificate").len(), 1);
    // no client certificate: the members refuse the handshake
    let no_cert = AccessFiles {
        cert: None,
        key: None,
        ..files.clone()
    };
    let t = std::time::Instant::now();
    let e = connect(&cluster, &no_cert, &farm).await.err();
    eprintln!(
        "no client certificate: refused after {:?}: {e:?}",
        t.elapsed()
    );
    // (TLS 1.3: the member closes the connection after the handshake; the client cannot
    // tell it from a transient failure, so it retries for `Meta::RETRY` first)
    assert!(e.is_some(), "a client without a certificate got in");

    // the leader dies: the others take the token (a JWT), reads go on
    let leader = cluster.leader().await.expect("a leader");
    cluster.kill(leader);
    assert_eq!(meta.nodes().await.expect("nodes after a kill").len(), 1);
}
