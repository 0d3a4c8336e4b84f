//! Stage 3: the fleet. Grants every planned target concurrently: a semaphore (`--concurrency`)
//! and a governor rate limiter (`--rate`) guard each *request*, so an org sleeping through a
//! backoff holds no slot. Each org ends as an [`Outcome`]; a failed org is data, not an `Err`.
//! Results flow to the one caller of [`Fleet::run`], which owns the report and the progress bar.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use url::Url;

use crate::assertion::Signer;
use crate::input::Target;
use crate::retry::{Decision, History, Policy};
use crate::sfstate::handoff::Handoff;
use crate::stop::{StopReason, Stopper};
use crate::store::{AuthRecord, OutDir};
use crate::token::{ErrorKind, Grant, GrantError, TokenClient};
use crate::urls;

mod throttle;
mod watch;

use throttle::Throttle;
use watch::MisconfigWatch;
pub use watch::MISCONFIG_THRESHOLD;

/// How hard to push, validated by `config`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub concurrency: usize,
    /// Token requests per second, retries included.
    pub rate: f64,
    /// After a `login rate exceeded`, no request starts for this long.
    pub rate_limited_pause: Duration,
    /// After cancellation, how long in-flight requests may finish.
    pub grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Authorized,
    Failed,
    Skipped,
    Pending,
}

/// How one org's grant ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub attempts: u32,
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    pub instance_url: Option<String>,
    /// The host the grant was POSTed to (the row's instance URL or the fallback).
    pub token_host: Option<String>,
    /// When the token was issued.
    pub issued_at: Option<time::OffsetDateTime>,
    pub auth_file: Option<PathBuf>,
    /// The org's auth file in the Salesforce CLI's state (`--sf`).
    pub sf_auth_file: Option<PathBuf>,
    pub elapsed: Duration,
    /// Time spent sleeping through replication-delay backoffs.
    pub replication_wait: Duration,
    pub error: Option<GrantError>,
}

impl Outcome {
    pub fn pending(attempts: u32, elapsed: Duration) -> Self {
        Self {
            status: Status::Pending,
            attempts,
            org_id: None,
            user_id: None,
            instance_url: None,
            token_host: None,
            issued_at: None,
            auth_file: None,
            sf_auth_file: None,
            elapsed,
            replication_wait: Duration::ZERO,
            error: None,
        }
    }

    pub(crate) fn failed(attempts: u32, elapsed: Duration, error: GrantError) -> Self {
        Self {
            status: Status::Failed,
            error: Some(error),
            ..Self::pending(attempts, elapsed)
        }
    }
}

/// What the fleet tells its caller while it runs.
#[derive(Debug)]
pub enum Event {
    /// An org started waiting out a replication delay.
    Waiting,
    /// An org woke up from a replication wait.
    Resumed,
    /// An org failed an attempt and will retry.
    Retry {
        kind: ErrorKind,
    },
    /// The run was rate limited and slowed down to 1/`factor` of `--rate`.
    SlowedDown {
        factor: u32,
    },
    Finished {
        index: usize,
        outcome: Box<Outcome>,
    },
}

/// Where each grant is stored.
#[derive(Debug, Default)]
pub struct Sinks {
    /// The out dir's per-org auth files.
    pub out: Option<OutDir>,
    /// The Salesforce CLI's state (`--sf`, `fleetauth login`).
    pub sf: Option<Handoff>,
}

pub struct Fleet {
    client: TokenClient,
    signer: Signer,
    policy: Policy,
    limits: Limits,
    fallback: Url,
    sinks: Sinks,
    limiter: DefaultDirectRateLimiter,
    permits: Semaphore,
    throttle: Throttle,
    stop: Stopper,
}

impl Fleet {
    pub fn new(
        client: TokenClient,
        signer: Signer,
        policy: Policy,
        limits: Limits,
        fallback: Url,
        sinks: Sinks,
        stop: Stopper,
    ) -> Self {
        let burst = NonZeroU32::new(u32::try_from(limits.concurrency).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs_f64(1.0 / limits.rate);
        let quota = Quota::with_period(period)
            .expect("config guarantees a positive rate")
            .allow_burst(burst);
        Self {
            client,
            permits: Semaphore::new(limits.concurrency),
            limiter: RateLimiter::direct(quota),
            throttle: Throttle::new(),
            signer,
            policy,
            limits,
            fallback,
            sinks,
            stop,
        }
    }

    /// Grant every target; `observe` sees each event as it happens. Returns one outcome per
    /// target, in target order (orgs never finished are `Pending`).
    pub async fn run(
        self: Arc<Self>,
        targets: Vec<Target>,
        mut observe: impl FnMut(&Event),
    ) -> Vec<Outcome> {
        let total = targets.len();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; total];
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Spawn lazily: enough tasks to keep every slot busy while many orgs sleep in backoff,
        // without holding a future per org for a fleet of ten thousand.
        let width = (self.limits.concurrency * 16).max(1024);
        let mut queue = targets.into_iter().enumerate();
        let mut set = JoinSet::new();
        let mut grace_deadline: Option<tokio::time::Instant> = None;
        let mut watch = MisconfigWatch::default();
        let started = Instant::now();
        loop {
            while set.len() < width && !self.stop.is_stopped() {
                let Some((index, target)) = queue.next() else {
                    break;
                };
                let fleet = Arc::clone(&self);
                let tx = tx.clone();
                set.spawn(async move {
                    let outcome = fleet.grant_one(index, target, &tx).await;
                    (index, outcome)
                });
            }
            tokio::select! {
                biased;
                Some(event) = rx.recv() => observe(&event),
                joined = set.join_next() => match joined {
                    None => break,
                    Some(Ok((index, outcome))) => {
                        if let Some(reason) = watch.observe(&outcome, total) {
                            self.stop.stop(reason);
                        }
                        let event = Event::Finished { index, outcome: Box::new(outcome) };
                        observe(&event);
                        if let Event::Finished { index, outcome } = event {
                            outcomes[index] = Some(*outcome);
                        }
                    }
                    // A task that panicked or was aborted leaves its org pending.
                    Some(Err(_)) => {}
                },
                () = self.stop.stopped(), if grace_deadline.is_none() => {
                    grace_deadline = Some(tokio::time::Instant::now() + self.limits.grace);
                }
                () = sleep_until_opt(grace_deadline) => {
                    set.abort_all();
                    while set.join_next().await.is_some() {}
                    break;
                }
            }
        }
        while let Ok(event) = rx.try_recv() {
            observe(&event);
        }
        let elapsed = started.elapsed();
        // After a fleet-wide misconfiguration, the orgs never tried failed for the same reason.
        let unattempted = match self.stop.reason() {
            Some(StopReason::Misconfigured { error, failures }) => Some(GrantError {
                description: format!(
                    "not attempted: the first {failures} orgs all failed with `{}: {}`, so the run stopped",
                    error.code, error.description
                ),
                ..error.clone()
            }),
            _ => None,
        };
        outcomes
            .into_iter()
            .map(|o| match (o, &unattempted) {
                (Some(o), _) if o.status != Status::Pending || unattempted.is_none() => o,
                (Some(o), Some(e)) => Outcome::failed(o.attempts, o.elapsed, e.clone()),
                (None, Some(e)) => Outcome::failed(0, Duration::ZERO, e.clone()),
                (o, None) => o.unwrap_or_else(|| Outcome::pending(0, elapsed)),
            })
            .collect()
    }

    /// One org from first attempt to outcome.
    async fn grant_one(
        &self,
        index: usize,
        target: Target,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Outcome {
        let mut replication_wait = Duration::ZERO;
        let mut outcome = self
            .try_until_done(index, target, events, &mut replication_wait)
            .await;
        outcome.replication_wait = replication_wait;
        outcome
    }

    async fn try_until_done(
        &self,
        index: usize,
        target: Target,
        events: &mpsc::UnboundedSender<Event>,
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
                Box::pin(self.attempt(&target.username, &endpoint, &mut history)).await
            else {
                return Outcome::pending(history.attempts, started.elapsed());
            };
            let error = match result {
                Ok(grant) => {
                    return Box::pin(self.authorized(
                        index,
                        &target,
                        &host,
                        grant,
                        history.attempts,
                        started,
                    ))
                    .await
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
                    } else if error.kind == ErrorKind::Permanent {
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

    /// One request under the slot and rate limits. `None` when the run was cancelled first.
    async fn attempt(
        &self,
        username: &str,
        endpoint: &Url,
        history: &mut History,
    ) -> Option<Result<Grant, GrantError>> {
        let _permit = tokio::select! {
            permit = self.permits.acquire() => permit.expect("the semaphore is never closed"),
            () = self.stop.stopped() => return None,
        };
        let admitted = async {
            let (pause, cells) = self.throttle.admission();
            if let Some(until) = pause {
                tokio::time::sleep_until(until.into()).await;
            }
            for _ in 0..cells {
                self.limiter.until_ready().await;
            }
        };
        tokio::select! {
            () = admitted => {}
            () = self.stop.stopped() => return None,
        }
        history.attempts += 1;
        let assertion = match self.signer.sign(username) {
            Ok(a) => a,
            Err(e) => {
                return Some(Err(GrantError {
                    kind: ErrorKind::Permanent,
                    code: "signing_failed".into(),
                    description: e.to_string(),
                    hint: Some("the private key cannot sign RS256; generate a new RSA key".into()),
                    status: None,
                    try_fallback: false,
                }))
            }
        };
        Some(self.client.request(endpoint, &assertion).await)
    }

    /// Store a grant: the out-dir auth file, then the Salesforce CLI's state when asked.
    async fn authorized(
        &self,
        index: usize,
        target: &Target,
        host: &Url,
        grant: Grant,
        attempts: u32,
        started: Instant,
    ) -> Outcome {
        let mut outcome = Outcome {
            status: Status::Authorized,
            org_id: Some(grant.org_id.clone()),
            user_id: Some(grant.user_id.clone()),
            instance_url: Some(grant.instance_url.clone()),
            token_host: Some(urls::display(host)),
            issued_at: Some(time::OffsetDateTime::now_utc()),
            ..Outcome::pending(attempts, Duration::ZERO)
        };
        let store_failed = |code: &str, description: String, hint: &str| GrantError {
            kind: ErrorKind::Permanent,
            code: code.into(),
            description,
            hint: Some(hint.into()),
            status: None,
            try_fallback: false,
        };
        if let Some(out) = &self.sinks.out {
            match self.write_out_file(out, target, host, &grant).await {
                Ok(path) => outcome.auth_file = Some(path),
                Err(description) => {
                    let hint = "the grant worked but its auth file could not be written: check disk space and permissions of --out-dir, then re-run";
                    return Outcome::failed(
                        attempts,
                        started.elapsed(),
                        store_failed("store_failed", description, hint),
                    );
                }
            }
        }
        if let Some(sf) = &self.sinks.sf {
            match sf.record(index, target, &grant).await {
                Ok(path) => outcome.sf_auth_file = Some(path),
                Err(e) => {
                    let hint = "the grant worked but the Salesforce CLI's state could not be written: check ~/.sfdx (or --sf-home), then re-run";
                    return Outcome::failed(
                        attempts,
                        started.elapsed(),
                        store_failed("sf_state_failed", e.to_string(), hint),
                    );
                }
            }
        }
        outcome.elapsed = started.elapsed();
        outcome
    }

    async fn write_out_file(
        &self,
        out: &OutDir,
        target: &Target,
        host: &Url,
        grant: &Grant,
    ) -> Result<PathBuf, String> {
        let issued_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let login_url = urls::display(host);
        let out = out.clone();
        let (client_id, audience) = (
            self.signer.client_id().to_string(),
            self.signer.audience().to_string(),
        );
        let (username, alias, grant) =
            (target.username.clone(), target.alias.clone(), grant.clone());
        tokio::task::spawn_blocking(move || {
            let record = AuthRecord {
                username: &username,
                org_id: &grant.org_id,
                user_id: &grant.user_id,
                access_token: grant.access_token.expose(),
                instance_url: &grant.instance_url,
                login_url: &login_url,
                audience: &audience,
                client_id: &client_id,
                alias: alias.as_deref(),
                issued_at: &issued_at,
            };
            out.write_auth(&username, &record)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("the writer task failed: {e}"))?
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
