//! The benchmark sections, one file each, and what they share: alternating runs between
//! peers, progress lines, a row against redis.

mod large;
mod memory;
mod set_get;
mod sync;

pub(crate) use large::bench_large;
pub(crate) use memory::bench_memory_reopen;
pub(crate) use set_get::{bench_get, bench_set};
pub(crate) use sync::bench_sync;

use super::R;
use super::redis_benchmark::Sample;
use super::report::Row;
use super::stats::stat;

/// Runs `f(run, server_index)` for `runs` rounds over `k` servers, alternating the order.
pub(crate) fn alternate(runs: usize, k: usize, mut f: impl FnMut(usize, usize) -> R<()>) -> R<()> {
    for run in 0..runs {
        for j in 0..k {
            let which = if run % 2 == 0 { j } else { k - 1 - j };
            f(run, which)?;
        }
    }
    Ok(())
}

pub(crate) fn progress(what: &str, run: usize, who: &str, s: &Sample) {
    let b = s
        .bytes
        .map(|b| format!(", {b:.0} B appended/req"))
        .unwrap_or_default();
    eprintln!(
        "  {what} run {run} {who:>5}: {:>9.0} ops/s, {:.2} µs CPU/req{b}",
        s.ops, s.cpu_us
    );
}

pub(crate) fn vs_redis_row(
    workload: &str,
    r: &[Sample],
    z: &[Sample],
    ops_min: f64,
    cpu_max: f64,
) -> Row {
    let st = |v: &[Sample], f: fn(&Sample) -> f64| stat(&v.iter().map(f).collect::<Vec<_>>());
    let (po, zo, pc, zc) = (
        st(r, |s| s.ops),
        st(z, |s| s.ops),
        st(r, |s| s.cpu_us),
        st(z, |s| s.cpu_us),
    );
    let met = zo.med >= ops_min * po.med && zc.med <= cpu_max * pc.med;
    let bytes: Vec<f64> = z.iter().filter_map(|s| s.bytes).collect();
    let notes = if bytes.is_empty() {
        String::new()
    } else {
        let b = stat(&bytes);
        format!(
            "zdb appended {:.0} B/SET ({:.0}–{:.0})",
            b.med, b.min, b.max
        )
    };
    Row {
        workload: workload.into(),
        peer_ops: Some(po),
        zdb_ops: Some(zo),
        peer_cpu: Some(pc),
        zdb_cpu: Some(zc),
        target: format!("ops ≥{ops_min}x, CPU ≤{cpu_max}x"),
        met: Some(met),
        notes,
    }
}
