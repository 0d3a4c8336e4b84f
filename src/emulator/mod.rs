//! The emulator: a Salesforce OAuth token endpoint on 127.0.0.1 for the demo, the tests and the
//! benchmarks (never used by a real run). It verifies each assertion against the connected
//! app's certificate and answers with the statuses and bodies of `reference/token-endpoint.md`,
//! with knobs for replication delays, latency, faults and a login rate limit, and counters
//! that tests read.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "the emulator is the tests' and the demo's server, never part of a real run: a broken invariant there is a bug a test must show loudly"
)]

pub mod answers;
mod frontdoor;
mod hub;
mod rest;
mod server;
mod stats;
mod verify;

use std::collections::HashMap;
use std::time::Duration;

pub use frontdoor::{Frontdoor, FrontdoorStats, ScriptedLink};
pub use hub::ScratchOrg;
pub use server::{start, EmulatorHandle};
pub use stats::{Stats, StatsSnapshot};

/// The kinds of fault the emulator can inject, each with its own probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// 500 `unknown_error` / `retry your request`.
    ServerError,
    /// 503 with an HTML maintenance page.
    Maintenance,
    /// 420 with an HTML body (org not ready or in maintenance).
    NotReady,
    /// The connection is dropped without an answer.
    Reset,
    /// 200 with a success body cut in half.
    Truncated,
    /// The answer comes after `slow_delay` (beyond the client's timeout), as a 504.
    Slow,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::ServerError,
        Fault::Maintenance,
        Fault::NotReady,
        Fault::Reset,
        Fault::Truncated,
        Fault::Slow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::ServerError => "500",
            Fault::Maintenance => "503",
            Fault::NotReady => "420",
            Fault::Reset => "reset",
            Fault::Truncated => "truncated",
            Fault::Slow => "slow",
        }
    }

    pub fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A scripted answer for one user instead of a grant: (status, error, error_description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripted {
    pub status: u16,
    pub error: String,
    pub description: String,
}

/// One scratch-org admin the emulator knows.
#[derive(Debug, Clone, Default)]
pub struct User {
    /// Grants fail with `user hasn't approved this consumer` until this long after start.
    pub replication_delay: Duration,
    /// Answer this instead of granting, every time.
    pub scripted: Option<Scripted>,
    /// A Dev Hub: can query ScratchOrgInfo, and is no scratch org itself.
    pub dev_hub: bool,
}

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// PEM of the certificate uploaded to the connected app.
    pub certificate_pem: Vec<u8>,
    /// The connected app's consumer key (`iss`).
    pub client_id: String,
    /// Known users by exact username. Unknown users get `invalid_grant` / `invalid user`...
    pub users: HashMap<String, User>,
    /// ...unless this is set: then every user is known, with this replication delay.
    pub any_user: Option<Duration>,
    /// `aud` values accepted.
    pub audiences: Vec<String>,
    /// Added to every answer.
    pub latency: Duration,
    /// Probability of each fault per request.
    pub faults: Vec<(Fault, f64)>,
    pub slow_delay: Duration,
    /// Token requests accepted per second across the server; beyond it, `login rate exceeded`.
    pub login_rate: Option<u32>,
    /// Serve HTTPS with this certificate chain and key (PEM) instead of plain HTTP.
    pub tls: Option<TlsIdentity>,
    /// The Dev Hub's ScratchOrgInfo rows; empty: one Active org per known user.
    pub scratch_orgs: Vec<ScratchOrg>,
    /// ScratchOrgInfo records per query page (Salesforce: up to 2,000).
    pub hub_batch: usize,
    /// `ActiveScratchOrgs` and `DailyScratchOrgs` maxima in `/limits`.
    pub hub_limits: (u32, u32),
    /// The hub's app is an External Client App: scratch orgs answer `invalid_client_id`.
    pub eca_hub: bool,
}

/// The emulator's own certificate chain and key, for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    pub cert_chain_pem: String,
    pub key_pem: String,
}

impl EmulatorConfig {
    pub fn new(certificate_pem: Vec<u8>, client_id: impl Into<String>) -> Self {
        Self {
            certificate_pem,
            client_id: client_id.into(),
            users: HashMap::new(),
            any_user: None,
            audiences: vec![
                "https://test.salesforce.com".into(),
                "https://login.salesforce.com".into(),
            ],
            latency: Duration::ZERO,
            faults: Vec::new(),
            slow_delay: Duration::from_secs(60),
            login_rate: None,
            tls: None,
            scratch_orgs: Vec::new(),
            hub_batch: 2000,
            hub_limits: (200, 400),
            eca_hub: false,
        }
    }
}

/// The certificate and key the demo and the tests use (fixtures/keys), built into the binary.
pub mod test_keys {
    pub const CERTIFICATE: &str = include_str!("../../fixtures/keys/server.crt");
    pub const PRIVATE_KEY: &str = include_str!("../../fixtures/keys/server.key");
    pub const CLIENT_ID: &str = "3MVG9fleetauthDEMOconsumerKEY";
}

/// The org id and user id the emulator gives `username` (stable across runs).
pub fn ids_for(username: &str) -> (String, String) {
    (
        server::ids::org_id(username),
        server::ids::user_id(username),
    )
}
