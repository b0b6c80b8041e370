//! A daemon without containers (no root needed): what a failing helper program does to it.
//! The `flist` it runs is a script that fails the way the test needs.

use bus::api::Empty;
use bus::api::compute::*;
use bus::api::health::{GetHealth, HealthStatus};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A computed daemon in a temporary folder, killed on drop.
struct Bare {
    dir: tempfile::TempDir,
    daemon: Child,
    client: bus::Client,
    flist: std::path::PathBuf,
    identity: String,
}

impl Bare {
    /// Starts computed with `flist_script` as its `flist` tool.
    fn start(flist_script: &str) -> Bare {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("flist-tool");
        std::fs::write(&tool, flist_script).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        // a real flist to pin (the mount is what fails)
        let (flist, identity) = computed::testing::tiny_flist(dir.path()).unwrap();
        let run = dir.path().join("run");
        let log = std::fs::File::create(dir.path().join("computed.log")).unwrap();
        let daemon = Command::new(env!("CARGO_BIN_EXE_computed"))
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--run")
            .arg(&run)
            .arg("--flist-bin")
            .arg(&tool)
            .arg("--netns-prefix")
            .arg(format!("cb{}-", std::process::id()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let socket = bus::service_socket(&run, "computed");
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "computed did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Bare {
            client: bus::Client::new(socket),
            dir,
            daemon,
            flist,
            identity,
        }
    }

    fn spec(&self, name: &str) -> ContainerSpec {
        let rw = self.dir.path().join("rw").join(name);
        std::fs::create_dir_all(&rw).unwrap();
        ContainerSpec {
            stores: vec!["zdb://me:hunter2@127.0.0.1:1/blocks".into()],
            ..computed::testing::spec(
                name,
                &self.flist,
                &self.identity,
                rw,
                vec!["/bin/true".into()],
            )
        }
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The end of a failing helper's stderr was cut 2000 bytes from its end with a byte slice,
/// which panics inside a multi-byte character, with the engine's lock held: the lock was
/// poisoned, every later call answered "engine lock poisoned", supervision stopped, and
/// health stayed `ok`.
#[tokio::test(flavor = "multi_thread")]
async fn a_helper_failing_with_multibyte_output_fails_its_create_and_nothing_else() {
    let b = Bare::start(
        "#!/bin/sh\n\
         echo \"cannot reach $*\" >&2\n\
         i=0; while [ $i -lt 1000 ]; do printf '€' >&2; i=$((i+1)); done\n\
         exit 1\n",
    );
    for name in ["first", "second"] {
        let e = b
            .client
            .call::<CreateContainer>(&b.spec(name))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("flist container start failed"), "{e}");
        assert!(e.ends_with("€€"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
    let list = b.client.call::<ListContainers>(&Empty {}).await.unwrap();
    let states: Vec<_> = list
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("first", ContainerState::Failed),
            ("second", ContainerState::Failed)
        ]
    );
    // health says what is wrong once supervision has looked
    let t0 = Instant::now();
    let health = loop {
        let h = b.client.call::<GetHealth>(&Empty {}).await.unwrap();
        if h.status != HealthStatus::Ok || t0.elapsed() > Duration::from_secs(10) {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    assert!(health.detail.unwrap().contains("failed containers"));
    // the failed containers are deleted cleanly
    for name in ["first", "second"] {
        b.client
            .call::<DeleteContainer>(&Name { name: name.into() })
            .await
            .unwrap();
    }
}
