//! `zos services restart SERVICE`: an operator's restart through the supervisor loop, so it
//! follows the same path as a crash restart (order, readiness, logs) without counting as one.
//!
//! | state of the service         | restart                                                  |
//! |------------------------------|----------------------------------------------------------|
//! | starting / running           | SIGTERM, SIGKILL after its stop timeout; started again at |
//! |                              | once when it exited (dependencies permitting)             |
//! | backoff / failed / stopped   | started at once; a failed one's crash history is cleared |
//! | waiting                      | nothing to do (it starts once its dependencies are ready)|
//! | stopping                     | refused: already on its way down                         |
//! | node shutting down           | refused                                                  |

use super::policy::State;
use super::process::{Processes, Sig};
use super::{Handle, Msg, Supervisor};
use std::time::{Duration, Instant};

impl<P: Processes> Supervisor<P> {
    /// Starts an operator's restart of `name` (see the module doc).
    pub(super) fn restart(&mut self, name: &str) -> Result<(), String> {
        let Some(svc) = self.service(name) else {
            return Err(format!("no service {name}"));
        };
        if self.stopping {
            return Err("the node is shutting down".into());
        }
        match self.states.get(name).cloned() {
            Some(State::Starting { pid } | State::Running { pid }) => {
                tracing::info!(service = name, pid, "restart requested: stopping it");
                if let Some(p) = self.unit(name).prober.take() {
                    p.abort();
                }
                self.unit(name).restarting = true;
                self.procs.signal(pid, Sig::Term);
                self.set(name, State::Stopping { pid });
                let (tx, name, after) = (self.tx.clone(), name.to_string(), svc.def.stop_timeout());
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send(Msg::StopTimeout { name, pid }).await;
                });
                Ok(())
            }
            Some(State::Backoff { .. } | State::Failed { .. } | State::Stopped) => {
                tracing::info!(service = name, "restart requested: starting it");
                let u = self.unit(name);
                u.crashes.clear();
                u.detail = Some("restarted on request".into());
                self.set(
                    name,
                    State::Backoff {
                        until: Instant::now(),
                    },
                );
                Ok(())
            }
            Some(State::Waiting) | None => Ok(()),
            Some(State::Stopping { .. }) => Err(format!("{name} is stopping")),
        }
    }
}

impl Handle {
    /// Restarts service `name` and waits until it is ready again (`timeout`); why not.
    pub async fn restart(&self, name: &str, timeout: Duration) -> Result<(), String> {
        self.ask(|ack| Msg::Restart {
            name: name.to_string(),
            ack,
        })
        .await?;
        self.wait_ready(name, timeout).await
    }
}
