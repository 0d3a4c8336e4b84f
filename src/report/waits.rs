//! The distribution of replication waits (how long new orgs took to become usable), shared by
//! the terminal table and the Markdown summary.

use crate::fleet::Status;

use super::{OrgReport, Report};

/// Upper bounds (exclusive, in ms) and labels of the buckets; the last one is open.
const BUCKETS: [(u64, &str); 8] = [
    (1, "none"),
    (5_000, "under 5 s"),
    (15_000, "5-15 s"),
    (30_000, "15-30 s"),
    (60_000, "30-60 s"),
    (120_000, "1-2 min"),
    (300_000, "2-5 min"),
    (u64::MAX, "5 min or more"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub label: &'static str,
    pub orgs: usize,
}

/// The orgs that were tried in this run (authorized or failed), the ones a wait applies to.
fn tried(report: &Report) -> impl Iterator<Item = &OrgReport> {
    report
        .orgs
        .iter()
        .filter(|o| matches!(o.status, Status::Authorized | Status::Failed) && o.attempts > 0)
}

/// How many tried orgs fall in each bucket, from the first bucket to the longest wait's.
pub fn distribution(report: &Report) -> Vec<Bucket> {
    let mut buckets: Vec<Bucket> = BUCKETS
        .iter()
        .map(|&(_, label)| Bucket { label, orgs: 0 })
        .collect();
    for org in tried(report) {
        let i = BUCKETS
            .iter()
            .position(|&(below, _)| org.replication_wait_ms < below)
            .unwrap_or(BUCKETS.len() - 1);
        if let Some(bucket) = buckets.get_mut(i) {
            bucket.orgs += 1;
        }
    }
    let used = buckets
        .iter()
        .rposition(|b| b.orgs > 0)
        .map_or(0, |i| i + 1);
    buckets.truncate(used);
    buckets
}

/// Whether any org waited at all (else a histogram says nothing).
pub fn any(report: &Report) -> bool {
    tried(report).any(|o| o.replication_wait_ms > 0)
}

/// The `n` longest waits, longest first.
pub fn slowest(report: &Report, n: usize) -> Vec<&OrgReport> {
    let mut waited: Vec<&OrgReport> = tried(report)
        .filter(|o| o.replication_wait_ms > 0)
        .collect();
    waited.sort_by_key(|o| std::cmp::Reverse(o.replication_wait_ms));
    waited.truncate(n);
    waited
}

/// A bar of `count` out of `max`, at most `width` characters; a non-zero count shows at least one.
pub fn bar(count: usize, max: usize, width: usize, glyph: char) -> String {
    if count == 0 || max == 0 {
        return String::new();
    }
    let len = (count * width).div_ceil(max).clamp(1, width);
    std::iter::repeat_n(glyph, len).collect()
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn waits_fall_in_their_buckets_and_untried_orgs_are_left_out() {
        let report = sample::report();
        let d = distribution(&report);
        let of = |label: &str| d.iter().find(|b| b.label == label).unwrap().orgs;
        assert_eq!(of("none"), 1, "the failed org waited 0 ms");
        assert_eq!(of("5-15 s"), 1);
        assert_eq!(of("1-2 min"), 1);
        assert_eq!(
            d.iter().map(|b| b.orgs).sum::<usize>(),
            3,
            "pending and skipped are not tried"
        );
        assert!(any(&report));
        assert_eq!(
            d.last().unwrap().label,
            "1-2 min",
            "no empty buckets past the longest wait"
        );
    }

    #[test]
    fn slowest_first() {
        let report = sample::report();
        let names: Vec<&str> = slowest(&report, 5)
            .iter()
            .map(|o| o.username.as_str())
            .collect();
        assert_eq!(names, ["slow@x.com", "ok@x.com"]);
    }

    #[test]
    fn bars_scale_and_never_vanish() {
        assert_eq!(bar(0, 10, 20, '#'), "");
        assert_eq!(bar(10, 10, 20, '#').len(), 20);
        assert_eq!(bar(1, 1000, 20, '#'), "#");
    }
}
