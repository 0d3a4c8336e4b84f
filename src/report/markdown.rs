//! The run as Markdown, for `--summary-md` and `$GITHUB_STEP_SUMMARY`: counts, every unfinished
//! org with its error and fix, the distribution of replication waits and the slowest ones.

use std::fmt::Write as _;

use crate::fleet::Status;

use super::{plural, seconds, waits, Formatter, Report};

pub struct Markdown;

const BAR_WIDTH: usize = 30;
const SLOWEST: usize = 10;

/// Text safe inside a table cell: Markdown and HTML punctuation escaped, one line.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() || crate::sanitize::is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    // No text from a list or a server becomes a link: GitHub turns `http://…` and `www.…`
    // into links by themselves; a zero-width space keeps them plain text.
    out.replace("://", ":\u{200b}//")
        .replace("www.", "www\u{200b}.")
        .replace("WWW.", "WWW\u{200b}.")
}

/// GitHub shows at most 1 MiB of one step's summary (and fails the upload beyond it): a
/// fleet-wide failure of thousands of orgs would pass it with one row per org.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// The Markdown summary for `$GITHUB_STEP_SUMMARY`: [`Markdown`], its list of unfinished orgs
/// cut so that the whole stays under [`STEP_SUMMARY_LIMIT`], saying how many rows were left
/// out and where every org is listed.
pub struct StepSummary {
    /// The report that lists every org, if it was written.
    pub full_report: Option<String>,
}

impl Formatter for StepSummary {
    fn format(&self, report: &Report) -> String {
        render(
            report,
            Some(Budget {
                // Room for the line that says what was left out.
                bytes: STEP_SUMMARY_LIMIT - 4096,
                full_report: self.full_report.as_deref(),
            }),
        )
    }
}

struct Budget<'a> {
    bytes: usize,
    full_report: Option<&'a str>,
}

impl Formatter for Markdown {
    fn format(&self, report: &Report) -> String {
        render(report, None)
    }
}

fn render(report: &Report, budget: Option<Budget<'_>>) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let verdict = if s.failed + s.pending == 0 {
        "every org authorized"
    } else {
        "some orgs not authorized"
    };
    let _ = writeln!(
        out,
        "## fleetauth: {verdict}\n\n{} from `{}`{} in {}, {}.\n",
        plural(s.total as u64, "org"),
        cell(&s.list),
        s.shard
            .as_deref()
            .map(|k| format!(" (shard {k})"))
            .unwrap_or_default(),
        seconds(s.elapsed_ms),
        plural(s.attempts, "attempt")
    );
    // A fleet-wide stop leads with its cause and its fix.
    if let Some((lead, fix)) = report.stopped_early() {
        let _ = write!(out, "**{}**", cell(&lead));
        if let Some(fix) = fix {
            let _ = write!(out, " Fix: {}", cell(fix));
        }
        out.push_str("\n\n");
    }
    out.push_str("| authorized | failed | pending | skipped |\n|---:|---:|---:|---:|\n");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} |\n",
        s.authorized, s.failed, s.pending, s.skipped
    );
    let mut waits = String::new();
    waits_section(report, &mut waits);
    let budget = budget.map(|b| Budget {
        bytes: b.bytes.saturating_sub(out.len() + waits.len()),
        ..b
    });
    unfinished(report, &mut out, budget);
    super::devhub::markdown(report, cell, &mut out);
    out.push_str(&waits);
    out
}

/// Usernames shown in the row of a group of orgs that share one error.
const NAMES: usize = 5;

/// One row per group of unfinished orgs sharing a status and an error ([`super::Group`]),
/// within `budget` when one is given.
fn unfinished(report: &Report, out: &mut String, budget: Option<Budget<'_>>) {
    let start = out.len();
    let groups = report.groups();
    if groups.is_empty() {
        return;
    }
    out.push_str(
        "### Not authorized\n\n| org | alias | status | error | fix |\n|---|---|---|---|---|\n",
    );
    let mut left_out = 0_usize;
    for g in groups {
        let (error, fix) = match g.error {
            Some(e) => (
                format!("{}: {}", cell(&e.code), cell(&e.description)),
                e.hint.as_deref().map(cell).unwrap_or_default(),
            ),
            None => (
                "not finished (interrupted)".into(),
                "re-run the same command".into(),
            ),
        };
        let status = match g.status {
            Status::Pending => "pending",
            _ if g.never_tried() => "not tried",
            _ => "failed",
        };
        let (org, alias) = match g.orgs.as_slice() {
            [o] => (
                cell(&o.username),
                o.alias.as_deref().map(cell).unwrap_or_default(),
            ),
            orgs => (
                format!(
                    "{}: {}",
                    plural(orgs.len() as u64, "org"),
                    cell(&g.names(NAMES))
                ),
                String::new(),
            ),
        };
        let row = format!("| {org} | {alias} | {status} | {error} | {fix} |\n");
        if budget
            .as_ref()
            .is_some_and(|b| out.len() - start + row.len() > b.bytes)
        {
            left_out += g.orgs.len();
            continue;
        }
        out.push_str(&row);
    }
    if let (Some(b), true) = (&budget, left_out > 0) {
        let full = match b.full_report {
            Some(path) => format!("every org is listed in `{}`", cell(path)),
            None => "every org is in the report (`--json` prints it on stdout)".to_string(),
        };
        let _ = writeln!(
            out,
            "\n_… and {} not listed: a step summary must stay under GitHub's 1 MiB limit; {full}._",
            plural(left_out as u64, "more org")
        );
    }
    out.push('\n');
}

fn waits_section(report: &Report, out: &mut String) {
    let buckets = waits::distribution(report);
    let tried: usize = buckets.iter().map(|b| b.orgs).sum();
    if tried == 0 {
        return;
    }
    let max = buckets.iter().map(|b| b.orgs).max().unwrap_or(0);
    out.push_str("### Replication waits\n\nHow long each org waited for the replication delay before it could be used.\n\n| wait | orgs | |\n|---|---:|---|\n");
    for b in &buckets {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            b.label,
            b.orgs,
            waits::bar(b.orgs, max, BAR_WIDTH, '█')
        );
    }
    out.push('\n');
    let slowest = waits::slowest(report, SLOWEST);
    if slowest.is_empty() {
        return;
    }
    out.push_str(
        "#### Slowest\n\n| org | alias | waited | attempts | status |\n|---|---|---:|---:|---|\n",
    );
    for o in slowest {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&o.username),
            o.alias.as_deref().map(cell).unwrap_or_default(),
            seconds(o.replication_wait_ms),
            o.attempts,
            super::status_name(o.status)
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn the_step_summary_of_many_distinct_failures_stays_under_githubs_limit() {
        let mut report = sample::report();
        for i in 0..6_000 {
            let mut o = sample::org(
                &format!("test-a-rather-long-scratch-org-username-{i:05}@example.com"),
                Status::Failed,
            );
            o.error = Some(Box::new(super::super::ErrorReport {
                kind: crate::token::ErrorKind::Permanent,
                code: "inactive_user".into(),
                description: format!("user {i} is inactive, and this description says so at some length, as a server may: {}", "x".repeat(120)),
                hint: Some("activate the user in the org, or leave it out of the list".into()),
            }));
            report.orgs.push(o);
        }
        let text = StepSummary {
            full_report: Some("out/report.json".into()),
        }
        .format(&report);
        assert!(text.len() < STEP_SUMMARY_LIMIT, "{} bytes", text.len());
        assert!(
            text.contains("more orgs not listed"),
            "{}",
            &text[text.len() - 500..]
        );
        assert!(text.contains("out/report.json"), "where the full list is");
        assert!(
            Markdown.format(&report).len() > STEP_SUMMARY_LIMIT,
            "the plain Markdown lists every org: the cap is what keeps the summary small"
        );
    }

    #[test]
    fn lists_every_unfinished_org_with_its_fix() {
        let text = Markdown.format(&sample::report());
        assert!(text.contains("| bad@x.com |  | failed | invalid\\_client\\_id: client identifier \\<invalid\\> \\& \"odd\" | the consumer key is wrong \\| check it |"), "{text}");
        assert!(
            text.contains("| =cmd@x.com | +1 | pending | not finished"),
            "{text}"
        );
        assert!(
            !text.contains("dup@x.com"),
            "skipped orgs are counted, not listed"
        );
    }

    #[test]
    fn shows_the_distribution_and_the_slowest_waits() {
        let text = Markdown.format(&sample::report());
        assert!(text.contains("| 1-2 min | 1 | "), "{text}");
        let slow = text
            .find("| slow@x.com |  | 95.0 s |")
            .expect("slowest listed");
        let ok = text
            .find("| ok@x.com | s1 | 12.0 s |")
            .expect("second listed");
        assert!(slow < ok, "longest first");
    }

    #[test]
    fn cells_cannot_break_the_table_or_inject_html() {
        assert_eq!(cell("a|b\n<script>"), "a\\|b \\<script\\>");
        let linked = cell("see http://evil.example/phish or www.evil.example \u{202e}gnp");
        assert!(
            !linked.contains("http://") && !linked.contains("www."),
            "{linked}"
        );
        assert!(!linked.contains('\u{202e}'), "{linked}");
    }
}
