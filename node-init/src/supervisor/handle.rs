//! The supervisor as its callers hold it: the published snapshot and definitions, waits on a
//! service's state, and the requests the supervisor loop answers (replace, shutdown; restart
//! and succeed live beside their loop side in `restart.rs` and `succeed.rs`).

use super::policy::State;
use super::service::{self, Service};
use super::{Msg, Snapshot};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// A running supervisor: its snapshot and its shutdown.
#[derive(Clone)]
pub struct Handle {
    pub(super) status: watch::Receiver<Vec<Snapshot>>,
    pub(super) defs: watch::Receiver<Vec<Service>>,
    pub(super) cmd: mpsc::Sender<Msg>,
}

impl Handle {
    /// The services, in start order.
    pub fn snapshot(&self) -> Vec<Snapshot> {
        self.status.borrow().clone()
    }

    /// Waits until `name` is running (ready); its failure reason if it fails or `timeout`
    /// passes first.
    pub async fn wait_ready(&self, name: &str, timeout: Duration) -> Result<(), String> {
        let outcome = self
            .wait_for(name, timeout, |state, _| match state {
                State::Running { .. } => Some(Ok(())),
                State::Failed { reason } => Some(Err(reason.clone())),
                State::Stopped => Some(Err("stopped".into())),
                _ => None,
            })
            .await;
        outcome.unwrap_or_else(|| {
            let detail = self
                .snapshot()
                .into_iter()
                .find(|s| s.name == name)
                .and_then(|s| s.detail);
            Err(format!(
                "not ready after {timeout:?}{}",
                detail.map(|d| format!(" (last: {d})")).unwrap_or_default()
            ))
        })
    }

    /// Follows `name`'s published state (and its detail) until `decide` gives an outcome;
    /// `None` when `timeout` passes first. An unknown service or an ended supervisor is an
    /// outcome of its own.
    pub(super) async fn wait_for<T>(
        &self,
        name: &str,
        timeout: Duration,
        decide: impl Fn(&State, Option<String>) -> Option<Result<T, String>>,
    ) -> Option<Result<T, String>> {
        let mut rx = self.status.clone();
        let wait = async {
            loop {
                let state = rx
                    .borrow_and_update()
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| (s.state.clone(), s.detail.clone()));
                let Some((state, detail)) = state else {
                    return Err(format!("no service {name}"));
                };
                if let Some(outcome) = decide(&state, detail) {
                    return outcome;
                }
                if rx.changed().await.is_err() {
                    return Err("supervisor ended".into());
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }

    /// Stops `name` (SIGTERM, SIGKILL after its stop timeout) and waits for its exit; then
    /// starts it from `def` with a fresh crash history, or with `None` keeps it stopped. Used
    /// by upgrades: only this daemon restarts.
    pub async fn replace(
        &self,
        name: &str,
        def: Option<service::ServiceDef>,
    ) -> Result<(), String> {
        self.ask(|ack| Msg::Replace {
            name: name.to_string(),
            def,
            ack,
        })
        .await
    }

    /// Sends the supervisor loop the message `make` builds around an answer channel; its
    /// answer.
    pub(super) async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Msg,
    ) -> Result<T, String> {
        let (ack, rx) = oneshot::channel();
        self.cmd
            .send(make(ack))
            .await
            .map_err(|_| "supervisor ended".to_string())?;
        rx.await.map_err(|_| "supervisor ended".to_string())?
    }

    /// The definition `name` runs from now.
    pub fn definition(&self, name: &str) -> Option<service::ServiceDef> {
        self.defs
            .borrow()
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.def.clone())
    }

    /// Waits for the outcome of a start of `name` (after [`Self::replace`]): its pid once
    /// ready; the reason if it exits, is not ready within `timeout`, or is stopped first.
    /// Unlike [`Self::wait_ready`] a crash counts at once: a new build gets no second try.
    pub async fn wait_started(&self, name: &str, timeout: Duration) -> Result<u32, String> {
        let outcome = self
            .wait_for(name, timeout, |state, detail| match state {
                State::Running { pid } => Some(Ok(*pid)),
                State::Failed { reason } => Some(Err(reason.clone())),
                State::Backoff { .. } | State::Stopped => {
                    Some(Err(detail.unwrap_or_else(|| "exited".into())))
                }
                _ => None,
            })
            .await;
        outcome.unwrap_or_else(|| Err(format!("not ready within {} s", timeout.as_secs())))
    }

    /// Stops every service in reverse start order; returns when all are stopped.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Msg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
