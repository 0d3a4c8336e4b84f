//! Every row's checks: the username (it becomes a file name), the alias, the instance URL
//! (only to the hosts an assertion may go to), and aliases that would name two orgs.

use super::{InputError, OrgList, Origin, Target};
use crate::urls;

/// An alias given to two different usernames names one of them at random: an error, with
/// both rows.
pub(super) fn duplicate_aliases(targets: &[Target]) -> Vec<(Origin, String)> {
    let mut first: std::collections::HashMap<&str, &Target> = std::collections::HashMap::new();
    let usernames: std::collections::HashMap<String, &Target> = targets
        .iter()
        .map(|t| (t.username.to_lowercase(), t))
        .collect();
    let mut rows = Vec::new();
    for t in targets {
        let Some(alias) = t.alias.as_deref() else {
            continue;
        };
        // sf resolves an alias before a username: an alias that is another org's username
        // would send `-o that-username` to this org.
        if let Some(other) = usernames
            .get(&alias.to_lowercase())
            .filter(|o| !o.username.eq_ignore_ascii_case(&t.username))
        {
            rows.push((
                t.origin.clone(),
                format!(
                    "alias {alias:?} is the username of the org on {}; an alias must not name another org",
                    other.origin
                ),
            ));
            continue;
        }
        match first.get(alias) {
            Some(f) if !f.username.eq_ignore_ascii_case(&t.username) => rows.push((
                t.origin.clone(),
                format!(
                    "alias {alias:?} is also given to {} on {}; an alias names one org: rename one",
                    f.username, f.origin
                ),
            )),
            Some(_) => {}
            None => {
                first.insert(alias, t);
            }
        }
    }
    rows
}

/// Check every row's instance URL against the hosts an assertion may go to: a list that passed
/// through another system must not be able to send a signed assertion elsewhere.
pub fn check_hosts(list: &OrgList, hosts: &crate::urls::HostPolicy) -> Result<(), InputError> {
    let rows: Vec<(Origin, String)> = list
        .targets
        .iter()
        .filter_map(|t| {
            let url = t.instance_url.as_deref()?;
            hosts.row_host(url).err().map(|e| (t.origin.clone(), e))
        })
        .collect();
    if rows.is_empty() {
        Ok(())
    } else {
        Err(InputError::Rejected {
            source_name: list.source.clone(),
            rows,
        })
    }
}

pub(super) fn check_target(t: &Target) -> Option<(Origin, String)> {
    let problem = check_username(&t.username)
        .err()
        .or_else(|| {
            t.instance_url
                .as_deref()
                .and_then(|u| urls::token_host(u).err())
        })
        .or_else(|| t.alias.as_deref().and_then(|a| check_alias(a).err()))?;
    Some((t.origin.clone(), problem))
}

/// An alias is one word: no whitespace, control or bidi characters, at most 80 characters.
pub fn check_alias(alias: &str) -> Result<(), String> {
    if alias.is_empty() {
        return Err("the alias is empty".into());
    }
    if alias.chars().count() > 80 {
        return Err(format!(
            "alias {:?} is longer than 80 characters",
            crate::sanitize::shown(alias, 80)
        ));
    }
    if alias
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || crate::sanitize::is_bidi_control(c))
    {
        return Err(format!(
            "alias {alias:?} contains whitespace, a control or a bidi character"
        ));
    }
    Ok(())
}

/// Longest username we accept: it becomes `<username>.json`, and file names stop at 255 bytes.
const MAX_USERNAME: usize = 250;

/// A Salesforce username is `local@domain.tld`; it is also used as a file name, so nothing in
/// it may leave the output directory or hide the file.
pub fn check_username(username: &str) -> Result<(), String> {
    // Quoted with escapes, and cut: a 50 MB "username" is not echoed whole.
    let shown: String = if username.chars().count() > 80 {
        format!("{}…", username.chars().take(80).collect::<String>())
    } else {
        username.to_string()
    };
    let bad = |why: &str| Err(format!("username {shown:?} {why}"));
    if username.is_empty() {
        return bad("is empty");
    }
    if username.len() > MAX_USERNAME {
        return bad("is longer than 250 bytes");
    }
    if let Some(c) = username.chars().find(|c| {
        c.is_control()
            || c.is_whitespace()
            || crate::sanitize::is_bidi_control(*c)
            || matches!(c, '/' | '\\')
    }) {
        return bad(&format!(
            "contains {c:?}, which cannot be part of a username or a file name"
        ));
    }
    if username.starts_with('.') {
        return bad("starts with a dot");
    }
    let Some((local, domain)) = username.split_once('@') else {
        return bad("is not of the form local@domain");
    };
    if local.is_empty() || domain.contains('@') {
        return bad("is not of the form local@domain");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return bad("has a domain without a dot-separated name (like example.com)");
    }
    if let Some(c) = domain
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-')))
    {
        return bad(&format!(
            "has {c:?} in its domain; a Salesforce username's domain has only letters, digits, dots and hyphens"
        ));
    }
    if let Some(c) = local.chars().find(|c| {
        matches!(
            c,
            '"' | '[' | ']' | ';' | ',' | '<' | '>' | '(' | ')' | ':' | '{' | '}'
        )
    }) {
        return bad(&format!(
            "contains {c:?}, which a Salesforce username cannot"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        assert!(check_username("test-abc@example.com").is_ok());
        assert!(check_username("Test.User+1@sub.example.co.uk").is_ok());
        for bad in [
            "",
            "a@b",
            "@x.com",
            "a@@x.com",
            ".hidden@x.com",
            "a/b@x.com",
            "a\\b@x.com",
            "a\0b@x.com",
            "a b@x.com",
            "a@x..com",
        ] {
            assert!(check_username(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_username(&format!("{}@x.com", "a".repeat(300))).is_err());
    }
}
