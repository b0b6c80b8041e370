//! Typed admin commands over a zdb unix socket (AUTH, NSNEW, NSSET, NSINFO, NSDEL, NSLIST).

use super::ZdbError;
use super::resp::{Reply, call};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::UnixStream;

const TIMEOUT: Duration = Duration::from_secs(10);

/// An authenticated admin connection.
pub struct Admin {
    conn: BufReader<UnixStream>,
}

/// The NSINFO fields storaged reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsInfo {
    /// `data_limits_bytes`.
    pub maxsize: u64,
    /// `public: yes`.
    pub public: bool,
    /// `mode: sequential`.
    pub seq: bool,
    /// `locked: yes` (lock or freeze).
    pub locked: bool,
    /// `password: yes`.
    pub password: bool,
}

fn expect_ok(reply: Reply, command: &str, target: &str) -> Result<(), ZdbError> {
    match reply {
        Reply::Simple(_) => Ok(()),
        Reply::Error(message) => Err(ZdbError::Refused {
            command: command.into(),
            target: target.into(),
            message,
        }),
        other => Err(ZdbError::Protocol(format!(
            "{command}: unexpected reply {other:?}"
        ))),
    }
}

impl Admin {
    /// Connects to `socket` and logs in with the admin password.
    pub async fn connect(socket: &Path, password: &str) -> Result<Admin, ZdbError> {
        let conn = tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(socket))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))
            .and_then(|r| r)
            .map_err(|source| ZdbError::Connect {
                socket: socket.to_path_buf(),
                source,
            })?;
        let mut a = Admin {
            conn: BufReader::new(conn),
        };
        let r = a.cmd(&[b"AUTH", password.as_bytes()]).await?;
        expect_ok(r, "AUTH", "")?;
        Ok(a)
    }

    async fn cmd(&mut self, args: &[&[u8]]) -> Result<Reply, ZdbError> {
        tokio::time::timeout(TIMEOUT, call(&mut self.conn, args))
            .await
            .map_err(|_| ZdbError::Protocol("reply timed out".into()))?
    }

    /// PING.
    pub async fn ping(&mut self) -> Result<(), ZdbError> {
        let r = self.cmd(&[b"PING"]).await?;
        expect_ok(r, "PING", "")
    }

    /// NSNEW.
    pub async fn nsnew(&mut self, name: &str) -> Result<(), ZdbError> {
        let r = self.cmd(&[b"NSNEW", name.as_bytes()]).await?;
        expect_ok(r, "NSNEW", name)
    }

    /// NSSET; `value` is not put in errors (it may be a password).
    pub async fn nsset(&mut self, name: &str, prop: &str, value: &str) -> Result<(), ZdbError> {
        let r = self
            .cmd(&[b"NSSET", name.as_bytes(), prop.as_bytes(), value.as_bytes()])
            .await?;
        expect_ok(r, &format!("NSSET {prop}"), name)
    }

    /// NSDEL; an absent namespace is fine.
    pub async fn nsdel(&mut self, name: &str) -> Result<(), ZdbError> {
        match self.cmd(&[b"NSDEL", name.as_bytes()]).await? {
            Reply::Error(m) if m.contains("doesn't exist") || m.contains("not found") => Ok(()),
            r => expect_ok(r, "NSDEL", name),
        }
    }

    /// NSLIST (without `default`).
    pub async fn nslist(&mut self) -> Result<Vec<String>, ZdbError> {
        match self.cmd(&[b"NSLIST"]).await? {
            Reply::Array(items) => Ok(items
                .into_iter()
                .filter_map(|i| match i {
                    Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
                    Reply::Simple(s) => Some(s),
                    _ => None,
                })
                .filter(|n| n != "default")
                .collect()),
            other => Err(ZdbError::Protocol(format!(
                "NSLIST: unexpected reply {other:?}"
            ))),
        }
    }

    /// NSINFO; `None` when the namespace does not exist.
    pub async fn nsinfo(&mut self, name: &str) -> Result<Option<NsInfo>, ZdbError> {
        let text = match self.cmd(&[b"NSINFO", name.as_bytes()]).await? {
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            Reply::Error(m) if m.contains("not found") => return Ok(None),
            Reply::Error(message) => {
                return Err(ZdbError::Refused {
                    command: "NSINFO".into(),
                    target: name.into(),
                    message,
                });
            }
            other => {
                return Err(ZdbError::Protocol(format!(
                    "NSINFO: unexpected reply {other:?}"
                )));
            }
        };
        let map: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once(": ")).collect();
        let yes = |k: &str| map.get(k).is_some_and(|v| *v == "yes");
        Ok(Some(NsInfo {
            maxsize: map
                .get("data_limits_bytes")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            public: yes("public"),
            seq: map.get("mode").is_some_and(|v| v.starts_with("seq")),
            locked: yes("locked"),
            password: yes("password"),
        }))
    }
}
