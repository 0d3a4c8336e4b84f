//! What a token request ends in: a [`Grant`], every field checked, or a [`GrantError`] of some
//! [`ErrorKind`], with the fix and whether the fallback host or the rest of the fleet is
//! concerned. The types only: `answer.rs` and `client.rs` make them.

use std::time::Duration;

use serde::Serialize;

use crate::secret::Secret;

/// How a failure is handled (`reference/token-endpoint.md` §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    ReplicationDelay,
    RateLimited,
    Transient,
    Permanent,
}

/// A failed token request, classified. Never holds a token or the assertion: every text in it
/// that came from the server went through [`sanitize::excerpt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    pub kind: ErrorKind,
    /// The OAuth `error`, `ERROR_HTTP_<status>` for a non-JSON body, or a network error name.
    pub code: String,
    pub description: String,
    /// What to fix, for permanent errors.
    pub hint: Option<String>,
    pub status: Option<u16>,
    /// This host cannot serve the grant (audience rejected, host unreachable, not a token
    /// endpoint): try the fallback host.
    pub try_fallback: bool,
    /// Every other org would get the same answer (wrong consumer key, key/certificate mismatch,
    /// a host that is not a token endpoint, an untrusted certificate): stop the run.
    pub fleet_wide: bool,
}

/// A successful grant, every field checked. The access token is a secret.
#[derive(Debug, Clone)]
pub struct Grant {
    pub access_token: Secret<String>,
    pub instance_url: String,
    pub org_id: String,
    pub user_id: String,
    pub token_type: Option<String>,
}

/// The code of a 407 from a proxy.
pub const PROXY_REFUSED: &str = "proxy_auth_required";

impl GrantError {
    pub(super) fn new(
        kind: ErrorKind,
        code: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            code: code.into(),
            description: description.into(),
            hint: None,
            status: None,
            try_fallback: false,
            fleet_wide: false,
        }
    }

    /// A permanent error of fleetauth's own making (signing, storing), with its fix.
    pub fn permanent(code: &str, description: impl Into<String>, hint: &str) -> Self {
        let mut e = Self::new(ErrorKind::Permanent, code, description);
        e.hint = Some(hint.to_string());
        e
    }

    /// This answer shows the host is not a token endpoint (or must not be trusted with the
    /// rest of the fleet): permanent, and the same for every org.
    pub(super) fn not_a_token_endpoint(mut self, hint: &str) -> Self {
        self.kind = ErrorKind::Permanent;
        self.hint = Some(hint.to_string());
        self.fleet_wide = true;
        self
    }

    pub fn is_420(&self) -> bool {
        self.status == Some(420)
    }

    /// A proxy refused its credentials (407): permanent after one attempt, and the run stops
    /// whoever meets it, as every further request is another failed login on the proxy
    /// account (a few lock it).
    pub fn is_proxy_refusal(&self) -> bool {
        self.code == PROXY_REFUSED
    }

    /// A 407, from a proxy tunnel (`status` None) or a forwarding proxy.
    pub(super) fn proxy_refused(status: Option<u16>) -> Self {
        let mut e = Self::new(
            ErrorKind::Permanent,
            PROXY_REFUSED,
            "the proxy answered 407 Proxy Authentication Required",
        );
        e.status = status;
        e.hint = Some(crate::tls::PROXY_REFUSED_HINT.to_string());
        e.fleet_wide = true;
        e
    }

    /// The answer came from a Salesforce token endpoint (an OAuth error, even a 5xx one, or a
    /// 420), not from a network failure or an anonymous error page.
    pub fn from_token_endpoint(&self) -> bool {
        self.status.is_some() && (self.is_420() || !self.code.starts_with("ERROR_HTTP_"))
    }

    /// The replication budget ran out: the error is now final (the kind stays
    /// `replication_delay`, so a reader tells it from a real rejection), with a hint.
    pub fn budget_spent(mut self, budget: Duration) -> Self {
        self.hint = Some(format!(
            "still not approved after {}: check that the connected app's Permitted Users is \"Admin approved users are pre-authorized\" with the user's profile or permission set assigned; if it is, the org has not replicated yet: raise --replication-timeout",
            humantime::format_duration(budget)
        ));
        self
    }

    /// A transient error that kept coming back.
    pub fn retries_exhausted(mut self) -> Self {
        if self.hint.is_none() {
            self.hint = Some(match self.kind {
                ErrorKind::RateLimited => "the user hit Salesforce's 3,600 logins per hour; wait an hour, then grant it again".to_string(),
                _ if self.is_420() => "the org is in maintenance, not ready, or expired; check it in the Dev Hub (ActiveScratchOrg), then grant it again".to_string(),
                _ => "Salesforce or the network kept failing; grant it again later".to_string(),
            });
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::answers::RawAnswer;
    use crate::token::testing::{answer, classify_raw};
    use ErrorKind::*;

    #[test]
    fn exhausted_and_budget_errors_explain_themselves() {
        let e = answer(
            400,
            r#"{"error":"invalid_grant","error_description":"user hasn't approved this consumer"}"#,
        )
        .unwrap_err()
        .budget_spent(Duration::from_secs(300));
        assert_eq!(
            e.kind, ReplicationDelay,
            "the kind tells it from a rejection"
        );
        assert!(e.hint.unwrap().contains("5m"));
        let e = classify_raw(&RawAnswer::parse(crate::emulator::answers::NOT_READY).unwrap())
            .unwrap_err();
        assert!(e.is_420());
        assert!(e.retries_exhausted().hint.unwrap().contains("maintenance"));
    }
}
