//! The terminal view of a run, on stderr only: an indicatif bar on a TTY, plain lines
//! otherwise, nothing with `--quiet`. Fed with fleet events; the fleet never sees it.
//!
//! Off a terminal (every CI log) a line comes when an org finishes, at most every
//! [`LINE_EVERY`], and a heartbeat ([`Progress::during`]) adds one whenever that long passed
//! without a line, so a fleet waiting out replication still shows a line every 5 s with how
//! many orgs are waiting.

use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
// tokio's clock, so the tests can pause it.
use tokio::time::Instant;

use crate::fleet::{Event, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Quiet,
}

/// The longest stretch without a progress line off a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

/// Where plain lines go: stderr, or (in tests) anything that takes a line.
type LineSink = Box<dyn Fn(&str) + Send + Sync>;

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Plain lines, off a terminal and not quiet.
    lines: Option<LineSink>,
    every: Duration,
    state: Mutex<State>,
}

struct State {
    total: usize,
    done: usize,
    authorized: usize,
    failed: usize,
    waiting: usize,
    retries: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    #[expect(clippy::expect_used, reason = "the template is a constant that parses")]
    pub fn new(total: usize, mode: Mode) -> Self {
        let tty = std::io::stderr().is_terminal();
        if mode == Mode::Quiet {
            return Self::build(total, None, None, LINE_EVERY);
        }
        if !tty {
            let sink: LineSink = Box::new(crate::say::err);
            return Self::build(total, None, Some(sink), LINE_EVERY);
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} {per_sec} ETA {eta}",
            )
            .expect("the template is valid"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Self::build(total, Some(bar), None, LINE_EVERY)
    }

    /// Plain lines to `sink`, at most `every` apart while the run goes on (for tests).
    pub fn lines_to(
        total: usize,
        every: Duration,
        sink: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        Self::build(total, None, Some(Box::new(sink)), every)
    }

    fn build(
        total: usize,
        bar: Option<ProgressBar>,
        lines: Option<LineSink>,
        every: Duration,
    ) -> Self {
        let now = Instant::now();
        Self {
            bar,
            lines,
            every,
            state: Mutex::new(State {
                total,
                done: 0,
                authorized: 0,
                failed: 0,
                waiting: 0,
                retries: 0,
                started: now,
                last_line: now,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn observe(&self, event: &Event) {
        let mut st = self.state();
        match event {
            Event::Sending { .. } | Event::Answered { .. } => {}
            Event::Waiting => st.waiting += 1,
            Event::Resumed => st.waiting = st.waiting.saturating_sub(1),
            Event::Retry { .. } => st.retries += 1,
            Event::SlowedDown { factor } => self.say(&format!(
                "login rate exceeded: pausing, then sending at 1/{factor} of --rate"
            )),
            Event::Finished { outcome, .. } => {
                st.done += 1;
                match outcome.status {
                    Status::Authorized => st.authorized += 1,
                    Status::Failed => st.failed += 1,
                    Status::Skipped | Status::Pending => {}
                }
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(st.done as u64);
            bar.set_message(st.counts());
        } else if matches!(event, Event::Finished { .. })
            && (st.last_line.elapsed() >= self.every || st.done == st.total)
        {
            // A retry is followed at once by the org's wait: lines come after finished orgs
            // (and from the heartbeat), never between the two, so the counts are whole.
            self.line(&mut st);
        }
    }

    /// Print a line now if none came for `every`; `false` when there are no plain lines.
    pub fn tick(&self) -> bool {
        if self.lines.is_none() {
            return false;
        }
        let mut st = self.state();
        if st.last_line.elapsed() >= self.every && st.done < st.total {
            self.line(&mut st);
        }
        true
    }

    /// Drive `run` to its end while a heartbeat keeps the plain lines at most `every` apart.
    pub async fn during<T>(&self, run: impl std::future::Future<Output = T>) -> T {
        let heartbeat = async {
            if self.lines.is_none() {
                return std::future::pending().await;
            }
            loop {
                let next = self.state().last_line + self.every;
                tokio::time::sleep_until(next).await;
                self.tick();
            }
        };
        tokio::select! {
            out = run => out,
            never = heartbeat => never,
        }
    }

    fn line(&self, st: &mut State) {
        st.last_line = Instant::now();
        let secs = st.started.elapsed().as_secs_f64();
        let text = format!(
            "fleetauth: {}/{} to grant done, {}, {} {}, {secs:.1} s",
            st.done,
            st.total,
            st.counts(),
            st.retries,
            if st.retries == 1 { "retry" } else { "retries" },
        );
        if let Some(sink) = &self.lines {
            sink(&text);
        }
    }

    fn say(&self, line: &str) {
        match (&self.bar, &self.lines) {
            (Some(bar), _) => bar.println(line),
            (None, Some(sink)) => sink(&format!("fleetauth: {line}")),
            (None, None) => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

impl State {
    fn counts(&self) -> String {
        format!(
            "{} authorized · {} waiting · {} failed",
            self.authorized, self.waiting, self.failed
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fleet::Outcome;

    /// Each line with when it came.
    type Lines = Arc<Mutex<Vec<(Duration, String)>>>;

    fn recorder(total: usize) -> (Progress, Lines) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let sink = Arc::clone(&lines);
        let progress = Progress::lines_to(total, LINE_EVERY, move |line| {
            sink.lock()
                .unwrap()
                .push((start.elapsed(), line.to_string()));
        });
        (progress, lines)
    }

    fn finished(status: Status) -> Event {
        Event::Finished {
            index: 0,
            outcome: Box::new(Outcome {
                status,
                ..Outcome::pending(1, Duration::ZERO)
            }),
        }
    }

    /// Two orgs: one authorized at once, one waiting out replication for 29 s, retried every
    /// 29 s with nothing else happening: a line at least every 5 s, each counting the wait.
    #[tokio::test(start_paused = true)]
    async fn off_a_terminal_a_line_comes_every_5_s_with_the_waiting_count() {
        let (progress, lines) = recorder(2);
        let fleet = async {
            progress.observe(&finished(Status::Authorized));
            for _ in 0..2 {
                progress.observe(&Event::Retry {
                    kind: crate::token::ErrorKind::ReplicationDelay,
                });
                progress.observe(&Event::Waiting);
                tokio::time::sleep(Duration::from_secs(29)).await;
                progress.observe(&Event::Resumed);
            }
            progress.observe(&finished(Status::Authorized));
        };
        progress.during(fleet).await;
        let lines = lines.lock().unwrap().clone();
        let times: Vec<Duration> = lines.iter().map(|(t, _)| *t).collect();
        assert!(lines.len() >= 58 / 5, "{lines:?}");
        let mut last = Duration::ZERO;
        for t in &times {
            assert!(*t - last <= LINE_EVERY, "{times:?}");
            last = *t;
        }
        let (_, waiting) = &lines[1];
        assert!(
            waiting.contains("1/2 to grant done") && waiting.contains("1 waiting"),
            "{waiting}"
        );
        assert!(
            lines
                .iter()
                .skip(1)
                .take(5)
                .all(|(_, l)| l.contains("1 waiting")),
            "the heartbeat counts the org waiting: {lines:?}"
        );
        let (_, last_line) = lines.last().unwrap();
        assert!(
            last_line.contains("2/2 to grant done")
                && last_line.contains("0 waiting")
                && last_line.contains("2 retries"),
            "{last_line}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_line_when_quiet_or_between_a_retry_and_its_wait() {
        let (progress, lines) = recorder(3);
        tokio::time::advance(LINE_EVERY * 2).await;
        progress.observe(&Event::Retry {
            kind: crate::token::ErrorKind::ReplicationDelay,
        });
        assert!(
            lines.lock().unwrap().is_empty(),
            "a retry alone prints nothing"
        );
        progress.observe(&Event::Waiting);
        assert!(progress.tick());
        assert!(lines.lock().unwrap()[0].1.contains("1 waiting"));
        let quiet = Progress::new(3, Mode::Quiet);
        assert!(!quiet.tick(), "quiet has no lines");
    }
}
