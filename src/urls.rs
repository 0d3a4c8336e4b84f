//! Where a signed assertion, and later a token, may go. The rules, kept in this one place:
//! - the scheme: `https://` anywhere, plain `http://` only to loopback;
//! - the host's shape, for every URL: no empty label or trailing dot, not percent-encoded as
//!   written, not port 0 (`--instance-url` included);
//! - the host of a URL that came from *data* (a list row's instance URL, a report.json handed
//!   over by another job, an auth file being reused, a token answer's `instance_url` and `id`):
//!   a Salesforce domain, a host the user named with `--allow-host`, or loopback, the last only
//!   when the run's own token host (`--instance-url`) is loopback: a local listener on a shared
//!   runner must never get an assertion meant for Salesforce. [`HostPolicy::check`] is that
//!   rule, for every kind of data. `--instance-url` is the user's own explicit choice and skips
//!   the host rule.

use url::{Host, Url};

/// The domains Salesforce serves logins and instances from, matched as a suffix on a label
/// boundary. sfdx-core's `SfdcUrl.isSalesforceDomain()` allowlists the first four; Government
/// Cloud Plus serves from `.mil` domains, and the Alibaba-hosted China region from its own.
/// Experience Cloud sites (`*.my.site.com`, custom domains) are not here: name them with
/// `--allow-host`.
pub const SALESFORCE_DOMAINS: &[&str] = &[
    "salesforce.com",
    "force.com",
    "cloudforce.com",
    "salesforceliveagent.com",
    // Government Cloud Plus.
    "salesforce.mil",
    "force.mil",
    "cloudforce.mil",
    "crmforce.mil",
    // The China region (Alibaba Cloud).
    "sfcrmproducts.cn",
    "sfcrmapps.cn",
];

/// Parse a token host (the `--instance-url` or a row's instance URL), enforcing the scheme rule.
pub fn token_host(raw: &str) -> Result<Url, String> {
    // Parsed as given; shown escaped, as it may come from a list or a report made elsewhere.
    let url = Url::parse(raw.trim());
    let written = raw;
    let raw = &crate::sanitize::shown(raw, 200);
    let url = url.map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            format!("`{raw}` has no scheme; write it as https://{raw}")
        }
        e => format!("`{raw}` is not a URL ({e})"),
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "`{raw}` uses plain http to a non-loopback host; use https:// (http is allowed only for 127.0.0.1, ::1 and localhost)"
            ))
        }
        other => return Err(format!("`{raw}` has scheme `{other}`; use https://")),
    }
    if url.host().is_none() {
        return Err(format!("`{raw}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a token host URL must not carry a user name or password".into());
    }
    written_as_is(written)?;
    parsed_host_shape(&url)?;
    Ok(url)
}

/// The host as written in `raw` (a URL with a scheme): between `//` and the path, query or
/// fragment, after any credentials. The URL parser decodes it, so only the text shows whether
/// it was percent-encoded.
fn written_host(raw: &str) -> &str {
    let rest = raw.trim().split_once(':').map_or("", |(_, rest)| rest);
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or_default()
}

/// The host as `raw` wrote it: not percent-encoded (`evil.com%2e.salesforce.com`
/// decodes to `evil.com..salesforce.com`). Only the text shows it: parsing decodes the host.
fn written_as_is(raw: &str) -> Result<(), String> {
    if written_host(raw).contains('%') {
        return Err(format!(
            "`{}` has a percent-encoded host; write the host name as it is",
            crate::sanitize::shown(raw, 120)
        ));
    }
    Ok(())
}

/// A host fleetauth sends to, once parsed: no empty label (`.salesforce.com`,
/// `a..salesforce.com`), no trailing dot, not port 0. Real hosts, with or without `:443`, and
/// loopback with a port pass.
fn parsed_host_shape(url: &Url) -> Result<(), String> {
    let shown = || crate::sanitize::shown(url.as_str().trim_end_matches('/'), 120);
    if let Some(Host::Domain(d)) = url.host() {
        if d.ends_with('.') {
            return Err(format!(
                "`{}` ends its host with a dot; write it without the trailing dot",
                shown()
            ));
        }
        if d.split('.').any(str::is_empty) {
            return Err(format!(
                "`{}` has an empty label in its host (a leading dot or two dots in a row)",
                shown()
            ));
        }
    }
    if url.port() == Some(0) {
        return Err(format!(
            "`{}` names port 0, which no server listens on",
            shown()
        ));
    }
    Ok(())
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Is `host` (a DNS name) one of Salesforce's domains or below one?
pub fn is_salesforce_domain(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    SALESFORCE_DOMAINS.iter().any(|d| {
        host.strip_suffix(d)
            .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
    })
}

/// The hosts a URL from data may name: Salesforce's, the user's `--allow-host`s, and loopback
/// when the run's token host is loopback.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Lower-cased host names (exact) or `.suffix` entries (a domain and everything below it).
    allowed: Vec<String>,
    /// The token host (`--instance-url`) is loopback: data may name loopback too (the
    /// emulator, a local test server). Never set otherwise.
    loopback: bool,
}

impl HostPolicy {
    /// Build from `--allow-host` values: `host`, `host:port` is refused (hosts only), and a
    /// leading `*.` or `.` allows every host below the domain.
    pub fn new(allow: &[String]) -> Result<Self, String> {
        let mut allowed = Vec::with_capacity(allow.len());
        for raw in allow {
            let h = raw.trim().to_ascii_lowercase();
            let (wild, name) = match h.strip_prefix("*.").or_else(|| h.strip_prefix('.')) {
                Some(rest) => (true, rest.to_string()),
                None => (false, h.clone()),
            };
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !valid {
                return Err(format!(
                    "--allow-host {raw:?} is not a host name; give a name like sso.acme.com, or *.acme.com for every host below acme.com (no scheme, port or path)"
                ));
            }
            if wild && !name.contains('.') {
                return Err(format!(
                    "--allow-host {raw:?} would trust every host of a whole top-level domain; name your own domain, like *.acme.com"
                ));
            }
            allowed.push(if wild { format!(".{name}") } else { name });
        }
        Ok(Self {
            allowed,
            loopback: false,
        })
    }

    /// Also allow the host of `url`: the user named it explicitly (`--instance-url`), so
    /// data naming it is as trusted as the flag. A loopback token host lets data name any
    /// loopback host; no other does.
    pub fn with_host_of(mut self, url: &Url) -> Self {
        if is_loopback(url) {
            self.loopback = true;
        } else if let Some(Host::Domain(d)) = url.host() {
            if !is_salesforce_domain(d) {
                self.allowed.push(d.to_ascii_lowercase());
            }
        }
        self
    }

    fn allows_name(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed.iter().any(|a| match a.strip_prefix('.') {
            Some(domain) => host == domain || host.ends_with(a.as_str()),
            None => host == *a,
        })
    }

    /// Check a URL that came from data: the scheme rule (plain http only to loopback), then
    /// the host rule. `Err` says why, and how to allow it.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        let shown = || crate::sanitize::shown(url.as_str().trim_end_matches('/'), 120);
        parsed_host_shape(url)?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(url) => {}
            _ => {
                return Err(format!(
                    "`{}` is not https; a signed assertion or a token goes only over https (plain http only to a loopback --instance-url)",
                    shown()
                ))
            }
        }
        if is_loopback(url) {
            return if self.loopback {
                Ok(())
            } else {
                Err(format!(
                    "`{}` is a loopback address, and the token host (--instance-url) is not: a signed assertion goes to a local listener only when --instance-url itself is loopback",
                    shown()
                ))
            };
        }
        match url.host() {
            Some(Host::Domain(d)) if is_salesforce_domain(d) || self.allows_name(d) => Ok(()),
            Some(host) => Err(format!(
                "host `{host}` is not a Salesforce domain ({}); a signed assertion goes only to Salesforce: if this host really is your org's login server, name it with --allow-host {host}",
                SALESFORCE_DOMAINS
                    .iter()
                    .take(3)
                    .map(|d| format!("*.{d}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Err("the URL has no host".into()),
        }
    }

    /// [`HostPolicy::check`] for a URL parsed from `raw`, the text it came in: also refuses a
    /// host that was percent-encoded there (parsing decodes it, so only the text shows it).
    pub fn check_as_written(&self, raw: &str, url: &Url) -> Result<(), String> {
        written_as_is(raw)?;
        self.check(url)
    }

    /// A list row's instance URL: parsed as a token host, and on a host a data URL may name.
    pub fn row_host(&self, raw: &str) -> Result<Url, String> {
        let url = token_host(raw)?;
        self.check(&url).map(|()| url)
    }
}

/// `<host>/services/oauth2/token`, whatever path the host URL carried.
pub fn token_endpoint(host: &Url) -> Url {
    let mut url = host.clone();
    url.set_path("/services/oauth2/token");
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// The URL in the form users write it: no trailing slash.
pub fn display(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_over_a_whole_top_level_domain_is_refused() {
        assert!(HostPolicy::new(&["*.com".into()]).is_err());
        assert!(HostPolicy::new(&[".com".into()]).is_err());
        assert!(HostPolicy::new(&["*.acme.com".into()]).is_ok());
        assert!(HostPolicy::new(&["intranet".into()]).is_ok());
    }

    #[test]
    fn https_is_accepted_everywhere() {
        assert!(token_host("https://test.salesforce.com").is_ok());
        // A long URL is parsed whole; only the message would be cut.
        let long = format!("https://{}.my.salesforce.com", "a".repeat(250));
        assert!(token_host(&long).is_ok());
        assert!(token_host("https://acme.scratch.my.salesforce.com/").is_ok());
        assert!(token_host("https://user:pw@test.salesforce.com").is_err());
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(token_host("http://127.0.0.1:8080").is_ok());
        assert!(token_host("http://127.5.0.1").is_ok());
        assert!(token_host("http://[::1]:9000").is_ok());
        assert!(token_host("http://localhost:1").is_ok());
        let err = token_host("http://test.salesforce.com").unwrap_err();
        assert!(err.contains("use https://"), "{err}");
        assert!(token_host("http://10.0.0.1").is_err());
        assert!(token_host("ftp://127.0.0.1").is_err());
        assert!(token_host("not a url").is_err());
    }

    #[test]
    fn a_host_without_a_scheme_is_told_how_to_write_it() {
        let err = token_host("test.salesforce.com").unwrap_err();
        assert!(err.contains("https://test.salesforce.com"), "{err}");
    }

    #[test]
    fn endpoint_replaces_any_path() {
        let host = token_host("https://x.my.salesforce.com/some/path?q=1#f").unwrap();
        assert_eq!(
            token_endpoint(&host).as_str(),
            "https://x.my.salesforce.com/services/oauth2/token"
        );
    }

    #[test]
    fn salesforce_domains_match_on_a_label_boundary() {
        for ok in [
            "test.salesforce.com",
            "login.salesforce.com",
            "acme.scratch.my.salesforce.com",
            "acme--uat.sandbox.my.salesforce.com",
            "cs42.salesforce.com",
            "acme.my.salesforce.mil",
            "na1.force.com",
            "SALESFORCE.COM.",
            "acme.my.sfcrmproducts.cn",
        ] {
            assert!(is_salesforce_domain(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "notsalesforce.com",
            "salesforce.com.evil.com",
            "evilforce.com",
            "my-salesforce.com",
            "force.community",
        ] {
            assert!(!is_salesforce_domain(bad), "{bad}");
        }
    }

    #[test]
    fn data_urls_go_only_to_salesforce_loopback_or_allowed_hosts() {
        let none = HostPolicy::default();
        assert!(none
            .row_host("https://acme.scratch.my.salesforce.com")
            .is_ok());
        let err = none.row_host("http://127.0.0.1:9999").unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        let err = none.row_host("https://evil.example.com").unwrap_err();
        assert!(
            err.contains("--allow-host evil.example.com"),
            "the error says how to allow it: {err}"
        );
        assert!(none.row_host("https://10.1.2.3").is_err());
        let some = HostPolicy::new(&["sso.acme.com".into(), "*.partner.io".into()]).unwrap();
        assert!(some.row_host("https://sso.acme.com").is_ok());
        assert!(some.row_host("https://SSO.acme.com/x").is_ok());
        assert!(some.row_host("https://x.sso.acme.com").is_err());
        assert!(some.row_host("https://a.b.partner.io").is_ok());
        assert!(some.row_host("https://partner.io").is_ok());
        assert!(some.row_host("https://evilpartner.io").is_err());
        for bad in ["https://x.com", "x.com:443", "", "a..b", "*.", "a/b"] {
            assert!(HostPolicy::new(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_in_data_only_for_a_loopback_token_host() {
        let remote =
            HostPolicy::default().with_host_of(&token_host("https://test.salesforce.com").unwrap());
        let local = HostPolicy::default().with_host_of(&token_host("http://127.0.0.1:1").unwrap());
        for data in [
            "http://127.0.0.1:9",
            "https://127.0.0.1:9",
            "http://localhost:9",
            "https://LOCALHOST",
            "http://[::1]:9",
            "https://127.8.9.10",
        ] {
            let url = Url::parse(data).unwrap();
            let err = remote.check(&url).unwrap_err();
            assert!(err.contains("--instance-url"), "{data}: {err}");
            assert!(local.check(&url).is_ok(), "{data}");
        }
        // Plain http to anything but loopback, whatever the token host.
        for data in ["http://acme.my.salesforce.com", "http://10.0.0.1"] {
            let url = Url::parse(data).unwrap();
            assert!(local.check(&url).is_err(), "{data}");
            assert!(remote.check(&url).is_err(), "{data}");
        }
        assert!(local
            .check(&Url::parse("ftp://127.0.0.1").unwrap())
            .is_err());
        assert!(remote
            .check(&Url::parse("https://acme.my.salesforce.com").unwrap())
            .is_ok());
    }

    /// Hosts no server is named by: empty labels, a trailing dot, a percent-encoded name
    /// (`%2e` decodes to a dot: stored as `evil.com..salesforce.com`), port 0. Refused for a
    /// token answer's URLs, list rows and `--instance-url` alike.
    #[test]
    fn malformed_hosts_are_refused_wherever_a_url_comes_from() {
        let local = HostPolicy::default().with_host_of(&token_host("http://127.0.0.1:1").unwrap());
        let remote = HostPolicy::default();
        for bad in [
            "https://.salesforce.com",
            "https://a..salesforce.com",
            "https://evil.com%2e.salesforce.com",
            "https://%61cme.my.salesforce.com",
            "https://x.my.salesforce.com.",
            "https://x.my.salesforce.com.:443",
            "https://x.my.salesforce.com:0",
            "https://user@evil.com%2E.salesforce.com",
            "http://127.0.0.1:0",
            "http://localhost.:9",
        ] {
            assert!(token_host(bad).is_err(), "--instance-url {bad}");
            for hosts in [&local, &remote] {
                assert!(hosts.row_host(bad).is_err(), "row {bad}");
                let url = Url::parse(bad).unwrap();
                assert!(hosts.check_as_written(bad, &url).is_err(), "answer {bad}");
            }
        }
        let err = token_host("https://evil.com%2e.salesforce.com").unwrap_err();
        assert!(err.contains("percent-encoded"), "{err}");
        let err = token_host("https://x.my.salesforce.com.").unwrap_err();
        assert!(err.contains("trailing dot"), "{err}");
        let err = token_host("https://x.my.salesforce.com:0").unwrap_err();
        assert!(err.contains("port 0"), "{err}");
        // What works today still does: real hosts, an explicit :443, loopback with a port, a
        // percent sign in the path (not the host).
        for good in [
            "https://x.my.salesforce.com",
            "https://x.my.salesforce.com:443",
            "https://x.my.salesforce.com:443/",
            "https://test.salesforce.com/a%2eb",
            "https://acme--uat.sandbox.my.salesforce.com",
        ] {
            assert!(token_host(good).is_ok(), "{good}");
            assert!(remote.row_host(good).is_ok(), "{good}");
            let url = Url::parse(good).unwrap();
            assert!(remote.check_as_written(good, &url).is_ok(), "{good}");
        }
        for good in [
            "http://127.0.0.1:8080",
            "http://localhost:9",
            "http://[::1]:9",
        ] {
            assert!(local.row_host(good).is_ok(), "{good}");
        }
    }
}
