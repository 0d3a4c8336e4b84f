//! A success answer, checked field by field before its token is trusted: a Salesforce session
//! id, an `instance_url` on a host a data URL may name, and an identity URL naming the org and
//! the user. The same check holds an auth file in the out dir before it is reused.

use serde::Deserialize;
use url::Url;

use super::grant::Grant;
use crate::sanitize;
use crate::secret::Secret;
use crate::urls::HostPolicy;

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
        .check_as_written(raw, &url)
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

pub(super) fn validate_success(
    json: serde_json::Value,
    expect: &Expect<'_>,
) -> Result<Grant, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::testing::{answer, loopback, success, ID, TOKEN};
    use crate::token::{classify, Answer, ErrorKind::Permanent};

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
}
