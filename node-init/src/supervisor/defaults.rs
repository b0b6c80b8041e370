//! The definitions node-init writes for the daemons it runs (storaged, computed, netd) and
//! loading every definition in `<node>/services/`.

use super::service::{self, DefError, Readiness, Service, ServiceDef};
use crate::daemon::Config;
use std::path::{Path, PathBuf};

/// The default definitions of the daemons `cfg` asks node-init to run; `storaged_config` is
/// the config file it wrote for storaged.
pub fn node_defaults(cfg: &Config, storaged_config: &Path) -> Vec<(&'static str, ServiceDef)> {
    let run = cfg.run_dir();
    let s = |p: PathBuf| p.display().to_string();
    let bus = |name: &str| Readiness::Bus(bus::service_socket(&run, name));
    let mut out = Vec::new();
    if cfg.start_storaged {
        let mut d = ServiceDef::new(
            &cfg.storaged_bin,
            vec![
                "--config".into(),
                s(storaged_config.to_path_buf()),
                "--root".into(),
                s(cfg.node_dir.join("storaged")),
                "--run".into(),
                s(run.clone()),
            ],
        );
        // With the node's state on storaged's volume, nothing may start before it is mounted.
        d.ready = if cfg.state_on_volume {
            Readiness::Path(cfg.state_volume_link())
        } else {
            bus("storaged")
        };
        d.ready_timeout_secs = cfg.storaged_timeout.as_secs().max(1);
        out.push(("storaged", d));
    }
    if cfg.start_computed {
        let mut d = ServiceDef::new(
            &cfg.computed_bin,
            vec![
                "--root".into(),
                s(cfg.node_dir.join("computed")),
                "--run".into(),
                s(run.clone()),
                "--netns-prefix".into(),
                cfg.computed_netns_prefix.clone(),
                "--cgroup-parent".into(),
                cfg.computed_cgroup_parent.clone(),
            ],
        );
        d.ready = bus("computed");
        d.ready_timeout_secs = cfg.storaged_timeout.as_secs().max(1);
        if cfg.start_storaged {
            d.after = vec!["storaged".into()];
        }
        out.push(("computed", d));
    }
    if cfg.start_netd {
        let handover = run.join("netd.handover");
        let mut d = ServiceDef::new(
            &cfg.netd_bin,
            vec![
                "--state".into(),
                s(cfg.netd_dir()),
                "--run".into(),
                s(run.clone()),
                "--netns-prefix".into(),
                cfg.netd_netns_prefix.clone(),
                "--handover".into(),
                s(handover.clone()),
            ],
        );
        d.ready = bus("netd");
        // netd's records carry a schema version; an upgrade migrates a copy (`netd --migrate`)
        d.state_dir = Some(cfg.netd_dir());
        // and a new netd takes the tunnels of the running one over (`netd --take-over`)
        d.take_over = Some(handover);
        d.ready_timeout_secs = cfg.storaged_timeout.as_secs().max(1);
        if cfg.start_storaged {
            d.after = vec!["storaged".into()];
        }
        out.push(("netd", d));
    }
    out
}

/// Writes the missing `defaults` into `dir`, then loads every `*.json` definition there
/// (sorted by name): an operator may add a service by dropping a file.
pub fn load_all(dir: &Path, defaults: &[(&str, ServiceDef)]) -> Result<Vec<Service>, DefError> {
    let read = |source| DefError::Read {
        path: dir.to_path_buf(),
        source,
    };
    nodeutil::fs::create_private_dir(dir).map_err(read)?;
    for (name, def) in defaults {
        service::load_or_write(dir, name, def)?;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.iter().map(|p| service::load(p)).collect()
}
