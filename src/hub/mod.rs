//! The Dev Hub, asked before the fleet (`-v HUB`): after `input` and before `plan`, fleetauth
//! grants the hub itself with the run's key (`client`, its token kept apart in `cache`), reads
//! its ScratchOrgInfo rows and `/limits` once, and then either makes the list from its Active
//! orgs or checks every listed org against it (`vet`), so a typo, a deleted or an expired org
//! fails before any assertion is sent for it. The hub is never one of the fleet's orgs: it is
//! not counted, listed, reported or handed on. `diagnose` turns the answers that show an app
//! problem into one cause and its fix; the report carries expiry, hub status and limits.

pub mod cache;
pub mod client;
pub mod diagnose;
pub mod rows;
pub mod soql;
pub mod vet;

use std::time::Duration;

use time::OffsetDateTime;
use url::Url;

use crate::token::GrantError;

pub use client::{HubClient, Session};
pub use vet::{Prepared, Refusal};

/// The default token host and audience of a Dev Hub (a production org).
pub const LOGIN: &str = "https://login.salesforce.com";

/// The Dev Hub to ask, validated from `-v`, `--hub-instance-url`, `--hub-audience`,
/// `--no-hub-check`, `--warn-expiring` and the list filters.
#[derive(Debug, Clone)]
pub struct HubOptions {
    pub username: String,
    /// Where the hub's own assertion is POSTed.
    pub host: Url,
    /// The hub's assertion `aud`.
    pub audience: String,
    /// With no list: only orgs created at or after this time.
    pub created_after: Option<OffsetDateTime>,
    /// With no list: only orgs created by this user.
    pub created_by: Option<String>,
    /// Warn about orgs that expire within this window.
    pub warn_expiring: Duration,
    /// `--no-hub-check`: a hub that cannot be asked is a warning, not a setup error.
    pub go_on: bool,
}

impl HubOptions {
    /// Validate the hub flags. `hub`: `-v`'s value, resolved through sf's aliases when
    /// `sf_home` is given and it names no username.
    #[expect(
        clippy::too_many_arguments,
        reason = "one flag each, validated together"
    )]
    pub fn new(
        hub: &str,
        instance_url: &str,
        audience: Option<&str>,
        created_after: Option<&str>,
        created_by: Option<&str>,
        warn_expiring: Duration,
        go_on: bool,
        sf_home: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let username = resolve_alias(hub.trim(), sf_home)?;
        crate::input::check_username(&username)
            .map_err(|e| format!("--target-dev-hub (-v): {e}"))?;
        let host = crate::urls::token_host(instance_url)
            .map_err(|e| format!("--hub-instance-url: {e}"))?;
        let audience = audience.unwrap_or(LOGIN).trim();
        let audience = Url::parse(audience).map_err(|e| {
            format!("--hub-audience `{audience}` is not a URL ({e}); a Dev Hub uses {LOGIN}")
        })?;
        let created_after = created_after
            .map(|t| {
                parse_time(t).ok_or_else(|| {
                    format!("--created-after {t:?}: give an RFC 3339 time (2026-12-01T00:00:00Z), a date (2026-12-01) or an age (24h, 7days), from 1970 on")
                })
            })
            .transpose()?;
        if let Some(by) = created_by {
            soql::quote(by).map_err(|e| format!("--created-by: {e}"))?;
        }
        Ok(Self {
            username,
            host,
            audience: crate::urls::display(&audience),
            created_after,
            created_by: created_by.map(str::to_string),
            warn_expiring,
            go_on,
        })
    }
}

/// A time as RFC 3339, a bare date (midnight UTC) or an age before now (`24h`), from 1970 on
/// (no scratch org is older; SOQL takes no earlier year), else `None`.
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    let time = if let Ok(t) =
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        t
    } else if let Some(d) = rows::parse_date(text) {
        d.midnight().assume_utc()
    } else {
        let age = humantime::parse_duration(text).ok()?;
        let age = time::Duration::try_from(age).ok()?;
        OffsetDateTime::now_utc().checked_sub(age)?
    };
    (time >= OffsetDateTime::UNIX_EPOCH).then_some(time)
}

/// `name` as a username: itself when it looks like one, else the username sf's alias.json
/// (in `sf_home`) gives it.
fn resolve_alias(name: &str, sf_home: Option<&std::path::Path>) -> Result<String, String> {
    if name.contains('@') {
        return Ok(name.to_string());
    }
    let Some(home) = sf_home else {
        return Err(format!("--target-dev-hub {name:?} is not a username (user@example.com); an sf alias can be used with --sf, where sf's state is at hand"));
    };
    let path = home.join(".sfdx").join("alias.json");
    let aliases: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    aliases
        .get("orgs")
        .and_then(|orgs| orgs.get(name))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "--target-dev-hub {name:?} is neither a username nor an sf alias in {}; give the hub's username",
                path.display()
            )
        })
}

/// Why the Dev Hub could not be asked: a setup error (exit 2) unless `--no-hub-check`.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("the Dev Hub {username} did not grant a token: {}: {}. Fix: {fix}", error.code, error.description)]
    Login {
        username: String,
        error: Box<GrantError>,
        fix: String,
    },
    #[error(
        "the Dev Hub {username} cannot be asked for its scratch orgs ({code}: {message}): {fix}"
    )]
    Query {
        username: String,
        code: String,
        message: String,
        fix: String,
    },
    #[error("{0}")]
    Usage(String),
}

impl HubError {
    /// The hint added to every hub error: how to go on without the hub.
    pub const GO_ON: &'static str = "--no-hub-check goes on without the hub's check";
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn a_time_before_1970_or_out_of_range_is_refused_not_a_panic() {
        assert!(parse_time("24h").is_some());
        assert!(parse_time("2026-11-01").is_some());
        assert!(parse_time("100000years").is_none());
        assert!(parse_time("3000years").is_none());
        assert!(parse_time("1969-12-31").is_none());
    }
}
