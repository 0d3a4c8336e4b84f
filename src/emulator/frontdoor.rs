//! Single-use login links (reference dev-hub.md §6): `GET`/`POST
//! /services/oauth2/singleaccess` with a session's bearer token answers `{"frontdoor_uri":
//! "<base>/secur/frontdoor.jsp?otp=…&cshc=…"}`, and `GET /secur/frontdoor.jsp` accepts each
//! link once: the first use starts a browser session (302 to the landing path with a session
//! cookie), every later use is refused. Counters let tests assert both; a scripted answer lets
//! them stand in for a hostile instance.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::rest::Sessions;

/// Where a link lands when no `redirect_uri` (or `retURL`) names a path.
const HOME: &str = "/lightning/page/home";

/// An answer to give `singleaccess` instead of a link: status, content type, body.
#[derive(Debug, Clone)]
pub struct ScriptedLink {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// What the frontdoor has seen, for tests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FrontdoorStats {
    /// `singleaccess` requests, answered or not.
    pub requests: u64,
    /// `singleaccess` requests by method (`GET`, `POST`).
    pub methods: HashMap<String, u64>,
    /// `singleaccess` requests refused with 401 (no, a bad or an expired session).
    pub unauthorized: u64,
    /// Links issued.
    pub issued: u64,
    /// Links that started a session (their first use).
    pub logins: u64,
    /// Uses refused: a link used again, an unknown link, or a `sid=` link.
    pub refused: u64,
    /// Where each login landed, in order.
    pub landed: Vec<String>,
    /// The `redirect_uri` of each issued link, as sent (`None`: not sent).
    pub redirect_uris: Vec<Option<String>>,
}

/// One issued link: whose, where it lands, the `cshc` it must come back with, and whether
/// it was used.
struct Link {
    cshc: String,
    landing: String,
    used: bool,
}

/// The links issued so far and the counters.
#[derive(Default)]
pub struct Frontdoor {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    links: HashMap<String, Link>,
    stats: FrontdoorStats,
    scripted: Option<ScriptedLink>,
}

impl std::fmt::Debug for Frontdoor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Frontdoor { .. }")
    }
}

/// Status, content type, extra headers and body of an answer.
pub(crate) struct Page {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Page {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json;charset=UTF-8".into(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    fn html(status: u16, text: &str) -> Self {
        Self {
            status,
            content_type: "text/html;charset=UTF-8".into(),
            headers: Vec::new(),
            body: format!(
                "<html><head><title>{text}</title></head><body><p>{text}</p></body></html>"
            )
            .into_bytes(),
        }
    }
}

/// A relative path on this host (`/x`, not `//host` nor `/\host`), as a landing place.
fn relative_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl Frontdoor {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("frontdoor lock is never poisoned")
    }

    pub fn snapshot(&self) -> FrontdoorStats {
        self.lock().stats.clone()
    }

    /// Answer every later `singleaccess` request with `answer` (a session is still required).
    pub fn script(&self, answer: ScriptedLink) {
        self.lock().scripted = Some(answer);
    }

    /// `GET`/`POST /services/oauth2/singleaccess`: a link for the bearer's session.
    /// `form` is the POST body (or the GET query), `redirect_uri=<path>` in it optional.
    pub(crate) fn singleaccess(
        &self,
        sessions: &Sessions,
        base_url: &str,
        method: &str,
        authorization: Option<&str>,
        form: &str,
    ) -> Page {
        let mut inner = self.lock();
        inner.stats.requests += 1;
        *inner.stats.methods.entry(method.to_string()).or_default() += 1;
        let token = authorization.and_then(|a| a.strip_prefix("Bearer "));
        if token.and_then(|t| sessions.user(t.trim())).is_none() {
            inner.stats.unauthorized += 1;
            return Page::json(
                401,
                serde_json::json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
            );
        }
        if let Some(s) = &inner.scripted {
            return Page {
                status: s.status,
                content_type: s.content_type.clone(),
                headers: Vec::new(),
                body: s.body.clone(),
            };
        }
        let params: HashMap<String, String> = serde_urlencoded::from_str(form).unwrap_or_default();
        let redirect = params.get("redirect_uri").cloned();
        if redirect.as_deref().is_some_and(|r| !relative_path(r)) {
            return Page::json(
                400,
                serde_json::json!({"error": "invalid_request", "error_description": "redirect_uri must be a relative path"}),
            );
        }
        let (otp, cshc) = (super::server::random_token(), super::server::random_token());
        let landing = redirect.clone().unwrap_or_else(|| HOME.to_string());
        inner.links.insert(
            otp.clone(),
            Link {
                cshc: cshc.clone(),
                landing,
                used: false,
            },
        );
        inner.stats.issued += 1;
        inner.stats.redirect_uris.push(redirect);
        let query = serde_urlencoded::to_string([("otp", otp.as_str()), ("cshc", cshc.as_str())])
            .expect("two strings always encode");
        Page::json(
            200,
            serde_json::json!({"frontdoor_uri": format!("{base_url}/secur/frontdoor.jsp?{query}")}),
        )
    }

    /// `GET /secur/frontdoor.jsp?otp=…&cshc=…[&retURL=…]`: the first use of a link starts a
    /// session and lands; any other use is refused.
    pub(crate) fn open(&self, query: &str, https: bool) -> Page {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Query {
            otp: Option<String>,
            cshc: Option<String>,
            sid: Option<String>,
            #[serde(rename = "retURL")]
            ret_url: Option<String>,
        }
        let q: Option<Query> = serde_urlencoded::from_str(query).ok();
        let mut inner = self.lock();
        let Some(q) = q else {
            inner.stats.refused += 1;
            return Page::html(400, "Invalid link");
        };
        if q.sid.is_some() {
            // The old form puts the access token itself in the URL: not served here.
            inner.stats.refused += 1;
            return Page::html(
                400,
                "Session id links are not accepted; use a single-use link",
            );
        }
        let landing = {
            let link = q
                .otp
                .as_deref()
                .and_then(|otp| inner.links.get_mut(otp))
                .filter(|l| Some(l.cshc.as_str()) == q.cshc.as_deref());
            match link {
                Some(link) if !link.used => {
                    link.used = true;
                    Some(
                        q.ret_url
                            .filter(|r| relative_path(r))
                            .unwrap_or_else(|| link.landing.clone()),
                    )
                }
                _ => None,
            }
        };
        let Some(landing) = landing else {
            inner.stats.refused += 1;
            return Page::html(400, "This login link has already been used or is invalid");
        };
        inner.stats.logins += 1;
        inner.stats.landed.push(landing.clone());
        let secure = if https { "; Secure" } else { "" };
        let cookie = format!(
            "sid={}; Path=/; HttpOnly{secure}",
            super::server::random_token()
        );
        Page {
            status: 302,
            content_type: "text/html;charset=UTF-8".into(),
            headers: vec![("location", landing), ("set-cookie", cookie)],
            body: b"<html><body>Logged in</body></html>".to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_of(page: &Page) -> String {
        let v: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
        let uri = v["frontdoor_uri"].as_str().unwrap().to_string();
        uri.split_once('?').unwrap().1.to_string()
    }

    #[test]
    fn a_link_logs_in_once_and_lands_where_asked() {
        let sessions = Sessions::default();
        sessions.open("00D000000000001!abc", "a@x.com");
        let door = Frontdoor::default();
        let page = door.singleaccess(
            &sessions,
            "http://127.0.0.1:1",
            "POST",
            Some("Bearer 00D000000000001!abc"),
            "redirect_uri=%2Flightning%2Fsetup%2FSetupOneHome%2Fhome",
        );
        assert_eq!(page.status, 200);
        let query = query_of(&page);
        let first = door.open(&query, false);
        assert_eq!(first.status, 302);
        assert!(first
            .headers
            .iter()
            .any(|(k, v)| *k == "location" && v == "/lightning/setup/SetupOneHome/home"));
        assert!(first.headers.iter().any(|(k, _)| *k == "set-cookie"));
        assert_eq!(door.open(&query, false).status, 400, "a second use fails");
        let stats = door.snapshot();
        assert_eq!((stats.issued, stats.logins, stats.refused), (1, 1, 1));
    }

    #[test]
    fn a_get_takes_the_redirect_from_its_query_and_ret_url_may_override_it() {
        let sessions = Sessions::default();
        sessions.open("t", "a@x.com");
        let door = Frontdoor::default();
        let page = door.singleaccess(
            &sessions,
            "http://h",
            "GET",
            Some("Bearer t"),
            "redirect_uri=%2Fapex%2FX",
        );
        let query = query_of(&page);
        assert!(door
            .open(&query, true)
            .headers
            .iter()
            .any(|(k, v)| *k == "location" && v == "/apex/X"));
        let page = door.singleaccess(&sessions, "http://h", "GET", Some("Bearer t"), "");
        let query = format!("{}&retURL=%2Flightning", query_of(&page));
        let first = door.open(&query, true);
        assert!(first
            .headers
            .iter()
            .any(|(k, v)| *k == "location" && v == "/lightning"));
        assert!(first
            .headers
            .iter()
            .any(|(k, v)| *k == "set-cookie" && v.ends_with("; Secure")));
        assert_eq!(door.snapshot().methods.get("GET"), Some(&2));
    }

    #[test]
    fn no_session_no_link_and_foreign_redirects_are_refused() {
        let sessions = Sessions::default();
        let door = Frontdoor::default();
        let page = door.singleaccess(&sessions, "http://h", "GET", Some("Bearer nope"), "");
        assert_eq!(page.status, 401);
        assert!(String::from_utf8_lossy(&page.body).contains("INVALID_SESSION_ID"));
        sessions.open("t", "a@x.com");
        for bad in ["https://evil.com", "//evil.com", "/\\evil.com"] {
            let form = serde_urlencoded::to_string([("redirect_uri", bad)]).unwrap();
            let page = door.singleaccess(&sessions, "http://h", "POST", Some("Bearer t"), &form);
            assert_eq!(page.status, 400, "{bad}");
        }
        assert_eq!(door.open("sid=t", false).status, 400);
        assert_eq!(door.open("otp=unknown&cshc=x", false).status, 400);
        assert_eq!(door.snapshot().unauthorized, 1);
    }
}
