//! The token endpoint: POST one assertion, and turn whatever comes back (a grant, an OAuth
//! error, an HTML page, a dropped connection) into a [`Grant`] or a classified [`GrantError`].
//! [`classify`] is pure and pinned by a table test of `reference/token-endpoint.md` §4.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::sanitize;
use crate::secret::Secret;
use crate::urls::HostPolicy;

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

/// One complete HTTP answer from a token host.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub content_type: Option<&'a str>,
    /// The `Location` header of a redirect.
    pub location: Option<&'a str>,
    pub body: &'a [u8],
}

/// What a successful answer is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The host the assertion went to (a relative redirect is resolved against it).
    pub token_host: &'a Url,
    /// Which hosts the answer's URLs may name (loopback only for a loopback `--instance-url`).
    pub hosts: &'a HostPolicy,
}

#[derive(Deserialize)]
struct SuccessBody {
    access_token: Option<serde_json::Value>,
    instance_url: Option<serde_json::Value>,
    id: Option<serde_json::Value>,
    token_type: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<serde_json::Value>,
}

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The code of a 407 from a proxy.
pub const PROXY_REFUSED: &str = "proxy_auth_required";

/// The fix for an answer that shows the host is no Salesforce token endpoint.
const NOT_A_TOKEN_ENDPOINT: &str = "this host is not a Salesforce token endpoint: check --instance-url and the list's instance URLs (scratch orgs: https://test.salesforce.com or the org's *.scratch.my.salesforce.com)";

impl GrantError {
    fn new(kind: ErrorKind, code: impl Into<String>, description: impl Into<String>) -> Self {
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
    fn not_a_token_endpoint(mut self, hint: &str) -> Self {
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
    fn proxy_refused(status: Option<u16>) -> Self {
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

/// A Salesforce id: 15 or 18 letters and digits.
fn is_sf_id(s: &str) -> bool {
    matches!(s.len(), 15 | 18) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Split the `id` URL (`https://<login>/id/<orgId>/<userId>`) into org id and user id.
fn ids_from(id: &str) -> Option<(String, String)> {
    let url = Url::parse(id).ok()?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return None;
    }
    let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
    let (Some("id"), Some(org), Some(user), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    (is_sf_id(org) && is_sf_id(user)).then(|| (org.to_string(), user.to_string()))
}

/// A Salesforce access token: `<15-character org id>!<session>`, of sane length, made only of
/// the characters [`sanitize::is_token_char`] knows (so any echo of it is redacted whole).
fn is_session_id(token: &str) -> bool {
    let Some((org, rest)) = token.split_once('!') else {
        return false;
    };
    is_sf_id(org)
        && org.len() == 15
        && (8..=4096).contains(&rest.len())
        && rest.chars().all(sanitize::is_token_char)
}

/// Check a URL of a success answer (`instance_url`, `id`) by the rule for every URL that came
/// from data ([`HostPolicy::check`]): https, on a host a data URL may name; loopback (and plain
/// http to it) only when the run's token host is loopback.
fn check_data_url(raw: &str, name: &str, expect: &Expect<'_>) -> Result<Url, String> {
    let url = Url::parse(raw)
        .map_err(|_| format!("`{name}` {:?} is not a URL", sanitize::excerpt(raw, 80)))?;
    expect
        .hosts
        .check(&url)
        .map_err(|e| format!("`{name}`: {e}"))?;
    Ok(url)
}

/// Check the `instance_url` of a success answer: [`check_data_url`], and nothing but scheme,
/// host and port (the token is later sent to `<instance_url>/services/...`).
fn check_instance_url(raw: &str, expect: &Expect<'_>) -> Result<String, String> {
    let url = check_data_url(raw, "instance_url", expect)?;
    if !matches!(url.path(), "" | "/")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "`instance_url` {:?} carries more than a scheme, host and port (a path, credentials, a query)",
            sanitize::excerpt(raw, 80)
        ));
    }
    // Stored as parsed (scheme, host, port), never as sent: a URL parser forgives tabs,
    // line breaks and trailing control characters that must not reach files or terminals.
    Ok(url.origin().ascii_serialization())
}

/// Check what an auth file in the out dir holds before it is reused: a session id, and an
/// instance URL fleetauth would have accepted from Salesforce. The normalized URL.
pub fn check_stored(token: &str, instance_url: &str, hosts: &HostPolicy) -> Result<String, String> {
    if !is_session_id(token) {
        return Err("its accessToken is not a Salesforce session id".into());
    }
    let url = Url::parse(instance_url).map_err(|_| "its instanceUrl is not a URL".to_string())?;
    // Held to the rule for answers: loopback only when this run's token host is loopback.
    check_instance_url(
        instance_url,
        &Expect {
            token_host: &url,
            hosts,
        },
    )
    .map_err(|e| format!("its instanceUrl: {e}"))
}

/// Classify a complete HTTP answer from the token endpoint. No part of the body is ever quoted
/// as it came: a body that is not an OAuth answer may hold a token.
pub fn classify(answer: &Answer<'_>, expect: &Expect<'_>) -> Result<Grant, GrantError> {
    let status = answer.status;
    let with_status = |mut e: GrantError| {
        e.status = Some(status);
        e
    };
    // A forwarding proxy (plain http) refusing its credentials: no token endpoint spoke.
    if status == 407 {
        return Err(GrantError::proxy_refused(Some(status)));
    }
    if (300..400).contains(&status) {
        let to = answer
            .location
            .and_then(|l| Url::parse(l).or_else(|_| expect.token_host.join(l)).ok())
            .and_then(|u| u.host_str().map(str::to_string))
            .map_or_else(
                || "an unnamed place".to_string(),
                |h| format!("`{}`", sanitize::excerpt(&h, 80)),
            );
        return Err(with_status(
            GrantError::new(
                ErrorKind::Permanent,
                format!("ERROR_HTTP_{status}"),
                format!("the token host redirects to {to}; an assertion is never sent on to another host"),
            )
            .not_a_token_endpoint("point --instance-url (or the list's instance URL) at the Salesforce login host itself, e.g. https://test.salesforce.com, not at a host that redirects"),
        ));
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(answer.body).ok();
    let Some(json) = parsed.filter(serde_json::Value::is_object) else {
        return Err(with_status(not_json(answer)));
    };
    // Read in place: a success answer holds the token, and a copy would outlive it.
    if let Ok(err) = ErrorBody::deserialize(&json) {
        // Salesforce's token endpoint answers OAuth errors with 400 (401 for a client error),
        // a snake_case code, and 420/5xx when it is unwell. A JSON error of any other status
        // or shape (a web framework's 404 page) is some other server.
        let oauth_code = !err.error.is_empty()
            && err
                .error
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_');
        if !oauth_code || !matches!(status, 400 | 401 | 420 | 500..=599) {
            return Err(with_status(
                GrantError::new(
                    ErrorKind::Permanent,
                    format!("ERROR_HTTP_{status}"),
                    format!(
                        "a JSON error that is not an OAuth answer (error {:?})",
                        sanitize::excerpt(&err.error, 60)
                    ),
                )
                .not_a_token_endpoint(NOT_A_TOKEN_ENDPOINT),
            ));
        }
        let description = match &err.error_description {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let mut e = classify_oauth_error(
            &sanitize::excerpt(&err.error, 80),
            &sanitize::excerpt(&description, sanitize::MAX_EXCERPT),
        );
        if status >= 500 || status == 420 {
            e.kind = ErrorKind::Transient;
            e.hint = None;
            e.fleet_wide = false;
        }
        return Err(with_status(e));
    }
    if !(200..300).contains(&status) {
        let mut e = GrantError::new(
            ErrorKind::Transient,
            format!("ERROR_HTTP_{status}"),
            "a JSON answer that is not an OAuth error",
        );
        if status < 500 && status != 420 {
            e = e.not_a_token_endpoint(NOT_A_TOKEN_ENDPOINT);
        }
        return Err(with_status(e));
    }
    validate_success(json, expect).map_err(|why| {
        with_status(
            GrantError::new(ErrorKind::Permanent, "unexpected_response", why)
                .not_a_token_endpoint(NOT_A_TOKEN_ENDPOINT),
        )
    })
}

/// A non-JSON answer: a truncated grant is transient, a maintenance page or a 5xx too; an
/// HTML page in answer to a POST (404, 405, 501, a login page) means the host is no token
/// endpoint, which no retry fixes.
fn not_json(answer: &Answer<'_>) -> GrantError {
    let status = answer.status;
    let text = String::from_utf8_lossy(answer.body.get(..64 * 1024).unwrap_or(answer.body));
    let html = answer
        .content_type
        .is_some_and(|c| c.to_ascii_lowercase().contains("html"))
        || text.trim_start().starts_with('<');
    let size = answer.body.len();
    let description = if size == 0 || text.trim().is_empty() {
        "empty body".to_string()
    } else if status == 200 && !html {
        format!("a success answer that is not valid JSON ({size} bytes, cut short or malformed; not quoted, it may hold a token)")
    } else {
        let what = if html {
            "an HTML page"
        } else {
            "a non-JSON body"
        };
        match sanitize::html_title(&text).map(|t| sanitize::excerpt(t, 80)) {
            Some(title) if html => format!("{what} of {size} bytes titled {title:?}"),
            _ => format!("{what} of {size} bytes"),
        }
    };
    let e = GrantError::new(
        ErrorKind::Transient,
        format!("ERROR_HTTP_{status}"),
        description,
    );
    let not_an_endpoint = match status {
        // The org not ready or in maintenance.
        420 => false,
        // A server that does not implement POST here, whatever page it sends.
        501 => true,
        // A login page or a portal answering 200 with HTML.
        200..=299 => html,
        400..=499 => true,
        _ => false,
    };
    if not_an_endpoint {
        let mut e = e.not_a_token_endpoint(NOT_A_TOKEN_ENDPOINT);
        // The org's own host may not serve it yet: the run's host still can.
        e.try_fallback = true;
        e
    } else {
        e
    }
}

fn validate_success(json: serde_json::Value, expect: &Expect<'_>) -> Result<Grant, String> {
    let body: SuccessBody = serde_json::from_value(json)
        .map_err(|_| "a success answer of an unknown shape".to_string())?;
    let text = |v: Option<serde_json::Value>, name: &str| match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
        Some(serde_json::Value::String(_)) => {
            Err(format!("a success answer with an empty `{name}`"))
        }
        Some(_) => Err(format!("a success answer whose `{name}` is not text")),
        None => Err(format!("a success answer without `{name}`")),
    };
    let token = text(body.access_token, "access_token")?;
    if !is_session_id(&token) {
        return Err(format!(
            "the `access_token` ({} characters, not quoted) is not a Salesforce session id (`<org id>!<session>`)",
            token.chars().count()
        ));
    }
    let instance_url = check_instance_url(&text(body.instance_url, "instance_url")?, expect)?;
    let id = text(body.id, "id")?;
    check_data_url(&id, "id", expect)?;
    let (org_id, user_id) = ids_from(&id).ok_or_else(|| {
        format!(
            "`id` {:?} is not an identity URL (https://<host>/id/<org id>/<user id>)",
            sanitize::excerpt(&id, 120)
        )
    })?;
    let token_type = match body.token_type {
        Some(serde_json::Value::String(t)) => Some(sanitize::excerpt(&t, 20)),
        _ => None,
    };
    Ok(Grant {
        access_token: Secret::new(token),
        instance_url,
        org_id,
        user_id,
        token_type,
    })
}

/// The catalogue of OAuth errors (§4), matched on `error` and the trimmed, case-folded description.
fn classify_oauth_error(error: &str, description: &str) -> GrantError {
    use ErrorKind::*;
    let code = error.trim().to_ascii_lowercase();
    let desc = description.trim().to_ascii_lowercase();
    let (kind, hint, fallback, fleet): (ErrorKind, &str, bool, bool) = match (code.as_str(), desc.as_str()) {
        ("invalid_grant", "user hasn't approved this consumer") => (ReplicationDelay, "", false, false),
        ("invalid_grant", "login rate exceeded") | ("rate_limit_exceeded", _) => (RateLimited, "", false, false),
        ("unknown_error", _) => (Transient, "", false, false),
        ("invalid_grant", "audience is invalid") => (
            Permanent,
            "this host rejects the audience: scratch orgs and sandboxes use https://test.salesforce.com, production orgs and Dev Hubs https://login.salesforce.com (--audience)",
            true,
            true,
        ),
        ("invalid_grant", "audience validation failed") => (
            Permanent,
            "the aud claim is wrong: scratch orgs and sandboxes use https://test.salesforce.com, production orgs and Dev Hubs https://login.salesforce.com (--audience)",
            false,
            true,
        ),
        ("invalid_grant", "invalid assertion") => (
            Permanent,
            "the key does not match the certificate uploaded to the connected app, or the consumer key is wrong: check --jwt-key-file against server.crt and --client-id",
            false,
            true,
        ),
        ("invalid_grant", "expired authorization code") => (
            Permanent,
            "the assertion had already expired on arrival: this machine's clock is wrong; sync it with NTP",
            false,
            true,
        ),
        ("invalid_grant", "invalid user" | "authentication failure") => (
            Permanent,
            "no such user on this login server: check the username and that the org came from this Dev Hub (--instance-url)",
            false,
            false,
        ),
        ("invalid_grant", d) if d.contains("ip restricted") => (
            Permanent,
            "the user's profile restricts login IP ranges or hours: allow this machine's IP address in the profile",
            false,
            false,
        ),
        ("unsupported_grant_type", _) => (
            Permanent,
            "the server did not see a form-encoded JWT bearer grant; a proxy may be rewriting the request",
            false,
            true,
        ),
        ("invalid_client_id", _) => (
            Permanent,
            "the consumer key is wrong, or the connected app is not in the Dev Hub these orgs came from",
            false,
            true,
        ),
        ("invalid_app_access", _) => (
            Permanent,
            "the user lacks the connected app's profile or permission set: assign it in the Dev Hub so scratch orgs inherit it",
            false,
            false,
        ),
        ("inactive_user", _) => (Permanent, "the user is deactivated: reactivate it or drop it from the list", false, false),
        ("inactive_org", _) => (
            Permanent,
            "the org is locked, suspended, deleted or expired: drop it from the list",
            false,
            false,
        ),
        (_, d) if d.contains("external client app") => (
            Permanent,
            "External Client Apps are not replicated into scratch orgs: use a classic connected app",
            false,
            true,
        ),
        _ => (
            Permanent,
            "Salesforce rejected the grant for the reason its error description gives: fix that, then grant it again",
            false,
            false,
        ),
    };
    let mut e = GrantError::new(kind, error.trim(), description.trim());
    e.hint = (!hint.is_empty()).then(|| hint.to_string());
    e.try_fallback = fallback;
    e.fleet_wide = fleet;
    e
}

/// Classify a request that produced no complete HTTP answer.
pub fn classify_transport(err: &reqwest::Error) -> GrantError {
    // The source chain says what happened (refused, reset, DNS, a certificate); it never holds
    // the request body. It may name a proxy URL: credentials in it are hidden by the excerpt.
    let mut description = err.to_string();
    let mut source = std::error::Error::source(err);
    let mut certificate = None;
    let mut proxy_refused = false;
    while let Some(s) = source {
        // rustls' error arrives wrapped in an io::Error, whose `source` skips it.
        let tls = s.downcast_ref::<rustls::Error>().or_else(|| {
            s.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            if matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            ) {
                certificate = Some(tls.to_string());
            }
        }
        let text = s.to_string();
        // A CONNECT tunnel the proxy answered with 407 (hyper-util's words).
        proxy_refused |= text.contains("proxy authorization required");
        // However the layers above wrap it, rustls says so in these words.
        if certificate.is_none() && text.contains("invalid peer certificate") {
            certificate = text
                .find("invalid peer certificate")
                .map(|at| text[at..].to_string());
        }
        description.push_str(": ");
        description.push_str(&text);
        source = s.source();
    }
    let description = sanitize::excerpt(&description, sanitize::MAX_EXCERPT);
    if proxy_refused {
        return GrantError::proxy_refused(None);
    }
    if let Some(why) = certificate {
        let mut e = GrantError::new(
            ErrorKind::Permanent,
            "untrusted_certificate",
            sanitize::excerpt(&why, 120),
        )
        .not_a_token_endpoint(crate::tls::UNTRUSTED_HINT);
        e.try_fallback = false;
        return e;
    }
    let (code, fallback) = if err.is_timeout() {
        ("timeout", false)
    } else if err.is_connect() {
        ("connect_error", true)
    } else if err.is_body() || err.is_decode() {
        ("truncated_body", false)
    } else {
        ("connection_reset", false)
    };
    let mut e = GrantError::new(ErrorKind::Transient, code, description);
    e.try_fallback = fallback;
    e
}

/// The largest answer read from a token host; a real one is under 2 KB.
const MAX_ANSWER: usize = 256 * 1024;

/// One pooled HTTP client for the whole run: the platform's trust store plus the user's CAs,
/// the proxy from the environment, and no redirects (an assertion never goes elsewhere).
#[derive(Debug, Clone)]
pub struct TokenClient {
    http: reqwest::Client,
    hosts: HostPolicy,
    proxies: crate::tls::Proxies,
}

impl TokenClient {
    pub fn new(
        request_timeout: Duration,
        pool_size: usize,
        net: &crate::tls::Network,
    ) -> Result<Self, reqwest::Error> {
        let http = net
            .builder(request_timeout)
            .pool_max_idle_per_host(pool_size)
            .build()?;
        Ok(Self {
            http,
            hosts: net.hosts.clone(),
            proxies: net.proxies.clone(),
        })
    }

    /// POST one assertion to `endpoint` and classify the answer; a proxy that refused its
    /// credentials is named in the fix (`host:port` and its variable).
    pub async fn request(
        &self,
        endpoint: &Url,
        assertion: &Secret<String>,
    ) -> Result<Grant, GrantError> {
        self.post(endpoint, assertion).await.map_err(|mut e| {
            if e.is_proxy_refusal() {
                e.hint = Some(self.proxies.refused_hint(endpoint));
            }
            e
        })
    }

    async fn post(&self, endpoint: &Url, assertion: &Secret<String>) -> Result<Grant, GrantError> {
        let form = [
            ("grant_type", GRANT_TYPE),
            ("assertion", assertion.expose().as_str()),
        ];
        let mut response = self
            .http
            .post(endpoint.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (content_type, location) = (
            header(reqwest::header::CONTENT_TYPE),
            header(reqwest::header::LOCATION),
        );
        // Read at most MAX_ANSWER bytes: a hostile host cannot make the run hold megabytes.
        // The answer holds the token in clear: wiped once it is classified.
        let mut body = zeroize::Zeroizing::new(Vec::new());
        while let Some(chunk) = response.chunk().await.map_err(|e| classify_transport(&e))? {
            let room = MAX_ANSWER.saturating_sub(body.len());
            body.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
            if room <= chunk.len() {
                break;
            }
        }
        let answer = Answer {
            status,
            content_type: content_type.as_deref(),
            location: location.as_deref(),
            body: &body,
        };
        classify(
            &answer,
            &Expect {
                token_host: endpoint,
                hosts: &self.hosts,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::answers::RawAnswer;
    use ErrorKind::*;

    fn loopback() -> Url {
        Url::parse("http://127.0.0.1:9/services/oauth2/token").unwrap()
    }

    fn classify_raw(raw: &RawAnswer) -> Result<Grant, GrantError> {
        let host = loopback();
        let hosts = HostPolicy::default().with_host_of(&host);
        classify(
            &Answer {
                status: raw.status,
                content_type: raw.header("content-type"),
                location: raw.header("location"),
                body: raw.body.as_bytes(),
            },
            &Expect {
                token_host: &host,
                hosts: &hosts,
            },
        )
    }

    fn answer(status: u16, body: &str) -> Result<Grant, GrantError> {
        classify_raw(&RawAnswer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        })
    }

    fn success(token: &str, instance: &str, id: &str) -> Result<Grant, GrantError> {
        answer(
            200,
            &serde_json::json!({"access_token": token, "instance_url": instance, "id": id})
                .to_string(),
        )
    }

    const TOKEN: &str =
        "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX.LVpxezPwuX5VAIrrbbHMuol7GQxnMe";
    const ID: &str = "https://test.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS";

    /// Every recorded answer in fixtures/answers is classified as its directory says.
    #[test]
    fn every_recorded_answer_is_classified_as_the_reference_says() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/answers");
        let mut seen = 0;
        for class in std::fs::read_dir(&root).unwrap() {
            let class = class.unwrap().path();
            if !class.is_dir() {
                continue;
            }
            let name = class.file_name().unwrap().to_string_lossy().to_string();
            for file in std::fs::read_dir(&class).unwrap() {
                let file = file.unwrap().path();
                let raw = RawAnswer::parse(&std::fs::read_to_string(&file).unwrap())
                    .unwrap_or_else(|| panic!("{} does not parse", file.display()));
                let e = classify_raw(&raw).expect_err("no recorded answer is a grant");
                let what = format!("{}: {e:?}", file.display());
                assert_eq!(e.status, Some(raw.status), "{what}");
                match name.as_str() {
                    "replication_delay" => assert_eq!(e.kind, ReplicationDelay, "{what}"),
                    "rate_limited" => assert_eq!(e.kind, RateLimited, "{what}"),
                    "transient" => {
                        assert_eq!(e.kind, Transient, "{what}");
                        assert!(!e.fleet_wide, "{what}");
                    }
                    "permanent" => {
                        assert_eq!(e.kind, Permanent, "{what}");
                        assert!(!e.fleet_wide, "{what}");
                    }
                    "fleet_wide" => {
                        assert_eq!(e.kind, Permanent, "{what}");
                        assert!(e.fleet_wide, "{what}");
                    }
                    other => panic!("unknown class directory {other}"),
                }
                if e.kind == Permanent {
                    assert!(
                        e.hint.as_deref().is_some_and(|h| !h.is_empty()),
                        "no hint: {what}"
                    );
                }
                seen += 1;
            }
        }
        assert!(seen >= 30, "only {seen} recorded answers");
    }

    #[test]
    fn matching_is_trimmed_and_case_insensitive() {
        let e = answer(
            400,
            r#"{"error":"invalid_grant","error_description":"  User Hasn't Approved This Consumer "}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ReplicationDelay);
        let e = answer(
            400,
            r#"{"error":"invalid_grant","error_description":"audience is invalid"}"#,
        )
        .unwrap_err();
        assert!(e.try_fallback && e.fleet_wide);
        // A JSON error on a 5xx is transient whatever its code.
        let e = answer(
            503,
            r#"{"error":"invalid_grant","error_description":"invalid assertion"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, Transient);
        assert!(!e.fleet_wide);
    }

    #[test]
    fn success_needs_a_session_id_an_allowed_instance_and_an_identity_url() {
        let g = success(TOKEN, "https://acme.my.salesforce.com/", ID).unwrap();
        assert_eq!(g.org_id, "00Dxx0000001gPLEAY");
        assert_eq!(g.user_id, "005xx000001SwiUAAS");
        assert_eq!(g.instance_url, "https://acme.my.salesforce.com");
        let bad = |token: &str, instance: &str, id: &str| {
            let e = success(token, instance, id).unwrap_err();
            assert_eq!(e.code, "unexpected_response", "{e:?}");
            assert!(e.fleet_wide && e.kind == Permanent, "{e:?}");
            assert!(!e.description.contains("AR8AQ"), "{e:?}");
            e
        };
        bad("", "https://acme.my.salesforce.com", ID);
        bad("x", "https://acme.my.salesforce.com", ID);
        bad(
            "not a token with spaces!!!!!!!!!!",
            "https://acme.my.salesforce.com",
            ID,
        );
        let e = bad(TOKEN, "http://evil.example.com", ID);
        assert!(e.description.contains("not https"), "{e:?}");
        bad(TOKEN, "javascript:alert(1)", ID);
        let e = bad(TOKEN, "https://evil.example.com", ID);
        assert!(e.description.contains("not a Salesforce domain"), "{e:?}");
        bad(TOKEN, "https://user:pw@acme.my.salesforce.com", ID);
        bad(TOKEN, "http://acme.my.salesforce.com", ID);
        bad(TOKEN, "https://acme.my.salesforce.com", "nope");
        bad(TOKEN, "https://acme.my.salesforce.com/evil/path", ID);
        let e = bad(
            TOKEN,
            "https://acme.my.salesforce.com",
            "https://evil.example.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
        );
        assert!(e.description.contains("`id`"), "{e:?}");
        bad(
            TOKEN,
            "https://acme.my.salesforce.com",
            "http://test.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
        );
        bad(TOKEN, "https://acme.my.salesforce.com", "https://h/id/a/b");
        // Loopback over plain http only from a loopback token host (the emulator).
        assert!(success(TOKEN, "http://127.0.0.1:9", ID).is_ok());
        // Missing fields and wrong types.
        let e = answer(200, r#"{"access_token":"x","id":"https://h/id/a/b"}"#).unwrap_err();
        assert_eq!(e.code, "unexpected_response");
        let e = answer(
            200,
            r#"{"access_token":1,"instance_url":"https://a.salesforce.com","id":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "unexpected_response");
    }

    #[test]
    fn a_remote_token_host_cannot_point_the_token_at_loopback() {
        let host = Url::parse("https://test.salesforce.com/services/oauth2/token").unwrap();
        let hosts = HostPolicy::default().with_host_of(&host);
        for instance in [
            "https://127.0.0.1:9",
            "http://127.0.0.1:9",
            "https://localhost",
        ] {
            let body =
                serde_json::json!({"access_token": TOKEN, "instance_url": instance, "id": ID})
                    .to_string();
            let e = classify(
                &Answer {
                    status: 200,
                    content_type: Some("application/json"),
                    location: None,
                    body: body.as_bytes(),
                },
                &Expect {
                    token_host: &host,
                    hosts: &hosts,
                },
            )
            .unwrap_err();
            assert!(
                e.fleet_wide && e.description.contains("loopback"),
                "{instance}: {e:?}"
            );
        }
        // A stored auth file naming loopback is not reused by a run against Salesforce.
        assert!(check_stored(TOKEN, "http://127.0.0.1:9", &hosts).is_err());
        let local = HostPolicy::default().with_host_of(&loopback());
        assert!(check_stored(TOKEN, "http://127.0.0.1:9", &local).is_ok());
    }

    #[test]
    fn no_answer_is_ever_quoted_with_a_token_in_it() {
        for (status, ct, body) in [
            (
                200,
                "application/json",
                format!(r#"{{"access_token":"{TOKEN}","instance_url":"https://x.my.sal"#),
            ),
            (
                200,
                "text/html",
                format!("<html><title>{TOKEN}</title></html>"),
            ),
            (
                200,
                "application/json",
                format!(r#"{{"access_token":"{TOKEN}"}} trailing"#),
            ),
            (
                400,
                "application/json",
                format!(r#"{{"error":"invalid_grant","error_description":"bad {TOKEN}"}}"#),
            ),
            (500, "text/plain", format!("oops {TOKEN}")),
        ] {
            let e = classify_raw(&RawAnswer {
                status,
                headers: vec![("Content-Type".into(), ct.into())],
                body,
            })
            .unwrap_err();
            let all = format!("{} {} {:?}", e.code, e.description, e.hint);
            assert!(!all.contains("AR8AQ"), "{all}");
        }
    }

    #[test]
    fn every_character_a_session_id_may_hold_is_one_the_excerpt_redacts() {
        // A token the client accepts, echoed by a server, is cut out whole: the two agree on
        // the alphabet.
        for c in (0..=0x7f_u8).map(char::from) {
            let token = format!("00Dxx0000001gPL!AQ0AQSecretA{c}SecretBSecretCSecretD");
            if is_session_id(&token) {
                let e = sanitize::excerpt(&format!("bad {token} x"), 200);
                assert!(!e.contains("Secret"), "{c:?}: {e}");
            }
        }
        assert!(is_session_id("00Dxx0000001gPL!AQ0AQ/Part2/xyz=="));
        let e = answer(
            400,
            r#"{"error":"invalid_grant","error_description":"bad 00Dxx0000001gPL!AQ0AQ/Part2abc/xyz"}"#,
        )
        .unwrap_err();
        assert!(
            !e.description.contains("Part2abc") && !e.description.contains("xyz"),
            "{e:?}"
        );
    }

    #[test]
    fn server_text_is_capped_and_escaped() {
        let huge = "x ".repeat(5_000_000);
        let e = answer(
            400,
            &serde_json::json!({"error": "invalid_grant", "error_description": huge}).to_string(),
        )
        .unwrap_err();
        assert!(e.description.chars().count() <= sanitize::MAX_EXCERPT + 1);
        let e = answer(
            400,
            r#"{"error":"invalid_grant","error_description":"\u001b[2J\u001b[31mpwned"}"#,
        )
        .unwrap_err();
        assert!(!e.description.contains('\u{1b}'), "{:?}", e.description);
    }

    #[test]
    fn a_json_error_from_another_kind_of_server_is_fleet_wide() {
        for (status, body) in [
            (
                404,
                r#"{"timestamp":"x","status":404,"error":"Not Found","path":"/services/oauth2/token"}"#,
            ),
            (405, r#"{"error":"Method Not Allowed"}"#),
            (400, r#"{"status":400,"error":"Bad Request"}"#),
            (200, r#"{"error":"invalid_grant","error_description":"x"}"#),
            (403, r#"{"error":"forbidden","error_description":"x"}"#),
        ] {
            let e = answer(status, body).unwrap_err();
            assert!(
                e.fleet_wide && e.kind == Permanent,
                "{status} {body}: {e:?}"
            );
        }
        let e = answer(401, r#"{"error":"invalid_client","error_description":"x"}"#).unwrap_err();
        assert!(!e.fleet_wide, "{e:?}");
    }

    #[test]
    fn a_407_is_permanent_fleet_wide_and_never_tried_elsewhere() {
        let e = classify_raw(&RawAnswer {
            status: 407,
            headers: vec![("Proxy-Authenticate".into(), "Basic realm=\"corp\"".into())],
            body: "<html><title>Access Denied</title></html>".into(),
        })
        .unwrap_err();
        assert_eq!(e.code, PROXY_REFUSED, "{e:?}");
        assert!(
            e.kind == Permanent && e.fleet_wide && !e.try_fallback,
            "{e:?}"
        );
        assert!(e.is_proxy_refusal());
        let policy = crate::retry::Policy::default();
        let history = crate::retry::History {
            attempts: 1,
            ..Default::default()
        };
        assert!(matches!(
            policy.decide(e.kind, e.is_420(), &history, 0.5),
            crate::retry::Decision::GiveUp { .. }
        ));
    }

    #[test]
    fn a_redirect_is_permanent_and_names_where_it_pointed() {
        let e = classify_raw(&RawAnswer {
            status: 308,
            headers: vec![("Location".into(), "https://collector.evil.example/x".into())],
            body: String::new(),
        })
        .unwrap_err();
        assert!(e.fleet_wide && e.kind == Permanent);
        assert!(e.description.contains("collector.evil.example"), "{e:?}");
    }

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
