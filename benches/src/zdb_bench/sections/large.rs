//! 1 MiB values: zdb against fio writing the same bytes in the same folder.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use super::super::R;
use super::super::load::zdb_large;
use super::super::opts::{MIB, Opts};
use super::super::report::{Other, Report};
use super::super::servers::Env;
use super::super::stats::{fmt_stat, mbs, stat};
use super::super::util::{clk_tck, dir_bytes, free_disk, settle};
use super::alternate;

/// fio sequential 1 MiB writes of `bytes` into `dir`; returns MiB/s.
pub(crate) fn fio(o: &Opts, dir: &Path, bytes: u64, fsync: bool) -> R<f64> {
    fs::create_dir_all(dir)?;
    let size = format!("--size={}M", bytes / MIB);
    let d = format!("--directory={}", dir.display());
    let mut a = vec![
        "-c",
        &o.server_cpu,
        "fio",
        "--name=w",
        "--rw=write",
        "--bs=1M",
        &size,
        &d,
        "--output-format=json",
    ];
    if fsync {
        a.push("--fsync=1");
    }
    let out = Command::new("taskset")
        .args(&a)
        .stderr(Stdio::inherit())
        .output()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let w = s
        .find("\"write\" : {")
        .ok_or("no write section in fio output")?;
    let b = s[w..].find("\"bw_bytes\"").ok_or("no bw_bytes")? + w;
    let num: String = s[b + 10..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Ok(num.parse::<f64>()? / MIB as f64)
}

pub(crate) fn bench_large(e: &Env, rep: &mut Report) -> R<()> {
    let o = &e.o;
    let bytes = o.large_bytes();
    let need = bytes * 2 + 2048 * MIB;
    let free = free_disk(&o.workdir);
    if free < need {
        rep.notes.push(format!(
            "large values skipped: {} MiB free, {} MiB needed",
            free / MIB,
            need / MIB
        ));
        return Ok(());
    }
    for durable in [false, true] {
        let mode = if durable {
            "--sync vs fio --fsync=1"
        } else {
            "buffered vs fio (no fsync)"
        };
        eprintln!(
            "== 1 MiB values, {} MiB, {mode}, {} runs each",
            bytes / MIB,
            o.runs
        );
        let (mut f, mut z, mut zc) = (Vec::new(), Vec::new(), Vec::new());
        alternate(o.runs, 2, |run, who| {
            if who == 0 {
                let d = e.fresh("fio");
                let v = fio(o, &d, bytes, durable)?;
                eprintln!("  large run {run}   fio: {v:.0} MiB/s");
                f.push(v);
                let _ = fs::remove_dir_all(&d);
            } else {
                let d = e.fresh("zdb-large");
                let (s, _) = e.zdb(&d, if durable { &["--sync"] } else { &[] })?;
                let t0 = s.cpu_ticks()?;
                let v = zdb_large(s.port, bytes, run)?;
                let cpu = (s.cpu_ticks()? - t0) as f64 * 1e6 / clk_tck() / (bytes / MIB) as f64;
                zc.push(cpu);
                let written = dir_bytes(&d);
                eprintln!(
                    "  large run {run}   zdb: {v:.0} MiB/s ({} MiB on disk, {cpu:.0} µs CPU/SET)",
                    written / MIB
                );
                s.stop()?;
                z.push(v);
                let _ = fs::remove_dir_all(&d);
            }
            settle();
            Ok(())
        })?;
        let (fs_, zs) = (stat(&f), stat(&z));
        let r = zs.med / fs_.med;
        rep.other.push(Other {
            item: format!(
                "1 MiB SET, {} MiB distinct values, 4 conns, {mode} (MiB/s)",
                bytes / MIB
            ),
            reference: format!("fio {}", fmt_stat(Some(fs_), mbs)),
            zdb: format!(
                "{} ({:.0} µs CPU/SET)",
                fmt_stat(Some(zs), mbs),
                stat(&zc).med
            ),
            ratio: format!("{r:.2}x"),
            target: if durable {
                "report".into()
            } else {
                "≥0.6x fio (also of its fastest run)".into()
            },
            // fio's buffered runs are bimodal on a host whose writeback speed varies (page-cache
            // speed or disk speed): a median that fell in the slow mode must not count as met.
            met: if durable {
                None
            } else {
                Some(r >= 0.6 && zs.med >= 0.6 * fs_.max)
            },
        });
    }
    Ok(())
}
