//! Durable SETs: zdb --sync against redis appendfsync always (and zdb without --sync).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use super::super::R;
use super::super::opts::C_ZDB_SYNC_OPS;
use super::super::redis_benchmark::measured;
use super::super::report::Report;
use super::super::servers::Env;
use super::super::stats::{fmt_stat, kops, stat};
use super::super::util::sh;
use super::{alternate, progress, vs_redis_row};

/// System-wide count of fsync + fdatasync calls while `f` runs (via `perf stat -a`; None if perf
/// is unavailable). Other processes' fsyncs are counted too, so this is an upper bound.
pub(crate) fn count_fsyncs<T>(dir: &Path, f: impl FnOnce() -> R<T>) -> R<(T, Option<u64>)> {
    let out = dir.join("fsync-count.csv");
    let perf = Command::new("perf")
        .args([
            "stat",
            "-a",
            "-x,",
            "-e",
            "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
            "-o",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut perf) = perf else {
        return Ok((f()?, None));
    };
    thread::sleep(Duration::from_millis(300));
    let r = f();
    let _ = sh("kill", &["-INT", &perf.id().to_string()]);
    let _ = perf.wait();
    let n = fs::read_to_string(&out).ok().and_then(|t| {
        let v: Vec<u64> = t
            .lines()
            .filter(|l| l.contains("sys_enter_f"))
            .filter_map(|l| l.split(',').next()?.parse().ok())
            .collect();
        (v.len() == 2).then(|| v.iter().sum())
    });
    Ok((r?, n))
}

pub(crate) fn bench_sync(e: &Env, rep: &mut Report) -> R<()> {
    let o = &e.o;
    let n = o.n_sync();
    eprintln!("== SET --sync, n={n}: redis (appendfsync always), zdb --sync, zdb without --sync");
    let (mut r, mut z, mut zn, mut fsyncs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    alternate(o.runs, 3, |run, who| {
        match who {
            0 => {
                let s = e.redis(&e.fresh("redis-sync"), true)?;
                let m = measured(o, &s, "set", n, 100_000_000, 1, None)?;
                progress("SET sync", run, "redis", &m);
                r.push(m);
            }
            1 => {
                let d = e.fresh("zdb-sync");
                let (s, _) = e.zdb(&d, &["--sync"])?;
                let (m, f) = count_fsyncs(&o.workdir, || {
                    measured(o, &s, "set", n, 100_000_000, 1, Some(&d))
                })?;
                progress("SET sync", run, "zdb", &m);
                if let Some(f) = f {
                    eprintln!(
                        "    {f} fsync+fdatasync calls system-wide ({:.3} per SET)",
                        f as f64 / n as f64
                    );
                    fsyncs.push(f as f64 / n as f64);
                }
                s.stop()?;
                z.push(m);
            }
            _ => {
                let d = e.fresh("zdb-nosync");
                let (s, _) = e.zdb(&d, &[])?;
                let m = measured(o, &s, "set", n, 100_000_000, 1, Some(&d))?;
                progress("SET nosync", run, "zdb", &m);
                s.stop()?;
                zn.push(m);
            }
        }
        Ok(())
    })?;
    let mut row = vs_redis_row(
        "SET -c50 durable (redis: appendfsync always; zdb: --sync)",
        &r,
        &z,
        0.0,
        f64::MAX,
    );
    let zo = row.zdb_ops.map_or(0.0, |s| s.med);
    row.target = format!(
        "zdb ≥ {:.0}k/s (20x C 0-db --sync)",
        20.0 * C_ZDB_SYNC_OPS / 1000.0
    );
    row.met = Some(zo >= 20.0 * C_ZDB_SYNC_OPS);
    if !fsyncs.is_empty() {
        let f = stat(&fsyncs).med;
        row.notes.push_str(&format!(
            "; {f:.3} fsync+fdatasync per SET (perf, system-wide); "
        ));
        if f < 1e-3 {
            row.notes
                .push_str("**zdb --sync made no fsync calls: not durable**; ");
            row.met = Some(false);
        }
    }
    let nos = stat(&zn.iter().map(|s| s.ops).collect::<Vec<_>>());
    // The fsync notes above stay: the ratio goes in front of them.
    row.notes = format!(
        "{:.1}x C 0-db --sync; zdb without --sync in the same runs: {}; {}",
        zo / C_ZDB_SYNC_OPS,
        fmt_stat(Some(nos), kops),
        row.notes.trim_start_matches("; ")
    );
    row.notes = row.notes.trim_end_matches("; ").to_string();
    rep.rows.push(row);
    Ok(())
}
