//! Links, addresses and routes through rtnetlink, each call idempotent. [`in_ns`] runs a batch of
//! them inside one namespace: a fresh thread enters it, builds a current-thread runtime and opens
//! a netlink connection there (a netlink socket talks to the namespace it was made in).

use super::netns;
use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Bound on one batch of netlink calls.
const NETLINK_TIMEOUT: Duration = Duration::from_secs(10);

/// A netlink error as an I/O error (its errno), with what was attempted.
pub fn nl_err(what: impl std::fmt::Display) -> impl FnOnce(rtnetlink::Error) -> io::Error {
    move |e| match e {
        rtnetlink::Error::NetlinkError(m) => {
            let io = m.to_io();
            io::Error::new(io.kind(), format!("{what}: {io}"))
        }
        other => io::Error::other(format!("{what}: {other}")),
    }
}

/// Runs `f` with a netlink handle inside namespace `ns` (`None`: netd's own), bounded in time.
pub fn in_ns<R, F, Fut>(ns: Option<&str>, f: F) -> io::Result<R>
where
    R: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<R>>,
{
    netns::run_in(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            tokio::time::timeout(NETLINK_TIMEOUT, f(handle))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "netlink did not answer"))?
        })
    })?
}

/// Index of link `name`, `None` when absent.
pub async fn index(h: &Handle, name: &str) -> io::Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc_enodev() => Ok(None),
        Err(e) => Err(nl_err(format!("look up link {name}"))(e)),
    }
}

const fn libc_enodev() -> i32 {
    19
}

/// Index of link `name`, an error when absent.
pub async fn require(h: &Handle, name: &str) -> io::Result<u32> {
    index(h, name)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no link named {name}")))
}

/// Sets a link up with `mtu` (when given).
pub async fn up(h: &Handle, idx: u32, mtu: Option<u32>) -> io::Result<()> {
    let mut b = LinkUnspec::new_with_index(idx).up();
    if let Some(m) = mtu {
        b = b.mtu(m);
    }
    h.link()
        .set(b.build())
        .execute()
        .await
        .map_err(nl_err(format!("set link {idx} up")))
}

/// Makes bridge `name` if absent; returns its index.
pub async fn ensure_bridge(h: &Handle, name: &str) -> io::Result<u32> {
    if let Some(i) = index(h, name).await? {
        return Ok(i);
    }
    h.link()
        .add(LinkBridge::new(name).build())
        .execute()
        .await
        .map_err(nl_err(format!("create bridge {name}")))?;
    require(h, name).await
}

/// Makes veth pair `name`/`peer` if `name` is absent; returns the index of `name`.
pub async fn ensure_veth(h: &Handle, name: &str, peer: &str) -> io::Result<u32> {
    if let Some(i) = index(h, name).await? {
        return Ok(i);
    }
    // A peer end left alone (its pair half-made before a crash) would block the name.
    delete(h, peer).await?;
    h.link()
        .add(LinkVeth::new(name, peer).build())
        .execute()
        .await
        .map_err(nl_err(format!("create veth {name}")))?;
    require(h, name).await
}

/// Moves link `idx` into the namespace open as `ns`, renaming it `name` there.
pub async fn move_to(h: &Handle, idx: u32, ns: &std::fs::File, name: &str) -> io::Result<()> {
    h.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .setns_by_fd(ns.as_raw_fd())
                .name(name.to_string())
                .build(),
        )
        .execute()
        .await
        .map_err(nl_err(format!("move link {idx} as {name}")))
}

/// Attaches link `idx` to bridge `bridge` and sets it up.
pub async fn enslave(h: &Handle, idx: u32, bridge: u32, mtu: u32) -> io::Result<()> {
    h.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .controller(bridge)
                .mtu(mtu)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(nl_err(format!("attach link {idx} to the bridge")))
}

/// Deletes link `name` (absent is fine).
pub async fn delete(h: &Handle, name: &str) -> io::Result<()> {
    let Some(i) = index(h, name).await? else {
        return Ok(());
    };
    match h.link().del(i).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc_enodev() => Ok(()),
        Err(e) => Err(nl_err(format!("delete link {name}"))(e)),
    }
}

/// Gives link `idx` address `net` (kept when present).
pub async fn address(h: &Handle, idx: u32, net: Ipv4Net) -> io::Result<()> {
    h.address()
        .add(idx, IpAddr::V4(net.addr()), net.prefix_len())
        .replace()
        .execute()
        .await
        .map_err(nl_err(format!("add address {net}")))
}

/// Routes `dest` through link `idx`, via `gateway` or from source `src` when given
/// (replacing any route to `dest`).
pub async fn route(
    h: &Handle,
    dest: Ipv4Net,
    idx: u32,
    gateway: Option<Ipv4Addr>,
    src: Option<Ipv4Addr>,
) -> io::Result<()> {
    let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dest.network(), dest.prefix_len())
        .output_interface(idx);
    if let Some(g) = gateway {
        b = b.gateway(g);
    }
    if let Some(s) = src {
        b = b.pref_source(s);
    }
    h.route()
        .add(b.build())
        .replace()
        .execute()
        .await
        .map_err(nl_err(format!("route {dest}")))
}

/// IPv4 addresses of the namespace, with the name of their link.
pub async fn addresses(h: &Handle) -> io::Result<Vec<(Ipv4Addr, String)>> {
    let mut names = std::collections::HashMap::new();
    let mut links = h.link().get().execute();
    while let Some(l) = links.try_next().await.map_err(nl_err("list links"))? {
        for a in &l.attributes {
            if let LinkAttribute::IfName(n) = a {
                names.insert(l.header.index, n.clone());
            }
        }
    }
    let mut out = Vec::new();
    let mut addrs = h.address().get().execute();
    while let Some(a) = addrs.try_next().await.map_err(nl_err("list addresses"))? {
        for attr in &a.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = attr {
                let name = names.get(&a.header.index).cloned().unwrap_or_default();
                out.push((*ip, name));
            }
        }
    }
    Ok(out)
}
