//! Flags → one validated configuration, once: durations, URLs, limits and the loaded key.
//! Everything after this module works with checked values; nothing past it sees clap.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::assertion::Signer;
use crate::cli::GrantArgs;
use crate::credentials::{self, KeyError};
use crate::fleet::Limits;
use crate::input::Format;
use crate::retry::Policy;
use crate::urls;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Key(#[from] KeyError),
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
    pub policy: Policy,
    pub limits: Limits,
    pub request_timeout: Duration,
    pub out_dir: PathBuf,
    pub report: Option<PathBuf>,
    pub output: Output,
}

const MAX_CONCURRENCY: usize = 1024;

impl GrantConfig {
    pub fn from_args(
        args: GrantArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let usage = |m: String| ConfigError::Usage(m);
        let client_id = args
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
        let host = urls::token_host(&args.instance_url)
            .map_err(|e| usage(format!("--instance-url: {e}")))?;
        let audience = Url::parse(args.audience.trim()).map_err(|e| {
            usage(format!(
                "--audience `{}` is not a URL ({e}); scratch orgs use https://test.salesforce.com",
                args.audience
            ))
        })?;
        let key = credentials::load(args.jwt_key_file.as_deref(), env)?;
        let signer = Signer::new(key, client_id, urls::display(&audience));
        Ok(Self {
            orgs: args.orgs,
            format: args.format,
            signer,
            host,
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
        })
    }
}
