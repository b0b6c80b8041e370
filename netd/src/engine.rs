//! The networks of this node: requests checked against the records, records written before the
//! kernel is touched, and the kernel converged through [`Host`] (again after a failure, by
//! [`Engine::tick`], and after a restart, by [`Engine::adopt_all`]).

use crate::dataplane::peers::PeerConfig;
use crate::error::{Error, KernelContext, Result};
use crate::host::{Host, Tunnel};
use crate::keys::PrivateKey;
use crate::plan::{self, NetPlan};
use crate::report::{attach_plan, attachment, status};
use crate::spec::{self, Spec};
use crate::state::{AttachmentRecord, NetworkRecord, Store};
use bus::api::health::HealthStatus;
use bus::api::network::{AttachRequest, Attachment, DetachRequest, Network, NetworkSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// Where netd keeps things and which names and ports it uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// State folder (records with private keys).
    pub state: PathBuf,
    /// Prefix of network namespace names (`n-`); a test running several nodes on one machine
    /// gives each its own.
    pub netns_prefix: String,
    /// UDP ports networks listen on, the lowest free one chosen once per network.
    pub ports: RangeInclusive<u16>,
}

/// One network: its record, what it means, and its running tunnel.
pub(crate) struct Net {
    pub(crate) record: NetworkRecord,
    pub(crate) spec: Spec,
    pub(crate) plan: NetPlan,
    pub(crate) tunnel: Option<Box<dyn Tunnel>>,
    pub(crate) error: Option<String>,
}

/// The engine; callers serialize access (one lock).
pub struct Engine<H: Host> {
    host: H,
    cfg: Config,
    store: Store,
    nets: BTreeMap<String, Net>,
    /// Set when a record could not be written: changes are refused until restart.
    poisoned: Option<String>,
    /// Record files that did not load.
    bad_records: Vec<String>,
    /// Set once the tunnels went to a new netd: this one changes nothing any more.
    handed_over: bool,
}

impl<H: Host> Engine<H> {
    /// Loads the records (no kernel work yet: see [`Engine::adopt_all`]).
    pub fn open(host: H, cfg: Config) -> Result<Self> {
        let store =
            Store::open(&cfg.state).kernel(format!("state folder {}", cfg.state.display()))?;
        // a newer state is refused; an older one is brought forward first
        let (from, to) = crate::schema::migrate(&cfg.state).map_err(crate::Error::State)?;
        if from != to {
            tracing::info!(from, to, "state migrated");
        }
        let (records, bad_records) = store
            .load_all()
            .kernel(format!("read records in {}", cfg.state.display()))?;
        for b in &bad_records {
            tracing::error!(record = %b, "network record not loaded");
        }
        let mut e = Engine {
            host,
            cfg,
            store,
            nets: BTreeMap::new(),
            poisoned: None,
            bad_records,
            handed_over: false,
        };
        for r in records {
            match spec::check(&r.spec) {
                Ok(s) => {
                    let plan = e.plan_of(&s, &r);
                    e.nets.insert(
                        s.id.clone(),
                        Net {
                            record: r,
                            spec: s,
                            plan,
                            tunnel: None,
                            error: None,
                        },
                    );
                }
                Err(why) => e.bad_records.push(format!("{}: {why}", r.spec.id)),
            }
        }
        Ok(e)
    }

    fn plan_of(&self, s: &Spec, r: &NetworkRecord) -> NetPlan {
        NetPlan {
            id: s.id.clone(),
            netns: format!("{}{}", self.cfg.netns_prefix, s.id),
            ip_range: s.ip_range,
            subnet: s.subnet,
            transfer: r.transfer,
            listen_port: r.listen_port,
        }
    }

    /// Converges every network after a start; failures stay on the network for `tick`.
    pub fn adopt_all(&mut self) {
        let ids: Vec<String> = self.nets.keys().cloned().collect();
        for id in ids {
            if let Err(e) = self.converge(&id, true) {
                tracing::warn!(network = %id, error = %e, "network not adopted yet");
            }
        }
    }

    /// Retries failed networks and restarts dead tunnels.
    pub fn tick(&mut self) {
        if self.handed_over {
            return;
        }
        let ids: Vec<String> = self
            .nets
            .iter()
            .filter(|(_, n)| n.error.is_some() || !n.tunnel.as_ref().is_some_and(|t| t.alive()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Err(e) = self.converge(&id, true) {
                tracing::debug!(network = %id, error = %e, "network still failing");
            }
        }
    }

    fn writable(&self) -> Result<()> {
        if self.handed_over {
            return Err(Error::State(
                "this netd handed its networks to a new one and is exiting; retry".into(),
            ));
        }
        match &self.poisoned {
            Some(why) => Err(Error::State(format!(
                "an earlier write failed ({why}); restart netd"
            ))),
            None => Ok(()),
        }
    }

    fn save(&mut self, r: &NetworkRecord) -> Result<()> {
        self.store.save(r).map_err(|e| {
            let msg = e.to_string();
            self.poisoned = Some(msg.clone());
            Error::State(msg)
        })
    }

    /// Peers with endpoints resolved; with `lenient`, a name that does not resolve leaves the
    /// peer without an endpoint (it is learnt from its packets) instead of failing.
    fn peer_configs(&self, s: &Spec, lenient: bool) -> Result<Vec<PeerConfig>> {
        s.peers
            .iter()
            .map(|p| {
                let endpoint = match &p.endpoint {
                    None => None,
                    Some((host, port)) => match self.host.resolve(host, *port) {
                        Ok(a) => Some(a),
                        Err(e) if lenient => {
                            tracing::warn!(%host, error = %e, "peer endpoint not resolved");
                            None
                        }
                        Err(e) => {
                            return Err(Error::Invalid(format!(
                                "peer endpoint {host}:{port} does not resolve: {e}"
                            )));
                        }
                    },
                };
                Ok(PeerConfig {
                    public_key: p.public_key,
                    endpoint,
                    subnets: p.subnets.clone(),
                    keepalive: p.keepalive,
                })
            })
            .collect()
    }

    /// Brings a network's kernel objects and tunnel to its record. `full` re-checks the
    /// namespace, rules and attachments even when the tunnel runs.
    fn converge(&mut self, id: &str, full: bool) -> Result<()> {
        let r = self.converge_inner(id, full);
        if let Some(n) = self.nets.get_mut(id) {
            n.error = r.as_ref().err().map(|e| e.to_string());
        }
        r
    }

    /// Network `id`'s peers for a tunnel being (re)made: a name that does not resolve leaves
    /// its peer endpoint-less.
    fn lenient_peers(&self, id: &str) -> Result<Vec<PeerConfig>> {
        let n = self
            .nets
            .get(id)
            .ok_or_else(|| Error::NotFound(id.into()))?;
        self.peer_configs(&n.spec, true)
    }

    fn converge_inner(&mut self, id: &str, full: bool) -> Result<()> {
        let peers = self.lenient_peers(id)?;
        let Some(n) = self.nets.get_mut(id) else {
            return Err(Error::NotFound(id.into()));
        };
        let running = n.tunnel.as_ref().is_some_and(|t| t.alive());
        if running && !full {
            if let Some(t) = &n.tunnel {
                t.set_peers(&peers);
            }
            return Ok(());
        }
        self.host.ensure_node().kernel("node packet filter")?;
        self.host
            .ensure_network(&n.plan)
            .kernel(format!("network namespace {}", n.plan.netns))?;
        if running {
            if let Some(t) = &n.tunnel {
                t.set_peers(&peers);
            }
        } else {
            n.tunnel = None;
            n.tunnel = Some(
                self.host
                    .start_tunnel(&n.plan, &n.record.private_key, &peers)
                    .kernel(format!("tunnel of {id}"))?,
            );
        }
        for (netns, a) in &n.record.attachments {
            if self.host.netns_exists(netns) {
                let ap = attach_plan(netns, a);
                self.host
                    .attach(&n.plan, &ap)
                    .kernel(format!("attach {netns}"))?;
            }
        }
        Ok(())
    }

    /// Creates or converges a network.
    pub fn apply(&mut self, req: &NetworkSpec) -> Result<Network> {
        let s = spec::check(req).map_err(Error::Invalid)?;
        self.writable()?;
        self.peer_configs(&s, false)?;
        let record = match self.nets.get(&s.id) {
            Some(n) => {
                if n.spec.ip_range != s.ip_range || n.spec.subnet != s.subnet {
                    return Err(Error::Invalid(format!(
                        "network {}: ip_range and subnet cannot change ({} {}); delete it first",
                        s.id, n.spec.ip_range, n.spec.subnet
                    )));
                }
                NetworkRecord {
                    spec: req.clone(),
                    ..n.record.clone()
                }
            }
            None => self.new_record(req)?,
        };
        let own = record.private_key.public();
        if s.peers.iter().any(|p| p.public_key == own) {
            return Err(Error::Invalid(
                "a peer has this node's own public key".into(),
            ));
        }
        if self.nets.get(&s.id).map(|n| &n.record) != Some(&record) {
            self.save(&record)?;
        }
        let is_new = !self.nets.contains_key(&s.id);
        let plan = self.plan_of(&s, &record);
        match self.nets.get_mut(&s.id) {
            Some(n) => {
                n.record = record;
                n.spec = s.clone();
            }
            None => {
                self.nets.insert(
                    s.id.clone(),
                    Net {
                        record,
                        spec: s.clone(),
                        plan,
                        tunnel: None,
                        error: None,
                    },
                );
            }
        }
        self.converge(&s.id, is_new)?;
        self.get(&s.id)
    }

    fn new_record(&self, req: &NetworkSpec) -> Result<NetworkRecord> {
        let ports: BTreeSet<u16> = self.nets.values().map(|n| n.record.listen_port).collect();
        let transfers: BTreeSet<u16> = self.nets.values().map(|n| n.record.transfer).collect();
        let listen_port =
            plan::choose_port(self.cfg.ports.clone(), &ports, |p| self.host.port_free(p))
                .ok_or_else(|| {
                    Error::NoCapacity(format!("no free UDP port in {:?}", self.cfg.ports))
                })?;
        let transfer = plan::choose_transfer(&transfers)
            .ok_or_else(|| Error::NoCapacity("no transfer link left".into()))?;
        Ok(NetworkRecord {
            spec: req.clone(),
            private_key: PrivateKey::generate(),
            listen_port,
            transfer,
            attachments: BTreeMap::new(),
            next_attachment: 0,
        })
    }

    /// For a take-over: pauses every running tunnel and returns each one's UDP socket. On a
    /// failure the ones paused already run again.
    pub fn pause_for_handover(&mut self) -> Result<Vec<(String, std::os::fd::OwnedFd)>> {
        let mut out = Vec::new();
        let mut failed = None;
        for (id, n) in &mut self.nets {
            let Some(t) = n.tunnel.as_mut().filter(|t| t.alive()) else {
                continue;
            };
            match t.pause() {
                Ok(fd) => out.push((id.clone(), fd)),
                Err(e) => {
                    failed = Some(Error::Kernel {
                        what: format!("pause the tunnel of {id}"),
                        source: e,
                    });
                    break;
                }
            }
        }
        match failed {
            Some(e) => {
                self.resume_after_handover();
                Err(e)
            }
            None => Ok(out),
        }
    }

    /// A take-over failed before its commit: the tunnels carry traffic again (one that cannot
    /// is dropped, and `tick` makes it again).
    pub fn resume_after_handover(&mut self) {
        for (id, n) in &mut self.nets {
            if let Some(t) = n.tunnel.as_mut()
                && let Err(e) = t.resume()
            {
                tracing::warn!(network = %id, error = %e, "tunnel not resumed: remade");
                n.tunnel = None;
            }
        }
    }

    /// A take-over committed: nothing is changed or restarted any more (the daemon exits).
    pub fn set_handed_over(&mut self) {
        self.handed_over = true;
    }

    /// Runs network `id`'s tunnel on the socket a previous netd handed over, attached to the
    /// tun it left (same interface); handshakes go out at once.
    pub fn adopt_handed(&mut self, id: &str, socket: std::net::UdpSocket) -> Result<()> {
        let peers = self.lenient_peers(id)?;
        let Some(n) = self.nets.get_mut(id) else {
            return Err(Error::NotFound(id.into()));
        };
        let port = socket.local_addr().kernel("handed socket")?.port();
        if port != n.plan.listen_port {
            return Err(Error::State(format!(
                "handed socket of {id} is on port {port}, its record says {}",
                n.plan.listen_port
            )));
        }
        let t = self
            .host
            .adopt_tunnel(&n.plan, &n.record.private_key, &peers, socket)
            .kernel(format!("take over the tunnel of {id}"))?;
        n.tunnel = Some(t);
        Ok(())
    }

    /// Removes a network and everything it made; absent is fine.
    pub fn delete(&mut self, id: &str) -> Result<()> {
        spec::check_id(id).map_err(Error::Invalid)?;
        self.writable()?;
        let Some(n) = self.nets.get_mut(id) else {
            return Ok(());
        };
        n.tunnel = None;
        let p = n.plan.clone();
        // The kernel frees a deleted namespace, and the links inside it, in the background:
        // the containers' ends would outlive the delete for a moment. Cut each pair first.
        for (netns, a) in &n.record.attachments {
            self.host
                .detach(&p, &attach_plan(netns, a))
                .kernel(format!("detach {netns}"))?;
        }
        self.host
            .delete_network(&p)
            .kernel(format!("delete network {id}"))?;
        self.store.remove(id).map_err(|e| {
            self.poisoned = Some(e.to_string());
            Error::State(e.to_string())
        })?;
        self.nets.remove(id);
        if self.nets.is_empty() {
            self.host.clear_node().kernel("node packet filter")?;
        }
        Ok(())
    }

    /// Attaches a namespace (idempotent; a different address for an attached one is refused).
    pub fn attach(&mut self, req: &AttachRequest) -> Result<Attachment> {
        spec::check_netns(&req.netns).map_err(Error::Invalid)?;
        self.writable()?;
        let n = self
            .nets
            .get(&req.network)
            .ok_or_else(|| Error::NotFound(req.network.clone()))?;
        if !self.host.netns_exists(&req.netns) {
            return Err(Error::Invalid(format!(
                "no network namespace {}",
                req.netns
            )));
        }
        let a = match n.record.attachments.get(&req.netns) {
            Some(a) => {
                if req.address.is_some_and(|want| want != a.address) {
                    return Err(Error::Invalid(format!(
                        "{} is attached with address {}; detach it first",
                        req.netns, a.address
                    )));
                }
                a.clone()
            }
            None => {
                let used: BTreeSet<_> = n.record.attachments.values().map(|a| a.address).collect();
                let address =
                    plan::choose_address(&n.spec.subnet, req.address, &used).map_err(|why| {
                        if req.address.is_none() {
                            Error::NoCapacity(why)
                        } else {
                            Error::Invalid(why)
                        }
                    })?;
                let a = AttachmentRecord {
                    address,
                    number: n.record.next_attachment,
                };
                let mut record = n.record.clone();
                record.attachments.insert(req.netns.clone(), a.clone());
                record.next_attachment += 1;
                self.save(&record)?;
                if let Some(n) = self.nets.get_mut(&req.network) {
                    n.record = record;
                }
                a
            }
        };
        let n = self
            .nets
            .get(&req.network)
            .ok_or_else(|| Error::NotFound(req.network.clone()))?;
        self.host
            .attach(&n.plan, &attach_plan(&req.netns, &a))
            .kernel(format!("attach {}", req.netns))?;
        Ok(attachment(n, &req.netns, &a))
    }

    /// Detaches a namespace; not attached (or no such network) is fine.
    pub fn detach(&mut self, req: &DetachRequest) -> Result<()> {
        spec::check_netns(&req.netns).map_err(Error::Invalid)?;
        self.writable()?;
        let Some(n) = self.nets.get(&req.network) else {
            return Ok(());
        };
        let Some(a) = n.record.attachments.get(&req.netns) else {
            return Ok(());
        };
        self.host
            .detach(&n.plan, &attach_plan(&req.netns, a))
            .kernel(format!("detach {}", req.netns))?;
        let mut record = n.record.clone();
        record.attachments.remove(&req.netns);
        self.save(&record)?;
        if let Some(n) = self.nets.get_mut(&req.network) {
            n.record = record;
        }
        Ok(())
    }

    /// Whether network `id` has a record here.
    pub fn has(&self, id: &str) -> bool {
        self.nets.contains_key(id)
    }

    /// A network with its peers' traffic.
    pub fn get(&self, id: &str) -> Result<Network> {
        let n = self
            .nets
            .get(id)
            .ok_or_else(|| Error::NotFound(id.into()))?;
        let addrs = self.host.node_addresses().unwrap_or_default();
        Ok(status(n, &addrs))
    }

    /// Every network.
    pub fn list(&self) -> Vec<Network> {
        let addrs = self.host.node_addresses().unwrap_or_default();
        self.nets.values().map(|n| status(n, &addrs)).collect()
    }

    /// Health: degraded when a write failed, a record did not load or a network fails.
    pub fn health(&self) -> (HealthStatus, Option<String>) {
        let failed: Vec<&str> = self
            .nets
            .values()
            .filter(|n| n.error.is_some())
            .map(|n| n.spec.id.as_str())
            .collect();
        let mut why = Vec::new();
        if let Some(p) = &self.poisoned {
            why.push(format!("state not writable: {p}"));
        }
        if !self.bad_records.is_empty() {
            why.push(format!(
                "records not loaded: {}",
                self.bad_records.join("; ")
            ));
        }
        if !failed.is_empty() {
            why.push(format!("failed networks: {}", failed.join(", ")));
        }
        if why.is_empty() {
            (HealthStatus::Ok, None)
        } else {
            (HealthStatus::Degraded, Some(why.join("; ")))
        }
    }
}

#[cfg(test)]
#[path = "engine_test.rs"]
mod test;
