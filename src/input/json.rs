//! A JSON list: an array of usernames or objects, fleetauth's own report.json, or the `--json`
//! output of `sf org list`, `sf data query` or `sf org create scratch`.

use serde_json::Value;

use super::{non_blank, Column, InputError, OrgList, Origin, Target};

pub(super) fn parse(source_name: &str, text: &str) -> Result<OrgList, InputError> {
    let value: Value = serde_json::from_str(text).map_err(|e| InputError::Syntax {
        source_name: source_name.to_string(),
        format: "JSON",
        message: e.to_string(),
    })?;
    let unknown = |shape| InputError::UnknownShape {
        source_name: source_name.to_string(),
        shape,
    };
    let entries: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(top) => {
            // sf's `--json` envelope keeps the payload under `result`.
            let body = top.get("result").unwrap_or(&value);
            match body {
                Value::Object(o) if o.get("records").is_some_and(Value::is_array) => {
                    o["records"].as_array().into_iter().flatten().collect()
                }
                // `sf org list --json`: every array (scratch orgs, JWT and other logins,
                // sandboxes, Dev Hubs); an org listed twice is one org.
                Value::Object(o)
                    if SF_ORG_LIST_ARRAYS
                        .iter()
                        .any(|k| o.get(*k).is_some_and(Value::is_array)) =>
                {
                    let mut seen = std::collections::HashSet::new();
                    SF_ORG_LIST_ARRAYS
                        .iter()
                        .filter_map(|k| o.get(*k).and_then(Value::as_array))
                        .flatten()
                        .filter(|e| {
                            let name = field(e, Column::Username).map(|u| u.to_lowercase());
                            name.is_none_or(|n| seen.insert(n))
                        })
                        .collect()
                }
                // fleetauth's own report.json (or its `--json` envelope): the hand-off.
                Value::Object(o) if o.get("orgs").is_some_and(Value::is_array) => {
                    o["orgs"].as_array().into_iter().flatten().collect()
                }
                Value::Object(o) if o.contains_key("username") => vec![body],
                Value::Array(items) => items.iter().collect(),
                _ => {
                    return Err(unknown(
                        "an object with no `records`, `scratchOrgs`, `orgs` or `username`",
                    ))
                }
            }
        }
        _ => return Err(unknown("a JSON scalar")),
    };
    let mut targets = Vec::with_capacity(entries.len());
    let mut excluded = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let origin = Origin::Entry(i + 1);
        let (username, alias, instance_url) = match entry {
            Value::String(s) => (s.trim().to_string(), None, None),
            Value::Object(_) => (
                field(entry, Column::Username).unwrap_or_default(),
                field(entry, Column::Alias),
                field(entry, Column::InstanceUrl)
                    .or_else(|| nested(entry, "authFields", "instanceUrl"))
                    .or_else(|| nested(entry, "scratchOrgInfo", "LoginUrl")),
            ),
            _ => {
                return Err(unknown(
                    "an array entry that is neither a string nor an object",
                ))
            }
        };
        let record = vec![
            username.clone(),
            alias.clone().unwrap_or_default(),
            instance_url.clone().unwrap_or_default(),
        ];
        let target = Target {
            username,
            alias,
            instance_url,
            origin,
            record,
            place: 0,
        };
        if entry.get("isDevHub").and_then(Value::as_bool) == Some(true) {
            excluded.push((
                target,
                "a Dev Hub (isDevHub: true), not one of the hub's scratch orgs: left out".into(),
            ));
            continue;
        }
        targets.push(target);
    }
    Ok(OrgList {
        source: source_name.to_string(),
        columns: ["username", "alias", "instanceUrl"]
            .map(String::from)
            .to_vec(),
        targets,
        excluded,
    })
}

/// The arrays of `sf org list --json` (sf-cli.md §2.5), in the order sf prints them.
const SF_ORG_LIST_ARRAYS: &[&str] = &[
    "scratchOrgs",
    "nonScratchOrgs",
    "other",
    "sandboxes",
    "devHubs",
];

/// The first key of `entry` (case-insensitive) naming `column`, as a non-blank string (a
/// number, such as an alias `42`, is taken as its text).
fn field(entry: &Value, column: Column) -> Option<String> {
    let object = entry.as_object()?;
    column.names().iter().find_map(|want| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(want))
            .and_then(|(_, v)| match v {
                Value::String(s) => non_blank(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    })
}

fn nested(entry: &Value, outer: &str, inner: &str) -> Option<String> {
    entry.get(outer)?.get(inner)?.as_str().and_then(non_blank)
}
