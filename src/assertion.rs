//! Assertions: the RS256 JWT the token endpoint exchanges for an access token. A new one is
//! signed for every attempt, so `exp` is always fresh. The compact JWS is assembled here
//! (base64url of the fixed header, of the claims' JSON, of the signature) and signed with the
//! key parsed once in `credentials`; no per-signature key parsing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

use crate::credentials::SigningKey;
use crate::secret::Secret;

/// Salesforce accepts an `exp` at most three minutes ahead.
pub const MAX_LIFETIME: Duration = Duration::from_secs(180);

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Claims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    /// Seconds since the epoch, UTC (not milliseconds, unlike sfdx-core).
    pub exp: u64,
}

/// Signs assertions for one consumer key and audience with one parsed key.
#[derive(Debug)]
pub struct Signer {
    key: SigningKey,
    client_id: String,
    audience: String,
    /// base64url of `{"alg":"RS256","typ":"JWT"}`, the same for every assertion.
    header: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the assertion: {0}")]
pub struct SignError(String);

impl Signer {
    pub fn new(key: SigningKey, client_id: String, audience: String) -> Self {
        Self {
            key,
            client_id,
            audience,
            header: URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The claims an assertion for `username` carries if signed at `now`.
    pub fn claims<'a>(&'a self, username: &'a str, now: SystemTime) -> Claims<'a> {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Claims {
            iss: &self.client_id,
            sub: username,
            aud: &self.audience,
            exp: secs + MAX_LIFETIME.as_secs(),
        }
    }

    pub fn sign(&self, username: &str) -> Result<Secret<String>, SignError> {
        self.sign_for(username, &self.audience)
    }

    /// An assertion for `username` with another `aud` (the Dev Hub's, `login.salesforce.com`),
    /// signed with the same key and consumer key.
    pub fn sign_for(&self, username: &str, audience: &str) -> Result<Secret<String>, SignError> {
        let mut claims = self.claims(username, SystemTime::now());
        claims.aud = audience;
        let claims = serde_json::to_vec(&claims).map_err(|e| SignError(e.to_string()))?;
        // header.claims.signature: 2048-bit signatures are 342 base64 characters.
        let mut jwt = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 350);
        jwt.push_str(&self.header);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jwt);
        let signature = self
            .key
            .sign_rs256(jwt.as_bytes())
            .map_err(|e| SignError(e.to_string()))?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        Ok(Secret::new(jwt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{parse, KeyOrigin};
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/fixtures/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn assertion_verifies_against_the_certificate_with_the_salesforce_claims() {
        let key = parse(fixture("server.key"), KeyOrigin::File("k".into())).unwrap();
        let signer = Signer::new(key, "3MVGkey".into(), "https://test.salesforce.com".into());
        let jwt = signer.sign("a@x.com").unwrap();
        let cert = DecodingKey::from_rsa_pem(&fixture("server.crt")).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://test.salesforce.com"]);
        let data =
            jsonwebtoken::decode::<serde_json::Value>(jwt.expose(), &cert, &validation).unwrap();
        assert_eq!(data.claims["iss"], "3MVGkey");
        assert_eq!(data.claims["sub"], "a@x.com");
        let exp = data.claims["exp"].as_u64().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(exp > now && exp <= now + 180, "exp {exp} now {now}");
        let header = jsonwebtoken::decode_header(jwt.expose()).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
    }

    #[test]
    fn a_tampered_assertion_does_not_verify() {
        let key = parse(fixture("server.key"), KeyOrigin::File("k".into())).unwrap();
        let signer = Signer::new(key, "3MVGkey".into(), "https://test.salesforce.com".into());
        let jwt = signer.sign("a@x.com").unwrap();
        let forged = signer.sign("b@x.com").unwrap();
        let (head, _) = jwt.expose().rsplit_once('.').unwrap();
        let (_, other_signature) = forged.expose().rsplit_once('.').unwrap();
        let cert = DecodingKey::from_rsa_pem(&fixture("server.crt")).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://test.salesforce.com"]);
        let mixed = format!("{head}.{other_signature}");
        assert!(jsonwebtoken::decode::<serde_json::Value>(&mixed, &cert, &validation).is_err());
    }
}
