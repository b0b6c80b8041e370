//! Command-line options and the workload sizes they choose.

use std::path::{Path, PathBuf};

use super::R;

pub(crate) const SECTIONS: [&str; 7] = [
    "set", "get", "pipeline", "sync", "large", "memory", "reopen",
];
pub(crate) const MIB: u64 = 1 << 20;
/// C 0-db with `--sync` (from the issue): one fsync per write.
pub(crate) const C_ZDB_SYNC_OPS: f64 = 2500.0;

#[derive(Clone)]
pub(crate) struct Opts {
    pub(crate) quick: bool,
    pub(crate) only: Vec<String>,
    pub(crate) runs: usize,
    pub(crate) zdb: PathBuf,
    pub(crate) workdir: PathBuf,
    pub(crate) out: PathBuf,
    pub(crate) server_cpu: String,
    pub(crate) client_cpu: String,
    pub(crate) keep: bool,
}

impl Opts {
    pub(crate) fn parse() -> R<Opts> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest.parent().unwrap_or(manifest).to_path_buf();
        let mut o = Opts {
            quick: false,
            only: SECTIONS.iter().map(|s| s.to_string()).collect(),
            runs: 5,
            zdb: root.join("target/release/zdb"),
            workdir: std::env::temp_dir().join(format!("zdb-bench-{}", std::process::id())),
            out: root.join("target/zdb-bench.md"),
            server_cpu: "0".into(),
            client_cpu: "1".into(),
            keep: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let mut val = || it.next().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--quick" => o.quick = true,
                "--keep" => o.keep = true,
                "--only" => {
                    o.only = val()?.split(',').map(|s| s.trim().to_string()).collect();
                    for s in &o.only {
                        if !SECTIONS.contains(&s.as_str()) {
                            return Err(format!(
                                "unknown section {s}; known: {}",
                                SECTIONS.join(",")
                            )
                            .into());
                        }
                    }
                }
                "--runs" => o.runs = val()?.parse()?,
                "--zdb" => o.zdb = val()?.into(),
                "--workdir" => o.workdir = val()?.into(),
                "--out" => o.out = val()?.into(),
                "--server-cpu" => o.server_cpu = val()?,
                "--client-cpu" => o.client_cpu = val()?,
                "-h" | "--help" => {
                    println!(
                        "zdb-bench [--quick] [--only {}] [--runs N] [--zdb PATH] [--workdir DIR] \
                         [--out FILE] [--server-cpu N] [--client-cpu N] [--keep]",
                        SECTIONS.join(",")
                    );
                    std::process::exit(0);
                }
                _ => return Err(format!("unknown argument {a}").into()),
            }
        }
        Ok(o)
    }
    pub(crate) fn has(&self, s: &str) -> bool {
        self.only.iter().any(|x| x == s)
    }
    /// Requests per unpipelined redis-benchmark run.
    pub(crate) fn n_plain(&self) -> u64 {
        if self.quick { 50_000 } else { 500_000 }
    }
    /// Requests per pipelined (-P 16) run.
    pub(crate) fn n_pipe(&self) -> u64 {
        if self.quick { 500_000 } else { 4_000_000 }
    }
    pub(crate) fn n_sync(&self) -> u64 {
        if self.quick { 20_000 } else { 100_000 }
    }
    pub(crate) fn large_bytes(&self) -> u64 {
        if self.quick { 256 * MIB } else { 2048 * MIB }
    }
    pub(crate) fn mem_keys(&self) -> u64 {
        if self.quick { 1_000_000 } else { 10_000_000 }
    }
}
