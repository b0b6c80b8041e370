//! `network` workloads: a private WireGuard network made by netd (`network.apply@1` converges
//! it, `network.delete@1` removes it), and the attachment of containers to one
//! (`network.attach@1` / `network.detach@1`, called by the container handler).

use super::TypedHandler;
use crate::blueprint::{NetworkPeer, NetworkSpec, WorkloadSpec};
use crate::engine::{HandlerError, Observed, WorkloadCtx};
use bus::api::network::{
    self, ApplyNetwork, AttachNetwork, AttachRequest, Attachment, DeleteNetwork, DetachNetwork,
    DetachRequest, GetNetwork, ListNetworks, Network, NetworkId, NetworkState, PeerSpec,
};
use bus::api::node::Workload;
use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// Longest network id netd takes.
const MAX_ID: usize = 64;

/// Talks to netd.
pub struct NetworkHandler(pub bus::Client);

/// netd's id of the network workload `ctx` (`[a-z0-9_-]{1,64}`): the workload's global name
/// when it already fits, else its lower-cased head and a hash of the whole (deployment and
/// workload names may hold upper case and reach 90 characters together; the hash keeps two
/// such names apart).
pub fn network_id(ctx: &WorkloadCtx) -> String {
    let global = ctx.global_name();
    if global.len() <= MAX_ID && !global.bytes().any(|b| b.is_ascii_uppercase()) {
        return global;
    }
    let hash = blake3::hash(global.as_bytes()).to_hex();
    let head: String = global
        .to_ascii_lowercase()
        .chars()
        .take(MAX_ID - 17)
        .collect();
    format!("{head}-{}", &hash.as_str()[..16])
}

/// The blueprint's network as netd's request. Destructured field by field, so a field added
/// to the blueprint does not compile until it is placed here.
pub fn netd_spec(id: String, spec: NetworkSpec) -> network::NetworkSpec {
    let NetworkSpec {
        ip_range,
        subnet,
        peers,
    } = spec;
    let peers = peers
        .into_iter()
        .map(|p| {
            let NetworkPeer {
                public_key,
                endpoint,
                subnets,
                keepalive_secs,
            } = p;
            PeerSpec {
                public_key,
                endpoint,
                subnets,
                keepalive_secs,
            }
        })
        .collect();
    network::NetworkSpec {
        id,
        ip_range,
        subnet,
        peers,
    }
}

/// How long `get` waits for netd's live view before showing the recorded result.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What peers need (public key, port, endpoints) and the peers' state (last handshake, bytes).
fn result(n: &Network) -> Value {
    json!({
        "id": n.id,
        "public_key": n.public_key,
        "listen_port": n.listen_port,
        "endpoints": n.endpoints,
        "netns": n.netns,
        "ip_range": n.ip_range,
        "subnet": n.subnet,
        "peers": n.peers,
    })
}

impl TypedHandler for NetworkHandler {
    const KIND: &'static str = "network";
    type Spec = NetworkSpec;

    fn spec(spec: WorkloadSpec) -> Option<NetworkSpec> {
        match spec {
            WorkloadSpec::Network(s) => Some(s),
            _ => None,
        }
    }

    async fn apply(
        &self,
        ctx: &WorkloadCtx,
        _wl: &Workload,
        spec: NetworkSpec,
    ) -> Result<Value, HandlerError> {
        let n = self
            .0
            .call::<ApplyNetwork>(&netd_spec(network_id(ctx), spec))
            .await?;
        if n.state == NetworkState::Failed {
            return Err(HandlerError(format!("network failed: {}", n.message)));
        }
        Ok(result(&n))
    }

    async fn status(&self, ctx: &WorkloadCtx) -> Option<Value> {
        let req = NetworkId {
            id: network_id(ctx),
        };
        let n = tokio::time::timeout(STATUS_TIMEOUT, self.0.call::<GetNetwork>(&req)).await;
        match n {
            Ok(Ok(n)) => Some(result(&n)),
            _ => None,
        }
    }

    /// netd no longer knowing the network is drift (a re-apply makes it again, with the key
    /// and port netd keeps in its record if that is still there); peers' live state is
    /// `status`'s, not recorded.
    async fn observe(&self, ctx: &WorkloadCtx, _recorded: &Value) -> Observed {
        let req = NetworkId {
            id: network_id(ctx),
        };
        match tokio::time::timeout(STATUS_TIMEOUT, self.0.call::<GetNetwork>(&req)).await {
            Ok(Err(e))
                if e.remote()
                    .is_some_and(|r| r.code == bus::ErrorCode::NotFound) =>
            {
                Observed::Drifted("network missing on netd".into())
            }
            _ => Observed::Unknown,
        }
    }

    async fn remove(&self, ctx: &WorkloadCtx) -> Result<(), HandlerError> {
        self.0
            .call::<DeleteNetwork>(&NetworkId {
                id: network_id(ctx),
            })
            .await?;
        Ok(())
    }
}

/// Attaches namespace `netns` to network `id` (at `address`, else the next free one) and
/// detaches it from every other network, so a container moved to another network (or out of
/// any, `id` none) converges. Idempotent.
pub async fn attach_only(
    netd: &bus::Client,
    netns: &str,
    id: Option<&str>,
    address: Option<Ipv4Addr>,
) -> Result<Option<Attachment>, bus::BusError> {
    let list = netd.call::<ListNetworks>(&bus::api::Empty {}).await?;
    for n in &list.networks {
        let attached = n.attachments.iter().any(|a| a.netns == netns);
        if attached && Some(n.id.as_str()) != id {
            netd.call::<DetachNetwork>(&DetachRequest {
                network: n.id.clone(),
                netns: netns.to_string(),
            })
            .await?;
        }
    }
    let Some(id) = id else {
        return Ok(None);
    };
    let a = netd
        .call::<AttachNetwork>(&AttachRequest {
            network: id.to_string(),
            netns: netns.to_string(),
            address,
        })
        .await?;
    Ok(Some(a))
}

#[cfg(test)]
mod test {
    use super::*;

    fn ctx(deployment: &str, name: &str) -> WorkloadCtx {
        WorkloadCtx {
            owner: "ab".repeat(32),
            deployment: deployment.into(),
            name: name.into(),
        }
    }

    fn valid(id: &str) -> bool {
        (1..=MAX_ID).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    }

    #[test]
    fn short_names_are_kept_long_or_upper_case_ones_hashed_apart() {
        assert_eq!(network_id(&ctx("web", "net")), "abababababababab-web-net");
        let long = "d".repeat(36);
        let (a, b) = (ctx(&long, &"n".repeat(36)), ctx(&long, &"n".repeat(35)));
        let (upper, lower) = (ctx("Web", "net"), ctx("web", "net"));
        for c in [&a, &b, &upper, &lower] {
            assert!(valid(&network_id(c)), "{}", network_id(c));
        }
        assert_ne!(network_id(&a), network_id(&b));
        assert_ne!(network_id(&upper), network_id(&lower));
        assert_eq!(network_id(&a), network_id(&a.clone()));
    }
}
