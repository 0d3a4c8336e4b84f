//! The Dev Hub's ScratchOrgInfo rows, one at a time: each row checked as the hub sent it, and
//! the verdict on a listed org from its row (none: not this hub's, perhaps a typo; Deleted, in
//! Error or expired), with its fix. Pure: no I/O, the clock passed in.

use std::time::Duration;

use serde_json::Value;
use time::{Date, OffsetDateTime};

use crate::token::GrantError;
use crate::urls::HostPolicy;

/// One ScratchOrgInfo row, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOrg {
    pub username: String,
    /// The 15-character org id.
    pub org_id: Option<String>,
    /// `LoginUrl`, when it names a host a list row may name.
    pub login_url: Option<String>,
    pub status: String,
    pub expiration_date: Option<Date>,
    pub created_by: Option<String>,
}

/// `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.get(..10)?, &format).ok()
}

pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Check one row as the hub sent it: a username fleetauth could send, an org id, a status,
/// and a `LoginUrl` on a host a list row may name (else none: the run's host is used).
pub fn parse_row(row: &Value, hosts: &HostPolicy) -> Result<HubOrg, String> {
    let text = |name: &str| row.get(name).and_then(Value::as_str);
    let username = text("SignupUsername").ok_or("a row without SignupUsername")?;
    crate::input::check_username(username)?;
    let org_id = text("ScratchOrg")
        .filter(|id| matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|id| id[..15].to_string());
    let login_url = text("LoginUrl")
        .filter(|u| !u.is_empty())
        .and_then(|u| hosts.row_host(u).ok())
        .map(|u| crate::urls::display(&u));
    let status = text("Status")
        .filter(|s| s.len() <= 20 && s.bytes().all(|b| b.is_ascii_alphabetic()))
        .unwrap_or("Unknown")
        .to_string();
    let created_by = row
        .get("CreatedBy")
        .and_then(|c| c.get("Username"))
        .and_then(Value::as_str)
        .map(|u| crate::sanitize::excerpt(u, 120));
    Ok(HubOrg {
        username: username.to_string(),
        org_id,
        login_url,
        status,
        expiration_date: text("ExpirationDate").and_then(parse_date),
        created_by,
    })
}

/// When an org expiring on `date` is deleted: after that day (UTC).
fn end_of(date: Date) -> OffsetDateTime {
    date.next_day().unwrap_or(date).midnight().assume_utc()
}

/// Why `username` must not be sent (`row`: its hub row), or `None` to go on.
pub fn verdict(
    username: &str,
    row: Option<&HubOrg>,
    hub: &str,
    now: OffsetDateTime,
    near: Option<&str>,
) -> Option<GrantError> {
    let Some(row) = row else {
        let hint = match near {
            Some(other) => format!("a typo? the Dev Hub has {other}; fix the username in the list"),
            None => format!("check the username for a typo, and that the org was created by the Dev Hub {hub} (-v); drop it from the list if it is another hub's"),
        };
        return Some(GrantError::permanent(
            "not_in_dev_hub",
            format!("{username} is not a scratch org of the Dev Hub {hub}"),
            &hint,
        ));
    };
    let expiry = row.expiration_date.map(format_date).unwrap_or_default();
    match row.status.as_str() {
        "Deleted" => {
            return Some(GrantError::permanent(
                "org_deleted",
                format!("the Dev Hub lists {username} as Deleted (expired {expiry})"),
                "the org no longer exists: drop it from the list, or create a new scratch org",
            ))
        }
        "Error" => {
            return Some(GrantError::permanent(
                "org_signup_failed",
                format!("the Dev Hub lists {username} with Status Error: its signup failed"),
                "the org was never created: drop it from the list and create it again (failed signups count against DailyScratchOrgs)",
            ))
        }
        _ => {}
    }
    match row.expiration_date {
        Some(date) if end_of(date) <= now => Some(GrantError::permanent(
            "org_expired",
            format!(
                "{username} expired on {expiry} (Dev Hub status {})",
                row.status
            ),
            "an expired scratch org is deleted: drop it from the list, or create a new one",
        )),
        _ => None,
    }
}

/// Does `username`'s org expire within `window` from `now` (and not yet)?
pub fn expiring(row: &HubOrg, now: OffsetDateTime, window: Duration) -> bool {
    row.expiration_date.is_some_and(|d| {
        let end = end_of(d);
        end > now && (end - now) <= window
    })
}

/// The closest username to `name` among `candidates`, if close enough to be a typo of it.
pub fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_lowercase();
    candidates
        .map(|c| (distance(&name, &c.to_lowercase()), c))
        .filter(|(d, _)| *d > 0 && *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, bounded work for usernames (≤ 250 bytes).
#[expect(
    clippy::indexing_slicing,
    reason = "the rows have b.len() + 1 cells and j < b.len()"
)]
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 3 {
        return 4;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            row[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(row[j] + 1);
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, expires: Date) -> HubOrg {
        HubOrg {
            username: "a@x.com".into(),
            org_id: None,
            login_url: None,
            status: status.into(),
            expiration_date: Some(expires),
            created_by: None,
        }
    }

    #[test]
    fn each_hub_state_has_its_verdict() {
        let now = time::macros::datetime!(2026-12-02 12:00 UTC);
        let today = now.date();
        let tomorrow = today.next_day().unwrap();
        let yesterday = today.previous_day().unwrap();
        assert_eq!(
            verdict("a@x.com", Some(&row("Active", tomorrow)), "h", now, None),
            None
        );
        // Expiring today: still usable until midnight.
        assert_eq!(
            verdict("a@x.com", Some(&row("Active", today)), "h", now, None),
            None
        );
        let code = |r: &HubOrg| verdict("a@x.com", Some(r), "h", now, None).map(|e| e.code);
        assert_eq!(
            code(&row("Active", yesterday)).as_deref(),
            Some("org_expired")
        );
        assert_eq!(
            code(&row("Deleted", tomorrow)).as_deref(),
            Some("org_deleted")
        );
        assert_eq!(
            code(&row("Error", tomorrow)).as_deref(),
            Some("org_signup_failed")
        );
        let typo = verdict("a@x.con", None, "h", now, Some("a@x.com")).unwrap();
        assert_eq!(typo.code, "not_in_dev_hub");
        assert!(typo.hint.unwrap().contains("typo? the Dev Hub has a@x.com"));
        assert!(expiring(
            &row("Active", today),
            now,
            Duration::from_secs(86400)
        ));
        assert!(!expiring(
            &row("Active", tomorrow.next_day().unwrap()),
            now,
            Duration::from_secs(86400)
        ));
    }

    #[test]
    fn a_typo_is_near_and_a_stranger_is_not() {
        let hub = ["test-one@example.com", "test-two@example.com"];
        assert_eq!(
            nearest("test-onr@example.com", hub.into_iter()),
            Some("test-one@example.com")
        );
        assert_eq!(nearest("someone@else.org", hub.into_iter()), None);
    }
}
