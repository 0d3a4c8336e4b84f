//! One org's attempts, from the first request to its [`Outcome`]: sign, send under the slot
//! and rate limits, classify, back off or move to the fallback host, and hand a grant to the
//! sinks. The canary (the run's first org) also opens or shuts the gate here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tokio::sync::{mpsc, oneshot};
use url::Url;

use super::canary::{self, Verdict};
use super::sinks::Granted;
use super::{Event, Fleet, Orphans, Outcome, Status};
use crate::input::Target;
use crate::retry::{Decision, History};
use crate::stop::StopReason;
use crate::token::{ErrorKind, Grant, GrantError};
use crate::urls;

impl Fleet {
    /// One org from first attempt to outcome.
    pub(super) async fn grant_one(
        self: Arc<Self>,
        index: usize,
        target: Target,
        events: &mpsc::UnboundedSender<Event>,
        orphans: Orphans,
    ) -> Outcome {
        let mut replication_wait = Duration::ZERO;
        let mut outcome = self
            .try_until_done(index, target, events, orphans, &mut replication_wait)
            .await;
        outcome.replication_wait = replication_wait;
        outcome
    }

    async fn try_until_done(
        self: &Arc<Self>,
        index: usize,
        target: Target,
        events: &mpsc::UnboundedSender<Event>,
        orphans: Orphans,
        replication_wait: &mut Duration,
    ) -> Outcome {
        let started = Instant::now();
        let mut history = History::default();
        // The org's own host first, when the list gave one; then the run's host.
        let mut host = target
            .instance_url
            .as_deref()
            .and_then(|u| urls::token_host(u).ok())
            .unwrap_or_else(|| self.fallback.clone());
        loop {
            let endpoint = urls::token_endpoint(&host);
            // Boxed: the in-flight request is large, and only `concurrency` of them exist at
            // once, while every waiting org's future would otherwise reserve room for one.
            let Some(result) =
                Box::pin(self.attempt(index, &target.username, &endpoint, &mut history, events))
                    .await
            else {
                return Outcome::pending(history.attempts, started.elapsed());
            };
            if let Err(e) = &result {
                canary::stop_at_once(e, &self.stop);
            }
            if index == 0 && !self.gate.is_open() {
                let seen = result.as_ref().map(|_| ()).map_err(Clone::clone);
                let verdict = canary::judge(&seen, host != self.fallback);
                self.gate.apply(verdict, seen.as_ref().err(), &self.stop);
                if verdict == Verdict::Stop {
                    if let Err(error) = result {
                        return Outcome::failed(history.attempts, started.elapsed(), error);
                    }
                }
            }
            let error = match result {
                Ok(grant) => {
                    return self
                        .store_detached(
                            index,
                            target,
                            host,
                            grant,
                            history.attempts,
                            started,
                            orphans,
                        )
                        .await;
                }
                Err(error) => error,
            };
            if error.try_fallback && host != self.fallback {
                host = self.fallback.clone();
                continue;
            }
            if error.kind == ErrorKind::RateLimited {
                if let Some(factor) = self.throttle.trip(self.limits.rate_limited_pause) {
                    let _ = events.send(Event::SlowedDown { factor });
                }
            }
            history.elapsed = started.elapsed();
            match self
                .policy
                .decide(error.kind, error.is_420(), &history, rand::random())
            {
                Decision::GiveUp { budget_spent } => {
                    let error = if budget_spent {
                        error.budget_spent(self.policy.replication_budget)
                    } else if error.kind == ErrorKind::Permanent || error.fleet_wide {
                        error
                    } else {
                        error.retries_exhausted()
                    };
                    return Outcome::failed(history.attempts, started.elapsed(), error);
                }
                Decision::RetryAfter(delay) => {
                    match error.kind {
                        ErrorKind::ReplicationDelay => history.replication_retries += 1,
                        ErrorKind::RateLimited => history.rate_limited_retries += 1,
                        _ if error.is_420() => {
                            history.retries_420 += 1;
                            history.transient_retries += 1;
                        }
                        _ => history.transient_retries += 1,
                    }
                    // Counted before the scheduler hears of it: it may start another org.
                    self.sleeping
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = events.send(Event::Retry { kind: error.kind });
                    let waiting = error.kind == ErrorKind::ReplicationDelay;
                    if waiting {
                        let _ = events.send(Event::Waiting);
                    }
                    let asleep = Instant::now();
                    let slept = tokio::select! {
                        () = tokio::time::sleep(delay) => true,
                        () = self.stop.stopped() => false,
                    };
                    self.sleeping
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    if waiting {
                        *replication_wait += asleep.elapsed();
                        let _ = events.send(Event::Resumed);
                    }
                    if !slept {
                        return Outcome::pending(history.attempts, started.elapsed());
                    }
                }
            }
        }
    }

    /// A slot (`--concurrency`) for one request, held while the permit lives: every request
    /// of the run takes one, the token requests and the sinks' calls to the org alike. `None`
    /// when the run stops first.
    #[expect(clippy::expect_used, reason = "the fleet never closes its semaphore")]
    pub(crate) async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::select! {
            biased;
            () = self.stop.stopped() => None,
            permit = self.permits.acquire() => Some(permit.expect("the semaphore is never closed")),
        }
    }

    /// A slot and, for a token request, the rate limiter's admission (`--rate`, slowed after
    /// a `login rate exceeded`): the login servers' limit. `None` when the run stops first.
    async fn admitted(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let permit = self.slot().await?;
        let admitted = async {
            let (pause, cells) = self.throttle.admission();
            if let Some(until) = pause {
                tokio::time::sleep_until(until).await;
            }
            for _ in 0..cells {
                self.limiter.until_ready().await;
            }
        };
        tokio::select! {
            biased;
            () = self.stop.stopped() => return None,
            () = admitted => {}
        }
        (!self.stop.is_stopped()).then_some(permit)
    }

    /// One request under the slot and rate limits. `None` when the run was cancelled first.
    /// Every org but the canary waits until the canary's answer opened the gate.
    async fn attempt(
        &self,
        index: usize,
        username: &str,
        endpoint: &Url,
        history: &mut History,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Option<Result<Grant, GrantError>> {
        if index != 0 {
            tokio::select! {
                biased;
                () = self.stop.stopped() => return None,
                () = self.gate.opened() => {}
            }
        }
        let _permit = self.admitted().await?;
        history.attempts += 1;
        let assertion = match self.signer.sign(username) {
            Ok(a) => a,
            Err(e) => {
                let mut e = GrantError::permanent(
                    "signing_failed",
                    e.to_string(),
                    "the private key cannot sign RS256; generate a new RSA key",
                );
                e.fleet_wide = true;
                return Some(Err(e));
            }
        };
        let _ = events.send(Event::Sending { index });
        let result = self.client.request(endpoint, &assertion).await;
        let _ = events.send(Event::Answered { index });
        Some(result)
    }

    /// Store a grant in a task of its own, so that cancelling the org (the grace period's end,
    /// a second Ctrl-C) never cuts a write in half or loses its outcome: a store whose org
    /// was cancelled sends its outcome to `orphans`, which the fleet drains before it reports.
    #[expect(
        clippy::too_many_arguments,
        reason = "one org's state, handed over once"
    )]
    async fn store_detached(
        self: &Arc<Self>,
        index: usize,
        target: Target,
        host: Url,
        grant: Grant,
        attempts: u32,
        started: Instant,
        orphans: Orphans,
    ) -> Outcome {
        let (tx, rx) = oneshot::channel();
        let fleet = Arc::clone(self);
        tokio::spawn(async move {
            let storing = fleet.authorized(&target, &host, grant, attempts, started);
            // A panic while storing fails the org, saying what it was.
            let outcome = std::panic::AssertUnwindSafe(Box::pin(storing))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let why = super::panic_message(panic);
                    crate::say_err!(
                        "error: internal error while storing {}: {why}",
                        target.username
                    );
                    let error =
                        super::internal_error(&format!("fleetauth failed on this org ({why})"));
                    Outcome::failed(attempts, started.elapsed(), error)
                });
            if let Err(outcome) = tx.send(outcome) {
                let _ = orphans.send((index, outcome));
            }
        });
        rx.await.unwrap_or_else(|_| {
            Outcome::failed(
                attempts,
                started.elapsed(),
                super::internal_error("storing its grant failed unexpectedly"),
            )
        })
    }

    /// Hand a grant to every sink, in order; the first that fails fails the org, and stops the
    /// run: a store that fails for one org (a full disk, a directory gone) fails for all.
    async fn authorized(
        &self,
        target: &Target,
        host: &Url,
        grant: Grant,
        attempts: u32,
        started: Instant,
    ) -> Outcome {
        let issued_at = time::OffsetDateTime::now_utc();
        let mut outcome = Outcome {
            status: Status::Authorized,
            org_id: Some(grant.org_id.as_str().into()),
            user_id: Some(grant.user_id.as_str().into()),
            instance_url: Some(self.shared.get(&grant.instance_url)),
            token_host: Some(self.shared.get(&urls::display(host))),
            issued_at: Some(issued_at),
            ..Outcome::pending(attempts, Duration::ZERO)
        };
        let granted = Granted {
            admission: super::sinks::Admission(self),
            target,
            token_host: host,
            grant: &grant,
            issued_at,
        };
        for sink in self.sinks.iter() {
            match sink.store(&granted).await {
                Ok(path) => outcome.stored.set(sink.kind(), path),
                Err(error) => {
                    self.stop.stop(StopReason::StoreFailed {
                        error: error.clone(),
                    });
                    return Outcome::failed(attempts, started.elapsed(), error);
                }
            }
        }
        outcome.elapsed = started.elapsed();
        outcome
    }
}
