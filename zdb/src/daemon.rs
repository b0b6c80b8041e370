//! Process-level start-up and shutdown around [`server::run`]: directory locks, hooks
//! `namespaces-init`/`ready`/`close`, listeners, signals.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::{TcpListener, UnixListener};

use crate::config::{Args, Config};
use crate::handover::wire::FdKind;
use crate::handover::{self, Handed, Taken};
use crate::server::{self, Ended, Listeners};
use crate::shared::Shared;
use crate::storage::fs::FsStorage;

/// Take the exclusive lock 0-db takes on `<root>/.lockfile`, so two servers never share a folder.
fn lock_root(root: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let path = root.join(".lockfile");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .with_context(|| format!("{} is locked: another zdb uses this folder", path.display()))?;
    Ok(file)
}

/// Raise the open-file limit to its hard maximum (many clients, many files).
fn raise_nofile() {
    if let Ok(lim) = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .ok_or(())
    {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(lim),
                maximum: Some(lim),
            },
        );
    }
}

/// Listen with a deep accept backlog (bursts of thousands of connections are not refused).
fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let sock = if addr.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(4096)
}

/// The listeners `args` ask for: those handed over by an old process when there are, bound
/// here otherwise.
async fn bind(args: &Args, mut taken: Option<&mut Taken>) -> anyhow::Result<Listeners> {
    let mut l = Listeners::default();
    if let Some(path) = &args.socket {
        l.unix = match taken.as_deref_mut().and_then(|t| t.take(FdKind::Unix)) {
            Some(fd) => {
                let s = std::os::unix::net::UnixListener::from(fd);
                s.set_nonblocking(true)?;
                Some(UnixListener::from_std(s)?)
            }
            None => {
                let _ = std::fs::remove_file(path);
                Some(
                    UnixListener::bind(path)
                        .with_context(|| format!("binding {}", path.display()))?,
                )
            }
        };
    }
    if args.socket.is_none() || args.dualnet {
        if let Some(fd) = taken.and_then(|t| t.take(FdKind::Tcp)) {
            let s = std::net::TcpListener::from(fd);
            s.set_nonblocking(true)?;
            let sock = TcpListener::from_std(s)?;
            tracing::info!(addr = %sock.local_addr()?, "listening (handed over)");
            l.tcp = Some(sock);
            return Ok(l);
        }
        let addr = if args.listen.contains(':') {
            format!("[{}]:{}", args.listen, args.port)
        } else {
            format!("{}:{}", args.listen, args.port)
        };
        let sock = match listen(&addr) {
            Ok(s) => s,
            // A host without IPv6 still serves on the default `::`.
            Err(_) if args.listen == "::" => listen(&format!("0.0.0.0:{}", args.port))?,
            Err(e) => return Err(e).with_context(|| format!("binding {addr}")),
        };
        tracing::info!(addr = %sock.local_addr()?, "listening");
        l.tcp = Some(sock);
    }
    Ok(l)
}

/// The folder locks handed over, checked to be those of our own folders (a new process
/// started with other folders than the old one must not run unlocked).
fn inherited_locks(cfg: &Config, taken: &mut Taken) -> anyhow::Result<Vec<OwnedFd>> {
    let mut locks = Vec::new();
    while let Some(fd) = taken.take(FdKind::Lock) {
        locks.push(fd);
    }
    for root in [&cfg.index, &cfg.data] {
        let path = root.join(".lockfile");
        let want = rustix::fs::stat(&path).with_context(|| format!("{}", path.display()))?;
        let held = locks.iter().any(|fd| {
            rustix::fs::fstat(fd)
                .is_ok_and(|st| st.st_dev == want.st_dev && st.st_ino == want.st_ino)
        });
        if !held {
            bail!(
                "the old process does not hold {}: not the same folders",
                path.display()
            );
        }
    }
    Ok(locks)
}

/// Run the server as a process until SIGINT/SIGTERM or STOP. It listens at once; clients get
/// `-LOADING ...` (INFO shows progress) until the namespaces are loaded and the
/// `namespaces-init` and `ready` hooks have run. With `--take-over` it first receives the
/// listeners, locks and connections of the old process (`crate::handover`), accepts nothing
/// until that one confirms, and never answers `-LOADING`.
pub async fn serve(args: Args, cfg: Config) -> anyhow::Result<()> {
    raise_nofile();
    let (mut taken, pending) = match args.take_over.clone() {
        Some(path) => {
            let (taken, pending) = tokio::task::spawn_blocking(move || handover::receive(&path))
                .await
                .context("taking over")?
                .context("taking over")?;
            tracing::info!(
                conns = taken.conns.len(),
                "received the old process's sockets"
            );
            (Some(taken), Some(pending))
        }
        None => (None, None),
    };
    let locks: Vec<OwnedFd> = match taken.as_mut() {
        Some(t) => inherited_locks(&cfg, t)?,
        None => vec![lock_root(&cfg.index)?.into(), lock_root(&cfg.data)?.into()],
    };
    let shared = Shared::new(cfg.clone(), Arc::new(FsStorage));
    if taken.is_some() {
        // Nothing is accepted before the old process confirms it serves nothing more.
        shared.gate.hold();
    }
    let hooks = shared.hooks.clone();
    hooks.install_crash_hook();
    let listeners = bind(&args, taken.as_mut()).await?;
    let mut handed = Handed::default();
    for fd in &locks {
        handed.add(FdKind::Lock, fd)?;
    }
    if let Some(l) = &listeners.tcp {
        handed.add(FdKind::Tcp, l)?;
    }
    if let Some(l) = &listeners.unix {
        handed.add(FdKind::Unix, l)?;
    }
    let handover_listener = match &args.handover {
        Some(path) => Some(
            match taken.as_mut().and_then(|t| t.take(FdKind::Handover)) {
                Some(fd) => fd,
                None => handover::listen(path)
                    .with_context(|| format!("hand-over socket {}", path.display()))?,
            },
        ),
        None => None,
    };
    if let Some(l) = &handover_listener {
        handed.add(FdKind::Handover, l)?;
    }
    let replicate_password = match &args.replicate_admin_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        None => None,
    };
    if let Some(addr) = &args.metrics {
        let l = match taken.as_mut().and_then(|t| t.take(FdKind::Metrics)) {
            Some(fd) => {
                let s = std::net::TcpListener::from(fd);
                s.set_nonblocking(true)?;
                TcpListener::from_std(s)?
            }
            None => TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding metrics on {addr}"))?,
        };
        handed.add(FdKind::Metrics, &l)?;
        tracing::info!(addr = %l.local_addr()?, "metrics at /metrics");
        tokio::spawn(crate::server::metrics_http::serve(l, shared.clone()));
    }
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("signal received, shutting down");
    };
    let server = tokio::spawn(server::run(listeners, shared.clone(), shutdown));
    tokio::pin!(server);
    let start = async {
        let loader = shared.clone();
        tokio::task::spawn_blocking(move || loader.load_namespaces())
            .await
            .context("loading namespaces")?
            .context("opening namespaces")?;
        hooks
            .run_blocking(
                "namespaces-init",
                &[
                    cfg.index.display().to_string(),
                    cfg.data.display().to_string(),
                ],
            )
            .await;
        if let Some(leader) = &args.replicate_from {
            shared
                .follower
                .store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!(leader = %leader, "following leader");
            tokio::spawn(crate::server::replica::follow(
                shared.clone(),
                leader.clone(),
                replicate_password,
            ));
        }
        if hooks.enabled() && hooks.run_blocking("ready", &[]).await != Some(0) {
            bail!("ready hook failed: start aborted");
        }
        if let Some(pending) = pending {
            tokio::task::spawn_blocking(move || pending.confirm())
                .await
                .context("taking over")?
                .context("the old process did not confirm the hand-over")?;
        }
        anyhow::Ok(())
    };
    tokio::select! {
        started = start => {
            if let Err(e) = started {
                if taken.is_some() {
                    // The files are the old process's: leave without a stop's sync.
                    return Err(e);
                }
                shared.request_stop();
                let _ = (&mut server).await;
                return Err(e);
            }
        }
        _ = &mut server => {
            // A signal while loading: the loader stops after the namespace it is on.
            shared.request_stop();
            return Ok(());
        }
    }
    shared.loading.set_ready();
    shared.gate.thaw();
    if let Some(taken) = taken {
        shared.continue_client_ids(taken.next_client);
        for (fd, state) in taken.conns {
            let id = state.id;
            if let Err(e) = server::adopt(&shared, fd, state) {
                tracing::warn!(client = id, error = %e, "handed-over connection lost");
            }
        }
    }
    if let Some(l) = handover_listener {
        handover::spawn(l, shared.clone(), handed, tokio::runtime::Handle::current())
            .context("starting the hand-over thread")?;
    }
    tracing::info!(mode = ?cfg.engine.run_mode, sync = cfg.engine.sync, "zdb ready");
    if let Ok(Ended::HandedOver) = server.await {
        // The new process serves our sockets and owns the files: touch nothing.
        return Ok(());
    }
    hooks.run_blocking("close", &[]).await;
    if hooks.enabled() {
        for name in shared.names() {
            let Some(handle) = shared.get(&name) else {
                continue;
            };
            let args = {
                let ns = handle.ns.read();
                let (index, data) = ns.active_paths();
                let dirty = ns
                    .dirty()
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" ");
                vec![
                    String::from_utf8_lossy(&name).into_owned(),
                    index.display().to_string(),
                    data.display().to_string(),
                    dirty,
                ]
            };
            hooks.run_blocking("namespace-closing", &args).await;
        }
    }
    for p in [&args.socket, &args.handover].into_iter().flatten() {
        let _ = std::fs::remove_file(p);
    }
    drop(locks);
    Ok(())
}

/// `zdb check [--namespace NS]... [--repair]`: returns whether everything checked clean.
pub fn check(cfg: &Config, namespaces: &[String], repair: bool) -> anyhow::Result<bool> {
    let _locks = (lock_root(&cfg.index)?, lock_root(&cfg.data)?);
    let storage: Arc<dyn crate::storage::Storage> = Arc::new(FsStorage);
    let mut names: Vec<Vec<u8>> = namespaces.iter().map(|n| n.as_bytes().to_vec()).collect();
    if names.is_empty() {
        for entry in std::fs::read_dir(&cfg.index)
            .with_context(|| format!("listing {}", cfg.index.display()))?
        {
            let entry = entry?;
            if entry.file_type()?.is_dir()
                && !entry.file_name().as_encoded_bytes().starts_with(b".")
            {
                names.push(entry.file_name().as_encoded_bytes().to_vec());
            }
        }
        names.sort();
    }
    let mut clean = true;
    for name in names {
        let shown = String::from_utf8_lossy(&name).into_owned();
        if repair {
            let report = crate::engine::Namespace::repair(
                storage.clone(),
                &cfg.index,
                &cfg.data,
                &name,
                cfg.engine.clone(),
            )
            .with_context(|| format!("repairing namespace {shown}"))?;
            println!(
                "# namespace {shown}: index rebuilt, {} entries indexed",
                report.indexed
            );
            for s in &report.skipped {
                println!("{s}");
            }
        }
        let ns = crate::engine::Namespace::open(
            storage.clone(),
            &cfg.index,
            &cfg.data,
            &name,
            cfg.engine.clone(),
        )
        .with_context(|| format!("opening namespace {shown}"))?;
        let report = ns.check_all();
        println!("# namespace {shown}\n{}", report.render());
        clean &= report.clean();
    }
    Ok(clean)
}
