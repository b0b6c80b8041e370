//! How a client proves itself to a farm's etcd, and checks it talks to the farm's etcd: the
//! etcd is the farm's trust boundary (whoever writes there deploys blueprints to its nodes and
//! rewrites object metadata), so a farm past a lab secures it. Two independent layers, as etcd
//! has them:
//!
//! - TLS (`https://` endpoints): the members' certificates must chain to the farm's CA (the
//!   system roots are not trusted for this); with a client certificate and key, the members
//!   may require one (`--client-cert-auth`).
//! - etcd's own auth: a user and password; the client gets a token and renews it when etcd
//!   expires it. The password travels in the clear without TLS, so use both. With client
//!   certificates required, etcd takes a certificate's CN as the user of a request that
//!   carries no token: a node may hold a certificate and no password.
//!
//! Everything is read from files (PEM, a password file's first line): nothing secret is ever
//! on a command line, and the password is kept out of `Debug`.

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use std::path::{Path, PathBuf};
use zdb_client::Secret;

/// Where the TLS and auth material of a client comes from (file names; nothing read yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFiles {
    /// PEM certificate(s) of the CA the members' certificates chain to.
    pub ca: Option<PathBuf>,
    /// PEM client certificate, with `key`.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// etcd user.
    pub user: Option<String>,
    /// File whose first line is the user's password.
    pub password_file: Option<PathBuf>,
}

/// The material itself, read and checked.
#[derive(Clone, Default)]
pub struct EtcdAccess {
    tls: Option<TlsOptions>,
    user: Option<(String, Secret)>,
}

impl std::fmt::Debug for EtcdAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdAccess")
            .field("tls", &self.tls.is_some())
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .finish()
    }
}

/// The files do not make a usable access.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The options do not go together.
    #[error("{0}")]
    Invalid(String),
}

fn read(path: &Path) -> Result<Vec<u8>, AccessError> {
    std::fs::read(path).map_err(|source| AccessError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The first PEM block's label, when `bytes` hold one: a certificate file that is not PEM is
/// refused here, with its name, rather than as a handshake failure later.
fn pem_label(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = text[start..].find("-----")?;
    Some(&text[start..start + end])
}

/// `path`'s bytes, whose first PEM block must be a `what` (`is` checks its label).
fn read_pem(path: &Path, what: &str, is: fn(&str) -> bool) -> Result<Vec<u8>, AccessError> {
    let pem = read(path)?;
    if !pem_label(&pem).is_some_and(is) {
        return Err(AccessError::Invalid(format!(
            "{} holds no PEM {what}",
            path.display()
        )));
    }
    Ok(pem)
}

fn certificate(label: &str) -> bool {
    label == "CERTIFICATE"
}

impl EtcdAccess {
    /// No TLS, no auth.
    pub fn plain() -> Self {
        Self::default()
    }

    /// Reads and checks the files named in `f`.
    pub fn load(f: &AccessFiles) -> Result<Self, AccessError> {
        let mut access = EtcdAccess::default();
        match (&f.cert, &f.key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(AccessError::Invalid(
                    "a client certificate needs its key, and a key its certificate".into(),
                ));
            }
            (Some(_), Some(_)) if f.ca.is_none() => {
                return Err(AccessError::Invalid(
                    "a client certificate is for TLS: give the farm's CA too".into(),
                ));
            }
            _ => {}
        }
        if let Some(ca) = &f.ca {
            let pem = read_pem(ca, "certificate", certificate)?;
            let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(pem));
            if let (Some(cert), Some(key)) = (&f.cert, &f.key) {
                let c = read_pem(cert, "certificate", certificate)?;
                let k = read_pem(key, "private key", |l| l.ends_with("PRIVATE KEY"))?;
                tls = tls.identity(Identity::from_pem(c, k));
            }
            access.tls = Some(tls);
        }
        match (&f.user, &f.password_file) {
            (Some(user), Some(p)) => {
                let text = String::from_utf8(read(p)?)
                    .map_err(|_| AccessError::Invalid(format!("{} is not text", p.display())))?;
                let password = text.lines().next().unwrap_or_default();
                if password.is_empty() {
                    return Err(AccessError::Invalid(format!(
                        "{} holds no password",
                        p.display()
                    )));
                }
                access.user = Some((user.clone(), Secret::new(password)));
            }
            (Some(_), None) => {
                return Err(AccessError::Invalid(
                    "an etcd user needs its password file".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(AccessError::Invalid(
                    "a password file needs the etcd user it is for".into(),
                ));
            }
            (None, None) => {}
        }
        Ok(access)
    }

    /// Whether the endpoints must be `https://` ones.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `options` with this access's TLS and user.
    pub fn apply(&self, mut options: ConnectOptions) -> ConnectOptions {
        if let Some(tls) = &self.tls {
            options = options.with_tls(tls.clone());
        }
        if let Some((user, password)) = &self.user {
            options = options
                .with_user(user.clone(), password.expose())
                .with_auto_token_refresh(true);
        }
        options
    }

    /// Refuses endpoints whose scheme does not match: `http://` with TLS material would send
    /// the password in the clear, `https://` without a CA would have nothing to check the
    /// members against.
    pub fn check(&self, endpoints: &[String]) -> Result<(), AccessError> {
        for e in endpoints {
            let https = e.starts_with("https://");
            if self.tls() && !https {
                return Err(AccessError::Invalid(format!(
                    "{e}: a CA was given, so every endpoint must be https://"
                )));
            }
            if !self.tls() && https {
                return Err(AccessError::Invalid(format!(
                    "{e}: an https:// endpoint needs the farm's CA (--etcd-ca)"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";

    #[test]
    fn files_are_checked_and_the_password_never_shows() {
        let d = tempfile::tempdir().unwrap();
        let w = |n: &str, b: &str| {
            let p = d.path().join(n);
            std::fs::write(&p, b).unwrap();
            p
        };
        let (ca, cert, key) = (w("ca.pem", CERT), w("c.pem", CERT), w("k.pem", KEY));
        let pw = w("pw", "s3cret-pass\nignored\n");
        let files = AccessFiles {
            ca: Some(ca.clone()),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
            user: Some("root".into()),
            password_file: Some(pw.clone()),
        };
        let a = EtcdAccess::load(&files).unwrap();
        assert!(a.tls());
        assert_eq!(a.user.as_ref().unwrap().1.expose(), "s3cret-pass");
        assert!(!format!("{a:?}").contains("s3cret"), "{a:?}");
        assert!(a.check(&["https://127.0.0.1:2379".into()]).is_ok());
        let e = a.check(&["http://127.0.0.1:2379".into()]).unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
        let e = EtcdAccess::plain()
            .check(&["https://h:2379".into()])
            .unwrap_err();
        assert!(e.to_string().contains("--etcd-ca"), "{e}");

        let bad = |f: AccessFiles, want: &str| {
            let e = EtcdAccess::load(&f).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        };
        bad(
            AccessFiles {
                key: None,
                ..files.clone()
            },
            "needs its key",
        );
        bad(
            AccessFiles {
                ca: Some(key.clone()),
                ..files.clone()
            },
            "no PEM certificate",
        );
        bad(
            AccessFiles {
                key: Some(cert.clone()),
                ..files.clone()
            },
            "no PEM private key",
        );
        bad(
            AccessFiles {
                password_file: None,
                ..files.clone()
            },
            "password file",
        );
        bad(
            AccessFiles {
                password_file: Some(w("empty", "\n")),
                ..files.clone()
            },
            "no password",
        );
        bad(
            AccessFiles {
                password_file: Some(d.path().join("missing")),
                ..files.clone()
            },
            "cannot read",
        );
        bad(
            AccessFiles {
                ca: None,
                ..files.clone()
            },
            "give the farm's CA",
        );
    }
}
