//! `fleetauth token`'s (and `open`'s) flags → the configuration of the one-org grant it may
//! make: the target, the sf hand-off and the Dev Hub taken as `grant` takes them.

use super::{
    check_request_timeout, fill_dev_hub, hub_options, ConfigError, GrantConfig, Output, SfOptions,
    TargetConfig,
};
use crate::cli::{HubFilterArgs, SfArgs, TokenArgs};

impl GrantConfig {
    /// Map `token`'s flags onto the library's defaults, validating each. The org's auth file
    /// is reused by its own rule (`--max-age`), so nothing is skipped as fresh here.
    pub fn for_token(
        args: &TokenArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        check_request_timeout(args.request_timeout)?;
        // The org's auth file path goes into `--json`'s `authFile`, and with `--sf` the key's
        // into sf's auth file.
        super::recorded_path(&args.out_dir, "--out-dir", "the --json result (authFile)")?;
        if args.sf {
            super::recorded_key_path(&args.target.key)?;
        }
        let target = TargetConfig::from_args(args.target.clone(), env)?;
        // `token` gives no alias prefix and re-points no alias: it hands on one org.
        let sf = SfArgs {
            sf: args.sf,
            sf_home: args.sf_home.clone(),
            alias_prefix: None,
            dev_hub_username: args.dev_hub_username.clone(),
            replace_aliases: false,
        };
        // The one org is resolved from the out dir and `--list`, not read as a run's list.
        let mut config = Self::new(Vec::new(), target);
        config.sf = SfOptions::from_args(sf, env)?;
        config.hub = hub_options(&args.hub, &HubFilterArgs::default(), config.sf.as_ref())?;
        fill_dev_hub(config.sf.as_mut(), config.hub.as_ref());
        config.out_dir = args.out_dir.clone();
        config.request_timeout = args.request_timeout;
        config.fresh_for = None;
        config.output = Output {
            quiet: true,
            json: args.json,
        };
        Ok(config)
    }
}
