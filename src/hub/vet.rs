//! The hub's rows against the run: with no list, the list is the hub's Active scratch orgs;
//! with one, each listed org is looked up before anything is sent for it, and one that is not
//! this hub's (a typo says so), Deleted, in Error or expired fails at once with its reason and
//! fix (no assertion is sent). Afterwards the report gets each org's expiry and hub status,
//! the hub's limits, and the diagnosis the hub's view makes possible.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use super::client::{HubClient, RestError, Session};
use super::rows::{expiring, format_date, nearest, parse_row, verdict, HubOrg};
use super::{cache, diagnose, soql, HubError, HubOptions};
use crate::assertion::Signer;
use crate::fleet::Outcome;
use crate::input::{OrgList, Origin, Target};
use crate::report::{DevHub, Report, ScratchLimit};
use crate::stop::StopReason;
use crate::tls::Network;
use crate::token::GrantError;

/// What the hub said about a run, kept until its report is written.
#[derive(Debug, Default)]
pub struct Prepared {
    pub hub: String,
    /// The hub's rows, by lower-cased username.
    pub rows: HashMap<String, HubOrg>,
    /// The listed orgs that fail at once, by lower-cased username.
    pub refusals: HashMap<String, GrantError>,
    /// The hub granted with this run's key (its answers diagnose the orgs').
    pub granted: bool,
    pub summary: Option<DevHub>,
}

/// One org's refusal, kept in list order beside the orgs that are sent.
pub type Refusal = Option<GrantError>;

impl Prepared {
    pub fn refusal(&self, username: &str) -> Option<&GrantError> {
        self.refusals.get(&username.to_lowercase())
    }

    /// The targets to send, and for every target in order its refusal (if any).
    pub fn split(&self, targets: &[Target]) -> (Vec<Target>, Vec<Refusal>) {
        let refusals: Vec<Refusal> = targets
            .iter()
            .map(|t| self.refusal(&t.username).cloned())
            .collect();
        let send = targets
            .iter()
            .zip(&refusals)
            .filter(|(_, r)| r.is_none())
            .map(|(t, _)| t.clone())
            .collect();
        (send, refusals)
    }

    /// The outcomes of the sent targets merged back among the refused ones, in list order.
    pub fn merge(refusals: Vec<Refusal>, outcomes: Vec<Outcome>) -> Vec<Outcome> {
        let mut sent = outcomes.into_iter();
        refusals
            .into_iter()
            .map(|r| match r {
                Some(error) => Outcome::failed(0, Duration::ZERO, error),
                None => sent
                    .next()
                    .unwrap_or_else(|| Outcome::pending(0, Duration::ZERO)),
            })
            .collect()
    }

    /// Expiry, hub status and limits into the report, and the hub's diagnosis into its errors.
    pub fn annotate(&self, report: &mut Report) {
        // Orgs never tried carry the hint of the error that stopped the run: they get the same
        // diagnosis as that error.
        let mut rediagnosed: Vec<(Option<String>, &'static str)> = Vec::new();
        for org in &mut report.orgs {
            let row = self.rows.get(&org.username.to_lowercase());
            if let Some(row) = row {
                org.expiration_date = row.expiration_date.map(format_date);
                org.hub_status = Some(row.status.clone());
            }
            if let Some(e) = org.error.as_mut() {
                let error = GrantError {
                    kind: e.kind,
                    code: e.code.clone(),
                    description: String::new(),
                    hint: None,
                    status: None,
                    try_fallback: false,
                    fleet_wide: false,
                };
                if let Some(fix) =
                    diagnose::org(&error, self.granted, row.map(|r| r.status.as_str()))
                {
                    rediagnosed.push((e.hint.take(), fix));
                    e.hint = Some(fix.to_string());
                }
            }
        }
        for org in &mut report.orgs {
            if let Some(e) = org.error.as_mut() {
                if e.code == crate::fleet::NOT_ATTEMPTED {
                    if let Some((_, fix)) = rediagnosed.iter().find(|(old, _)| *old == e.hint) {
                        e.hint = Some((*fix).to_string());
                    }
                }
            }
        }
        report.summary.dev_hub = self.summary.clone();
    }

    /// A canary stop the hub's view explains gets that explanation as its fix.
    pub fn diagnose_stop(&self, stopped: &mut Option<StopReason>) {
        if let Some(StopReason::Misconfigured { error, .. }) = stopped {
            if let Some(fix) = diagnose::org(error, self.granted, None) {
                error.hint = Some(fix.to_string());
            }
        }
    }

    /// Warnings for the orgs (of the run) that expire within the window: still granted.
    pub fn expiring(&self, targets: &[Target], window: Duration) -> Option<String> {
        let now = OffsetDateTime::now_utc();
        let soon: Vec<String> = targets
            .iter()
            .filter_map(|t| self.rows.get(&t.username.to_lowercase()))
            .filter(|r| expiring(r, now, window))
            .map(|r| {
                format!(
                    "{} ({})",
                    r.username,
                    r.expiration_date.map(format_date).unwrap_or_default()
                )
            })
            .collect();
        if soon.is_empty() {
            return None;
        }
        let shown: Vec<&str> = soon.iter().take(10).map(String::as_str).collect();
        let more = soon.len().saturating_sub(shown.len());
        Some(format!(
            "{} org(s) expire within --warn-expiring {}: {}{}; they are granted, but a job handed one may find it gone",
            soon.len(),
            humantime::format_duration(window),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ))
    }
}

/// The hub's session: from the cache when fresh, else a new grant (then cached).
async fn session(
    client: &HubClient,
    options: &HubOptions,
    signer: &Signer,
    network: &Network,
    cache_file: Option<&std::path::Path>,
) -> Result<Session, HubError> {
    if let Some(s) = cache_file.and_then(|p| cache::read(p, &options.username, &network.hosts)) {
        return Ok(s);
    }
    let session = client.login(options, signer).await?;
    if let Some(path) = cache_file {
        // A cache that cannot be written costs one more hub login next time, nothing else.
        let _ = cache::write(path, &session);
    }
    Ok(session)
}

fn query_error(options: &HubOptions, e: &RestError) -> HubError {
    let fix = match e.code.as_str() {
        "INVALID_TYPE" | "INSUFFICIENT_ACCESS" | "INSUFFICIENT_ACCESS_OR_READONLY" | "NOT_FOUND" => format!(
            "{} is not a Dev Hub, or the user may not read ScratchOrgInfo: enable Dev Hub in its Setup and give the user the Dev Hub permission (or a System Administrator profile), or name the right hub with -v; {}",
            options.username,
            HubError::GO_ON
        ),
        "MALFORMED_QUERY" | "INVALID_FIELD" => format!(
            "the hub did not take the query fleetauth built: this is a fleetauth bug (please report it with this message); {}",
            HubError::GO_ON
        ),
        "hostile_answer" => format!("the hub's answer was refused, and its token was not sent anywhere else; {}", HubError::GO_ON),
        _ => format!("try again; {}", HubError::GO_ON),
    };
    HubError::Query {
        username: options.username.clone(),
        code: e.code.clone(),
        message: e.message.clone(),
        fix,
    }
}

/// Ask the hub (`-v`) for a run: grant it (or reuse its cached token), read its rows and
/// limits, and turn `list` (none: the hub's Active orgs) into the run's list, every listed
/// org checked. With `--no-hub-check` a hub that cannot be asked leaves a warning instead.
pub async fn prepare(
    options: &HubOptions,
    signer: &Signer,
    network: &Network,
    timeout: Duration,
    cache_file: Option<&std::path::Path>,
    list: Option<OrgList>,
    warnings: &mut Vec<String>,
) -> Result<(OrgList, Prepared), HubError> {
    let has_list = list.is_some();
    match ask(options, signer, network, timeout, cache_file, list).await {
        Ok(done) => Ok(done),
        Err((e, Some(list))) if options.go_on => {
            warnings.push(format!(
                "{e} — going on without the Dev Hub's check (--no-hub-check): typos, deleted and expired orgs are not caught before sending"
            ));
            Ok((
                list,
                Prepared {
                    hub: options.username.clone(),
                    ..Prepared::default()
                },
            ))
        }
        Err((e, _)) if !has_list && options.go_on => Err(HubError::Usage(format!(
            "{e}; with no org list the Dev Hub is the list, so --no-hub-check cannot go on without it: give an org list"
        ))),
        Err((e, _)) => Err(e),
    }
}

type Asked = Result<(OrgList, Prepared), (HubError, Option<OrgList>)>;

async fn ask(
    options: &HubOptions,
    signer: &Signer,
    network: &Network,
    timeout: Duration,
    cache_file: Option<&std::path::Path>,
    list: Option<OrgList>,
) -> Asked {
    let client = match HubClient::new(network, timeout) {
        Ok(c) => c,
        Err(e) => {
            return Err((
                HubError::Usage(format!("cannot build the HTTP client: {e}")),
                list,
            ))
        }
    };
    let mut session = match session(&client, options, signer, network, cache_file).await {
        Ok(s) => s,
        Err(e) => return Err((e, list)),
    };
    let names: Vec<String> = list
        .as_ref()
        .map(|l| l.targets.iter().map(|t| t.username.clone()).collect())
        .unwrap_or_default();
    let queries = if list.is_some() {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        soql::by_username(&refs)
    } else {
        soql::active(options.created_after, options.created_by.as_deref()).map(|q| vec![q])
    };
    let queries = match queries {
        Ok(q) => q,
        Err(e) => return Err((HubError::Usage(e), list)),
    };
    let started = std::time::Instant::now();
    let mut raw = Vec::new();
    for q in &queries {
        let mut rows = client.query(&session, q).await;
        // A cached session the hub no longer accepts: forget it, log in once more.
        if matches!(&rows, Err(e) if e.session_expired()) && session.reused {
            if let Some(p) = cache_file {
                cache::forget(p);
            }
            session = match self::session(&client, options, signer, network, cache_file).await {
                Ok(s) => s,
                Err(e) => return Err((e, list)),
            };
            rows = client.query(&session, q).await;
        }
        match rows {
            Ok(rows) => raw.extend(rows),
            Err(e) => return Err((query_error(options, &e), list)),
        }
    }
    let mut rows: HashMap<String, HubOrg> = HashMap::with_capacity(raw.len());
    let mut order: Vec<String> = Vec::with_capacity(raw.len());
    let mut bad = 0;
    for r in &raw {
        match parse_row(r, &network.hosts) {
            Ok(org) => {
                let key = org.username.to_lowercase();
                // The newest signup of a username wins (rows come oldest first).
                if rows.insert(key.clone(), org).is_none() {
                    order.push(key);
                }
            }
            Err(_) => bad += 1,
        }
    }
    drop(raw);
    let now = OffsetDateTime::now_utc();
    let mut refusals = HashMap::new();
    let list = match list {
        Some(mut list) => {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| !rows.contains_key(&n.to_lowercase()))
                .cloned()
                .collect();
            // A typo is told by the hub's Active orgs near it: one more query, only then.
            let active: Vec<String> = if missing.is_empty() {
                Vec::new()
            } else {
                match soql::active(None, None) {
                    Ok(q) => client
                        .query(&session, &q)
                        .await
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|r| r.get("SignupUsername").and_then(Value::as_str))
                        .map(|s| crate::sanitize::excerpt(s, 120))
                        .collect(),
                    Err(_) => Vec::new(),
                }
            };
            for target in &mut list.targets {
                let key = target.username.to_lowercase();
                let row = rows.get(&key);
                let near = if row.is_none() {
                    nearest(&target.username, active.iter().map(String::as_str))
                } else {
                    None
                };
                if let Some(e) = verdict(&target.username, row, &options.username, now, near) {
                    refusals.insert(key, e);
                } else if target.instance_url.is_none() {
                    target.instance_url = row.and_then(|r| r.login_url.clone());
                }
            }
            list
        }
        None => {
            let targets: Vec<Target> = order
                .iter()
                .filter_map(|k| rows.get(k))
                .filter(|r| r.status == "Active")
                .enumerate()
                .map(|(i, r)| {
                    if let Some(e) = verdict(&r.username, Some(r), &options.username, now, None) {
                        refusals.insert(r.username.to_lowercase(), e);
                    }
                    let expiry = r.expiration_date.map(format_date).unwrap_or_default();
                    Target {
                        username: r.username.clone(),
                        alias: None,
                        instance_url: r.login_url.clone(),
                        origin: Origin::Entry(i + 1),
                        record: vec![
                            r.username.clone(),
                            r.login_url.clone().unwrap_or_default(),
                            r.org_id.clone().unwrap_or_default(),
                            expiry,
                            r.created_by.clone().unwrap_or_default(),
                        ],
                        place: 0,
                    }
                })
                .collect();
            OrgList {
                source: format!("Dev Hub {}", options.username),
                columns: [
                    "username",
                    "instanceUrl",
                    "orgId",
                    "expirationDate",
                    "createdBy",
                ]
                .map(String::from)
                .to_vec(),
                targets,
                excluded: Vec::new(),
            }
        }
    };
    let query_time = started.elapsed();
    let limits = client.limits(&session).await.ok();
    let limit = |name: &str| {
        let l = limits.as_ref()?.get(name)?;
        Some(ScratchLimit {
            max: l.get("Max")?.as_i64()?,
            remaining: l.get("Remaining")?.as_i64()?,
        })
    };
    let summary = DevHub {
        username: options.username.clone(),
        active_scratch_orgs: limit("ActiveScratchOrgs"),
        daily_scratch_orgs: limit("DailyScratchOrgs"),
        scratch_orgs: rows.len(),
        unreadable_rows: bad,
        requests: client.requests.load(std::sync::atomic::Ordering::Relaxed),
        query_ms: u64::try_from(query_time.as_millis()).unwrap_or(u64::MAX),
    };
    Ok((
        list,
        Prepared {
            hub: options.username.clone(),
            rows,
            refusals,
            granted: true,
            summary: Some(summary),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Status;

    fn statuses(outcomes: &[Outcome]) -> Vec<Status> {
        outcomes.iter().map(|o| o.status).collect()
    }

    #[test]
    fn refused_orgs_merge_back_in_list_order() {
        let refusals = vec![
            None,
            Some(GrantError::permanent("org_deleted", "d", "h")),
            None,
        ];
        let sent = vec![
            Outcome::pending(1, Duration::ZERO),
            Outcome::failed(2, Duration::ZERO, GrantError::permanent("x", "d", "h")),
        ];
        let merged = Prepared::merge(refusals, sent);
        assert_eq!(
            statuses(&merged),
            [Status::Pending, Status::Failed, Status::Failed]
        );
        assert_eq!(merged[1].attempts, 0);
        assert_eq!(merged[2].attempts, 2);
    }
}
