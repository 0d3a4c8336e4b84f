//! The HTTP client of the token endpoint: POST one assertion through the run's pooled client
//! (no redirects, a capped answer) and hand the answer to [`classify`]; a request that got no
//! complete answer is classified by [`classify_transport`].

use std::time::Duration;

use url::Url;

use super::answer::{classify, Answer};
use super::grant::{ErrorKind, Grant, GrantError};
use super::success::Expect;
use crate::sanitize;
use crate::secret::Secret;
use crate::urls::HostPolicy;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

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
