//! The emulator's counters, read by tests and benchmarks (in process, or as JSON from
//! `GET /_emulator/stats`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    requests: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    per_second: Vec<u64>,
    grants: HashMap<String, u64>,
    attempts: HashMap<String, u64>,
    answers: HashMap<String, u64>,
    faults: HashMap<String, u64>,
    tokens: Vec<String>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    pub requests: u64,
    pub peak_in_flight: u64,
    pub peak_requests_per_second: u64,
    /// Successful grants per username.
    pub grants: HashMap<String, u64>,
    /// Token requests per username (as the assertion's `sub`).
    pub attempts: HashMap<String, u64>,
    /// Answers by `error` code (`granted` for success).
    pub answers: HashMap<String, u64>,
    /// Injected faults by kind.
    pub faults: HashMap<String, u64>,
    /// Every access token issued. For leak tests; the emulator's tokens open nothing.
    pub tokens: Vec<String>,
    /// Token requests that arrived in each whole second since the start.
    pub per_second: Vec<u64>,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("stats lock is never poisoned")
    }

    /// A request arrived; returns how many arrived in the current second, this one included.
    pub(crate) fn begin(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        let second = usize::try_from(self.started.elapsed().as_secs()).unwrap_or(usize::MAX);
        let mut inner = self.lock();
        if inner.per_second.len() <= second {
            inner.per_second.resize(second + 1, 0);
        }
        inner.per_second[second] += 1;
        inner.per_second[second]
    }

    pub(crate) fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn fault(&self, name: &str) {
        *self.lock().faults.entry(name.to_string()).or_default() += 1;
    }

    pub(crate) fn attempt(&self, username: &str) {
        *self
            .lock()
            .attempts
            .entry(username.to_string())
            .or_default() += 1;
    }

    pub(crate) fn answer(&self, code: &str) {
        *self.lock().answers.entry(code.to_string()).or_default() += 1;
    }

    pub(crate) fn granted(&self, username: &str, token: &str) {
        let mut inner = self.lock();
        *inner.grants.entry(username.to_string()).or_default() += 1;
        *inner.answers.entry("granted".to_string()).or_default() += 1;
        inner.tokens.push(token.to_string());
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let inner = self.lock();
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            peak_requests_per_second: inner.per_second.iter().copied().max().unwrap_or(0),
            grants: inner.grants.clone(),
            attempts: inner.attempts.clone(),
            answers: inner.answers.clone(),
            faults: inner.faults.clone(),
            tokens: inner.tokens.clone(),
            per_second: inner.per_second.clone(),
        }
    }
}
