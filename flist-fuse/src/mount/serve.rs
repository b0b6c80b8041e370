//! One mount, in the foreground: open the image and its stores, start the fetcher, mount,
//! and serve until the kernel ends the session. What happens on a signal and at the end is
//! decided by the [`lifecycle`](super::lifecycle) table and performed here.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fuser::{Config, MountOption, Session, SessionACL};

use super::args::MountArgs;
use super::cache::DiskCache;
use super::fetch::{Fetcher, Priority};
use super::fs::FlistFs;
use super::kernel::detach;
use super::lifecycle::{Action, Event, Lifecycle};
use super::log::log;
use super::prefetch;
use crate::blocks::BlockReader;
use crate::error::{Error, IoContext, Result};
use crate::format::hex;

/// Mount and serve in the foreground until unmounted or signalled.
pub fn run(a: &MountArgs) -> Result<()> {
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

    let mut session = match Session::new(filesystem, &a.mountpoint, &cfg) {
        Ok(s) => {
            lc.fire(Event::Mounted);
            s
        }
        Err(e) => {
            lc.fire(Event::MountFailed);
            return Err(Error::io(&a.mountpoint, e));
        }
    };
    log(&format!(
        "mounted {} ({} inodes, {} blocks) at {}; cache {} (bound {} bytes)",
        a.flist.display(),
        fl.inodes.len(),
        fl.blocks.len(),
        a.mountpoint.display(),
        a.cache.display(),
        a.cache_size
    ));
    let mut unmounter = session.unmount_callable();
    let mp = a.mountpoint.clone();
    let lc2 = lc.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals;
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
                    _ => false,
                };
                if lazily && let Err(e) = detach(&mp) {
                    log(&format!("detach failed: {e}"));
                }
            }
        });
    let res = session.run();
    if lc.fire(Event::Unmounted) == Some(Action::Finish) {
        finish(&fetch, recorder.as_deref(), &fl, a)?;
    }
    res.ctx(&a.mountpoint)
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

/// The session is over: let cache writes finish, log the counters, write the recorded list.
fn finish(
    fetch: &Fetcher,
    recorder: Option<&prefetch::Recorder>,
    fl: &crate::format::Flist,
    a: &MountArgs,
) -> Result<()> {
    fetch.shutdown(Duration::from_secs(5));
    let st = fetch.stats();
    log(&format!(
        "unmounted; store fetches {} ({} bytes), disk cache hits {}, memory hits {}, errors {}, rejected cache files {}",
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
