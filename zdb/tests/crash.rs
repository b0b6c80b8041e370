//! Process crashes under load: SIGKILL at random moments while clients write, restart, and
//! check that no acknowledged write is lost and every key reads as some version that was
//! written (the one in flight may or may not have landed), never garbage.
//!
//! `ZDB_CRASH_TRIALS` sets the number of trials (CI: 6; the long mode runs 200 or more:
//! `ZDB_CRASH_TRIALS=200 cargo test -p zdb --test crash -- --nocapture`).
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;
use common::*;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: usize = 4;
const KEYS: usize = 40;

/// Per key: every operation sent (Some = SET value, None = DEL), and how many were acknowledged.
type History = Vec<(Vec<Option<Vec<u8>>>, usize)>;

fn writer(port: u16, t: usize, seed: u64, hist: Arc<Mutex<History>>) {
    let Ok(mut c) = Client::connect(port) else {
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for n in 0u64.. {
        let k = rng.gen_range(0..KEYS);
        let key = format!("t{t}-k{k}").into_bytes();
        let slot = t * KEYS + k;
        let del = rng.gen_bool(0.1);
        let value = (!del).then(|| {
            let len = rng.gen_range(1..2000);
            let mut v = format!("{t}:{k}:{n}:").into_bytes();
            v.resize(len.max(v.len()), b'a' + (n % 26) as u8);
            v
        });
        hist.lock().unwrap()[slot].0.push(value.clone());
        let reply = match &value {
            Some(v) => c.try_cmd(&[b"SET", &key, v]),
            None => c.try_cmd(&[b"DEL", &key]),
        };
        match reply {
            Ok(r) if !r.is_error() || r == Reply::err("Key not found") => {
                let mut h = hist.lock().unwrap();
                h[slot].1 = h[slot].0.len();
            }
            _ => return,
        }
    }
}

#[test]
fn sigkill_loses_no_acknowledged_write() {
    let trials: usize = std::env::var("ZDB_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for trial in 0..trials {
        let sync = trial % 2 == 1;
        let mut args = vec!["--mode", "user", "--datasize", "512k"];
        if sync {
            args.push("--sync");
        }
        let mut s = Server::start(&args);
        let hist: Arc<Mutex<History>> = Arc::new(Mutex::new(vec![(Vec::new(), 0); WRITERS * KEYS]));
        let threads: Vec<_> = (0..WRITERS)
            .map(|t| {
                let (hist, port, seed) = (hist.clone(), s.port, rng.r#gen::<u64>());
                std::thread::spawn(move || writer(port, t, seed, hist))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..400)));
        s.kill();
        for t in threads {
            t.join().unwrap();
        }
        s.restart();
        let mut c = s.client();
        let hist = hist.lock().unwrap();
        for t in 0..WRITERS {
            for k in 0..KEYS {
                let (ops, acked) = &hist[t * KEYS + k];
                // Acceptable: the state after the last acknowledged op, or after the one in flight.
                let state_after = |n: usize| if n == 0 { None } else { ops[n - 1].clone() };
                let mut allowed = vec![state_after(*acked)];
                if ops.len() > *acked {
                    allowed.push(state_after(*acked + 1));
                }
                let key = format!("t{t}-k{k}").into_bytes();
                let got = match c.get(&key) {
                    Reply::Bulk(v) => v,
                    other => panic!("trial {trial}: GET {t}-{k}: {other:?}"),
                };
                assert!(
                    allowed.contains(&got),
                    "trial {trial} (sync {sync}): key t{t}-k{k} reads {:?}, acked {acked} of {} ops",
                    got.as_ref()
                        .map(|v| String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned()),
                    ops.len()
                );
            }
        }
        let report = c.c(&["NSCHECK"]).text();
        assert!(report.contains("problems: 0"), "trial {trial}: {report}");
    }
}
