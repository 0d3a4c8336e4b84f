//! The canary: the first org of a run goes alone. Its first answer that shows the token host
//! really is a Salesforce token endpoint (a grant, or any OAuth error that is not fleet-wide)
//! opens the gate for the rest. A fleet-wide error (wrong consumer key, key/certificate
//! mismatch, a host that is no token endpoint, an untrusted certificate) stops the run after
//! that one request; a host that cannot be reached stops it after the canary's own retries.
//! Salesforce blocks IP addresses that send storms of failed logins: this is the guard.

use tokio::sync::watch;

use crate::stop::{StopReason, Stopper};
use crate::token::{ErrorKind, GrantError};

/// What one canary attempt showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The host is a token endpoint that takes this configuration: let the fleet go.
    Open,
    /// Nothing is known yet (a transient failure, or a fallback host still to try).
    Unknown,
    /// The same error would meet every org: stop.
    Stop,
}

/// Judge one answer to the canary. `fallback_left`: a fallback host remains to be tried.
pub(super) fn judge(result: &Result<(), GrantError>, fallback_left: bool) -> Verdict {
    match result {
        Ok(()) => Verdict::Open,
        Err(e) if e.try_fallback && fallback_left => Verdict::Unknown,
        Err(e) if e.fleet_wide => Verdict::Stop,
        Err(e) if e.kind == ErrorKind::Transient && !e.from_token_endpoint() => Verdict::Unknown,
        Err(_) => Verdict::Open,
    }
}

/// An error that stops the run whoever meets it, canary or not, gate open or not: a proxy
/// that refused its credentials (every further request is another failed login on the proxy
/// account, and a few lock it).
pub(super) fn stop_at_once(error: &GrantError, stop: &Stopper) {
    if error.is_proxy_refusal() {
        stop.stop(StopReason::Misconfigured {
            error: error.clone(),
            failures: 1,
        });
    }
}

/// The gate the other orgs wait at.
#[derive(Debug)]
pub(super) struct Gate {
    open: watch::Sender<bool>,
}

impl Gate {
    pub(super) fn new(open: bool) -> Self {
        Self {
            open: watch::Sender::new(open),
        }
    }

    pub(super) fn open(&self) {
        self.open.send_replace(true);
    }

    pub(super) fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// Wait until the gate opens (returns at once when it is open).
    pub(super) async fn opened(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }

    /// Act on a verdict about the canary's answer.
    pub(super) fn apply(&self, verdict: Verdict, error: Option<&GrantError>, stop: &Stopper) {
        match (verdict, error) {
            (Verdict::Open, _) => self.open(),
            (Verdict::Stop, Some(e)) => stop.stop(StopReason::Misconfigured {
                error: e.clone(),
                failures: 1,
            }),
            _ => {}
        }
    }

    /// The canary finished without ever opening the gate: when it failed, its error meets
    /// every org (the token host could not be reached at all); stop the run.
    pub(super) fn canary_finished(&self, error: Option<&GrantError>, stop: &Stopper) {
        if self.is_open() {
            return;
        }
        match error {
            Some(e) => stop.stop(StopReason::Misconfigured {
                error: e.clone(),
                failures: 1,
            }),
            None => self.open(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: ErrorKind, fleet_wide: bool, try_fallback: bool) -> Result<(), GrantError> {
        let mut e = GrantError::permanent("x", "d", "h");
        e.kind = kind;
        e.fleet_wide = fleet_wide;
        e.try_fallback = try_fallback;
        Err(e)
    }

    #[test]
    fn verdicts() {
        use ErrorKind::*;
        assert_eq!(judge(&Ok(()), false), Verdict::Open);
        assert_eq!(judge(&error(Permanent, true, false), false), Verdict::Stop);
        assert_eq!(judge(&error(Permanent, true, true), true), Verdict::Unknown);
        assert_eq!(judge(&error(Permanent, true, true), false), Verdict::Stop);
        assert_eq!(
            judge(&error(Transient, false, false), false),
            Verdict::Unknown
        );
        assert_eq!(
            judge(&error(ReplicationDelay, false, false), false),
            Verdict::Open
        );
        assert_eq!(judge(&error(Permanent, false, false), false), Verdict::Open);
    }

    #[tokio::test]
    async fn the_gate_opens_once_and_stays_open() {
        use futures::FutureExt as _;
        let gate = std::sync::Arc::new(Gate::new(false));
        let stop = Stopper::new();
        // An org already waiting at the gate.
        let waiter = tokio::spawn({
            let gate = std::sync::Arc::clone(&gate);
            async move { gate.opened().await }
        });
        gate.apply(Verdict::Unknown, None, &stop);
        assert!(!gate.is_open());
        assert!(
            gate.opened().now_or_never().is_none(),
            "closed until a verdict opens it"
        );
        gate.apply(Verdict::Open, None, &stop);
        assert!(gate.is_open());
        waiter
            .await
            .expect("the waiting org goes through once the gate opens");
        // Later verdicts and the canary's end change nothing: it stays open, the run goes on.
        gate.apply(Verdict::Unknown, None, &stop);
        gate.apply(Verdict::Open, None, &stop);
        let later = GrantError::permanent("connect_error", "refused", "h");
        gate.canary_finished(Some(&later), &stop);
        assert!(gate.is_open());
        assert!(
            gate.opened().now_or_never().is_some(),
            "an open gate lets an org through at once"
        );
        assert!(!stop.is_stopped());
    }

    #[test]
    fn a_proxy_refusal_stops_the_run_even_after_the_gate_opened() {
        let stop = Stopper::new();
        stop_at_once(&GrantError::permanent("invalid_grant", "d", "h"), &stop);
        assert!(!stop.is_stopped());
        let mut e = GrantError::permanent(crate::token::PROXY_REFUSED, "407", "h");
        e.fleet_wide = true;
        assert_eq!(judge(&Err(e.clone()), true), Verdict::Stop);
        stop_at_once(&e, &stop);
        assert!(matches!(
            stop.reason(),
            Some(StopReason::Misconfigured { failures: 1, .. })
        ));
    }

    #[test]
    fn an_unreached_host_stops_the_run_when_the_canary_gives_up() {
        let gate = Gate::new(false);
        let stop = Stopper::new();
        let e = GrantError::permanent("connect_error", "refused", "h");
        gate.canary_finished(Some(&e), &stop);
        assert!(matches!(
            stop.reason(),
            Some(StopReason::Misconfigured { failures: 1, .. })
        ));
    }
}
