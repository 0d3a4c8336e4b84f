//! The emulator's judgement of one token request: checks the form, the signature against the
//! certificate, `iss`, `aud`, `exp` and `sub`, in the order Salesforce reports them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::EmulatorConfig;

/// How far in the past an `exp` may be and still be accepted.
const CLOCK_SKEW_SECS: u64 = 180;

pub(crate) enum Verdict {
    /// Grant a token to this user.
    Grant { username: String },
    /// An OAuth error body with this status.
    Reject {
        status: u16,
        error: String,
        description: String,
        username: Option<String>,
    },
}

fn reject(status: u16, error: &str, description: &str, username: Option<&str>) -> Verdict {
    Verdict::Reject {
        status,
        error: error.to_string(),
        description: description.to_string(),
        username: username.map(str::to_string),
    }
}

#[derive(Deserialize)]
struct Form {
    grant_type: Option<String>,
    assertion: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    exp: Option<serde_json::Value>,
}

pub(crate) struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub(crate) fn new(certificate_pem: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
        let key = DecodingKey::from_rsa_pem(certificate_pem)?;
        let mut validation = Validation::new(Algorithm::RS256);
        // The claims are checked one by one below, to give Salesforce's own answers.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(Self { key, validation })
    }

    pub(crate) fn judge(
        &self,
        config: &EmulatorConfig,
        own_url: &str,
        content_type: Option<&str>,
        body: &[u8],
        since_start: Duration,
    ) -> Verdict {
        let form_encoded = content_type.is_some_and(|c| {
            c.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
        let form: Option<Form> = form_encoded
            .then(|| serde_urlencoded::from_bytes(body).ok())
            .flatten();
        let Some(form) = form.filter(|f| {
            f.grant_type.as_deref() == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        }) else {
            return reject(
                400,
                "unsupported_grant_type",
                "grant type not supported",
                None,
            );
        };
        let Some(assertion) = form.assertion else {
            return reject(400, "invalid_grant", "invalid assertion", None);
        };
        let claims = match jsonwebtoken::decode::<Claims>(&assertion, &self.key, &self.validation) {
            Ok(data) => data.claims,
            Err(_) => return reject(400, "invalid_grant", "invalid assertion", None),
        };
        if claims.iss.as_deref() != Some(config.client_id.as_str()) {
            return reject(400, "invalid_client_id", "client identifier invalid", None);
        }
        let aud_ok = match &claims.aud {
            // Its own URL is accepted too: `sf` logs in with aud = the login URL it was given.
            Some(serde_json::Value::String(a)) => config
                .audiences
                .iter()
                .map(String::as_str)
                .chain([own_url])
                .any(|x| x.trim_end_matches('/') == a.trim_end_matches('/')),
            _ => false,
        };
        if !aud_ok {
            return reject(
                400,
                "invalid_grant",
                "audience is invalid",
                claims.sub.as_deref(),
            );
        }
        // NumericDate seconds; sfdx-core sends milliseconds (13 digits) and Salesforce takes it.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Salesforce tolerates a few minutes of clock skew, and CumulusCI relies on it: its
        // `exp` is the second it signed in (token-endpoint.md, the `exp` rule).
        let exp = claims.exp.as_ref().and_then(serde_json::Value::as_u64);
        if exp.is_none_or(|e| e.saturating_add(CLOCK_SKEW_SECS) < now) {
            return reject(
                400,
                "invalid_grant",
                "expired authorization code",
                claims.sub.as_deref(),
            );
        }
        let Some(username) = claims.sub else {
            return reject(400, "invalid_grant", "invalid user", None);
        };
        let user = match (config.users.get(&username), config.any_user) {
            (Some(user), _) => user.clone(),
            (None, Some(delay)) => super::User {
                replication_delay: delay,
                ..super::User::default()
            },
            (None, None) => return reject(400, "invalid_grant", "invalid user", Some(&username)),
        };
        if let Some(s) = &user.scripted {
            return reject(s.status, &s.error, &s.description, Some(&username));
        }
        if since_start < user.replication_delay {
            return reject(
                400,
                "invalid_grant",
                "user hasn't approved this consumer",
                Some(&username),
            );
        }
        Verdict::Grant { username }
    }
}
