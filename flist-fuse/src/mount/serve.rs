//! One mount, in the foreground: open the image and its stores, start the fetcher, mount,
//! and serve until the kernel ends the session. What happens on a signal and at the end is
//! decided by the [`lifecycle`](super::lifecycle) table and performed here.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use fuser::{Config, MountOption, Session, SessionACL};
use rustix::mount::UnmountFlags;

use super::args::MountArgs;
use super::cache::DiskCache;
use super::fetch::{Fetcher, Priority};
use super::fs::FlistFs;
use super::handover::{self, give::Giver};
use super::kernel::detach;
use super::lifecycle::{Action, Event, Lifecycle};
use super::log::log;
use super::prefetch;
use crate::blocks::BlockReader;
use crate::error::{Error, IoContext, Result};
use crate::format::hex;

/// Time allowed beyond the old process's drain limit for its last word.
const STEP_MARGIN: Duration = Duration::from_secs(30);

/// Mount and serve in the foreground until unmounted, signalled, or handed over.
pub fn run(a: &MountArgs) -> Result<()> {
    serve(a, None)
}

/// Take over the mount served behind hand-over socket `path` (its process sends how it
/// serves it: the same image, stores and options are loaded) and serve it in the
/// foreground; `new_session`: call setsid() first (detached).
pub fn take_over(path: &std::path::Path, new_session: bool) -> Result<()> {
    let offered = handover::take::connect(path).map_err(|e| Error::invalid(path, e.to_string()))?;
    let a = MountArgs {
        new_session,
        ..offered.args.clone()
    };
    serve(&a, Some((path, offered)))
}

/// Serve `a`: mount it, or take over the mount `offered` at hand-over socket PATH.
fn serve(
    a: &MountArgs,
    offered: Option<(&std::path::Path, handover::take::Offered)>,
) -> Result<()> {
    if a.new_session {
        // Own session: the daemon outlives whoever asked for it and its terminal.
        let _ = rustix::process::setsid();
    }
    let fl = Arc::new(crate::rfs::read_any(&a.flist)?);
    let reader = BlockReader::open(&fl, &a.flist, &a.stores)?;
    let cache = DiskCache::open(&a.cache, a.cache_size).map_err(|e| Error::Invalid {
        path: a.cache.clone(),
        msg: e.to_string(),
    })?;
    let fetch = Arc::new(
        Fetcher::new(
            reader.store.clone(),
            reader.codec.clone(),
            Some(cache),
            a.fetch_workers,
            a.mem_cache,
        )
        .ctx(&a.flist)?,
    );
    let mut extra = Vec::new();
    for p in &a.prefetch {
        extra.push(prefetch::read_list(&fl, p)?);
    }
    let plan = prefetch::plan(&fl, &extra);
    let recorder = a
        .record
        .as_ref()
        .map(|_| Arc::new(prefetch::Recorder::new(fl.blocks.len())));
    let filesystem = FlistFs::new(fl.clone(), fetch.clone(), recorder.clone(), a.folder_ahead);

    let id = hex(&fl.identity);
    let short = id.get(..16).unwrap_or(&id);
    let lc = Arc::new(Lifecycle::new(&format!(
        "flist {short} at {}",
        a.mountpoint.display()
    )));
    let mut cfg = Config::default();
    cfg.mount_options = vec![
        MountOption::RO,
        MountOption::FSName(format!("flist:{short}")),
        MountOption::Subtype("flist".into()),
        MountOption::DefaultPermissions,
        MountOption::Dev,
        MountOption::Suid,
        MountOption::Exec,
        MountOption::NoAtime,
    ];
    cfg.acl = SessionACL::All;
    cfg.n_threads = Some(a.threads.max(1));
    cfg.clone_fd = a.threads > 1;

    // Signals are caught from here on (queued until the handler thread runs).
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .ctx("signal handlers")?;

    if !plan.is_empty() {
        start_prefetch(&fetch, &plan);
    }

    let drain = filesystem.drain.clone();
    let init_seen = filesystem.init_seen.clone();
    let threads = cfg.n_threads.unwrap_or(1);
    // Mount, or take over a running mount: the listener for the next hand-over comes
    // with it then.
    let taking = offered.is_some();
    let (session, unmounter, listener) = match offered {
        Some((path, offered)) => match take(
            path,
            offered,
            &id,
            filesystem,
            &cfg,
            a,
            drain.clone(),
            threads,
        ) {
            Ok((s, l)) => {
                lc.fire(Event::Mounted);
                (s, Unmounter::Path(a.mountpoint.clone()), l)
            }
            Err(e) => {
                lc.fire(Event::MountFailed);
                return Err(e);
            }
        },
        None => match Session::new(filesystem, &a.mountpoint, &cfg) {
            Ok(mut s) => {
                lc.fire(Event::Mounted);
                let u = Unmounter::Fuser(s.unmount_callable());
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                // Without its socket the mount still serves; it just cannot be handed over.
                if let Some(p) = &a.handover {
                    match handover::listen(p) {
                        Ok(l) => {
                            let _ = tx.send(l);
                        }
                        Err(e) => log(&format!(
                            "no hand-over socket at {} ({e}): this mount cannot be handed over",
                            p.display()
                        )),
                    }
                }
                (s, u, rx)
            }
            Err(e) => {
                lc.fire(Event::MountFailed);
                return Err(Error::io(&a.mountpoint, e));
            }
        },
    };
    log(&format!(
        "{} {} ({} inodes, {} blocks) at {}; cache {} (bound {} bytes)",
        if taking { "took over" } else { "mounted" },
        a.flist.display(),
        fl.inodes.len(),
        fl.blocks.len(),
        a.mountpoint.display(),
        a.cache.display(),
        a.cache_size
    ));
    if a.handover.is_some() {
        let fuse = rustix::io::fcntl_dupfd_cloexec(session.as_fd(), 3).ctx("/dev/fuse")?;
        let (id, drain, mountpoint) = (id.clone(), drain.clone(), a.mountpoint.clone());
        let (lc, fetch, recorder, fl, a) = (
            lc.clone(),
            fetch.clone(),
            recorder.clone(),
            fl.clone(),
            a.clone(),
        );
        let _ = std::thread::Builder::new()
            .name("handover".into())
            .spawn(move || {
                // A process that took the mount over serves the listener once the old
                // one is gone.
                let Ok(listener) = listener.recv() else {
                    return;
                };
                let giver = Giver {
                    args: a.clone(),
                    listener,
                    fuse,
                    identity: id,
                    init: init_seen,
                    drain,
                    threads,
                    mountpoint,
                };
                let on_drain = |started: bool| {
                    lc.fire(if started {
                        Event::HandingOver
                    } else {
                        Event::HandOverFailed
                    });
                };
                let (pid, chan) = giver.serve(&on_drain);
                if lc.fire(Event::Drained) == Some(Action::Exit) {
                    if let Err(e) = finish("handed over", &fetch, recorder.as_deref(), &fl, &a) {
                        log(&format!("{e}"));
                    }
                    let _ = chan.send(&handover::wire::Frame::Done, &[]);
                    log(&format!(
                        "handed over to pid {pid}; exiting, the mount stays"
                    ));
                    std::process::exit(0);
                }
            });
    }
    let mp = a.mountpoint.clone();
    let lc2 = lc.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals;
            let mut unmounter = unmounter;
            for s in signals.forever() {
                log(&format!("signal {s}"));
                let lazily = match lc2.fire(Event::Signal) {
                    Some(Action::Unmount) => match unmounter.unmount() {
                        Ok(()) => false,
                        Err(e) => {
                            log(&format!("unmount failed ({e}); detaching lazily"));
                            true
                        }
                    },
                    Some(Action::Detach) => true,
                    Some(Action::Serve) => {
                        log("handing the mount over: signal ignored");
                        false
                    }
                    _ => false,
                };
                if lazily && let Err(e) = detach(&mp) {
                    log(&format!("detach failed: {e}"));
                }
            }
        });
    let res = session.run();
    if lc.fire(Event::Unmounted) == Some(Action::Finish) {
        finish("unmounted", &fetch, recorder.as_deref(), &fl, a)?;
    }
    res.ctx(&a.mountpoint)
}

/// How this process unmounts: through fuser's mount (it mounted), or by path (it took the
/// mount over, fuser has no mount to undo).
enum Unmounter {
    Fuser(fuser::SessionUnmounter),
    Path(PathBuf),
}

impl Unmounter {
    fn unmount(&mut self) -> std::io::Result<()> {
        match self {
            Unmounter::Fuser(u) => u.unmount(),
            Unmounter::Path(p) => rustix::mount::unmount(p.as_path(), UnmountFlags::empty())
                .map_err(std::io::Error::from),
        }
    }
}

/// Take over the mount behind hand-over socket `path`: build the session, say Serving, and
/// follow the old process's drain on a thread. Returns the session and the listener to
/// serve for the next hand-over (when `--handover` is given).
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of serve() a take-over needs"
)]
fn take(
    path: &std::path::Path,
    offered: handover::take::Offered,
    id: &str,
    fs: FlistFs,
    cfg: &Config,
    a: &MountArgs,
    drain: Arc<handover::Drain>,
    threads: usize,
) -> Result<(Session<FlistFs>, Receiver<OwnedFd>)> {
    let bad = |e: handover::HandoverError| Error::invalid(path, e.to_string());
    let taken = offered.session(id, fs, cfg).map_err(bad)?;
    let (session, listener, old, chan) = taken.serving().map_err(bad)?;
    log(&format!(
        "serving the mount of pid {old}; waiting for it to drain"
    ));
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let mp = a.mountpoint.clone();
    std::thread::Builder::new()
        .name("take-over".into())
        .spawn(move || {
            match handover::take::wait_done(&chan, handover::give::DRAIN_LIMIT + STEP_MARGIN) {
                Ok(()) => {
                    log(&format!("pid {old} drained: the mount is ours"));
                    let _ = tx.send(listener);
                    announce(old);
                }
                Err(handover::HandoverError::Closed) => {
                    log(&format!("pid {old} went away: the mount is ours"));
                    let _ = tx.send(listener);
                    announce(old);
                }
                Err(e) => {
                    // The old process serves on: leave it the mount, answering what we hold.
                    log(&format!(
                        "take-over failed ({e}); draining and leaving the mount to pid {old}"
                    ));
                    drain.begin();
                    let poke = move || {
                        let _ = rustix::fs::statfs(&mp);
                    };
                    if drain.wait(threads, handover::give::DRAIN_LIMIT, poke) {
                        std::process::exit(1);
                    }
                    // Exiting now could drop a request one of our threads holds.
                    drain.cancel();
                    log(&format!("could not drain: serving on alongside pid {old}"));
                }
            }
        })
        .ctx("take-over thread")?;
    // The listener comes once the old process is gone; the session runs meanwhile.
    Ok((session, rx))
}

/// Say on stdout that the mount is ours (what `flist take-over --daemon` waits for), then
/// let go of stdout: whoever reads it may go.
fn announce(old: u32) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "took over from {old}");
    let _ = o.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}

/// Queue the prefetch plan and log when it is done.
fn start_prefetch(fetch: &Arc<Fetcher>, plan: &[crate::format::BlockRef]) {
    log(&format!("prefetching {} blocks", plan.len()));
    fetch.prefetch(plan.iter(), Priority::Prefetch);
    let f = fetch.clone();
    let n = plan.len();
    let t0 = Instant::now();
    let _ = std::thread::Builder::new()
        .name("prefetch-watch".into())
        .spawn(move || {
            while f.pending(Priority::Prefetch) > 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
            log(&format!(
                "prefetch of {n} blocks done in {:.3}s",
                t0.elapsed().as_secs_f64()
            ));
        });
}

/// The session is over (`how`: unmounted, handed over): let cache writes finish, log the
/// counters, write the recorded list.
fn finish(
    how: &str,
    fetch: &Fetcher,
    recorder: Option<&prefetch::Recorder>,
    fl: &crate::format::Flist,
    a: &MountArgs,
) -> Result<()> {
    fetch.shutdown(Duration::from_secs(5));
    let st = fetch.stats();
    log(&format!(
        "{how}; store fetches {} ({} bytes), disk cache hits {}, memory hits {}, errors {}, rejected cache files {}",
        st.store_fetches.load(Ordering::Relaxed),
        st.store_bytes.load(Ordering::Relaxed),
        st.disk_hits.load(Ordering::Relaxed),
        st.mem_hits.load(Ordering::Relaxed),
        st.errors.load(Ordering::Relaxed),
        st.corrupt_cache.load(Ordering::Relaxed),
    ));
    if let (Some(r), Some(path)) = (recorder, &a.record) {
        let n = r.write(fl, path)?;
        log(&format!(
            "recorded {n} blocks to {} (embed with: flist embed-prefetch FLIST {})",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}
