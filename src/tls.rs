//! The network a run talks through: whom it trusts and how it gets out. One place builds the
//! HTTP clients (token requests, sf's org probe), so every request gets the same rules:
//! - trust: the built-in web PKI roots, the platform's store (`SSL_CERT_FILE` and
//!   `SSL_CERT_DIR` replace it, as for OpenSSL), the CAs in `NODE_EXTRA_CA_CERTS` (what `sf`
//!   users behind a TLS-inspecting proxy already set) and `--ca-file`; one crypto provider;
//! - the proxy from `HTTPS_PROXY`/`https_proxy`/`ALL_PROXY` with `NO_PROXY` (credentials in
//!   the proxy URL are used, never printed);
//! - no redirects: a token host that redirects never gets the assertion a second time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

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
}

/// The trust store, the host rule and the crypto provider of a run, built once.
#[derive(Debug, Clone)]
pub struct Network {
    tls: Arc<rustls::ClientConfig>,
    /// Which hosts a URL that came from data (a list row, a token answer) may name.
    pub hosts: HostPolicy,
    /// What the trust store holds besides the defaults (printed by `check`).
    pub notes: Vec<String>,
    /// Trust settings that were given but could not be used: every run warns about them.
    pub warnings: Vec<String>,
}

fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_path_buf(),
        error,
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

impl Network {
    /// Build the trust store from the defaults, `env` and `ca_files`.
    pub fn new(
        ca_files: &[PathBuf],
        hosts: HostPolicy,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut notes = Vec::new();
        let mut warnings = Vec::new();
        // The platform's store; SSL_CERT_FILE / SSL_CERT_DIR take its place when set.
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if env("SSL_CERT_FILE").is_some() || env("SSL_CERT_DIR").is_some() {
            notes.push(format!(
                "trusting {added} certificate(s) from SSL_CERT_FILE/SSL_CERT_DIR"
            ));
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
            notes,
            warnings,
        })
    }

    /// Defaults only: the built-in and platform roots, no extra host (demo, bench, tests).
    pub fn defaults() -> Result<Self, TlsError> {
        Self::new(&[], HostPolicy::default(), &|var| std::env::var(var).ok())
    }

    /// A client builder with this network's trust, the environment's proxy, no redirects.
    pub fn builder(&self, request_timeout: Duration) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
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
}
