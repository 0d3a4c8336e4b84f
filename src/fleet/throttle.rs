//! The run-wide brake after a `login rate exceeded`: pause, then halve the rate (down to 1/8),
//! and step back up after a quiet spell.

use std::sync::Mutex;
use std::time::Duration;

// tokio's clock, so a test can pause and advance it.
use tokio::time::Instant;

/// Slows the whole run after a `login rate exceeded`.
#[derive(Debug)]
pub(super) struct Throttle {
    state: Mutex<ThrottleState>,
}

#[derive(Debug)]
pub(super) struct ThrottleState {
    /// No request starts before this.
    pause_until: Option<Instant>,
    /// Each request takes this many limiter cells: the effective rate is `rate / slowdown`.
    slowdown: u32,
    last_change: Instant,
}

const MAX_SLOWDOWN: u32 = 8;
/// After this long without a `login rate exceeded`, the rate steps back up (doubles).
const RECOVER_AFTER: Duration = Duration::from_secs(30);

impl Throttle {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(ThrottleState {
                pause_until: None,
                slowdown: 1,
                last_change: Instant::now(),
            }),
        }
    }

    #[expect(
        clippy::expect_used,
        reason = "the lock is never held across a panic: its holders only read and write numbers"
    )]
    fn lock(&self) -> std::sync::MutexGuard<'_, ThrottleState> {
        self.state.lock().expect("throttle lock is never poisoned")
    }

    /// A request was rate limited: pause and halve the rate, once per pause window (the other
    /// requests of the same burst do not slow the run down again). Returns the new slowdown.
    pub(super) fn trip(&self, pause: Duration) -> Option<u32> {
        let now = Instant::now();
        let mut st = self.lock();
        if st.pause_until.is_some_and(|until| now < until) {
            return None;
        }
        st.pause_until = Some(now + pause);
        st.slowdown = (st.slowdown * 2).min(MAX_SLOWDOWN);
        st.last_change = now;
        Some(st.slowdown)
    }

    /// When the next request may start, and how many limiter cells it takes.
    pub(super) fn admission(&self) -> (Option<Instant>, u32) {
        let now = Instant::now();
        let mut st = self.lock();
        if st.slowdown > 1 && now.duration_since(st.last_change) >= RECOVER_AFTER {
            st.slowdown /= 2;
            st.last_change = now;
        }
        (st.pause_until.filter(|&until| now < until), st.slowdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_burst_of_rate_limited_answers_slows_the_run_once() {
        let t = Throttle::new();
        assert_eq!(t.admission(), (None, 1));
        assert_eq!(t.trip(Duration::from_millis(50)), Some(2));
        assert_eq!(t.trip(Duration::from_millis(50)), None, "same pause window");
        let (pause, cells) = t.admission();
        assert!(pause.is_some());
        assert_eq!(cells, 2);
        tokio::time::advance(Duration::from_millis(60)).await;
        assert_eq!(
            t.admission(),
            (None, 2),
            "the pause is over, the rate still halved"
        );
        for expected in [4, 8, 8] {
            assert_eq!(t.trip(Duration::ZERO), Some(expected));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_steps_back_up_after_each_quiet_spell() {
        let t = Throttle::new();
        for _ in 0..3 {
            t.trip(Duration::ZERO);
        }
        assert_eq!(t.admission(), (None, 8));
        // Not quiet long enough yet.
        tokio::time::advance(RECOVER_AFTER - Duration::from_millis(1)).await;
        assert_eq!(t.admission().1, 8);
        // Each quiet spell doubles the rate again, back to the full --rate and no further.
        for expected in [4, 2, 1] {
            tokio::time::advance(RECOVER_AFTER).await;
            assert_eq!(t.admission().1, expected);
        }
        tokio::time::advance(RECOVER_AFTER * 4).await;
        assert_eq!(t.admission().1, 1);
        // A new `login rate exceeded` restarts the spell.
        assert_eq!(t.trip(Duration::ZERO), Some(2));
        tokio::time::advance(RECOVER_AFTER / 2).await;
        assert_eq!(t.admission().1, 2);
        tokio::time::advance(RECOVER_AFTER / 2).await;
        assert_eq!(t.admission().1, 1);
    }
}
