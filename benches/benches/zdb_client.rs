//! zdb-client against the `redis` crate on the same zdb server: pipelined SET and GET of
//! 100-byte values (1000 per pipeline), and one GET per round trip. Both are blocking
//! clients over TCP on 127.0.0.1; the pipelines are built once and run again and again, so
//! the figures are each client's encoding, decoding and I/O (plus the server).
//!
//! ```text
//! cargo build --release -p zdb
//! cargo bench -p benches --bench zdb_client
//! ```
//!
//! The server is `$ZDB_BIN`, else `target/release/zdb`, else `target/debug/zdb`.
#![expect(clippy::unwrap_used, reason = "a benchmark that fails stops")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};

const N: usize = 1000;

/// The server, its port, and its folder (removed when dropped).
struct Zdb {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Zdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn zdb() -> Zdb {
    let bin = std::env::var_os("ZDB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
            ["release/zdb", "debug/zdb"]
                .iter()
                .map(|p| target.join(p))
                .find(|p| p.is_file())
                .expect("no zdb binary: cargo build --release -p zdb")
        });
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--index")
        .arg(dir.path().join("index"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "zdb did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Zdb {
        child,
        port,
        _dir: dir,
    }
}

fn key(i: usize) -> String {
    format!("key:{i:012}")
}

fn clients(c: &mut Criterion) {
    let z = zdb();
    let addr = format!("127.0.0.1:{}", z.port);
    let mut ours = zdb_client::Client::connect(zdb_client::Config::tcp(&addr)).unwrap();
    let theirs = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let mut theirs = theirs.get_connection().unwrap();
    let value = [b'x'; 100];

    let mut set_ours = zdb_client::Pipeline::new();
    let mut get_ours = zdb_client::Pipeline::new();
    let mut set_theirs = redis::pipe();
    let mut get_theirs = redis::pipe();
    for i in 0..N {
        set_ours.set(key(i).as_bytes(), &value);
        get_ours.get(key(i).as_bytes());
        set_theirs.cmd("SET").arg(key(i)).arg(&value[..]);
        get_theirs.cmd("GET").arg(key(i));
    }

    let mut g = c.benchmark_group("pipelined_set_100B_x1000");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("zdb-client", |b| {
        b.iter(|| black_box(ours.pipeline(&set_ours).unwrap()))
    });
    g.bench_function("redis", |b| {
        b.iter(|| black_box(set_theirs.query::<Vec<redis::Value>>(&mut theirs).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("pipelined_get_100B_x1000");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("zdb-client", |b| {
        b.iter(|| black_box(ours.pipeline(&get_ours).unwrap()))
    });
    g.bench_function("redis", |b| {
        b.iter(|| black_box(get_theirs.query::<Vec<redis::Value>>(&mut theirs).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("get_100B_round_trip");
    g.throughput(Throughput::Elements(1));
    let k = key(7);
    g.bench_function("zdb-client", |b| {
        b.iter(|| black_box(ours.get(k.as_bytes()).unwrap()))
    });
    g.bench_function("redis", |b| {
        b.iter(|| {
            black_box(
                redis::cmd("GET")
                    .arg(&k)
                    .query::<Option<Vec<u8>>>(&mut theirs)
                    .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, clients);
criterion_main!(benches);
