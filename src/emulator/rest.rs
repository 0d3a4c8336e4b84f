//! The REST calls `sf` makes after a login and on later commands (reference sf-cli.md §8.3,
//! §8.4): API versions, the Dev Hub probe, the Organization query, ScratchOrgInfo on a hub,
//! simple SOQL, and what CumulusCI reads after its own grant (`/services/oauth2/userinfo`,
//! `sobjects/Organization/<id>`). Sessions can be expired (401 `INVALID_SESSION_ID`) so that a
//! test can make `sf` refresh its token through the JWT flow.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::server::ids;
use super::EmulatorConfig;

/// Issued access tokens and whom they belong to.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_token: Mutex<HashMap<String, (String, bool)>>,
}

impl Sessions {
    pub(crate) fn open(&self, token: &str, username: &str) {
        self.lock()
            .insert(token.to_string(), (username.to_string(), true));
    }

    /// Every session issued so far now answers 401.
    pub(crate) fn expire_all(&self) -> usize {
        let mut map = self.lock();
        map.values_mut().for_each(|(_, valid)| *valid = false);
        map.len()
    }

    pub(crate) fn user(&self, token: &str) -> Option<String> {
        self.lock()
            .get(token)
            .filter(|(_, valid)| *valid)
            .map(|(u, _)| u.clone())
    }

    fn users(&self) -> Vec<String> {
        self.lock().values().map(|(u, _)| u.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, bool)>> {
        self.by_token
            .lock()
            .expect("sessions lock is never poisoned")
    }
}

/// Status and JSON body of a REST answer.
pub(crate) type RestAnswer = (u16, Value);

fn rest_error(status: u16, code: &str, message: &str) -> RestAnswer {
    (status, json!([{"message": message, "errorCode": code}]))
}

fn query_result(records: Vec<Value>) -> RestAnswer {
    (
        200,
        json!({"totalSize": records.len(), "done": true, "records": records}),
    )
}

/// Trial expiration of every emulated scratch org.
const TRIAL_EXPIRATION: &str = "2026-12-31T00:00:00.000+0000";

pub(crate) fn handle(
    config: &EmulatorConfig,
    sessions: &Sessions,
    hub: &super::hub::Hub,
    base_url: &str,
    path: &str,
    query: Option<&str>,
    authorization: Option<&str>,
) -> RestAnswer {
    if path == "/services/data" || path == "/services/data/" {
        return (
            200,
            json!([
                {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"},
                {"label": "Spring '25", "url": "/services/data/v63.0", "version": "63.0"}
            ]),
        );
    }
    let token = authorization.and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("OAuth "))
    });
    let Some(username) = token.and_then(|t| sessions.user(t.trim())) else {
        return rest_error(401, "INVALID_SESSION_ID", "Session expired or invalid");
    };
    if path == "/services/oauth2/userinfo" {
        // The OpenID Connect userinfo CumulusCI reads after its own JWT grant.
        let (org_id, user_id) = (ids::org_id(&username), ids::user_id(&username));
        return (
            200,
            json!({
                "sub": format!("{base_url}/id/{org_id}/{user_id}"),
                "user_id": user_id,
                "organization_id": org_id,
                "preferred_username": username,
                "email": username,
                "name": "Emulated Admin",
                "urls": {"rest": format!("{base_url}/services/data/v{{version}}/")},
            }),
        );
    }
    let rest = path.trim_start_matches("/services/data/");
    let (version, resource) = rest.split_once('/').unwrap_or((rest, ""));
    if !version.starts_with('v') {
        return rest_error(404, "NOT_FOUND", "The requested resource does not exist");
    }
    match resource {
        "" => (
            200,
            json!({"sobjects": format!("/services/data/{version}/sobjects"), "query": format!("/services/data/{version}/query")}),
        ),
        "query" | "query/" | "tooling/query" | "tooling/query/" => {
            let mut params = query
                .and_then(|q| serde_urlencoded::from_str::<HashMap<String, String>>(q).ok())
                .unwrap_or_default();
            let soql = params.remove("q").unwrap_or_default();
            if params.get("columns").is_some_and(|c| c == "true") {
                return (200, columns(&soql));
            }
            if resource.starts_with("tooling") {
                return query_result(vec![]);
            }
            if soql.to_ascii_lowercase().contains("from scratchorginfo") {
                let known = sessions.users();
                return super::hub::query(config, hub, base_url, version, &username, &known, &soql);
            }
            soql_answer(config, sessions, base_url, &username, &soql)
        }
        "limits" | "limits/" => super::hub::limits(config, &username, &sessions.users()),
        locator if locator.starts_with("query/") => {
            super::hub::next_page(config, hub, version, &username, &locator["query/".len()..])
        }
        r if r.starts_with("sobjects/Organization/") => {
            let org_id = ids::org_id(&username);
            if r.trim_start_matches("sobjects/Organization/") == org_id {
                (200, organization(&org_id, is_dev_hub(config, &username)))
            } else {
                rest_error(404, "NOT_FOUND", "The requested resource does not exist")
            }
        }
        _ => rest_error(404, "NOT_FOUND", "The requested resource does not exist"),
    }
}

/// The org's Organization record (what the query and `sobjects/Organization/<id>` return).
fn organization(org_id: &str, hub: bool) -> Value {
    json!({
        "attributes": {"type": "Organization", "url": format!("/services/data/v63.0/sobjects/Organization/{org_id}")},
        "Id": org_id,
        "Name": if hub { "Emulated Dev Hub" } else { "Emulated Scratch Org" },
        "InstanceName": "EMU1",
        "IsSandbox": !hub,
        "TrialExpirationDate": if hub { Value::Null } else { json!(TRIAL_EXPIRATION) },
        "NamespacePrefix": null,
        "OrganizationType": "Developer Edition",
    })
}

/// `?columns=true`: the column metadata `sf data query` asks for, from the SELECT list.
fn columns(soql: &str) -> Value {
    let lower = soql.to_ascii_lowercase();
    let select = lower.find("select").map_or(0, |i| i + 6);
    let from = lower.find(" from ").unwrap_or(soql.len());
    let names: Vec<Value> = soql
        .get(select..from)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            json!({"aggregate": false, "apexType": null, "booleanType": false, "columnName": c, "custom": false,
                   "displayName": c, "foreignKeyName": null, "insertable": false, "joinColumns": [],
                   "numberType": false, "textType": true, "updatable": false})
        })
        .collect();
    json!({"columnMetadata": names, "entityName": "", "groupBy": false, "idSelected": true, "keyPrefix": null})
}

use super::hub::is_dev_hub;

fn soql_answer(
    config: &EmulatorConfig,
    _sessions: &Sessions,
    _base_url: &str,
    username: &str,
    soql: &str,
) -> RestAnswer {
    let lower = soql.to_ascii_lowercase();
    let (org_id, _) = (ids::org_id(username), ids::user_id(username));
    let hub = is_dev_hub(config, username);
    if lower.contains("from organization") {
        return query_result(vec![organization(&org_id, hub)]);
    }
    if lower.contains("from user") {
        return query_result(vec![
            json!({"attributes": {"type": "User"}, "Id": ids::user_id(username), "Username": username}),
        ]);
    }
    query_result(vec![])
}
