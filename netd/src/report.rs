//! Replies built from a network's record and its tunnel's counters (the bus shapes of
//! `bus::api::network`), and the attachment plan a record stands for.

use crate::engine::Net;
use crate::keys;
use crate::plan::{self, AttachPlan};
use crate::spec;
use crate::state::AttachmentRecord;
use bus::api::network::{Attachment, Network, NetworkState, PeerStatus};

pub(crate) fn attach_plan(netns: &str, a: &AttachmentRecord) -> AttachPlan {
    AttachPlan {
        netns: netns.to_string(),
        address: a.address,
        number: a.number,
    }
}

pub(crate) fn attachment(n: &Net, netns: &str, a: &AttachmentRecord) -> Attachment {
    Attachment {
        network: n.spec.id.clone(),
        netns: netns.to_string(),
        address: a.address,
        interface: plan::CONTAINER_IF.to_string(),
        gateway: spec::gateway(&n.spec.subnet),
    }
}

pub(crate) fn status(n: &Net, addrs: &[std::net::Ipv4Addr]) -> Network {
    let stats = n.tunnel.as_ref().map(|t| t.stats()).unwrap_or_default();
    let peers = n
        .spec
        .peers
        .iter()
        .map(|p| {
            let s = stats.iter().find(|s| s.public_key == p.public_key);
            PeerStatus {
                public_key: keys::encode(&p.public_key),
                endpoint: s
                    .and_then(|s| s.endpoint)
                    .map(|e| e.to_string())
                    .or_else(|| p.endpoint.as_ref().map(|(h, port)| format!("{h}:{port}"))),
                subnets: p.subnets.iter().map(|s| s.to_string()).collect(),
                last_handshake_secs: s.and_then(|s| s.last_handshake).map(|d| d.as_secs()),
                rx_bytes: s.map_or(0, |s| s.rx_bytes),
                tx_bytes: s.map_or(0, |s| s.tx_bytes),
            }
        })
        .collect();
    let alive = n.tunnel.as_ref().is_some_and(|t| t.alive());
    Network {
        id: n.spec.id.clone(),
        ip_range: n.spec.ip_range.to_string(),
        subnet: n.spec.subnet.to_string(),
        public_key: keys::encode(&n.record.private_key.public()),
        listen_port: n.record.listen_port,
        endpoints: addrs
            .iter()
            .map(|a| format!("{a}:{}", n.record.listen_port))
            .collect(),
        netns: n.plan.netns.clone(),
        state: if alive && n.error.is_none() {
            NetworkState::Ready
        } else {
            NetworkState::Failed
        },
        message: n.error.clone().unwrap_or_else(|| {
            if alive {
                String::new()
            } else {
                "tunnel not running".into()
            }
        }),
        peers,
        attachments: n
            .record
            .attachments
            .iter()
            .map(|(ns, a)| attachment(n, ns, a))
            .collect(),
    }
}
