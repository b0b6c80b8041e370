//! zdb servers: which pools run one, starting or adopting them, watching them every second
//! (all at once, each probe bounded), restarting a dead or hung one with backoff and never a
//! loading one ([`crate::zdbs::watch`]), and re-applying what zdb does not persist (freeze)
//! once a new run serves.

use super::{DiskStatus, Storage};
use crate::policy;
use crate::state::NsRecord;
use crate::zdbs::{Answer, Verdict, ZdbProc, ZdbSpec, activity, ensure_layout};
use bus::api::storage::ZdbMode;
use std::time::Instant;

/// Whether `listen:port` can be bound now.
fn port_free(listen: &str, port: u16) -> bool {
    let addr = if listen.contains(':') {
        format!("[{listen}]:{port}")
    } else {
        format!("{listen}:{port}")
    };
    std::net::TcpListener::bind(addr).is_ok()
}

/// How long a new run is looked at closely (every 50 ms) for its first answer.
const FIRST_ANSWER: std::time::Duration = std::time::Duration::from_secs(3);

/// What to do for one disk this round.
enum Todo {
    Nothing,
    Start,
    Watch,
}

impl Storage {
    /// One supervision round over every disk, all disks at once.
    pub async fn supervise(&self) {
        let disks: Vec<String> = self.with_state(|st| st.disks.keys().cloned().collect());
        let mut rounds = tokio::task::JoinSet::new();
        for disk in disks {
            let me = self.clone();
            rounds.spawn(async move { me.supervise_disk(&disk).await });
        }
        while rounds.join_next().await.is_some() {}
    }

    async fn supervise_disk(&self, disk: &str) {
        let now = Instant::now();
        let todo = self.with_state(|st| {
            let views = st.views();
            let Some(d) = st.disks.get_mut(disk) else {
                return Todo::Nothing;
            };
            if d.status != DiskStatus::Ready || d.handover {
                // A failed disk's server is left as it is, unsupervised; one being handed
                // over is the upgrade's.
                return Todo::Nothing;
            }
            match d.zdb {
                Some(_) => Todo::Watch,
                None => {
                    let wanted = policy::hosts_zdb(&views, disk)
                        || d.pool
                            .as_ref()
                            .is_some_and(|p| !p.record.namespaces.is_empty());
                    if wanted && d.watch.may_start(now) {
                        Todo::Start
                    } else {
                        Todo::Nothing
                    }
                }
            }
        });
        match todo {
            Todo::Nothing => {}
            Todo::Start => match self.start_zdb(disk).await {
                Err(e) => {
                    tracing::warn!(disk, error = %e, "zdb not available");
                    let in_use = e.to_string().contains("in use");
                    self.run_failed(disk, e.to_string(), in_use).await;
                }
                // Look closely for its first answer, so that what zdb forgets is re-applied
                // as soon as it serves, not a round later.
                Ok(()) => {
                    let deadline = Instant::now() + FIRST_ANSWER;
                    while self.watch_once(disk).await && Instant::now() < deadline {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            },
            Todo::Watch => {
                self.watch_once(disk).await;
            }
        }
    }

    /// Probes the server of `disk` once and acts on the verdict; whether it is still starting
    /// or loading (worth looking again soon).
    async fn watch_once(&self, disk: &str) -> bool {
        let Some((pid, alive, endpoint)) = self.with_state(|st| {
            let z = st.disks.get_mut(disk)?.zdb.as_mut()?;
            Some((z.pid, !z.exited(), z.endpoint()))
        }) else {
            return false;
        };
        let answer = if alive {
            endpoint.probe().await
        } else {
            Answer::Silent("exited".into())
        };
        let work = activity(pid);
        let verdict = self.with_state(|st| {
            let d = st.disks.get_mut(disk).filter(|d| !d.handover)?;
            let v = d.watch.observe(alive, answer, work, Instant::now());
            Some((v, d.reconciled))
        });
        match verdict {
            Some((Verdict::Up { .. }, false)) => {
                if let Err(e) = self.reconcile(disk).await {
                    tracing::warn!(disk, error = %e, "re-applying namespace state failed");
                }
                false
            }
            Some((Verdict::Restart(why), _)) => {
                self.restart(disk, why).await;
                false
            }
            Some((Verdict::Wait, _)) => self.with_state(|st| {
                st.disks.get(disk).is_some_and(|d| {
                    matches!(
                        d.watch.state,
                        crate::zdbs::ZdbState::Starting | crate::zdbs::ZdbState::Loading(_)
                    )
                })
            }),
            _ => false,
        }
    }

    /// The current run ended (or could not start): stop what is left of it, count it, back off.
    async fn restart(&self, disk: &str, why: String) {
        let Some(z) = self.with_state(|st| {
            let d = st.disks.get_mut(disk).filter(|d| !d.handover)?;
            Some(d.zdb.take())
        }) else {
            // being handed over: the upgrade decides
            return;
        };
        let mut why = why;
        if let Some(mut z) = z {
            if let Some(reason) = z.exit_reason() {
                why = reason;
            }
            tracing::warn!(disk, pid = z.pid, reason = %why, "zdb down, restarting");
            z.stop(self.sys()).await;
        }
        let in_use = why.contains("in use");
        self.run_failed(disk, why, in_use).await;
    }

    async fn run_failed(&self, disk: &str, why: String, port_in_use: bool) {
        self.with_state(|st| {
            if let Some(d) = st.disks.get_mut(disk) {
                d.watch.run_failed(why, Instant::now());
                d.reconciled = false;
            }
        });
        if port_in_use {
            // Someone else took our port: pick another one next time.
            let _pool = self.lock_pool(disk).await;
            let _ = self.commit(disk, |r| r.zdb_port = None, |_| {}).await;
        }
    }

    pub(super) fn zdb_spec(&self, disk: &str) -> Option<ZdbSpec> {
        self.with_state(|st| {
            let d = st.disks.get(disk)?;
            let p = d.pool.as_ref()?;
            Some(ZdbSpec {
                disk: disk.to_string(),
                binary: self.zdb_binary(),
                root: p.mountpoint.join("zdb"),
                socket: self.paths().zdb_socket(disk),
                datasize: policy::zdb_datasize(p.record.size),
                listen: st.cfg.zdb.listen.clone(),
                port: p.record.zdb_port?,
            })
        })
    }

    /// Gives the pool a TCP port for its server once (recorded, kept across restarts).
    async fn assign_port(&self, disk: &str) -> crate::Result<()> {
        let (has, used, listen, base) = self.with_state(|st| {
            let used: Vec<u16> = st
                .disks
                .values()
                .filter_map(|d| d.pool.as_ref()?.record.zdb_port)
                .collect();
            let has = st
                .disks
                .get(disk)
                .and_then(|d| d.pool.as_ref())
                .is_some_and(|p| p.record.zdb_port.is_some());
            (has, used, st.cfg.zdb.listen.clone(), st.cfg.zdb.base_port)
        });
        if has {
            return Ok(());
        }
        let mut port = base;
        while used.contains(&port) || !port_free(&listen, port) {
            port = port.checked_add(1).ok_or_else(|| {
                crate::Error::Unavailable("no free TCP port for a zdb server".into())
            })?;
        }
        self.commit(disk, |r| r.zdb_port = Some(port), |r| r.zdb_port = None)
            .await
    }

    /// Starts (or adopts) the server of `disk`; it is watched from the next round on.
    async fn start_zdb(&self, disk: &str) -> crate::Result<()> {
        let _pool = self.lock_pool(disk).await;
        self.assign_port(disk).await?;
        let spec = self
            .zdb_spec(disk)
            .ok_or_else(|| crate::Error::Unavailable(format!("disk {disk} has no pool")))?;
        let sys = self.sys();
        let step = self.limits().step;
        let z = self
            .blocking(disk, "starting zdb", step, move || {
                ensure_layout(sys.as_ref(), &spec)?;
                Ok(ZdbProc::adopt_or_start(spec)?)
            })
            .await?;
        self.with_state(|st| {
            if let Some(d) = st.disks.get_mut(disk) {
                d.zdb = Some(z);
                d.watch.run_started(Instant::now());
                d.reconciled = false;
            }
        });
        Ok(())
    }

    /// Once a run serves: re-freeze paused namespaces, account namespaces zdb has but the
    /// record lacks (a crash between NSNEW and saving), forget ones zdb lost. Namespaces being
    /// created or deleted right now are left to their operation (it holds the pool's lock).
    async fn reconcile(&self, disk: &str) -> crate::Result<()> {
        let _pool = self.lock_pool(disk).await;
        let mut a = self.endpoint(disk)?.admin().await?;
        let live = a.nslist().await?;
        let known: Vec<(String, NsRecord)> = self.with_state(|st| {
            st.disks
                .get(disk)
                .and_then(|d| d.pool.as_ref())
                .map(|p| p.record.namespaces.clone().into_iter().collect())
                .unwrap_or_default()
        });
        let mut found = Vec::new();
        for name in &live {
            if !known.iter().any(|(n, _)| n == name)
                && let Some(info) = a.nsinfo(name).await?
            {
                tracing::warn!(disk, namespace = %name, "adopting namespace missing from the record");
                let mode = if info.seq {
                    ZdbMode::Seq
                } else {
                    ZdbMode::User
                };
                found.push((
                    name.clone(),
                    NsRecord {
                        size: info.maxsize,
                        mode,
                        public: info.public,
                        paused: info.locked,
                    },
                ));
            }
        }
        let lost: Vec<String> = known
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !live.contains(n))
            .collect();
        for name in &lost {
            tracing::warn!(disk, namespace = %name, "namespace gone from zdb, dropping its record");
        }
        for (name, ns) in &known {
            if ns.paused && live.contains(name) {
                a.nsset(name, "freeze", "1").await?;
            }
        }
        if !found.is_empty() || !lost.is_empty() {
            self.commit(
                disk,
                |r| {
                    r.namespaces.extend(found.iter().cloned());
                    r.namespaces.retain(|n, _| !lost.contains(n));
                },
                |r| {
                    for (n, _) in &found {
                        r.namespaces.remove(n);
                    }
                    r.namespaces
                        .extend(known.iter().filter(|(n, _)| lost.contains(n)).cloned());
                },
            )
            .await?;
        }
        self.with_state(|st| {
            if let Some(d) = st.disks.get_mut(disk) {
                d.reconciled = true;
            }
        });
        Ok(())
    }
}
