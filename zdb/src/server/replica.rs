//! Follower side of replication (`--replicate-from HOST:PORT`): one task per leader namespace
//! streams its data entries (see `cmd/replicate.rs`) and applies them with the leader's
//! timestamps. The position reached is saved per namespace in `<index>/<ns>/.replica` only
//! after the applied entries are fsynced, so a restart of either side resumes without loss
//! (entries applied twice change nothing). New leader namespaces are picked up every few
//! seconds. PROMOTE ends it all and the server accepts writes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::engine::Mode;
use crate::format::replica_position::{self, Position};
use crate::format::{Descriptor, FLAG_DELETED};
use crate::shared::Shared;
use crate::storage::{OpenMode, write_atomic};

/// A RESP value read from the leader.
#[derive(Debug)]
enum Value {
    Status,
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Value>),
}

async fn read_value<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Value> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).await?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(std::io::Error::other("connection closed or bad frame"));
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let int = || body.parse::<i64>().map_err(std::io::Error::other);
    Ok(match line[0] {
        b'+' => Value::Status,
        b'-' => Value::Error(body),
        b':' => Value::Int(int()?),
        b'$' => {
            let n = int()?;
            if n < 0 {
                return Ok(Value::Bulk(None));
            }
            let n = usize::try_from(n).map_err(std::io::Error::other)?;
            if n > crate::MAX_VALUE {
                return Err(std::io::Error::other("value too large"));
            }
            let mut buf = vec![0u8; n + 2];
            r.read_exact(&mut buf).await?;
            buf.truncate(n);
            Value::Bulk(Some(buf))
        }
        b'*' => {
            let n = int()?.clamp(0, 16);
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(Box::pin(read_value(r)).await?);
            }
            Value::Array(items)
        }
        _ => return Err(std::io::Error::other("bad frame")),
    })
}

async fn command(conn: &mut (impl AsyncWriteExt + Unpin), args: &[&[u8]]) -> std::io::Result<()> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    conn.write_all(&out).await
}

async fn connect(leader: &str, password: Option<&str>) -> std::io::Result<BufReader<TcpStream>> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(leader))
        .await
        .map_err(|_| std::io::Error::other("connect timeout"))??;
    let _ = stream.set_nodelay(true);
    let mut conn = BufReader::new(stream);
    if let Some(pw) = password {
        command(conn.get_mut(), &[b"AUTH", pw.as_bytes()]).await?;
        if let Value::Error(e) = read_value(&mut conn).await? {
            return Err(std::io::Error::other(format!("leader refused AUTH: {e}")));
        }
    }
    Ok(conn)
}

fn state_path(shared: &Shared, name: &[u8]) -> std::path::PathBuf {
    let name: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(name);
    shared
        .cfg
        .index
        .join(name)
        .join(replica_position::FILE_NAME)
}

fn load_position(shared: &Shared, name: &[u8]) -> Position {
    let path = state_path(shared, name);
    let Ok(f) = shared.storage.open(&path, OpenMode::ReadOnly) else {
        return Position::default();
    };
    let mut buf = vec![0u8; replica_position::MAX_LEN];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    Position::decode(buf.get(..n).unwrap_or_default())
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
    command(conn.get_mut(), &[b"NSLIST"]).await?;
    match read_value(&mut conn).await? {
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(|v| {
                if let Value::Bulk(Some(b)) = v {
                    Some(b)
                } else {
                    None
                }
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
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    command(conn.get_mut(), &refs).await?;
    let Value::Array(header) = read_value(&mut conn).await? else {
        return Err(std::io::Error::other("leader does not support REPLICATE"));
    };
    let (Some(Value::Bulk(Some(desc))), Some(Value::Int(mode))) = (header.get(1), header.get(2))
    else {
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
        let frame = tokio::time::timeout(Duration::from_secs(5), read_value(&mut conn))
            .await
            .map_err(|_| std::io::Error::other("leader silent for 5 s"))??;
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
                    if let Some(Value::Bulk(Some(b))) = items.get(i) {
                        b.as_slice()
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
            Value::Status => {}
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
            write_atomic(&*shared.storage, &state_path(shared, name), &pos.encode())?;
            applied_since_save = 0;
            last_save = Instant::now();
        }
    }
}
