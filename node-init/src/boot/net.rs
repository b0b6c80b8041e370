//! Bringing up the node's network from the command line's `zos.net`: busybox udhcpc (its lease
//! script, in the image at [`DHCP_SCRIPT`], sets address, route and resolver) or a static
//! address with iproute2.

use super::cmdline::{BootConfig, Net};
use super::system::Kernel;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// udhcpc's lease script in the image (scripts/build-image.sh writes it).
pub const DHCP_SCRIPT: &str = "/usr/share/udhcpc/default.script";

/// The interface to configure: the one named, else the first (sorted) that is not loopback.
pub fn pick_iface(named: Option<&str>, present: &[String]) -> Option<String> {
    match named {
        Some(n) => present.iter().find(|p| *p == n).cloned(),
        None => {
            let mut v: Vec<&String> = present.iter().filter(|p| *p != "lo").collect();
            v.sort();
            v.first().map(|s| (*s).clone())
        }
    }
}

/// The first global address in `ip -o addr show` output, IPv4 first.
pub fn first_address(ip_o_addr: &str) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = ip_o_addr
        .lines()
        .filter(|l| !l.contains("scope link") && !l.contains("scope host"))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet" || *x == "inet6")?;
            w.next()?.split('/').next()?.parse().ok()
        })
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

/// Configures loopback and the node's interface; returns the node's address. Failures are
/// printed: a node without network still serves its disks locally.
pub fn up(k: &dyn Kernel, cfg: &BootConfig, sys_net: &Path) -> Option<IpAddr> {
    let t = Duration::from_secs(10);
    report(k.run("ip", &["link", "set", "lo", "up"], t));
    if cfg.net == Net::Off {
        return None;
    }
    // virtio_net's interface appears shortly after its module loads
    let deadline = Instant::now() + Duration::from_secs(10);
    let iface = loop {
        let present: Vec<String> = std::fs::read_dir(sys_net)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        if let Some(i) = pick_iface(cfg.iface.as_deref(), &present) {
            break i;
        }
        if Instant::now() > deadline {
            eprintln!("init: no network interface found (have {present:?})");
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    report(k.run("ip", &["link", "set", &iface, "up"], t));
    match &cfg.net {
        Net::Off => {}
        Net::Dhcp => report(k.run(
            "udhcpc",
            &[
                "-i",
                &iface,
                "-f",
                "-q",
                "-n",
                "-t",
                "10",
                "-T",
                "2",
                "-s",
                DHCP_SCRIPT,
            ],
            Duration::from_secs(40),
        )),
        Net::Static { addr, gateway } => {
            report(k.run(
                "ip",
                &["addr", "replace", &addr.to_string(), "dev", &iface],
                t,
            ));
            if let Some(gw) = gateway {
                report(k.run(
                    "ip",
                    &[
                        "route",
                        "replace",
                        "default",
                        "via",
                        &gw.to_string(),
                        "dev",
                        &iface,
                    ],
                    t,
                ));
            }
        }
    }
    let addr = k
        .run("ip", &["-o", "addr", "show", "dev", &iface], t)
        .ok()
        .and_then(|o| first_address(&o));
    match addr {
        Some(a) => eprintln!("init: network {iface} {a}"),
        None => eprintln!("init: network {iface} has no address"),
    }
    addr
}

fn report<T>(r: Result<T, String>) {
    if let Err(e) = r {
        eprintln!("init: {e}");
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn interface_choice() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            pick_iface(None, &p(&["lo", "eth1", "eth0"])).as_deref(),
            Some("eth0")
        );
        assert_eq!(
            pick_iface(Some("eth1"), &p(&["lo", "eth1", "eth0"])).as_deref(),
            Some("eth1")
        );
        assert_eq!(pick_iface(Some("eth2"), &p(&["lo", "eth0"])), None);
        assert_eq!(pick_iface(None, &p(&["lo"])), None);
    }

    #[test]
    fn address_from_ip_output() {
        let out = "2: eth0    inet6 fe80::5054:ff:fe12:3456/64 scope link \\       valid_lft forever\n\
                   2: eth0    inet6 fd00::15/64 scope global \\       valid_lft forever\n\
                   2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0\\       valid_lft 86394sec\n";
        assert_eq!(first_address(out), Some("10.0.2.15".parse().expect("ip")));
        assert_eq!(
            first_address(&out.lines().take(2).collect::<Vec<_>>().join("\n")),
            Some("fd00::15".parse().expect("ip"))
        );
        assert_eq!(first_address(""), None);
    }

    #[test]
    fn dhcp_then_address() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(d.path().join("eth0")).expect("mkdir");
        let mut k = super::super::system::Fake::default();
        k.outputs.insert(
            "ip".into(),
            "2: eth0    inet 10.0.2.15/24 scope global eth0\n".into(),
        );
        let got = up(&k, &BootConfig::default(), d.path());
        assert_eq!(got, Some("10.0.2.15".parse().expect("ip")));
        let calls = k.calls.lock().expect("lock").clone();
        assert_eq!(calls[0], "ip link set lo up");
        assert_eq!(calls[1], "ip link set eth0 up");
        assert!(calls[2].starts_with("udhcpc -i eth0 "), "{calls:?}");
    }
}
