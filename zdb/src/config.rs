//! Command-line flags, with 0-db's names and meanings.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::engine::{EngineConfig, RunMode};

/// zdb: append-only key-value store speaking RESP, compatible with 0-db.
#[derive(Debug, Clone, Parser)]
#[command(name = "zdb", version, about, args_conflicts_with_subcommands = false)]
pub struct Args {
    /// Offline tools (without one, zdb serves)
    #[command(subcommand)]
    pub command: Option<Tool>,
    /// Data files root
    #[arg(long, global = true, default_value = "./zdb-data")]
    pub data: PathBuf,
    /// Index files root
    #[arg(long, global = true, default_value = "./zdb-index")]
    pub index: PathBuf,
    /// Running mode: user, seq (or its old name direct); none = mixed
    #[arg(long, global = true, value_parser = ["user", "seq", "direct"])]
    pub mode: Option<String>,
    /// Data file size before rotation (suffixes k, M, G, T; 1024-based); 512k..4G
    #[arg(long, default_value = "256M", value_parser = parse_datasize)]
    pub datasize: u32,
    /// TCP listen address
    #[arg(long, default_value = "::")]
    pub listen: String,
    /// TCP port
    #[arg(long, default_value_t = 9900)]
    pub port: u16,
    /// Unix socket path (disables TCP unless --dualnet)
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Listen on both TCP and the unix socket
    #[arg(long)]
    pub dualnet: bool,
    /// Admin password (also from the ZDB_ADMIN environment variable; prefer --admin-file, since
    /// a command line is visible to every local user)
    #[arg(long, env = "ZDB_ADMIN", hide_env_values = true)]
    pub admin: Option<String>,
    /// Read the admin password from this file (first line)
    #[arg(long, conflicts_with = "admin")]
    pub admin_file: Option<PathBuf>,
    /// Default namespace gets the admin password: clients start read-only (needs an admin password)
    #[arg(long)]
    pub protect: bool,
    /// Size limit of the default namespace, in bytes (not persisted)
    #[arg(long)]
    pub maxsize: Option<u64>,
    /// Hook executable, run on events (argv: hook, event, zdb id, args...)
    #[arg(long)]
    pub hook: Option<PathBuf>,
    /// Seconds a hook zdb waits for (namespaces-init, ready, close, jump-index, missing-data)
    /// may run before it is killed with its process group; 0 = no limit
    #[arg(long, default_value_t = 120)]
    pub hook_timeout: u64,
    /// fsync every write before replying
    #[arg(long)]
    pub sync: bool,
    /// fsync on the next write if the last fsync is older than this many seconds
    #[arg(long)]
    pub synctime: Option<u64>,
    /// Total bytes all clients together may hold in input buffers
    #[arg(long, default_value_t = 1 << 30)]
    pub max_input_total: usize,
    /// Compact a namespace in the background once this many bytes of it are dead
    /// (overwritten or deleted); 0 = only on COMPACT
    #[arg(long, default_value_t = 1 << 30)]
    pub compact_dead_bytes: u64,
    /// Save a user-mode namespace's key map snapshot once it has had no write for this many
    /// seconds (so a power cut while idle restarts fast); 0 = only at a clean stop
    #[arg(long, default_value_t = 300)]
    pub snapshot_idle: u64,
    /// Keep recently read values up to 64 KiB in a cache of this size shared by all
    /// namespaces (suffixes k, M, G); 0 = off
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    pub read_cache: u64,
    /// Follow this leader (HOST:PORT): stream its namespaces, refuse client writes until PROMOTE
    #[arg(long)]
    pub replicate_from: Option<String>,
    /// File holding the leader's admin password (also ZDB_REPLICATE_ADMIN)
    #[arg(long, env = "ZDB_REPLICATE_ADMIN", hide_env_values = true)]
    pub replicate_admin_file: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100) at /metrics
    #[arg(long)]
    pub metrics: Option<String>,
    /// Log commands slower than this many milliseconds
    #[arg(long, default_value_t = 100)]
    pub slow_ms: u64,
    /// Serve a hand-over socket here (mode 0600): a new zdb started with `--take-over PATH`
    /// takes this one's listeners and client connections, and this one exits
    #[arg(long)]
    pub handover: Option<PathBuf>,
    /// Take over from the zdb serving the hand-over socket PATH (same folders and flags):
    /// its clients stay connected; if this process fails before it is ready, the old one
    /// serves on
    #[arg(long)]
    pub take_over: Option<PathBuf>,
    /// Log more (debug level)
    #[arg(long, short)]
    pub verbose: bool,
    /// Log lines as: auto (colour on a terminal, plain otherwise), plain, color, json
    /// (default: ZOS_LOG_FORMAT, else auto)
    #[arg(long, value_parser = clap::value_parser!(nodeutil::log::LogFormat))]
    pub log_format: Option<nodeutil::log::LogFormat>,
}

/// Offline tools.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Tool {
    /// Verify every entry (CRCs, index against data) of a stopped server's folders; exit status 1
    /// if anything is wrong
    Check {
        /// Only these namespaces (default: all)
        #[arg(long = "namespace")]
        namespaces: Vec<String>,
        /// Rebuild the index files from the data files (old ones are kept in `.backup-<time>/`)
        #[arg(long)]
        repair: bool,
    },
}

/// Parse a size: 0-db's suffixes (k, M, G, T; 1024-based) and the node's others
/// (`nodeutil::size`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    nodeutil::size::parse_size(s).map_err(|e| e.to_string())
}

/// Parse `--datasize` with 0-db's suffixes.
pub fn parse_datasize(s: &str) -> Result<u32, String> {
    let bytes = parse_size(s)?;
    if bytes < 512 * 1024 {
        return Err("datasize must be at least 512k".into());
    }
    u32::try_from(bytes).map_err(|_| "datasize must be below 4G".to_string())
}

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data root.
    pub data: PathBuf,
    /// Index root.
    pub index: PathBuf,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Admin password.
    pub admin: Option<String>,
    /// `--protect`.
    pub protect: bool,
    /// `--maxsize` for the default namespace.
    pub maxsize: Option<u64>,
    /// Hook executable.
    pub hook: Option<PathBuf>,
    /// How long a waited-for hook may run (`None`: no limit).
    pub hook_timeout: Option<Duration>,
    /// Total input buffer budget.
    pub max_input_total: usize,
    /// Background compaction threshold in dead bytes (0 = off).
    pub compact_dead_bytes: u64,
    /// Idle time before a key map snapshot is saved (zero = only at a clean stop).
    pub snapshot_idle: Duration,
    /// Commands slower than this are logged.
    pub slow: Duration,
    /// Bytes of the read cache (0 = none).
    pub read_cache: u64,
    /// Prometheus metrics are served (`--metrics`): record per-command counts and latencies.
    pub metrics: bool,
    /// How clients reach us, as passed to hooks (`tcp://addr:port` or `unix://path`).
    pub zdbid: String,
}

impl Config {
    /// Validate flags.
    pub fn from_args(args: &Args) -> Result<Config, String> {
        if args.data == args.index {
            return Err("--data and --index must differ".into());
        }
        let admin = match (&args.admin, &args.admin_file) {
            (Some(a), _) => Some(a.clone()),
            (None, Some(f)) => {
                let s = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
                Some(s.lines().next().unwrap_or_default().to_string())
            }
            (None, None) => None,
        }
        .filter(|a| !a.is_empty());
        if args.protect && admin.is_none() {
            return Err("--protect needs an admin password".into());
        }
        let run_mode = match args.mode.as_deref() {
            None => RunMode::Mixed,
            Some("user") => RunMode::User,
            Some(_) => RunMode::Seq,
        };
        let zdbid = match &args.socket {
            Some(p) if !args.dualnet => format!("unix://{}", p.display()),
            _ => format!("tcp://{}:{}", args.listen, args.port),
        };
        Ok(Config {
            data: args.data.clone(),
            index: args.index.clone(),
            engine: EngineConfig {
                datasize: args.datasize,
                sync: args.sync,
                synctime: args.synctime.map(Duration::from_secs),
                run_mode,
                group_commit: true,
            },
            admin,
            protect: args.protect,
            maxsize: args.maxsize,
            hook: args.hook.clone(),
            hook_timeout: (args.hook_timeout > 0).then(|| Duration::from_secs(args.hook_timeout)),
            max_input_total: args.max_input_total,
            compact_dead_bytes: args.compact_dead_bytes,
            snapshot_idle: Duration::from_secs(args.snapshot_idle),
            slow: Duration::from_millis(args.slow_ms),
            read_cache: args.read_cache,
            metrics: args.metrics.is_some(),
            zdbid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_0db_suffixes() {
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("1x").is_err());
    }

    #[test]
    fn datasize_suffixes() {
        assert_eq!(parse_datasize("512k"), Ok(512 * 1024));
        assert_eq!(parse_datasize("256M"), Ok(256 << 20));
        assert!(parse_datasize("511k").is_err());
        assert!(parse_datasize("4G").is_err());
        assert!(parse_datasize("x").is_err());
    }
}
