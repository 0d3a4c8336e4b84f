//! Stage 4: the report. One serializable [`Report`] (summary plus one row per listed org) and
//! its formatters: JSON, CSV, `failed.csv` for the next run, and the terminal summary table.
//! Holds no token and no key: nothing here can print one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::fleet::{Outcome, Status};
use crate::input::OrgList;
use crate::plan::Plan;
use crate::store::{write_atomic, StoreError};
use crate::token::ErrorKind;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub summary: Summary,
    pub orgs: Vec<OrgReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total: usize,
    pub authorized: usize,
    pub failed: usize,
    pub skipped: usize,
    pub pending: usize,
    /// Token requests sent, retries included.
    pub attempts: u64,
    pub elapsed_ms: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// `K/N` when the run took one share of the list (`--shard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgReport {
    pub username: String,
    pub alias: Option<String>,
    pub status: Status,
    pub attempts: u32,
    pub org_id: Option<String>,
    pub instance_url: Option<String>,
    pub auth_file: Option<PathBuf>,
    /// The org's auth file in the Salesforce CLI's state, with `--sf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sf_auth_file: Option<PathBuf>,
    pub elapsed_ms: u64,
    pub error: Option<ErrorReport>,
    /// Why a row was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    pub kind: ErrorKind,
    pub code: String,
    pub description: String,
    pub hint: Option<String>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl OrgReport {
    fn skipped(target: &crate::input::Target, auth_file: Option<PathBuf>, note: String) -> Self {
        Self {
            username: target.username.clone(),
            alias: target.alias.clone(),
            status: Status::Skipped,
            attempts: 0,
            org_id: None,
            instance_url: None,
            auth_file,
            sf_auth_file: None,
            elapsed_ms: 0,
            error: None,
            note: Some(note),
        }
    }
}

impl Report {
    /// One row per listed org: the granted ones with their outcome, then the repeats.
    pub fn build(
        plan: &Plan,
        outcomes: Vec<Outcome>,
        started_at: OffsetDateTime,
        elapsed: Duration,
    ) -> Self {
        let mut orgs: Vec<OrgReport> = plan
            .grant
            .iter()
            .zip(outcomes)
            .map(|(target, o)| OrgReport {
                username: target.username.clone(),
                alias: target.alias.clone(),
                status: o.status,
                attempts: o.attempts,
                org_id: o.org_id,
                instance_url: o.instance_url,
                auth_file: o.auth_file,
                sf_auth_file: o.sf_auth_file,
                elapsed_ms: ms(o.elapsed),
                error: o.error.map(|e| ErrorReport {
                    kind: e.kind,
                    code: e.code,
                    description: e.description,
                    hint: e.hint,
                }),
                note: o.note,
            })
            .collect();
        orgs.extend(plan.fresh.iter().map(|(target, file, why)| {
            OrgReport::skipped(target, Some(file.clone()), why.clone())
        }));
        orgs.extend(
            plan.excluded
                .iter()
                .map(|(target, why)| OrgReport::skipped(target, None, why.clone())),
        );
        orgs.extend(plan.duplicates.iter().map(|(target, first)| {
            let why = format!(
                "{} repeats the username of {first}; granted once",
                target.origin
            );
            OrgReport::skipped(target, None, why)
        }));
        let count = |s: Status| orgs.iter().filter(|o| o.status == s).count();
        let summary = Summary {
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
        };
        Self { summary, orgs }
    }

    /// Every org that has to run again: failed, or never finished.
    pub fn unfinished(&self) -> impl Iterator<Item = &OrgReport> {
        self.orgs
            .iter()
            .filter(|o| matches!(o.status, Status::Failed | Status::Pending))
    }

    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let bytes = if is_csv {
            self.to_csv()
        } else {
            self.to_json()
        };
        write_atomic(path, &bytes, 0o600)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a report always serializes");
        v.push(b'\n');
        v
    }

    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let header = [
            "username",
            "alias",
            "status",
            "attempts",
            "orgId",
            "instanceUrl",
            "authFile",
            "elapsedMs",
            "errorKind",
            "errorCode",
            "errorDescription",
            "hint",
            "note",
        ];
        w.write_record(header)
            .expect("writing to memory cannot fail");
        for o in &self.orgs {
            let kind = o.error.as_ref().map(|e| {
                serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            });
            let row = [
                o.username.clone(),
                o.alias.clone().unwrap_or_default(),
                serde_json::to_value(o.status)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                o.attempts.to_string(),
                o.org_id.clone().unwrap_or_default(),
                o.instance_url.clone().unwrap_or_default(),
                o.auth_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                o.elapsed_ms.to_string(),
                kind.unwrap_or_default(),
                o.error.as_ref().map(|e| e.code.clone()).unwrap_or_default(),
                o.error
                    .as_ref()
                    .map(|e| e.description.clone())
                    .unwrap_or_default(),
                o.error
                    .as_ref()
                    .and_then(|e| e.hint.clone())
                    .unwrap_or_default(),
                o.note.clone().unwrap_or_default(),
            ];
            w.write_record(&row).expect("writing to memory cannot fail");
        }
        w.into_inner().expect("flushing to memory cannot fail")
    }

    /// `failed.csv`: the unfinished orgs with the input's own columns, ready to be the next
    /// run's list. Removed when every org is done, so a stale one never lingers.
    pub fn write_failed(&self, list: &OrgList, path: &Path) -> Result<bool, StoreError> {
        let unfinished: std::collections::HashSet<&str> =
            self.unfinished().map(|o| o.username.as_str()).collect();
        if unfinished.is_empty() {
            let _ = std::fs::remove_file(path);
            return Ok(false);
        }
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&list.columns)
            .expect("writing to memory cannot fail");
        let mut written = std::collections::HashSet::new();
        for t in &list.targets {
            if unfinished.contains(t.username.as_str()) && written.insert(t.username.to_lowercase())
            {
                w.write_record(&t.record)
                    .expect("writing to memory cannot fail");
            }
        }
        let bytes = w.into_inner().expect("flushing to memory cannot fail");
        write_atomic(path, &bytes, 0o600)?;
        Ok(true)
    }

    /// The end-of-run summary for the terminal.
    pub fn table(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "{} orgs in {:.1} s: {} authorized, {} failed, {} skipped{} ({} token requests)\n",
            s.total,
            s.elapsed_ms as f64 / 1000.0,
            s.authorized,
            s.failed,
            s.skipped,
            if s.pending > 0 {
                format!(", {} pending", s.pending)
            } else {
                String::new()
            },
            s.attempts,
        );
        let problems: Vec<&OrgReport> = self.unfinished().collect();
        if problems.is_empty() {
            return out;
        }
        let width = problems
            .iter()
            .map(|o| o.username.len())
            .max()
            .unwrap_or(0)
            .min(60);
        for o in problems.iter().take(50) {
            let (what, hint) = match &o.error {
                Some(e) => (format!("{}: {}", e.code, e.description), e.hint.clone()),
                None => (
                    "not finished (interrupted)".to_string(),
                    Some("re-run the same command".to_string()),
                ),
            };
            let status = if o.status == Status::Pending {
                "PENDING"
            } else {
                "FAILED "
            };
            let _ = writeln!(out, "  {status} {:width$}  {what}", o.username);
            if let Some(hint) = hint {
                let _ = writeln!(out, "          {:width$}  fix: {hint}", "");
            }
        }
        if problems.len() > 50 {
            let _ = writeln!(
                out,
                "  ... and {} more; see the report",
                problems.len() - 50
            );
        }
        out
    }
}
