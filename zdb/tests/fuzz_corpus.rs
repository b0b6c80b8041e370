//! Replays the committed cargo-fuzz corpus (`zdb/fuzz/corpus/`) through the same entry points
//! the fuzzers use: every input must be handled without a panic.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

#[test]
fn resp_corpus() {
    assert!(replay("resp", zdb::fuzzing::resp) > 10);
}

#[test]
fn load_corpus() {
    assert!(replay("load", zdb::fuzzing::load) > 10);
}
