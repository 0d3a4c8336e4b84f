//! Why a run ends early, and the one switch every stage listens to: a signal (SIGINT,
//! SIGTERM), `--deadline`, or a fleet-wide misconfiguration seen in the first results.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::token::GrantError;

#[derive(Debug, Clone)]
pub enum StopReason {
    Interrupted,
    Deadline(Duration),
    /// The first orgs all failed with this same permanent error: sending it for every other org
    /// would only provoke Salesforce into blocking this machine.
    Misconfigured {
        error: GrantError,
        failures: usize,
    },
}

/// A cancellation token that remembers the first reason it was stopped for.
#[derive(Debug, Clone, Default)]
pub struct Stopper {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl Stopper {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub fn reason(&self) -> Option<&StopReason> {
        self.reason.get()
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    pub async fn stopped(&self) {
        self.token.cancelled().await;
    }

    /// Stop on the first SIGINT or SIGTERM.
    pub fn on_signals(&self) -> &Self {
        let stopper = self.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).ok();
            let terminated = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = terminated => {}
                () = stopper.stopped() => return,
            }
            eprintln!(
                "fleetauth: interrupted; finishing requests in flight, then writing the report"
            );
            stopper.stop(StopReason::Interrupted);
        });
        self
    }

    /// Stop when `deadline` has passed.
    pub fn after(&self, deadline: Option<Duration>) -> &Self {
        if let Some(limit) = deadline {
            let stopper = self.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(limit) => {
                        eprintln!("fleetauth: --deadline of {} passed; finishing requests in flight, then writing the report", humantime::format_duration(limit));
                        stopper.stop(StopReason::Deadline(limit));
                    }
                    () = stopper.stopped() => {}
                }
            });
        }
        self
    }
}
