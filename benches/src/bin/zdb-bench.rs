//! zdb vs redis-server (and fio) benchmark harness: see `benches::zdb_bench` and
//! benches/README.md.

fn main() {
    if let Err(e) = benches::zdb_bench::run() {
        eprintln!("zdb-bench: {e}");
        std::process::exit(1);
    }
}
