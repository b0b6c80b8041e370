//! zdb vs redis-server (and fio) benchmark harness. See benches/README.md.
//!
//! ```text
//! cargo build --release -p zdb
//! cargo run --release -p benches --bin zdb-bench -- [--quick] [--only set,get,pipeline,sync,large,memory,reopen]
//! ```
//!
//! Servers run pinned to `--server-cpu` (default 0) with `taskset`; redis-benchmark, fio's
//! peer clients and this harness's own loaders run on `--client-cpu` (default 1). fio itself
//! is pinned to the server CPU (it is the writer being compared with zdb). Every server is
//! killed when the harness exits.
//!
//! Modules: `opts` (flags, sizes), `servers` (start, measure, stop), `load` (the harness's own
//! loaders, through zdb-client), `redis_benchmark` (one measured run), `sections` (one file
//! per section), `report` (the markdown), `stats` and `util`.

mod load;
mod opts;
mod redis_benchmark;
mod report;
mod sections;
mod servers;
mod stats;
mod util;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use opts::{MIB, Opts};
use report::Report;
use sections::{bench_get, bench_large, bench_memory_reopen, bench_set, bench_sync};
use servers::Env;
use util::{clk_tck, free_disk, machine, sh};

/// The harness's error type: anything, with a message for the operator.
pub type R<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Removes the work folder at the end unless `--keep`.
struct Cleanup(PathBuf, bool);
impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.1 {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs the harness with the process's arguments; prints and writes the report.
pub fn run() -> R<()> {
    let o = Opts::parse()?;
    if !o.zdb.exists() {
        return Err(format!(
            "{} missing: run `cargo build --release -p zdb` first",
            o.zdb.display()
        )
        .into());
    }
    for (tool, pkg) in [
        ("redis-server", "redis-server"),
        ("redis-benchmark", "redis-tools"),
        ("fio", "fio"),
        ("taskset", "util-linux"),
    ] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()?
            .success()
        {
            continue;
        }
        eprintln!("{tool} missing: apt-get install -y {pkg}");
        let ok = Command::new("apt-get")
            .args(["install", "-y", pkg])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!("{tool} missing; install the Debian package {pkg}").into());
        }
    }
    fs::create_dir_all(&o.workdir)?;
    let _cleanup = Cleanup(o.workdir.clone(), o.keep);
    let logs = o.workdir.join("logs");
    fs::create_dir_all(&logs)?;
    // This process (and the loader threads it starts) runs on the client CPU.
    sh(
        "taskset",
        &[
            "-a",
            "-p",
            "-c",
            &o.client_cpu,
            &std::process::id().to_string(),
        ],
    )?;
    let df = sh("df", &["-T", "-h", &o.workdir.display().to_string()]).unwrap_or_default();
    eprintln!(
        "workdir {} ({} MiB free)",
        o.workdir.display(),
        free_disk(&o.workdir) / MIB
    );
    let e = Env { o: o.clone(), logs };
    let mut rep = Report::default();
    let started = Instant::now();

    if o.has("set") {
        bench_set(&e, &mut rep, 1)?;
    }
    if o.has("get") {
        bench_get(&e, &mut rep, 1)?;
    }
    if o.has("pipeline") {
        bench_set(&e, &mut rep, 16)?;
        bench_get(&e, &mut rep, 16)?;
    }
    if o.has("sync") {
        bench_sync(&e, &mut rep)?;
    }
    if o.has("large") {
        bench_large(&e, &mut rep)?;
    }
    if o.has("memory") || o.has("reopen") {
        bench_memory_reopen(&e, &mut rep)?;
    }

    rep.notes.push(format!(
        "medians of {} runs (min–max in brackets), runs alternate between peers; servers pinned with \
         `taskset -c {}`, redis-benchmark and the harness's loaders with `taskset -c {}`; CPU = utime+stime \
         from /proc/PID/stat (CLK_TCK {}) over the measured requests",
        o.runs,
        o.server_cpu,
        o.client_cpu,
        clk_tck()
    ));
    let cmdline: Vec<String> = std::env::args().skip(1).collect();
    let mut md = format!(
        "### zdb-bench{} ({})\n\nCommand: `cargo run --release -p benches --bin zdb-bench --{}`, {:.0} s.\n\n\
         Machine: {}\n```\n{}```\n\n",
        if o.quick { " --quick" } else { "" },
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
            .unwrap_or_default()
            .trim(),
        cmdline.iter().map(|a| format!(" {a}")).collect::<String>(),
        started.elapsed().as_secs_f64(),
        machine().replace('\n', "; ").trim_end_matches("; "),
        df
    );
    md.push_str(&rep.render());
    println!("{md}");
    if let Some(p) = o.out.parent() {
        fs::create_dir_all(p)?;
    }
    fs::write(&o.out, &md)?;
    eprintln!("written to {}", o.out.display());
    Ok(())
}
