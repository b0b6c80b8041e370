//! The lab of `tests::lab` (nodes in namespaces on an internet bridge), with netd started on
//! every node, and the skip rule for what these tests need.
#![allow(dead_code, unused_imports, reason = "each test binary uses part of it")]

pub use tests::lab::{INTERNET_HOST, Lab, ok, ping, ping_until, sh};

/// Whether this machine can run the lab; otherwise skips (fails under CI).
pub fn require(extra_tools: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !nodeutil::skip::is_root() {
        missing.push("root".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun".into());
    }
    for t in ["ip", "nft", "ping", "nsenter"].iter().chain(extra_tools) {
        if !nodeutil::skip::has_tool(t) {
            missing.push(format!("{t} (scripts/deps.sh)"));
        }
    }
    nodeutil::skip::unless(missing.is_empty(), &missing.join(", "))
}

/// `n` nodes, netd running on each (the binary this crate built).
pub fn lab(n: usize) -> Lab {
    let mut lab = Lab::new(n);
    for i in 0..n {
        lab.start_netd(i);
    }
    lab
}
