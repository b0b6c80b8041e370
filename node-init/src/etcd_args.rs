//! The flags that secure the way to a farm's etcd, the same for `node-init --etcd` and every
//! `zos ... --etcd` command: TLS material and etcd's user, all as files (a password never goes
//! on a command line). See [`farm::meta::access`].

use anyhow::Context;
use farm::meta::{AccessFiles, EtcdAccess};
use std::path::PathBuf;

/// TLS and auth for the farm's etcd.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EtcdSecurity {
    /// CA certificate (PEM) of the farm's etcd: its members are then reached over TLS only
    /// (https:// URLs) and must present a certificate from this CA
    #[arg(long, env = "ZOS_ETCD_CA", value_name = "FILE", global = true)]
    pub etcd_ca: Option<PathBuf>,
    /// Client certificate (PEM), for members that require one (with --etcd-key)
    #[arg(long, env = "ZOS_ETCD_CERT", value_name = "FILE", global = true)]
    pub etcd_cert: Option<PathBuf>,
    /// Private key (PEM) of --etcd-cert
    #[arg(long, env = "ZOS_ETCD_KEY", value_name = "FILE", global = true)]
    pub etcd_key: Option<PathBuf>,
    /// etcd user, when the farm's etcd has its auth on (password from --etcd-password-file)
    #[arg(long, env = "ZOS_ETCD_USER", value_name = "NAME", global = true)]
    pub etcd_user: Option<String>,
    /// File whose first line is the etcd user's password
    #[arg(
        long,
        env = "ZOS_ETCD_PASSWORD_FILE",
        value_name = "FILE",
        global = true
    )]
    pub etcd_password_file: Option<PathBuf>,
}

impl EtcdSecurity {
    /// The files, read and checked.
    pub fn load(&self) -> anyhow::Result<EtcdAccess> {
        EtcdAccess::load(&AccessFiles {
            ca: self.etcd_ca.clone(),
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
            user: self.etcd_user.clone(),
            password_file: self.etcd_password_file.clone(),
        })
        .context("etcd access")
    }
}
