//! Typed admin commands over a zdb unix socket (AUTH, NSNEW, NSSET, NSINFO, NSDEL, NSLIST),
//! through the shared `zdb-client` (bounded replies, a deadline on every call), with
//! storaged's reading of the replies: an absent namespace is no error for NSDEL or NSINFO.

use std::path::Path;
use std::time::Duration;

use zdb_client::{AsyncClient, Config};

use super::ZdbError;

/// Bound on connecting to the socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on each reply.
const TIMEOUT: Duration = Duration::from_secs(10);

/// An authenticated admin connection.
pub struct Admin {
    client: AsyncClient,
    socket: std::path::PathBuf,
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

impl Admin {
    /// Connects to `socket` and logs in with the admin password.
    pub async fn connect(socket: &Path, password: &str) -> Result<Admin, ZdbError> {
        let cfg = Config::unix(socket)
            .with_admin(password)
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(TIMEOUT);
        let client = AsyncClient::connect(cfg)
            .await
            .map_err(|e| refusal(e, socket, ""))?;
        Ok(Admin {
            client,
            socket: socket.to_path_buf(),
        })
    }

    fn err(&self, target: &str) -> impl FnOnce(zdb_client::Error) -> ZdbError {
        let socket = self.socket.clone();
        let target = target.to_string();
        move |e| refusal(e, &socket, &target)
    }

    /// PING.
    pub async fn ping(&mut self) -> Result<(), ZdbError> {
        self.client.ping().await.map_err(self.err(""))
    }

    /// NSNEW.
    pub async fn nsnew(&mut self, name: &str) -> Result<(), ZdbError> {
        self.client.nsnew(name).await.map_err(self.err(name))
    }

    /// NSSET; `value` is not put in errors (it may be a password).
    pub async fn nsset(&mut self, name: &str, prop: &str, value: &str) -> Result<(), ZdbError> {
        let r = self.client.nsset(name, prop, value).await;
        r.map_err(|e| match e {
            zdb_client::Error::Server { message, .. } => ZdbError::Refused {
                command: format!("NSSET {prop}"),
                target: name.into(),
                message,
            },
            other => refusal(other, &self.socket, name),
        })
    }

    /// NSDEL; an absent namespace is fine.
    pub async fn nsdel(&mut self, name: &str) -> Result<(), ZdbError> {
        match self.client.nsdel(name).await {
            Err(zdb_client::Error::Server { message, .. })
                if message.contains("doesn't exist") || message.contains("not found") =>
            {
                Ok(())
            }
            r => r.map_err(self.err(name)),
        }
    }

    /// NSLIST (without `default`).
    pub async fn nslist(&mut self) -> Result<Vec<String>, ZdbError> {
        let mut names = self.client.nslist().await.map_err(self.err(""))?;
        names.retain(|n| n != "default");
        Ok(names)
    }

    /// NSINFO; `None` when the namespace does not exist.
    pub async fn nsinfo(&mut self, name: &str) -> Result<Option<NsInfo>, ZdbError> {
        let info = self.client.nsinfo(name).await.map_err(self.err(name))?;
        Ok(info.map(|i| NsInfo {
            maxsize: i.data_limits_bytes,
            public: i.public,
            seq: i.mode == zdb_client::Mode::Sequential,
            locked: i.locked,
            password: i.password,
        }))
    }
}

/// A client error as storaged reports it: a refusal names the command and namespace, a
/// connection failure the socket.
fn refusal(e: zdb_client::Error, socket: &Path, target: &str) -> ZdbError {
    match e {
        zdb_client::Error::Server { command, message } => ZdbError::Refused {
            command: command.into(),
            target: target.into(),
            message,
        },
        zdb_client::Error::Connect { source, .. } => ZdbError::Connect {
            socket: socket.to_path_buf(),
            source,
        },
        other => ZdbError::Client(other),
    }
}
