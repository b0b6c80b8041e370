//! Where and how to connect: address, namespace and passwords, timeouts, limits, and the
//! reconnect policy. `Debug` never shows a password.

use std::path::PathBuf;
use std::time::Duration;

use crate::codec::Limits;
use crate::error::{Error, Result};

/// 0-db's default port.
pub const DEFAULT_PORT: u16 = 9900;

/// A server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `host:port` (a name is resolved within the connect timeout).
    Tcp(String),
    /// A unix socket path (`zdb --socket`).
    Unix(PathBuf),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => f.write_str(a),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A password, kept out of `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The password itself (to send it, never to show it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How a password is proven: sent as is, or as `sha1(nonce:password)` after
/// `AUTH SECURE CHALLENGE`, so it never crosses the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// `AUTH pw` / `SELECT ns pw`.
    #[default]
    Plain,
    /// `AUTH SECURE hash` / `SELECT ns SECURE hash`.
    Secure,
}

/// What a client does after an error closed its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reconnect {
    /// Every later call fails with [`Error::NotConnected`] until `reconnect()` is called.
    #[default]
    Manual,
    /// The next call connects again first, logging in and selecting the namespace again.
    /// The call that failed is never sent again (it may have been applied).
    Auto,
}

/// Everything a client needs to connect. Build with [`Config::tcp`], [`Config::unix`] or
/// [`Config::from_url`], then the `with_*` methods.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server.
    pub address: Address,
    /// Namespace to `SELECT` after connecting (`None`: stay in `default`).
    pub namespace: Option<String>,
    /// The namespace's password.
    pub password: Option<Secret>,
    /// Admin password to `AUTH` with after connecting.
    pub admin: Option<Secret>,
    /// How passwords are proven.
    pub auth: AuthMethod,
    /// Bound on connecting (name resolution included).
    pub connect_timeout: Duration,
    /// Bound on each reply, and on sending each request or batch.
    pub timeout: Duration,
    /// Bounds on replies.
    pub limits: Limits,
    /// Behaviour after a connection error.
    pub reconnect: Reconnect,
}

impl Config {
    /// A TCP server at `host:port` (`host` alone means port 9900).
    pub fn tcp(addr: impl Into<String>) -> Config {
        Config::at(Address::Tcp(with_port(addr.into())))
    }

    /// A server on a unix socket.
    pub fn unix(path: impl Into<PathBuf>) -> Config {
        Config::at(Address::Unix(path.into()))
    }

    fn at(address: Address) -> Config {
        Config {
            address,
            namespace: None,
            password: None,
            admin: None,
            auth: AuthMethod::Plain,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            limits: Limits::default(),
            reconnect: Reconnect::Manual,
        }
    }

    /// `zdb://[user:password@]host[:port][/namespace]`: the namespace is selected with the
    /// password (the user part is ignored, as 0-db has no users). Errors never echo the
    /// password.
    pub fn from_url(url: &str) -> Result<Config> {
        let bad = |why: &str| Error::Url(why.into());
        let rest = url
            .strip_prefix("zdb://")
            .ok_or_else(|| bad("expected zdb://[user:password@]host[:port][/namespace]"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (hostport, ns) = match rest.split_once('/') {
            Some((h, n)) => (h, Some(n)),
            None => (rest, None),
        };
        if hostport.is_empty() {
            return Err(bad("missing host"));
        }
        let mut cfg = Config::tcp(hostport);
        match ns {
            Some(n) if n.is_empty() || n.contains('/') => {
                return Err(bad("namespace must be one non-empty path segment"));
            }
            Some(n) => cfg.namespace = Some(n.to_string()),
            None => {}
        }
        if let Some(a) = auth {
            let pw = a.split_once(':').map_or(a, |(_, p)| p);
            cfg.password = Some(Secret::new(pw));
        }
        Ok(cfg)
    }

    /// Selects `ns` after connecting.
    pub fn with_namespace(mut self, ns: impl Into<String>) -> Config {
        self.namespace = Some(ns.into());
        self
    }

    /// The namespace's password.
    pub fn with_password(mut self, pw: impl Into<String>) -> Config {
        self.password = Some(Secret::new(pw));
        self
    }

    /// Logs in as admin after connecting.
    pub fn with_admin(mut self, pw: impl Into<String>) -> Config {
        self.admin = Some(Secret::new(pw));
        self
    }

    /// Proves passwords with the SECURE challenge instead of sending them.
    pub fn with_secure_auth(mut self) -> Config {
        self.auth = AuthMethod::Secure;
        self
    }

    /// Bounds connecting.
    pub fn with_connect_timeout(mut self, t: Duration) -> Config {
        self.connect_timeout = t;
        self
    }

    /// Bounds each reply and each send.
    pub fn with_timeout(mut self, t: Duration) -> Config {
        self.timeout = t;
        self
    }

    /// Bounds on replies.
    pub fn with_limits(mut self, l: Limits) -> Config {
        self.limits = l;
        self
    }

    /// The reconnect policy.
    pub fn with_reconnect(mut self, r: Reconnect) -> Config {
        self.reconnect = r;
        self
    }
}

/// `host` gets `:9900`; `host:port`, `[v6]:port` and bare IPv6 literals are kept.
fn with_port(addr: String) -> String {
    let has_port = match addr.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (host.ends_with(']') || !host.contains(':'))
        }
        None => false,
    };
    if has_port {
        addr
    } else if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]:{DEFAULT_PORT}")
    } else {
        format!("{addr}:{DEFAULT_PORT}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = Config::from_url("zdb://user:s3cret@example.org/blocks").unwrap();
        assert_eq!(c.address, Address::Tcp("example.org:9900".into()));
        assert_eq!(c.namespace.as_deref(), Some("blocks"));
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = Config::from_url("zdb://:p@w@127.0.0.1:9901").unwrap();
        assert_eq!(c.address, Address::Tcp("127.0.0.1:9901".into()));
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("p@w"));
        assert_eq!(c.namespace, None);
        for bad in [
            "dir:///x",
            "zdb://",
            "zdb://u:hidden@/ns",
            "zdb://h/a/b",
            "zdb://h/",
        ] {
            let e = Config::from_url(bad).unwrap_err().to_string();
            assert!(!e.contains("hidden"), "{e}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(with_port("h".into()), "h:9900");
        assert_eq!(with_port("h:1".into()), "h:1");
        assert_eq!(with_port("[::1]:7".into()), "[::1]:7");
        assert_eq!(with_port("[::1]".into()), "[::1]:9900");
        assert_eq!(with_port("::1".into()), "[::1]:9900");
    }
}
