//! The per-container state machine of operations in flight, and the memory ledger admission
//! reads. Only in-memory state, under one short lock: the slow work of an operation (a
//! download, a mount, a stop that waits for the grace period) runs on its own thread, and
//! `get`/`list`/`health` never wait for it.
//!
//! A container runs at most one operation. A second request for the same operation (a retry
//! after a bus timeout) joins the running one and gets its outcome; a different one is refused
//! as busy (`unavailable`, retry later).

use crate::error::{Error, Result};
use bus::api::compute::{Container, ContainerSpec};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// An operation that changes a container.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Create or converge to this spec.
    Create(Box<ContainerSpec>),
    /// Start a stopped or exited container.
    Start,
    /// Stop it.
    Stop,
    /// Stop and remove it.
    Delete,
    /// Start a new shim for a container that should run but has none.
    Recover,
}

impl Op {
    /// Name in messages.
    pub fn label(&self) -> &'static str {
        match self {
            Op::Create(_) => "create",
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Delete => "delete",
            Op::Recover => "recovery",
        }
    }
}

/// What an operation ends with: the container (none after a delete or a recovery) or an error.
pub type Outcome = Result<Option<Container>>;

/// One operation in flight; callers wait on it.
#[derive(Debug)]
pub struct Slot {
    /// The operation.
    pub op: Op,
    /// When it began.
    pub started: Instant,
    done: Mutex<Option<Outcome>>,
    cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data under these locks is replaced whole, never left half-changed by a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slot {
    /// The outcome, once the operation ended within `timeout`.
    pub fn wait(&self, timeout: Duration) -> Option<Outcome> {
        let guard = lock(&self.done);
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |d| d.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.clone()
    }
    /// The busy error for a caller that waited in vain, or that asked for something else.
    pub fn busy(&self, name: &str) -> Error {
        Error::Busy {
            name: name.to_string(),
            running: self.op.label(),
            secs: self.started.elapsed().as_secs(),
        }
    }
}

/// How a request got its slot.
#[derive(Debug)]
pub enum Begin {
    /// A new operation: the caller runs it and calls [`Ops::finish`].
    New(Arc<Slot>),
    /// The same operation was running: wait on it.
    Join(Arc<Slot>),
}

#[derive(Debug, Default)]
struct Registry {
    slots: BTreeMap<String, Arc<Slot>>,
    /// Memory limit per container: of its spec on disk, or of the create in flight.
    memory: BTreeMap<String, u64>,
}

/// Operations in flight and the memory ledger.
#[derive(Debug, Default)]
pub struct Ops {
    r: Mutex<Registry>,
}

impl Ops {
    /// A registry whose ledger starts as `memory` (from the specs on disk).
    pub fn new(memory: BTreeMap<String, u64>) -> Ops {
        Ops {
            r: Mutex::new(Registry {
                slots: BTreeMap::new(),
                memory,
            }),
        }
    }

    /// Registers `op` on `name` unless one runs: the same operation is joined, another is
    /// refused as busy. For a new create, `admit` decides over the memory the other
    /// containers hold (in one step with the registration, so two creates cannot both take
    /// the last free memory), and the ledger then holds the new spec's memory.
    pub fn begin(
        &self,
        name: &str,
        op: Op,
        admit: impl FnOnce(u64) -> Result<()>,
    ) -> Result<Begin> {
        let mut r = lock(&self.r);
        if let Some(slot) = r.slots.get(name) {
            return if slot.op == op {
                Ok(Begin::Join(slot.clone()))
            } else {
                Err(slot.busy(name))
            };
        }
        if let Op::Create(spec) = &op {
            let others: u64 = r
                .memory
                .iter()
                .filter(|(n, _)| n.as_str() != name)
                .map(|(_, m)| *m)
                .sum();
            admit(others)?;
            r.memory.insert(name.to_string(), spec.memory);
        }
        let slot = Arc::new(Slot {
            op,
            started: Instant::now(),
            done: Mutex::new(None),
            cv: Condvar::new(),
        });
        r.slots.insert(name.to_string(), slot.clone());
        Ok(Begin::New(slot))
    }

    /// Ends the operation of `slot`: the ledger takes `memory` (the container's spec now on
    /// disk, `None` if it has none), the slot leaves the registry and its waiters get
    /// `outcome`.
    pub fn finish(&self, name: &str, slot: &Arc<Slot>, memory: Option<u64>, outcome: Outcome) {
        {
            let mut r = lock(&self.r);
            match memory {
                Some(m) => r.memory.insert(name.to_string(), m),
                None => r.memory.remove(name),
            };
            if r.slots.get(name).is_some_and(|s| Arc::ptr_eq(s, slot)) {
                r.slots.remove(name);
            }
        }
        *lock(&slot.done) = Some(outcome);
        slot.cv.notify_all();
    }

    /// The operation running on `name`.
    pub fn running(&self, name: &str) -> Option<Arc<Slot>> {
        lock(&self.r).slots.get(name).cloned()
    }

    /// Every operation running.
    pub fn all(&self) -> Vec<(String, Arc<Slot>)> {
        lock(&self.r)
            .slots
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect()
    }

    /// Sum of the memory limits of all containers (existing and being created).
    pub fn memory_reserved(&self) -> u64 {
        lock(&self.r).memory.values().sum()
    }
}
