//! The single-use login link (reference dev-hub.md §6): asked of the org's
//! `/services/oauth2/singleaccess` with its access token, and checked like a token answer
//! before anyone sees it. The token is sent in the `Authorization` header only, never in a
//! URL; no error here ever quotes the link.

use url::Url;

use crate::sanitize;
use crate::secret::Secret;
use crate::urls::{self, HostPolicy};

/// The largest answer read from `singleaccess`; a real one is under 1 KB.
const MAX_ANSWER: usize = 64 * 1024;

/// The longest link accepted (browsers and terminals handle far more; Salesforce's are short).
const MAX_LINK: usize = 8 * 1024;

/// The longest `--path`.
const MAX_PATH: usize = 2048;

/// Why no link came back.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// 401: the session has expired (or was revoked): grant a new token and ask again.
    Expired,
    /// Anything else, said without the link or the token.
    Failed(String),
}

/// Check `--path`: a path on the org's own host, so the link cannot be turned into an open
/// redirect. The path as it will be sent.
pub(super) fn check_path(raw: &str) -> Result<String, String> {
    let shown = sanitize::shown(raw, 80);
    let fix = "give a path on the org, e.g. --path /lightning/setup/SetupOneHome/home";
    if raw.len() > MAX_PATH {
        return Err(format!(
            "--path is longer than {MAX_PATH} characters; {fix}"
        ));
    }
    let scheme = raw
        .split_once(':')
        .is_some_and(|(s, _)| !s.is_empty() && !s.contains('/') && !s.contains('?'));
    if scheme || raw.starts_with("//") {
        return Err(format!(
            "--path `{shown}` names a scheme or host; only a path on the org is allowed (the link must not lead elsewhere): {fix}"
        ));
    }
    if !raw.starts_with('/') {
        return Err(format!(
            "--path `{shown}` does not start with `/`; did you mean --path /{shown}?"
        ));
    }
    if raw.contains('\\') || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "--path `{shown}` holds a backslash, a space or a control character; {fix}"
        ));
    }
    // The path as a server may read it: decoded (`/%2F%2Fevil.com` is `//evil.com`, and
    // again for a server that decodes twice), its dot segments resolved. The query is
    // decoded too: a landing page's own `retURL=//evil.com` is a way off the org as well.
    let (raw_path, raw_rest) = raw.split_at(raw.find(['?', '#']).unwrap_or(raw.len()));
    let (path, rest) = (fully_decoded(raw_path), fully_decoded(raw_rest));
    let (Some(path), Some(rest)) = (path, rest) else {
        return Err(format!(
            "--path `{shown}` is percent-encoded over and over; {fix}"
        ));
    };
    if [&path, &rest]
        .iter()
        .any(|d| d.contains('\\') || d.chars().any(char::is_control))
    {
        return Err(format!(
            "--path `{shown}` decodes to a backslash or a control character; {fix}"
        ));
    }
    // `..;x` is `..` to some servers (a `;` starts path parameters).
    let dot_dot = |segment: &str| segment.split(';').next() == Some("..");
    if path.split(['/', '\\']).any(dot_dot) {
        return Err(format!(
            "--path `{shown}` has a `..` segment, which leaves the path it names; {fix}"
        ));
    }
    if path.contains("//") || remove_dot_segments(&path).contains("//") || rest.contains("//") {
        return Err(format!(
            "--path `{shown}` holds `//` (decoded), which can name another host; {fix}"
        ));
    }
    // Joined to a base, it must stay on the base's host.
    let joined = Url::parse("https://org.invalid/").and_then(|base| base.join(raw));
    match joined {
        Ok(u) if u.host_str() == Some("org.invalid") && u.scheme() == "https" => {
            Ok(raw.to_string())
        }
        _ => Err(format!("--path `{shown}` is not a path on the org; {fix}")),
    }
}

/// `raw` percent-decoded until nothing is left to decode (`%252F` is `/`), or `None` when
/// that takes more than a few passes.
fn fully_decoded(raw: &str) -> Option<String> {
    let mut text = raw.to_string();
    for _ in 0..4 {
        let next = percent_decode(&text);
        if next == text {
            return Some(text);
        }
        text = next;
    }
    None
}

/// `path` with its `.` and `..` segments resolved (RFC 3986 §5.2.4).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => {
                if *segment == ".." && out.len() > 1 {
                    out.pop();
                }
                // A trailing dot segment leaves the path ending in `/`.
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// `%XX` sequences decoded (invalid ones kept as they are), lossily as UTF-8.
fn percent_decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// Ask `<instance>/services/oauth2/singleaccess` for a link, landing at `path`.
pub(super) async fn request(
    http: &reqwest::Client,
    instance: &Url,
    hosts: &HostPolicy,
    token: &Secret<String>,
    path: Option<&str>,
) -> Result<Secret<String>, Refused> {
    let mut endpoint = instance.clone();
    endpoint.set_path("/services/oauth2/singleaccess");
    endpoint.set_query(None);
    endpoint.set_fragment(None);
    let form: Vec<(&str, &str)> = path.map(|p| ("redirect_uri", p)).into_iter().collect();
    let mut response = http
        .post(endpoint.clone())
        .bearer_auth(token.expose())
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| Refused::Failed(format!("POST {endpoint} failed: {}", e.without_url())))?;
    let status = response.status().as_u16();
    if status == 401 {
        return Err(Refused::Expired);
    }
    // Read at most MAX_ANSWER bytes: a hostile host cannot make fleetauth hold megabytes.
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(unexpected(&format!(
                        "the answer is larger than {} KiB (not read further)",
                        MAX_ANSWER / 1024
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Refused::Failed(format!(
                    "the answer of {endpoint} was cut short: {}",
                    e.without_url()
                )))
            }
        }
    }
    if !(200..300).contains(&status) {
        return Err(Refused::Failed(describe_error(status, &body)));
    }
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        unexpected(&format!(
            "a {status} answer that is not JSON ({} bytes; not quoted)",
            body.len()
        ))
    })?;
    let raw = json
        .get("frontdoor_uri")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| unexpected("the answer has no `frontdoor_uri` string"))?;
    check_link(raw, instance, hosts, token.expose(), path)
        .map(Secret::new)
        .map_err(|why| unexpected(&why))
}

fn unexpected(why: &str) -> Refused {
    Refused::Failed(format!("unexpected_response: {why}; nothing was printed"))
}

/// A refused answer, said with Salesforce's error code and message when it has them.
fn describe_error(status: u16, body: &[u8]) -> String {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    // REST errors are `[{"errorCode", "message"}]`; OAuth errors `{"error", "error_description"}`.
    let said = json.as_ref().and_then(|j| {
        let first = j.as_array().and_then(|a| a.first()).unwrap_or(j);
        let code = field(first, "errorCode").or_else(|| field(first, "error"))?;
        let message = field(first, "message")
            .or_else(|| field(first, "error_description"))
            .unwrap_or_default();
        Some(format!(
            "{}: {}",
            sanitize::excerpt(&code, 60),
            sanitize::excerpt(&message, 160)
        ))
    });
    let said = said.unwrap_or_else(|| format!("ERROR_HTTP_{status}"));
    let hint = match status {
        403 => "; the user may lack the permission to log in through the UI, or the org does not offer single-use links",
        404 => "; this host has no singleaccess endpoint: check the org's instance URL",
        _ => "",
    };
    format!("singleaccess answered {status} ({said}){hint}")
}

/// The query keys of a single-use link (dev-hub.md §6: `otp=…&cshc=…`, and where it lands).
const LINK_KEYS: [&str; 4] = ["otp", "cshc", "retURL", "startURL"];

/// Check a link's query: only the keys Salesforce sends (compared case-insensitively), each
/// at most once; a non-empty one-time `otp`; a landing place (`retURL`, `startURL`) only when
/// `--path` asked for one, and then exactly that path. No fragment.
fn check_query(url: &Url, path: Option<&str>) -> Result<(), String> {
    if url.fragment().is_some() {
        return Err(
            "the frontdoor_uri has a fragment (#…), which a single-use link has not".into(),
        );
    }
    let mut seen = [false; LINK_KEYS.len()];
    for (k, v) in url.query_pairs() {
        if k.eq_ignore_ascii_case("sid") {
            return Err(
                "the frontdoor_uri carries a session id (sid=), not a single-use link".into(),
            );
        }
        // An unknown key is not quoted: a hostile one may carry part of the link.
        let Some(i) = LINK_KEYS
            .iter()
            .position(|known| k.eq_ignore_ascii_case(known))
        else {
            return Err("the frontdoor_uri has a query key other than otp, cshc, retURL and startURL (not quoted); a single-use link has no other".into());
        };
        let key = LINK_KEYS.get(i).copied().unwrap_or_default();
        let Some(once) = seen.get_mut(i) else {
            return Err("the frontdoor_uri's query cannot be read".into());
        };
        if std::mem::replace(once, true) {
            return Err(format!(
                "the frontdoor_uri has `{key}` more than once (keys compared case-insensitively)"
            ));
        }
        match key {
            "otp" | "cshc" if v.is_empty() => {
                return Err(format!("the frontdoor_uri has an empty `{key}`"))
            }
            "retURL" | "startURL" => match path {
                Some(asked) if v == asked => {}
                Some(_) => {
                    return Err(format!(
                        "the frontdoor_uri's `{key}` is not the --path asked for (it would land elsewhere)"
                    ))
                }
                None => {
                    return Err(format!(
                        "the frontdoor_uri has a `{key}` though no --path was asked for (it would land elsewhere)"
                    ))
                }
            },
            _ => {}
        }
    }
    if seen.first() != Some(&true) {
        return Err("the frontdoor_uri has no one-time `otp`".into());
    }
    Ok(())
}

/// Check the `frontdoor_uri` of an answer: `https` (plain `http` only from a loopback
/// instance to itself), on the org's instance host or a host a data URL may name (a
/// Salesforce domain, an `--allow-host`), the frontdoor path, and a query of a single-use
/// link only ([`check_query`]: no session id, no other redirect than `path`). Returns the link as parsed (no control characters reach a terminal).
pub(super) fn check_link(
    raw: &str,
    instance: &Url,
    hosts: &HostPolicy,
    token: &str,
    path: Option<&str>,
) -> Result<String, String> {
    if raw.len() > MAX_LINK {
        return Err(format!(
            "the frontdoor_uri is longer than {MAX_LINK} characters"
        ));
    }
    let url = Url::parse(raw).map_err(|_| "the frontdoor_uri is not a URL".to_string())?;
    let host = url.host_str().unwrap_or_default();
    let shown_host = sanitize::excerpt(host, 80);
    let same_host = url.host() == instance.host();
    let loopback = urls::is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback && urls::is_loopback(instance) => {}
        "http" => {
            return Err(format!(
                "the frontdoor_uri is plain http to `{shown_host}`; a login link must be https"
            ))
        }
        other => {
            return Err(format!(
                "the frontdoor_uri has scheme `{}`; a login link must be https",
                sanitize::excerpt(other, 20)
            ))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the frontdoor_uri carries a user name or password".into());
    }
    let trusted = if loopback {
        // Loopback only from a loopback instance, and only the instance itself.
        urls::is_loopback(instance) && url.origin() == instance.origin()
    } else {
        same_host || hosts.check(&url).is_ok()
    };
    if !trusted {
        return Err(format!(
            "the frontdoor_uri's host `{shown_host}` is neither the org's instance host nor a Salesforce domain (name it with --allow-host if it really is your org's)"
        ));
    }
    if url.path() != "/secur/frontdoor.jsp" {
        return Err("the frontdoor_uri is not a /secur/frontdoor.jsp link".into());
    }
    check_query(&url, path)?;
    let secret = token.split_once('!').map_or(token, |(_, s)| s);
    if !token.is_empty() && (raw.contains(token) || (secret.len() >= 8 && raw.contains(secret))) {
        return Err("the frontdoor_uri carries the access token".into());
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_stays_on_the_org() {
        for ok in [
            "/lightning/setup/SetupOneHome/home",
            "/lightning/o/Account/list?filterName=Recent",
            "/apex/MyPage",
            "/",
        ] {
            assert_eq!(check_path(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "https://evil.com/x",
            "javascript:alert(1)",
            "//evil.com",
            "/\\evil.com",
            "/%2F%2Fevil.com",
            "/%2f/evil.com",
            "/a b",
            "/a\nb",
            "lightning/setup",
            "",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("https://evil.com")
            .unwrap_err()
            .contains("scheme or host"));
        assert!(check_path("lightning")
            .unwrap_err()
            .contains("--path /lightning"));
    }

    #[test]
    fn a_path_that_leads_off_the_org_once_decoded_and_resolved_is_refused() {
        for ok in [
            "/lightning/setup/SetupOneHome/home",
            "/lightning/o/Account/list?filterName=Recent",
            "/lightning/r/Account/001000000000001AAA/view",
            "/apex/My%20Page?id=1&mode=edit",
            "/x/./y",
            "/",
        ] {
            assert_eq!(check_path(ok).as_deref(), Ok(ok), "{ok}");
        }
        for (bad, why) in [
            ("/x//evil.com", "`//`"),
            ("/..//evil.com", "`..`"),
            ("/x/../../..//evil.com", "`..`"),
            ("/%2e%2e%2f%2fevil.com", "`..`"),
            ("/%2E%2E/%2E%2E/x", "`..`"),
            ("/x/..", "`..`"),
            ("/x/..;a/y", "`..`"),
            ("/.//evil.com", "`//`"),
            ("/%2e//evil.com", "`//`"),
            ("/x%2F%2Fevil.com", "`//`"),
            ("/%252F%252Fevil.com", "`//`"),
            ("/%25252e%25252e/x", "`..`"),
            ("/x%3F/../y", "`..`"),
            ("/x%5Cevil.com", "backslash"),
            ("/x?retURL=https://evil.com", "`//`"),
            ("/x?retURL=%2F%2Fevil.com", "`//`"),
            ("/x#//evil.com", "`//`"),
            ("/%2525252525252F", "over and over"),
        ] {
            let err = check_path(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn dot_segments_resolve_as_rfc_3986_says() {
        for (path, resolved) in [
            ("/a/b/../c", "/a/c"),
            ("/a/./b", "/a/b"),
            ("/a/..", "/"),
            ("/..//evil.com", "//evil.com"),
            ("/x/../../..//evil.com", "//evil.com"),
            ("/.//evil.com", "//evil.com"),
            ("/a/.", "/a/"),
            ("/", "/"),
        ] {
            assert_eq!(remove_dot_segments(path), resolved, "{path}");
        }
    }

    fn check(raw: &str, instance: &str) -> Result<String, String> {
        check_for(raw, instance, None)
    }

    fn check_for(raw: &str, instance: &str, path: Option<&str>) -> Result<String, String> {
        let instance = Url::parse(instance).unwrap();
        let hosts = HostPolicy::new(&["sso.acme.com".into()]).unwrap();
        check_link(raw, &instance, &hosts, "00D000000000001!secretsecret", path)
    }

    #[test]
    fn a_link_has_only_the_query_of_a_single_use_link() {
        let local = "http://127.0.0.1:4000";
        let door = "http://127.0.0.1:4000/secur/frontdoor.jsp";
        let path = "/lightning/setup/SetupOneHome/home";
        let asked = "%2Flightning%2Fsetup%2FSetupOneHome%2Fhome";
        for (ok, path) in [
            (format!("{door}?otp=abc&cshc=def"), None),
            (format!("{door}?cshc=def&otp=abc"), None),
            (
                format!("{door}?otp=abc&cshc=def&retURL={asked}"),
                Some(path),
            ),
            (format!("{door}?otp=abc&startURL={asked}"), Some(path)),
            (
                format!("{door}?OTP=abc&CSHC=def&returl={asked}"),
                Some(path),
            ),
            (format!("{door}?otp=abc&cshc=def"), Some(path)),
        ] {
            assert!(
                check_for(&ok, local, path).is_ok(),
                "{ok}: {:?}",
                check_for(&ok, local, path)
            );
        }
        for (bad, path, why) in [
            (
                format!("{door}?otp=abc&retURL=https://evil.com"),
                None,
                "no --path",
            ),
            (
                format!("{door}?otp=abc&retURL=https://evil.com"),
                Some(path),
                "not the --path",
            ),
            (
                format!("{door}?otp=abc&startURL=%2F%2Fevil.com"),
                Some(path),
                "not the --path",
            ),
            (format!("{door}?otp=abc&retURL={asked}"), None, "no --path"),
            (format!("{door}?otp=abc&SID=x"), None, "session id"),
            (format!("{door}?otp=abc&Sid=x"), None, "session id"),
            (
                format!("{door}?otp=abc&otp=def"),
                None,
                "`otp` more than once",
            ),
            (
                format!("{door}?otp=abc&OTP=def"),
                None,
                "`otp` more than once",
            ),
            (
                format!("{door}?otp=abc&cshc=a&cshc=b"),
                None,
                "`cshc` more than once",
            ),
            (
                format!("{door}?otp=abc&retURL={asked}&RetUrl={asked}"),
                Some(path),
                "`retURL` more than once",
            ),
            (
                format!("{door}?otp=abc&next=https://evil.com"),
                None,
                "other than",
            ),
            (format!("{door}?otp=abc&stolenstolen"), None, "other than"),
            (format!("{door}?otp=abc&=x"), None, "other than"),
            (format!("{door}?otp=&cshc=def"), None, "empty `otp`"),
            (format!("{door}?otp=abc&cshc="), None, "empty `cshc`"),
            (format!("{door}?cshc=def"), None, "no one-time `otp`"),
            (format!("{door}?otp=abc#x"), None, "fragment"),
        ] {
            let err = check_for(&bad, local, path).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(
                !err.contains("otp=") && !err.contains("abc") && !err.contains("stolen"),
                "the error never quotes the link: {err}"
            );
        }
    }

    #[test]
    fn a_link_is_https_on_the_org_or_salesforce() {
        let org = "https://acme.scratch.my.salesforce.com";
        let ok = "https://acme.scratch.my.salesforce.com/secur/frontdoor.jsp?otp=abc&cshc=def";
        assert_eq!(check(ok, org).as_deref(), Ok(ok));
        assert!(check(
            "https://acme.lightning.force.com/secur/frontdoor.jsp?otp=a",
            org
        )
        .is_ok());
        assert!(check("https://sso.acme.com/secur/frontdoor.jsp?otp=a", org).is_ok());
        let local = "http://127.0.0.1:4000";
        assert!(check("http://127.0.0.1:4000/secur/frontdoor.jsp?otp=a", local).is_ok());
        for (bad, why) in [
            (
                "https://evil.example.com/secur/frontdoor.jsp?otp=a",
                "neither",
            ),
            (
                "http://acme.scratch.my.salesforce.com/secur/frontdoor.jsp?otp=a",
                "plain http",
            ),
            (
                "http://127.0.0.1:4000/secur/frontdoor.jsp?otp=a",
                "plain http",
            ),
            ("https://127.0.0.1/secur/frontdoor.jsp?otp=a", "neither"),
            ("javascript:alert(1)", "scheme"),
            (
                "https://u:p@acme.scratch.my.salesforce.com/secur/frontdoor.jsp?otp=a",
                "password",
            ),
            (
                "https://acme.scratch.my.salesforce.com/other?otp=a",
                "frontdoor.jsp",
            ),
            (
                "https://acme.scratch.my.salesforce.com/secur/frontdoor.jsp?cshc=a",
                "otp",
            ),
            (
                "https://acme.scratch.my.salesforce.com/secur/frontdoor.jsp?otp=a&sid=x",
                "session id",
            ),
            (
                "https://acme.scratch.my.salesforce.com/secur/frontdoor.jsp?otp=secretsecret",
                "access token",
            ),
            ("not a url", "not a URL"),
        ] {
            let err = check(bad, org).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(
                !err.contains("otp="),
                "the error never quotes the link: {err}"
            );
        }
        // Loopback: the instance itself only.
        assert!(check("http://127.0.0.1:4001/secur/frontdoor.jsp?otp=a", local).is_err());
    }

    #[test]
    fn errors_say_salesforce_s_code_without_the_body() {
        let rest =
            br#"[{"message":"The REST API is not enabled","errorCode":"API_DISABLED_FOR_ORG"}]"#;
        let said = describe_error(403, rest);
        assert!(
            said.contains("API_DISABLED_FOR_ORG") && said.contains("403"),
            "{said}"
        );
        let html = describe_error(500, b"<html>00D000000000001!secretsecretsecret</html>");
        assert_eq!(html, "singleaccess answered 500 (ERROR_HTTP_500)");
    }

    #[test]
    fn percent_decoding_is_one_pass() {
        assert_eq!(percent_decode("/%2F%2fx%zz%4"), "///x%zz%4");
    }
}
