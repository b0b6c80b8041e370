//! A host in memory, for the engine's tests: it records the namespaces, links and tunnels the
//! engine asked for and can be told to fail.

use super::{Host, Tunnel};
use crate::dataplane::PeerStats;
use crate::dataplane::peers::PeerConfig;
use crate::keys::PrivateKey;
use crate::plan::{AttachPlan, NetPlan};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the fake kernel holds.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Whether the node table exists.
    pub node_table: bool,
    /// Network namespaces by name, with the plan they were made from.
    pub networks: BTreeMap<String, NetPlan>,
    /// Other namespaces (containers) that exist.
    pub namespaces: BTreeSet<String>,
    /// (network namespace, container namespace) -> address.
    pub attached: BTreeMap<(String, String), Ipv4Addr>,
    /// Ports in use by running tunnels.
    pub ports: BTreeSet<u16>,
    /// Ports something else holds.
    pub busy_ports: BTreeSet<u16>,
    /// Peers of the running tunnel of each network namespace.
    pub tunnels: BTreeMap<String, Vec<PeerConfig>>,
    /// Fail the next call whose name contains this.
    pub fail: Option<String>,
    /// Every call, in order.
    pub calls: Vec<String>,
}

/// The fake; clones share state.
#[derive(Debug, Default, Clone)]
pub struct FakeHost(pub Arc<Mutex<FakeState>>);

impl FakeHost {
    /// Its state.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, name: &str) -> io::Result<MutexGuard<'_, FakeState>> {
        let mut s = self.state();
        s.calls.push(name.to_string());
        if s.fail.as_deref().is_some_and(|f| name.contains(f)) {
            s.fail = None;
            return Err(io::Error::other(format!("injected failure in {name}")));
        }
        Ok(s)
    }
}

struct FakeTunnel {
    host: FakeHost,
    netns: String,
    port: u16,
}

impl Tunnel for FakeTunnel {
    fn set_peers(&self, peers: &[PeerConfig]) {
        self.host
            .state()
            .tunnels
            .insert(self.netns.clone(), peers.to_vec());
    }
    fn stats(&self) -> Vec<PeerStats> {
        let s = self.host.state();
        s.tunnels
            .get(&self.netns)
            .map(|peers| {
                peers
                    .iter()
                    .map(|p| PeerStats {
                        public_key: p.public_key,
                        endpoint: p.endpoint,
                        last_handshake: None,
                        rx_bytes: 0,
                        tx_bytes: 0,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    fn alive(&self) -> bool {
        self.host.state().tunnels.contains_key(&self.netns)
    }
}

impl Drop for FakeTunnel {
    fn drop(&mut self) {
        let mut s = self.host.state();
        s.tunnels.remove(&self.netns);
        s.ports.remove(&self.port);
    }
}

impl Host for FakeHost {
    fn ensure_node(&self) -> io::Result<()> {
        self.call("ensure_node")?.node_table = true;
        Ok(())
    }
    fn clear_node(&self) -> io::Result<()> {
        self.call("clear_node")?.node_table = false;
        Ok(())
    }
    fn ensure_network(&self, p: &NetPlan) -> io::Result<()> {
        self.call("ensure_network")?
            .networks
            .insert(p.netns.clone(), p.clone());
        Ok(())
    }
    fn start_tunnel(
        &self,
        p: &NetPlan,
        _key: &PrivateKey,
        peers: &[PeerConfig],
    ) -> io::Result<Box<dyn Tunnel>> {
        let mut s = self.call("start_tunnel")?;
        if !s.ports.insert(p.listen_port) || s.busy_ports.contains(&p.listen_port) {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, "port in use"));
        }
        s.tunnels.insert(p.netns.clone(), peers.to_vec());
        Ok(Box::new(FakeTunnel {
            host: self.clone(),
            netns: p.netns.clone(),
            port: p.listen_port,
        }))
    }
    fn delete_network(&self, p: &NetPlan) -> io::Result<()> {
        let mut s = self.call("delete_network")?;
        s.networks.remove(&p.netns);
        s.attached.retain(|(n, _), _| n != &p.netns);
        Ok(())
    }
    fn netns_exists(&self, name: &str) -> bool {
        let s = self.state();
        s.namespaces.contains(name) || s.networks.contains_key(name)
    }
    fn attach(&self, p: &NetPlan, a: &AttachPlan) -> io::Result<()> {
        let mut s = self.call("attach")?;
        if !s.namespaces.contains(&a.netns) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no namespace"));
        }
        s.attached
            .insert((p.netns.clone(), a.netns.clone()), a.address);
        Ok(())
    }
    fn detach(&self, p: &NetPlan, a: &AttachPlan) -> io::Result<()> {
        self.call("detach")?
            .attached
            .remove(&(p.netns.clone(), a.netns.clone()));
        Ok(())
    }
    fn node_addresses(&self) -> io::Result<Vec<Ipv4Addr>> {
        Ok(vec![Ipv4Addr::new(192, 0, 2, 10)])
    }
    fn port_free(&self, port: u16) -> bool {
        let s = self.state();
        !s.ports.contains(&port) && !s.busy_ports.contains(&port)
    }
    fn resolve(&self, host: &str, port: u16) -> io::Result<SocketAddr> {
        let ip: Ipv4Addr = host
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::NotFound, "fake host resolves only IPs"))?;
        Ok(SocketAddr::from((ip, port)))
    }
}
