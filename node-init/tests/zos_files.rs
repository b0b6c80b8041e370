//! `zos` writing files named as the README names them: bare names in the working folder.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::Command;

fn zos(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zos"))
        .args(args)
        .current_dir(cwd)
        .env_remove("ZOS_NODE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn key_new_and_sign_take_bare_file_names() {
    let d = tempfile::tempdir().unwrap();
    let (ok, out, err) = zos(d.path(), &["key", "new", "alice.key"]);
    assert!(ok, "zos key new alice.key failed: {err}");
    let owner = out.trim();
    assert!(
        owner.len() == 64 && owner.bytes().all(|b| b.is_ascii_hexdigit()),
        "no public key printed: {out:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    let key = d.path().join("alice.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // `zos key show` reads back the same key.
    let (ok, shown, _) = zos(d.path(), &["key", "show", "alice.key"]);
    assert!(ok && shown.trim() == owner, "{shown}");

    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/blueprints/zdb.json"),
    )
    .unwrap();
    std::fs::write(d.path().join("mydb.json"), text.replace("OWNER_KEY", owner)).unwrap();
    let (ok, out, err) = zos(d.path(), &["sign", "mydb.json", "--key", "alice.key"]);
    assert!(ok, "zos sign mydb.json failed: {err}");
    assert!(out.contains("1 signature(s)"), "{out}");
    let signed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("mydb.json")).unwrap()).unwrap();
    assert_eq!(signed["signatures"].as_array().unwrap().len(), 1);
    // Nothing but the two files: no temp file left behind.
    let mut names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["alice.key", "mydb.json"]);
    // A second `key new` on the same name refuses and keeps the key.
    let (ok, _, err) = zos(d.path(), &["key", "new", "alice.key"]);
    assert!(!ok && err.contains("exists already"), "{err}");
}
