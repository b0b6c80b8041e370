//! Memory per key, and reopen times (snapshot, replay, cold) on the same folder.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use super::super::R;
use super::super::load::{connect, key16, load};
use super::super::opts::MIB;
use super::super::report::{Other, Report};
use super::super::servers::{Env, Server};
use super::super::stats::{fmt_stat, secs, stat};
use super::super::util::{dir_bytes, sync_disks};

/// Memory (10M 16-byte keys, 1-byte values, user mode) and reopen times on the same folder.
pub(crate) fn bench_memory_reopen(e: &Env, rep: &mut Report) -> R<()> {
    let o = &e.o;
    let n = o.mem_keys();
    let d = e.fresh("zdb-mem");
    eprintln!("== memory: {n} 16-byte keys, 1-byte values, --mode user");
    let (s, _) = e.zdb(&d, &["--mode", "user"])?;
    let rss0 = s.rss_bytes()?;
    let t = Instant::now();
    let errs = load(s.port, n, 2, key16, b"v")?;
    let load_s = t.elapsed().as_secs_f64();
    if errs > 0 {
        return Err(format!("{errs} errors while loading").into());
    }
    thread::sleep(Duration::from_millis(200));
    let rss1 = s.rss_bytes()?;
    let per_key = (rss1 as f64 - rss0 as f64) / n as f64 - 16.0;
    eprintln!(
        "  loaded in {load_s:.1} s ({:.0} keys/s); RSS {} -> {} MiB: {per_key:.1} B/key beyond the key",
        n as f64 / load_s,
        rss0 / MIB,
        rss1 / MIB
    );
    if o.has("memory") {
        rep.other.push(Other {
            item: format!(
                "RSS per live key beyond the 16-byte key, {}M keys, user mode",
                n / 1_000_000
            ),
            reference: "C 0-db ≈170 B/key (3M keys in 490 MiB)".into(),
            zdb: format!("{per_key:.1} B (RSS {} → {} MiB)", rss0 / MIB, rss1 / MIB),
            ratio: format!("{:.2}x", (per_key + 16.0) / 170.0),
            target: "≤40 B + key".into(),
            met: Some(per_key <= 40.0),
        });
        rep.notes.push(format!(
            "memory load: {n} keys in {load_s:.1} s over 2 pipelined connections"
        ));
    }
    let stop = s.stop()?;
    eprintln!(
        "  stopped in {:.2} s; data+index {} MiB",
        stop.as_secs_f64(),
        dir_bytes(&d) / MIB
    );
    if !o.has("reopen") {
        return Ok(());
    }
    eprintln!("== reopen {n} keys");
    let check = |s: &Server| -> R<()> {
        let got = connect(s.port)?.dbsize()?;
        if got != n {
            return Err(format!("after reopen DBSIZE is {got}, expected {n}").into());
        }
        Ok(())
    };
    // The clean stop above saved the key map snapshot; without it (after a crash, or when
    // another program changed the files) the index is replayed.
    let snapshot = d.join("index/default/zdb-keymap.snapshot");
    let mut replay = Vec::new();
    let mut save = Vec::new();
    for run in 0..o.runs {
        let _ = fs::remove_file(&snapshot);
        let (s, t) = e.zdb(&d, &["--mode", "user"])?;
        check(&s)?;
        eprintln!(
            "  warm reopen without snapshot {run}: {:.3} s",
            t.as_secs_f64()
        );
        replay.push(t.as_secs_f64());
        // This stop writes a fresh snapshot.
        save.push(s.stop()?.as_secs_f64());
    }
    let mut warm = Vec::new();
    for run in 0..o.runs {
        let (s, t) = e.zdb(&d, &["--mode", "user"])?;
        check(&s)?;
        eprintln!("  warm reopen {run}: {:.3} s", t.as_secs_f64());
        warm.push(t.as_secs_f64());
        s.stop()?;
    }
    let mut cold = Vec::new();
    for run in 0..3.min(o.runs) {
        sync_disks();
        if let Err(err) = fs::write("/proc/sys/vm/drop_caches", "3") {
            rep.notes
                .push(format!("cold reopen skipped: cannot drop caches ({err})"));
            break;
        }
        let (s, t) = e.zdb(&d, &["--mode", "user"])?;
        check(&s)?;
        eprintln!("  cold reopen {run}: {:.3} s", t.as_secs_f64());
        cold.push(t.as_secs_f64());
        s.stop()?;
    }
    let w = stat(&warm);
    rep.other.push(Other {
        item: format!(
            "reopen {}M keys, warm page cache, after a clean stop (snapshot), start → PING (s)",
            n / 1_000_000
        ),
        reference: "C 0-db 2.5 s for 3M keys".into(),
        zdb: fmt_stat(Some(w), secs),
        ratio: "–".into(),
        target: "≤2 s".into(),
        met: Some(w.med <= 2.0),
    });
    rep.other.push(Other::report(
        format!(
            "reopen {}M keys, warm, no snapshot (index replay) (s)",
            n / 1_000_000
        ),
        fmt_stat(Some(stat(&replay)), secs),
    ));
    rep.other.push(Other::report(
        format!(
            "clean stop writing the {}M-key snapshot, SIGTERM → exit (s)",
            n / 1_000_000
        ),
        fmt_stat(Some(stat(&save)), secs),
    ));
    if !cold.is_empty() {
        rep.other.push(Other::report(
            format!(
                "reopen {}M keys, cold (drop_caches), after a clean stop, start → PING (s)",
                n / 1_000_000
            ),
            fmt_stat(Some(stat(&cold)), secs),
        ));
    }
    if !o.keep {
        let _ = fs::remove_dir_all(&d);
    }
    Ok(())
}
