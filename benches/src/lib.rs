//! benches: the zdb harness (`zdb_bench`, run by the `zdb-bench` binary); the criterion
//! benchmarks live in `benches/`.

pub mod zdb_bench;
