//! Why a run ends early, and the one switch every stage listens to: a signal (SIGINT,
//! SIGTERM), `--deadline`, a fleet-wide misconfiguration seen in the first results, or a
//! grant that could not be stored.

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
    /// A grant could not be stored (a full disk, an out dir moved away): every later grant
    /// would be lost the same way, so nothing more is sent.
    StoreFailed {
        error: GrantError,
    },
}

/// A cancellation token that remembers the first reason it was stopped for, and a second
/// one for "stop now" (a second Ctrl-C): no grace for requests in flight.
#[derive(Debug, Clone, Default)]
pub struct Stopper {
    token: CancellationToken,
    now: CancellationToken,
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

    /// Stop at once: requests in flight are abandoned (the report is still written).
    pub fn abort(&self) {
        self.stop(StopReason::Interrupted);
        self.now.cancel();
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

    pub async fn aborted(&self) {
        self.now.cancelled().await;
    }

    /// SIGINT, SIGTERM or SIGHUP stop the run (requests in flight get their grace); a second
    /// signal stops it now.
    pub fn on_signals(&self) -> &Self {
        use tokio::signal::unix::{signal, SignalKind};
        // Registered here, before any blocking work starts, so no signal is missed.
        let kinds = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ];
        let [mut int, mut term, mut hup] = kinds.map(|k| signal(k).ok());
        let stopper = self.clone();
        tokio::spawn(async move {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            for second in [false, true] {
                tokio::select! {
                    () = recv(&mut int) => {}
                    () = recv(&mut term) => {}
                    () = recv(&mut hup) => {}
                }
                if second {
                    crate::say::err("fleetauth: stopping now; writing the report");
                    stopper.abort();
                } else {
                    crate::say::err(
                        "fleetauth: interrupted; finishing requests in flight (a second Ctrl-C stops now), then writing the report",
                    );
                    stopper.stop(StopReason::Interrupted);
                }
            }
        });
        self
    }

    /// Stop when `deadline` has passed (at once for a deadline of zero: nothing is sent).
    pub fn after(&self, deadline: Option<Duration>) -> &Self {
        if let Some(limit) = deadline {
            let passed = move |stopper: &Stopper| {
                crate::say::err(&format!("fleetauth: --deadline of {} passed; finishing requests in flight, then writing the report", humantime::format_duration(limit)));
                stopper.stop(StopReason::Deadline(limit));
            };
            if limit.is_zero() {
                passed(self);
                return self;
            }
            let stopper = self.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(limit) => passed(&stopper),
                    () = stopper.stopped() => {}
                }
            });
        }
        self
    }
}
