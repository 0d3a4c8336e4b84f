//! The hand-off of one authorized org to the Salesforce CLI: probe the org as sf does, write
//! its auth file and aliases. Called by the fleet after each grant when `--sf` is given.

use std::path::PathBuf;
use std::sync::Arc;

use super::{probe, SfAuth, SfState, SfStateError};
use crate::input::Target;
use crate::token::Grant;

#[derive(Debug)]
pub struct Handoff {
    pub state: Arc<SfState>,
    pub http: reqwest::Client,
    pub client_id: String,
    /// Recorded as `devHubUsername` on scratch orgs.
    pub dev_hub: Option<String>,
    /// `P` gives the aliases `P1..Pn` in list order.
    pub alias_prefix: Option<String>,
    /// Ask each org whether it is a Dev Hub (for `fleetauth login`; fleet orgs are scratch orgs).
    pub probe_dev_hub: bool,
    /// Re-point an alias that already names another username (`--sf-replace-aliases`).
    pub replace_aliases: bool,
    /// Aliases left as they were because they name another username, for the warnings.
    pub kept_aliases: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Handoff {
    /// The aliases left as they were, readable after the handoff moved into the fleet.
    pub fn kept_aliases_shared(&self) -> Arc<std::sync::Mutex<Vec<String>>> {
        Arc::clone(&self.kept_aliases)
    }

    /// Probe the org, then write its auth file and aliases. `index` is its place in the list;
    /// `token_host` is where it was granted (the row's own instance, or `-r`): sf's
    /// `loginUrl`, which its refreshes start from, in the href form sf stores for `-r URL`.
    pub async fn record(
        &self,
        index: usize,
        target: &Target,
        grant: &Grant,
        token_host: &url::Url,
    ) -> Result<PathBuf, SfStateError> {
        let details = probe::describe(&self.http, &grant.instance_url, &grant.access_token).await;
        let is_dev_hub = self.probe_dev_hub
            && probe::is_dev_hub(&self.http, &grant.instance_url, &grant.access_token).await;
        let mut aliases: Vec<(String, String)> = Vec::new();
        if let Some(alias) = &target.alias {
            aliases.push((alias.clone(), target.username.clone()));
        }
        if let Some(prefix) = &self.alias_prefix {
            aliases.push((format!("{prefix}{}", index + 1), target.username.clone()));
        }
        let state = Arc::clone(&self.state);
        let (username, login_url, client_id, dev_hub) = (
            target.username.clone(),
            token_host.as_str().to_string(),
            self.client_id.clone(),
            self.dev_hub.clone(),
        );
        let grant = grant.clone();
        let replace = self.replace_aliases;
        let kept = tokio::task::spawn_blocking(move || {
            let path = state.write_auth(&SfAuth {
                access_token: grant.access_token.expose(),
                org_id: &grant.org_id,
                login_url: &login_url,
                client_id: &client_id,
                instance_url: &grant.instance_url,
                is_dev_hub,
                username: &username,
                details: details.as_ref(),
                dev_hub: dev_hub.as_deref(),
            })?;
            let kept = state.add_aliases(&aliases, replace)?;
            Ok((path, kept))
        })
        .await
        .map_err(|e| SfStateError::Io(format!("the writer task failed: {e}")))?;
        let (path, kept) = kept?;
        if !kept.is_empty() {
            if let Ok(mut all) = self.kept_aliases.lock() {
                all.extend(kept);
            }
        }
        Ok(path)
    }
}
