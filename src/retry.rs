//! The retry policy: given how an attempt failed and what came before, wait how long or give
//! up. Pure: the jitter is an argument, so every decision is reproducible in a test.

use std::time::Duration;

use crate::token::ErrorKind;

/// No org gets more attempts than this, whatever the settings: failed logins in bulk get the
/// calling IP blocked.
pub const HARD_ATTEMPT_CAP: u32 = 64;
/// A 420 (org in maintenance, or expired) is retried at most this many times.
pub const MAX_420_RETRIES: u32 = 3;

#[derive(Debug, Clone)]
pub struct Policy {
    pub replication_base: Duration,
    pub replication_cap: Duration,
    /// Per-org budget for waiting out replication, measured from the first attempt.
    pub replication_budget: Duration,
    pub transient_base: Duration,
    pub transient_cap: Duration,
    pub max_retries: u32,
    pub rate_limited_base: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            replication_base: Duration::from_secs(2),
            replication_cap: Duration::from_secs(30),
            replication_budget: Duration::from_secs(300),
            transient_base: Duration::from_millis(500),
            transient_cap: Duration::from_secs(30),
            max_retries: 5,
            rate_limited_base: Duration::from_secs(5),
        }
    }
}

/// What one org has been through so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct History {
    pub attempts: u32,
    pub replication_retries: u32,
    pub transient_retries: u32,
    pub retries_420: u32,
    pub rate_limited_retries: u32,
    /// Time since the org's first attempt.
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(Duration),
    /// Stop; `budget_spent` tells a replication delay that ran out its time from a plain failure.
    GiveUp {
        budget_spent: bool,
    },
}

/// Exponential backoff with full jitter: `jitter × min(cap, base × 2^n)`, `jitter` in [0, 1).
pub fn backoff(base: Duration, cap: Duration, n: u32, jitter: f64) -> Duration {
    let ceiling = base.saturating_mul(1u32 << n.min(20)).min(cap);
    ceiling.mul_f64(jitter.clamp(0.0, 1.0))
}

impl Policy {
    /// Decide after a failed attempt. `history` already counts that attempt.
    pub fn decide(
        &self,
        kind: ErrorKind,
        is_420: bool,
        history: &History,
        jitter: f64,
    ) -> Decision {
        if history.attempts >= HARD_ATTEMPT_CAP {
            return Decision::GiveUp {
                budget_spent: kind == ErrorKind::ReplicationDelay,
            };
        }
        match kind {
            ErrorKind::Permanent => Decision::GiveUp {
                budget_spent: false,
            },
            ErrorKind::ReplicationDelay => {
                let Some(left) = self
                    .replication_budget
                    .checked_sub(history.elapsed)
                    .filter(|d| !d.is_zero())
                else {
                    return Decision::GiveUp { budget_spent: true };
                };
                let delay = backoff(
                    self.replication_base,
                    self.replication_cap,
                    history.replication_retries,
                    jitter,
                );
                // Never sleep past the budget: the last try lands on its edge.
                Decision::RetryAfter(delay.min(left))
            }
            ErrorKind::Transient => {
                let cap = if is_420 {
                    MAX_420_RETRIES.min(self.max_retries)
                } else {
                    self.max_retries
                };
                let used = if is_420 {
                    history.retries_420
                } else {
                    history.transient_retries
                };
                if used >= cap {
                    return Decision::GiveUp {
                        budget_spent: false,
                    };
                }
                Decision::RetryAfter(backoff(
                    self.transient_base,
                    self.transient_cap,
                    history.transient_retries,
                    jitter,
                ))
            }
            ErrorKind::RateLimited => {
                if history.rate_limited_retries >= self.max_retries {
                    return Decision::GiveUp {
                        budget_spent: false,
                    };
                }
                // Come back late: at least the base, plus jittered growth.
                let extra = backoff(
                    self.rate_limited_base,
                    self.transient_cap,
                    history.rate_limited_retries,
                    jitter,
                );
                Decision::RetryAfter(self.rate_limited_base + extra)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(attempts: u32, elapsed_s: u64) -> History {
        History {
            attempts,
            elapsed: Duration::from_secs(elapsed_s),
            ..History::default()
        }
    }

    #[test]
    fn backoff_grows_doubles_and_caps_with_full_jitter() {
        let (b, c) = (Duration::from_secs(2), Duration::from_secs(30));
        assert_eq!(backoff(b, c, 0, 0.999_999).as_secs(), 1);
        assert_eq!(backoff(b, c, 2, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(b, c, 10, 1.0), c);
        assert_eq!(backoff(b, c, 60, 1.0), c);
        assert_eq!(backoff(b, c, 3, 0.0), Duration::ZERO);
    }

    #[test]
    fn permanent_is_never_retried() {
        let p = Policy::default();
        assert_eq!(
            p.decide(ErrorKind::Permanent, false, &history(1, 0), 0.5),
            Decision::GiveUp {
                budget_spent: false
            }
        );
    }

    #[test]
    fn replication_delay_retries_inside_its_budget_only() {
        let p = Policy::default();
        let mut h = history(3, 100);
        h.replication_retries = 2;
        assert_eq!(
            p.decide(ErrorKind::ReplicationDelay, false, &h, 0.5),
            Decision::RetryAfter(Duration::from_secs(4))
        );
        h.elapsed = Duration::from_secs(299);
        assert_eq!(
            p.decide(ErrorKind::ReplicationDelay, false, &h, 1.0),
            Decision::RetryAfter(Duration::from_secs(1))
        );
        h.elapsed = Duration::from_secs(300);
        assert_eq!(
            p.decide(ErrorKind::ReplicationDelay, false, &h, 0.5),
            Decision::GiveUp { budget_spent: true }
        );
    }

    #[test]
    fn transient_stops_after_max_retries_and_420_after_three() {
        let p = Policy::default();
        let mut h = history(5, 1);
        h.transient_retries = 4;
        assert!(matches!(
            p.decide(ErrorKind::Transient, false, &h, 0.5),
            Decision::RetryAfter(_)
        ));
        h.transient_retries = 5;
        assert!(matches!(
            p.decide(ErrorKind::Transient, false, &h, 0.5),
            Decision::GiveUp { .. }
        ));
        let mut h = history(4, 1);
        h.retries_420 = 3;
        assert!(matches!(
            p.decide(ErrorKind::Transient, true, &h, 0.5),
            Decision::GiveUp { .. }
        ));
    }

    #[test]
    fn rate_limited_waits_at_least_the_base() {
        let p = Policy::default();
        let d = p.decide(ErrorKind::RateLimited, false, &history(1, 0), 0.0);
        assert_eq!(d, Decision::RetryAfter(p.rate_limited_base));
    }

    #[test]
    fn the_hard_cap_holds_whatever_the_settings() {
        let p = Policy {
            max_retries: 1000,
            replication_budget: Duration::from_secs(86_400),
            ..Policy::default()
        };
        for kind in [
            ErrorKind::Transient,
            ErrorKind::ReplicationDelay,
            ErrorKind::RateLimited,
        ] {
            assert!(matches!(
                p.decide(kind, false, &history(HARD_ATTEMPT_CAP, 1), 0.5),
                Decision::GiveUp { .. }
            ));
        }
    }
}
