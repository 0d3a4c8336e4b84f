//! Not a command: what `grant` and `session` (so `token` and `open`) share before anything is
//! sent: the error that stops a run at setup (exit 2), and sf's state opened for `--sf`. Here
//! so that no command imports another.

use crate::config::{ConfigError, GrantConfig, SfOptions};
use crate::input::InputError;
use crate::sfstate::handoff::Handoff;
use crate::sfstate::{SfState, SfStateError};
use crate::store::StoreError;

/// What stops a run before it starts (exit 2): nothing has been sent.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Sf(#[from] SfStateError),
    /// A place the grants go to cannot take them (its check before anything is sent).
    #[error(transparent)]
    Sink(#[from] crate::fleet::PreflightError),
    /// The Dev Hub (`-v`) could not be asked.
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    #[error("{0}")]
    Output(String),
    /// A signal came while the list was being read: nothing was sent (exit 130).
    #[error("interrupted while reading the org list; nothing was sent")]
    Interrupted,
    /// `--deadline` passed while the list was being read: nothing was sent (exit 130).
    #[error("the --deadline of {} passed while the org list was still being read; nothing was sent (a list on stdin must end, e.g. close the pipe)", humantime::format_duration(*.0))]
    DeadlineWhileReading(std::time::Duration),
}

/// Open the Salesforce CLI's state for `--sf`; the Dev Hub named must already be there, and
/// what sf keeps beside the auth files must parse.
pub(crate) fn handoff(
    options: &SfOptions,
    config: &GrantConfig,
    warnings: &mut Vec<String>,
) -> Result<Handoff, SetupError> {
    let env = |var: &str| std::env::var(var).ok();
    let state = SfState::open(&options.home, &env, config.signer.key())?;
    state.preflight()?;
    if let Some(hub) = &options.dev_hub {
        if !state.has_auth(hub) && options.dev_hub_from_target {
            warnings.push(format!(
                "the orgs name {hub} as their Dev Hub (devHubUsername), but sf has no auth of it: for sf's hub commands, log in to it: fleetauth login -o {hub} -i <consumer key> -f <key> -d"
            ));
        } else if !state.has_auth(hub) {
            return Err(ConfigError::Usage(format!(
                "--dev-hub-username {hub}: the Dev Hub is not authorized in {}; log in to it first: fleetauth login -o {hub} -i <consumer key> -f <key> -r https://login.salesforce.com -d",
                state.auth_path(hub).display()
            ))
            .into());
        }
    }
    warnings.extend(state.notes.iter().cloned());
    Ok(Handoff {
        state: std::sync::Arc::new(state),
        http: crate::sfstate::probe::client(&config.network, config.request_timeout)?,
        client_id: config.signer.client_id().to_string(),
        dev_hub: options.dev_hub.clone(),
        alias_prefix: options.alias_prefix.clone(),
        probe_dev_hub: false,
        replace_aliases: options.replace_aliases,
        writer: Default::default(),
        aliases_before: Default::default(),
    })
}
