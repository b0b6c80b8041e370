//! zdb servers: which pools run one, starting or adopting them, keeping them alive, and
//! re-applying what zdb does not persist (freeze) after every (re)start.

use super::{DiskStatus, Storage};
use crate::policy;
use crate::state::NsRecord;
use crate::zdbs::{ZdbProc, ZdbSpec, ensure_layout};
use bus::api::storage::ZdbMode;
use std::time::{Duration, Instant};

const RETRY: Duration = Duration::from_secs(5);

/// Whether `listen:port` can be bound now.
fn port_free(listen: &str, port: u16) -> bool {
    let addr = if listen.contains(':') {
        format!("[{listen}]:{port}")
    } else {
        format!("{listen}:{port}")
    };
    std::net::TcpListener::bind(addr).is_ok()
}

impl Storage {
    fn zdb_spec(&self, disk: &str) -> Option<ZdbSpec> {
        let d = self.disks.get(disk)?;
        let p = d.pool.as_ref()?;
        Some(ZdbSpec {
            disk: disk.to_string(),
            binary: self.zdb_binary.clone(),
            root: p.mountpoint.join("zdb"),
            socket: self.paths.zdb_socket(disk),
            datasize: policy::zdb_datasize(p.record.size),
            listen: self.cfg.zdb.listen.clone(),
            port: p.record.zdb_port?,
        })
    }

    fn assign_port(&mut self, disk: &str) -> crate::Result<()> {
        let used: Vec<u16> = self
            .disks
            .values()
            .filter_map(|d| d.pool.as_ref()?.record.zdb_port)
            .collect();
        let Some(p) = self.disks.get_mut(disk).and_then(|d| d.pool.as_mut()) else {
            return Ok(());
        };
        if p.record.zdb_port.is_none() {
            let mut port = self.cfg.zdb.base_port;
            let listen = self.cfg.zdb.listen.clone();
            while used.contains(&port) || !port_free(&listen, port) {
                port = port.checked_add(1).ok_or_else(|| {
                    crate::Error::Unavailable("no free TCP port for a zdb server".into())
                })?;
            }
            p.record.zdb_port = Some(port);
            p.save()?;
        }
        Ok(())
    }

    /// Starts or adopts the zdb server of every pool that should have one.
    pub async fn ensure_zdbs(&mut self) {
        let views = self.views();
        let wanted: Vec<String> = self
            .disks
            .iter()
            .filter(|(_, d)| d.status == DiskStatus::Ready && d.zdb.is_none())
            .filter(|(_, d)| d.zdb_retry.is_none_or(|t| Instant::now() >= t))
            .filter(|(k, d)| {
                policy::hosts_zdb(&views, k)
                    || d.pool
                        .as_ref()
                        .is_some_and(|p| !p.record.namespaces.is_empty())
            })
            .map(|(k, _)| k.clone())
            .collect();
        for disk in wanted {
            if let Err(e) = self.start_zdb(&disk).await {
                tracing::warn!(disk = %disk, error = %e, "zdb not available");
                if let Some(d) = self.disks.get_mut(&disk) {
                    // Someone else took our port: pick another one next time.
                    if e.to_string().contains("in use")
                        && let Some(p) = d.pool.as_mut()
                    {
                        p.record.zdb_port = None;
                    }
                    d.zdb_error = Some(e.to_string());
                    d.zdb_retry = Some(Instant::now() + RETRY);
                }
            }
        }
    }

    async fn start_zdb(&mut self, disk: &str) -> crate::Result<()> {
        self.assign_port(disk)?;
        let spec = self
            .zdb_spec(disk)
            .ok_or_else(|| crate::Error::Unavailable(format!("disk {disk} has no pool")))?;
        ensure_layout(self.sys.as_ref(), &spec)?;
        let z = ZdbProc::adopt_or_start(spec, self.sys.as_ref()).await?;
        let d = self.entry_mut(disk)?;
        d.zdb = Some(z);
        d.zdb_error = None;
        d.zdb_retry = None;
        self.reconcile(disk).await
    }

    /// After a (re)start or adoption: re-freeze paused namespaces, account namespaces zdb has
    /// but our record lacks (a crash between NSNEW and saving), forget ones zdb lost.
    async fn reconcile(&mut self, disk: &str) -> crate::Result<()> {
        let d = self.entry_mut(disk)?;
        let (Some(z), Some(p)) = (&d.zdb, &mut d.pool) else {
            return Ok(());
        };
        let mut a = z.admin().await?;
        let live = a.nslist().await?;
        let mut changed = false;
        for name in &live {
            if !p.record.namespaces.contains_key(name)
                && let Some(info) = a.nsinfo(name).await?
            {
                tracing::warn!(disk, namespace = %name, "adopting namespace missing from the record");
                p.record.namespaces.insert(
                    name.clone(),
                    NsRecord {
                        size: info.maxsize,
                        mode: if info.seq {
                            ZdbMode::Seq
                        } else {
                            ZdbMode::User
                        },
                        public: info.public,
                        paused: info.locked,
                    },
                );
                changed = true;
            }
        }
        let lost: Vec<String> = p
            .record
            .namespaces
            .keys()
            .filter(|n| !live.contains(n))
            .cloned()
            .collect();
        for name in lost {
            tracing::warn!(disk, namespace = %name, "namespace gone from zdb, dropping its record");
            p.record.namespaces.remove(&name);
            changed = true;
        }
        for (name, ns) in &p.record.namespaces {
            if ns.paused {
                a.nsset(name, "freeze", "1").await?;
            }
        }
        if changed {
            p.save()?;
        }
        Ok(())
    }

    /// Keeps zdb servers alive: restarts a dead or hung one (unless its disk failed).
    pub async fn supervise(&mut self) {
        let disks: Vec<String> = self.disks.keys().cloned().collect();
        for disk in disks {
            let sys = self.sys.clone();
            let Some(d) = self.disks.get_mut(&disk) else {
                continue;
            };
            let Some(z) = d.zdb.as_mut() else { continue };
            let dead = z.exited();
            if !dead && z.healthy().await {
                continue;
            }
            if d.status != DiskStatus::Ready {
                continue;
            }
            tracing::warn!(disk = %disk, pid = z.pid, dead, "zdb down, restarting");
            match z.restart(sys.as_ref()).await {
                Ok(()) => {
                    if let Err(e) = self.reconcile(&disk).await {
                        tracing::warn!(disk = %disk, error = %e, "re-applying namespace state failed");
                    }
                }
                Err(e) => {
                    tracing::warn!(disk = %disk, error = %e, "zdb restart failed");
                    if let Some(d) = self.disks.get_mut(&disk) {
                        d.zdb = None;
                        d.zdb_error = Some(e.to_string());
                        d.zdb_retry = Some(Instant::now() + RETRY);
                    }
                }
            }
        }
        self.ensure_zdbs().await;
    }
}
