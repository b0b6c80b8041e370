//! Follower side of replication (`--replicate-from HOST:PORT`): one task per leader namespace
//! streams its data entries (see `cmd/replicate.rs`) and applies them with the leader's
//! timestamps. The position reached is saved per namespace in `<index>/<ns>/.replica` only
//! after the applied entries are fsynced, so a restart of either side resumes without loss
//! (entries applied twice change nothing). New leader namespaces are picked up every few
//! seconds. PROMOTE ends it all and the server accepts writes. The leader is reached through
//! `zdb-client`: its replies are bounded (a leader cannot make the follower allocate a huge
//! length, nest arrays or send an endless line) and connecting and every frame have a deadline.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zdb_client::{AsyncClient, Config, Value};

use super::state::Shared;
use crate::engine::Mode;
use crate::format::{Descriptor, FLAG_DELETED};
use crate::storage::{OpenMode, write_atomic};

/// Bound on connecting to the leader.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The leader sends `+PING` every second while idle: this long without a frame means the
/// stream is dead.
const LEADER_SILENCE: Duration = Duration::from_secs(5);

fn net(e: zdb_client::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A connection to the leader through the shared client (bounded replies, deadlines on
/// connect and on every reply), logged in as admin when a password is given.
async fn connect(leader: &str, password: Option<&str>) -> std::io::Result<AsyncClient> {
    let mut cfg = Config::tcp(leader)
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(LEADER_SILENCE);
    if let Some(pw) = password {
        cfg = cfg.with_admin(pw);
    }
    AsyncClient::connect(cfg).await.map_err(|e| match e {
        zdb_client::Error::Server { message, .. } => {
            std::io::Error::other(format!("leader refused AUTH: {message}"))
        }
        other => net(other),
    })
}

/// Saved position: data file, next offset, offset and CRC of the last applied entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Position {
    file: u32,
    off: u64,
    prev_off: u64,
    prev_crc: u32,
}

fn state_path(shared: &Shared, name: &[u8]) -> std::path::PathBuf {
    let name: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(name);
    shared.cfg.index.join(name).join(".replica")
}

fn load_position(shared: &Shared, name: &[u8]) -> Position {
    let path = state_path(shared, name);
    let Ok(f) = shared.storage.open(&path, OpenMode::ReadOnly) else {
        return Position::default();
    };
    let mut buf = vec![0u8; 128];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match v.as_slice() {
        [file, off, prev_off, prev_crc] => Position {
            file: u32::try_from(*file).unwrap_or(0),
            off: *off,
            prev_off: *prev_off,
            prev_crc: u32::try_from(*prev_crc).unwrap_or(0),
        },
        _ => Position::default(),
    }
}

/// Run until promoted: follow every namespace of the leader.
pub async fn follow(shared: Arc<Shared>, leader: String, password: Option<String>) {
    let mut running: BTreeSet<Vec<u8>> = BTreeSet::new();
    while shared.is_follower() {
        match list(&leader, password.as_deref()).await {
            Ok(names) => {
                for name in names {
                    if running.insert(name.clone()) {
                        tokio::spawn(follow_namespace(
                            shared.clone(),
                            leader.clone(),
                            password.clone(),
                            name,
                        ));
                    }
                }
            }
            Err(e) => tracing::warn!(leader = %leader, error = %e, "leader unreachable, retrying"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn list(leader: &str, password: Option<&str>) -> std::io::Result<Vec<Vec<u8>>> {
    let mut conn = connect(leader, password).await?;
    // Names are bytes: read them raw rather than as text.
    match conn.call(&[b"NSLIST"]).await.map_err(net)? {
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(|v| match v {
                Value::Bulk(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect()),
        other => Err(std::io::Error::other(format!(
            "unexpected NSLIST reply {other:?}"
        ))),
    }
}

async fn follow_namespace(
    shared: Arc<Shared>,
    leader: String,
    password: Option<String>,
    name: Vec<u8>,
) {
    let shown = String::from_utf8_lossy(&name).into_owned();
    let mut delay = Duration::from_millis(200);
    while shared.is_follower() {
        match stream_once(&shared, &leader, password.as_deref(), &name).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(namespace = %shown, error = %e, "replication interrupted, resuming");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One connection's worth of streaming; `Ok` when promoted.
async fn stream_once(
    shared: &Arc<Shared>,
    leader: &str,
    password: Option<&str>,
    name: &[u8],
) -> std::io::Result<()> {
    let mut pos = load_position(shared, name);
    let mut conn = connect(leader, password).await?;
    let args: Vec<Vec<u8>> = vec![
        b"REPLICATE".to_vec(),
        name.to_vec(),
        pos.file.to_string().into_bytes(),
        pos.off.to_string().into_bytes(),
        pos.prev_off.to_string().into_bytes(),
        pos.prev_crc.to_string().into_bytes(),
    ];
    conn.send(&args).await.map_err(net)?;
    let Value::Array(header) = conn.read_reply().await.map_err(net)? else {
        return Err(std::io::Error::other("leader does not support REPLICATE"));
    };
    let (Some(Value::Bulk(desc)), Some(Value::Int(mode))) = (header.get(1), header.get(2)) else {
        return Err(std::io::Error::other("bad REPLICATE header"));
    };
    let desc = Descriptor::decode(desc).map_err(std::io::Error::other)?;
    let handle = shared.ensure(desc.clone()).map_err(std::io::Error::other)?;
    {
        let mut ns = handle.ns.write();
        let mode = Mode::from_byte(u8::try_from(*mode).unwrap_or(0));
        if ns.mode() != mode && ns.is_fresh() {
            ns.set_mode(mode)?;
        }
        if ns.descriptor() != &desc && desc.name != b"default" {
            ns.set_descriptor(desc)?;
        }
    }
    let mut applied_since_save = 0u32;
    let mut last_save = Instant::now();
    loop {
        if !shared.is_follower() {
            return Ok(());
        }
        let frame = conn.read_reply().await.map_err(|e| match e {
            zdb_client::Error::Timeout { .. } => std::io::Error::other("leader silent for 5 s"),
            other => net(other),
        })?;
        match frame {
            Value::Array(items) if items.len() == 7 => {
                let get_int = |i: usize| {
                    if let Some(Value::Int(n)) = items.get(i) {
                        *n
                    } else {
                        -1
                    }
                };
                let bytes = |i: usize| {
                    if let Some(Value::Bulk(b)) = items.get(i) {
                        &b[..]
                    } else {
                        &[]
                    }
                };
                let (file, off, flags, ts, crc) =
                    (get_int(0), get_int(1), get_int(3), get_int(4), get_int(6));
                let (key, value) = (bytes(2), bytes(5));
                let deleted = u8::try_from(flags).unwrap_or(0) & FLAG_DELETED != 0;
                let ts = u32::try_from(ts).unwrap_or(0);
                handle
                    .ns
                    .write()
                    .apply_replicated(key, value, deleted, ts)
                    .map_err(|e| std::io::Error::other(format!("applying entry: {e}")))?;
                let entry_len =
                    (crate::format::data::ENTRY_HEADER_LEN + key.len() + value.len()) as u64;
                pos = Position {
                    file: u32::try_from(file).unwrap_or(0),
                    off: u64::try_from(off).unwrap_or(0) + entry_len,
                    prev_off: u64::try_from(off).unwrap_or(0),
                    prev_crc: u32::try_from(crc).unwrap_or(0),
                };
                applied_since_save += 1;
            }
            Value::Status(_) => {}
            Value::Error(e) => return Err(std::io::Error::other(format!("leader: {e}"))),
            other => return Err(std::io::Error::other(format!("unexpected frame {other:?}"))),
        }
        if applied_since_save > 0
            && (applied_since_save >= 1000 || last_save.elapsed() >= Duration::from_millis(100))
        {
            // Applied entries first reach the disk, then the position that covers them.
            let mut ns = handle.ns.write();
            ns.flush_pending()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            ns.sync_now()?;
            drop(ns);
            let text = format!("{} {} {} {}", pos.file, pos.off, pos.prev_off, pos.prev_crc);
            write_atomic(&*shared.storage, &state_path(shared, name), text.as_bytes())?;
            applied_since_save = 0;
            last_save = Instant::now();
        }
    }
}
