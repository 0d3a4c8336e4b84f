//! Opening a link in the user's browser, or saying why none can be opened here: `$BROWSER`
//! (colon-separated commands, `%s` for the link, as xdg-open and Python read it), else `open`
//! on macOS, `xdg-open` on a desktop with a display elsewhere; never in CI. The link goes to
//! the opener as one argument (no shell); the opener's own output is discarded, so nothing it
//! prints about the link reaches the terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long an opener may take to say it failed; one still running then is a browser in the
/// foreground (`BROWSER=firefox`), left to run.
const SETTLE: Duration = Duration::from_secs(5);

/// A command that opens a URL.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Opener {
    pub program: PathBuf,
    /// Its arguments; `%s` stands for the link, which is appended when none does.
    pub args: Vec<String>,
}

/// Is `value` a set environment flag (`CI=true`, `CI=1`; not empty, `0` or `false`)?
fn flag_set(value: Option<String>) -> bool {
    value.is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// `name` as found on `path` (a `PATH` value), or as given when it names a file itself.
fn find(name: &str, path: Option<&str>) -> Option<PathBuf> {
    if name.contains('/') {
        let p = Path::new(name);
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The opener to use here, or why there is none. `os` is `std::env::consts::OS`.
pub(super) fn choose(env: &dyn Fn(&str) -> Option<String>, os: &str) -> Result<Opener, String> {
    if flag_set(env("CI")) {
        return Err("this is a CI job (CI is set), where no one sees a browser".into());
    }
    let path = env("PATH");
    if let Some(browser) = env("BROWSER").filter(|b| !b.trim().is_empty()) {
        for entry in browser.split(':') {
            let mut words = entry.split_whitespace();
            let Some(program) = words.next() else {
                continue;
            };
            if let Some(program) = find(program, path.as_deref()) {
                return Ok(Opener {
                    program,
                    args: words.map(str::to_string).collect(),
                });
            }
        }
        return Err("no command named in $BROWSER is installed".into());
    }
    let (name, args): (&str, &[&str]) = match os {
        "macos" => ("open", &[]),
        "windows" => ("rundll32", &["url.dll,FileProtocolHandler"]),
        _ => {
            let display = |v: &str| env(v).is_some_and(|d| !d.is_empty());
            if !display("DISPLAY") && !display("WAYLAND_DISPLAY") {
                return Err(
                    "there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)".into(),
                );
            }
            ("xdg-open", &[])
        }
    };
    let program = find(name, path.as_deref()).ok_or_else(|| format!("{name} is not installed"))?;
    Ok(Opener {
        program,
        args: args.iter().map(|a| (*a).to_string()).collect(),
    })
}

/// Run `opener` on `url` and wait briefly for it to fail. `Err` says why (never the link).
pub(super) async fn launch(opener: &Opener, url: &str) -> Result<(), String> {
    let mut args: Vec<String> = opener.args.iter().map(|a| a.replace("%s", url)).collect();
    if !opener.args.iter().any(|a| a.contains("%s")) {
        args.push(url.to_string());
    }
    let name = opener.program.display().to_string();
    let mut child = Command::new(&opener.program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{name} failed ({status})")),
            Ok(None) if start.elapsed() >= SETTLE => return Ok(()),
            Ok(None) => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(e) => return Err(format!("cannot wait for {name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn no_browser_in_ci_or_without_a_display() {
        let bin = tempfile::tempdir().unwrap();
        std::fs::write(bin.path().join("xdg-open"), "").unwrap();
        let path = bin.path().display().to_string();
        let ci = env_of(&[("CI", "true"), ("DISPLAY", ":0"), ("PATH", &path)]);
        assert!(choose(&ci, "linux").unwrap_err().contains("CI"));
        let headless = env_of(&[("PATH", &path)]);
        assert!(choose(&headless, "linux")
            .unwrap_err()
            .contains("no display"));
        let desktop = env_of(&[("CI", "false"), ("DISPLAY", ":0"), ("PATH", &path)]);
        assert_eq!(
            choose(&desktop, "linux").unwrap().program,
            bin.path().join("xdg-open")
        );
        let missing = env_of(&[("WAYLAND_DISPLAY", "wayland-0"), ("PATH", "/nonexistent")]);
        assert!(choose(&missing, "linux")
            .unwrap_err()
            .contains("xdg-open is not installed"));
    }

    #[test]
    fn browser_names_the_first_installed_command() {
        let bin = tempfile::tempdir().unwrap();
        std::fs::write(bin.path().join("firefox"), "").unwrap();
        let path = bin.path().display().to_string();
        let env = env_of(&[
            ("BROWSER", "nosuch:firefox --new-window %s"),
            ("PATH", &path),
        ]);
        let opener = choose(&env, "linux").unwrap();
        assert_eq!(opener.program, bin.path().join("firefox"));
        assert_eq!(opener.args, ["--new-window", "%s"]);
        let none = env_of(&[("BROWSER", "nosuch"), ("PATH", &path)]);
        assert!(choose(&none, "macos").unwrap_err().contains("$BROWSER"));
    }
}
