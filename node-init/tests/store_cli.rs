//! `zos store` end to end: a real 3-member etcd, six real zdb servers registered as farm
//! nodes, and the `zos` binary: keygen, put of a multi-stripe file, ls, get to a file and to
//! stdout, status, a get with two nodes killed, a wrong key that reads nothing and leaves no
//! file, rm.

use farm::meta::Meta;
use farm::meta::registry::Registration;
use farm::testing::EtcdCluster;
use farm::testing::zdb::{ZdbServer, node_record, zdb_bin};
use std::path::Path;
use std::process::{Command, Output};

const NS: &str = "farm";
const PW: &str = "ns-secret";

struct Env {
    etcd: String,
    farm: String,
    dir: tempfile::TempDir,
}

impl Env {
    fn zos(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new(env!("CARGO_BIN_EXE_zos"))
            .arg("store")
            .args(args)
            .env("ZOS_ETCD", &self.etcd)
            .env("ZOS_FARM", &self.farm)
            .env("ZOS_STORE_PASSWORD_FILE", d.join("pw"))
            .env("ZOS_STORE_KEY", d.join("key"))
            .output()
            .expect("run zos")
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let o = self.zos(args);
        assert!(
            o.status.success(),
            "zos store {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }
}

#[test]
fn put_ls_get_status_rm_through_zos() {
    let bin = zdb_bin();
    if nodeutil::skip::unless(farm::testing::has_etcd(), "etcd (Debian etcd-server)")
        || nodeutil::skip::unless(bin.is_some(), "zdb binary (cargo build -p zdb)")
    {
        return;
    }
    let Some(bin) = bin else { return };
    let cluster = EtcdCluster::start(3).expect("etcd");
    let mut zdbs: Vec<ZdbServer> = (0..6)
        .map(|_| {
            let z = ZdbServer::start(&bin).expect("zdb");
            z.provision(NS, PW).expect("provision");
            z
        })
        .collect();
    let env = Env {
        etcd: cluster.endpoints().join(","),
        farm: format!("t{}", nodeutil::random::hex(6)),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _regs: Vec<Registration> = rt.block_on(async {
        let meta = Meta::connect(&cluster.endpoints(), &env.farm)
            .await
            .expect("meta");
        let mut regs = Vec::new();
        for (i, z) in zdbs.iter().enumerate() {
            regs.push(
                Registration::start(
                    &meta,
                    node_record(&format!("n{i}"), z.address(), NS, None),
                    1 << 30,
                    5,
                )
                .await
                .expect("register"),
            );
        }
        regs
    });

    let d = env.dir.path();
    std::fs::write(d.join("pw"), format!("{PW}\n")).expect("pw");
    env.ok(&["keygen", &d.join("key").to_string_lossy()]);
    assert!(
        !env.zos(&["keygen", &d.join("key").to_string_lossy()])
            .status
            .success()
    );
    // Two full stripes and a bit (4 MiB stripes by default).
    let mut data = vec![0u8; 9 * 1024 * 1024 + 7];
    nodeutil::random::fill(&mut data);
    std::fs::write(d.join("in"), &data).expect("input");

    env.ok(&["put", "docs/big", &d.join("in").to_string_lossy()]);
    let ls = String::from_utf8_lossy(&env.ok(&["ls"])).into_owned();
    assert!(
        ls.starts_with(&format!("docs/big\t{}\t", data.len())),
        "{ls}"
    );
    assert_eq!(String::from_utf8_lossy(&env.ok(&["ls", "other"])), "");

    let out = d.join("out");
    env.ok(&["get", "docs/big", &out.to_string_lossy()]);
    assert!(std::fs::read(&out).expect("out") == data, "get to a file");
    assert!(env.ok(&["get", "docs/big", "-"]) == data, "get to stdout");

    let status = String::from_utf8_lossy(&env.ok(&["status"])).into_owned();
    assert!(status.starts_with("farm: 6 nodes"), "{status}");
    assert_eq!(status.matches("\tup\t").count(), 6, "{status}");

    // Any 4 of the 6 shards are enough.
    zdbs[1].kill();
    zdbs[4].kill();
    let out2 = d.join("out2");
    env.ok(&["get", "docs/big", &out2.to_string_lossy()]);
    assert!(
        std::fs::read(&out2).expect("out2") == data,
        "get with 2 nodes down"
    );

    // Someone else's key reads nothing and leaves no file behind.
    let other = d.join("other-key");
    env.ok(&["keygen", &other.to_string_lossy()]);
    let wrong = Command::new(env!("CARGO_BIN_EXE_zos"))
        .args(["store", "get", "--key"])
        .arg(&other)
        .args(["docs/big"])
        .arg(d.join("stolen"))
        .env("ZOS_ETCD", &env.etcd)
        .env("ZOS_FARM", &env.farm)
        .env("ZOS_STORE_PASSWORD_FILE", d.join("pw"))
        .output()
        .expect("zos");
    assert!(!wrong.status.success());
    assert!(!d.join("stolen").exists());
    assert_no_partial(d);

    env.ok(&["rm", "docs/big"]);
    assert_eq!(String::from_utf8_lossy(&env.ok(&["ls"])), "");
    let gone = env.zos(&["get", "docs/big", "-"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    assert!(!env.zos(&["rm", "docs/big"]).status.success());
}

fn assert_no_partial(d: &Path) {
    for e in std::fs::read_dir(d).expect("dir").flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(!n.contains(".zos-"), "partial file left: {n}");
    }
}
