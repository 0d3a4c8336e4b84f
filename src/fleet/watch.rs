//! The early stop: when the first results all fail with the same permanent error, the fault is
//! the configuration, not the orgs.

use super::{Outcome, Status};
use crate::stop::StopReason;
use crate::token::ErrorKind;

/// How many identical permanent failures, before any success, stop the run.
pub const MISCONFIG_THRESHOLD: usize = 5;

/// Watches the first results: when they all fail with the same permanent error, the fault is
/// the configuration (consumer key, key, audience), not the orgs.
#[derive(Debug, Default)]
pub(super) struct MisconfigWatch {
    first: Option<(String, String)>,
    count: usize,
    disarmed: bool,
}

impl MisconfigWatch {
    pub(super) fn observe(&mut self, outcome: &Outcome, total: usize) -> Option<StopReason> {
        if self.disarmed || total <= MISCONFIG_THRESHOLD {
            return None;
        }
        let error = match (&outcome.status, &outcome.error) {
            (Status::Failed, Some(e)) if e.kind == ErrorKind::Permanent => e,
            (Status::Pending, _) => return None,
            _ => {
                self.disarmed = true;
                return None;
            }
        };
        let key = (error.code.clone(), error.description.clone());
        if self.first.get_or_insert_with(|| key.clone()) != &key {
            self.disarmed = true;
            return None;
        }
        self.count += 1;
        (self.count >= MISCONFIG_THRESHOLD).then(|| {
            self.disarmed = true;
            StopReason::Misconfigured {
                error: (**error).clone(),
                failures: self.count,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::GrantError;

    fn failed(code: &str) -> Outcome {
        Outcome::failed(
            1,
            std::time::Duration::ZERO,
            GrantError {
                kind: ErrorKind::Permanent,
                code: code.into(),
                description: "d".into(),
                hint: None,
                status: Some(400),
                try_fallback: false,
                fleet_wide: false,
            },
        )
    }

    #[test]
    fn five_identical_permanent_failures_first_stop_the_run() {
        let mut w = MisconfigWatch::default();
        for _ in 0..4 {
            assert!(w.observe(&failed("invalid_client_id"), 100).is_none());
        }
        let stop = w.observe(&failed("invalid_client_id"), 100);
        assert!(matches!(
            stop,
            Some(StopReason::Misconfigured { failures: 5, .. })
        ));
    }

    #[test]
    fn a_success_or_a_different_error_disarms_it() {
        let mut w = MisconfigWatch::default();
        w.observe(&failed("a"), 100);
        w.observe(&failed("b"), 100);
        assert!((0..10).all(|_| w.observe(&failed("a"), 100).is_none()));
        let mut w = MisconfigWatch::default();
        w.observe(
            &Outcome {
                status: Status::Authorized,
                ..Outcome::pending(1, std::time::Duration::ZERO)
            },
            100,
        );
        assert!((0..10).all(|_| w.observe(&failed("a"), 100).is_none()));
        let mut small = MisconfigWatch::default();
        assert!(
            (0..5).all(|_| small.observe(&failed("a"), 5).is_none()),
            "a list of five is just tried"
        );
    }
}
