//! End to end: a dev node (node-init --dev, storaged, zdb, computed), a signed zdb blueprint
//! deployed, used through redis-cli, grown, attacked, survived a node-init kill, and deleted;
//! then the node removed with `node-init --dev DIR --destroy`.
#![expect(clippy::unwrap_used, reason = "tests")]

use serde_json::Value;
use tests::{Node, World, example_blueprint, redis, require, storaged_pid};

fn blueprint(owner: &str, version: u64, size: u64) -> String {
    example_blueprint("zdb.json", owner, |v| {
        v["version"] = version.into();
        v["workloads"][0]["version"] = version.into();
        v["workloads"][0]["data"]["size"] = size.into();
        v["workloads"][0]["data"]["password"] = "e2e-pass".into();
    })
}

#[test]
fn zdb_blueprint_end_to_end() {
    if !require(&[]) {
        return;
    }
    let tmp = World::new();
    let dir = tmp.node_dir();
    let key = tmp.path().join("alice.key");
    let bob = tmp.path().join("bob.key");
    let mut node = Node::start(&dir);
    let owner = node.new_owner(&key);
    node.new_owner(&bob);
    let file = |name: &str, text: String| tmp.file(name, &text);
    let k = key.to_str().unwrap();

    // deploy a 1 GiB user-mode namespace with a password
    let v0 = file("v0.json", blueprint(&owner, 0, 1 << 30));
    let view = node.zos_json(&["deploy", &v0, "--key", k, "--wait", "--json"]);
    let result = &view["deployment"]["workloads"][0]["result"];
    assert_eq!(result["state"], "ok", "{view}");
    let (ns, addr, port) = (
        result["data"]["namespace"].as_str().unwrap().to_string(),
        result["data"]["address"].as_str().unwrap().to_string(),
        result["data"]["port"].as_u64().unwrap(),
    );
    let (_, shown) = node.zos(&["get", "mydb", "--json"]);
    assert!(!shown.contains("e2e-pass"), "password shown by zos get");

    // SET/GET with the password; refused without it
    let out = redis(
        &addr,
        port,
        &format!("SELECT {ns} e2e-pass\nSET k hello\nGET k\n"),
    );
    assert!(out.contains("hello"), "{out}");
    let out = redis(&addr, port, &format!("SELECT {ns}\nGET k\n"));
    assert!(!out.contains("hello"), "read without password: {out}");

    // grow with an update
    let v1 = file("v1.json", blueprint(&owner, 1, 2 << 30));
    let view = node.zos_json(&["deploy", &v1, "--key", k, "--wait", "--json"]);
    let result = &view["deployment"]["workloads"][0]["result"];
    assert_eq!(result["state"], "ok", "{view}");
    assert_eq!(result["data"]["size"].as_u64(), Some(2 << 30));
    let before = node.zos_json(&["get", "mydb", "--json"]);

    // forged, unsigned, replayed and wrong-signer blueprints are refused, nothing changes
    let v2 = file("v2.json", blueprint(&owner, 2, 3 << 30));
    assert!(node.zos(&["sign", &v2, "--key", k]).0);
    let mut forged: Value = serde_json::from_str(&std::fs::read_to_string(&v2).unwrap()).unwrap();
    forged["workloads"][0]["data"]["size"] = (4u64 << 30).into();
    let forged = file("forged.json", forged.to_string());
    let unsigned = file("unsigned.json", blueprint(&owner, 2, 3 << 30));
    let wrong = file("wrong.json", blueprint(&owner, 2, 3 << 30));
    assert!(
        node.zos(&["sign", &wrong, "--key", bob.to_str().unwrap()])
            .0
    );
    for (what, f, key) in [
        ("forged", &forged, None),
        ("unsigned", &unsigned, None),
        ("replayed v0", &v0, Some(k)),
        ("wrong signer", &wrong, None),
    ] {
        let mut args = vec!["deploy", f.as_str()];
        if let Some(k) = key {
            args.extend(["--key", k]);
        }
        let (ok, text) = node.zos(&args);
        assert!(!ok, "{what} blueprint accepted: {text}");
        assert_eq!(
            node.zos_json(&["get", "mydb", "--json"]),
            before,
            "{what} changed the deployment"
        );
    }

    // kill node-init and restart it: state reconciled
    let storaged = storaged_pid(&dir);
    assert!(storaged.is_some(), "storaged does not answer health");
    node.kill();
    drop(node);
    let node = Node::start(&dir);
    assert_eq!(storaged_pid(&dir), storaged, "storaged not adopted");
    let view = node.zos_json(&["get", "mydb", "--json"]);
    assert_eq!(view["version"], 1);
    assert_eq!(
        view["deployment"]["workloads"][0]["result"]["state"], "ok",
        "{view}"
    );
    let out = redis(&addr, port, &format!("SELECT {ns} e2e-pass\nGET k\n"));
    assert!(out.contains("hello"), "{out}");

    // delete: namespace gone
    let view = node.zos_json(&["delete", "mydb", "--key", k, "--wait", "--json"]);
    assert_eq!(view["state"], "deleted");
    let out = redis(&addr, port, &format!("SELECT {ns} e2e-pass\n"));
    assert!(!out.trim().ends_with("OK"), "namespace still there: {out}");
    let (ok, _) = node.zos(&["deploy", &v0, "--key", k]);
    assert!(
        !ok,
        "deleted deployment re-created from a replayed blueprint"
    );

    drop(node);
    tmp.destroy_node();
}
