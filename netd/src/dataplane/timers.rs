//! Every 100 ms, each peer's timers: handshake retries and rekeys, keepalives, expiry of old
//! sessions. Once a second, the handshake rate limiter's count is reset.

use super::Shared;
use super::packet::MIN_DST;
use std::time::{Duration, Instant};

/// How often the timers run (boringtun asks for 100 to 250 ms).
const TICK: Duration = Duration::from_millis(100);

pub(super) fn run(sh: &Shared) {
    let mut buf = [0u8; MIN_DST];
    let mut last_reset = Instant::now();
    while !sh.stop.raised() {
        sh.stop.sleep(TICK);
        for peer in &sh.table().peers {
            let mut io = peer.lock();
            let to = io.endpoint;
            let r = io.tunn.update_timers(&mut buf);
            sh.send_result(r, to);
        }
        if last_reset.elapsed() >= Duration::from_secs(1) {
            sh.rate_limiter.reset_count();
            last_reset = Instant::now();
        }
    }
}
