//! The node's configuration from the kernel command line (pure). The image carries no other
//! configuration: a farmer sets these in the boot loader (or PXE) entry.
//!
//! | key | value | default |
//! |---|---|---|
//! | `zos.farm` | farm name | none: the node joins no farm |
//! | `zos.etcd` | etcd client URLs, comma separated | none |
//! | `zos.net` | `dhcp`, `off`, or `ADDR/PREFIX` or `ADDR/PREFIX,GATEWAY` (static) | `dhcp` |
//! | `zos.iface` | the interface to configure | the first one that is not `lo` |
//! | `zos.shell` | (no value) also start a rescue shell on the console | off |
//!
//! Other words (the kernel's own, `console=...`) are ignored. A bad value is reported and its
//! key left at its default, so a typo never stops the node from booting.

use ipnet::IpNet;
use std::net::IpAddr;

/// How the node's network is brought up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Net {
    /// busybox udhcpc on the interface.
    #[default]
    Dhcp,
    /// Only loopback.
    Off,
    /// A fixed address, and a default route when a gateway is given.
    Static {
        /// Address with its prefix length.
        addr: IpNet,
        /// Default gateway.
        gateway: Option<IpAddr>,
    },
}

/// What the kernel command line says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootConfig {
    /// Farm to join.
    pub farm: Option<String>,
    /// etcd endpoints of the farm.
    pub etcd: Vec<String>,
    /// Network settings.
    pub net: Net,
    /// Interface name.
    pub iface: Option<String>,
    /// Start a rescue shell on the console.
    pub shell: bool,
}

/// Parses `/proc/cmdline`; returns the settings and a message for each value refused.
pub fn parse(cmdline: &str) -> (BootConfig, Vec<String>) {
    let mut cfg = BootConfig::default();
    let mut bad = Vec::new();
    for word in cmdline.split_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        match key {
            "zos.farm" if valid_name(value) => cfg.farm = Some(value.to_string()),
            "zos.etcd" => {
                let urls: Vec<String> = value
                    .split(',')
                    .filter(|u| !u.is_empty())
                    .map(str::to_string)
                    .collect();
                if urls.is_empty() || !urls.iter().all(|u| u.contains("://")) {
                    bad.push(format!("zos.etcd={value}: expected URL[,URL...]"));
                } else {
                    cfg.etcd = urls;
                }
            }
            "zos.net" => match parse_net(value) {
                Ok(n) => cfg.net = n,
                Err(e) => bad.push(format!("zos.net={value}: {e}")),
            },
            "zos.iface" if valid_name(value) && value.len() < 16 => {
                cfg.iface = Some(value.to_string())
            }
            "zos.shell" => cfg.shell = true,
            "zos.farm" | "zos.iface" => bad.push(format!("{word}: not a valid name")),
            k if k.starts_with("zos.") => bad.push(format!("{word}: unknown key")),
            _ => {}
        }
    }
    (cfg, bad)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn parse_net(v: &str) -> Result<Net, String> {
    match v {
        "dhcp" => return Ok(Net::Dhcp),
        "off" | "none" => return Ok(Net::Off),
        _ => {}
    }
    let (addr, gw) = match v.split_once(',') {
        Some((a, g)) => (a, Some(g)),
        None => (v, None),
    };
    let addr: IpNet = addr
        .parse()
        .map_err(|_| "expected dhcp, off, or ADDR/PREFIX[,GATEWAY]".to_string())?;
    let gateway = gw
        .map(|g| {
            g.parse::<IpAddr>()
                .map_err(|_| format!("bad gateway {g:?}"))
        })
        .transpose()?;
    Ok(Net::Static { addr, gateway })
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn defaults_and_the_kernels_own_words() {
        let (c, bad) = parse("BOOT_IMAGE=/vmlinuz console=ttyS0 quiet panic=-1\n");
        assert_eq!(c, BootConfig::default());
        assert_eq!(c.net, Net::Dhcp);
        assert!(bad.is_empty());
    }

    #[test]
    fn every_key() {
        let (c, bad) = parse(
            "console=ttyS0 zos.farm=f-1 zos.etcd=http://10.0.2.2:2379,http://h:2379 \
             zos.net=10.0.2.20/24,10.0.2.2 zos.iface=eth1 zos.shell",
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(c.farm.as_deref(), Some("f-1"));
        assert_eq!(c.etcd, ["http://10.0.2.2:2379", "http://h:2379"]);
        assert_eq!(
            c.net,
            Net::Static {
                addr: "10.0.2.20/24".parse().unwrap(),
                gateway: Some("10.0.2.2".parse().unwrap())
            }
        );
        assert_eq!(c.iface.as_deref(), Some("eth1"));
        assert!(c.shell);
        assert_eq!(parse("zos.net=off").0.net, Net::Off);
        assert!(matches!(
            parse("zos.net=fd00::5/64").0.net,
            Net::Static { gateway: None, .. }
        ));
    }

    #[test]
    fn bad_values_are_reported_and_left_at_their_default() {
        let (c, bad) = parse(
            "zos.net=10.0.2.20 zos.etcd=nourl zos.farm=a/b zos.iface=../x zos.typo=1 zos.net=1.2.3.4/8,x",
        );
        assert_eq!(c, BootConfig::default());
        assert_eq!(bad.len(), 6, "{bad:?}");
        assert!(bad.iter().any(|b| b.contains("zos.typo=1: unknown key")));
        assert!(bad.iter().any(|b| b.contains("bad gateway")));
    }
}
