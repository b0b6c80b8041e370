//! NSNEW, NSDEL, NSLIST, NSINFO, NSSET, SELECT, NSJUMP, RELOAD, FLUSH.

use std::sync::Arc;

use super::Session;
use super::system::{challenge_hash, same_secret};
use super::{either, need_admin, writable};
use crate::engine::{LockState, Mode, Namespace, RunMode};
use crate::protocol::{Args, Reply};
use crate::shared::{NsHandle, Shared};

const MAX_NAME: usize = 128;
const DEFAULT: &[u8] = b"default";

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(super) fn nsnew(s: &Session, sh: &Shared, args: &Args) -> Reply {
    either((|| {
        need_admin(s)?;
        if args.len() != 2 {
            return Err(Reply::err("Unexpected arguments"));
        }
        let name = &args[1][..];
        if name.len() > MAX_NAME {
            return Err(Reply::err("Namespace too long"));
        }
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name == DEFAULT
            || name.contains(&b'/')
            || name.contains(&0)
        {
            return Err(Reply::err("This name is not allowed"));
        }
        match sh.create(name) {
            Ok(true) => {}
            Ok(false) => return Err(Reply::err("This namespace is not available")),
            Err(e) => {
                tracing::error!(namespace = %lossy(name), error = %e, "namespace creation failed");
                return Err(Reply::err("Could not create namespace"));
            }
        }
        sh.hooks.fire("namespace-created", vec![lossy(name)]);
        Ok(Reply::ok())
    })())
}

pub(super) fn nsdel(s: &Session, sh: &Shared, args: &Args) -> Reply {
    either((|| {
        need_admin(s)?;
        if args.len() != 2 {
            return Err(Reply::err("Unexpected arguments"));
        }
        let name = &args[1][..];
        if name == DEFAULT {
            return Err(Reply::err("Cannot remove default namespace"));
        }
        let Some(target) = sh.get(name) else {
            return Err(Reply::err("This namespace doesn't exists"));
        };
        if Arc::ptr_eq(&target, &s.ns) {
            return Err(Reply::err(
                "Cannot remove namespace you're currently using.",
            ));
        }
        if let Err(e) = sh.delete(name) {
            tracing::error!(namespace = %lossy(name), error = %e, "namespace removal failed");
            return Err(Reply::err("Internal Server Error"));
        }
        sh.hooks.fire("namespace-deleted", vec![lossy(name)]);
        Ok(Reply::ok())
    })())
}

pub(super) fn nslist(sh: &Shared) -> Reply {
    Reply::Array(sh.names().into_iter().map(Reply::bulk).collect())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub(super) fn nsinfo(s: &Session, sh: &Shared, args: &Args) -> Reply {
    either((|| {
        if args.len() != 2 {
            return Err(Reply::err("Unexpected arguments"));
        }
        let handle = sh
            .get(&args[1])
            .ok_or_else(|| Reply::err("Namespace not found"))?;
        let ns = handle.ns.read();
        Ok(Reply::bulk(info_text(s, sh, &ns).into_bytes()))
    })())
}

fn info_text(s: &Session, sh: &Shared, ns: &Namespace) -> String {
    use std::fmt::Write;
    let d = ns.descriptor();
    let mb = |b: u64| format!("{:.2}", b as f64 / (1024.0 * 1024.0));
    let password = sh.password_of(ns);
    let mut t = String::new();
    let _ = writeln!(t, "# namespace");
    let _ = writeln!(t, "name: {}", lossy(ns.name()));
    let _ = writeln!(t, "entries: {}", ns.entries());
    let _ = writeln!(t, "public: {}", yes(sh.is_public(ns)));
    let _ = writeln!(t, "worm: {}", yes(d.worm));
    let _ = writeln!(t, "locked: {}", yes(ns.lock != LockState::Open));
    let _ = writeln!(t, "password: {}", yes(password.is_some()));
    let _ = writeln!(t, "data_size_bytes: {}", ns.data_size_bytes());
    let _ = writeln!(t, "data_size_mb: {}", mb(ns.data_size_bytes()));
    let _ = writeln!(t, "data_limits_bytes: {}", ns.maxsize());
    let idx = ns.index_size_bytes();
    let _ = writeln!(t, "index_size_bytes: {idx}");
    let _ = writeln!(t, "index_size_kb: {:.2}", idx as f64 / 1024.0);
    // 0-db prints bswap64(nextentry) with %08llx; 0-db-fs parses exactly that.
    let _ = writeln!(
        t,
        "next_internal_id: 0x{:08x}",
        ns.next_entry().swap_bytes()
    );
    let _ = writeln!(
        t,
        "mode: {}",
        if ns.mode() == Mode::User {
            "userkey"
        } else {
            "sequential"
        }
    );
    let st = ns.stats;
    let _ = writeln!(t, "stats_index_io_errors: {}", st.index_io_errors);
    let _ = writeln!(t, "stats_index_io_error_last: {}", st.index_io_error_last);
    let _ = writeln!(t, "stats_index_faults: {}", st.index_faults);
    let _ = writeln!(t, "stats_data_io_errors: {}", st.data_io_errors);
    let _ = writeln!(t, "stats_data_io_error_last: {}", st.data_io_error_last);
    let _ = writeln!(t, "stats_data_faults: {}", st.data_faults);
    if ns.maxsize() > 0 {
        let _ = writeln!(
            t,
            "space_available: {}",
            ns.maxsize().saturating_sub(ns.data_size_bytes())
        );
    }
    let (idir, ddir) = ns.dirs();
    let free = |p: &std::path::Path| ns.storage().free_space(p).unwrap_or(0);
    let (ifree, dfree) = (free(&idir), free(&ddir));
    let _ = writeln!(t, "index_disk_freespace_bytes: {ifree}");
    let _ = writeln!(t, "index_disk_freespace_mb: {}", mb(ifree));
    let _ = writeln!(t, "data_disk_freespace_bytes: {dfree}");
    let _ = writeln!(t, "data_disk_freespace_mb: {}", mb(dfree));
    if s.master {
        let _ = writeln!(t, "password_raw: {}", lossy(&password.unwrap_or_default()));
    }
    if s.admin {
        let (ipath, dpath) = ns.active_paths();
        let (id, off) = ns.current_position();
        let _ = writeln!(t, "data_path: {}", ddir.display());
        let _ = writeln!(t, "data_active: {}", dpath.display());
        let _ = writeln!(t, "index_path: {}", idir.display());
        let _ = writeln!(t, "index_active: {}", ipath.display());
        let _ = writeln!(t, "data_current_id: {id}");
        let _ = writeln!(t, "data_current_offset: {off}");
        let _ = writeln!(t, "dead_bytes: {}", ns.dead_bytes());
    }
    t
}

pub(super) fn nsset(s: &Session, sh: &Shared, args: &Args) -> Reply {
    either((|| {
        need_admin(s)?;
        if args.len() != 4 {
            return Err(Reply::err("Unexpected arguments"));
        }
        let (name, prop, value) = (&args[1][..], &args[2][..], &args[3][..]);
        let handle = sh
            .get(name)
            .ok_or_else(|| Reply::err("Namespace not found"))?;
        if prop.len() > 256 || value.len() > 63 {
            return Err(Reply::err("Argument too long"));
        }
        let mut ns = handle.ns.write();
        let mut desc = ns.descriptor().clone();
        let flag = value.first() == Some(&b'1');
        let persistent = matches!(prop, b"maxsize" | b"password" | b"public" | b"worm");
        if persistent && name == DEFAULT {
            return Err(Reply::err("Cannot update default namespace"));
        }
        match prop {
            b"maxsize" => desc.maxsize = atoll(value),
            b"password" => {
                desc.password = (value != b"*" && !value.is_empty()).then(|| value.to_vec())
            }
            b"public" => desc.public = flag,
            b"worm" => desc.worm = flag,
            b"lock" => {
                ns.lock = if flag {
                    LockState::Locked
                } else {
                    LockState::Open
                }
            }
            b"freeze" => {
                ns.lock = if flag {
                    LockState::Frozen
                } else {
                    LockState::Open
                }
            }
            b"mode" => {
                if sh.cfg.engine.run_mode != RunMode::Mixed {
                    return Err(Reply::err(
                        "This server instance is configured to use a single runtime mode",
                    ));
                }
                let mode = match value {
                    b"user" => Mode::User,
                    b"seq" => Mode::Seq,
                    _ => return Err(Reply::err("Invalid property value (expected: user, seq)")),
                };
                if ns.mode() != mode {
                    if !ns.is_fresh() {
                        return Err(Reply::err("Cannot change mode of used namespace"));
                    }
                    ns.set_mode(mode).map_err(|e| {
                        tracing::error!(error = %e, "mode change failed");
                        Reply::err("Internal Server Error")
                    })?;
                }
            }
            _ => return Err(Reply::err("Invalid property")),
        }
        if persistent {
            ns.set_descriptor(desc).map_err(|e| {
                tracing::error!(namespace = %lossy(name), error = %e, "descriptor update failed");
                Reply::err("Internal Server Error")
            })?;
        }
        drop(ns);
        sh.hooks.fire("namespace-updated", vec![lossy(name)]);
        Ok(Reply::ok())
    })())
}

/// C `atoll`: leading digits, anything else stops the number.
fn atoll(v: &[u8]) -> u64 {
    v.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |acc, d| {
            acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

pub(super) fn select(s: &mut Session, sh: &Shared, args: &Args) -> Reply {
    either((|| {
        if args.len() < 2 {
            return Err(Reply::err("Invalid argument"));
        }
        if args.len() > 4 {
            return Err(Reply::err("Too many arguments"));
        }
        let name = &args[1][..];
        if name.len() > MAX_NAME {
            return Err(Reply::err("Namespace too long"));
        }
        let handle = sh
            .get(name)
            .ok_or_else(|| Reply::err("Namespace not found"))?;
        let (password, public) = {
            let ns = handle.ns.read();
            (sh.password_of(&ns), sh.is_public(&ns))
        };
        let writable = match args.len() {
            2 => match &password {
                None => true,
                Some(_) if public => false,
                Some(_) => return Err(Reply::err("Namespace protected and private")),
            },
            3 => {
                if args[2].len() > 255 {
                    return Err(Reply::err("Password too long"));
                }
                match &password {
                    None => true,
                    Some(p) if same_secret(p, &args[2]) => true,
                    Some(_) => return Err(Reply::err("Access denied")),
                }
            }
            _ => {
                if !args[2].eq_ignore_ascii_case(b"SECURE") {
                    return Err(Reply::err("Only SECURE extra method supported"));
                }
                let Some(nonce) = s.nonce.clone() else {
                    return Err(Reply::err(
                        "No CHALLENGE requested, secure authentication not available",
                    ));
                };
                if args[3].len() != 40 {
                    return Err(Reply::err("Invalid hash length"));
                }
                // Unlike 0-db, the nonce is consumed: a captured hash cannot be replayed.
                s.nonce = None;
                match &password {
                    None => true,
                    Some(p)
                        if same_secret(
                            challenge_hash(&nonce, p).as_bytes(),
                            &args[3].to_ascii_lowercase(),
                        ) =>
                    {
                        true
                    }
                    Some(_) => return Err(Reply::err("Access denied")),
                }
            }
        };
        s.ns = handle;
        s.writable = writable;
        Ok(Reply::ok())
    })())
}

pub(super) async fn nsjump(s: &Session, sh: &Arc<Shared>) -> Reply {
    if let Err(e) = need_admin(s) {
        return e;
    }
    let rot = s.ns.ns.write().jump();
    match rot {
        Ok(rot) => {
            super::data::after_rotation(s, sh, Some(rot)).await;
            Reply::ok()
        }
        Err(e) => Reply::err(e.to_string()),
    }
}

pub(super) fn reload(s: &Session, sh: &Shared, args: &Args) -> Reply {
    either((|| {
        need_admin(s)?;
        if args.len() != 2 {
            return Err(Reply::err("Unexpected arguments"));
        }
        match sh.reload(&args[1]) {
            Ok(true) => {}
            Ok(false) => return Err(Reply::err("Namespace not found")),
            Err(e) => {
                tracing::error!(error = %e, "reload failed");
                return Err(Reply::err("Internal Server Error"));
            }
        }
        sh.hooks.fire("namespace-reloaded", vec![lossy(&args[1])]);
        Ok(Reply::ok())
    })())
}

pub(super) fn flush(s: &Session, sh: &Shared) -> Reply {
    either((|| {
        let mut ns = s.ns.ns.write();
        if sh.password_of(&ns).is_none() || sh.is_public(&ns) {
            return Err(Reply::err("Flushing public namespace denied"));
        }
        writable(s, &ns)?;
        ns.flush()
            .map_err(|_| Reply::err("Internal Server Error"))?;
        Ok(Reply::ok())
    })())
}

/// The namespace an admin command `CMD [namespace]` works on: the current one by default.
fn admin_target(s: &Session, sh: &Shared, args: &Args) -> Result<Arc<NsHandle>, Reply> {
    need_admin(s)?;
    match args.len() {
        1 => Ok(s.ns.clone()),
        2 => sh
            .get(&args[1])
            .ok_or_else(|| Reply::err("Namespace not found")),
        _ => Err(Reply::err("Unexpected arguments")),
    }
}

/// NSCHECK [namespace] (admin): verify every entry, on a blocking thread (it reads every file)
/// and a step at a time (writers get in between); the report as a bulk string.
pub(super) async fn nscheck(s: &Session, sh: &Shared, args: &Args) -> Reply {
    let handle = match admin_target(s, sh, args) {
        Ok(h) => h,
        Err(e) => return e,
    };
    match tokio::task::spawn_blocking(move || handle.check()).await {
        Ok(report) => Reply::bulk(report.render().into_bytes()),
        Err(_) => Reply::err("Internal Server Error"),
    }
}

/// COMPACT [namespace] (admin): reclaim the space of overwritten and deleted entries, the
/// active pair's included (it is closed first when it holds any).
pub(super) async fn compact(s: &Session, sh: &Shared, args: &Args) -> Reply {
    let handle = match admin_target(s, sh, args) {
        Ok(h) => h,
        Err(e) => return e,
    };
    // The active pair too: any dead bytes there are worth closing it for.
    match handle.compact_now(sh.hooks.clone(), 1).await {
        Some(Ok(st)) => Reply::Status(
            format!(
                "Compacted: files={} reclaimed_bytes={}",
                st.files, st.reclaimed
            )
            .into(),
        ),
        None => Reply::err("Compaction already running"),
        Some(Err(e)) => {
            tracing::error!(error = %e, "compaction failed");
            Reply::err("Compaction failed, see server log")
        }
    }
}
