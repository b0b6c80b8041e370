//! The README's walk-through, run literally: the commands of its section "Run a dev node and
//! deploy a blueprint", read from README.md itself, in a fresh working folder, with relative
//! paths as written and a fresh shell environment (only `PATH`, `HOME` and what the README
//! exports).
//!
//! What a reader fills in is filled in the same way: the node folder `/tmp/node` becomes this
//! test's folder, `target/release` is this build's binaries, the dev node starts with the
//! command the README gives beside `scripts/run-node.sh` (which would build a release first),
//! and `ADDRESS`, `PORT` and `NAMESPACE` come from what `zos get` printed the line before.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use tests::{Node, World, bin_dir, leftovers, repo, require, start_node};

/// The ```sh blocks of the README's section `title`, in order.
fn blocks(readme: &str, title: &str) -> Vec<Vec<String>> {
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README has no section {title:?}"));
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```sh") => cur = Some(Vec::new()),
            (Some(_), "```") => out.extend(cur.take()),
            (Some(b), l) => b.push(l.to_string()),
            (None, _) => {}
        }
    }
    out
}

/// A shell with nothing but `PATH`, `HOME` and `ZOS_NODE`, in `cwd`.
fn fresh_shell(cwd: &Path, zos_node: &Path) -> Command {
    let mut c = Command::new("bash");
    c.current_dir(cwd)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", cwd)
        .env("ZOS_NODE", zos_node);
    c
}

/// Runs `lines` as one `bash -euo pipefail` script; checks it succeeded; its stdout.
fn run(shell: &mut Command, lines: &[String]) -> String {
    let script = format!("set -euo pipefail\n{}\n", lines.join("\n"));
    let out: Output = shell.arg("-c").arg(&script).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "README commands failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout
}

#[test]
fn the_readme_walk_through_works_as_written() {
    if !require(&[]) {
        return;
    }
    let world = World::new();
    let node_dir = world.node_dir();
    let cwd = world.path().join("work");
    std::fs::create_dir_all(cwd.join("target")).unwrap();
    std::os::unix::fs::symlink(bin_dir(), cwd.join("target/release")).unwrap();
    std::os::unix::fs::symlink(repo().join("examples"), cwd.join("examples")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let ours = |l: &str| l.replace("/tmp/node", &node_dir.display().to_string());
    let blocks: Vec<Vec<String>> = blocks(&readme, "Run a dev node and deploy a blueprint")
        .into_iter()
        .map(|b| b.iter().map(|l| ours(l)).collect())
        .collect();
    assert_eq!(blocks.len(), 3, "start, walk-through, removal: {blocks:?}");

    // 1. Start the dev node, from a shell that already exports ZOS_NODE (the one the README
    // leaves a user in), with the command the README gives beside run-node.sh.
    let start = blocks[0]
        .iter()
        .find_map(|l| l.split_once("# or: ").map(|(_, c)| c.trim().to_string()))
        .expect("the README's node-init command");
    assert!(
        blocks[0].iter().any(|l| l.starts_with("export ZOS_NODE=")),
        "{:?}",
        blocks[0]
    );
    let mut shell = fresh_shell(&cwd, &node_dir);
    shell
        .arg("-c")
        .arg(format!("exec {start}"))
        .stdin(Stdio::null());
    let node: Node = start_node(shell, &node_dir);

    // 2. The walk-through, up to the line where the reader fills in ADDRESS and PORT.
    let walk = &blocks[1];
    let at = walk
        .iter()
        .position(|l| l.starts_with("redis-cli "))
        .expect("the README's redis-cli line");
    let shown = run(&mut fresh_shell(&cwd, &node_dir), &walk[..at]);
    assert!(!shown.contains("my-secret"), "password shown: {shown}");
    let data: serde_json::Value = shown
        .lines()
        .find(|l| l.contains("\"namespace\""))
        .and_then(|l| l.get(l.find('{')?..=l.rfind('}')?))
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or_else(|| panic!("`zos get` printed no namespace: {shown}"));
    let (address, port, ns) = (
        data["address"].as_str().unwrap(),
        data["port"].as_u64().unwrap().to_string(),
        data["namespace"].as_str().unwrap(),
    );
    // The redis-cli line with its placeholders filled, and the SELECT its comment says.
    let (cmd, comment) = walk[at].split_once('#').unwrap();
    let cmd = cmd.replace("ADDRESS", address).replace("PORT", &port);
    let select = comment
        .trim()
        .strip_prefix("then:")
        .unwrap()
        .trim()
        .replace("NAMESPACE", ns);
    let session = format!("{select}\nSET greeting hello\nGET greeting\n");
    let said = run(
        &mut fresh_shell(&cwd, &node_dir),
        &[format!("printf '{}' | {cmd}", session.replace('\n', "\\n"))],
    );
    assert!(said.contains("hello"), "redis-cli session: {said}");
    // The rest: list, delete.
    let rest = run(&mut fresh_shell(&cwd, &node_dir), &walk[at + 1..]);
    assert!(rest.contains("deleted"), "{rest}");

    // 3. Removal, as the README says, from another shell while the node runs.
    run(&mut fresh_shell(&cwd, &node_dir), &blocks[2]);
    drop(node);
    assert_eq!(leftovers(&node_dir), Vec::<String>::new());
    assert!(!node_dir.exists());
    // The files the walk-through made are where it made them: the working folder.
    for f in ["alice.key", "mydb.json"] {
        assert!(cwd.join(f).exists(), "{f} not in the working folder");
    }
}
