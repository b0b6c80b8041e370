//! A follower whose leader answers hostile bytes (a huge length, endless nesting, an
//! endless line, silence) keeps running with bounded memory, keeps answering its own
//! clients, and says in its log what the leader did.
#![expect(clippy::unwrap_used, reason = "a failed step fails the run")]

mod common;
use common::*;
use std::time::{Duration, Instant};
use zdb_client::Value;
use zdb_client::fake::{Act, FakeServer};

fn vm_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[test]
fn hostile_leader_leaves_the_follower_bounded_and_serving() {
    for (what, act, logged) in [
        (
            "huge bulk",
            Act::Raw(b"$99999999999\r\n".to_vec()),
            "bulk of 99999999999 bytes",
        ),
        (
            "deep array",
            Act::Endless(b"*1\r\n".to_vec()),
            "arrays nested deeper",
        ),
        (
            "endless line",
            Act::Endless(b"+xxxxxxxxxxxxxxxxxxxxxxxxx".to_vec()),
            "line longer",
        ),
        ("silence", Act::Silent, "timed out"),
    ] {
        let leader = FakeServer::start(move |args| match args.first().map(|a| &a[..]) {
            Some(b"NSLIST") => act.clone(),
            _ => Act::Reply(Value::ok()),
        })
        .unwrap();
        let from = leader.addr().to_string();
        let mut follower = Server::start(&["--replicate-from", &from]);
        let t0 = Instant::now();
        let mut peak = 0;
        while t0.elapsed() < Duration::from_secs(8) && !follower.log_text().contains(logged) {
            peak = peak.max(vm_rss(follower.pid()));
            std::thread::sleep(Duration::from_millis(20));
        }
        // A few more rounds of the leader's bytes.
        for _ in 0..50 {
            peak = peak.max(vm_rss(follower.pid()));
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = follower.log_text();
        assert!(log.contains(logged), "{what}: {log}");
        assert!(follower.is_running(), "{what}: follower died\n{log}");
        assert_eq!(
            follower.client().c(&["PING"]),
            Reply::simple("PONG"),
            "{what}"
        );
        assert!(peak < 300 << 20, "{what}: {peak} bytes resident");
        assert!(leader.connections() >= 1, "{what}");
    }
}
