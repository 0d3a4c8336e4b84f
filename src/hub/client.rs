//! Talking to the Dev Hub: its own JWT grant (the run's key, the hub's audience and host,
//! classified and validated by `token` like any grant), then REST with its token: the
//! ScratchOrgInfo query followed through every `nextRecordsUrl`, and `/limits`. The token only
//! ever goes to the hub's own instance URL: a `nextRecordsUrl` that is not a relative path on
//! that host ends the query.

use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use super::{diagnose, HubError, HubOptions};
use crate::assertion::Signer;
use crate::secret::Secret;
use crate::tls::Network;
use crate::token::{ErrorKind, GrantError, TokenClient};
use crate::urls;

/// The REST API version fleetauth asks for.
pub const API_VERSION: &str = "v63.0";

/// The largest query page read (2,000 wide rows are about 2 MB).
const MAX_PAGE: usize = 32 * 1024 * 1024;

/// At most this many rows are read from one query.
const MAX_ROWS: usize = 500_000;

/// Transient failures (5xx, resets) of one hub request are retried this often.
const RETRIES: u32 = 2;

/// A hub session: its instance URL (checked) and its token (a secret).
#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    pub instance_url: Url,
    pub token: Secret<String>,
    /// Taken from the cache rather than granted now.
    pub reused: bool,
}

/// One failed REST call to the hub.
#[derive(Debug, Clone)]
pub struct RestError {
    pub status: Option<u16>,
    /// Salesforce's `errorCode` (`INVALID_TYPE`, `INVALID_SESSION_ID`, ...) or a network name.
    pub code: String,
    pub message: String,
}

impl RestError {
    fn new(status: Option<u16>, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn session_expired(&self) -> bool {
        self.status == Some(401) || self.code == "INVALID_SESSION_ID"
    }

    fn transient(&self) -> bool {
        self.status.is_none_or(|s| s >= 500) && self.code != "hostile_answer"
    }
}

/// The hub's HTTP side: one token client for its grant, one REST client (no redirects).
pub struct HubClient {
    tokens: TokenClient,
    http: reqwest::Client,
    network: Network,
    /// REST requests sent and the time they took, for the report.
    pub requests: std::sync::atomic::AtomicU32,
    pub spent: std::sync::Mutex<Duration>,
}

impl HubClient {
    pub fn new(network: &Network, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            tokens: TokenClient::new(timeout, 2, network)?,
            http: network.builder(timeout).build()?,
            network: network.clone(),
            requests: Default::default(),
            spent: Default::default(),
        })
    }

    /// Grant the hub with `signer`'s key and consumer key, and the hub's audience and host.
    pub async fn login(&self, options: &HubOptions, signer: &Signer) -> Result<Session, HubError> {
        let assertion = signer
            .sign_for(&options.username, &options.audience)
            .map_err(|e| HubError::Usage(e.to_string()))?;
        let endpoint = urls::token_endpoint(&options.host);
        let mut attempt = 0;
        let grant = loop {
            match self.tokens.request(&endpoint, &assertion).await {
                Ok(grant) => break grant,
                Err(e) if e.kind == ErrorKind::Transient && !e.fleet_wide && attempt < RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                }
                Err(error) => {
                    return Err(HubError::Login {
                        username: options.username.clone(),
                        fix: diagnose::hub_login(&error, options),
                        error: Box::new(error),
                    })
                }
            }
        };
        let instance_url = Url::parse(&grant.instance_url)
            .map_err(|e| HubError::Usage(format!("the hub's instance URL is not a URL: {e}")))?;
        Ok(Session {
            username: options.username.clone(),
            instance_url,
            token: grant.access_token,
            reused: false,
        })
    }

    /// Every row `soql` selects, following `nextRecordsUrl` to the end.
    pub async fn query(&self, session: &Session, soql: &str) -> Result<Vec<Value>, RestError> {
        let base = &session.instance_url;
        let mut url = base
            .join(&format!("/services/data/{API_VERSION}/query"))
            .map_err(|e| RestError::new(None, "bad_url", e.to_string()))?;
        url.query_pairs_mut().append_pair("q", soql);
        let mut rows = Vec::new();
        loop {
            let page = self.get(session, &url).await?;
            let records = page
                .get("records")
                .and_then(Value::as_array)
                .ok_or_else(|| hostile("a query answer without `records`"))?;
            let done = page.get("done").and_then(Value::as_bool).unwrap_or(true);
            if !done && records.is_empty() {
                return Err(hostile("a query page with no records that is not the last"));
            }
            rows.extend(records.iter().cloned());
            if rows.len() > MAX_ROWS {
                return Err(hostile("a query answer of more than 500,000 rows"));
            }
            if done {
                return Ok(rows);
            }
            let next = page
                .get("nextRecordsUrl")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    hostile("a query page that is not done and has no `nextRecordsUrl`")
                })?;
            url = next_url(base, next).map_err(|why| hostile(&why))?;
        }
    }

    /// `/limits`: the hub's `ActiveScratchOrgs` and `DailyScratchOrgs` among others.
    pub async fn limits(&self, session: &Session) -> Result<Value, RestError> {
        let url = session
            .instance_url
            .join(&format!("/services/data/{API_VERSION}/limits"))
            .map_err(|e| RestError::new(None, "bad_url", e.to_string()))?;
        self.get(session, &url).await
    }

    /// One authenticated GET, retried on transient failures; the JSON answer or its error.
    async fn get(&self, session: &Session, url: &Url) -> Result<Value, RestError> {
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            let result = self.get_once(session, url).await;
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut spent) = self.spent.lock() {
                *spent += started.elapsed();
            }
            match result {
                Err(e) if e.transient() && attempt < RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    async fn get_once(&self, session: &Session, url: &Url) -> Result<Value, RestError> {
        // The token goes to the hub's own host only, as the grant's checked instance URL says.
        if url.origin() != session.instance_url.origin() {
            return Err(hostile("a URL off the hub's own host"));
        }
        self.network
            .hosts
            .check(url)
            .map_err(|e| RestError::new(None, "hostile_answer", e))?;
        let mut response = self
            .http
            .get(url.clone())
            .bearer_auth(session.token.expose())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                let e = crate::token::classify_transport(&e);
                RestError::new(None, &e.code, e.description)
            })?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            let e = crate::token::classify_transport(&e);
            RestError::new(None, &e.code, e.description)
        })? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_PAGE {
                return Err(hostile("an answer larger than 32 MB"));
            }
        }
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if (200..300).contains(&status) {
            return json.filter(Value::is_object).ok_or_else(|| {
                RestError::new(
                    Some(status),
                    "unexpected_response",
                    format!(
                        "a {status} answer that is not a JSON object ({} bytes, not quoted)",
                        body.len()
                    ),
                )
            });
        }
        // Salesforce's REST errors: `[{"message": ..., "errorCode": ...}]`.
        let first = json
            .as_ref()
            .and_then(|j| j.get(0))
            .cloned()
            .unwrap_or_default();
        let text = |name: &str| {
            first
                .get(name)
                .and_then(Value::as_str)
                .map(|s| crate::sanitize::excerpt(s, 200))
        };
        let code = text("errorCode").unwrap_or_else(|| format!("ERROR_HTTP_{status}"));
        let message = text("message").unwrap_or_else(|| format!("HTTP {status}"));
        Err(RestError::new(Some(status), &code, message))
    }
}

fn hostile(why: &str) -> RestError {
    RestError::new(None, "hostile_answer", why.to_string())
}

/// `next` as a URL on `base`'s host: only a relative path under `/services/data/`, so a
/// hostile answer cannot send the hub's token anywhere else.
pub fn next_url(base: &Url, next: &str) -> Result<Url, String> {
    let shown = || crate::sanitize::excerpt(next, 80);
    let relative = next.starts_with("/services/data/")
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.contains("..")
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if !relative {
        return Err(format!(
            "a `nextRecordsUrl` {:?} that is not a relative /services/data/ path on the hub's host",
            shown()
        ));
    }
    let url = base
        .join(next)
        .map_err(|e| format!("a `nextRecordsUrl` {:?} that is no URL ({e})", shown()))?;
    if url.origin() != base.origin() {
        return Err(format!(
            "a `nextRecordsUrl` {:?} that leaves the hub's host",
            shown()
        ));
    }
    Ok(url)
}

impl From<&RestError> for GrantError {
    fn from(e: &RestError) -> Self {
        let mut g = GrantError::permanent(&e.code, e.message.clone(), "");
        g.hint = None;
        g.status = e.status;
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_records_url_stays_on_the_hubs_host() {
        let base = Url::parse("https://hub.my.salesforce.com").unwrap();
        assert_eq!(
            next_url(&base, "/services/data/v63.0/query/01gXX-2000")
                .unwrap()
                .as_str(),
            "https://hub.my.salesforce.com/services/data/v63.0/query/01gXX-2000"
        );
        for hostile in [
            "https://evil.example.com/services/data/v63.0/query/x",
            "//evil.example.com/services/data/v63.0/query/x",
            "/\\evil.example.com/services/data/",
            "/services/data/../../x",
            "/services/data/v63.0/query/x\n",
            "query/x",
            "/other/path",
            "http://hub.my.salesforce.com/services/data/v63.0/query/x",
        ] {
            assert!(next_url(&base, hostile).is_err(), "{hostile}");
        }
    }
}
