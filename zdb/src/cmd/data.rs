//! SET, GET, MGET, DEL, EXISTS, CHECK, LENGTH, KEYTIME, KEYCUR, HISTORY, DBSIZE.

use std::sync::Arc;

use tokio::io::AsyncWrite;

use super::Session;
use super::{Output, PERMISSION_DENIED, Rights, either, readable};
use crate::MAX_KEY;
use crate::engine::{
    CheckResult, DiskRead, Durability, HistoryError, Lookup, Mode, Namespace, OpError, Rotation,
    SetOutcome,
};
use crate::protocol::{Args, Reply};
use crate::shared::Shared;

/// Key checks shared by the read commands: `-Invalid key` over 255 bytes, `-Invalid argument`
/// when empty.
fn read_key(args: &Args) -> Result<&[u8], Reply> {
    if args.len() != 2 {
        return Err(Reply::err("Unexpected arguments"));
    }
    let key = &args[1][..];
    if key.len() > MAX_KEY {
        return Err(Reply::err("Invalid key"));
    }
    if key.is_empty() {
        return Err(Reply::err("Invalid argument"));
    }
    Ok(key)
}

/// Optional admin-only timestamp argument (replication).
fn timestamp(s: &Session, arg: Option<&[u8]>) -> Result<u32, Reply> {
    match arg {
        None => Ok(crate::now_secs() as u32),
        Some(_) if !s.admin => Err(Reply::err(PERMISSION_DENIED)),
        Some(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| Reply::err("Invalid argument")),
    }
}

/// `--sync`: wait, outside the namespace lock, until the write is on disk (group commit).
async fn durable(commit: Option<(u64, Arc<Durability>)>) -> Result<(), Reply> {
    match commit {
        Some((token, d)) => d.wait(token).await.map_err(|e| Reply::err(e.to_string())),
        None => Ok(()),
    }
}

/// Writers hold the namespace's hook gate shared while a blocking `jump-index` hook holds it
/// exclusively. Without `--hook` nothing ever takes it exclusively, so writers skip it (an
/// async lock per SET was ~1.4% of a pipelined SET's CPU).
async fn hook_gate<'a>(
    s: &'a Session,
    sh: &Shared,
) -> Option<tokio::sync::RwLockReadGuard<'a, ()>> {
    if sh.hooks.enabled() {
        Some(s.ns.hook_gate.read().await)
    } else {
        None
    }
}

/// After a write that rotated files: the rotation hooks (`NsHandle::run_rotation_hooks`).
pub(super) async fn after_rotation(s: &Session, sh: &Shared, rot: Option<Rotation>) {
    if let Some(rot) = rot {
        s.ns.run_rotation_hooks(&sh.hooks, rot).await;
    }
}

/// What a SET or DEL did: its reply, the rotation it made first, the group commit to wait for.
type Written = (Reply, Option<Rotation>, Option<(u64, Arc<Durability>)>);

/// Run the write `args` asks for on the namespace: here, under its lock, when it stays in
/// memory; on tokio's blocking pool when it is known to reach the disk (it rotates the files,
/// fsyncs, or writes a large value straight to the file: `Namespace::write_may_block`), where
/// waiting for the disk stalls nobody else (the request's bytes go along, shared). `write`
/// runs under the exclusive lock either way.
async fn write_off_worker(
    s: &Session,
    args: &Args,
    value_len: usize,
    write: impl FnOnce(&mut Namespace, &Args) -> Result<Written, Reply> + Send + 'static,
) -> Result<Written, Reply> {
    {
        let mut ns = s.ns.ns.write();
        if !ns.write_may_block(args[1].len(), value_len) {
            return write(&mut ns, args);
        }
    }
    let (handle, args) = (s.ns.clone(), args.clone());
    tokio::task::spawn_blocking(move || write(&mut handle.ns.write(), &args))
        .await
        .unwrap_or_else(|_| Err(Reply::err("Internal Server Error")))
}

/// The reply, rotation and commit token of a write that went through.
fn written(ns: &mut Namespace, reply: Reply) -> Written {
    let rot = ns.take_rotation();
    (reply, rot, ns.commit_token().map(|t| (t, ns.durability())))
}

/// After a write: wait for its group commit (`--sync`), then run the rotation hooks.
async fn finish_write(
    s: &Session,
    sh: &Shared,
    gate: Option<tokio::sync::RwLockReadGuard<'_, ()>>,
    result: Result<Written, Reply>,
) -> Reply {
    match result {
        Err(r) => r,
        Ok((reply, rot, commit)) => {
            drop(gate);
            if let Err(r) = durable(commit).await {
                return r;
            }
            after_rotation(s, sh, rot).await;
            reply
        }
    }
}

pub(super) async fn set(s: &Session, sh: &Arc<Shared>, args: &Args) -> Reply {
    let gate = hook_gate(s, sh).await;
    let checked = (|| {
        if !(3..=4).contains(&args.len()) {
            return Err(Reply::err("Unexpected arguments"));
        }
        if args[1].len() > MAX_KEY {
            return Err(Reply::err("Key too large"));
        }
        timestamp(s, args.get(3))
    })();
    let result = match checked {
        Err(r) => Err(r),
        Ok(ts) => {
            let rights = Rights::of(s);
            write_off_worker(s, args, args[2].len(), move |ns, args| {
                let (key, value) = (&args[1], &args[2]);
                if ns.mode() == Mode::User && key.is_empty() {
                    return Err(Reply::err("Invalid argument, key needed"));
                }
                rights.check(ns)?;
                let reply = match ns.set(key, value, ts) {
                    Ok(SetOutcome::Stored) => Reply::Bulk(args.bytes(1)),
                    Ok(SetOutcome::Appended) => Reply::bulk(ns.appended_id().to_vec()),
                    // Still waits for the commit (`--sync`): the identical value may not be
                    // on disk yet.
                    Ok(SetOutcome::Unchanged) => Reply::Nil,
                    Err(e) => {
                        // A failed write runs no hooks, even after a rotation.
                        let _ = ns.take_rotation();
                        return Err(Reply::err(e.to_string()));
                    }
                };
                Ok(written(ns, reply))
            })
            .await
        }
    };
    if matches!(result, Ok((ref r, _, _)) if !matches!(r, Reply::Nil)) {
        s.tally.wrote(args[2].len() as u64);
    }
    finish_write(s, sh, gate, result).await
}

/// Hand a value to `f`, running the blocking `missing-data` hook once if its data file is gone.
async fn fetch<R>(
    s: &Session,
    sh: &Shared,
    key: &[u8],
    mut f: impl FnMut(&[u8]) -> R,
) -> Result<Option<R>, Reply> {
    let mut value = lookup(s, key, &mut f).await?;
    if let Err(OpError::MissingData(file)) = value
        && sh.hooks.enabled()
    {
        let path = s.ns.ns.read().data_path(file);
        let status = sh
            .hooks
            .run_blocking("missing-data", &[path.display().to_string()])
            .await;
        if status == Some(0) {
            value = lookup(s, key, &mut f).await?;
        }
    }
    let value = value.map_err(|e| Reply::err(e.to_string()))?;
    Ok(value.map(|(len, r)| {
        s.tally.read(len as u64);
        r
    }))
}

/// Look a key up and hand its value (and length) to `f`: from memory at once, or read on a
/// blocking thread when it must come from the disk (`Namespace::get_or_locate`).
async fn lookup<R>(
    s: &Session,
    key: &[u8],
    f: &mut impl FnMut(&[u8]) -> R,
) -> Result<Result<Option<(usize, R)>, OpError>, Reply> {
    let found = {
        let ns = s.ns.ns.read();
        readable(&ns)?;
        ns.get_or_locate(key, |v| (v.len(), f(v)))
    };
    Ok(match found {
        Lookup::Done(r) => r,
        Lookup::OnDisk(disk) => read_from_disk(disk).await.map(|v| Some((v.len(), f(&v)))),
    })
}

/// A value read on tokio's blocking pool (it waits for the disk).
async fn read_from_disk(disk: DiskRead) -> Result<Vec<u8>, OpError> {
    tokio::task::spawn_blocking(move || disk.read())
        .await
        .unwrap_or(Err(OpError::ReadFailed))
}

pub(super) async fn get<W: AsyncWrite + Unpin>(
    s: &Session,
    sh: &Arc<Shared>,
    args: &Args,
    out: &mut Output<W>,
) -> std::io::Result<()> {
    let reply = match read_key(args) {
        Err(r) => r,
        Ok(key) => match fetch(s, sh, key, |v| {
            crate::protocol::encode_bulk(&mut out.buf, v)
        })
        .await
        {
            Ok(Some(())) => return Ok(()),
            Ok(None) => Reply::Nil,
            Err(r) => r,
        },
    };
    if matches!(reply, Reply::Error(_)) {
        s.tally.failed();
    }
    out.reply(reply);
    Ok(())
}

pub(super) async fn mget<W: AsyncWrite + Unpin>(
    s: &Session,
    args: &Args,
    out: &mut Output<W>,
) -> std::io::Result<()> {
    if args.len() < 2 {
        out.reply(Reply::err("Invalid arguments"));
        return Ok(());
    }
    let keys: Vec<&[u8]> = args.iter().skip(1).collect();
    if keys.iter().any(|k| k.len() > MAX_KEY || k.is_empty()) {
        out.reply(Reply::err("Invalid key"));
        return Ok(());
    }
    if let Err(r) = readable(&s.ns.ns.read()) {
        out.reply(r);
        return Ok(());
    }
    out.reply(Reply::Array(Vec::new()).with_len(keys.len()));
    for keys in keys.chunks(super::PREFETCH_BATCH) {
        s.ns.ns.read().prefetch(keys);
        for &key in keys {
            let found = s.ns.ns.read().get_or_locate(key, |v| {
                crate::protocol::encode_bulk(&mut out.buf, v);
            });
            let found = match found {
                Lookup::Done(r) => r,
                Lookup::OnDisk(disk) => read_from_disk(disk).await.map(|v| {
                    crate::protocol::encode_bulk(&mut out.buf, &v);
                    Some(())
                }),
            };
            if !matches!(found, Ok(Some(()))) {
                out.reply(Reply::Nil);
            }
            // Replies of up to 1023 values of 8 MiB are streamed, not built whole.
            out.flush_if_big().await?;
        }
    }
    Ok(())
}

pub(super) async fn del(s: &Session, sh: &Arc<Shared>, args: &Args) -> Reply {
    let gate = hook_gate(s, sh).await;
    let checked = (|| {
        if !(2..=3).contains(&args.len()) {
            return Err(Reply::err("Unexpected arguments"));
        }
        let key = &args[1][..];
        if key.len() > MAX_KEY {
            return Err(Reply::err("Invalid key"));
        }
        if key.is_empty() {
            return Err(Reply::err("Invalid argument"));
        }
        timestamp(s, args.get(2))
    })();
    let result = match checked {
        Err(r) => Err(r),
        Ok(ts) => {
            let rights = Rights::of(s);
            write_off_worker(s, args, 0, move |ns, args| {
                rights.check(ns)?;
                if let Err(e) = ns.del(&args[1], ts) {
                    let _ = ns.take_rotation();
                    return Err(Reply::err(e.to_string()));
                }
                Ok(written(ns, Reply::ok()))
            })
            .await
        }
    };
    finish_write(s, sh, gate, result).await
}

pub(super) fn exists(s: &Session, args: &Args) -> Reply {
    either((|| {
        let key = read_key(args)?;
        let ns = s.ns.ns.read();
        readable(&ns)?;
        Ok(Reply::Int(i64::from(ns.exists(key))))
    })())
}

pub(super) fn check(s: &Session, args: &Args) -> Reply {
    either((|| {
        let key = read_key(args)?;
        let ns = s.ns.ns.read();
        readable(&ns)?;
        Ok(match ns.check(key) {
            CheckResult::Missing => Reply::Nil,
            CheckResult::Ok => Reply::Int(1),
            CheckResult::Corrupted => Reply::Int(0),
            CheckResult::Unreadable => Reply::Int(-1),
        })
    })())
}

pub(super) fn length(s: &Session, args: &Args) -> Reply {
    either((|| {
        let key = read_key(args)?;
        let ns = s.ns.ns.read();
        readable(&ns)?;
        Ok(ns
            .length(key)
            .map_or(Reply::Nil, |l| Reply::Int(i64::from(l))))
    })())
}

pub(super) fn keytime(s: &Session, args: &Args) -> Reply {
    either((|| {
        let key = read_key(args)?;
        let ns = s.ns.ns.read();
        readable(&ns)?;
        Ok(ns
            .keytime(key)
            .map_or(Reply::Nil, |t| Reply::Int(i64::from(t))))
    })())
}

pub(super) fn keycur(s: &Session, args: &Args) -> Reply {
    either((|| {
        let key = read_key(args)?;
        let ns = s.ns.ns.read();
        readable(&ns)?;
        ns.keycur(key)
            .map(Reply::bulk)
            .ok_or_else(|| Reply::err("Key not found"))
    })())
}

pub(super) fn history(s: &Session, args: &Args) -> Reply {
    either((|| {
        if !(2..=3).contains(&args.len()) || args.get(2).is_some_and(|e| e.len() != 8) {
            return Err(Reply::err("Invalid arguments"));
        }
        let key = &args[1][..];
        if key.len() > MAX_KEY || key.is_empty() {
            return Err(Reply::err("Invalid arguments"));
        }
        let ns = s.ns.ns.read();
        readable(&ns)?;
        let item = ns.history(key, args.get(2)).map_err(|e| {
            Reply::err(match e {
                HistoryError::KeyNotFound => "Key not found".to_string(),
                HistoryError::BadArgs => "Invalid arguments".to_string(),
                HistoryError::NoMore => "No more history".to_string(),
                HistoryError::IndexQuery => "Invalid arguments (index query)".to_string(),
                HistoryError::InvalidKey => "Invalid arguments (invalid key)".to_string(),
                HistoryError::Read(e) => e.to_string(),
            })
        })?;
        Ok(Reply::Array(vec![
            item.parent.map_or(Reply::Nil, Reply::bulk),
            Reply::bulk(item.timestamp.to_string()),
            Reply::bulk(item.payload),
        ]))
    })())
}

pub(super) fn dbsize(s: &Session) -> Reply {
    let ns = s.ns.ns.read();
    Reply::Int(ns.entries() as i64)
}
