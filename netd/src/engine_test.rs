//! The engine against the fake host: records, idempotence, immutable fields, ports that never
//! change, attachments, failures retried, and a restart re-adopting everything.
#![expect(clippy::unwrap_used, reason = "tests")]

use super::*;
use crate::host::fake::FakeHost;
use bus::api::network::{NetworkState, PeerSpec};
use std::net::Ipv4Addr;

const PEER: &str = "wfyx/9FjEqRIafX6ib8fd/23FsWZBntUOt+U8w2SqUQ=";

fn cfg(dir: &std::path::Path) -> Config {
    Config {
        state: dir.to_path_buf(),
        netns_prefix: "n-".into(),
        ports: 51820..=51822,
    }
}

fn spec(id: &str, peers: Vec<PeerSpec>) -> NetworkSpec {
    NetworkSpec {
        id: id.into(),
        ip_range: "10.1.0.0/16".into(),
        subnet: "10.1.1.0/24".into(),
        peers,
    }
}

fn peer(endpoint: &str) -> PeerSpec {
    PeerSpec {
        public_key: PEER.into(),
        endpoint: Some(endpoint.into()),
        subnets: vec!["10.1.2.0/24".into()],
        keepalive_secs: None,
    }
}

#[test]
fn apply_creates_once_and_converges_after() {
    let d = tempfile::tempdir().unwrap();
    let host = FakeHost::default();
    let mut e = Engine::open(host.clone(), cfg(d.path())).unwrap();
    let n = e.apply(&spec("a", vec![])).unwrap();
    assert_eq!(n.state, NetworkState::Ready, "{}", n.message);
    assert_eq!(n.listen_port, 51820);
    assert_eq!(n.netns, "n-a");
    assert_eq!(n.endpoints, vec!["192.0.2.10:51820"]);
    assert!(host.state().node_table);
    let again = e.apply(&spec("a", vec![])).unwrap();
    assert_eq!(again, n);
    let with_peer = e.apply(&spec("a", vec![peer("192.0.2.7:51820")])).unwrap();
    assert_eq!(with_peer.public_key, n.public_key);
    assert_eq!(with_peer.listen_port, 51820);
    assert_eq!(
        with_peer.peers[0].endpoint.as_deref(),
        Some("192.0.2.7:51820")
    );
    assert_eq!(host.state().tunnels["n-a"].len(), 1);
    // A peer change touches only the tunnel: one tunnel start in all.
    let starts = host
        .state()
        .calls
        .iter()
        .filter(|c| *c == "start_tunnel")
        .count();
    assert_eq!(starts, 1);
}

#[test]
fn immutable_fields_own_key_and_bad_specs_are_refused_without_a_trace() {
    let d = tempfile::tempdir().unwrap();
    let mut e = Engine::open(FakeHost::default(), cfg(d.path())).unwrap();
    let n = e.apply(&spec("a", vec![])).unwrap();
    let mut moved = spec("a", vec![]);
    moved.subnet = "10.1.9.0/24".into();
    assert!(matches!(e.apply(&moved), Err(Error::Invalid(m)) if m.contains("cannot change")));
    let mut own = peer("192.0.2.7:1");
    own.public_key = n.public_key.clone();
    assert!(matches!(e.apply(&spec("a", vec![own])), Err(Error::Invalid(m)) if m.contains("own")));
    assert!(matches!(
        e.apply(&spec("b", vec![peer("no-such-host.invalid:1")])),
        Err(Error::Invalid(m)) if m.contains("resolve")
    ));
    assert!(matches!(
        e.apply(&spec("../x", vec![])),
        Err(Error::Invalid(_))
    ));
    assert_eq!(e.list().len(), 1);
    assert_eq!(
        std::fs::read_dir(d.path().join("networks"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn ports_are_chosen_once_skipping_busy_ones_and_run_out_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let host = FakeHost::default();
    host.state().busy_ports.insert(51820);
    let mut e = Engine::open(host.clone(), cfg(d.path())).unwrap();
    assert_eq!(e.apply(&spec("a", vec![])).unwrap().listen_port, 51821);
    assert_eq!(e.apply(&spec("b", vec![])).unwrap().listen_port, 51822);
    assert!(matches!(
        e.apply(&spec("c", vec![])),
        Err(Error::NoCapacity(_))
    ));
    // The port survives a restart even when a lower one became free.
    host.state().busy_ports.clear();
    drop(e);
    let e = Engine::open(host.clone(), cfg(d.path())).unwrap();
    assert_eq!(e.get("a").unwrap().listen_port, 51821);
}

#[test]
fn a_failure_is_reported_and_retried_by_tick() {
    let d = tempfile::tempdir().unwrap();
    let host = FakeHost::default();
    let mut e = Engine::open(host.clone(), cfg(d.path())).unwrap();
    host.state().fail = Some("start_tunnel".into());
    assert!(matches!(
        e.apply(&spec("a", vec![])),
        Err(Error::Kernel { .. })
    ));
    let n = e.get("a").unwrap();
    assert_eq!(n.state, NetworkState::Failed);
    assert!(n.message.contains("injected"), "{}", n.message);
    assert_eq!(e.health().0, HealthStatus::Degraded);
    e.tick();
    assert_eq!(e.get("a").unwrap().state, NetworkState::Ready);
    assert_eq!(e.health().0, HealthStatus::Ok);
}

#[test]
fn attach_picks_or_checks_addresses_and_is_idempotent() {
    let d = tempfile::tempdir().unwrap();
    let host = FakeHost::default();
    host.state()
        .namespaces
        .extend(["c-1".to_string(), "c-2".into(), "c-3".into()]);
    let mut e = Engine::open(host.clone(), cfg(d.path())).unwrap();
    e.apply(&spec("a", vec![])).unwrap();
    let req = |ns: &str, address: Option<Ipv4Addr>| AttachRequest {
        network: "a".into(),
        netns: ns.into(),
        address,
    };
    let a1 = e.attach(&req("c-1", None)).unwrap();
    assert_eq!(a1.address, Ipv4Addr::new(10, 1, 1, 2));
    assert_eq!(a1.gateway, Ipv4Addr::new(10, 1, 1, 1));
    assert_eq!(e.attach(&req("c-1", None)).unwrap(), a1);
    let want = Ipv4Addr::new(10, 1, 1, 50);
    assert_eq!(e.attach(&req("c-2", Some(want))).unwrap().address, want);
    assert!(matches!(
        e.attach(&req("c-3", Some(want))),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        e.attach(&req("c-1", Some(want))),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        e.attach(&req("c-404", None)),
        Err(Error::Invalid(_))
    ));
    let mut other = req("c-3", None);
    other.network = "zz".into();
    assert!(matches!(e.attach(&other), Err(Error::NotFound(_))));
    assert_eq!(host.state().attached.len(), 2);
    let det = DetachRequest {
        network: "a".into(),
        netns: "c-2".into(),
    };
    e.detach(&det).unwrap();
    e.detach(&det).unwrap();
    assert_eq!(host.state().attached.len(), 1);
    assert_eq!(e.get("a").unwrap().attachments, vec![a1]);
}

#[test]
fn a_restart_re_adopts_networks_tunnels_and_attachments() {
    let d = tempfile::tempdir().unwrap();
    let host = FakeHost::default();
    host.state().namespaces.insert("c-1".into());
    let mut e = Engine::open(host.clone(), cfg(d.path())).unwrap();
    let n = e.apply(&spec("a", vec![peer("192.0.2.7:51820")])).unwrap();
    e.attach(&AttachRequest {
        network: "a".into(),
        netns: "c-1".into(),
        address: None,
    })
    .unwrap();
    drop(e);
    host.state().attached.clear();
    assert!(
        host.state().tunnels.is_empty(),
        "tunnels stop with the engine"
    );
    let mut e = Engine::open(host.clone(), cfg(d.path())).unwrap();
    e.adopt_all();
    let again = e.get("a").unwrap();
    assert_eq!(again.public_key, n.public_key);
    assert_eq!(again.state, NetworkState::Ready);
    assert_eq!(host.state().tunnels["n-a"].len(), 1);
    assert_eq!(host.state().attached.len(), 1);
}

#[test]
fn delete_removes_everything_and_the_node_table_last() {
    let d = tempfile::tempdir().unwrap();
    let host = FakeHost::default();
    let mut e = Engine::open(host.clone(), cfg(d.path())).unwrap();
    e.apply(&spec("a", vec![])).unwrap();
    e.apply(&spec("b", vec![])).unwrap();
    e.delete("a").unwrap();
    assert!(host.state().node_table);
    host.state().fail = Some("delete_network".into());
    assert!(e.delete("b").is_err());
    assert!(
        e.get("b").is_ok(),
        "a failed delete keeps the record to retry"
    );
    e.delete("b").unwrap();
    e.delete("b").unwrap();
    let s = host.state();
    assert!(!s.node_table && s.networks.is_empty() && s.tunnels.is_empty() && s.ports.is_empty());
    drop(s);
    assert_eq!(
        std::fs::read_dir(d.path().join("networks"))
            .unwrap()
            .count(),
        0
    );
    assert!(matches!(e.get("a"), Err(Error::NotFound(_))));
}

#[test]
fn a_failed_write_refuses_changes_until_restart() {
    let d = tempfile::tempdir().unwrap();
    let mut e = Engine::open(FakeHost::default(), cfg(d.path())).unwrap();
    e.apply(&spec("a", vec![])).unwrap();
    let dir = d.path().join("networks");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a folder").unwrap();
    assert!(matches!(e.apply(&spec("b", vec![])), Err(Error::State(_))));
    assert!(matches!(e.delete("a"), Err(Error::State(_))));
    assert_eq!(e.health().0, HealthStatus::Degraded);
    assert!(e.get("a").is_ok(), "reads still work");
}

#[test]
fn a_failed_pause_leaves_everything_running_and_a_committed_one_freezes_the_engine() {
    let d = tempfile::tempdir().unwrap();
    let host = FakeHost::default();
    let mut e = Engine::open(host.clone(), cfg(d.path())).unwrap();
    e.apply(&spec("a", vec![])).unwrap();
    // the fake's tunnels cannot be handed over
    assert!(e.pause_for_handover().is_err());
    assert!(e.nets["a"].tunnel.as_ref().is_some_and(|t| t.alive()));
    e.apply(&spec("a", vec![peer("192.0.2.7:51820")])).unwrap();
    e.set_handed_over();
    let err = e.apply(&spec("a", vec![])).unwrap_err().to_string();
    assert!(err.contains("handed"), "{err}");
    assert!(e.delete("a").is_err());
    assert!(e.has("a"));
}
