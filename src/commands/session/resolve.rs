//! Which org `fleetauth token ARG` means: a username as it is, or an alias looked up in the out
//! dir's records (the auth files, then a report.json handed over from another job, or the
//! `--list` files in its place), then, with `--sf`, in sf's alias.json. A report.json also gives
//! the org's instance URL, tried first.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::input::{self, Target};
use crate::store::{AuthFile, OutDir};

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Resolved {
    pub username: String,
    /// The alias, when there is one.
    pub alias: Option<String>,
    /// The org's instance URL from a report.json, to try before `--instance-url`.
    pub instance_url: Option<String>,
}

/// The org `org` names, or why none is (a usage error). A username with an auth file needs
/// no report.json; a report.json that is no report at all (another output written over it) is
/// passed over with a warning.
pub(super) fn resolve(
    org: &str,
    out: &OutDir,
    lists: &[PathBuf],
    sf_home: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<Resolved, String> {
    // `--list`: read (and checked, across lists too) before anything else, so a bad one is
    // refused whatever the org.
    let listed = match lists {
        [] => None,
        lists => Some(
            input::read_all(lists, None)
                .map(|list| list.targets)
                .map_err(|e| format!("--list: {e}"))?,
        ),
    };
    let report_targets = |out: &OutDir, warnings: &mut Vec<String>| match &listed {
        Some(targets) => Ok(targets.clone()),
        None => report_targets(out, warnings),
    };
    let from_report = |report: &[Target], matches: &dyn Fn(&Target) -> bool| {
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
        // Usernames are case-insensitive: the spelling the org was granted under is kept.
        if let Some((file, _)) = out
            .find_auth(org)
            .and_then(|path| AuthFile::read(&path).ok())
            .filter(|(file, _)| file.is_of(org) && input::check_username(&file.username).is_ok())
        {
            return Ok(Resolved {
                username: file.username,
                alias: None,
                instance_url: None,
            });
        }
        let report = report_targets(out, warnings)?;
        let (known, alias, instance_url) =
            from_report(&report, &|t| t.username.eq_ignore_ascii_case(org)).unwrap_or_default();
        return Ok(Resolved {
            username: known.unwrap_or_else(|| org.to_string()),
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
    let report = report_targets(out, warnings)?;
    if let Some((Some(username), _, instance_url)) =
        from_report(&report, &|t| t.alias.as_deref() == Some(org))
    {
        return found(username, instance_url);
    }
    if let Some(home) = sf_home {
        let file = home.join(".sfdx/alias.json");
        let aliases: Option<Value> = crate::files::read_found(&file, input::MAX_LIST_BYTES)
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(username) = aliases
            .as_ref()
            .and_then(|a| a.get("orgs")?.get(org)?.as_str())
        {
            return found(username.to_string(), None);
        }
    }
    let records = match lists {
        [] => format!(
            "neither the auth files nor report.json in {}",
            out.path().display()
        ),
        lists => format!(
            "neither the auth files in {} nor {}",
            out.path().display(),
            lists
                .iter()
                .map(|l| l.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let looked = match sf_home {
        Some(home) => format!(
            "{records} have it, and {} does not list it",
            home.join(".sfdx/alias.json").display()
        ),
        None => format!("{records} have it (add --sf to look in the Salesforce CLI's aliases too)"),
    };
    Err(format!(
        "unknown alias `{org}`: {looked}; pass the org's username, or check --out-dir"
    ))
}

/// The usernames of the auth files in the out dir that carry `alias`, each org once.
fn auth_files_with_alias(out: &OutDir, alias: &str) -> Vec<String> {
    let mut named: Vec<String> = out
        .auth_files()
        .into_iter()
        .filter(|(_, file)| file.alias.as_deref() == Some(alias))
        .map(|(_, file)| file.username)
        .collect();
    named.sort_by_key(|u| u.to_lowercase());
    named.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    named
}

/// The orgs of `<out-dir>/report.json`, if there is one, read and checked like any org list
/// (usernames, aliases, duplicate aliases): it may come from another pipeline. A file there
/// that is no report (not a JSON object with `orgs`) is passed over with a warning.
fn report_targets(out: &OutDir, warnings: &mut Vec<String>) -> Result<Vec<Target>, String> {
    let path = out.path().join("report.json");
    if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
        return Ok(Vec::new());
    }
    let is_report = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|v| v.get("orgs").is_some_and(Value::is_array));
    if !is_report {
        warnings.push(format!(
            "{} is not a fleetauth report; it was not used",
            path.display()
        ));
        return Ok(Vec::new());
    }
    input::read(&path, Some(input::Format::Json))
        .map(|list| list.targets)
        .map_err(|e| format!("the out dir's report.json is not a usable org list: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_(org: &str, out: &OutDir, sf_home: Option<&Path>) -> Result<Resolved, String> {
        resolve(org, out, &[], sf_home, &mut Vec::new())
    }

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

        let one = resolve_("one", &out, None).unwrap();
        assert_eq!((one.username.as_str(), one.instance_url), ("a@x.com", None));
        let two = resolve_("two", &out, None).unwrap();
        assert_eq!(two.username, "b@x.com");
        assert_eq!(two.instance_url.as_deref(), Some("https://b"));
        assert!(resolve_("three", &out, None)
            .unwrap_err()
            .contains("add --sf"));
        assert_eq!(
            resolve_("three", &out, Some(&home)).unwrap().username,
            "c@x.com"
        );
        let by_name = resolve_("B@x.com", &out, None).unwrap();
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
        assert!(resolve_("dup", &out, None)
            .unwrap_err()
            .contains("names 2 orgs"));
        assert!(resolve_("../x@y.com", &out, None).is_err());
    }

    #[test]
    fn a_username_with_an_auth_file_needs_no_report_and_a_clobbered_report_is_passed_over() {
        let (_tmp, out) = out_dir();
        std::fs::write(
            out.path().join("a@x.com.json"),
            r#"{"username":"A@x.com","alias":"one","accessToken":"t"}"#,
        )
        .unwrap();
        std::fs::write(out.path().join("report.json"), "<testsuites/>").unwrap();
        let mut warnings = Vec::new();
        let a = resolve("a@X.com", &out, &[], None, &mut warnings).unwrap();
        assert_eq!(a.username, "A@x.com", "the spelling it was granted under");
        assert!(warnings.is_empty(), "{warnings:?}");
        let b = resolve("b@x.com", &out, &[], None, &mut warnings).unwrap();
        assert_eq!(b.username, "b@x.com");
        assert!(
            warnings[0].contains("not a fleetauth report"),
            "{warnings:?}"
        );
        assert_eq!(
            resolve("one", &out, &[], None, &mut warnings)
                .unwrap()
                .username,
            "A@x.com"
        );
    }
}
