//! What the Dev Hub (`-v`) adds to a report: `summary.devHub` (the hub's scratch-org limits
//! and what asking it cost) and, per org, its expiry and hub status. The renderings the
//! formatters share live here, so each formatter only calls in.

use std::fmt::Write as _;

use serde::Serialize;

use super::{OrgReport, Report};

/// One of the hub's limits, as `/limits` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScratchLimit {
    pub max: i64,
    pub remaining: i64,
}

/// `summary.devHub`: the hub the run asked (never one of its orgs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DevHub {
    pub username: String,
    /// `ActiveScratchOrgs` {max, remaining}; `null` when `/limits` could not be read.
    pub active_scratch_orgs: Option<ScratchLimit>,
    /// `DailyScratchOrgs` {max, remaining}.
    pub daily_scratch_orgs: Option<ScratchLimit>,
    /// ScratchOrgInfo rows read.
    pub scratch_orgs: usize,
    /// Rows that could not be used (no username fleetauth can send).
    #[serde(skip_serializing_if = "is_zero")]
    pub unreadable_rows: usize,
    /// REST requests to the hub (query pages and `/limits`).
    pub requests: u32,
    /// Time spent on the ScratchOrgInfo queries.
    pub query_ms: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn limit(l: Option<ScratchLimit>) -> String {
    l.map_or_else(
        || "unknown".to_string(),
        |l| format!("{} of {} remaining", l.remaining, l.max),
    )
}

impl DevHub {
    /// One line for people: `ActiveScratchOrgs 12 of 200 remaining, DailyScratchOrgs ...`.
    pub fn limits_line(&self) -> String {
        format!(
            "ActiveScratchOrgs {}, DailyScratchOrgs {}",
            limit(self.active_scratch_orgs),
            limit(self.daily_scratch_orgs)
        )
    }
}

/// The two CSV columns the hub adds (empty without a hub).
pub(super) const CSV_COLUMNS: [&str; 2] = ["expirationDate", "hubStatus"];

pub(super) fn csv_cells(o: &OrgReport) -> [&str; 2] {
    [
        o.expiration_date.as_deref().unwrap_or_default(),
        o.hub_status.as_deref().unwrap_or_default(),
    ]
}

/// The Markdown section: the hub's limits, and every org's expiry and hub status.
pub(super) fn markdown(report: &Report, cell: impl Fn(&str) -> String, out: &mut String) {
    let Some(hub) = &report.summary.dev_hub else {
        return;
    };
    let _ = writeln!(
        out,
        "### Dev Hub `{}`\n\n{}; {} scratch orgs read in {} requests.\n",
        cell(&hub.username),
        hub.limits_line(),
        hub.scratch_orgs,
        hub.requests
    );
    let orgs: Vec<&OrgReport> = report
        .orgs
        .iter()
        .filter(|o| o.expiration_date.is_some() || o.hub_status.is_some())
        .collect();
    if orgs.is_empty() {
        return;
    }
    const SHOWN: usize = 1000;
    let _ = writeln!(
        out,
        "<details><summary>Expiry of {} orgs</summary>\n\n| org | status | hub status | expires |\n|---|---|---|---|",
        orgs.len()
    );
    for o in orgs.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&o.username),
            super::status_name(o.status),
            cell(o.hub_status.as_deref().unwrap_or_default()),
            o.expiration_date.as_deref().unwrap_or_default()
        );
    }
    if orgs.len() > SHOWN {
        let _ = writeln!(
            out,
            "\n… and {} more (report.json has every org)",
            orgs.len() - SHOWN
        );
    }
    out.push_str("\n</details>\n\n");
}

/// JUnit `<properties>` of one testcase: expiry and hub status.
pub(super) fn junit_properties(o: &OrgReport, attr: impl Fn(&str) -> String) -> Option<String> {
    if o.expiration_date.is_none() && o.hub_status.is_none() {
        return None;
    }
    let mut out = String::from("      <properties>\n");
    for (name, value) in [
        ("expirationDate", &o.expiration_date),
        ("hubStatus", &o.hub_status),
    ] {
        if let Some(v) = value {
            let _ = writeln!(
                out,
                "        <property name=\"{name}\" value=\"{}\"/>",
                attr(v)
            );
        }
    }
    out.push_str("      </properties>\n");
    Some(out)
}

/// JUnit `<properties>` of the suite: the hub's limits.
pub(super) fn junit_suite_properties(report: &Report, attr: impl Fn(&str) -> String) -> String {
    let Some(hub) = &report.summary.dev_hub else {
        return String::new();
    };
    let mut out = String::from("    <properties>\n");
    let _ = writeln!(
        out,
        "      <property name=\"devHub\" value=\"{}\"/>",
        attr(&hub.username)
    );
    for (name, l) in [
        ("ActiveScratchOrgs", hub.active_scratch_orgs),
        ("DailyScratchOrgs", hub.daily_scratch_orgs),
    ] {
        if let Some(l) = l {
            let _ = writeln!(
                out,
                "      <property name=\"{name}.max\" value=\"{}\"/>\n      <property name=\"{name}.remaining\" value=\"{}\"/>",
                l.max, l.remaining
            );
        }
    }
    out.push_str("    </properties>\n");
    out
}
