//! The one rule for token hosts: `https://` anywhere, plain `http://` only to loopback.

use url::{Host, Url};

/// Parse a token host (the `--instance-url` or a row's instance URL), enforcing the scheme rule.
pub fn token_host(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
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
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `<host>/services/oauth2/token`, whatever path the host URL carried.
pub fn token_endpoint(host: &Url) -> Url {
    let mut url = host.clone();
    url.set_path("/services/oauth2/token");
    url.set_query(None);
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
    fn https_is_accepted_everywhere() {
        assert!(token_host("https://test.salesforce.com").is_ok());
        assert!(token_host("https://acme.scratch.my.salesforce.com/").is_ok());
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
    fn endpoint_replaces_any_path() {
        let host = token_host("https://x.my.salesforce.com/some/path?q=1").unwrap();
        assert_eq!(
            token_endpoint(&host).as_str(),
            "https://x.my.salesforce.com/services/oauth2/token"
        );
    }
}
