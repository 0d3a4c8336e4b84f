//! Helpers for the integration tests: an emulator in the test's runtime, a temp workspace
//! with the test key and an org list, and the real `fleetauth` binary run against them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fleetauth::emulator::{self, test_keys, EmulatorConfig, EmulatorHandle, User};
use tokio::io::AsyncWriteExt;

pub mod sf;

pub const CLIENT_ID: &str = test_keys::CLIENT_ID;

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// An emulator config for the test key, knowing `users` (no replication delay).
pub fn config<S: AsRef<str>>(users: &[S]) -> EmulatorConfig {
    let mut config = EmulatorConfig::new(test_keys::CERTIFICATE.as_bytes().to_vec(), CLIENT_ID);
    config.users = users
        .iter()
        .map(|u| (u.as_ref().to_string(), User::default()))
        .collect();
    config
}

pub async fn start(config: EmulatorConfig) -> EmulatorHandle {
    emulator::start(config, 0)
        .await
        .expect("the emulator starts")
}

/// An emulator config for the test key that knows no user yet.
pub fn empty_config() -> EmulatorConfig {
    config::<&str>(&[])
}

/// `n` usernames like `test-<prefix><i>@example.com`.
pub fn usernames(prefix: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("test-{prefix}{i}@example.com"))
        .collect()
}

/// A temp dir with the test key, an org list and room for the output.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    pub list: PathBuf,
    pub out: PathBuf,
}

impl Workspace {
    pub fn new(list_name: &str, list: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("server.key");
        std::fs::write(&key, test_keys::PRIVATE_KEY).expect("write key");
        let list_path = dir.path().join(list_name);
        std::fs::write(&list_path, list).expect("write list");
        let out = dir.path().join("out");
        Self {
            dir,
            key,
            list: list_path,
            out,
        }
    }

    pub fn with_users(users: &[String]) -> Self {
        Self::new("orgs.csv", &(users.join("\n") + "\n"))
    }

    /// `grant <list> -i <client> -f <key> -r <emulator> --out-dir <out>` plus `extra`.
    pub fn grant_args(&self, emu: &EmulatorHandle, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "grant".into(),
            self.list.display().to_string(),
            "-i".into(),
            CLIENT_ID.into(),
            "-f".into(),
            self.key.display().to_string(),
            "-r".into(),
            emu.url(),
            "--out-dir".into(),
            self.out.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// `token <org> -i <client> -f <key> -r <emulator> --out-dir <out>` plus `extra`.
    pub fn token_args(&self, emu: &EmulatorHandle, org: &str, extra: &[&str]) -> Vec<String> {
        let mut args = self.grant_args(emu, extra);
        args[0] = "token".into();
        args[1] = org.into();
        args
    }

    /// The access token in `username`'s auth file in the out dir.
    pub fn auth_token(&self, username: &str) -> String {
        let path = self.out.join(format!("{username}.json"));
        let text = std::fs::read_to_string(&path).expect("the auth file exists");
        let file: serde_json::Value = serde_json::from_str(&text).expect("the auth file is JSON");
        file["accessToken"]
            .as_str()
            .expect("accessToken is a string")
            .to_string()
    }

    pub fn report(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.out.join("report.json")).expect("report.json exists");
        serde_json::from_str(&text).expect("report.json is JSON")
    }

    pub fn auth_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "report.json")
        });
        files.sort();
        files
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run the real binary with `args` (and `stdin`), with a clean environment for credentials.
pub async fn fleetauth(args: &[String], stdin: Option<&str>) -> Run {
    fleetauth_env(args, stdin, &[]).await
}

/// [`fleetauth`] with extra environment variables.
pub async fn fleetauth_env(args: &[String], stdin: Option<&str>, envs: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetauth"));
    cmd.args(args)
        .env_remove("SFDX_CLIENT_ID")
        .env_remove("SFDX_HUB_KEY")
        .env_remove("SFDX_HUB_KEY_BASE64")
        .env_remove("SF_AUDIENCE_URL")
        .env_remove("GITHUB_ENV")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("SF_USE_GENERIC_UNIX_KEYCHAIN", "true")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.envs(envs.iter().copied());
    let mut child = cmd.spawn().expect("the binary runs");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("fleetauth finished within 3 minutes")
        .expect("fleetauth ran");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Grants per user from the emulator's counters.
pub fn grants(emu: &EmulatorHandle) -> HashMap<String, u64> {
    emu.stats.snapshot().grants
}

/// Set the value that follows `flag` in `args` (e.g. `-f` → another key file).
pub fn set_flag(args: &mut [String], flag: &str, value: impl Into<String>) {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} is in the args"));
    args[i + 1] = value.into();
}

/// Remove `flag` and its value from `args`.
pub fn drop_flag(args: &mut Vec<String>, flag: &str) {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} is in the args"));
    args.drain(i..i + 2);
}

/// Parse dotenv lines back (`NAME=value`, the value bare or in matching single or double quotes).
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, value) = line.split_once('=').expect("NAME=value");
            let unquoted = if value.len() >= 2
                && ((value.starts_with('\'') && value.ends_with('\''))
                    || (value.starts_with('"') && value.ends_with('"')))
            {
                let inner = &value[1..value.len() - 1];
                if value.starts_with('"') {
                    inner
                        .replace("\\\"", "\"")
                        .replace("\\$", "$")
                        .replace("\\\\", "\\")
                } else {
                    inner.to_string()
                }
            } else {
                value.to_string()
            };
            (name.to_string(), unquoted)
        })
        .collect()
}

/// Parse a `$GITHUB_ENV` file back as the runner does: `NAME=value` lines and
/// `NAME<<DELIM` ... `DELIM` blocks.
pub fn parse_github_env(text: &str) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let heredoc = match (line.find('='), line.find("<<")) {
            (Some(eq), Some(here)) => here < eq,
            (None, Some(_)) => true,
            _ => false,
        };
        if heredoc {
            let (name, delimiter) = line.split_once("<<").expect("found above");
            let mut value: Vec<&str> = Vec::new();
            loop {
                let next = lines
                    .next()
                    .expect("the heredoc is closed by its delimiter");
                if next == delimiter {
                    break;
                }
                value.push(next);
            }
            vars.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            vars.insert(name.to_string(), value.to_string());
        }
    }
    vars
}
