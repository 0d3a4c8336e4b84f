//! The hand-off of one authorized org to the Salesforce CLI: probe the org as sf does, write
//! its auth file and aliases. Called by the fleet after each grant when `--sf` is given.

use std::path::PathBuf;
use std::sync::Arc;

use super::writer::SfWriter;
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
    /// The one writer of sf's state (auth files, alias.json), shared with whoever reports the
    /// run's aliases after the handoff moved into the fleet.
    pub writer: Arc<SfWriter>,
    /// alias.json as it was when the run planned (read once: for every org's freshness and
    /// the aliases' check), or why it could not be read.
    pub aliases_before:
        std::sync::OnceLock<Result<serde_json::Map<String, serde_json::Value>, String>>,
}

impl Handoff {
    /// The sf aliases this run gives `target`: the list's own, and `P<place>` with
    /// `--alias-prefix P`.
    pub fn aliases_for(&self, target: &Target) -> Vec<String> {
        let prefixed = self
            .alias_prefix
            .iter()
            .map(|p| format!("{p}{}", target.place));
        target.alias.iter().cloned().chain(prefixed).collect()
    }

    /// alias.json as it was before this run wrote to it, read once.
    pub fn aliases_before(&self) -> Result<&serde_json::Map<String, serde_json::Value>, &str> {
        self.aliases_before
            .get_or_init(|| self.state.aliases().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// The writer, readable after the handoff moved into the fleet.
    pub fn writer_shared(&self) -> Arc<SfWriter> {
        Arc::clone(&self.writer)
    }

    /// Probe the org, then write its auth file and aliases (`--alias-prefix` names it by its
    /// place in the list, [`Target::place`]). `token_host` is where it was granted (the row's own instance, or `-r`): sf's
    /// `loginUrl`, which its refreshes start from, in the href form sf stores for `-r URL`.
    /// Returns once the auth file is on disk; the aliases follow (see [`SfWriter::finish`]).
    /// Its requests to the org wait for a slot of the run (`admission`), as token requests do.
    pub async fn record(
        &self,
        target: &Target,
        grant: &Grant,
        token_host: &url::Url,
        admission: crate::fleet::Admission<'_>,
    ) -> Result<PathBuf, SfStateError> {
        // sf's probes of the org take the run's slots, as its token requests do;
        // a run that is stopping sends none (the auth file is written without their details).
        let details = match admission.request().await {
            Some(_slot) => {
                probe::describe(&self.http, &grant.instance_url, &grant.access_token).await
            }
            None => None,
        };
        let is_dev_hub = self.probe_dev_hub
            && match admission.request().await {
                Some(_slot) => {
                    probe::is_dev_hub(&self.http, &grant.instance_url, &grant.access_token).await
                }
                None => false,
            };
        let aliases: Vec<(String, String)> = self
            .aliases_for(target)
            .into_iter()
            .map(|alias| (alias, target.username.clone()))
            .collect();
        let (path, body) = self.state.auth_file(&SfAuth {
            access_token: grant.access_token.expose(),
            org_id: &grant.org_id,
            login_url: token_host.as_str(),
            client_id: &self.client_id,
            instance_url: &grant.instance_url,
            is_dev_hub,
            username: &target.username,
            details: details.as_ref(),
            dev_hub: self.dev_hub.as_deref(),
        })?;
        self.writer
            .write(&self.state, self.replace_aliases, path, body, aliases)
            .await
    }
}
