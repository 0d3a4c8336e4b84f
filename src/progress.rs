//! The terminal view of a run, on stderr only: an indicatif bar on a TTY, plain lines
//! otherwise, nothing with `--quiet`. Fed with fleet events; the fleet never sees it.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::fleet::{Event, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Quiet,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
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
    pub fn new(total: usize, mode: Mode) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (mode == Mode::Auto && tty).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} {per_sec} ETA {eta}",
                )
                .expect("the template is valid"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            lines: mode == Mode::Auto && !tty,
            total,
            done: 0,
            authorized: 0,
            failed: 0,
            waiting: 0,
            retries: 0,
            started: now,
            last_line: now,
        }
    }

    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Sending { .. } | Event::Answered { .. } => {}
            Event::Waiting => self.waiting += 1,
            Event::Resumed => self.waiting = self.waiting.saturating_sub(1),
            Event::Retry { .. } => self.retries += 1,
            Event::SlowedDown { factor } => self.say(&format!(
                "login rate exceeded: pausing, then sending at 1/{factor} of --rate"
            )),
            Event::Finished { outcome, .. } => {
                self.done += 1;
                match outcome.status {
                    Status::Authorized => self.authorized += 1,
                    Status::Failed => self.failed += 1,
                    Status::Skipped | Status::Pending => {}
                }
            }
        }
        let counts = format!(
            "{} authorized · {} waiting · {} failed",
            self.authorized, self.waiting, self.failed
        );
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
            bar.set_message(counts);
        } else if self.lines && (self.last_line.elapsed() >= LINE_EVERY || self.done == self.total)
        {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64();
            crate::say_err!(
                "fleetauth: {}/{} done, {counts}, {} retries, {:.1} s",
                self.done,
                self.total,
                self.retries,
                secs
            );
        }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if self.lines => crate::say_err!("fleetauth: {line}"),
            None => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
