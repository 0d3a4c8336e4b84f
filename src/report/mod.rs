//! Stage 4: the report. One serializable [`Report`] (summary plus one row per listed org) and
//! the [`Formatter`]s that print it: JSON, CSV, the terminal table, Markdown and JUnit, one file
//! each. The report never knows how it is printed, and it holds no token and no key: a
//! formatter gets only `&Report`, so nothing here can print a secret.
//!
//! `report.json` is also the hand-off to another CI system: every org carries what a receiver
//! needs to take it over (username, alias, org and user id, instance URL, token host, audience,
//! consumer key, when it was issued), and `input` reads it back as an org list.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::fleet::{Outcome, SinkKind, Status};
use crate::plan::Plan;
use crate::store::{write_atomic_with, AuthFile, StoreError};
use crate::token::ErrorKind;

mod csv;
mod devhub;
mod json;
mod junit;
mod markdown;
mod table;
pub mod waits;

pub use self::csv::{neutralize, Csv};
pub use devhub::{DevHub, ScratchLimit};
pub use json::Json;
pub use junit::JUnit;
pub use markdown::{Markdown, StepSummary};
pub use table::{terminal, Table};

/// One way of printing a report. Gets the report and nothing else.
pub trait Formatter {
    fn format(&self, report: &Report) -> String;

    /// Write the report to `out`; a formatter of large output streams it instead of building
    /// one string (the JSON of ten thousand orgs is megabytes).
    fn write_to(&self, report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(self.format(report).as_bytes())
    }
}

/// The shape of report.json, as `fixtures/schema/report.schema.json` pins it: raised when a
/// field is removed or changes meaning (new optional fields keep it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`SCHEMA_VERSION`], first, so a reader can check it before anything else.
    pub schema_version: u32,
    pub summary: Summary,
    pub orgs: Vec<OrgReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The org list the run read (`<stdin>` for `-`).
    pub list: String,
    pub total: usize,
    pub authorized: usize,
    pub failed: usize,
    pub skipped: usize,
    pub pending: usize,
    /// Token requests sent, retries included.
    pub attempts: u64,
    pub elapsed_ms: u64,
    #[serde(serialize_with = "timestamp::serialize")]
    pub started_at: OffsetDateTime,
    #[serde(serialize_with = "timestamp::serialize")]
    pub finished_at: OffsetDateTime,
    /// `K/N` when the run took one share of the list (`--shard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The Dev Hub the run asked (`-v`): its scratch-org limits. Never one of `orgs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_hub: Option<DevHub>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgReport {
    pub username: String,
    pub alias: Option<String>,
    pub status: Status,
    pub attempts: u32,
    /// Boxed text, not `String`: a report keeps one row per org.
    pub org_id: Option<Box<str>>,
    pub user_id: Option<Box<str>>,
    /// Shared by the orgs of one instance.
    pub instance_url: Option<std::sync::Arc<str>>,
    /// The host the token was granted by (the row's instance URL or `--instance-url`), shared
    /// by the orgs granted there.
    pub token_host: Option<std::sync::Arc<str>>,
    /// The assertion's `aud` that worked.
    /// Shared by every org of a run: one allocation, not one per org.
    pub audience: Option<std::sync::Arc<str>>,
    /// The connected app's consumer key (`iss`).
    pub client_id: Option<std::sync::Arc<str>>,
    #[serde(serialize_with = "timestamp::serialize_option")]
    pub issued_at: Option<OffsetDateTime>,
    #[serde(serialize_with = "lossy_path")]
    pub auth_file: Option<Box<Path>>,
    /// The org's auth file in the Salesforce CLI's state, with `--sf`.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy_path")]
    pub sf_auth_file: Option<Box<Path>>,
    pub elapsed_ms: u64,
    /// Time spent waiting out the replication delay before the org could be used.
    pub replication_wait_ms: u64,
    /// Boxed: most rows have none.
    pub error: Option<Box<ErrorReport>>,
    /// Why a row was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A Dev Hub the list named, left out: marked as `sf org list --json` marks it, so a
    /// receiving job reading this report as its list leaves it out too.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_dev_hub: bool,
    /// `YYYY-MM-DD` after which the Dev Hub deletes the org (with `-v`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    /// The org's `Status` in the Dev Hub (with `-v`): Active, Deleted, Error, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    pub kind: ErrorKind,
    pub code: String,
    pub description: String,
    pub hint: Option<String>,
}

/// Unfinished orgs that share one status and one error (a fleet-wide stop makes dozens of
/// identical rows), in the order they first appear: the formatters print one entry per group.
#[derive(Debug)]
pub struct Group<'a> {
    pub status: Status,
    pub error: Option<&'a ErrorReport>,
    pub orgs: Vec<&'a OrgReport>,
}

impl Group<'_> {
    /// Orgs never tried because the run stopped early.
    pub fn never_tried(&self) -> bool {
        self.orgs.first().is_some_and(|o| o.never_tried())
    }

    /// The first `max` usernames, then how many more: `a, b, c and 4 more`.
    pub fn names(&self, max: usize) -> String {
        let names: Vec<&str> = self
            .orgs
            .iter()
            .take(max)
            .map(|o| o.username.as_str())
            .collect();
        let more = self.orgs.len().saturating_sub(max);
        let mut text = names.join(", ");
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    }
}

/// `1 org`, `2 orgs`.
pub(crate) fn plural(n: impl Into<u64>, word: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Who granted: the run-level facts every authorized org shares.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The org list's name, as the user gave it.
    pub list: String,
    pub client_id: std::sync::Arc<str>,
    pub audience: std::sync::Arc<str>,
}

pub mod timestamp {
    //! Every timestamp fleetauth writes (report.json, JUnit, auth files): RFC 3339 in UTC with
    //! exactly three decimals, `2026-12-02T05:50:13.904Z`.

    use time::OffsetDateTime;

    /// `t` in UTC, to the millisecond.
    pub fn format(t: OffsetDateTime) -> String {
        let t = t.to_offset(time::UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }

    pub(super) fn serialize<S: serde::Serializer>(
        t: &OffsetDateTime,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    pub(super) fn serialize_option<S: serde::Serializer>(
        t: &Option<OffsetDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => serialize(t, s),
            None => s.serialize_none(),
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn milliseconds_in_utc_always_three_digits() {
            let t = time::macros::datetime!(2026-12-02 06:50:13.904886250 +01:00);
            assert_eq!(super::format(t), "2026-12-02T05:50:13.904Z");
            let whole = time::macros::datetime!(2026-12-02 05:50:13 UTC);
            assert_eq!(super::format(whole), "2026-12-02T05:50:13.000Z");
        }
    }
}

/// While the report is built, the outcomes' memory is given back every this many rows.
const RELEASE_EVERY: usize = 4096;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl OrgReport {
    /// Never tried: the run stopped early (a fleet-wide error) before this org's turn.
    pub fn never_tried(&self) -> bool {
        self.attempts == 0
            && self
                .error
                .as_ref()
                .is_some_and(|e| e.code == crate::fleet::NOT_ATTEMPTED)
    }

    /// The row of a granted (or tried) org.
    fn of(target: &crate::input::Target, o: Outcome, issuer: &Issuer) -> Self {
        let granted = o.status == Status::Authorized;
        let mut stored = o.stored;
        let (auth_file, sf_auth_file) = (
            stored.take(SinkKind::OutDir),
            stored.take(SinkKind::SfState),
        );
        OrgReport {
            username: target.username.clone(),
            alias: target.alias.clone(),
            status: o.status,
            attempts: o.attempts,
            org_id: o.org_id,
            user_id: o.user_id,
            instance_url: o.instance_url,
            token_host: o.token_host,
            audience: granted.then(|| issuer.audience.clone()),
            client_id: granted.then(|| issuer.client_id.clone()),
            issued_at: o.issued_at,
            auth_file,
            sf_auth_file,
            elapsed_ms: ms(o.elapsed),
            replication_wait_ms: ms(o.replication_wait),
            error: o.error.map(|e| {
                let e = *e;
                Box::new(ErrorReport {
                    kind: e.kind,
                    code: e.code,
                    description: e.description,
                    hint: e.hint,
                })
            }),
            note: o.note,
            is_dev_hub: false,
            expiration_date: None,
            hub_status: None,
        }
    }

    fn skipped(target: &crate::input::Target, auth_file: Option<PathBuf>, note: String) -> Self {
        // A fresh org from an earlier run keeps what a receiver needs in the hand-off (its
        // secret-free fields; the token is not kept).
        let earlier = auth_file
            .as_deref()
            .and_then(|path| AuthFile::read(path).ok())
            .map(|(file, _)| file);
        let field = |pick: fn(&AuthFile) -> &String| {
            earlier
                .as_ref()
                .map(pick)
                .filter(|v| !v.is_empty())
                .cloned()
        };
        let issued_at = field(|f| &f.issued_at).and_then(|t| {
            OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
        });
        Self {
            username: target.username.clone(),
            alias: target.alias.clone(),
            status: Status::Skipped,
            attempts: 0,
            org_id: field(|f| &f.org_id).map(Into::into),
            user_id: field(|f| &f.user_id).map(Into::into),
            instance_url: field(|f| &f.instance_url).map(Into::into),
            token_host: field(|f| &f.login_url).map(Into::into),
            audience: field(|f| &f.audience).map(Into::into),
            client_id: field(|f| &f.client_id).map(Into::into),
            issued_at,
            auth_file: auth_file.map(PathBuf::into_boxed_path),
            sf_auth_file: None,
            elapsed_ms: 0,
            replication_wait_ms: 0,
            error: None,
            note: Some(note),
            is_dev_hub: false,
            expiration_date: None,
            hub_status: None,
        }
    }
}

impl Report {
    /// One row per listed org: the granted ones with their outcome, then the repeats.
    pub fn build(
        plan: &Plan,
        outcomes: Vec<Outcome>,
        issuer: &Issuer,
        started_at: OffsetDateTime,
        elapsed: Duration,
    ) -> Self {
        // Built from the last outcome back, the outcomes' memory given back as their rows are
        // made: a fleet's outcomes and its rows are never all held at once.
        let granted = plan.grant.len().min(outcomes.len());
        let extra = plan.fresh.len() + plan.excluded.len() + plan.duplicates.len();
        let mut outcomes = outcomes;
        outcomes.truncate(granted);
        let mut orgs: Vec<OrgReport> = Vec::with_capacity(granted + extra);
        for target in plan.grant.iter().take(granted).rev() {
            let Some(o) = outcomes.pop() else { break };
            orgs.push(OrgReport::of(target, o, issuer));
            if outcomes.len() % RELEASE_EVERY == 0 {
                outcomes.shrink_to_fit();
            }
        }
        drop(outcomes);
        orgs.reverse();
        orgs.extend(plan.fresh.iter().map(|(target, file, why)| {
            OrgReport::skipped(target, Some(file.clone()), why.clone())
        }));
        orgs.extend(plan.excluded.iter().map(|(target, why)| OrgReport {
            is_dev_hub: true,
            ..OrgReport::skipped(target, None, why.clone())
        }));
        orgs.extend(plan.duplicates.iter().map(|(target, first)| {
            let why = format!(
                "{} repeats the username of {first}; granted once",
                target.origin
            );
            OrgReport::skipped(target, None, why)
        }));
        let count = |s: Status| orgs.iter().filter(|o| o.status == s).count();
        let summary = Summary {
            list: issuer.list.clone(),
            total: orgs.len(),
            authorized: count(Status::Authorized),
            failed: count(Status::Failed),
            skipped: count(Status::Skipped),
            pending: count(Status::Pending),
            attempts: orgs.iter().map(|o| u64::from(o.attempts)).sum(),
            elapsed_ms: ms(elapsed),
            started_at,
            finished_at: started_at + elapsed,
            shard: None,
            dev_hub: None,
        };
        Self {
            schema_version: SCHEMA_VERSION,
            summary,
            orgs,
        }
    }

    /// Every org that has to run again: failed, or never finished.
    pub fn unfinished(&self) -> impl Iterator<Item = &OrgReport> {
        self.orgs
            .iter()
            .filter(|o| matches!(o.status, Status::Failed | Status::Pending))
    }

    /// The unfinished orgs, grouped by status and error ([`Group`]).
    pub fn groups(&self) -> Vec<Group<'_>> {
        let mut groups: Vec<Group<'_>> = Vec::new();
        for o in self.unfinished() {
            let error = o.error.as_deref();
            match groups
                .iter_mut()
                .find(|g| g.status == o.status && g.error == error)
            {
                Some(g) => g.orgs.push(o),
                None => groups.push(Group {
                    status: o.status,
                    error,
                    orgs: vec![o],
                }),
            }
        }
        groups
    }

    /// The lead of a run that stopped early: how many orgs were never tried, why, and the fix.
    pub fn stopped_early(&self) -> Option<(String, Option<&str>)> {
        let groups = self.groups();
        let group = groups.iter().find(|g| g.never_tried())?;
        let error = group.error?;
        let why = error
            .description
            .strip_prefix("not attempted: ")
            .unwrap_or(&error.description);
        Some((
            format!(
                "stopped early: {} of {} were never tried; {why}",
                group.orgs.len(),
                plural(self.summary.total as u64, "org")
            ),
            error.hint.as_deref(),
        ))
    }

    /// One line per group of failed orgs, for the `--json` envelope's `errors`.
    pub fn failures(&self) -> Vec<String> {
        self.groups()
            .iter()
            .filter(|g| g.status == Status::Failed)
            .filter_map(|g| {
                let e = g.error?;
                let fix = e
                    .hint
                    .as_deref()
                    .map(|h| format!("; fix: {h}"))
                    .unwrap_or_default();
                Some(format!(
                    "{} {}: {}: {}{fix}",
                    plural(g.orgs.len() as u64, "org"),
                    if g.never_tried() {
                        "not tried"
                    } else {
                        "failed"
                    },
                    e.code,
                    e.description
                ))
            })
            .collect()
    }

    /// The report in the format its path names: CSV for `.csv`, else JSON.
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if is_csv {
            write(self, &Csv, path)
        } else {
            write(self, &Json, path)
        }
    }
}

/// Write `report` through `formatter` to `path`, atomically, mode 0600.
pub fn write(report: &Report, formatter: &dyn Formatter, path: &Path) -> Result<(), StoreError> {
    write_atomic_with(path, 0o600, |out| formatter.write_to(report, out))
}

/// Append `report` through `formatter` to `path` (for files a CI runner collects, like
/// `$GITHUB_STEP_SUMMARY`), creating it if needed.
pub fn append(report: &Report, formatter: &dyn Formatter, path: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(formatter.format(report).as_bytes())?;
    file.flush()
}

/// A path as text, its bytes that are not UTF-8 replaced (serde refuses such a path, and the
/// report of a run into a directory named in Latin-1 must still be written).
fn lossy_path<S: serde::Serializer>(path: &Option<Box<Path>>, s: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(p) => s.serialize_some(&p.to_string_lossy()),
        None => s.serialize_none(),
    }
}

/// A status as the report's JSON spells it.
pub(crate) fn status_name(status: Status) -> &'static str {
    match status {
        Status::Authorized => "authorized",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
        Status::Pending => "pending",
    }
}

/// Seconds with one decimal, for people.
pub(crate) fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

#[cfg(test)]
pub(crate) mod sample {
    //! A small report with one org of each kind, for the formatters' tests.
    use super::*;

    pub fn org(username: &str, status: Status) -> OrgReport {
        OrgReport {
            username: username.into(),
            alias: None,
            status,
            attempts: 1,
            org_id: None,
            user_id: None,
            instance_url: None,
            token_host: None,
            audience: None,
            client_id: None,
            issued_at: None,
            auth_file: None,
            sf_auth_file: None,
            elapsed_ms: 1234,
            replication_wait_ms: 0,
            error: None,
            note: None,
            is_dev_hub: false,
            expiration_date: None,
            hub_status: None,
        }
    }

    pub fn report() -> Report {
        let mut ok = org("ok@x.com", Status::Authorized);
        ok.alias = Some("s1".into());
        ok.org_id = Some("00D000000000001AAA".into());
        ok.instance_url = Some("https://ok.my.salesforce.com".into());
        ok.replication_wait_ms = 12_000;
        let mut slow = org("slow@x.com", Status::Authorized);
        slow.replication_wait_ms = 95_000;
        let mut bad = org("bad@x.com", Status::Failed);
        bad.error = Some(Box::new(ErrorReport {
            kind: ErrorKind::Permanent,
            code: "invalid_client_id".into(),
            description: "client identifier <invalid> & \"odd\"".into(),
            hint: Some("the consumer key is wrong | check it".into()),
        }));
        let mut formula = org("=cmd@x.com", Status::Pending);
        formula.alias = Some("+1".into());
        let mut skipped = org("dup@x.com", Status::Skipped);
        skipped.note = Some("line 3 repeats the username of line 2; granted once".into());
        let orgs = vec![ok, slow, bad, formula, skipped];
        let started_at = OffsetDateTime::UNIX_EPOCH;
        Report {
            schema_version: SCHEMA_VERSION,
            summary: Summary {
                list: "orgs.csv".into(),
                total: orgs.len(),
                authorized: 2,
                failed: 1,
                skipped: 1,
                pending: 1,
                attempts: 4,
                elapsed_ms: 8123,
                started_at,
                finished_at: started_at + Duration::from_millis(8123),
                shard: None,
                dev_hub: None,
            },
            orgs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Origin, Target};

    #[test]
    fn rows_follow_the_plan_across_the_batches_their_outcomes_are_given_back_in() {
        let n = 2 * RELEASE_EVERY + 7;
        let target = |i: usize| Target {
            username: format!("u{i}@x.com"),
            alias: None,
            instance_url: None,
            origin: Origin::Line(i as u64 + 1),
            record: vec![format!("u{i}@x.com")],
            place: 0,
        };
        let plan = Plan {
            grant: (0..n).map(target).collect(),
            duplicates: vec![(target(0), Origin::Line(1))],
            fresh: Vec::new(),
            excluded: Vec::new(),
        };
        let outcomes: Vec<Outcome> = (0..n)
            .map(|i| Outcome::pending(i as u32, Duration::from_millis(i as u64)))
            .collect();
        let issuer = Issuer {
            list: "l.csv".into(),
            client_id: "id".into(),
            audience: "aud".into(),
        };
        let report = Report::build(
            &plan,
            outcomes,
            &issuer,
            OffsetDateTime::UNIX_EPOCH,
            Duration::ZERO,
        );
        assert_eq!(report.orgs.len(), n + 1);
        for (i, row) in report.orgs.iter().take(n).enumerate() {
            assert_eq!(row.username, format!("u{i}@x.com"));
            assert_eq!(row.attempts, i as u32);
            assert_eq!(row.elapsed_ms, i as u64);
        }
        assert_eq!(report.orgs[n].status, Status::Skipped);
        assert_eq!(report.summary.pending, n);
        assert_eq!(report.summary.skipped, 1);
    }
}
