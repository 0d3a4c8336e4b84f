//! `fleetauth check`'s flags → the configuration of the grant it checks: the same target,
//! lists, Dev Hub and shard as `grant`'s, every other setting at the library's default.

use super::{hub_options, ConfigError, GrantConfig, TargetConfig};
use crate::cli::CheckArgs;

impl GrantConfig {
    /// Map `check`'s flags onto the library's defaults, validating each.
    pub fn for_check(
        args: &CheckArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let target = TargetConfig::from_args(args.target.clone(), env)?;
        let mut config = Self::new(args.orgs.clone(), target);
        config.hub = hub_options(&args.hub, &args.hub_filter, None)?;
        config.format = args.format;
        config.shard = args.shard;
        Ok(config)
    }
}
