//! Stage 3: the fleet. The scheduler lives here: it grants every planned target concurrently,
//! a semaphore (`--concurrency`) and a governor rate limiter (`--rate`) guarding each
//! *request*, so an org sleeping through a backoff holds no slot; the first org goes alone
//! (`canary`). One org's attempts are in `org`, where grants are stored in `sinks`. Each org
//! ends as an [`Outcome`]; a failed org is data, not an `Err`. Results flow to the one caller
//! of [`Fleet::run`], which owns the report and the progress bar.

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
use crate::retry::Policy;
use crate::stop::{StopReason, Stopper};
use crate::token::{ErrorKind, GrantError, TokenClient};

mod canary;
mod org;
mod sinks;
mod throttle;
mod watch;

use canary::Gate;
pub use sinks::{Granted, OutDirSink, Sink, SinkKind, Sinks};
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
    /// Boxed: most orgs have none, and a fleet keeps one outcome per org.
    pub error: Option<Box<GrantError>>,
    /// Something the report should say about the org (e.g. a request was in flight when the
    /// run stopped, so it may have been granted).
    pub note: Option<String>,
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
            note: None,
        }
    }

    pub(crate) fn failed(attempts: u32, elapsed: Duration, error: GrantError) -> Self {
        Self {
            status: Status::Failed,
            error: Some(Box::new(error)),
            ..Self::pending(attempts, elapsed)
        }
    }
}

/// What the fleet tells its caller while it runs.
#[derive(Debug)]
pub enum Event {
    /// A token request for the org at `index` is about to be sent.
    Sending {
        index: usize,
    },
    /// The answer to that request (or its failure) came back.
    Answered {
        index: usize,
    },
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
    /// Orgs sleeping through a backoff now: they hold a task but no slot, so the scheduler
    /// starts that many more.
    sleeping: std::sync::atomic::AtomicUsize,
    /// Closed until the first org's answer shows the token host takes this configuration.
    gate: Gate,
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
            sleeping: std::sync::atomic::AtomicUsize::new(0),
            gate: Gate::new(false),
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
        targets: &[Target],
        mut observe: impl FnMut(&Event),
    ) -> Vec<Outcome> {
        let total = targets.len();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; total];
        // Requests sent per org, and whether one is in flight: an org cut off while its
        // request was out may have been granted, and the report says so.
        let mut sent = vec![0_u32; total];
        let mut in_flight = vec![false; total];
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Spawn lazily: enough tasks to keep every slot busy while many orgs sleep in backoff,
        // without holding a future per org for a fleet of ten thousand.
        // Enough tasks to keep every slot busy: twice the slots, plus one for each org sleeping
        // through a backoff (a fleet waiting out replication keeps its slots working), and
        // never more than a bound, so ten thousand orgs never hold ten thousand futures.
        let ready = (self.limits.concurrency * 8).max(128);
        let most = (self.limits.concurrency * 16).max(1024);
        let width = || (ready + self.sleeping.load(std::sync::atomic::Ordering::Relaxed)).min(most);
        // Each target is copied only when its task starts: no second copy of the whole list.
        let mut queue = targets.iter().cloned().enumerate();
        let mut set = JoinSet::new();
        let mut grace_deadline: Option<tokio::time::Instant> = None;
        let mut watch = MisconfigWatch::default();
        let started = Instant::now();
        let mut track = |event: &Event| match *event {
            Event::Sending { index } => {
                sent[index] += 1;
                in_flight[index] = true;
            }
            Event::Answered { index } => in_flight[index] = false,
            _ => {}
        };
        loop {
            while set.len() < width() && !self.stop.is_stopped() {
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
                () = self.stop.aborted() => {
                    set.abort_all();
                    while set.join_next().await.is_some() {}
                    break;
                }
                Some(event) = rx.recv() => {
                    track(&event);
                    observe(&event);
                }
                joined = set.join_next() => match joined {
                    None => break,
                    Some(Ok((index, outcome))) => {
                        // Every event of this org was sent before its outcome.
                        while let Ok(event) = rx.try_recv() {
                            track(&event);
                            observe(&event);
                        }
                        if index == 0 {
                            self.gate.canary_finished(outcome.error.as_deref().filter(|_| outcome.status == Status::Failed), &self.stop);
                        }
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
            track(&event);
            observe(&event);
        }
        let elapsed = started.elapsed();
        // After a fleet-wide misconfiguration, the orgs never tried failed for the same reason.
        let unattempted = match self.stop.reason() {
            Some(StopReason::Misconfigured { error, failures }) => Some(GrantError {
                // A code of its own: these orgs never met the error that stopped the run.
                code: NOT_ATTEMPTED.into(),
                description: format!(
                    "not attempted: {} failed with `{}: {}`, so the run stopped",
                    first_orgs(*failures),
                    error.code,
                    error.description
                ),
                ..error.clone()
            }),
            _ => None,
        };
        outcomes
            .into_iter()
            .enumerate()
            .map(|(index, o)| {
                let cut_off = || {
                    let mut o = Outcome::pending(sent[index], elapsed);
                    if in_flight[index] {
                        o.note = Some("a token request was in flight when the run stopped: it may have been granted, but nothing was stored; the next run grants it again".into());
                    }
                    o
                };
                match (o, &unattempted) {
                    (Some(o), _) if o.status != Status::Pending => o,
                    (_, Some(e)) if sent[index] == 0 => {
                        Outcome::failed(0, Duration::ZERO, e.clone())
                    }
                    (Some(o), _) => o,
                    (None, _) => cut_off(),
                }
            })
            .collect()
    }
}

/// The error code of an org never tried because the run stopped early.
pub const NOT_ATTEMPTED: &str = "not_attempted";

/// "the first org" / "the first 5 orgs", for messages.
pub fn first_orgs(n: usize) -> String {
    if n == 1 {
        "the first org".to_string()
    } else {
        format!("the first {n} orgs")
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
