//! The real kernel: namespaces, rtnetlink, `nft`, a tun with offloads and a UDP socket.

use super::{Host, Tunnel, links, netns, nft};
use crate::dataplane::Dataplane;
use crate::dataplane::peers::PeerConfig;
use crate::keys::PrivateKey;
use crate::plan::{self, AttachPlan, NetPlan};
use ipnet::Ipv4Net;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};

/// Default route.
fn default_route() -> Ipv4Net {
    Ipv4Net::default()
}

/// The host netd runs on.
#[derive(Debug, Default, Clone)]
pub struct RealHost;

impl Host for RealHost {
    fn ensure_node(&self) -> io::Result<()> {
        netns::sysctl(None, "net/ipv4/ip_forward", "1")?;
        nft::apply(None, plan::node_ruleset())
    }

    fn clear_node(&self) -> io::Result<()> {
        nft::apply(None, plan::node_ruleset_delete())
    }

    fn ensure_network(&self, p: &NetPlan) -> io::Result<()> {
        netns::create(&p.netns)?;
        let (node_side, net_side) = p.transfer_addrs();
        let ns = netns::open(&p.netns)?;
        let (transfer, temp) = (p.transfer_if(), format!("ntp{}", p.transfer));
        links::in_ns(None, move |h| async move {
            let idx = links::ensure_veth(&h, &transfer, &temp).await?;
            // The other end is still here when a crash came between creation and move.
            if let Some(t) = links::index(&h, &temp).await? {
                links::move_to(&h, t, &ns, plan::UPLINK_IF).await?;
            }
            links::address(&h, idx, node_side).await?;
            links::up(&h, idx, None).await
        })?;
        let gateway = p.gateway();
        links::in_ns(Some(&p.netns), move |h| async move {
            let lo = links::require(&h, "lo").await?;
            links::up(&h, lo, None).await?;
            let br = links::ensure_bridge(&h, plan::BRIDGE_IF).await?;
            links::address(&h, br, gateway).await?;
            links::up(&h, br, Some(plan::MTU)).await?;
            let up = links::require(&h, plan::UPLINK_IF).await?;
            links::address(&h, up, net_side).await?;
            links::up(&h, up, None).await?;
            links::route(&h, default_route(), up, Some(node_side.addr()), None).await
        })?;
        netns::sysctl(Some(&p.netns), "net/ipv4/ip_forward", "1")?;
        let _ = netns::sysctl(Some(&p.netns), "net/ipv6/conf/all/disable_ipv6", "1");
        nft::apply(Some(&p.netns), plan::network_ruleset())
    }

    fn start_tunnel(
        &self,
        p: &NetPlan,
        key: &PrivateKey,
        peers: &[PeerConfig],
    ) -> io::Result<Box<dyn Tunnel>> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, p.listen_port))
            .map_err(|e| io::Error::new(e.kind(), format!("udp port {}: {e}", p.listen_port)))?;
        // A tun left by a previous run is gone with its descriptor; an interface of that name
        // can only be a stray one: make room.
        links::in_ns(Some(&p.netns), |h| async move {
            links::delete(&h, plan::TUN_IF).await
        })?;
        let temp = p.tun_temp_name();
        let tun = tun_rs::DeviceBuilder::new()
            .name(&temp)
            .offload(true)
            .build_sync()
            .map_err(|e| io::Error::new(e.kind(), format!("create tun: {e}")))?;
        let ns = netns::open(&p.netns)?;
        links::in_ns(None, move |h| async move {
            let idx = links::require(&h, &temp).await?;
            links::move_to(&h, idx, &ns, plan::TUN_IF).await
        })?;
        let (range, gateway) = (p.ip_range, p.gateway().addr());
        links::in_ns(Some(&p.netns), move |h| async move {
            let idx = links::require(&h, plan::TUN_IF).await?;
            links::up(&h, idx, Some(plan::MTU)).await?;
            // From the gateway address: the peers accept only their subnets' sources.
            links::route(&h, range, idx, None, Some(gateway)).await
        })?;
        Ok(Box::new(Dataplane::start(&p.id, key, tun, socket, peers)?))
    }

    fn adopt_tunnel(
        &self,
        p: &NetPlan,
        key: &PrivateKey,
        peers: &[PeerConfig],
        socket: UdpSocket,
    ) -> io::Result<Box<dyn Tunnel>> {
        let tun = netns::run_in(Some(&p.netns), || -> io::Result<tun_rs::SyncDevice> {
            // Attaching by name would make a new tun when there is none: check it is there.
            let probe = rustix::net::socket(
                rustix::net::AddressFamily::INET,
                rustix::net::SocketType::DGRAM,
                None,
            )?;
            let index = || rustix::net::netdevice::name_to_index(&probe, plan::TUN_IF);
            let before = index()?;
            let tun = tun_rs::DeviceBuilder::new()
                .name(plan::TUN_IF)
                .offload(true)
                .build_sync()
                .map_err(|e| io::Error::new(e.kind(), format!("attach tun: {e}")))?;
            if index()? != before {
                return Err(io::Error::other("the tun changed during the take-over"));
            }
            Ok(tun)
        })??;
        Ok(Box::new(Dataplane::start(&p.id, key, tun, socket, peers)?))
    }

    fn delete_network(&self, p: &NetPlan) -> io::Result<()> {
        let names = [
            p.transfer_if(),
            format!("ntp{}", p.transfer),
            p.tun_temp_name(),
        ];
        links::in_ns(None, move |h| async move {
            for n in &names {
                links::delete(&h, n).await?;
            }
            Ok(())
        })?;
        netns::delete(&p.netns)
    }

    fn netns_exists(&self, name: &str) -> bool {
        netns::exists(name)
    }

    fn attach(&self, p: &NetPlan, a: &AttachPlan) -> io::Result<()> {
        let target = netns::open(&a.netns)?;
        let (host_if, temp) = (a.host_if(), a.temp_if());
        links::in_ns(Some(&p.netns), move |h| async move {
            if links::index(&h, &host_if).await?.is_none() {
                links::ensure_veth(&h, &host_if, &temp).await?;
                let t = links::require(&h, &temp).await?;
                links::move_to(&h, t, &target, plan::CONTAINER_IF).await?;
            }
            let idx = links::require(&h, &host_if).await?;
            let br = links::require(&h, plan::BRIDGE_IF).await?;
            links::enslave(&h, idx, br, plan::MTU).await
        })?;
        let addr = Ipv4Net::new(a.address, 24).map_err(io::Error::other)?;
        let gateway = p.gateway().addr();
        links::in_ns(Some(&a.netns), move |h| async move {
            let lo = links::require(&h, "lo").await?;
            links::up(&h, lo, None).await?;
            let eth = links::require(&h, plan::CONTAINER_IF).await?;
            links::up(&h, eth, Some(plan::MTU)).await?;
            links::address(&h, eth, addr).await?;
            links::route(&h, default_route(), eth, Some(gateway), None).await
        })
    }

    fn detach(&self, p: &NetPlan, a: &AttachPlan) -> io::Result<()> {
        if !netns::exists(&p.netns) {
            return Ok(());
        }
        let host_if = a.host_if();
        links::in_ns(Some(&p.netns), move |h| async move {
            links::delete(&h, &host_if).await
        })
    }

    fn node_addresses(&self) -> io::Result<Vec<Ipv4Addr>> {
        let all = links::in_ns(None, |h| async move { links::addresses(&h).await })?;
        Ok(all
            .into_iter()
            .filter(|(ip, dev)| {
                !ip.is_loopback()
                    && !ip.is_link_local()
                    && !ip.is_unspecified()
                    && !dev.starts_with(plan::TRANSFER_PREFIX)
            })
            .map(|(ip, _)| ip)
            .collect())
    }

    fn port_free(&self, port: u16) -> bool {
        UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
    }

    fn resolve(&self, host: &str, port: u16) -> io::Result<SocketAddr> {
        let all: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        all.iter()
            .find(|a| a.is_ipv4())
            .or(all.first())
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address")))
    }
}
