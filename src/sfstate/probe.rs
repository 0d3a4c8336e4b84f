//! The REST calls `sf org login jwt` makes after the token (reference §8.3): the API version
//! list, the Organization query and the Dev Hub probe, so the auth file holds what sf's would.
//! Failures leave the fields out, as sf does; sf fills them in on first use.

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct OrgDetails {
    /// Highest `version` from `GET /services/data`, e.g. `63.0`.
    pub api_version: String,
    /// When it was read, in en-US `toLocaleString` form.
    pub retrieved: String,
    pub organization: Option<Organization>,
}

#[derive(Debug, Clone)]
pub struct Organization {
    /// Organization.Name; the key is left out of the auth file when the record has none, as
    /// sf does (it never writes `"name": ""`).
    pub name: Option<String>,
    pub instance_name: String,
    pub namespace_prefix: Option<String>,
    pub is_sandbox: bool,
    pub trial_expiration: Option<String>,
    pub edition: String,
}

impl Organization {
    pub fn is_scratch(&self) -> bool {
        self.is_sandbox && self.trial_expiration.is_some()
    }
}

#[derive(Deserialize)]
struct Version {
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OrganizationRecord {
    name: Option<String>,
    instance_name: Option<String>,
    namespace_prefix: Option<String>,
    is_sandbox: Option<bool>,
    trial_expiration_date: Option<String>,
    organization_type: Option<String>,
}

#[derive(Deserialize)]
struct QueryResult<T> {
    records: Vec<T>,
}

const ORGANIZATION_SOQL: &str = "SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, OrganizationType FROM Organization";

/// The client for the REST calls (separate from the token client: these are API calls, not logins).
/// It sends the token only to an `instance_url` the token client has already checked.
pub fn client(
    net: &crate::tls::Network,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    net.builder(timeout).build()
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: String,
    token: &Secret<String>,
) -> Option<T> {
    let response = http
        .get(url)
        .bearer_auth(token.expose())
        .header("accept", "application/json")
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

fn version_number(v: &str) -> f64 {
    v.parse().unwrap_or(0.0)
}

/// What sf records about an org after a login; `None` when the org does not answer.
pub async fn describe(
    http: &reqwest::Client,
    instance_url: &str,
    token: &Secret<String>,
) -> Option<OrgDetails> {
    let base = instance_url.trim_end_matches('/');
    let versions: Vec<Version> = get_json(http, format!("{base}/services/data"), token).await?;
    let api_version = versions
        .into_iter()
        .map(|v| v.version)
        .max_by(|a, b| version_number(a).total_cmp(&version_number(b)))?;
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/services/data/v{api_version}/query"),
        [("q", ORGANIZATION_SOQL)],
    )
    .ok()?;
    let organization = get_json::<QueryResult<OrganizationRecord>>(http, url.to_string(), token)
        .await
        .and_then(|r| r.records.into_iter().next())
        .map(|r| Organization {
            name: r.name,
            instance_name: r.instance_name.unwrap_or_default(),
            namespace_prefix: r.namespace_prefix,
            is_sandbox: r.is_sandbox.unwrap_or(false),
            trial_expiration: r.trial_expiration_date,
            edition: r.organization_type.unwrap_or_default(),
        });
    Some(OrgDetails {
        api_version,
        retrieved: locale_string(time::OffsetDateTime::now_utc()),
        organization,
    })
}

/// sf's Dev Hub probe: an org that can query ScratchOrgInfo is a Dev Hub.
pub async fn is_dev_hub(
    http: &reqwest::Client,
    instance_url: &str,
    token: &Secret<String>,
) -> bool {
    let base = instance_url.trim_end_matches('/');
    let Ok(url) = reqwest::Url::parse_with_params(
        &format!("{base}/services/data/v51.0/query"),
        [("q", "SELECT Id FROM ScratchOrgInfo limit 1")],
    ) else {
        return false;
    };
    get_json::<serde_json::Value>(http, url.to_string(), token)
        .await
        .is_some()
}

/// `11/23/2026, 7:09:21 PM`: JavaScript's en-US `toLocaleString`, which sf parses back.
pub fn locale_string(t: time::OffsetDateTime) -> String {
    let (hour, meridiem) = match t.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{}, {}:{:02}:{:02} {meridiem}",
        u8::from(t.month()),
        t.day(),
        t.year(),
        hour,
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_string_matches_javascripts_en_us_form() {
        let t = time::macros::datetime!(2026-11-23 19:09:21 UTC);
        assert_eq!(locale_string(t), "11/23/2026, 7:09:21 PM");
        let t = time::macros::datetime!(2026-01-02 00:05:09 UTC);
        assert_eq!(locale_string(t), "1/2/2026, 12:05:09 AM");
        let t = time::macros::datetime!(2026-01-02 12:00:00 UTC);
        assert_eq!(locale_string(t), "1/2/2026, 12:00:00 PM");
    }
}
