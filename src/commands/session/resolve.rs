//! Which org `fleetauth token ARG` means: a username as it is, or an alias looked up in the out
//! dir's records (the auth files, then a report.json handed over from another job), then, with
//! `--sf`, in sf's alias.json. A report.json also gives the org's instance URL, tried first.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::input::Target;

use crate::input;
use crate::store::OutDir;

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Resolved {
    pub username: String,
    /// The alias, when there is one.
    pub alias: Option<String>,
    /// The org's instance URL from a report.json, to try before `--instance-url`.
    pub instance_url: Option<String>,
}

/// The org `org` names, or why none is (a usage error).
pub(super) fn resolve(org: &str, out: &OutDir, sf_home: Option<&Path>) -> Result<Resolved, String> {
    let report = report_targets(out)?;
    let from_report = |matches: &dyn Fn(&Target) -> bool| {
        report.iter().find(|t| matches(t)).map(|t| {
            (
                Some(t.username.clone()),
                t.alias.clone(),
                t.instance_url.clone(),
            )
        })
    };
    if org.contains('@') {
        input::check_username(org)?;
        let (known, alias, instance_url) =
            from_report(&|t| t.username.eq_ignore_ascii_case(org)).unwrap_or_default();
        // Usernames are case-insensitive: the org's existing auth file (or the report's
        // spelling) decides the name, so one org never gets two files.
        let username = auth_file_named(out, org)
            .or(known)
            .unwrap_or_else(|| org.to_string());
        return Ok(Resolved {
            username,
            alias,
            instance_url,
        });
    }
    let found = |username: String, instance_url: Option<String>| -> Result<Resolved, String> {
        input::check_username(&username).map_err(|e| format!("the alias `{org}`: {e}"))?;
        Ok(Resolved {
            username,
            alias: Some(org.to_string()),
            instance_url,
        })
    };
    match auth_files_with_alias(out, org).as_slice() {
        [one] => return found(one.clone(), None),
        [] => {}
        many => {
            return Err(format!(
                "the alias `{org}` names {} orgs in {}: {}; pass the username instead",
                many.len(),
                out.path().display(),
                many.join(", ")
            ))
        }
    }
    if let Some((Some(username), _, instance_url)) =
        from_report(&|t| t.alias.as_deref() == Some(org))
    {
        return found(username, instance_url);
    }
    if let Some(home) = sf_home {
        let file = home.join(".sfdx/alias.json");
        let aliases: Option<Value> = input::read_regular_file(&file, input::MAX_LIST_BYTES)
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(username) = aliases.as_ref().and_then(|a| a["orgs"][org].as_str()) {
            return found(username.to_string(), None);
        }
    }
    let looked = match sf_home {
        Some(home) => format!(
            "neither the auth files nor report.json in {} have it, and {} does not list it",
            out.path().display(),
            home.join(".sfdx/alias.json").display()
        ),
        None => format!(
            "neither the auth files nor report.json in {} have it (add --sf to look in the Salesforce CLI's aliases too)",
            out.path().display()
        ),
    };
    Err(format!(
        "unknown alias `{org}`: {looked}; pass the org's username, or check --out-dir"
    ))
}

/// The most read of one auth file (they are under 2 KB).
pub(super) const AUTH_FILE_CAP: u64 = 1024 * 1024;

/// The usernames of the auth files in the out dir that carry `alias`.
fn auth_files_with_alias(out: &OutDir, alias: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Named {
        username: String,
        alias: Option<String>,
    }
    let mut named: Vec<String> = std::fs::read_dir(out.path())
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            if !name.ends_with(".json") || name.starts_with('.') || name == "report.json" {
                return None;
            }
            // Only regular files: a FIFO named like an auth file would block the read.
            let bytes = input::read_regular_file(&path, AUTH_FILE_CAP)?;
            let file: Named = serde_json::from_slice(&bytes).ok()?;
            (file.alias.as_deref() == Some(alias)).then_some(file.username)
        })
        .collect();
    named.sort();
    named.dedup();
    named
}

/// The orgs of `<out-dir>/report.json`, if there is one, read and checked like any org list
/// (usernames, aliases, duplicate aliases): it may come from another pipeline.
fn report_targets(out: &OutDir) -> Result<Vec<Target>, String> {
    let path = out.path().join("report.json");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    input::read(&path, Some(input::Format::Json))
        .map(|list| list.targets)
        .map_err(|e| format!("the out dir's report.json is not a usable org list: {e}"))
}

/// The username of the auth file in the out dir whose name is `username`, in any case.
fn auth_file_named(out: &OutDir, username: &str) -> Option<String> {
    std::fs::read_dir(out.path())
        .ok()?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".json")?.to_string();
            (stem.eq_ignore_ascii_case(username) && stem != "report").then_some(stem)
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out_dir() -> (tempfile::TempDir, OutDir) {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutDir::open(&tmp.path().join("out")).unwrap();
        (tmp, out)
    }

    #[test]
    fn an_alias_resolves_through_auth_files_then_report_json_then_sf() {
        let (tmp, out) = out_dir();
        std::fs::write(
            out.path().join("a@x.com.json"),
            r#"{"username":"a@x.com","alias":"one","accessToken":"t"}"#,
        )
        .unwrap();
        std::fs::write(
            out.path().join("report.json"),
            r#"{"orgs":[{"username":"a@x.com","alias":"one","instanceUrl":"https://a"},{"username":"b@x.com","alias":"two","instanceUrl":"https://b"}]}"#,
        )
        .unwrap();
        let home = tmp.path().join("home");
        std::fs::create_dir_all(home.join(".sfdx")).unwrap();
        std::fs::write(
            home.join(".sfdx/alias.json"),
            r#"{"orgs":{"three":"c@x.com"}}"#,
        )
        .unwrap();

        let one = resolve("one", &out, None).unwrap();
        assert_eq!((one.username.as_str(), one.instance_url), ("a@x.com", None));
        let two = resolve("two", &out, None).unwrap();
        assert_eq!(two.username, "b@x.com");
        assert_eq!(two.instance_url.as_deref(), Some("https://b"));
        assert!(resolve("three", &out, None)
            .unwrap_err()
            .contains("add --sf"));
        assert_eq!(
            resolve("three", &out, Some(&home)).unwrap().username,
            "c@x.com"
        );
        let by_name = resolve("B@x.com", &out, None).unwrap();
        assert_eq!(by_name.alias.as_deref(), Some("two"));
        assert_eq!(by_name.instance_url.as_deref(), Some("https://b"));
    }

    #[test]
    fn an_alias_of_two_orgs_or_a_bad_username_is_refused() {
        let (_tmp, out) = out_dir();
        for u in ["a@x.com", "b@x.com"] {
            std::fs::write(
                out.path().join(format!("{u}.json")),
                format!(r#"{{"username":"{u}","alias":"dup"}}"#),
            )
            .unwrap();
        }
        assert!(resolve("dup", &out, None)
            .unwrap_err()
            .contains("names 2 orgs"));
        assert!(resolve("../x@y.com", &out, None).is_err());
    }
}
