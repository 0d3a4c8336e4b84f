//! The end-of-run summary on the terminal: counts, every unfinished org with its fix, and a
//! text histogram of the replication waits.

use std::fmt::Write as _;

use crate::fleet::Status;

use super::{plural, seconds, waits, Formatter, Report};

pub struct Table;

/// At most this many lines list the unfinished orgs; the report has the rest.
const LISTED: usize = 50;
const BAR_WIDTH: usize = 30;

/// Usernames shown for a group of orgs that share one error.
const NAMES: usize = 3;

impl Formatter for Table {
    fn format(&self, report: &Report) -> String {
        render(report, "see the report")
    }
}

/// The summary at the end of a run, pointing at `full_report` for the orgs it leaves out, or,
/// when the report could not be written, at nothing but the `--json` output.
pub fn terminal(report: &Report, full_report: Option<&std::path::Path>) -> String {
    let rest = match full_report {
        Some(path) => format!("see {}", path.display()),
        None => "the report could not be written (see the error); --json prints it".to_string(),
    };
    render(report, &rest)
}

fn render(report: &Report, rest: &str) -> String {
    let s = &report.summary;
    let mut out = String::new();
    // A fleet-wide stop leads with its cause and its fix: the rest is the same error.
    if let Some((lead, fix)) = report.stopped_early() {
        let _ = writeln!(out, "{lead}");
        if let Some(fix) = fix {
            let _ = writeln!(out, "  fix: {fix}");
        }
    }
    let _ = writeln!(
        out,
        "{} in {}: {} authorized, {} failed, {} skipped{} ({})",
        plural(s.total as u64, "org"),
        seconds(s.elapsed_ms),
        s.authorized,
        s.failed,
        s.skipped,
        if s.pending > 0 {
            format!(", {} pending", s.pending)
        } else {
            String::new()
        },
        plural(s.attempts, "attempt"),
    );
    if let Some(hub) = &s.dev_hub {
        let _ = writeln!(out, "Dev Hub {}: {}", hub.username, hub.limits_line());
    }
    problems(report, &mut out, rest);
    histogram(report, &mut out);
    out
}

fn problems(report: &Report, out: &mut String, rest: &str) {
    let groups = report.groups();
    let width = groups
        .iter()
        .filter(|g| g.orgs.len() == 1)
        .flat_map(|g| g.orgs.iter().map(|o| o.username.len()))
        .max()
        .unwrap_or(0)
        .min(60);
    let mut lines = 0;
    let mut left = 0;
    for g in &groups {
        if lines >= LISTED {
            left += g.orgs.len();
            continue;
        }
        let status = match g.status {
            Status::Pending => "PENDING",
            _ if g.never_tried() => "NOT TRIED",
            _ => "FAILED ",
        };
        let (what, hint) = match g.error {
            Some(e) => (format!("{}: {}", e.code, e.description), e.hint.clone()),
            None => (
                "not finished (interrupted)".to_string(),
                Some("re-run the same command".to_string()),
            ),
        };
        if g.never_tried() {
            // The lead above says why and how to fix it.
            let _ = writeln!(
                out,
                "  {status} {}: {}",
                plural(g.orgs.len() as u64, "org"),
                g.names(NAMES)
            );
            lines += 1;
            continue;
        }
        if let [o] = g.orgs.as_slice() {
            let _ = writeln!(out, "  {status} {:width$}  {what}", o.username);
        } else {
            let _ = writeln!(
                out,
                "  {status} {}  {what}",
                plural(g.orgs.len() as u64, "org")
            );
            let _ = writeln!(out, "          {}", g.names(NAMES));
            lines += 1;
        }
        lines += 1;
        if let Some(hint) = hint {
            let _ = writeln!(out, "          {:width$}  fix: {hint}", "");
            lines += 1;
        }
    }
    if left > 0 {
        let _ = writeln!(out, "  ... and {} more; {rest}", plural(left as u64, "org"));
    }
}

/// Only when some org waited: otherwise a histogram says nothing.
fn histogram(report: &Report, out: &mut String) {
    if !waits::any(report) {
        return;
    }
    let buckets = waits::distribution(report);
    let max = buckets.iter().map(|b| b.orgs).max().unwrap_or(0);
    let label_width = buckets.iter().map(|b| b.label.len()).max().unwrap_or(0);
    let _ = writeln!(out, "replication waits (orgs per wait):");
    for b in &buckets {
        let _ = writeln!(
            out,
            "  {:label_width$}  {:>5}  {}",
            b.label,
            b.orgs,
            waits::bar(b.orgs, max, BAR_WIDTH, '#')
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn lists_the_unfinished_with_their_fix_and_a_histogram() {
        let text = Table.format(&sample::report());
        assert!(
            text.starts_with(
                "5 orgs in 8.1 s: 2 authorized, 1 failed, 1 skipped, 1 pending (4 attempts)\n"
            ),
            "{text}"
        );
        assert!(text.contains("FAILED  bad@x.com"), "{text}");
        assert!(
            text.contains("fix: the consumer key is wrong | check it"),
            "{text}"
        );
        assert!(text.contains("PENDING =cmd@x.com"), "{text}");
        assert!(text.contains("replication waits"), "{text}");
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("1-2 min"))
            .unwrap();
        assert!(line.ends_with(&"#".repeat(BAR_WIDTH)), "{line}");
    }

    #[test]
    fn no_histogram_when_nobody_waited() {
        let mut report = sample::report();
        report
            .orgs
            .iter_mut()
            .for_each(|o| o.replication_wait_ms = 0);
        assert!(!Table.format(&report).contains("replication waits"));
    }
}
