//! Flags → one validated configuration, once: durations, URLs, limits and the loaded key.
//! Everything after this module works with checked values; nothing past it sees clap.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::assertion::Signer;
use crate::cli::{GrantArgs, KeyArgs, NetworkArgs, SfArgs, TargetArgs};
use crate::credentials::{self, KeyError};
use crate::defaults;
use crate::fleet::Limits;
use crate::input::Format;
use crate::retry::Policy;
use crate::tls::Network;
use crate::urls::{self, HostPolicy};

mod check;
mod login;
mod token;

pub use login::LoginConfig;

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
    /// The org lists, read as one; none: the Dev Hub's Active scratch orgs (`hub` is then set).
    pub orgs: Vec<PathBuf>,
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
    /// The CI-facing reports besides report.json.
    pub ci: CiReports,
    /// The Dev Hub to ask before sending anything (`-v`).
    pub hub: Option<crate::hub::HubOptions>,
}

/// Where the CI-facing reports of a run go: `--summary-md`, `--junit`, and
/// `$GITHUB_STEP_SUMMARY` unless `--no-step-summary`.
#[derive(Debug, Clone, Default)]
pub struct CiReports {
    pub summary_md: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub step_summary: Option<PathBuf>,
}

impl CiReports {
    /// Every path the run will write, for the preflight.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.summary_md, &self.junit, &self.step_summary]
            .into_iter()
            .flatten()
    }
}

/// Where and how to hand the orgs to the Salesforce CLI.
#[derive(Debug, Clone)]
pub struct SfOptions {
    pub home: PathBuf,
    /// Re-point sf aliases that already name another username.
    pub replace_aliases: bool,
    pub alias_prefix: Option<String>,
    pub dev_hub: Option<String>,
    /// `dev_hub` came from `-v`, not `--dev-hub-username`: sf need not know it yet.
    pub dev_hub_from_target: bool,
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
            Some(h) => {
                recorded_path(
                    &crate::sfstate::absolute(&h),
                    "--sf-home",
                    "sf's auth files",
                )?;
                h
            }
            None => env("HOME")
                .map(PathBuf::from)
                .ok_or_else(|| ConfigError::Usage("$HOME is not set: pass --sf-home DIR".into()))?,
        };
        if let Some(p) = &args.alias_prefix {
            if p.is_empty()
                || p.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || crate::sanitize::is_bidi_control(c)
                })
            {
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
            dev_hub_from_target: false,
        }))
    }
}

/// A path fleetauth records as text (sf's auth files, report.json) must be UTF-8: a lossy
/// copy (`\u{FFFD}` for each byte that is not) would name a file that does not exist, and sf's
/// later refreshes would fail while the run said it worked. Refused before anything is sent.
pub fn recorded_path(path: &Path, what: &str, recorded_in: &str) -> Result<(), ConfigError> {
    if path.to_str().is_some() {
        return Ok(());
    }
    Err(ConfigError::Usage(format!(
        "{what} {} is not valid UTF-8, and it is recorded as text in {recorded_in}: rename or move it to a path whose name is UTF-8",
        crate::sanitize::shown(&path.to_string_lossy(), 200)
    )))
}

/// The key file sf re-reads to refresh tokens, with `--sf` (and `fleetauth login`): recorded
/// as `privateKey`, absolute, in sf's auth files.
pub fn recorded_key_path(args: &KeyArgs) -> Result<(), ConfigError> {
    match &args.jwt_key_file {
        Some(path) => recorded_path(
            &crate::sfstate::absolute(path),
            "--jwt-key-file",
            "sf's auth files (privateKey)",
        ),
        None => Ok(()),
    }
}

const MAX_CONCURRENCY: usize = 1024;

/// A `--concurrency` the fleet can take: 1 to 1,024 requests in flight.
pub fn check_concurrency(concurrency: usize) -> Result<(), String> {
    if (1..=MAX_CONCURRENCY).contains(&concurrency) {
        Ok(())
    } else {
        Err(format!(
            "--concurrency {concurrency} is out of range; use 1 to {MAX_CONCURRENCY}"
        ))
    }
}
/// The most token requests per second a run may be given.
pub const MAX_RATE: f64 = 100_000.0;

/// A `--rate` the limiter can take: positive, at most [`MAX_RATE`], and not so small that one
/// request's interval overflows a duration (`1e-20` would panic).
pub fn check_rate(rate: f64) -> Result<(), String> {
    let interval_fits = rate > 0.0 && Duration::try_from_secs_f64(1.0 / rate).is_ok();
    if rate.is_finite() && rate <= MAX_RATE && interval_fits {
        Ok(())
    } else {
        Err(format!(
            "--rate {rate} is out of range; use a positive number of token requests per second up to {MAX_RATE} (e.g. 0.5 for one every 2 s)"
        ))
    }
}

/// Who signs and where it goes, validated: the key and consumer key (the signer), the token
/// host, the audience, the trust store and the hosts data may name.
#[derive(Debug)]
pub struct TargetConfig {
    pub signer: Signer,
    pub host: Url,
    pub network: Network,
}

impl TargetConfig {
    /// Validate the target flags: consumer key, host, audience, CAs, key (and certificate).
    pub fn from_args(
        args: TargetArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let client_id = consumer_key(&args.key)?;
        let host = urls::token_host(&args.instance_url)
            .map_err(|e| ConfigError::Usage(format!("--instance-url: {e}")))?;
        let audience =
            audience_setting(args.audience, env).unwrap_or_else(|| defaults::AUDIENCE.to_string());
        let audience = parse_audience(&audience)?;
        let network = network(&args.network, &host, env)?;
        let key = key(&args.key, env)?;
        let signer = Signer::new(key, client_id, urls::display(&audience));
        Ok(Self {
            signer,
            host,
            network,
        })
    }
}

/// The consumer key (`-i`, `$SFDX_CLIENT_ID`), trimmed; an error saying where to put it.
pub fn consumer_key(args: &KeyArgs) -> Result<String, ConfigError> {
    let key = args
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ConfigError::Usage("no consumer key: pass --client-id (-i) or set SFDX_CLIENT_ID to the connected app's consumer key".into()))?;
    // A private key here (two CI secrets swapped) would be signed into every assertion's
    // `iss` and written to every report: refused, and never quoted.
    let key_text = key.contains("-----") || key.starts_with("LS0tLS1") || key.len() > 300;
    if key_text || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::Usage("the consumer key (--client-id, -i, or $SFDX_CLIENT_ID) does not look like one: a connected app's consumer key is one word of letters, digits, `.` and `_` (about 85 characters); if it holds the private key, the two secrets are swapped: the key goes to -f, $SFDX_HUB_KEY or $SFDX_HUB_KEY_BASE64".into()));
    }
    Ok(key.to_string())
}

/// The private key from `-f` or the environment, decrypted with the passphrase variable, and
/// checked against `--cert` when given.
pub fn key(
    args: &KeyArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<credentials::SigningKey, ConfigError> {
    let key = credentials::load_with(
        args.jwt_key_file.as_deref(),
        env,
        args.jwt_key_passphrase_env.as_deref(),
    )?;
    if let Some(cert) = &args.cert {
        let pem = crate::files::read_small(cert, crate::files::KEY_CAP).map_err(|e| {
            ConfigError::Usage(format!("cannot read --cert {}: {e}", cert.display()))
        })?;
        credentials::check_certificate(&key, &pem, &cert.display().to_string())?;
    }
    Ok(key)
}

/// The network from its flags: the trust store (`--ca-file` and the environment's), the proxy,
/// and the hosts data may name (`--allow-host`, plus the token host's own).
pub fn network(
    args: &NetworkArgs,
    host: &Url,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Network, ConfigError> {
    let hosts = HostPolicy::new(&args.allow_hosts)
        .map_err(ConfigError::Usage)?
        .with_host_of(host);
    Ok(Network::new(&args.ca_files, hosts, env)?)
}

/// A `--request-timeout` that can work: longer than zero.
pub fn check_request_timeout(timeout: Duration) -> Result<(), ConfigError> {
    if timeout.is_zero() {
        return Err(ConfigError::Usage(
            "--request-timeout must be longer than zero, e.g. 30s".into(),
        ));
    }
    Ok(())
}

/// The audience asked for: `--audience` (or `$SF_AUDIENCE_URL`, which clap reads into it), else
/// `$SFDX_AUDIENCE_URL`, sf's older name for the same setting. Empty values count as unset.
pub fn audience_setting(
    flag: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    flag.or_else(|| env("SFDX_AUDIENCE_URL"))
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
}

/// An audience URL, or a usage error saying what it should be.
pub fn parse_audience(audience: &str) -> Result<Url, ConfigError> {
    Url::parse(audience).map_err(|e| {
        ConfigError::Usage(format!(
            "--audience `{audience}` is not a URL ({e}); scratch orgs use https://test.salesforce.com"
        ))
    })
}

impl TargetConfig {
    /// The built-in emulator at `url`, signed with the demo key written to `key_file`.
    pub fn emulator(url: &str, key_file: &std::path::Path) -> Result<Self, ConfigError> {
        let args = TargetArgs {
            key: KeyArgs {
                client_id: Some(crate::emulator::test_keys::CLIENT_ID.to_string()),
                jwt_key_file: Some(key_file.to_path_buf()),
                ..KeyArgs::default()
            },
            instance_url: url.to_string(),
            audience: Some(defaults::AUDIENCE.to_string()),
            network: NetworkArgs::default(),
        };
        Self::from_args(args, &|_| None)
    }
}

impl GrantConfig {
    /// A run of the lists `orgs` (none: the Dev Hub's orgs) against `target`, with every other
    /// setting at its default.
    pub fn new(orgs: Vec<PathBuf>, target: TargetConfig) -> Self {
        Self {
            orgs,
            format: None,
            signer: target.signer,
            host: target.host,
            network: target.network,
            policy: Policy {
                replication_budget: defaults::REPLICATION_TIMEOUT,
                max_retries: defaults::MAX_RETRIES,
                ..Policy::default()
            },
            limits: Limits {
                concurrency: defaults::CONCURRENCY,
                rate: defaults::RATE,
                rate_limited_pause: defaults::RATE_LIMITED_PAUSE,
                grace: defaults::GRACE,
            },
            request_timeout: defaults::REQUEST_TIMEOUT,
            out_dir: PathBuf::from(defaults::OUT_DIR),
            report: None,
            output: Output {
                quiet: false,
                json: false,
            },
            sf: None,
            fresh_for: Some(defaults::FRESH_FOR),
            deadline: None,
            shard: None,
            ci: CiReports::default(),
            hub: None,
        }
    }

    /// Map `fleetauth grant`'s flags onto the defaults, validating each.
    pub fn from_args(
        args: GrantArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let usage = |m: String| ConfigError::Usage(m);
        check_concurrency(args.concurrency).map_err(usage)?;
        check_rate(args.rate).map_err(usage)?;
        check_request_timeout(args.request_timeout)?;
        // What report.json and sf's auth files record as text.
        recorded_path(&args.out_dir, "--out-dir", "report.json (authFile)")?;
        for list in args.orgs.iter().filter(|l| l.as_os_str() != "-") {
            recorded_path(list, "the org list", "report.json (summary.list)")?;
        }
        if args.sf.sf || args.sf.sf_home.is_some() {
            recorded_key_path(&args.target.key)?;
        }
        let target = TargetConfig::from_args(args.target, &env)?;
        let mut sf = SfOptions::from_args(args.sf, &env)?;
        let hub = hub_options(&args.hub, &args.hub_filter, sf.as_ref())?;
        fill_dev_hub(sf.as_mut(), hub.as_ref());
        let mut config = Self::new(args.orgs, target);
        config.hub = hub;
        config.format = args.format;
        config.policy.replication_budget = args.replication_timeout;
        config.policy.max_retries = args.max_retries;
        config.limits.concurrency = args.concurrency;
        config.limits.rate = args.rate;
        config.request_timeout = args.request_timeout;
        config.out_dir = args.out_dir;
        config.report = args.report;
        config.output = Output {
            quiet: args.quiet,
            json: args.json,
        };
        config.sf = sf;
        config.fresh_for = (!args.force).then_some(args.fresh_for);
        config.deadline = args.deadline;
        config.shard = args.shard;
        config.ci = CiReports {
            summary_md: args.summary_md,
            junit: args.junit,
            step_summary: (!args.no_step_summary)
                .then(|| env("GITHUB_STEP_SUMMARY"))
                .flatten()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        };
        Ok(config)
    }
}

/// The Dev Hub flags (`-v` and its company), validated; `None` without `-v`.
pub fn hub_options(
    args: &crate::cli::HubArgs,
    filter: &crate::cli::HubFilterArgs,
    sf: Option<&SfOptions>,
) -> Result<Option<crate::hub::HubOptions>, ConfigError> {
    let Some(hub) = args
        .target_dev_hub
        .as_deref()
        .filter(|h| !h.trim().is_empty())
    else {
        return Ok(None);
    };
    crate::hub::HubOptions::new(
        hub,
        &args.hub_instance_url,
        args.hub_audience.as_deref(),
        filter.created_after.as_deref(),
        filter.created_by.as_deref(),
        args.warn_expiring,
        args.no_hub_check,
        sf.map(|s| s.home.as_path()),
    )
    .map(Some)
    .map_err(ConfigError::Usage)
}

/// With `--sf`, `-v` also names the orgs' Dev Hub (unless `--dev-hub-username` did).
pub fn fill_dev_hub(sf: Option<&mut SfOptions>, hub: Option<&crate::hub::HubOptions>) {
    if let (Some(sf), Some(hub)) = (sf, hub) {
        if sf.dev_hub.is_none() {
            sf.dev_hub = Some(hub.username.clone());
            sf.dev_hub_from_target = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// clap's default values are the library's defaults: one set of defaults, not two.
    #[test]
    fn the_flags_defaults_are_the_librarys() {
        let cli = crate::cli::Cli::try_parse_from(["fleetauth", "grant", "orgs.csv"]).unwrap();
        let crate::cli::Command::Grant(args) = cli.command else {
            panic!("grant parses as grant");
        };
        assert_eq!(args.concurrency, defaults::CONCURRENCY);
        assert_eq!(args.rate, defaults::RATE);
        assert_eq!(args.replication_timeout, defaults::REPLICATION_TIMEOUT);
        assert_eq!(args.max_retries, defaults::MAX_RETRIES);
        assert_eq!(args.request_timeout, defaults::REQUEST_TIMEOUT);
        assert_eq!(args.fresh_for, defaults::FRESH_FOR);
        assert_eq!(args.out_dir, PathBuf::from(defaults::OUT_DIR));
        assert_eq!(args.target.instance_url, defaults::INSTANCE_URL);
        if std::env::var_os("SF_AUDIENCE_URL").is_none() {
            assert_eq!(args.target.audience, None, "the default is the library's");
        }
    }

    #[test]
    fn sfdx_audience_url_is_a_synonym_and_sf_audience_url_wins() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let sfdx = env(&[("SFDX_AUDIENCE_URL", "https://sfdx.example.com")]);
        assert_eq!(
            audience_setting(None, &sfdx).as_deref(),
            Some("https://sfdx.example.com")
        );
        // clap has already put $SF_AUDIENCE_URL (or the flag) into the first argument.
        assert_eq!(
            audience_setting(Some("https://sf.example.com".into()), &sfdx).as_deref(),
            Some("https://sf.example.com")
        );
        assert_eq!(audience_setting(Some(" ".into()), &env(&[])), None);
        assert_eq!(
            audience_setting(None, &env(&[("SFDX_AUDIENCE_URL", "")])),
            None
        );
    }
}
