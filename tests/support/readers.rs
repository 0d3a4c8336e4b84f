//! The readers of `fleetauth token`'s exports, each reading as it really does: sh and bash
//! sourcing with `set -a; . ./file` in the suite's scrubbed environment, python-dotenv (the
//! real package, from `.ci/python/dotenv.txt`), and, where no real reader can run here, the documented
//! rules of docker's `--env-file`, GitLab's dotenv report and the GitHub runner's `$GITHUB_ENV`,
//! written down as small checkers. None of them is an inverse of fleetauth's own quoting.

use std::collections::HashMap;

/// What sourcing a file did: the variables it set, and any file that appeared beside it
/// (a command that ran).
pub struct Sourced {
    pub vars: HashMap<String, String>,
    pub new_files: Vec<String>,
}

fn env0(bytes: &[u8]) -> HashMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let e = String::from_utf8_lossy(e);
            let (k, v) = e.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// `shell -c 'set -a; . ./org.env'` with `text` as org.env, in the suite's scrubbed
/// environment and an empty temp dir. Panics when the shell fails or says anything on stderr.
pub fn source(shell: &str, text: &str) -> Sourced {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("org.env"), text).expect("write org.env");
    let run = |script: &str| {
        super::scrubbed(shell, dir.path())
            .args(["-c", script])
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{shell} runs: {e}"))
    };
    let baseline = env0(&run("env -0").stdout);
    let out = run("set -a; . ./org.env; set +a; env -0");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{shell} could not source the file ({}): {}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut vars = env0(&out.stdout);
    vars.retain(|k, v| baseline.get(k) != Some(v) && k != "_" && k != "SHLVL");
    let new_files = std::fs::read_dir(dir.path())
        .expect("read the temp dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "org.env")
        .collect();
    Sourced { vars, new_files }
}

/// python-dotenv's `dotenv_values` of `text` (interpolation on, its default), in the
/// suite's scrubbed environment. Panics when python-dotenv warns that it could not parse a line.
pub fn python_dotenv(text: &str) -> HashMap<String, String> {
    let bin = super::python::venv_bin("dotenv");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("org.env");
    std::fs::write(&file, text).expect("write org.env");
    let out = super::scrubbed(bin.join("python"), dir.path())
        .args([
            "-c",
            "import json, sys, dotenv; print(json.dumps(dotenv.dotenv_values(sys.argv[1])))",
        ])
        .arg(&file)
        .output()
        .expect("the venv's python runs");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "python-dotenv failed or warned: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values: HashMap<String, Option<String>> =
        serde_json::from_slice(&out.stdout).expect("python printed JSON");
    values
        .into_iter()
        .map(|(k, v)| (k.clone(), v.unwrap_or_else(|| panic!("{k} has no value"))))
        .collect()
}

/// docker's `--env-file`, as documented ("VAR=VAL" lines, `#` comments, no quote processing)
/// and as its parser does it: lines split at `\n` (a trailing `\r` dropped), leading
/// whitespace trimmed, the name up to the first `=`, which must hold no whitespace.
pub fn docker_env_file(text: &str) -> Result<HashMap<String, String>, String> {
    let mut vars = HashMap::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: `{line}` takes its value from docker's own environment",
                i + 1
            ));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!(
                "line {}: variable '{name}' contains whitespaces",
                i + 1
            ));
        }
        vars.insert(name.to_string(), value.to_string());
    }
    Ok(vars)
}

/// GitLab's `artifacts:reports:dotenv`, as documented (UTF-8, under 5 KB, at most 20
/// variables by default, no empty lines or comments, no multi-line values, values with no
/// spaces, quotes kept as written, no variable substitution) and as its parser splits a line
/// (`/^(.*)=(.*)$/`: the name is everything up to the last `=`, both sides stripped, the name
/// of ASCII letters, digits and `_`).
pub fn gitlab_dotenv(text: &str) -> Result<HashMap<String, String>, String> {
    if text.len() >= 5 * 1024 {
        return Err(format!("the file has {} bytes, 5 KB or more", text.len()));
    }
    let mut vars = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            return Err(format!("line {n} is empty"));
        }
        if line.starts_with('#') {
            return Err(format!("line {n} is a comment"));
        }
        let (name, value) = line
            .rsplit_once('=')
            .ok_or_else(|| format!("line {n}: Invalid Format"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("line {n}: the key `{name}` is invalid"));
        }
        if value.contains(char::is_whitespace) {
            return Err(format!("line {n}: the value has spaces"));
        }
        vars.insert(name.to_string(), value.to_string());
    }
    if vars.len() > 20 {
        return Err(format!("{} variables, more than 20", vars.len()));
    }
    Ok(vars)
}

/// The GitHub runner's reading of `$GITHUB_ENV`: per line, `NAME=value` when a `=` comes
/// before any `<<`, else `NAME<<DELIMITER` followed by the value's lines up to a line that is
/// the delimiter; empty lines are skipped; anything else is an error that fails the step.
pub fn github_env(text: &str) -> Result<HashMap<String, String>, String> {
    let mut vars = HashMap::new();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let (eq, here) = (line.find('='), line.find("<<"));
        match (eq, here) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                let (name, value) = line.split_at(e);
                if name.is_empty() {
                    return Err(format!("Invalid format '{line}'. Name must not be empty"));
                }
                vars.insert(name.to_string(), value[1..].to_string());
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(format!("Invalid format '{line}'"));
                }
                let mut value = Vec::new();
                loop {
                    let next = lines
                        .next()
                        .ok_or_else(|| format!("Matching delimiter not found '{delimiter}'"))?;
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                vars.insert(name.to_string(), value.join("\n"));
            }
            _ => return Err(format!("Invalid format '{line}'")),
        }
    }
    Ok(vars)
}
