//! `node-init --dev DIR` from the shell the README leaves a user in (ZOS_NODE exported), and
//! `--destroy`. The dev node's storaged is a stand-in that exits at once, so no root is needed:
//! what is checked is the folder node-init prepares and removes.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn node_init(args: &[&std::ffi::OsStr], zos_node: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_node-init"))
        .args(args)
        .env("ZOS_NODE", zos_node)
        .output()
        .unwrap()
}

#[test]
fn dev_works_with_zos_node_exported_and_destroy_removes_the_node() {
    let d = tempfile::tempdir().unwrap();
    let fake = d.path().join("fake-storaged");
    std::fs::write(&fake, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = d.path().join("node");
    let elsewhere = d.path().join("elsewhere");
    for zos_node in [&dir, &elsewhere] {
        let out = node_init(
            &[
                "--dev".as_ref(),
                dir.as_os_str(),
                "--storaged-bin".as_ref(),
                fake.as_os_str(),
            ],
            zos_node,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("cannot be used with"), "{err}");
        // It went as far as starting storaged, in DIR.
        assert!(err.contains("cannot start storaged"), "{err}");
        assert!(dir.join("storaged.json").exists() && dir.join("identity.key").exists());
        assert!(dir.join("disks/hdd0.img").exists());
        assert!(
            !elsewhere.exists(),
            "ZOS_NODE's folder used instead of --dev's"
        );
    }
    // An explicit --node beside --dev is a mistake, said so.
    let out = node_init(
        &[
            "--dev".as_ref(),
            dir.as_os_str(),
            "--node".as_ref(),
            elsewhere.as_os_str(),
        ],
        &dir,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not both"));

    let out = node_init(
        &["--dev".as_ref(), dir.as_os_str(), "--destroy".as_ref()],
        &dir,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("folder removed"), "{text}");
    assert!(!dir.exists());
    // A folder that is not a node is refused and kept.
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("notes.txt"), b"mine").unwrap();
    let out = node_init(
        &[
            "--dev".as_ref(),
            elsewhere.as_os_str(),
            "--destroy".as_ref(),
        ],
        &dir,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not look like a dev node"));
    assert!(elsewhere.join("notes.txt").exists());
}
