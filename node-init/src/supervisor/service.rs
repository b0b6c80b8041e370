//! Service definitions: one JSON file per daemon in `<node>/services/<name>.json`.
//!
//! ```json
//! {
//!   "exec": "/usr/bin/storaged",
//!   "args": ["--config", "/var/node/storaged.json"],
//!   "after": [],
//!   "ready": {"bus": "/var/node/run/storaged.sock"},
//!   "ready_timeout_secs": 120,
//!   "restart": {"backoff_ms": 100, "max_backoff_ms": 30000, "limit": 5, "window_secs": 60},
//!   "env": {"RUST_LOG": "info"},
//!   "log": {"max_bytes": 4194304, "keep": 3},
//!   "stop_timeout_secs": 10
//! }
//! ```
//! The name is the file's stem. Only `exec` is required. JSON, not TOML: every other file
//! node-init writes is JSON and the workspace has no TOML parser. node-init writes the default
//! file of each daemon it runs when the file is missing or unedited (equal to the copy of the
//! default it wrote last, `.<name>.default`); a file an operator edited is kept as it is.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the supervisor knows a started daemon is ready (dependents wait for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// Its bus socket answers `health@1` with a status other than `starting`. Such a daemon,
    /// already answering when node-init starts, is adopted (its pid comes from the reply).
    Bus(PathBuf),
    /// A TCP connection to this address succeeds.
    Tcp(SocketAddr),
    /// This path exists.
    Path(PathBuf),
    /// Ready as soon as it runs.
    Started,
}

/// Restart policy: a crash restarts the daemon after `backoff_ms`, doubling with every crash
/// counted in the last `window_secs` (up to `max_backoff_ms`); more than `limit` crashes in the
/// window mark it `failed` and it is not restarted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartPolicy {
    /// First restart delay.
    pub backoff_ms: u64,
    /// Largest restart delay.
    pub max_backoff_ms: u64,
    /// Crashes allowed in the window before the service is `failed`.
    pub limit: u32,
    /// Window over which crashes are counted.
    pub window_secs: u64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            backoff_ms: 100,
            max_backoff_ms: 30_000,
            limit: 5,
            window_secs: 60,
        }
    }
}

/// Log capture: stdout and stderr go to `<node>/log/<name>.log`, renamed to `.1` (`.2`, ...)
/// at `max_bytes`; `keep` old files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogPolicy {
    /// Size at which the log is rotated.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: u32,
}

impl Default for LogPolicy {
    fn default() -> Self {
        Self {
            max_bytes: 4 << 20,
            keep: 3,
        }
    }
}

/// One service definition file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    /// The binary.
    pub exec: PathBuf,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Services that must be ready before this one starts.
    #[serde(default)]
    pub after: Vec<String>,
    /// Readiness test.
    #[serde(default = "started")]
    pub ready: Readiness,
    /// How long a start may take to become ready before it counts as a crash.
    #[serde(default = "ready_timeout")]
    pub ready_timeout_secs: u64,
    /// Restart policy.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Extra environment (on top of node-init's).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Log capture.
    #[serde(default)]
    pub log: LogPolicy,
    /// SIGTERM, then SIGKILL after this long, on stop.
    #[serde(default = "stop_timeout")]
    pub stop_timeout_secs: u64,
    /// The daemon's state folder, when it has data an upgrade migrates: the new binary runs
    /// with `--migrate --state COPY` on a copy of it before it is switched to, and the old
    /// folder is kept for a rollback (`node-init/src/upgrade/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// The socket the daemon serves its live take-over on (its `args` make it serve there,
    /// e.g. `--handover PATH`): an upgrade whose migration leaves the state as it is starts
    /// the new binary beside the running one with `--take-over PATH`, and the old one hands its
    /// work over and exits (`node-init/src/upgrade/live.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_over: Option<PathBuf>,
}

fn started() -> Readiness {
    Readiness::Started
}
fn ready_timeout() -> u64 {
    120
}
fn stop_timeout() -> u64 {
    10
}

impl ServiceDef {
    /// A definition with the defaults for everything but the binary and its arguments.
    pub fn new(exec: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Self {
            exec: exec.into(),
            args,
            after: Vec::new(),
            ready: Readiness::Started,
            ready_timeout_secs: ready_timeout(),
            restart: RestartPolicy::default(),
            env: BTreeMap::new(),
            log: LogPolicy::default(),
            stop_timeout_secs: stop_timeout(),
            state_dir: None,
            take_over: None,
        }
    }

    /// [`Self::ready_timeout_secs`].
    pub fn ready_timeout(&self) -> Duration {
        Duration::from_secs(self.ready_timeout_secs)
    }

    /// [`Self::stop_timeout_secs`].
    pub fn stop_timeout(&self) -> Duration {
        Duration::from_secs(self.stop_timeout_secs)
    }
}

/// A service: its name and definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Name (file stem, bus name).
    pub name: String,
    /// Definition.
    pub def: ServiceDef,
}

/// A definition file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DefError {
    /// Not readable.
    #[error("cannot read service definition {}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a valid definition.
    #[error("service definition {} is invalid: {reason}", path.display())]
    Invalid {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing a default failed.
    #[error("cannot write service definition {}", path.display())]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: nodeutil::fs::WriteError,
    },
}

/// `<node>/services/<name>.json`.
pub fn def_path(services_dir: &Path, name: &str) -> PathBuf {
    services_dir.join(format!("{name}.json"))
}

/// A name usable as a file stem, a bus socket name and a log file name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads `<dir>/<name>.json` after writing `default` there when the file is missing or is
/// still the default node-init wrote last time (its copy is `.<name>.default`), so new flags
/// or binaries reach an unedited file; a file an operator edited is kept as it is.
pub fn load_or_write(dir: &Path, name: &str, default: &ServiceDef) -> Result<Service, DefError> {
    let path = def_path(dir, name);
    let stamp = dir.join(format!(".{name}.default"));
    let current = std::fs::read(&path).ok();
    let unedited = current.is_some() && current == std::fs::read(&stamp).ok();
    let mut new = serde_json::to_vec_pretty(default).map_err(|e| DefError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    new.push(b'\n');
    if current.is_none() || (unedited && current.as_deref() != Some(&new[..])) {
        for p in [&stamp, &path] {
            nodeutil::fs::write_durable(p, &new, 0o600).map_err(|source| DefError::Write {
                path: p.clone(),
                source,
            })?;
        }
    }
    load(&path)
}

/// Reads one definition file.
pub fn load(path: &Path) -> Result<Service, DefError> {
    let invalid = |reason: String| DefError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|n| valid_name(n))
        .ok_or_else(|| invalid("the file name must be <name>.json, name of [A-Za-z0-9_-]".into()))?
        .to_string();
    let text = std::fs::read(path).map_err(|source| DefError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let def: ServiceDef = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    if def.exec.as_os_str().is_empty() {
        return Err(invalid("exec is empty".into()));
    }
    if let Some(bad) = def.after.iter().find(|a| !valid_name(a) || **a == name) {
        return Err(invalid(format!(
            "`after` names an invalid service: {bad:?}"
        )));
    }
    if def.restart.backoff_ms == 0 || def.restart.window_secs == 0 {
        return Err(invalid(
            "restart.backoff_ms and restart.window_secs must be at least 1".into(),
        ));
    }
    if def.log.max_bytes < 4096 {
        return Err(invalid("log.max_bytes must be at least 4096".into()));
    }
    Ok(Service { name, def })
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn a_default_is_written_once_and_an_edit_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let mut def = ServiceDef::new("/bin/storaged", vec!["--x".into()]);
        def.ready = Readiness::Bus("/run/storaged.sock".into());
        let s = load_or_write(d.path(), "storaged", &def).unwrap();
        assert_eq!(s.name, "storaged");
        assert_eq!(s.def, def);
        let path = def_path(d.path(), "storaged");
        // an unedited default follows node-init's new default; an edited file is kept
        let mut def2 = def.clone();
        def2.exec = "/bin/storaged2".into();
        let s = load_or_write(d.path(), "storaged", &def2).unwrap();
        assert_eq!(s.def, def2);
        std::fs::write(&path, r#"{"exec": "/opt/storaged", "after": ["netd"]}"#).unwrap();
        let s = load_or_write(d.path(), "storaged", &def).unwrap();
        assert_eq!(s.def.exec, PathBuf::from("/opt/storaged"));
        assert_eq!(s.def.after, ["netd"]);
        assert_eq!(s.def.restart, RestartPolicy::default());
        assert_eq!(s.def.ready, Readiness::Started);
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            ("a.json", r#"{"args": []}"#, "exec"),
            ("a.json", r#"{"exec": "/x", "bogus": 1}"#, "bogus"),
            ("a.json", r#"{"exec": "/x", "after": ["a"]}"#, "after"),
            ("a.json", r#"{"exec": "/x", "after": ["../b"]}"#, "after"),
            (
                "a.json",
                r#"{"exec": "/x", "restart": {"backoff_ms": 0}}"#,
                "backoff",
            ),
            (
                "a.json",
                r#"{"exec": "/x", "log": {"max_bytes": 10}}"#,
                "max_bytes",
            ),
            (
                "a.json",
                r#"{"exec": "/x", "ready": {"tcp": "nope"}}"#,
                "invalid",
            ),
            ("a b.json", r#"{"exec": "/x"}"#, "file name"),
        ];
        for (file, text, want) in cases {
            let p = d.path().join(file);
            std::fs::write(&p, text).unwrap();
            let e = load(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
