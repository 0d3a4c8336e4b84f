//! The token endpoint: POST one assertion, and turn whatever comes back (a grant, an OAuth
//! error, an HTML page, a dropped connection) into a [`Grant`] or a classified [`GrantError`].
//! [`classify`] is pure and pinned by a table test of `reference/token-endpoint.md` §4.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

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

/// A failed token request, classified. Never holds a token or the assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    pub kind: ErrorKind,
    /// The OAuth `error`, `ERROR_HTTP_<status>` for a non-JSON body, or a network error name.
    pub code: String,
    pub description: String,
    /// What to fix, for permanent errors.
    pub hint: Option<String>,
    pub status: Option<u16>,
    /// This host cannot serve the grant (audience rejected, host unreachable): try the fallback host.
    pub try_fallback: bool,
}

/// A successful grant. The access token is a secret.
#[derive(Debug, Clone)]
pub struct Grant {
    pub access_token: Secret<String>,
    pub instance_url: String,
    pub org_id: String,
    pub user_id: String,
    pub token_type: Option<String>,
}

#[derive(Deserialize)]
struct SuccessBody {
    access_token: String,
    instance_url: String,
    id: String,
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
}

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

impl GrantError {
    fn new(kind: ErrorKind, code: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.into(),
            description: description.into(),
            hint: None,
            status: None,
            try_fallback: false,
        }
    }

    pub fn is_420(&self) -> bool {
        self.status == Some(420)
    }

    /// The replication budget ran out: the error is now final, with a hint that says so.
    pub fn budget_spent(mut self, budget: Duration) -> Self {
        self.kind = ErrorKind::Permanent;
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
                ErrorKind::RateLimited => "the user hit Salesforce's 3,600 logins per hour; wait an hour, then re-run with failed.csv".to_string(),
                _ if self.is_420() => "the org is in maintenance, not ready, or expired; check it in the Dev Hub (ActiveScratchOrg) and re-run with failed.csv".to_string(),
                _ => "Salesforce or the network kept failing; re-run later with failed.csv as the list".to_string(),
            });
        }
        self
    }
}

/// Split the `id` URL (`https://<login>/id/<orgId>/<userId>`) into org id and user id.
fn ids_from(id: &str) -> Option<(String, String)> {
    let mut segments = id.trim_end_matches('/').rsplit('/');
    let user = segments.next()?;
    let org = segments.next()?;
    (segments.next() == Some("id") && !org.is_empty() && !user.is_empty())
        .then(|| (org.to_string(), user.to_string()))
}

/// Classify a complete HTTP answer from the token endpoint.
pub fn classify(status: u16, body: &[u8]) -> Result<Grant, GrantError> {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let Some(json) = parsed.filter(serde_json::Value::is_object) else {
        let text = String::from_utf8_lossy(body);
        let snippet: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(120)
            .collect();
        let description = match (status, snippet.is_empty()) {
            (_, true) => "empty body".to_string(),
            (200, false) => format!("truncated or malformed JSON: {snippet}"),
            _ => snippet,
        };
        let mut e = GrantError::new(
            ErrorKind::Transient,
            format!("ERROR_HTTP_{status}"),
            description,
        );
        e.status = Some(status);
        return Err(e);
    };
    if let Ok(err) = serde_json::from_value::<ErrorBody>(json.clone()) {
        let mut e = classify_oauth_error(&err.error, &err.error_description);
        if status >= 500 || status == 420 {
            e.kind = ErrorKind::Transient;
            e.hint = None;
        }
        e.status = Some(status);
        return Err(e);
    }
    if !(200..300).contains(&status) {
        let mut e = GrantError::new(
            ErrorKind::Transient,
            format!("ERROR_HTTP_{status}"),
            "unexpected JSON body",
        );
        if status < 500 && status != 420 {
            e.kind = ErrorKind::Permanent;
            e.hint =
                Some("the token endpoint answered in an unknown way; check --instance-url".into());
        }
        e.status = Some(status);
        return Err(e);
    }
    let success: SuccessBody = serde_json::from_value(json).map_err(|e| {
        let mut err = GrantError::new(
            ErrorKind::Permanent,
            "unexpected_response",
            format!("success body without a required field ({e})"),
        );
        err.hint = Some("the host is not a Salesforce token endpoint; check --instance-url".into());
        err.status = Some(status);
        err
    })?;
    let (org_id, user_id) = ids_from(&success.id).ok_or_else(|| {
        let mut err = GrantError::new(
            ErrorKind::Permanent,
            "unexpected_response",
            format!("`id` is not an identity URL: {}", success.id),
        );
        err.status = Some(status);
        err
    })?;
    Ok(Grant {
        access_token: Secret::new(success.access_token),
        instance_url: success.instance_url.trim_end_matches('/').to_string(),
        org_id,
        user_id,
        token_type: success.token_type,
    })
}

/// The catalogue of OAuth errors (§4), matched on `error` and the trimmed, case-folded description.
fn classify_oauth_error(error: &str, description: &str) -> GrantError {
    use ErrorKind::*;
    let code = error.trim().to_ascii_lowercase();
    let desc = description.trim().to_ascii_lowercase();
    let (kind, hint, fallback): (ErrorKind, &str, bool) = match (code.as_str(), desc.as_str()) {
        ("invalid_grant", "user hasn't approved this consumer") => (ReplicationDelay, "", false),
        ("invalid_grant", "login rate exceeded") | ("rate_limit_exceeded", _) => (RateLimited, "", false),
        ("unknown_error", _) => (Transient, "", false),
        ("invalid_grant", "audience is invalid") => (
            Permanent,
            "this host rejects the audience: scratch orgs and sandboxes use https://test.salesforce.com, production orgs and Dev Hubs https://login.salesforce.com (--audience)",
            true,
        ),
        ("invalid_grant", "audience validation failed") => (
            Permanent,
            "the aud claim is wrong: scratch orgs and sandboxes use https://test.salesforce.com, production orgs and Dev Hubs https://login.salesforce.com (--audience)",
            false,
        ),
        ("invalid_grant", "invalid assertion") => (
            Permanent,
            "the key does not match the certificate uploaded to the connected app, or the consumer key is wrong: check --jwt-key-file against server.crt and --client-id",
            false,
        ),
        ("invalid_grant", "expired authorization code") => (
            Permanent,
            "the assertion had already expired on arrival: this machine's clock is wrong; sync it with NTP",
            false,
        ),
        ("invalid_grant", "invalid user" | "authentication failure") => (
            Permanent,
            "no such user on this login server: check the username and that the org came from this Dev Hub (--instance-url)",
            false,
        ),
        ("invalid_grant", d) if d.contains("ip restricted") => (
            Permanent,
            "the user's profile restricts login IP ranges or hours: allow this machine's IP address in the profile",
            false,
        ),
        ("unsupported_grant_type", _) => (
            Permanent,
            "the server did not see a form-encoded JWT bearer grant; a proxy may be rewriting the request",
            false,
        ),
        ("invalid_client_id", _) => (
            Permanent,
            "the consumer key is wrong, or the connected app is not in the Dev Hub these orgs came from",
            false,
        ),
        ("invalid_app_access", _) => (
            Permanent,
            "the user lacks the connected app's profile or permission set: assign it in the Dev Hub so scratch orgs inherit it",
            false,
        ),
        ("inactive_user", _) => (Permanent, "the user is deactivated: reactivate it or drop it from the list", false),
        ("inactive_org", _) => (
            Permanent,
            "the org is locked, suspended, deleted or expired: drop it from the list",
            false,
        ),
        (_, d) if d.contains("external client app") => (
            Permanent,
            "External Client Apps are not replicated into scratch orgs: use a classic connected app",
            false,
        ),
        _ => (
            Permanent,
            "Salesforce rejected the grant; the description above says why",
            false,
        ),
    };
    let mut e = GrantError::new(kind, error.trim(), description.trim());
    e.hint = (!hint.is_empty()).then(|| hint.to_string());
    e.try_fallback = fallback;
    e
}

/// Classify a request that produced no complete HTTP answer.
pub fn classify_transport(err: &reqwest::Error) -> GrantError {
    let (code, fallback) = if err.is_timeout() {
        ("timeout", false)
    } else if err.is_connect() {
        ("connect_error", true)
    } else if err.is_body() || err.is_decode() {
        ("truncated_body", false)
    } else {
        ("connection_reset", false)
    };
    // The source chain says what happened (refused, reset, DNS); it never holds the request body.
    let mut description = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        description.push_str(": ");
        description.push_str(&s.to_string());
        source = s.source();
    }
    let mut e = GrantError::new(ErrorKind::Transient, code, description);
    e.try_fallback = fallback;
    e
}

/// One pooled HTTP client for the whole run.
#[derive(Debug, Clone)]
pub struct TokenClient {
    http: reqwest::Client,
}

impl TokenClient {
    pub fn new(request_timeout: Duration, pool_size: usize) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(pool_size)
            .tcp_nodelay(true)
            .user_agent(concat!("fleetauth/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }

    /// POST one assertion to `endpoint` and classify the answer.
    pub async fn request(
        &self,
        endpoint: &Url,
        assertion: &Secret<String>,
    ) -> Result<Grant, GrantError> {
        let form = [
            ("grant_type", GRANT_TYPE),
            ("assertion", assertion.expose().as_str()),
        ];
        let response = self
            .http
            .post(endpoint.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| classify_transport(&e))?;
        classify(status, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorKind::*;

    fn err(status: u16, error: &str, description: &str) -> GrantError {
        let body =
            serde_json::json!({"error": error, "error_description": description}).to_string();
        classify(status, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn every_catalogue_row_is_classified_as_the_reference_says() {
        let table: &[(u16, &str, &str, ErrorKind)] = &[
            (
                400,
                "invalid_grant",
                "user hasn't approved this consumer",
                ReplicationDelay,
            ),
            (
                400,
                "invalid_grant",
                "  User Hasn't Approved This Consumer ",
                ReplicationDelay,
            ),
            (400, "invalid_grant", "audience is invalid", Permanent),
            (
                400,
                "invalid_grant",
                "Audience validation failed",
                Permanent,
            ),
            (400, "invalid_grant", "invalid assertion", Permanent),
            (
                400,
                "invalid_grant",
                "expired authorization code",
                Permanent,
            ),
            (400, "invalid_grant", "invalid user", Permanent),
            (400, "invalid_grant", "authentication failure", Permanent),
            (400, "invalid_grant", "ip restricted", Permanent),
            (
                400,
                "invalid_grant",
                "IP restricted or invalid login hours",
                Permanent,
            ),
            (400, "invalid_grant", "login rate exceeded", RateLimited),
            (
                400,
                "unsupported_grant_type",
                "grant type not supported",
                Permanent,
            ),
            (
                400,
                "invalid_client_id",
                "client identifier invalid",
                Permanent,
            ),
            (
                400,
                "invalid_app_access",
                "user is not admin approved to access this app",
                Permanent,
            ),
            (
                400,
                "invalid_request",
                "External client app is not installed in this org",
                Permanent,
            ),
            (400, "inactive_user", "user is inactive", Permanent),
            (400, "inactive_org", "org is inactive", Permanent),
            (400, "rate_limit_exceeded", "too many logins", RateLimited),
            (500, "unknown_error", "retry your request", Transient),
            (
                400,
                "invalid_grant",
                "something nobody documented",
                Permanent,
            ),
        ];
        for &(status, error, description, kind) in table {
            let e = err(status, error, description);
            assert_eq!(e.kind, kind, "{error}/{description}");
            assert_eq!(e.status, Some(status));
            if kind == Permanent {
                assert!(
                    e.hint.as_deref().is_some_and(|h| !h.is_empty()),
                    "no hint for {error}/{description}"
                );
            }
        }
        assert!(err(400, "invalid_grant", "audience is invalid").try_fallback);
        assert!(err(400, "invalid_client_id", "client identifier invalid")
            .hint
            .unwrap()
            .contains("consumer key is wrong"));
    }

    #[test]
    fn non_json_and_server_errors_are_transient() {
        for (status, body) in [
            (420, "<!DOCTYPE HTML><html>maintenance</html>"),
            (503, "<html>Service Unavailable</html>"),
            (500, ""),
            (502, "Bad gateway"),
            (
                200,
                r#"{"access_token":"00D!abc","instance_url":"https://x.my.sal"#,
            ),
        ] {
            let e = classify(status, body.as_bytes()).unwrap_err();
            assert_eq!(e.kind, Transient, "{status} {body}");
            assert_eq!(e.code, format!("ERROR_HTTP_{status}"));
        }
        assert!(classify(420, b"<html/>").unwrap_err().is_420());
        // A JSON error on a 5xx is transient whatever its code.
        assert_eq!(
            err(503, "invalid_grant", "invalid assertion").kind,
            Transient
        );
    }

    #[test]
    fn success_needs_only_token_instance_and_id() {
        let body = br#"{"access_token":"00Dxx!AR8","instance_url":"https://acme.my.salesforce.com/","id":"https://test.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS","extra":1}"#;
        let g = classify(200, body).unwrap();
        assert_eq!(g.org_id, "00Dxx0000001gPLEAY");
        assert_eq!(g.user_id, "005xx000001SwiUAAS");
        assert_eq!(g.instance_url, "https://acme.my.salesforce.com");
        assert_eq!(g.token_type, None);
        let missing =
            classify(200, br#"{"access_token":"x","id":"https://h/id/a/b"}"#).unwrap_err();
        assert_eq!(missing.kind, Permanent);
        let bad_id = classify(
            200,
            br#"{"access_token":"x","instance_url":"https://h","id":"nope"}"#,
        )
        .unwrap_err();
        assert_eq!(bad_id.code, "unexpected_response");
    }

    #[test]
    fn exhausted_and_budget_errors_explain_themselves() {
        let e = err(400, "invalid_grant", "user hasn't approved this consumer")
            .budget_spent(Duration::from_secs(300));
        assert_eq!(e.kind, Permanent);
        assert!(e.hint.unwrap().contains("5m"));
        let e = classify(420, b"<html/>").unwrap_err().retries_exhausted();
        assert!(e.hint.unwrap().contains("maintenance"));
    }
}
