//! Stage 3: the fleet. The scheduler lives here: it grants every planned target concurrently,
//! a semaphore (`--concurrency`) and a governor rate limiter (`--rate`) guarding each
//! *request*, so an org sleeping through a backoff holds no slot; the first org goes alone
//! (`canary`). One org's attempts are in `org`, where grants are stored in `sinks`. Each org
//! ends as an [`Outcome`]; a failed org is data, not an `Err`. Results flow to the one caller
//! of [`Fleet::run`], which owns the report and the progress bar.

use std::collections::HashMap;
use std::num::NonZeroU32;
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
mod intern;
mod org;
mod sinks;
mod throttle;
mod watch;

use canary::Gate;
pub use sinks::{
    Admission, Closing, Fresh, Granted, OutDirSink, PreflightError, Sink, SinkKind, Sinks, Stored,
};
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
    /// Boxed text, not `String`: a fleet keeps one outcome per org, and every byte counts.
    pub org_id: Option<Box<str>>,
    pub user_id: Option<Box<str>>,
    /// Shared with the other orgs of the same instance (see `intern`).
    pub instance_url: Option<Arc<str>>,
    /// The host the grant was POSTed to (the row's instance URL or the fallback), shared.
    pub token_host: Option<Arc<str>>,
    /// When the token was issued.
    pub issued_at: Option<time::OffsetDateTime>,
    /// Where the grant was stored, by sink.
    pub stored: Stored,
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
            stored: Stored::default(),
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
    /// The token hosts and instance URLs of the outcomes, each kept once.
    shared: intern::Interner,
    /// Orgs sleeping through a backoff now: they hold a task but no slot, so the scheduler
    /// starts that many more.
    sleeping: std::sync::atomic::AtomicUsize,
    /// Closed until the first org's answer shows the token host takes this configuration.
    gate: Gate,
    stop: Stopper,
}

impl Fleet {
    #[expect(
        clippy::expect_used,
        reason = "the period is checked to be positive and finite by config::check_rate"
    )]
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
            shared: intern::Interner::default(),
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
    /// Where this fleet stores its grants.
    pub fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    pub async fn run(
        self: Arc<Self>,
        targets: &[Target],
        mut observe: impl FnMut(&Event),
    ) -> Vec<Outcome> {
        let total = targets.len();
        let mut books = Books {
            outcomes: vec![None; total],
            sent: vec![0_u32; total],
            in_flight: vec![false; total],
            tasks: HashMap::new(),
            watch: MisconfigWatch::default(),
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (orphans, mut orphaned) = mpsc::unbounded_channel();
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
        let started = Instant::now();
        loop {
            while set.len() < width() && !self.stop.is_stopped() {
                let Some((index, target)) = queue.next() else {
                    break;
                };
                let fleet = Arc::clone(&self);
                let (tx, orphans) = (tx.clone(), orphans.clone());
                let task = set.spawn(async move {
                    let outcome = fleet.grant_one(index, target, &tx, orphans).await;
                    (index, outcome)
                });
                books.tasks.insert(task.id(), index);
            }
            tokio::select! {
                biased;
                () = self.stop.aborted() => break,
                Some(event) = rx.recv() => books.event(event, &mut observe),
                joined = set.join_next_with_id() => match joined {
                    None => break,
                    Some(joined) => {
                        // Every event of this org was sent before its outcome.
                        while let Ok(event) = rx.try_recv() {
                            books.event(event, &mut observe);
                        }
                        self.joined(joined, targets, &mut books, &mut observe);
                    }
                },
                () = self.stop.stopped(), if grace_deadline.is_none() => {
                    grace_deadline = Some(tokio::time::Instant::now() + self.limits.grace);
                }
                () = sleep_until_opt(grace_deadline) => break,
            }
        }
        // Out of time: cancel the orgs still working, but keep what those that finished (or
        // panicked) meanwhile say.
        set.abort_all();
        while let Some(joined) = set.join_next_with_id().await {
            self.joined(joined, targets, &mut books, &mut observe);
        }
        while let Ok(event) = rx.try_recv() {
            books.event(event, &mut observe);
        }
        // A grant whose org was cancelled while its files were being written: wait for the
        // write (local, short), so the report says what landed.
        drop(orphans);
        let patience = self.limits.grace.max(Duration::from_secs(5));
        let _ = tokio::time::timeout(patience, async {
            while let Some((index, outcome)) = orphaned.recv().await {
                let event = Event::Finished {
                    index,
                    outcome: Box::new(outcome),
                };
                observe(&event);
                if let Event::Finished { index, outcome } = event {
                    if let Some(slot) = books.outcomes.get_mut(index) {
                        *slot = Some(*outcome);
                    }
                }
            }
        })
        .await;
        let elapsed = started.elapsed();
        let Books {
            outcomes,
            sent,
            in_flight,
            ..
        } = books;
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
        let store_failed = matches!(self.stop.reason(), Some(StopReason::StoreFailed { .. }));
        outcomes
            .into_iter()
            .enumerate()
            .map(|(index, o)| {
                let sent = sent.get(index).copied().unwrap_or(0);
                let cut_off = || {
                    let mut o = Outcome::pending(sent, elapsed);
                    if in_flight.get(index).copied().unwrap_or(false) {
                        o.note = Some("a token request was in flight when the run stopped: it may have been granted, but nothing was stored; the next run grants it again".into());
                    } else if store_failed {
                        o.note = Some("not attempted: the run stopped when a grant could not be stored; the next run grants it".into());
                    }
                    o
                };
                match (o, &unattempted) {
                    (Some(o), _) if o.status != Status::Pending => o,
                    (_, Some(e)) if sent == 0 => Outcome::failed(0, Duration::ZERO, e.clone()),
                    (Some(o), _) if o.note.is_some() || !store_failed => o,
                    _ => cut_off(),
                }
            })
            .collect()
    }

    /// One org task ended: record its outcome, or, when it panicked, fail the org with an
    /// internal error (said on stderr too) rather than leave it silently pending.
    fn joined(
        &self,
        joined: Result<(tokio::task::Id, (usize, Outcome)), tokio::task::JoinError>,
        targets: &[Target],
        books: &mut Books,
        observe: &mut impl FnMut(&Event),
    ) {
        let (index, outcome) = match joined {
            Ok((id, (index, outcome))) => {
                books.tasks.remove(&id);
                (index, outcome)
            }
            Err(e) => {
                let Some(index) = books.tasks.remove(&e.id()) else {
                    return;
                };
                if !e.is_panic() {
                    // Cancelled at the end of the grace period: the org stays pending.
                    return;
                }
                let why = panic_message(e.into_panic());
                let username = targets.get(index).map_or("?", |t| t.username.as_str());
                crate::say_err!("error: internal error while granting {username}: {why}");
                let sent = books.sent.get(index).copied().unwrap_or(0);
                let error = internal_error(&format!("fleetauth failed on this org ({why})"));
                (index, Outcome::failed(sent, Duration::ZERO, error))
            }
        };
        if index == 0 {
            self.gate.canary_finished(
                outcome
                    .error
                    .as_deref()
                    .filter(|_| outcome.status == Status::Failed),
                &self.stop,
            );
        }
        if let Some(reason) = books.watch.observe(&outcome, targets.len()) {
            self.stop.stop(reason);
        }
        let event = Event::Finished {
            index,
            outcome: Box::new(outcome),
        };
        observe(&event);
        if let Event::Finished { index, outcome } = event {
            if let Some(slot) = books.outcomes.get_mut(index) {
                *slot = Some(*outcome);
            }
        }
    }
}

/// Where grants whose org task was cancelled while they were being stored send their outcome.
pub(super) type Orphans = mpsc::UnboundedSender<(usize, Outcome)>;

/// What the scheduler keeps per org while a fleet runs.
struct Books {
    outcomes: Vec<Option<Outcome>>,
    /// Requests sent per org, and whether one is in flight: an org cut off while its request
    /// was out may have been granted, and the report says so.
    sent: Vec<u32>,
    in_flight: Vec<bool>,
    /// Which org each running task works for (a panicked task names only its id).
    tasks: HashMap<tokio::task::Id, usize>,
    watch: MisconfigWatch,
}

impl Books {
    fn event(&mut self, event: Event, observe: &mut impl FnMut(&Event)) {
        match event {
            Event::Sending { index } => {
                if let Some(n) = self.sent.get_mut(index) {
                    *n += 1;
                }
                if let Some(f) = self.in_flight.get_mut(index) {
                    *f = true;
                }
            }
            Event::Answered { index } => {
                if let Some(f) = self.in_flight.get_mut(index) {
                    *f = false;
                }
            }
            _ => {}
        }
        observe(&event);
    }
}

/// A failure that is fleetauth's own fault, not the org's.
pub(super) fn internal_error(what: &str) -> GrantError {
    GrantError::permanent(
        "internal_error",
        what.to_string(),
        "this is a bug in fleetauth: please report it with this output; re-running the same command tries the org again",
    )
}

/// The text a panic carried.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use futures::future::BoxFuture;
    use tokio::sync::Notify;

    use super::*;
    use crate::emulator::{self, test_keys, EmulatorConfig};
    use crate::input::Origin;
    use crate::token::GrantError;

    /// A sink that panics for one username, and can hold a store until released.
    #[derive(Default)]
    struct TestSink {
        panic_for: Option<&'static str>,
        /// Told when a store started; the store then waits for `release`.
        storing: Option<Arc<Notify>>,
        release: Arc<Notify>,
    }

    impl Sink for TestSink {
        fn kind(&self) -> SinkKind {
            SinkKind::OutDir
        }

        fn fresh(&self, _: &Target, _: Duration) -> Option<Fresh> {
            None
        }

        fn store<'a>(&'a self, g: &'a Granted<'a>) -> BoxFuture<'a, Result<PathBuf, GrantError>> {
            Box::pin(async move {
                assert_ne!(
                    Some(g.target.username.as_str()),
                    self.panic_for,
                    "test panic"
                );
                if let Some(storing) = &self.storing {
                    storing.notify_one();
                    self.release.notified().await;
                }
                Ok(PathBuf::from(format!("{}.json", g.target.username)))
            })
        }
    }

    async fn fleet(sink: TestSink, stop: Stopper) -> (Arc<Fleet>, emulator::EmulatorHandle) {
        let mut config = EmulatorConfig::new(
            test_keys::CERTIFICATE.as_bytes().to_vec(),
            test_keys::CLIENT_ID,
        );
        config.any_user = Some(Duration::ZERO);
        let emu = emulator::start(config, 0).await.unwrap();
        let url = Url::parse(&emu.url()).unwrap();
        let hosts = crate::urls::HostPolicy::default().with_host_of(&url);
        let network = crate::tls::Network::new(&[], hosts, &|_| None).unwrap();
        let client = TokenClient::new(Duration::from_secs(10), 4, &network).unwrap();
        let key = crate::credentials::parse(
            test_keys::PRIVATE_KEY.as_bytes().to_vec(),
            crate::credentials::KeyOrigin::File("server.key".into()),
        )
        .unwrap();
        let signer = Signer::new(
            key,
            test_keys::CLIENT_ID.into(),
            crate::defaults::AUDIENCE.into(),
        );
        let limits = Limits {
            concurrency: 4,
            rate: 1000.0,
            rate_limited_pause: Duration::from_secs(1),
            grace: Duration::from_millis(200),
        };
        let fleet = Fleet::new(
            client,
            signer,
            Policy::default(),
            limits,
            url,
            Sinks::default().with(sink),
            stop,
        );
        (Arc::new(fleet), emu)
    }

    fn targets(names: &[&str]) -> Vec<Target> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Target {
                username: (*n).to_string(),
                alias: None,
                instance_url: None,
                origin: Origin::Entry(i + 1),
                record: vec![(*n).to_string()],
                place: 0,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_panicked_org_task_fails_its_org_with_an_internal_error() {
        let sink = TestSink {
            panic_for: Some("b@x.com"),
            ..TestSink::default()
        };
        let (fleet, _emu) = fleet(sink, Stopper::new()).await;
        let outcomes = fleet
            .run(&targets(&["a@x.com", "b@x.com", "c@x.com"]), |_| {})
            .await;
        let statuses: Vec<Status> = outcomes.iter().map(|o| o.status).collect();
        assert_eq!(
            statuses,
            [Status::Authorized, Status::Failed, Status::Authorized]
        );
        let error = outcomes[1].error.as_deref().unwrap();
        assert_eq!(error.code, "internal_error");
        assert!(error.description.contains("test panic"), "{error:?}");
    }

    #[tokio::test]
    async fn a_grant_being_stored_when_the_run_is_aborted_is_reported_as_stored() {
        let storing = Arc::new(Notify::new());
        let sink = TestSink {
            storing: Some(Arc::clone(&storing)),
            ..TestSink::default()
        };
        let release = Arc::clone(&sink.release);
        let stop = Stopper::new();
        let (fleet, _emu) = fleet(sink, stop.clone()).await;
        let run = tokio::spawn(async move { fleet.run(&targets(&["a@x.com"]), |_| {}).await });
        storing.notified().await;
        // A second Ctrl-C: the org task is cancelled while its file is being written.
        stop.abort();
        tokio::task::yield_now().await;
        release.notify_one();
        let outcomes = run.await.unwrap();
        assert_eq!(outcomes[0].status, Status::Authorized, "{:?}", outcomes[0]);
        assert_eq!(
            outcomes[0].stored.get(SinkKind::OutDir),
            Some(std::path::Path::new("a@x.com.json"))
        );
    }
}
