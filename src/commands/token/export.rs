//! How `fleetauth token` hands the token over: alone on stdout, as sf's `--json` envelope, as
//! dotenv lines, as GitHub Actions variables (masked first), or as CumulusCI's secret-free
//! org descriptor.

use std::io::Write as _;
use std::path::Path;

use serde_json::json;

use crate::cli::TokenFormat;
use crate::commands::session::Issued;

/// Print `issued` as `format` asks (or the `--json` envelope).
pub(super) fn print(
    issued: &Issued,
    format: TokenFormat,
    json: bool,
    warnings: &[String],
) -> Result<(), String> {
    let token = issued.access_token.expose();
    let text = if json {
        let envelope = json!({
            "status": 0,
            "result": {
                "username": issued.username,
                "alias": issued.alias,
                "orgId": issued.org_id,
                "instanceUrl": issued.instance_url,
                "accessToken": token,
                "issuedAt": issued.issued_at,
                "authFile": issued.auth_file,
                "reused": issued.reused,
            },
            "warnings": warnings,
        });
        let mut s = serde_json::to_string_pretty(&envelope).expect("JSON always serializes");
        s.push('\n');
        s
    } else {
        for w in warnings {
            crate::say_err!("warning: {w}");
        }
        match format {
            TokenFormat::Token => format!("{token}\n"),
            TokenFormat::Dotenv => dotenv(&variables(issued))?,
            TokenFormat::Github => {
                // The mask comes first, so that the runner hides the token in every later line.
                let mask = format!("::add-mask::{}\n", command_value(token));
                // Without the mask line delivered, the token must not reach later steps.
                stdout(&mask)?;
                let file = std::env::var_os("GITHUB_ENV")
                    .filter(|v| !v.is_empty())
                    .ok_or("$GITHUB_ENV is not set")?;
                append_github_env(Path::new(&file), &variables(issued))?;
                crate::say_err!(
                    "fleetauth: SF_ACCESS_TOKEN (masked), SF_ORG_INSTANCE_URL and SF_USERNAME of {} are set for the next steps",
                    issued.username
                );
                return Ok(());
            }
            TokenFormat::Cumulusci => cumulusci(issued),
        }
    };
    stdout(&text)
}

/// Write `text` on stdout; a pipeline that gets nothing must not get exit 0 either.
fn stdout(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// What `sf org login access-token --no-prompt` and sfdx-core read, plus the username.
fn variables(issued: &Issued) -> [(&'static str, &str); 3] {
    [
        ("SF_ACCESS_TOKEN", issued.access_token.expose()),
        ("SF_ORG_INSTANCE_URL", &issued.instance_url),
        ("SF_USERNAME", &issued.username),
    ]
}

/// `NAME=value` lines. Values are bare when every reader takes them as they are (GitLab's
/// dotenv report keeps quotes, so they are used only when needed), else single-quoted, else
/// double-quoted with escapes. A line break cannot be carried: an error.
fn dotenv(vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::new();
    for (name, value) in vars {
        if value.contains(['\n', '\r']) {
            return Err(format!(
                "{name} holds a line break, which dotenv cannot carry"
            ));
        }
        let bare = value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/@!+,%~^=".contains(c));
        let quoted = if bare {
            (*value).to_string()
        } else if !value.contains('\'') {
            format!("'{value}'")
        } else {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
                .replace('`', "\\`");
            format!("\"{escaped}\"")
        };
        out.push_str(&format!("{name}={quoted}\n"));
    }
    Ok(out)
}

/// A value in a workflow command (`::add-mask::`), escaped as the runner unescapes it.
fn command_value(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Append `NAME<<DELIM`, the value, `DELIM` for each variable: safe for any value, because the
/// random delimiter is checked to appear in none.
fn append_github_env(path: &Path, vars: &[(&str, &str)]) -> Result<(), String> {
    let delimiter = loop {
        let d = format!("ghadelimiter_{:032x}", rand::random::<u128>());
        if vars.iter().all(|(_, v)| !v.contains(&d)) {
            break d;
        }
    };
    let mut text = String::new();
    for (name, value) in vars {
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open $GITHUB_ENV ({}): {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot append to $GITHUB_ENV ({}): {e}", path.display()))
}

/// `CUMULUSCI_ORG_<NAME>={"username":…,"instance_url":…}`: the org, never its token.
fn cumulusci(issued: &Issued) -> String {
    let name: String = issued
        .alias
        .as_deref()
        .unwrap_or(&issued.username)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let descriptor = json!({"username": issued.username, "instance_url": issued.instance_url});
    format!("CUMULUSCI_ORG_{name}={descriptor}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_quotes_only_what_needs_it() {
        let text = dotenv(&[
            ("A", "00D5g!AQ0.x_y"),
            ("B", "https://x.my.salesforce.com"),
            ("C", "it has spaces"),
            ("D", "o'brien $HOME"),
        ])
        .unwrap();
        assert_eq!(
            text,
            "A=00D5g!AQ0.x_y\nB=https://x.my.salesforce.com\nC='it has spaces'\nD=\"o'brien \\$HOME\"\n"
        );
        assert!(dotenv(&[("A", "x\ny")]).is_err());
    }

    #[test]
    fn github_env_uses_a_delimiter_absent_from_every_value() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("env");
        std::fs::write(&path, "EARLIER=1\n").unwrap();
        append_github_env(&path, &[("A", "line1\nline2"), ("B", "b")]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("EARLIER=1"), "appended, not replaced");
        let (name, delim) = lines.next().unwrap().split_once("<<").unwrap();
        assert_eq!(name, "A");
        assert_eq!(lines.next(), Some("line1"));
        assert_eq!(lines.next(), Some("line2"));
        assert_eq!(lines.next(), Some(delim));
        assert!(delim.starts_with("ghadelimiter_") && delim.len() > 20);
    }

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(command_value("a%b\nc\r"), "a%25b%0Ac%0D");
    }
}
