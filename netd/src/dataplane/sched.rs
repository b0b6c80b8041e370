//! How a data path thread is scheduled follows its traffic. While it carries lone packets it
//! asks for a short scheduler slice and keeps to one core; as soon as it carries bulk traffic
//! it gets the default slice and every core back, so throughput does not pay for either.
//!
//! A packet that arrives while a data path thread sleeps wakes it; under the kernel's EEVDF
//! scheduler (Linux 6.6 and later) the woken thread preempts the one running only when its
//! virtual deadline is earlier, and the deadline is one slice past its start. A thread that
//! asks for a short slice (`sched_setattr` with `sched_runtime`, honoured for normal threads
//! since Linux 6.12; older kernels ignore it) gets an early deadline and so runs at once: it
//! still gets its fair share of the CPU and no more, only sooner and in smaller pieces.
//! Measured here (2 cores, four busy loops): the receive thread's median wake-up delay went
//! from ~25 us to ~10 us and its 90th percentile from ~10 ms to ~40 us; but with the short
//! slice kept during an iperf3 run, throughput fell by a fifth (the threads were preempted
//! more often), hence [`SlicePolicy`].
//!
//! One core: a ping crosses four threads (the sender's tun reader, the peer's receiver, ours),
//! and each hand-over to a thread that last ran on another, idle core waits for that core to
//! wake: 20 to 50 us each on this machine's VM (`perf sched timehist`), where the work of a
//! hop is a few microseconds. Kept on the lowest core of their allowed set, every light-traffic
//! thread of every network is woken on the core that is already awake; the round trip over the
//! overlay between two netds went from ~0.2 ms to ~0.1 ms (benches/netd_bench.sh).

#![expect(
    unsafe_code,
    reason = "sched_setattr has no wrapper in libc, rustix or nix: one raw syscall"
)]

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use std::io;
use std::time::{Duration, Instant};

/// The slice asked for while traffic is light: the kernel's shortest.
pub const SHORT: Duration = Duration::from_micros(100);
/// A round (one wake-up's work) with at least this many packets is bulk traffic.
const BULK_ROUND: usize = 16;
/// How long after the last bulk round the thread keeps the default slice.
const BULK_HOLD: Duration = Duration::from_millis(50);

/// Which slice a data path thread should have, from what its rounds carried. Pure: the thread
/// applies a change with [`Placement::apply`].
#[derive(Debug, Default)]
pub struct SlicePolicy {
    short: bool,
    last_bulk: Option<Instant>,
}

impl SlicePolicy {
    /// After a round of `packets` at `now`: the slice to switch to, if it changes (`Some(None)`
    /// is the kernel's default).
    pub fn after_round(&mut self, packets: usize, now: Instant) -> Option<Option<Duration>> {
        if packets >= BULK_ROUND {
            self.last_bulk = Some(now);
        }
        let light = self
            .last_bulk
            .is_none_or(|t| now.saturating_duration_since(t) >= BULK_HOLD);
        if light == self.short {
            return None;
        }
        self.short = light;
        Some(light.then_some(SHORT))
    }
}

/// Where a data path thread runs: its allowed cores as it started, and the one it keeps to
/// while its traffic is light.
#[derive(Debug)]
pub struct Placement {
    all: Option<CpuSet>,
    light: Option<CpuSet>,
}

impl Placement {
    /// The calling thread's placement (its affinity now; none known if the kernel refuses).
    pub fn of_this_thread() -> Placement {
        let all = sched_getaffinity(Pid::from_raw(0)).ok();
        let light = all.as_ref().and_then(|set| {
            let first = (0..CpuSet::count()).find(|&c| set.is_set(c).unwrap_or(false))?;
            let mut one = CpuSet::new();
            one.set(first).ok()?;
            Some(one)
        });
        Placement { all, light }
    }

    /// Applies a change [`SlicePolicy::after_round`] asked for to the calling thread: the
    /// slice, and one core (light) or all of them (bulk). A kernel that refuses either is
    /// logged at debug level; the thread keeps what it had.
    pub fn apply(&self, change: Option<Option<Duration>>) {
        let Some(slice) = change else { return };
        if let Err(e) = set_slice(slice) {
            tracing::debug!(error = %e, "scheduler slice not changed");
        }
        let cores = if slice.is_some() {
            &self.light
        } else {
            &self.all
        };
        if let Some(set) = cores
            && let Err(e) = sched_setaffinity(Pid::from_raw(0), set)
        {
            tracing::debug!(error = %e, "thread affinity not changed");
        }
    }
}

/// `struct sched_attr` (`include/uapi/linux/sched/types.h`), version 1 (56 bytes).
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Asks the kernel to schedule the calling thread with `slice` (`None`: the default), keeping
/// its normal policy and its nice value.
pub fn set_slice(slice: Option<Duration>) -> io::Result<()> {
    // PRIO_PROCESS of 0 is the calling thread on Linux
    let nice = rustix::process::getpriority_process(None).map_err(io::Error::from)?;
    let attr = SchedAttr {
        size: u32::try_from(std::mem::size_of::<SchedAttr>()).unwrap_or(56),
        policy: 0, // SCHED_OTHER
        flags: 0,
        nice,
        priority: 0,
        runtime: slice.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        deadline: 0,
        period: 0,
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: `attr` is a valid, initialised `struct sched_attr` whose `size` field says how
    // much the kernel may read; it lives across the call, and the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::pid_t,
            &raw const attr,
            0 as libc::c_uint,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_thread_gets_a_short_slice_and_back_or_a_clear_error() {
        std::thread::spawn(|| {
            for slice in [Some(SHORT), None] {
                if let Err(e) = set_slice(slice) {
                    // a kernel without sched_setattr, or a sandbox that forbids it
                    let known = [libc::ENOSYS, libc::EPERM, libc::EINVAL];
                    assert!(known.contains(&e.raw_os_error().unwrap_or(0)), "{e}");
                }
            }
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn a_light_thread_keeps_to_one_core_and_gets_them_all_back() {
        std::thread::spawn(|| {
            let place = Placement::of_this_thread();
            let Some(all) = place.all else { return };
            place.apply(Some(Some(SHORT)));
            let now = sched_getaffinity(Pid::from_raw(0)).expect("affinity");
            let cores = (0..CpuSet::count()).filter(|&c| now.is_set(c).unwrap_or(false));
            assert_eq!(cores.count(), 1, "light: one core");
            place.apply(Some(None));
            assert_eq!(sched_getaffinity(Pid::from_raw(0)).expect("affinity"), all);
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn lone_packets_get_the_short_slice_bulk_the_default_until_it_has_been_quiet() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = SlicePolicy::default();
        assert_eq!(p.after_round(1, at(0)), Some(Some(SHORT)), "a ping");
        assert_eq!(p.after_round(1, at(10)), None);
        assert_eq!(p.after_round(40, at(20)), Some(None), "bulk");
        // small rounds between bulk ones (ACKs, the tail of a burst) keep the default
        assert_eq!(p.after_round(2, at(21)), None);
        assert_eq!(p.after_round(40, at(60)), None);
        assert_eq!(p.after_round(2, at(100)), None);
        assert_eq!(
            p.after_round(1, at(110)),
            Some(Some(SHORT)),
            "quiet for 50 ms"
        );
        assert_eq!(p.after_round(0, at(120)), None);
    }
}
