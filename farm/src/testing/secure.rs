//! The material of a secured test cluster: a CA made with the `openssl` tool, a certificate
//! for the members (127.0.0.1) and one for the client `root`, the password of etcd's user
//! `root` in a file, and turning etcd's auth on. Everything lives in the cluster's folder.

use super::HarnessError;
use crate::meta::AccessFiles;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The etcd user the harness makes (etcd's all-powerful one).
pub const USER: &str = "root";

/// The files of a secured cluster.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The members' certificate and key.
    pub server: (PathBuf, PathBuf),
    /// The client's certificate and key (CN `root`).
    pub client: (PathBuf, PathBuf),
    /// The file holding `root`'s password.
    pub password_file: PathBuf,
    /// etcd's auth tokens: JWTs signed with this key pair (public, private), valid on every
    /// member (etcd's default "simple" tokens are known only to the member that made them).
    pub jwt: (PathBuf, PathBuf),
}

impl TlsFiles {
    /// etcd's `--auth-token` value.
    pub fn auth_token(&self) -> String {
        format!(
            "jwt,pub-key={},priv-key={},sign-method=ES256,ttl=10m",
            self.jwt.0.display(),
            self.jwt.1.display()
        )
    }
}

impl TlsFiles {
    /// What a client of the cluster needs.
    pub fn access(&self) -> AccessFiles {
        AccessFiles {
            ca: Some(self.ca.clone()),
            cert: Some(self.client.0.clone()),
            key: Some(self.client.1.clone()),
            user: Some(USER.into()),
            password_file: Some(self.password_file.clone()),
        }
    }

    /// `root`'s password.
    pub fn password(&self) -> std::io::Result<String> {
        Ok(std::fs::read_to_string(&self.password_file)?
            .trim_end()
            .to_string())
    }
}

/// Runs `openssl ARGS` in `dir` (`args` split at spaces: none of ours holds one).
fn openssl(dir: &Path, args: &str) -> Result<(), HarnessError> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "openssl {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
        .into());
    }
    Ok(())
}

/// A new P-256 key, unencrypted.
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/// A P-256 key and a certificate for `cn`, signed by the CA in `dir`, with `ext` (an
/// extensions file's lines).
fn signed(dir: &Path, name: &str, cn: &str, ext: &str) -> Result<(PathBuf, PathBuf), HarnessError> {
    let (key, csr, pem, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extfile), ext)?;
    openssl(
        dir,
        &format!("req {NEW_KEY} -keyout {key} -out {csr} -subj /CN={cn}"),
    )?;
    openssl(
        dir,
        &format!(
            "x509 -req -in {csr} -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out {pem} \
             -extfile {extfile}"
        ),
    )?;
    Ok((dir.join(pem), dir.join(key)))
}

/// Makes the CA, the members' and the client's certificates and the password file in `dir`.
pub fn make(dir: &Path) -> Result<TlsFiles, HarnessError> {
    openssl(
        dir,
        &format!("req -x509 {NEW_KEY} -keyout ca.key -out ca.pem -days 2 -subj /CN=farm-test-ca"),
    )?;
    let server = signed(
        dir,
        "server",
        "etcd",
        // 10.0.2.2: the host as a qemu guest of the image test reaches it
        "subjectAltName=IP:127.0.0.1,IP:10.0.2.2\nextendedKeyUsage=serverAuth,clientAuth\n",
    )?;
    let client = signed(dir, "client", USER, "extendedKeyUsage=clientAuth\n")?;
    openssl(dir, "ecparam -name prime256v1 -genkey -noout -out jwt.key")?;
    openssl(dir, "ec -in jwt.key -pubout -out jwt.pub")?;
    let password_file = dir.join("root.password");
    std::fs::write(&password_file, format!("{}\n", nodeutil::random::hex(16)))?;
    Ok(TlsFiles {
        ca: dir.join("ca.pem"),
        server,
        client,
        password_file,
        jwt: (dir.join("jwt.pub"), dir.join("jwt.key")),
    })
}

/// Adds user `root` with the password of `files` and turns etcd's auth on, through the
/// member at `endpoint` (on a thread of its own: callers may be inside a runtime).
pub fn enable_auth(endpoint: &str, files: &TlsFiles) -> Result<(), HarnessError> {
    let password = files.password()?;
    let access = crate::meta::EtcdAccess::load(&AccessFiles {
        user: None,
        password_file: None,
        ..files.access()
    })
    .map_err(std::io::Error::other)?;
    let endpoint = endpoint.to_string();
    std::thread::scope(|s| {
        s.spawn(move || -> Result<(), HarnessError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let opts = access.apply(etcd_client::ConnectOptions::new());
                let mut c = etcd_client::Client::connect([endpoint.as_str()], Some(opts))
                    .await
                    .map_err(std::io::Error::other)?;
                c.user_add(USER, password, None)
                    .await
                    .map_err(std::io::Error::other)?;
                c.user_grant_role(USER, "root")
                    .await
                    .map_err(std::io::Error::other)?;
                c.auth_enable().await.map_err(std::io::Error::other)?;
                Ok(())
            })
        })
        .join()
        .map_err(|_| HarnessError::Io(std::io::Error::other("auth set-up panicked")))?
    })
}
