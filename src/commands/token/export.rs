//! How `fleetauth token` hands the org over: the token alone on stdout, sf's `--json`
//! envelope, or a set of variables (`--vars`: sf's, or CumulusCI's secret-free org descriptor)
//! written for one reader (`--format`). Readers disagree on quoting, so each gets its own form:
//!
//! | format | reader | rule |
//! |---|---|---|
//! | `dotenv` | `set -a; . ./file` (sh, bash), python-dotenv | bare when safe, else single, else double quotes; a value no quoting carries for both is refused |
//! | `docker` | `docker run --env-file` | the value as it is (docker processes no quotes) |
//! | `gitlab` | `artifacts:reports:dotenv` | the value as it is (GitLab keeps quotes); no whitespace, `=` or `$` |
//! | `github` | `$GITHUB_ENV` | `NAME<<DELIMITER` blocks, after `::add-mask::` for sf's variables |
//!
//! No value ever becomes syntax for its reader: what a reader cannot carry is an error.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::{TokenArgs, TokenFormat, TokenVars};
use crate::commands::session::Issued;

/// What `token` prints, and for which reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Export {
    format: TokenFormat,
    vars: TokenVars,
}

impl Export {
    pub(super) fn from_args(args: &TokenArgs) -> Self {
        match args.format {
            // The descriptor for a shell or python-dotenv.
            TokenFormat::Cumulusci => Self {
                format: TokenFormat::Dotenv,
                vars: TokenVars::Cumulusci,
            },
            format => Self {
                format,
                vars: args.vars,
            },
        }
    }

    /// What can be checked before anything is sent.
    pub(super) fn preflight(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
        if self.format == TokenFormat::Token && self.vars != TokenVars::Sf {
            return Err("--vars is for --format dotenv, docker, gitlab or github".into());
        }
        if self.format == TokenFormat::Github {
            github_env_file(env)?;
        }
        Ok(())
    }
}

/// Print `issued` as `export` asks (or the `--json` envelope).
pub(super) fn print(
    issued: &Issued,
    export: Export,
    json: bool,
    warnings: &[String],
) -> Result<(), String> {
    let token = issued.access_token.expose();
    if json {
        let envelope = json!({
            "status": 0,
            "result": {
                "username": issued.username,
                "alias": issued.alias,
                "orgId": issued.org_id,
                "instanceUrl": issued.instance_url,
                "accessToken": token,
                "issuedAt": issued.issued_at,
                "authFile": issued.auth_file.display().to_string(),
                "reused": issued.reused,
            },
            "warnings": warnings,
        });
        let mut s = serde_json::to_string_pretty(&envelope).map_err(|e| e.to_string())?;
        s.push('\n');
        return stdout(&s);
    }
    for w in warnings {
        crate::say_err!("warning: {w}");
    }
    let vars = variables(issued, export.vars);
    let text = match export.format {
        TokenFormat::Token => format!("{token}\n"),
        TokenFormat::Dotenv | TokenFormat::Cumulusci => lines(&vars, dotenv_value)?,
        TokenFormat::Docker => lines(&vars, docker_value)?,
        TokenFormat::Gitlab => {
            let text = lines(&vars, gitlab_value)?;
            if text.len() >= GITLAB_MAX_BYTES {
                return Err(format!(
                    "the variables take {} bytes, more than GitLab's dotenv report takes ({GITLAB_MAX_BYTES})",
                    text.len()
                ));
            }
            if export.vars == TokenVars::Sf {
                crate::say_err!("warning: GitLab keeps a dotenv report's values with the job's artifacts, the access token included: hand over --vars cumulusci instead and let each job mint its own token");
            }
            text
        }
        TokenFormat::Github => {
            if export.vars == TokenVars::Sf {
                // The mask comes first, so that the runner hides the token in every later line;
                // without the mask line delivered, the token must not reach later steps.
                stdout(&format!("::add-mask::{}\n", command_value(token)))?;
            }
            let file = github_env_file(&|v| std::env::var(v).ok())?;
            append_github_env(&file, &vars)?;
            let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
            crate::say_err!(
                "fleetauth: {} of {} set for the next steps{}",
                names.join(", "),
                issued.username,
                if export.vars == TokenVars::Sf {
                    " (the token masked)"
                } else {
                    ""
                }
            );
            note_cumulusci(issued, export.vars);
            return Ok(());
        }
    };
    stdout(&text)?;
    note_cumulusci(issued, export.vars);
    Ok(())
}

/// Write `text` on stdout; a pipeline that gets nothing must not get exit 0 either.
fn stdout(text: &str) -> Result<(), String> {
    if crate::say::stdout_was_closed() {
        return Err("cannot write to stdout: it is closed, so the token would be lost; give the command a stdout (a pipe or a file)".into());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// The variables of `vars` for `issued`, in the order they are written.
fn variables(issued: &Issued, vars: TokenVars) -> Vec<(String, String)> {
    match vars {
        // What `sf org login access-token --no-prompt` and sfdx-core read: a raw access token
        // as the target org, with its instance URL, lets every sf command run with no login.
        TokenVars::Sf => vec![
            (
                "SF_ACCESS_TOKEN".into(),
                issued.access_token.expose().clone(),
            ),
            ("SF_ORG_INSTANCE_URL".into(), issued.instance_url.clone()),
            ("SF_TARGET_ORG".into(), issued.access_token.expose().clone()),
            ("SF_USERNAME".into(), issued.username.clone()),
        ],
        TokenVars::Cumulusci => {
            let (name, descriptor) = cumulusci(issued);
            vec![(
                format!("CUMULUSCI_ORG_{}", name.to_ascii_uppercase()),
                descriptor,
            )]
        }
    }
}

/// One `NAME=value` line per variable, each value written by `value`.
fn lines(
    vars: &[(String, String)],
    value: fn(&str) -> Result<String, &'static str>,
) -> Result<String, String> {
    let mut out = String::new();
    for (name, v) in vars {
        let written = value(v).map_err(|why| {
            format!("{name} cannot be exported this way: its value {why}. Nothing was printed (the grant is kept in the auth file)")
        })?;
        out.push_str(&format!("{name}={written}\n"));
    }
    Ok(out)
}

/// Characters that mean the same bare in sh, bash and python-dotenv (no `~`: a shell expands
/// it after `=` or `:`; no `$`, quotes, spaces, `#`, globs or separators).
fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-.:/@!+,%^=".contains(c)
}

/// A value for `set -a; . ./file` and python-dotenv alike: bare when every character is,
/// else in single quotes (literal in both, when it holds no `'` and no `\`), else in double
/// quotes with `\` and `"` escaped (the same in both, when it holds no `$` and no backquote).
fn dotenv_value(value: &str) -> Result<String, &'static str> {
    if value.contains(['\n', '\r', '\0']) {
        return Err("holds a line break or NUL, which no dotenv line carries");
    }
    if !value.is_empty() && value.chars().all(is_bare) {
        return Ok(value.to_string());
    }
    if !value.contains(['\'', '\\']) {
        return Ok(format!("'{value}'"));
    }
    if value.contains(['$', '`']) {
        return Err("holds a quote together with `$` or a backquote, which no quoting reads the same in a shell and in python-dotenv: use --format docker or --format github");
    }
    Ok(format!(
        "\"{}\"",
        value.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// docker's `--env-file`: everything after the first `=` is the value, with no quote
/// processing; lines end at a line feed (a trailing carriage return is dropped).
fn docker_value(value: &str) -> Result<String, &'static str> {
    if value.contains(['\n', '\r', '\0']) {
        return Err("holds a line break or NUL, which docker's --env-file cannot carry");
    }
    Ok(value.to_string())
}

/// GitLab's dotenv report takes at most this many bytes (the default instance limit).
const GITLAB_MAX_BYTES: usize = 5 * 1024;

/// GitLab's dotenv report: the value as written (quotes are kept), and it must hold no
/// whitespace or line break (documented), no `=` (the key is everything up to the last one),
/// and no `$` (GitLab expands variable references in variables).
fn gitlab_value(value: &str) -> Result<String, &'static str> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "holds whitespace or a control character, which GitLab's dotenv report does not take",
        );
    }
    if value.contains('=') {
        return Err("holds `=`, which GitLab's dotenv report would read as part of the name");
    }
    if value.contains('$') {
        return Err("holds `$`, which GitLab would expand as a variable reference");
    }
    Ok(value.to_string())
}

/// The org's name for CumulusCI (lower case: `cci` lower-cases the names it reads from the
/// environment) and its descriptor: the org, never its token. CumulusCI mints its own token,
/// and sends the JWT to the login URL its descriptor implies: test.salesforce.com only with
/// `"sandbox": true` (else login.salesforce.com), so that is said for a grant made for test.
#[expect(
    clippy::expect_used,
    reason = "serializing a JSON value to memory cannot fail"
)]
fn cumulusci(issued: &Issued) -> (String, String) {
    let name: String = issued
        .alias
        .as_deref()
        .unwrap_or(&issued.username)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut descriptor = serde_json::Map::new();
    descriptor.insert("username".into(), json!(issued.username));
    descriptor.insert("instance_url".into(), json!(issued.instance_url));
    if issued.audience.as_deref().is_some_and(is_test_audience) {
        descriptor.insert("sandbox".into(), json!(true));
    }
    let text = serde_json::to_string(&descriptor).expect("JSON always serializes");
    (name, text)
}

/// `https://test.salesforce.com`, with or without a trailing slash.
fn is_test_audience(audience: &str) -> bool {
    url::Url::parse(audience)
        .is_ok_and(|u| u.scheme() == "https" && u.host_str() == Some("test.salesforce.com"))
}

/// Tell how CumulusCI will name the org, and what else it needs.
fn note_cumulusci(issued: &Issued, vars: TokenVars) {
    if vars == TokenVars::Cumulusci {
        let (name, _) = cumulusci(issued);
        crate::say_err!(
            "fleetauth: CumulusCI knows this org as `--org {name}`; it mints its own token from $SFDX_CLIENT_ID and $SFDX_HUB_KEY (the key as PEM text)"
        );
    }
}

/// A value in a workflow command (`::add-mask::`), escaped as the runner unescapes it.
fn command_value(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The file `$GITHUB_ENV` names. The runner creates it (empty) before every step, so a file
/// that is not there means this is no runner step, or the variable is stale: refused, rather
/// than creating a file that would hold the token somewhere nobody reads or cleans.
fn github_env_file(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, String> {
    let file = env("GITHUB_ENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .ok_or("--format github appends to the file named by $GITHUB_ENV, which is not set: run it in a GitHub Actions step, or use --format dotenv")?;
    match std::fs::metadata(&file) {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => Err(format!(
            "$GITHUB_ENV names {}, which is not a regular file; nothing was sent",
            file.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "$GITHUB_ENV names {}, which does not exist: the GitHub runner creates it before every step, so this is no runner step or the variable is stale; nothing was sent (outside GitHub Actions, use --format dotenv)",
            file.display()
        )),
        Err(e) => Err(format!(
            "cannot use $GITHUB_ENV ({}): {e}; nothing was sent",
            file.display()
        )),
    }
}

/// Append `NAME<<DELIM`, the value, `DELIM` for each variable: safe for any value, because the
/// random delimiter is checked to appear in none. The file must exist (never created here);
/// when its last line has no line feed, the first block starts on a line of its own.
fn append_github_env(path: &Path, vars: &[(String, String)]) -> Result<(), String> {
    let delimiter = loop {
        let d = format!("ghadelimiter_{:032x}", rand::random::<u128>());
        if vars.iter().all(|(_, v)| !v.contains(&d)) {
            break d;
        }
    };
    let fail = |what: &str, e: std::io::Error| {
        format!("cannot {what} $GITHUB_ENV ({}): {e}", path.display())
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| fail("open", e))?;
    let mut text = String::new();
    if file.metadata().map_err(|e| fail("read", e))?.len() > 0 {
        let mut last = [0_u8; 1];
        file.seek(std::io::SeekFrom::End(-1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|e| fail("read", e))?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    for (name, value) in vars {
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| fail("append to", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_values_are_bare_single_or_double_quoted_or_refused() {
        assert_eq!(dotenv_value("00D5g!AQ0.x_y").unwrap(), "00D5g!AQ0.x_y");
        assert_eq!(
            dotenv_value("https://x.my.salesforce.com").unwrap(),
            "https://x.my.salesforce.com"
        );
        assert_eq!(dotenv_value("a`id`$HOME").unwrap(), "'a`id`$HOME'");
        assert_eq!(dotenv_value("~root").unwrap(), "'~root'");
        assert_eq!(dotenv_value("").unwrap(), "''");
        assert_eq!(
            dotenv_value(r#"{"u":"o'b\"x"}"#).unwrap(),
            r#""{\"u\":\"o'b\\\"x\"}""#
        );
        assert!(dotenv_value("o'b$x").is_err());
        assert!(dotenv_value("o'b`x").is_err());
        assert!(dotenv_value("x\ny").is_err());
    }

    #[test]
    fn gitlab_and_docker_values_are_written_as_they_are_or_refused() {
        let json = r#"{"username":"a'b`c@x.com","instance_url":"https://x"}"#;
        assert_eq!(gitlab_value(json).unwrap(), json);
        assert_eq!(docker_value(json).unwrap(), json);
        assert!(gitlab_value("a b").is_err());
        assert!(gitlab_value("a=b").is_err());
        assert!(gitlab_value("a$b").is_err());
        assert!(docker_value("a\rb").is_err());
    }

    #[test]
    fn github_env_uses_a_delimiter_absent_from_every_value() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("env");
        std::fs::write(&path, "EARLIER=1\n").unwrap();
        append_github_env(
            &path,
            &[
                ("A".into(), "line1\nline2".into()),
                ("B".into(), "b".into()),
            ],
        )
        .unwrap();
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
    fn github_env_starts_on_a_new_line_and_is_never_created() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("env");
        std::fs::write(&path, "EARLIER=v").unwrap();
        append_github_env(&path, &[("A".into(), "a".into())]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("EARLIER=v\nA<<ghadelimiter_"), "{text}");
        let missing = tmp.path().join("missing");
        assert!(append_github_env(&missing, &[("A".into(), "a".into())]).is_err());
        assert!(!missing.exists());
    }

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(command_value("a%b\nc\r"), "a%25b%0Ac%0D");
    }

    #[test]
    fn only_a_test_audience_makes_a_sandbox() {
        assert!(is_test_audience("https://test.salesforce.com"));
        assert!(is_test_audience("https://test.salesforce.com/"));
        assert!(!is_test_audience("https://login.salesforce.com"));
        assert!(!is_test_audience(
            "https://acme--uat.sandbox.my.salesforce.com"
        ));
    }
}
