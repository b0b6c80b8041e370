//! The zdb store against the workspace's own `zdb` server binary.
//!
//! The binary is `$ZDB_BIN`, else `target/{debug,release}/zdb` (built by
//! `cargo build -p zdb`). Without it the test is skipped, except under CI=true.
#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fails, ok};
use flist_fuse::store::Store;
use zdb_client::{Client, Config};

fn zdb_bin() -> Option<PathBuf> {
    nodeutil::skip::workspace_binary("zdb")
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn zdb_store_round_trip() {
    let bin = zdb_bin();
    if nodeutil::skip::unless(bin.is_some(), "the zdb binary (cargo build -p zdb)") {
        return;
    }
    let Some(bin) = bin else { return };
    let t = common::tmp();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _srv = Server(
        Command::new(&bin)
            .args([
                "--listen",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--data",
            ])
            .arg(t.path().join("data"))
            .arg("--index")
            .arg(t.path().join("index"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start zdb"),
    );
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        match Client::connect(Config::tcp(&addr)) {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => panic!("zdb did not start: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // Connected is not loaded: until zdb has loaded its namespaces it answers -LOADING.
    loop {
        match c.nsnew("blocks") {
            Ok(_) => break,
            Err(e) if e.is_loading() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("NSNEW: {e}"),
        }
    }

    // Store API: put, identical put (nil reply), exists, get, batch.
    let url = format!("zdb://{addr}/blocks");
    let st = flist_fuse::store::zdb::ZdbStore::open(&url).unwrap();
    let data = b"some block".to_vec();
    let id = *blake3::hash(&data).as_bytes();
    assert!(!st.exists(&id).unwrap());
    st.put(&id, &data).unwrap();
    st.put(&id, &data).unwrap();
    assert!(st.exists(&id).unwrap());
    assert_eq!(st.get(&id).unwrap(), data);
    let batch: Vec<([u8; 32], Vec<u8>)> = (0..100u64)
        .map(|i| {
            let d = common::noise(1000 + i as usize, i);
            (*blake3::hash(&d).as_bytes(), d)
        })
        .collect();
    st.put_batch(&batch).unwrap();
    let ids: Vec<[u8; 32]> = batch.iter().map(|b| b.0).collect();
    for (r, (_, d)) in st.get_batch(&ids).into_iter().zip(&batch) {
        assert_eq!(&r.unwrap(), d);
    }
    assert!(st.get(&[7u8; 32]).is_err());

    // Through the CLI: pack to zdb, verify, unpack.
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/big"), common::noise(3_000_000, 5)).unwrap();
    std::fs::write(src.join("d/copy"), common::noise(3_000_000, 5)).unwrap();
    std::fs::write(src.join("small"), b"tiny").unwrap();
    let fl = t.path().join("z.fl");
    ok(flist!("pack", "--quiet", "--store", url, "-o", fl, src));
    ok(flist!("verify", fl));
    let out = t.path().join("out");
    ok(flist!("unpack", fl, out));
    assert_eq!(
        std::fs::read(out.join("d/copy")).unwrap(),
        std::fs::read(src.join("d/big")).unwrap()
    );
    // A namespace that does not exist is a clear error naming the file.
    fails(
        flist!("verify", "--store", format!("zdb://{addr}/nope"), fl),
        "z.fl",
    );
}
