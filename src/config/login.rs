//! `fleetauth login`'s flags → its validated configuration: one org, as `sf org login jwt`
//! takes it, with the same key, network and timeout rules as `grant`.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{
    audience_setting, check_request_timeout, consumer_key, key, network, parse_audience,
    ConfigError,
};
use crate::assertion::Signer;
use crate::cli::LoginArgs;
use crate::defaults;
use crate::fleet::Limits;
use crate::retry::Policy;
use crate::tls::Network;
use crate::urls;

/// A login waits out a short replication delay only: the org is an existing one.
const REPLICATION_BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct LoginConfig {
    pub username: String,
    pub alias: Option<String>,
    pub signer: Signer,
    /// The login URL (`-r`), where the assertion goes.
    pub host: Url,
    pub network: Network,
    pub request_timeout: Duration,
    pub policy: Policy,
    pub limits: Limits,
    /// Where sf's state is (`--sf-home`, else `$HOME`).
    pub sf_home: PathBuf,
    pub set_default: bool,
    pub set_default_dev_hub: bool,
}

impl LoginConfig {
    /// Map `fleetauth login`'s flags onto the library's defaults, validating each.
    pub fn from_args(
        args: LoginArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let usage = ConfigError::Usage;
        crate::input::check_username(&args.username).map_err(usage)?;
        if let Some(alias) = &args.alias {
            // The same rule as a list's aliases: sf stores it as a JSON key and prints it.
            crate::input::check_alias(alias).map_err(|e| usage(format!("-a/--alias: {e}")))?;
        }
        check_request_timeout(args.request_timeout)?;
        let client_id = consumer_key(&args.key)?;
        let host = urls::token_host(&args.instance_url)
            .map_err(|e| usage(format!("--instance-url: {e}")))?;
        if host
            .host_str()
            .is_some_and(|h| h.ends_with(".lightning.force.com"))
        {
            return Err(usage("Invalid instance URL. It should NOT be a lightning domain: use the My Domain (.my.salesforce.com) or login URL".into()));
        }
        // `--audience`, $SF_AUDIENCE_URL (read by clap), $SFDX_AUDIENCE_URL, else by the host.
        let audience = match audience_setting(args.audience, env) {
            Some(a) => urls::display(&parse_audience(&a)?),
            None => audience_for(&host).to_string(),
        };
        let network = network(&args.network, &host, env)?;
        // sf's auth file records the key's path (absolute) as text.
        super::recorded_key_path(&args.key)?;
        let key = key(&args.key, env)?;
        let sf_home = match args.sf_home {
            Some(h) => {
                let h = std::path::absolute(&h).unwrap_or(h);
                super::recorded_path(&h, "--sf-home", "sf's auth files")?;
                h
            }
            None => env("HOME")
                .map(PathBuf::from)
                .ok_or_else(|| usage("$HOME is not set: pass --sf-home DIR".into()))?,
        };
        Ok(Self {
            username: args.username,
            alias: args.alias,
            signer: Signer::new(key, client_id, audience),
            host,
            network,
            request_timeout: args.request_timeout,
            policy: Policy {
                replication_budget: REPLICATION_BUDGET,
                ..Policy::default()
            },
            limits: Limits {
                concurrency: 1,
                rate: defaults::RATE,
                rate_limited_pause: defaults::RATE_LIMITED_PAUSE,
                grace: Duration::from_secs(1),
            },
            sf_home,
            set_default: args.set_default,
            set_default_dev_hub: args.set_default_dev_hub,
        })
    }
}

/// The default `aud` for a login URL: sandboxes and scratch orgs use test, the rest login.
fn audience_for(host: &Url) -> &'static str {
    let h = host.host_str().unwrap_or_default();
    if h == "test.salesforce.com" || h.contains(".sandbox.") || h.contains(".scratch.") {
        "https://test.salesforce.com"
    } else {
        "https://login.salesforce.com"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_audience_follows_the_login_url() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            audience_for(&url("https://test.salesforce.com")),
            "https://test.salesforce.com"
        );
        assert_eq!(
            audience_for(&url("https://acme--uat.sandbox.my.salesforce.com")),
            "https://test.salesforce.com"
        );
        assert_eq!(
            audience_for(&url("https://acme.my.salesforce.com")),
            "https://login.salesforce.com"
        );
    }
}
