//! The catalogue of OAuth errors (`reference/token-endpoint.md` §4): one named row per documented
//! `error` and `error_description`, saying how the answer is handled (its [`ErrorKind`]), what
//! fixes it, whether the fallback host may still serve the grant, and whether every other org
//! would get the same answer. [`classify_oauth_error`] takes the first row that matches; an
//! answer no row names is [`UNLISTED`]. Every row is pinned by a recorded answer in
//! `fixtures/answers/` (the tests below), so a row cannot be added without one.

use super::grant::{ErrorKind, GrantError};
use Description::{Any, Contains, Is};
use ErrorKind::{Permanent, RateLimited, ReplicationDelay, Transient};

/// What a row asks of the `error_description`, trimmed and lower-cased (so a pattern is lower
/// case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Description {
    /// Any description, or none.
    Any,
    /// Exactly this text.
    Is(&'static str),
    /// Any text holding this.
    Contains(&'static str),
}

/// One row of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CatalogueRow {
    /// The OAuth `error` (lower case); `None`: any.
    pub error: Option<&'static str>,
    pub description: Description,
    pub kind: ErrorKind,
    /// What to fix; `None` for an answer a retry may cure.
    pub hint: Option<&'static str>,
    /// This host rejects what another may accept: try the fallback host (`--instance-url`).
    pub try_fallback: bool,
    /// Every other org would get the same answer: stop the run.
    pub fleet_wide: bool,
}

impl CatalogueRow {
    /// Does this row name the answer? Both texts trimmed and lower-cased.
    fn matches(&self, error: &str, description: &str) -> bool {
        self.error.is_none_or(|e| e == error)
            && match self.description {
                Any => true,
                Is(text) => description == text,
                Contains(text) => description.contains(text),
            }
    }
}

/// The fix for a user the login server does not know.
const UNKNOWN_USER: &str = "no such user on this login server: check the username and that the org came from this Dev Hub (--instance-url)";

/// The rows of §4, first match wins.
pub(super) const CATALOGUE: &[CatalogueRow] = &[
    CatalogueRow {
        error: Some("invalid_grant"),
        description: Is("user hasn't approved this consumer"),
        kind: ReplicationDelay,
        hint: None,
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: Some("invalid_grant"),
        description: Is("login rate exceeded"),
        kind: RateLimited,
        hint: None,
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: Some("rate_limit_exceeded"),
        description: Any,
        kind: RateLimited,
        hint: None,
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: Some("unknown_error"),
        description: Any,
        kind: Transient,
        hint: None,
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: Some("invalid_grant"),
        description: Is("audience is invalid"),
        kind: Permanent,
        hint: Some("this host rejects the audience: scratch orgs and sandboxes use https://test.salesforce.com, production orgs and Dev Hubs https://login.salesforce.com (--audience)"),
        try_fallback: true,
        fleet_wide: true,
    },
    CatalogueRow {
        error: Some("invalid_grant"),
        description: Is("audience validation failed"),
        kind: Permanent,
        hint: Some("the aud claim is wrong: scratch orgs and sandboxes use https://test.salesforce.com, production orgs and Dev Hubs https://login.salesforce.com (--audience)"),
        try_fallback: false,
        fleet_wide: true,
    },
    CatalogueRow {
        error: Some("invalid_grant"),
        description: Is("invalid assertion"),
        kind: Permanent,
        hint: Some("the key does not match the certificate uploaded to the connected app, or the consumer key is wrong: check --jwt-key-file against server.crt and --client-id"),
        try_fallback: false,
        fleet_wide: true,
    },
    CatalogueRow {
        error: Some("invalid_grant"),
        description: Is("expired authorization code"),
        kind: Permanent,
        hint: Some("the assertion had already expired on arrival: this machine's clock is wrong; sync it with NTP"),
        try_fallback: false,
        fleet_wide: true,
    },
    CatalogueRow {
        error: Some("invalid_grant"),
        description: Is("invalid user"),
        kind: Permanent,
        hint: Some(UNKNOWN_USER),
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: Some("invalid_grant"),
        description: Is("authentication failure"),
        kind: Permanent,
        hint: Some(UNKNOWN_USER),
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: Some("invalid_grant"),
        description: Contains("ip restricted"),
        kind: Permanent,
        hint: Some("the user's profile restricts login IP ranges or hours: allow this machine's IP address in the profile"),
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: Some("unsupported_grant_type"),
        description: Any,
        kind: Permanent,
        hint: Some("the server did not see a form-encoded JWT bearer grant; a proxy may be rewriting the request"),
        try_fallback: false,
        fleet_wide: true,
    },
    CatalogueRow {
        error: Some("invalid_client_id"),
        description: Any,
        kind: Permanent,
        hint: Some("the consumer key is wrong, or the connected app is not in the Dev Hub these orgs came from"),
        try_fallback: false,
        fleet_wide: true,
    },
    CatalogueRow {
        error: Some("invalid_app_access"),
        description: Any,
        kind: Permanent,
        hint: Some("the user lacks the connected app's profile or permission set: assign it in the Dev Hub so scratch orgs inherit it"),
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: Some("inactive_user"),
        description: Any,
        kind: Permanent,
        hint: Some("the user is deactivated: reactivate it or drop it from the list"),
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: Some("inactive_org"),
        description: Any,
        kind: Permanent,
        hint: Some("the org is locked, suspended, deleted or expired: drop it from the list"),
        try_fallback: false,
        fleet_wide: false,
    },
    CatalogueRow {
        error: None,
        description: Contains("external client app"),
        kind: Permanent,
        hint: Some("External Client Apps are not replicated into scratch orgs: use a classic connected app"),
        try_fallback: false,
        fleet_wide: true,
    },
];

/// An OAuth error no row names: permanent for this org (§5), fixed as its description says.
pub(super) const UNLISTED: CatalogueRow = CatalogueRow {
    error: None,
    description: Any,
    kind: Permanent,
    hint: Some("Salesforce rejected the grant for the reason its error description gives: fix that, then grant it again"),
    try_fallback: false,
    fleet_wide: false,
};

/// The row that names this answer: the first that matches the trimmed, case-folded `error`
/// and description, or [`UNLISTED`].
pub(super) fn row_for(error: &str, description: &str) -> &'static CatalogueRow {
    let code = error.trim().to_ascii_lowercase();
    let desc = description.trim().to_ascii_lowercase();
    CATALOGUE
        .iter()
        .find(|row| row.matches(&code, &desc))
        .unwrap_or(&UNLISTED)
}

/// Classify an OAuth error by its catalogue row; the texts are kept trimmed, as they came.
pub(super) fn classify_oauth_error(error: &str, description: &str) -> GrantError {
    let row = row_for(error, description);
    let mut e = GrantError::new(row.kind, error.trim(), description.trim());
    e.hint = row.hint.map(str::to_string);
    e.try_fallback = row.try_fallback;
    e.fleet_wide = row.fleet_wide;
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::answers::RawAnswer;
    use crate::token::testing::{classify_raw, recorded_answers};

    /// What a recorded OAuth error must become, beyond the class its directory names.
    struct Pin {
        /// The recorded answer, under `fixtures/answers/`.
        file: &'static str,
        try_fallback: bool,
        /// What the hint must name (the fix); none: no hint.
        hint_names: &'static [&'static str],
    }

    const PINS: &[Pin] = &[
        Pin {
            file: "replication_delay/not-approved.http",
            try_fallback: false,
            hint_names: &[],
        },
        Pin {
            file: "rate_limited/login-rate-exceeded.http",
            try_fallback: false,
            hint_names: &[],
        },
        Pin {
            file: "rate_limited/rate-limit-exceeded.http",
            try_fallback: false,
            hint_names: &[],
        },
        Pin {
            file: "transient/unknown-error-500.http",
            try_fallback: false,
            hint_names: &[],
        },
        Pin {
            file: "fleet_wide/audience-is-invalid.http",
            try_fallback: true,
            hint_names: &[
                "rejects the audience",
                "https://test.salesforce.com",
                "--audience",
            ],
        },
        Pin {
            file: "fleet_wide/audience-validation-failed.http",
            try_fallback: false,
            hint_names: &["aud claim", "https://login.salesforce.com", "--audience"],
        },
        Pin {
            file: "fleet_wide/invalid-assertion.http",
            try_fallback: false,
            hint_names: &["certificate", "--jwt-key-file", "--client-id"],
        },
        Pin {
            file: "fleet_wide/expired-authorization-code.http",
            try_fallback: false,
            hint_names: &["clock", "NTP"],
        },
        Pin {
            file: "permanent/invalid-user.http",
            try_fallback: false,
            hint_names: &["no such user", "Dev Hub", "--instance-url"],
        },
        Pin {
            file: "permanent/authentication-failure.http",
            try_fallback: false,
            hint_names: &["no such user", "Dev Hub", "--instance-url"],
        },
        Pin {
            file: "permanent/ip-restricted.http",
            try_fallback: false,
            hint_names: &["IP ranges or hours", "IP address"],
        },
        Pin {
            file: "permanent/ip-restricted-login-hours.http",
            try_fallback: false,
            hint_names: &["IP ranges or hours", "IP address"],
        },
        Pin {
            file: "fleet_wide/unsupported-grant-type.http",
            try_fallback: false,
            hint_names: &["form-encoded", "proxy"],
        },
        Pin {
            file: "fleet_wide/invalid-client-id.http",
            try_fallback: false,
            hint_names: &["consumer key", "Dev Hub"],
        },
        Pin {
            file: "permanent/invalid-app-access.http",
            try_fallback: false,
            hint_names: &["profile or permission set", "Dev Hub"],
        },
        Pin {
            file: "permanent/inactive-user.http",
            try_fallback: false,
            hint_names: &["deactivated", "reactivate", "drop it from the list"],
        },
        Pin {
            file: "permanent/inactive-org.http",
            try_fallback: false,
            hint_names: &["expired", "drop it from the list"],
        },
        Pin {
            file: "fleet_wide/external-client-app.http",
            try_fallback: false,
            hint_names: &["External Client Apps", "classic connected app"],
        },
        Pin {
            file: "permanent/undocumented-description.http",
            try_fallback: false,
            hint_names: &["error description", "grant it again"],
        },
    ];

    /// The OAuth `error` and description of a recorded answer with a JSON error body.
    fn oauth_error(raw: &RawAnswer) -> Option<(String, String)> {
        let body = serde_json::from_str::<serde_json::Value>(&raw.body).ok()?;
        let error = body.get("error")?.as_str()?.to_string();
        let description = body
            .get("error_description")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string();
        Some((error, description))
    }

    /// Every row of the catalogue, and the unlisted answer, classifies at least one pinned
    /// recorded answer: the error is the row's (kind, hint, fallback, fleet-wide), and the row's
    /// fallback flag and hint are what the pin says. A row added without a recorded answer, one
    /// shadowed by an earlier row, or a recorded OAuth error without a pin fails here.
    #[test]
    fn every_catalogue_row_is_pinned_by_a_recorded_answer() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/answers");
        let pinned_files: Vec<_> = PINS.iter().map(|pin| root.join(pin.file)).collect();
        for (file, raw) in recorded_answers() {
            if oauth_error(&raw).is_some() {
                assert!(
                    pinned_files.contains(&file),
                    "{} is an OAuth error without a Pin",
                    file.display()
                );
            }
        }
        let rows: Vec<&CatalogueRow> = CATALOGUE.iter().chain([&UNLISTED]).collect();
        let mut pinned = vec![false; rows.len()];
        for (pin, file) in PINS.iter().zip(&pinned_files) {
            let raw = RawAnswer::parse(&std::fs::read_to_string(file).unwrap()).unwrap();
            let (error, description) = oauth_error(&raw).unwrap();
            let row = row_for(&error, &description);
            let at = rows.iter().position(|r| *r == row).unwrap();
            pinned[at] = true;
            let e = classify_raw(&raw).unwrap_err();
            let what = format!("{}: {e:?}, row {row:?}", pin.file);
            assert_eq!(
                e.code,
                error.trim(),
                "not classified by the catalogue: {what}"
            );
            // A 5xx or a 420 is retried, whatever the row (§5).
            let retried = raw.status >= 500 || raw.status == 420;
            let (kind, hint, fleet_wide) = if retried {
                (Transient, None, false)
            } else {
                (row.kind, row.hint, row.fleet_wide)
            };
            assert_eq!(e.kind, kind, "{what}");
            assert_eq!(e.hint.as_deref(), hint, "{what}");
            assert_eq!(e.fleet_wide, fleet_wide, "{what}");
            assert_eq!(e.try_fallback, row.try_fallback, "{what}");
            assert_eq!(row.try_fallback, pin.try_fallback, "fallback flag: {what}");
            match row.hint {
                None => assert!(pin.hint_names.is_empty(), "no hint: {what}"),
                Some(hint) => {
                    assert!(!pin.hint_names.is_empty(), "a hint not pinned: {what}");
                    for name in pin.hint_names {
                        assert!(hint.contains(name), "the hint lacks {name:?}: {what}");
                    }
                }
            }
        }
        for (row, pinned) in rows.iter().zip(&pinned) {
            assert!(
                *pinned,
                "no pinned recorded answer in fixtures/answers/ is classified by {row:?}: record one and pin it"
            );
        }
    }

    #[test]
    fn every_pattern_is_trimmed_lower_case_so_it_can_match() {
        for row in CATALOGUE {
            let texts = row.error.into_iter().chain(match row.description {
                Any => None,
                Is(text) | Contains(text) => Some(text),
            });
            for text in texts {
                assert!(!text.is_empty(), "{row:?}");
                assert_eq!(text, text.trim().to_ascii_lowercase(), "{row:?}");
            }
        }
    }

    #[test]
    fn a_permanent_row_says_what_to_fix_and_a_retried_one_does_not() {
        for row in CATALOGUE.iter().chain([&UNLISTED]) {
            match row.kind {
                Permanent => assert!(row.hint.is_some_and(|h| !h.is_empty()), "{row:?}"),
                _ => assert_eq!(row.hint, None, "{row:?}"),
            }
            assert!(!row.try_fallback || row.kind == Permanent, "{row:?}");
        }
    }
}
