//! Command line of the netd binary.

use clap::Parser;
use std::path::PathBuf;

/// netd: private WireGuard networks spanning nodes.
#[derive(Debug, Parser)]
#[command(name = "netd", version)]
pub struct Cli {
    /// State folder (network records with their private keys, mode 0700).
    #[arg(long, default_value = "/var/lib/zos/netd")]
    pub state: PathBuf,
    /// Folder of the node's bus sockets.
    #[arg(long, default_value = "/run/zos")]
    pub run: PathBuf,
    /// Prefix of network namespace names.
    #[arg(long, default_value = "n-")]
    pub netns_prefix: String,
    /// UDP ports for networks, `FIRST-LAST`; each network keeps the one it got first.
    #[arg(long, default_value = "51820-52819", value_parser = parse_range)]
    pub ports: std::ops::RangeInclusive<u16>,
    /// Serve a take-over socket here (owner-only): a new netd started with `--take-over` on
    /// it takes this one's tunnels (same tun interfaces, same UDP sockets) and this one exits.
    #[arg(long)]
    pub handover: Option<PathBuf>,
    /// Take over the tunnels of the netd serving a take-over socket here, then serve. Fails
    /// (and that netd carries on) when the take-over fails before its commit.
    #[arg(long)]
    pub take_over: Option<PathBuf>,
    /// Migrate the state folder (`--state`) to this version's schema and exit (run by
    /// node-init's upgrade on a copy of the folder).
    #[arg(long)]
    pub migrate: bool,
    /// Log at debug level.
    #[arg(short, long)]
    pub verbose: bool,
    /// Log format: auto, plain, color, json (default: `ZOS_LOG_FORMAT`, else auto).
    #[arg(long)]
    pub log_format: Option<nodeutil::log::LogFormat>,
}

fn parse_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not FIRST-LAST"))?;
    let (a, b): (u16, u16) = (
        a.trim()
            .parse()
            .map_err(|_| format!("{a:?} is not a port"))?,
        b.trim()
            .parse()
            .map_err(|_| format!("{b:?} is not a port"))?,
    );
    if a == 0 || a > b {
        return Err(format!("{s:?}: need 0 < FIRST <= LAST"));
    }
    Ok(a..=b)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn port_ranges_parse_or_say_why() {
        assert_eq!(parse_range("51820-51830"), Ok(51820..=51830));
        for bad in ["", "1", "0-5", "9-5", "a-b", "1-70000"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
