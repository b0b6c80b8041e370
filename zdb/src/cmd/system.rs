//! PING, TIME, INFO, AUTH, WAIT, HOOKS, STOP, MIRROR, MASTER.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha1::{Digest, Sha1};

use super::Session;
use super::{Cmd, PERMISSION_DENIED, either, need_admin};
use crate::protocol::{Args, Reply};
use crate::shared::Shared;

pub(super) fn time() -> Reply {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Reply::Array(vec![
        Reply::bulk(now.as_secs().to_string()),
        Reply::bulk(now.subsec_micros().to_string()),
    ])
}

/// `sha1("<nonce>:<password>")` as lowercase hex.
pub(crate) fn challenge_hash(nonce: &str, password: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(nonce.as_bytes());
    h.update(b":");
    h.update(password);
    hex::encode(h.finalize())
}

/// Constant-time comparison for secrets.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// AUTH password / AUTH SECURE CHALLENGE / AUTH SECURE hash: on a session's `admin` flag and
/// pending `nonce` (also before the session exists, while zdb loads).
pub(super) fn auth(
    admin: &mut bool,
    nonce: &mut Option<String>,
    sh: &Shared,
    args: &Args,
) -> Reply {
    either((|| {
        match args.len() {
            2 => {}
            3 => return auth_secure(admin, nonce, sh, &args[1], &args[2]),
            _ => return Err(Reply::err("Unexpected arguments")),
        }
        let Some(password) = &sh.cfg.admin else {
            return Err(Reply::err("Authentication disabled"));
        };
        if args[1].len() > 128 {
            return Err(Reply::err("Password too long"));
        }
        if !same_secret(&args[1], password.as_bytes()) {
            return Err(Reply::err("Access denied"));
        }
        *admin = true;
        Ok(Reply::ok())
    })())
}

fn auth_secure(
    admin: &mut bool,
    nonce: &mut Option<String>,
    sh: &Shared,
    method: &[u8],
    arg: &[u8],
) -> Result<Reply, Reply> {
    if !method.eq_ignore_ascii_case(b"SECURE") {
        return Err(Reply::err("Only SECURE extra method supported"));
    }
    if arg.eq_ignore_ascii_case(b"CHALLENGE") {
        let fresh = nodeutil::random::hex(8);
        *nonce = Some(fresh.clone());
        return Ok(Reply::Status(fresh.into()));
    }
    let Some(pending) = nonce.take() else {
        return Err(Reply::err(
            "No CHALLENGE requested, secure authentication not available",
        ));
    };
    if arg.len() != 40 {
        // The nonce stays for a well-formed answer.
        *nonce = Some(pending);
        return Err(Reply::err("Invalid hash length"));
    }
    let Some(password) = &sh.cfg.admin else {
        return Err(Reply::err("Authentication disabled"));
    };
    let expected = challenge_hash(&pending, password.as_bytes());
    if !same_secret(expected.as_bytes(), &arg.to_ascii_lowercase()) {
        return Err(Reply::err("Access denied"));
    }
    *admin = true;
    Ok(Reply::ok())
}

/// Counts a client in INFO's `blocked_clients` while it waits.
struct Blocked<'a>(&'a AtomicU64);

impl<'a> Blocked<'a> {
    fn count(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Blocked(counter)
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn wait(s: &Session, sh: &Shared, args: &Args) -> Reply {
    if !(2..=3).contains(&args.len()) {
        return Reply::err("Invalid arguments");
    }
    let Some(target) = Cmd::lookup(&args[1]) else {
        return Reply::err("Unknown command to watch");
    };
    let timeout_ms = match args.get(2) {
        None => 5000,
        Some(t) => match std::str::from_utf8(t)
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
        {
            Some(ms) if (100..=1_800_000).contains(&ms) => ms,
            _ => return Reply::err("Invalid timeout"),
        },
    };
    let mut rx = s.ns.events.subscribe();
    // Counted once subscribed: a client that sees it in INFO knows the WAIT will see its
    // command.
    let _blocked = Blocked::count(&sh.stats.blocked_clients);
    let me = s.id;
    let watch = async {
        loop {
            match rx.recv().await {
                Ok((client, name))
                    if client != me && (target == Cmd::Any || name == target.name()) =>
                {
                    return Some(name);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    };
    match tokio::time::timeout(Duration::from_millis(timeout_ms), watch).await {
        Ok(Some(name)) => Reply::Status(name.to_string().into()),
        _ => Reply::err("Timeout"),
    }
}

pub(super) fn hooks(s: &Session, sh: &Shared) -> Reply {
    if let Err(e) = need_admin(s) {
        return e;
    }
    Reply::Array(
        sh.hooks
            .list()
            .into_iter()
            .map(|r| {
                Reply::Array(vec![
                    Reply::bulk(r.event),
                    Reply::Array(r.args.into_iter().map(Reply::bulk).collect()),
                    Reply::Int(i64::from(r.pid)),
                    Reply::Int(r.started as i64),
                    Reply::Int(r.finished as i64),
                    Reply::Int(r.status),
                ])
            })
            .collect(),
    )
}

pub(super) fn stop(s: &Session, sh: &Arc<Shared>) -> Reply {
    if !s.admin {
        return Reply::err(PERMISSION_DENIED);
    }
    tracing::info!("STOP requested by a client");
    sh.request_stop();
    Reply::Status("Stopping".into())
}

pub(super) fn mirror(s: &mut Session, sh: &Shared) -> Reply {
    if let Err(e) = need_admin(s) {
        return e;
    }
    s.mirror = Some(sh.mirror.subscribe());
    Reply::Status("Starting mirroring".into())
}

pub(super) fn master(s: &mut Session) -> Reply {
    if let Err(e) = need_admin(s) {
        return e;
    }
    s.master = true;
    Reply::Status("Hello, master".into())
}

pub(super) fn info(sh: &Shared) -> Reply {
    let st = &sh.stats;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let now = crate::now_secs();
    let mb = |b: u64| format!("{:.2}", b as f64 / (1024.0 * 1024.0));
    let (dr, dw) = (get(&st.data_read_bytes), get(&st.data_write_bytes));
    let text = format!(
        "# server\n\
         server_name: 0-db (zdb)\n\
         server_revision: {rev}\n\
         engine_revision: {rev}\n\
         instance_id: {id}\n\
         boot_time: {boot}\n\
         uptime: {up}\n\
         \n# clients\n\
         clients_lifetime: {clients}\n\
         blocked_clients: {blocked}\n\
         \n# internals\n\
         sequential_key_size: 8\n\
         data_version: 3\n\
         index_version: 4\n\
         \n# stats\n\
         commands_executed: {exec}\n\
         commands_failed: {failed}\n\
         commands_unauthorized: {unauth}\n\
         index_disk_read_failed: 0\n\
         index_disk_write_failed: 0\n\
         data_disk_read_failed: 0\n\
         data_disk_write_failed: 0\n\
         index_disk_read_bytes: 0\n\
         index_disk_read_mb: 0.00\n\
         index_disk_write_bytes: 0\n\
         index_disk_write_mb: 0.00\n\
         data_disk_read_bytes: {dr}\n\
         data_disk_read_mb: {drm}\n\
         data_disk_write_bytes: {dw}\n\
         data_disk_write_mb: {dwm}\n\
         network_rx_bytes: {rx}\n\
         network_rx_mb: {rxm}\n\
         network_tx_bytes: {tx}\n\
         network_tx_mb: {txm}\n\
         \n{loading}",
        rev = env!("CARGO_PKG_VERSION"),
        id = sh.instance_id,
        boot = sh.boot_time,
        up = now.saturating_sub(sh.boot_time),
        clients = get(&st.clients_lifetime),
        blocked = get(&st.blocked_clients),
        exec = get(&st.commands_executed),
        failed = get(&st.commands_failed),
        unauth = get(&st.commands_unauthorized),
        drm = mb(dr),
        dwm = mb(dw),
        rx = get(&st.network_rx),
        rxm = mb(get(&st.network_rx)),
        tx = get(&st.network_tx),
        txm = mb(get(&st.network_tx)),
        loading = sh.loading.info(),
    );
    Reply::bulk(text.into_bytes())
}

/// PROMOTE (admin): a follower stops replicating and accepts writes.
pub(super) fn promote(s: &Session, sh: &Shared) -> Reply {
    if let Err(e) = need_admin(s) {
        return e;
    }
    if !sh.is_follower() {
        return Reply::err("Not a replica");
    }
    sh.promote();
    tracing::info!("promoted: replication stopped, writes accepted");
    Reply::ok()
}
