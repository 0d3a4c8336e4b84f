//! The emulator's HTTP side (hyper, HTTP/1.1 keep-alive): routes, latency, fault injection and
//! the Salesforce-shaped answers.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::frontdoor::Frontdoor;
use super::rest::{self, Sessions};
use super::stats::Stats;
use super::verify::{Verdict, Verifier};
use super::{EmulatorConfig, Fault};

use super::answers;

struct State {
    config: EmulatorConfig,
    verifier: Verifier,
    stats: Arc<Stats>,
    sessions: Arc<Sessions>,
    hub: Arc<super::hub::Hub>,
    frontdoor: Arc<Frontdoor>,
    base_url: String,
}

/// A running emulator. Dropping it stops accepting connections.
pub struct EmulatorHandle {
    pub addr: SocketAddr,
    scheme: &'static str,
    pub stats: Arc<Stats>,
    sessions: Arc<Sessions>,
    hub: Arc<super::hub::Hub>,
    /// Single-use login links: counters, and a scripted answer for tests.
    pub frontdoor: Arc<Frontdoor>,
    accept: JoinHandle<()>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:<port>` (`https://` with TLS), the `--instance-url` to use.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Expire every session issued so far: REST calls with those tokens get 401
    /// `INVALID_SESSION_ID`, as after a session timeout. Returns how many were expired.
    pub fn expire_sessions(&self) -> usize {
        self.sessions.expire_all()
    }

    /// ScratchOrgInfo query pages the hub served so far (first pages and `nextRecordsUrl`s).
    pub fn hub_pages(&self) -> u64 {
        self.hub.pages.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the emulator's certificate is not a usable RSA certificate: {0}")]
    Certificate(jsonwebtoken::errors::Error),
    #[error("cannot listen on 127.0.0.1:{port}: {error}")]
    Bind { port: u16, error: std::io::Error },
    #[error("the emulator's TLS identity is unusable: {0}")]
    Tls(String),
}

fn acceptor(identity: &super::TlsIdentity) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: &dyn std::fmt::Display| StartError::Tls(e.to_string());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(identity.cert_chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).map_err(|e| bad(&e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Start the emulator on 127.0.0.1:`port` (0 picks a free port).
pub async fn start(config: EmulatorConfig, port: u16) -> Result<EmulatorHandle, StartError> {
    let verifier = Verifier::new(&config.certificate_pem).map_err(StartError::Certificate)?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| StartError::Bind { port, error })?;
    let addr = listener
        .local_addr()
        .map_err(|error| StartError::Bind { port, error })?;
    let tls = config.tls.as_ref().map(acceptor).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let stats = Arc::new(Stats::new());
    let sessions = Arc::new(Sessions::default());
    let hub = Arc::new(super::hub::Hub::default());
    let frontdoor = Arc::new(Frontdoor::default());
    let state = Arc::new(State {
        config,
        verifier,
        stats: Arc::clone(&stats),
        sessions: Arc::clone(&sessions),
        hub: Arc::clone(&hub),
        frontdoor: Arc::clone(&frontdoor),
        base_url: format!("{scheme}://{addr}"),
    });
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = Arc::clone(&state);
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(Arc::clone(&state), req));
                let mut http = http1::Builder::new();
                let _ = match tls {
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => {
                            http.keep_alive(true)
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Err(_) => return,
                    },
                    None => {
                        http.keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                };
            });
        }
    });
    Ok(EmulatorHandle {
        addr,
        scheme,
        stats,
        sessions,
        hub,
        frontdoor,
        accept,
    })
}

/// The error returned to hyper to drop a connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("injected connection reset")]
struct InjectedReset;

type Answer = Result<Response<Full<Bytes>>, InjectedReset>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Answer {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/services/oauth2/token") => {
            let in_second = state.stats.begin();
            let answer = token(&state, req, in_second).await;
            state.stats.end();
            answer
        }
        (&Method::GET, "/_emulator/stats") => {
            let body = serde_json::to_vec(&state.stats.snapshot()).unwrap_or_default();
            Ok(respond(StatusCode::OK, "application/json", body))
        }
        (&Method::GET, "/_emulator/frontdoor") => {
            let body = serde_json::to_vec(&state.frontdoor.snapshot()).unwrap_or_default();
            Ok(respond(StatusCode::OK, "application/json", body))
        }
        (&Method::POST, "/_emulator/expire") => {
            let expired = state.sessions.expire_all();
            Ok(respond(
                StatusCode::OK,
                "application/json",
                format!("{{\"expired\":{expired}}}"),
            ))
        }
        (
            &Method::GET | &Method::POST,
            "/services/oauth2/singleaccess" | "/secur/frontdoor.jsp",
        ) => Ok(frontdoor(&state, req).await),
        (&Method::GET, path)
            if path.starts_with("/services/data") || path == "/services/oauth2/userinfo" =>
        {
            let authorization = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            let (status, body) = rest::handle(
                &state.config,
                &state.sessions,
                &state.hub,
                &state.base_url,
                path,
                req.uri().query(),
                authorization,
            );
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Ok(respond(
                status,
                "application/json;charset=UTF-8",
                body.to_string(),
            ))
        }
        _ => Ok(json_error(
            404,
            "NOT_FOUND",
            "The requested resource does not exist",
        )),
    }
}

/// Single-use login links: issued by `singleaccess`, used at `frontdoor.jsp`.
async fn frontdoor(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let query = req.uri().query().unwrap_or_default().to_string();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let page = if path == "/secur/frontdoor.jsp" && method == Method::GET {
        state
            .frontdoor
            .open(&query, state.base_url.starts_with("https:"))
    } else if path == "/secur/frontdoor.jsp" {
        return json_error(405, "METHOD_NOT_ALLOWED", "use GET");
    } else {
        // POST carries `redirect_uri` form-encoded; GET may carry it in the query.
        let form = if method == Method::POST {
            match req.into_body().collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                Err(_) => String::new(),
            }
        } else {
            query
        };
        state.frontdoor.singleaccess(
            &state.sessions,
            &state.base_url,
            method.as_str(),
            authorization.as_deref(),
            &form,
        )
    };
    let mut response = respond(
        StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &page.content_type,
        page.body,
    );
    for (name, value) in page.headers {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(body.into()))
        .expect("static headers are valid")
}

fn json_error(status: u16, error: &str, description: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"error": error, "error_description": description}).to_string();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    respond(status, "application/json;charset=UTF-8", body)
}

fn roll_fault(config: &EmulatorConfig) -> Option<Fault> {
    if config.faults.is_empty() {
        return None;
    }
    let mut rng = rand::thread_rng();
    let mut x: f64 = rng.gen();
    for &(fault, p) in &config.faults {
        if x < p {
            return Some(fault);
        }
        x -= p;
    }
    None
}

async fn token(state: &State, req: Request<Incoming>, in_second: u64) -> Answer {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(InjectedReset),
    };
    let config = &state.config;
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    if let Some(fault) = roll_fault(config) {
        state.stats.fault(fault.name());
        match fault {
            Fault::ServerError => {
                return Ok(json_error(500, "unknown_error", "retry your request"))
            }
            Fault::Maintenance => {
                return Ok(respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/html",
                    answers::body(answers::MAINTENANCE),
                ))
            }
            Fault::NotReady => {
                let status = StatusCode::from_u16(420).expect("420 is a valid status code");
                return Ok(respond(
                    status,
                    "text/html",
                    answers::body(answers::NOT_READY),
                ));
            }
            Fault::Reset => return Err(InjectedReset),
            Fault::Truncated => {
                return Ok(respond(
                    StatusCode::OK,
                    "application/json;charset=UTF-8",
                    answers::body(answers::TRUNCATED),
                ));
            }
            Fault::Slow => {
                tokio::time::sleep(config.slow_delay).await;
                return Ok(respond(
                    StatusCode::GATEWAY_TIMEOUT,
                    "text/html",
                    answers::body(answers::GATEWAY_TIMEOUT),
                ));
            }
        }
    }
    let since_start = state.stats.started().elapsed();
    let verdict = state.verifier.judge(
        config,
        &state.base_url,
        content_type.as_deref(),
        &body,
        since_start,
    );
    let username = match &verdict {
        Verdict::Grant { username } => Some(username.as_str()),
        Verdict::Reject { username, .. } => username.as_deref(),
    };
    if let Some(u) = username {
        state.stats.attempt(u);
    }
    if config
        .login_rate
        .is_some_and(|limit| in_second > u64::from(limit))
    {
        state.stats.answer("login rate exceeded");
        return Ok(json_error(400, "invalid_grant", "login rate exceeded"));
    }
    match verdict {
        Verdict::Reject {
            status,
            error,
            description,
            ..
        } => {
            state.stats.answer(&format!("{error}: {description}"));
            Ok(json_error(status, &error, &description))
        }
        Verdict::Grant { username } if super::hub::eca_refuses(config, &username) => {
            state
                .stats
                .answer("invalid_client_id: client identifier invalid");
            Ok(json_error(
                400,
                "invalid_client_id",
                "client identifier invalid",
            ))
        }
        Verdict::Grant { username } => {
            let (org_id, user_id) = (ids::org_id(&username), ids::user_id(&username));
            let token = format!("{}!AQ0A{}", &org_id[..15], random_token());
            state.stats.granted(&username, &token);
            state.sessions.open(&token, &username);
            let body = serde_json::json!({
                "access_token": token,
                "signature": "emulated",
                "scope": "web openid api id",
                "instance_url": state.base_url,
                "id": format!("{}/id/{org_id}/{user_id}", state.base_url),
                "token_type": "Bearer",
                "issued_at": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()).to_string(),
            });
            Ok(respond(
                StatusCode::OK,
                "application/json;charset=UTF-8",
                body.to_string(),
            ))
        }
    }
}

/// 96 characters from a 64-character alphabet: 576 bits from the OS random source (aws-lc-rs).
pub(crate) fn random_token() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let mut bytes = [0u8; 96];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random source works");
    bytes
        .iter()
        .map(|&b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}

/// Stable 18-character Salesforce ids derived from the username.
pub mod ids {
    use std::hash::{DefaultHasher, Hash, Hasher};

    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    fn id(prefix: &str, seed: &str) -> String {
        let mut h = DefaultHasher::new();
        (prefix, seed).hash(&mut h);
        let mut n = h.finish();
        let mut id15 = String::from(prefix);
        id15.push('0');
        while id15.len() < 15 {
            id15.push(char::from(BASE62[(n % 62) as usize]));
            n /= 62;
        }
        with_checksum(&id15)
    }

    /// The 3-character suffix that makes a 15-character id case-insensitively unique.
    pub fn with_checksum(id15: &str) -> String {
        const MAP: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
        let mut out = id15.to_string();
        for chunk in id15.as_bytes().chunks(5) {
            let bits = chunk.iter().enumerate().fold(0usize, |acc, (i, c)| {
                acc | (usize::from(c.is_ascii_uppercase()) << i)
            });
            out.push(char::from(MAP[bits]));
        }
        out
    }

    pub fn org_id(username: &str) -> String {
        id("00D", username)
    }

    pub fn user_id(username: &str) -> String {
        id("005", username)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn checksum_matches_salesforce_examples() {
            assert_eq!(
                super::with_checksum("00Dxx0000001gPL"),
                "00Dxx0000001gPLEAY"
            );
            assert_eq!(
                super::with_checksum("005xx000001SwiU"),
                "005xx000001SwiUAAS"
            );
            assert_eq!(super::org_id("a@x.com").len(), 18);
        }
    }
}
