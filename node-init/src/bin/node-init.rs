//! `node-init`: the node daemon. `node-init --dev DIR` runs a whole node on a laptop;
//! `node-init --dev DIR --destroy` removes it again.

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use node_init::daemon::{Config, default_bin, run};
use node_init::engine::Backoff;
use node_init::supervisor::pid1;
use node_init::upgrade::reexec;
use std::path::PathBuf;
use std::time::Duration;

#[path = "node-init/join.rs"]
mod join;

#[derive(Parser)]
#[command(
    name = "node-init",
    version,
    about = "Node identity, blueprint engine and node API"
)]
struct Cli {
    /// Dev node in DIR: file-backed disks, starts storaged (needs root: loop devices, mounts).
    /// Beats a ZOS_NODE in the environment.
    #[arg(long, value_name = "DIR")]
    dev: Option<PathBuf>,
    /// With --dev: stop the dev node's processes and containers, unmount its pools, detach its
    /// loop devices and remove DIR
    #[arg(long, requires = "dev")]
    destroy: bool,
    /// Node folder (production)
    #[arg(long, env = "ZOS_NODE", value_name = "DIR")]
    node: Option<PathBuf>,
    /// Also start storaged, computed and netd as children (implied by --dev)
    #[arg(long)]
    start_storaged: bool,
    /// A storage-only node (an HDD-only farm member): start storaged but not computed or netd
    #[arg(long)]
    storage_only: bool,
    /// storaged binary (default: next to node-init, else from PATH)
    #[arg(long)]
    storaged_bin: Option<PathBuf>,
    /// computed binary (default: next to node-init, else from PATH)
    #[arg(long)]
    computed_bin: Option<PathBuf>,
    /// netd binary (default: next to node-init, else from PATH)
    #[arg(long)]
    netd_bin: Option<PathBuf>,
    /// Prefix of the network namespaces of the netd node-init starts (default `n-`; a dev
    /// node's: `n<hash of DIR>-`, so dev nodes sharing a machine do not collide)
    #[arg(long, value_name = "PREFIX")]
    netd_netns_prefix: Option<String>,
    /// Prefix of the containers' network namespaces of the computed node-init starts (default
    /// `c-`; a dev node's: `c<hash of DIR>-`). A dev node's containers also get a cgroup
    /// parent of their own, `computed-<hash of DIR>`.
    #[arg(long, value_name = "PREFIX")]
    computed_netns_prefix: Option<String>,
    /// Seconds to wait for storaged to become healthy
    #[arg(long, default_value_t = 120)]
    storaged_timeout: u64,
    /// Keep the engine's records and netd's state on storaged's state volume instead of the node
    /// folder (the node image: its node folder is lost at every reboot)
    #[arg(long)]
    state_on_volume: bool,
    /// The release key: `zos upgrade --flist` accepts only releases signed with this ed25519
    /// public key (64 hex digits)
    #[arg(long, env = "ZOS_RELEASE_KEY", value_name = "HEX", value_parser = release_key)]
    release_key: Option<String>,
    /// First retry delay for failed workloads, in milliseconds
    #[arg(long, default_value_t = 1000)]
    retry_base_ms: u64,
    /// Seconds between drift checks: what runs is compared with the deployments and repaired
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86400))]
    reconcile_secs: u64,
    #[command(flatten)]
    farm: join::JoinArgs,
    /// Run as init (reap orphans, SIGPWR shuts down); implied when node-init is PID 1
    #[arg(long)]
    pid1: bool,
    /// Log format: auto (colour on a terminal), plain, color or json; default from
    /// ZOS_LOG_FORMAT, else auto. storaged and computed log plain (json if json) into their files.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<nodeutil::log::LogFormat>,
    /// Check that this binary accepts the rest of the command line, then exit (an upgrade of
    /// node-init runs the new binary so before re-executing it)
    #[arg(long, hide = true)]
    self_check: bool,
}

fn release_key(s: &str) -> Result<String, String> {
    if node_init::upgrade::flist::valid_key(s) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("a release key is 64 hex digits (an ed25519 public key)".into())
    }
}

/// The node folder and whether it is a dev node. `--dev DIR` wins over a `ZOS_NODE` from the
/// environment (the shell the README leaves a user in exports it), not over an explicit
/// `--node`.
fn node_dir(
    dev: Option<PathBuf>,
    node: Option<PathBuf>,
    node_given: bool,
) -> anyhow::Result<(PathBuf, bool)> {
    match (dev, node) {
        (Some(_), Some(_)) if node_given => {
            anyhow::bail!("give --dev DIR or --node DIR, not both")
        }
        (Some(d), _) => Ok((d, true)),
        (None, Some(n)) => Ok((n, false)),
        (None, None) => anyhow::bail!("give --dev DIR for a dev node, or --node DIR (or ZOS_NODE)"),
    }
}

/// What tells a dev node's machine-wide names (network namespaces, cgroups) from another dev
/// node's on the same machine: 8 hex of its folder's hash; none for a production node.
fn dev_tag(node_dir: &std::path::Path, dev: bool) -> Option<String> {
    dev.then(|| {
        let h = blake3::hash(node_dir.as_os_str().as_encoded_bytes()).to_hex();
        h.as_str()[..8].to_string()
    })
}

/// `<letter>-`, or for a dev node `<letter><tag>-`: netd's (`n`) and computed's (`c`) network
/// namespace prefixes.
fn netns_prefix(letter: char, node_dir: &std::path::Path, dev: bool) -> String {
    format!("{letter}{}-", dev_tag(node_dir, dev).unwrap_or_default())
}

/// computed's cgroup parent: `computed`, or for a dev node `computed-<tag>`.
fn cgroup_parent(node_dir: &std::path::Path, dev: bool) -> String {
    match dev_tag(node_dir, dev) {
        Some(t) => format!("computed-{t}"),
        None => "computed".into(),
    }
}

fn main() -> anyhow::Result<()> {
    // The node image's /init: boot the machine, start the node daemon, reap (never returns).
    // Only as the kernel's `/init`: a node-init given its arguments as PID 1 of a pid
    // namespace (or a container) is the supervisor, not a machine's boot.
    let as_kernel_init = std::env::args_os()
        .next()
        .is_some_and(|a| std::path::Path::new(&a).file_name() == Some("init".as_ref()));
    if std::process::id() == 1 && as_kernel_init {
        node_init::boot::pid1();
    }
    // the watcher of a node-init re-executing itself (`upgrade/reexec.rs`), started by it
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(reexec::GUARD_FLAG.as_ref()) {
        let journal = PathBuf::from(args.next().unwrap_or_default());
        reexec::guard(&journal);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(daemon_main())
}

async fn daemon_main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    nodeutil::log::init(false, cli.log_format);
    let node_given = matches.value_source("node") == Some(ValueSource::CommandLine);
    let (node_dir, dev) = node_dir(cli.dev, cli.node, node_given)?;
    let node_dir = std::path::absolute(&node_dir).context("node folder")?;
    if cli.self_check {
        println!(
            "node-init {} accepts this command line",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    }
    if cli.destroy {
        let done = node_init::dev::destroy(&node_dir)
            .await
            .with_context(|| format!("destroying dev node {}", node_dir.display()))?;
        let r = &done.released;
        println!(
            "destroyed dev node {}: {} containers deleted, {} networks deleted, {} processes \
             stopped, {} mounts unmounted, {} loop devices detached{}",
            node_dir.display(),
            done.containers.len(),
            done.networks.len(),
            r.processes.len(),
            r.unmounted.len(),
            r.detached.len(),
            if done.removed {
                ", folder removed"
            } else {
                " (no folder)"
            }
        );
        return Ok(());
    }
    let mut cfg = Config {
        node_dir: node_dir.clone(),
        start_storaged: dev || cli.start_storaged,
        dev,
        storaged_bin: cli.storaged_bin.unwrap_or_else(|| default_bin("storaged")),
        start_computed: (dev || cli.start_storaged) && !cli.storage_only,
        computed_bin: cli.computed_bin.unwrap_or_else(|| default_bin("computed")),
        start_netd: (dev || cli.start_storaged) && !cli.storage_only,
        netd_bin: cli.netd_bin.unwrap_or_else(|| default_bin("netd")),
        netd_netns_prefix: cli
            .netd_netns_prefix
            .unwrap_or_else(|| netns_prefix('n', &node_dir, dev)),
        computed_netns_prefix: cli
            .computed_netns_prefix
            .unwrap_or_else(|| netns_prefix('c', &node_dir, dev)),
        computed_cgroup_parent: cgroup_parent(&node_dir, dev),
        storaged_timeout: Duration::from_secs(cli.storaged_timeout),
        backoff: Backoff {
            base: Duration::from_millis(cli.retry_base_ms),
            ..Backoff::default()
        },
        state_on_volume: cli.state_on_volume,
        release_key: cli.release_key,
        reconcile_every: Duration::from_secs(cli.reconcile_secs),
        handed: Default::default(),
    };
    let farm = cli.farm.config()?;
    let init = cli.pid1 || pid1::is_pid1();
    if init {
        pid1::become_init();
    }
    // this process may be a re-executed node-init on trial: committed once ready
    let started = reexec::at_start(&node_dir);
    cfg.handed = started.handed;
    let trial = started.trial;
    let on_ready = trial.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        pid1::shutdown_signal(init).await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    };
    let mut joined = None;
    // the node image's console (and its boot test) shows the disks and their classes
    let show_disks = cfg.state_on_volume;
    let res = run(cfg, shutdown, |id, socket| {
        if let Some(t) = on_ready {
            tokio::task::spawn_blocking(move || t.commit());
        }
        println!(
            "node ready: id {id}, api {}, export ZOS_NODE={}",
            socket.display(),
            node_dir.display()
        );
        if show_disks {
            tokio::spawn(print_disks(socket.with_file_name("storaged.sock")));
        }
        joined = farm.map(|f| tokio::spawn(join::run(f, socket.to_path_buf(), stopped)));
    })
    .await
    .with_context(|| format!("node {}", node_dir.display()));
    if let (Err(e), Some(t)) = (&res, &trial) {
        t.fall_back(&format!("the new node-init failed: {e:#}"));
    }
    if let Some(j) = joined {
        let _ = tokio::time::timeout(Duration::from_secs(5), j).await;
    }
    if init {
        pid1::finish();
    }
    res
}

/// One console line: each disk storaged found, its class and whether it holds a pool.
async fn print_disks(storaged: PathBuf) {
    let list = bus::Client::new(storaged)
        .call::<bus::api::storage::ListDisks>(&bus::api::Empty {})
        .await;
    match list {
        Ok(l) => {
            let disks: Vec<String> = l
                .disks
                .iter()
                .map(|d| {
                    let class = serde_json::to_value(d.class)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let state = match (&d.mountpoint, &d.problem) {
                        (_, Some(p)) => p.clone(),
                        (Some(_), None) => "pool".into(),
                        (None, None) => "no pool".into(),
                    };
                    format!("{} {class} {state}", d.name)
                })
                .collect();
            println!("node disks: {}", disks.join(", "));
        }
        Err(e) => println!("node disks: unknown ({e})"),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// clap checks the flag definitions only when parsing: check them here, not in use.
    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dev_beats_zos_node_from_the_environment_not_an_explicit_node() {
        let p = |s: &str| Some(PathBuf::from(s));
        let got = |dev, node, given| node_dir(dev, node, given).map_err(|e| e.to_string());
        assert_eq!(
            got(p("/d"), p("/e"), false),
            Ok((PathBuf::from("/d"), true))
        );
        assert_eq!(got(p("/d"), None, false), Ok((PathBuf::from("/d"), true)));
        assert_eq!(got(None, p("/n"), true), Ok((PathBuf::from("/n"), false)));
        assert!(got(p("/d"), p("/n"), true).is_err_and(|e| e.contains("not both")));
        assert!(got(None, None, false).is_err());
    }

    #[test]
    fn dev_nodes_get_their_own_netns_prefixes_and_cgroup_parent() {
        for letter in ['n', 'c'] {
            let p = |d: &str, dev| netns_prefix(letter, std::path::Path::new(d), dev);
            assert_eq!(p("/var/node", false), format!("{letter}-"));
            let (a, b) = (p("/tmp/a", true), p("/tmp/b", true));
            assert_ne!(a, b);
            assert_eq!(a, p("/tmp/a", true));
            assert!(
                a.len() == 10 && a.starts_with(letter) && a.ends_with('-'),
                "{a}"
            );
        }
        let n = netns_prefix('n', std::path::Path::new("/tmp/a"), true);
        let c = netns_prefix('c', std::path::Path::new("/tmp/a"), true);
        assert_eq!(n[1..], c[1..], "one tag per node");
        let g = |d: &str, dev| cgroup_parent(std::path::Path::new(d), dev);
        assert_eq!(g("/var/node", false), "computed");
        assert_eq!(g("/tmp/a", true), format!("computed-{}", &c[1..9]));
        assert_ne!(g("/tmp/a", true), g("/tmp/b", true));
    }
}
