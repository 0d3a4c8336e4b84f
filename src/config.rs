//! Flags → one validated configuration, once: durations, URLs, limits and the loaded key.
//! Everything after this module works with checked values; nothing past it sees clap.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::assertion::Signer;
use crate::cli::{GrantArgs, SfArgs};
use crate::credentials::{self, KeyError};
use crate::fleet::Limits;
use crate::input::Format;
use crate::retry::Policy;
use crate::tls::Network;
use crate::urls::{self, HostPolicy};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// How a run talks to the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub quiet: bool,
    pub json: bool,
}

#[derive(Debug)]
pub struct GrantConfig {
    pub orgs: PathBuf,
    pub format: Option<Format>,
    pub signer: Signer,
    /// The run's token host (`--instance-url`), the fallback for rows with their own.
    pub host: Url,
    /// Trust, proxy and the hosts data may name (`--ca-file`, `--allow-host`).
    pub network: Network,
    pub policy: Policy,
    pub limits: Limits,
    pub request_timeout: Duration,
    pub out_dir: PathBuf,
    pub report: Option<PathBuf>,
    pub output: Output,
    pub sf: Option<SfOptions>,
    /// Skip orgs authorized more recently than this (`None` with `--force`).
    pub fresh_for: Option<Duration>,
    pub deadline: Option<Duration>,
    pub shard: Option<crate::plan::Shard>,
}

/// Where and how to hand the orgs to the Salesforce CLI.
#[derive(Debug, Clone)]
pub struct SfOptions {
    pub home: PathBuf,
    /// Re-point sf aliases that already name another username.
    pub replace_aliases: bool,
    pub alias_prefix: Option<String>,
    pub dev_hub: Option<String>,
}

impl SfOptions {
    pub fn from_args(
        args: SfArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let enabled = args.sf || args.sf_home.is_some();
        if !enabled {
            if args.alias_prefix.is_some() || args.dev_hub_username.is_some() {
                return Err(ConfigError::Usage("--alias-prefix and --dev-hub-username are for the Salesforce CLI's state: add --sf".into()));
            }
            return Ok(None);
        }
        let home = match args.sf_home {
            Some(h) => h,
            None => env("HOME")
                .map(PathBuf::from)
                .ok_or_else(|| ConfigError::Usage("$HOME is not set: pass --sf-home DIR".into()))?,
        };
        if let Some(p) = &args.alias_prefix {
            if p.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::Usage(format!(
                    "--alias-prefix {p:?} must be a non-empty word without spaces"
                )));
            }
        }
        Ok(Some(Self {
            home,
            replace_aliases: args.replace_aliases,
            alias_prefix: args.alias_prefix,
            dev_hub: args.dev_hub_username,
        }))
    }
}

const MAX_CONCURRENCY: usize = 1024;

impl GrantConfig {
    pub fn from_args(
        args: GrantArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let usage = |m: String| ConfigError::Usage(m);
        let client_id = args
            .target
            .client_id
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| usage("no consumer key: pass --client-id (-i) or set SFDX_CLIENT_ID to the connected app's consumer key".into()))?;
        if !(1..=MAX_CONCURRENCY).contains(&args.concurrency) {
            return Err(usage(format!(
                "--concurrency {} is out of range; use 1 to {MAX_CONCURRENCY}",
                args.concurrency
            )));
        }
        if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 100_000.0) {
            return Err(usage(format!(
                "--rate {} is out of range; use a positive number of requests per second",
                args.rate
            )));
        }
        if args.request_timeout.is_zero() {
            return Err(usage(
                "--request-timeout must be longer than zero, e.g. 30s".into(),
            ));
        }
        let host = urls::token_host(&args.target.instance_url)
            .map_err(|e| usage(format!("--instance-url: {e}")))?;
        let audience = Url::parse(args.target.audience.trim()).map_err(|e| {
            usage(format!(
                "--audience `{}` is not a URL ({e}); scratch orgs use https://test.salesforce.com",
                args.target.audience
            ))
        })?;
        let hosts = HostPolicy::new(&args.target.allow_hosts)
            .map_err(usage)?
            .with_host_of(&host);
        let network = Network::new(&args.target.ca_files, hosts, &env)?;
        let sf = SfOptions::from_args(args.sf, &env)?;
        let key = credentials::load_with(
            args.target.jwt_key_file.as_deref(),
            &env,
            args.target.jwt_key_passphrase_env.as_deref(),
        )?;
        if let Some(cert) = &args.target.cert {
            let pem = std::fs::read(cert)
                .map_err(|e| usage(format!("cannot read --cert {}: {e}", cert.display())))?;
            credentials::check_certificate(&key, &pem, &cert.display().to_string())?;
        }
        let signer = Signer::new(key, client_id, urls::display(&audience));
        Ok(Self {
            orgs: args.orgs,
            format: args.format,
            signer,
            host,
            network,
            policy: Policy {
                replication_budget: args.replication_timeout,
                max_retries: args.max_retries,
                ..Policy::default()
            },
            limits: Limits {
                concurrency: args.concurrency,
                rate: args.rate,
                rate_limited_pause: Duration::from_secs(5),
                grace: Duration::from_secs(3),
            },
            request_timeout: args.request_timeout,
            out_dir: args.out_dir,
            report: args.report,
            output: Output {
                quiet: args.quiet,
                json: args.json,
            },
            sf,
            fresh_for: (!args.force).then_some(args.fresh_for),
            deadline: args.deadline,
            shard: args.shard,
        })
    }
}
