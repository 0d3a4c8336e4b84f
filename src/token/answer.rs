//! What a token host answered, classified: a redirect, a 407, an OAuth error (looked up in
//! `catalogue.rs`), a JSON body of some other server, an HTML page, or a success answer
//! (checked by `success.rs`). [`classify`] is pure: no part of a body is ever quoted as
//! it came, as a body that is not an OAuth answer may hold a token.

use serde::Deserialize;
use url::Url;

use super::catalogue::classify_oauth_error;
use super::grant::{ErrorKind, Grant, GrantError};
use super::success::{validate_success, Expect};
use crate::sanitize;

/// One complete HTTP answer from a token host.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub content_type: Option<&'a str>,
    /// The `Location` header of a redirect.
    pub location: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<serde_json::Value>,
}

/// The fix for an answer that shows the host is no Salesforce token endpoint.
const NOT_A_TOKEN_ENDPOINT: &str = "this host is not a Salesforce token endpoint: check --instance-url and the list's instance URLs (scratch orgs: https://test.salesforce.com or the org's *.scratch.my.salesforce.com)";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::answers::RawAnswer;
    use crate::token::testing::{answer, classify_raw, recorded_answers, TOKEN};
    use crate::token::PROXY_REFUSED;
    use ErrorKind::*;

    /// Every recorded answer in fixtures/answers is classified as its directory says.
    #[test]
    fn every_recorded_answer_is_classified_as_the_reference_says() {
        let mut seen = 0;
        for (file, raw) in recorded_answers() {
            let name = file
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
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
}
