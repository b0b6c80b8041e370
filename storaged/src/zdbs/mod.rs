//! zdb servers: one per zdb host pool, supervised (started, adopted after a storaged restart,
//! restarted when they die or hang, never while they load) and administered over their unix
//! socket.

mod admin;
mod process;
pub mod watch;

pub use admin::{Admin, NsInfo};
pub use process::{Answer, Endpoint, ZdbProc, ZdbSpec, activity, ensure_layout, terminate};
pub use watch::{Verdict, Watch, ZdbState};

use std::path::PathBuf;

/// zdb's namespace name limit, in bytes.
pub const MAX_NAME: usize = 128;

/// A zdb failure. Never carries a password.
#[derive(Debug, thiserror::Error)]
pub enum ZdbError {
    /// The unix socket does not answer.
    #[error("zdb at {socket}: {source}")]
    Connect {
        /// Socket path.
        socket: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The connection broke, timed out or carried a bad reply.
    #[error("zdb: {0}")]
    Client(#[from] zdb_client::Error),
    /// zdb refused a command (its message, e.g. `This namespace is not available`).
    #[error("zdb refused {command} {target}: {message}")]
    Refused {
        /// Command name.
        command: String,
        /// Namespace (or empty).
        target: String,
        /// zdb's error text.
        message: String,
    },
    /// The server could not be started.
    #[error("zdb for pool {disk} did not start: {message}")]
    Start {
        /// Disk name.
        disk: String,
        /// What happened (tail of its log).
        message: String,
    },
}

/// Checks a namespace name: `[A-Za-z0-9_-]`, 1..=128 bytes (zdb's limit), not `default`.
pub fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "name must be 1..{MAX_NAME} bytes, got {}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "name {name:?} may only hold letters, digits, '_' and '-'"
        ));
    }
    if name == "default" {
        return Err("name \"default\" is reserved".into());
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("abc-def_1").is_ok());
        assert!(valid_name(&"a".repeat(128)).is_ok());
        assert!(valid_name(&"a".repeat(129)).is_err());
        assert!(valid_name("").is_err());
        assert!(valid_name("a/b").is_err());
        assert!(valid_name("..").is_err());
        assert!(valid_name("default").is_err());
    }
}
