//! Farm put/get of a 64 MiB object across six zdb nodes on loopback (3-member etcd, 4+2,
//! 4 MiB stripes, random bytes: zstd gains nothing) against plain zdb SETs/GETs of the same
//! bytes in 1 MiB values to one zdb, in the same run. Targets: put >= 0.5x, get >= 0.7x of
//! the plain zdb rates. Needs `etcd` and a release zdb (`cargo build --release -p zdb`, or
//! `$ZDB_BIN`). Run: `cargo bench -p benches --bench farm_store` (etcd's data on /dev/shm;
//! `FARM_BENCH_ETCD_DIR=/tmp` puts it on the zdbs' disk).

use farm::codec::seal::StoreKey;
use farm::meta::Meta;
use farm::meta::registry::Registration;
use farm::ops::Farm;
use farm::store::zdb::ZdbStoreConfig;
use farm::testing::EtcdCluster;
use farm::testing::zdb::{ZdbServer, node_record};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use zdb_client::{AsyncClient, Config, Secret};

const SIZE: usize = 64 << 20;
const CHUNK: usize = 1 << 20;
const ROUNDS: usize = 3;
const NS: &str = "farm";
const PW: &str = "bench-pw";

fn release_zdb() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ZDB_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    Some(target.join("release/zdb")).filter(|p| p.is_file())
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn main() {
    let (Some(bin), true) = (release_zdb(), farm::testing::has_etcd()) else {
        eprintln!("farm_store: needs etcd and a release zdb (cargo build --release -p zdb)");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(bin));
}

async fn run(bin: PathBuf) {
    // etcd on a disk of its own (`FARM_BENCH_ETCD_DIR`, default the RAM disk /dev/shm), as
    // in a farm: on this one-disk machine its fsyncs otherwise wait behind the 96 MiB of
    // writeback a put starts in the zdbs, which is most of the put's time.
    let etcd_dir = std::env::var_os("FARM_BENCH_ETCD_DIR")
        .map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from);
    eprintln!("farm_store: etcd data under {}", etcd_dir.display());
    let cluster = EtcdCluster::start_in(3, &etcd_dir).expect("etcd");
    let zdbs: Vec<ZdbServer> = (0..7)
        .map(|_| {
            let z = ZdbServer::start(&bin).expect("zdb");
            z.provision(NS, PW).expect("provision");
            z
        })
        .collect();
    let (plain, nodes) = zdbs.split_first().expect("zdbs");
    let endpoints = cluster.endpoints();
    let meta = Meta::connect(&endpoints, "bench").await.expect("meta");
    let mut regs = Vec::new();
    for (i, z) in nodes.iter().enumerate() {
        let rec = node_record(&format!("n{i}"), z.address(), NS, None);
        regs.push(
            Registration::start(&meta, rec, 1 << 40, 10)
                .await
                .expect("register"),
        );
    }
    let cfg = ZdbStoreConfig {
        password: Some(Secret::new(PW)),
        ..ZdbStoreConfig::default()
    };
    let f = Farm::connect(&endpoints, "bench", cfg).await.expect("farm");
    let key = StoreKey::generate();
    let mut data = vec![0u8; SIZE];
    nodeutil::random::fill(&mut data);

    let (mut put, mut get, mut set, mut zget) =
        (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    for r in 0..ROUNDS {
        // The copy is made before the clock starts: the plain SETs send from `data` too.
        let input = std::io::Cursor::new(data.clone());
        let t0 = Instant::now();
        f.put(&format!("o{r}"), input, &key).await.expect("put");
        put = put.min(t0.elapsed());
        let t0 = Instant::now();
        let mut reader = f.open(&format!("o{r}"), &key).await.expect("open");
        let mut n = 0;
        while let Some(s) = reader.next_stripe().await.expect("stripe") {
            n += s.len();
        }
        get = get.min(t0.elapsed());
        assert_eq!(n, SIZE);
    }

    let mut c = AsyncClient::connect(
        Config::tcp(plain.address())
            .with_namespace(NS)
            .with_password(PW)
            .with_secure_auth(),
    )
    .await
    .expect("zdb");
    for r in 0..ROUNDS {
        let t0 = Instant::now();
        for (i, chunk) in data.chunks(CHUNK).enumerate() {
            c.set(format!("{r}-{i}").as_bytes(), chunk)
                .await
                .expect("set");
        }
        set = set.min(t0.elapsed());
        let t0 = Instant::now();
        let mut n = 0;
        for i in 0..SIZE / CHUNK {
            n += c
                .get(format!("{r}-{i}").as_bytes())
                .await
                .expect("get")
                .map_or(0, |v| v.len());
        }
        zget = zget.min(t0.elapsed());
        assert_eq!(n, SIZE);
    }
    let (p, g, s, zg) = (
        mib_s(SIZE, put),
        mib_s(SIZE, get),
        mib_s(SIZE, set),
        mib_s(SIZE, zget),
    );
    println!("farm_store: 64 MiB, best of {ROUNDS}, MiB/s");
    println!(
        "  farm put (4+2 over 6 zdbs)   {p:8.1}   plain zdb SET x64 1 MiB {s:8.1}   ratio {:.2} (target >= 0.5)",
        p / s
    );
    println!(
        "  farm get                     {g:8.1}   plain zdb GET x64 1 MiB {zg:8.1}   ratio {:.2} (target >= 0.7)",
        g / zg
    );
    for reg in regs {
        reg.stop().await;
    }
}
