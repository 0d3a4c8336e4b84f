//! The network a run talks through: whom it trusts and how it gets out. One place builds the
//! HTTP clients (token requests, sf's org probe), so every request gets the same rules:
//! - trust: the built-in web PKI roots, the platform's store (`SSL_CERT_FILE` and
//!   `SSL_CERT_DIR` replace it, as for OpenSSL), the CAs in `NODE_EXTRA_CA_CERTS` (what `sf`
//!   users behind a TLS-inspecting proxy already set) and `--ca-file`; one crypto provider;
//! - the proxy from `HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy` and
//!   `ALL_PROXY`/`all_proxy`, with `NO_PROXY`/`no_proxy`, read here once (as curl reads them):
//!   a value that is not a usable proxy URL is a setup error naming the variable, never a
//!   silent direct connection; credentials in the proxy URL are used, never printed (a proxy
//!   is shown as `host:port`);
//! - no redirects: a token host that redirects never gets the assertion a second time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use url::Url;

use crate::urls::HostPolicy;

/// The fix for a certificate the client cannot verify.
pub const UNTRUSTED_HINT: &str = "the server's certificate is not trusted here, typically a TLS-inspecting corporate proxy: give its CA with --ca-file ca.pem, or set NODE_EXTRA_CA_CERTS (as for sf) or SSL_CERT_FILE/SSL_CERT_DIR; a proxy itself is taken from HTTPS_PROXY and NO_PROXY";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the CA file {path}: {error}; --ca-file takes a PEM file of one or more certificates")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); --ca-file takes a PEM file of one or more certificates")]
    NoCertificate { path: PathBuf },
    #[error("cannot set up TLS: {0}")]
    Setup(String),
    /// Never holds the variable's value: it may carry the proxy password.
    #[error("{var} is not a usable proxy URL: {why}; set it to http://[user:password@]host:port, or unset it (nothing was sent)")]
    Proxy { var: &'static str, why: String },
}

/// A proxy a run's requests go through, and the variable that named it. `Debug` shows only
/// `host:port`: the URL may carry the proxy password.
#[derive(Clone)]
pub struct ProxySetting {
    pub var: &'static str,
    url: Url,
}

impl std::fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.shown(), self.var)
    }
}

impl ProxySetting {
    /// `host:port`, never the credentials.
    pub fn shown(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }
}

/// The proxies of a run, read once from the environment.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    /// For https:// destinations (`HTTPS_PROXY`, else `ALL_PROXY`).
    pub https: Option<ProxySetting>,
    /// For http:// destinations (`HTTP_PROXY`, else `ALL_PROXY`).
    pub http: Option<ProxySetting>,
    /// `NO_PROXY`, as given.
    no_proxy: Option<String>,
}

/// The first of `names` that is set to a non-empty value, parsed as a proxy URL.
fn proxy_var(
    env: &dyn Fn(&str) -> Option<String>,
    names: [&'static str; 2],
) -> Result<Option<ProxySetting>, TlsError> {
    let Some((var, raw)) = names
        .into_iter()
        .find_map(|n| env(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
    else {
        return Ok(None);
    };
    let bad = |why: &str| TlsError::Proxy {
        var,
        why: why.to_string(),
    };
    let raw = raw.trim();
    // curl's rule: a proxy without a scheme is an http proxy.
    let full = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    // url's parse errors name the problem, never the input.
    let url = Url::parse(&full).map_err(|e| bad(&format!("it does not parse ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// proxies are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it carries a path or a query"));
    }
    Ok(Some(ProxySetting { var, url }))
}

impl Proxies {
    /// Read the proxy variables through `env`: every one that is set must parse.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, TlsError> {
        let https = proxy_var(env, ["HTTPS_PROXY", "https_proxy"])?;
        let http = proxy_var(env, ["HTTP_PROXY", "http_proxy"])?;
        let all = proxy_var(env, ["ALL_PROXY", "all_proxy"])?;
        let no_proxy = ["NO_PROXY", "no_proxy"]
            .into_iter()
            .find_map(|n| env(n).filter(|v| !v.trim().is_empty()));
        Ok(Self {
            https: https.or_else(|| all.clone()),
            http: http.or(all),
            no_proxy,
        })
    }

    /// The proxy a request to `url` would go through, NO_PROXY aside.
    pub fn for_url(&self, url: &Url) -> Option<&ProxySetting> {
        match url.scheme() {
            "https" => self.https.as_ref(),
            _ => self.http.as_ref(),
        }
    }

    fn apply(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        // Nothing from the process environment behind our back: only what was read here.
        builder = builder.no_proxy();
        let no_proxy = || {
            self.no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string)
        };
        let proxies = [
            self.https
                .as_ref()
                .map(|p| reqwest::Proxy::https(p.url.as_str())),
            self.http
                .as_ref()
                .map(|p| reqwest::Proxy::http(p.url.as_str())),
        ];
        // A URL that parsed above is one reqwest takes.
        for proxy in proxies.into_iter().flatten().flatten() {
            builder = builder.proxy(proxy.no_proxy(no_proxy()));
        }
        builder
    }

    /// The fix for a proxy that refused its credentials (407) on the way to `url`.
    pub fn refused_hint(&self, url: &Url) -> String {
        match self.for_url(url) {
            Some(p) => format!(
                "the proxy {} refused its credentials (407 Proxy Authentication Required): fix the user name and password in {}; not retried, as repeated failed logins can lock the proxy account",
                p.shown(),
                p.var
            ),
            None => PROXY_REFUSED_HINT.to_string(),
        }
    }
}

/// The fix for a 407 when no proxy is known to have been used.
pub const PROXY_REFUSED_HINT: &str = "a proxy refused its credentials (407 Proxy Authentication Required): fix the user name and password in HTTPS_PROXY; not retried, as repeated failed logins can lock the proxy account";

/// The trust store, the host rule and the crypto provider of a run, built once.
#[derive(Debug, Clone)]
pub struct Network {
    tls: Arc<rustls::ClientConfig>,
    /// Which hosts a URL that came from data (a list row, a token answer) may name.
    pub hosts: HostPolicy,
    /// The proxies from the environment.
    pub proxies: Proxies,
    /// What the trust store holds besides the defaults (printed by `check`).
    pub notes: Vec<String>,
    /// Trust settings that were given but could not be used: every run warns about them.
    pub warnings: Vec<String>,
}

fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = crate::files::read_small(path, crate::files::BUNDLE_CAP).map_err(|error| {
        TlsError::Read {
            path: path.to_path_buf(),
            error,
        }
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The certificates `SSL_CERT_FILE` and `SSL_CERT_DIR` (`:`-separated) name, and what is
/// wrong with each setting that gave none.
fn openssl_store(
    file: Option<&str>,
    dir: Option<&str>,
) -> (Vec<CertificateDer<'static>>, Vec<String>) {
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    let shown = |p: &str| crate::sanitize::shown(p, 200);
    if let Some(file) = file {
        match crate::files::read_small(Path::new(file.trim()), crate::files::BUNDLE_CAP) {
            Ok(bytes) => {
                let found: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
                    .filter_map(Result::ok)
                    .collect();
                if found.is_empty() {
                    problems.push(format!(
                        "SSL_CERT_FILE {} holds no PEM certificate",
                        shown(file)
                    ));
                }
                certs.extend(found);
            }
            Err(e) => problems.push(format!("SSL_CERT_FILE {} cannot be read: {e}", shown(file))),
        }
    }
    for dir in dir
        .into_iter()
        .flat_map(|d| d.split(':'))
        .filter(|d| !d.is_empty())
    {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(format!("SSL_CERT_DIR {} cannot be read: {e}", shown(dir)));
                continue;
            }
        };
        let before = certs.len();
        for entry in entries.flatten() {
            if let Ok(bytes) = crate::files::read_small(&entry.path(), crate::files::BUNDLE_CAP) {
                certs.extend(CertificateDer::pem_slice_iter(&bytes).filter_map(Result::ok));
            }
        }
        if certs.len() == before {
            problems.push(format!(
                "SSL_CERT_DIR {} holds no PEM certificate",
                shown(dir)
            ));
        }
    }
    (certs, problems)
}

impl Network {
    /// Build the trust store from the defaults, `env` and `ca_files`.
    pub fn new(
        ca_files: &[PathBuf],
        hosts: HostPolicy,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, TlsError> {
        let proxies = Proxies::from_env(env)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut notes = Vec::new();
        let mut warnings = Vec::new();
        // The platform's store; SSL_CERT_FILE / SSL_CERT_DIR take its place when set (as for
        // OpenSSL), read here through `env` so that what `check` shows is what `grant` uses.
        let set = |v: &str| env(v).filter(|v| !v.trim().is_empty());
        let (file, dir) = (set("SSL_CERT_FILE"), set("SSL_CERT_DIR"));
        if file.is_none() && dir.is_none() {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        } else {
            let (certs, problems) = openssl_store(file.as_deref(), dir.as_deref());
            let (added, _) = roots.add_parsable_certificates(certs);
            if problems.is_empty() {
                notes.push(format!(
                    "trusting {added} certificate(s) from SSL_CERT_FILE/SSL_CERT_DIR"
                ));
            } else {
                // As for NODE_EXTRA_CA_CERTS: a setting that does not work is said on every
                // run (never only by `check`), and the run goes on with what could be read.
                warnings.push(format!(
                    "{}; trusting {added} certificate(s) from SSL_CERT_FILE/SSL_CERT_DIR and the built-in roots",
                    problems.join("; ")
                ));
            }
        }
        if let Some(extra) = env("NODE_EXTRA_CA_CERTS").filter(|v| !v.trim().is_empty()) {
            // Node warns and goes on when this file is unusable; so do we, loudly.
            match pem_certificates(Path::new(extra.trim())) {
                Ok(certs) => {
                    let (n, _) = roots.add_parsable_certificates(certs);
                    notes.push(format!(
                        "trusting {n} certificate(s) from NODE_EXTRA_CA_CERTS ({extra})"
                    ));
                }
                Err(e) => warnings.push(format!("NODE_EXTRA_CA_CERTS is ignored: {e}")),
            }
        }
        for path in ca_files {
            let certs = pem_certificates(path)?;
            let (n, bad) = roots.add_parsable_certificates(certs);
            if n == 0 {
                return Err(TlsError::NoCertificate { path: path.clone() });
            }
            notes.push(format!(
                "trusting {n} certificate(s) from --ca-file {}{}",
                path.display(),
                if bad > 0 {
                    format!(" ({bad} unusable skipped)")
                } else {
                    String::new()
                }
            ));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            tls: Arc::new(tls),
            hosts,
            proxies,
            notes,
            warnings,
        })
    }

    /// Defaults only: the built-in and platform roots, no extra host (demo, bench, tests).
    pub fn defaults() -> Result<Self, TlsError> {
        Self::new(&[], HostPolicy::default(), &|var| std::env::var(var).ok())
    }

    /// A client builder with this network's trust, the environment's proxies (as read in
    /// [`Network::new`], nothing else), no redirects.
    pub fn builder(&self, request_timeout: Duration) -> reqwest::ClientBuilder {
        self.proxies
            .apply(reqwest::Client::builder())
            .use_preconfigured_tls(rustls::ClientConfig::clone(&self.tls))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .tcp_nodelay(true)
            .user_agent(concat!("fleetauth/", env!("CARGO_PKG_VERSION")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let none = |_: &str| None;
        let err = Network::new(&[junk], HostPolicy::default(), &none).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        let missing = tmp.path().join("missing.pem");
        let err = Network::new(&[missing], HostPolicy::default(), &none).unwrap_err();
        assert!(err.to_string().contains("cannot read the CA file"), "{err}");
    }

    #[test]
    fn an_unusable_node_extra_ca_certs_is_a_note_not_silence() {
        let env = |v: &str| (v == "NODE_EXTRA_CA_CERTS").then(|| "/nonexistent/ca.pem".into());
        let net = Network::new(&[], HostPolicy::default(), &env).unwrap();
        assert!(
            net.warnings
                .iter()
                .any(|n| n.contains("NODE_EXTRA_CA_CERTS is ignored")),
            "{:?}",
            net.warnings
        );
    }

    #[test]
    fn a_proxy_variable_that_does_not_parse_is_an_error_naming_it_never_its_password() {
        for var in [
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "HTTP_PROXY",
        ] {
            for bad in [
                "http://ci-bot:s3cr3t-pw@proxy.corp:notaport",
                "http://ci-bot:s3cr3t-pw@",
                "socks5://ci-bot:s3cr3t-pw@proxy.corp:1080",
                "http://ci-bot:s3cr3t-pw@proxy.corp:3128/some/path",
                "http://ci-bot:s3cr3t-pw@[::1",
            ] {
                let env = |v: &str| (v == var).then(|| bad.to_string());
                let err = Network::new(&[], HostPolicy::default(), &env).unwrap_err();
                let text = err.to_string();
                assert!(matches!(err, TlsError::Proxy { .. }), "{var}={bad}: {text}");
                assert!(text.starts_with(var), "{text}");
                assert!(
                    !text.contains("s3cr3t") && !text.contains("ci-bot"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn proxies_are_read_as_curl_reads_them_and_shown_without_credentials() {
        let env = |v: &str| match v {
            "https_proxy" => Some("ci-bot:pw@proxy.corp:3128".into()),
            "ALL_PROXY" => Some("http://all.corp:8080".into()),
            "HTTPS_PROXY" => Some("  ".into()),
            _ => None,
        };
        let p = Proxies::from_env(&env).unwrap();
        let https = p.https.as_ref().unwrap();
        assert_eq!(
            (https.var, https.shown().as_str()),
            ("https_proxy", "proxy.corp:3128")
        );
        assert!(!format!("{p:?}").contains("pw"), "{p:?}");
        assert_eq!(p.http.as_ref().unwrap().shown(), "all.corp:8080");
        let hint = p.refused_hint(&Url::parse("https://test.salesforce.com").unwrap());
        assert!(
            hint.contains("proxy.corp:3128") && hint.contains("https_proxy"),
            "{hint}"
        );
        assert!(!hint.contains("pw@") && !hint.contains("ci-bot"), "{hint}");
        assert!(Proxies::from_env(&|_| None).unwrap().https.is_none());
    }

    #[test]
    fn a_bad_ssl_cert_file_is_a_warning_on_every_run() {
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        for path in [tmp.path().join("missing.pem"), junk] {
            let shown = path.display().to_string();
            let env = move |v: &str| (v == "SSL_CERT_FILE").then(|| shown.clone());
            let net = Network::new(&[], HostPolicy::default(), &env).unwrap();
            assert!(
                net.warnings.iter().any(|w| w.starts_with("SSL_CERT_FILE ")),
                "{}: {:?} {:?}",
                path.display(),
                net.warnings,
                net.notes
            );
        }
    }
}
