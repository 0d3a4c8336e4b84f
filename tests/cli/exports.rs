//! What `fleetauth token` hands to the next tool, read back by the real readers: sh and bash
//! `set -a; .`, python-dotenv, docker's `--env-file` and GitLab's dotenv rules (documented,
//! encoded in tests/support/readers.rs: neither runs here), the GitHub runner's `$GITHUB_ENV`,
//! the real `sf` and the real CumulusCI. Also sf's names for things: `-o/--target-org`,
//! `--audience`, `SFDX_AUDIENCE_URL`.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use fleetauth::emulator::EmulatorHandle;
use serde_json::{json, Value};

use crate::support::readers::{self, Sourced};
use crate::support::*;

/// A username whose backquotes run a command in any shell that reads it unquoted.
const BACKQUOTE: &str = "o`touch$IFS.pwned`x@example.com";
/// A quote and a `&`, no `$`: double quotes serve a shell and python-dotenv.
const QUOTES: &str = "o'brien&q@example.com";
/// A quote and a `$`: no one dotenv quoting reads the same in a shell and in python-dotenv.
const QUOTE_DOLLAR: &str = "o'b$x@example.com";

fn csv_field(s: &str) -> String {
    if s.contains(['"', ',']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// An emulator knowing `users`, and a workspace where each was granted with alias a1, a2, ...
async fn granted(users: &[&str]) -> (EmulatorHandle, Workspace) {
    let emu = start(config(users)).await;
    let mut list = String::from("username,alias\n");
    for (i, u) in users.iter().enumerate() {
        list.push_str(&format!("{},a{}\n", csv_field(u), i + 1));
    }
    let ws = Workspace::new("orgs.csv", &list);
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    (emu, ws)
}

async fn token(ws: &Workspace, emu: &EmulatorHandle, org: &str, extra: &[&str]) -> Run {
    fleetauth(&ws.token_args(emu, org, extra), None).await
}

/// The variables `--vars sf` must carry for `username`.
fn sf_vars(ws: &Workspace, emu: &EmulatorHandle, username: &str) -> HashMap<String, String> {
    let token = ws.auth_token(username);
    HashMap::from([
        ("SF_ACCESS_TOKEN".to_string(), token.clone()),
        ("SF_ORG_INSTANCE_URL".to_string(), emu.url()),
        ("SF_TARGET_ORG".to_string(), token),
        ("SF_USERNAME".to_string(), username.to_string()),
    ])
}

/// The descriptor `--vars cumulusci` must carry for `username` (granted for test: a sandbox).
fn descriptor(emu: &EmulatorHandle, username: &str) -> Value {
    json!({"username": username, "instance_url": emu.url(), "sandbox": true})
}

fn assert_ran_nothing(sourced: &Sourced, shell: &str) {
    assert!(
        sourced.new_files.is_empty(),
        "{shell} ran a command from the file: it created {:?}",
        sourced.new_files
    );
}

// --- dotenv: sh, bash, python-dotenv -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_cumulusci_descriptor_reads_back_as_json_in_sh_bash_and_python_dotenv_and_runs_nothing()
{
    let (emu, ws) = granted(&[BACKQUOTE, QUOTES]).await;
    for (alias, username) in [("a1", BACKQUOTE), ("a2", QUOTES)] {
        for flags in [
            &["--format", "cumulusci"][..],
            &["--format", "dotenv", "--vars", "cumulusci"],
        ] {
            let run = token(&ws, &emu, alias, flags).await;
            assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
            let name = format!("CUMULUSCI_ORG_{}", alias.to_uppercase());
            for shell in ["sh", "bash"] {
                let sourced = readers::source(shell, &run.stdout);
                assert_ran_nothing(&sourced, shell);
                let value = &sourced.vars[&name];
                let parsed: Value = serde_json::from_str(value).unwrap_or_else(|e| {
                    panic!("{shell} read {name}={value}, which is not JSON ({e})")
                });
                assert_eq!(parsed, descriptor(&emu, username), "{shell}");
                assert_eq!(sourced.vars.len(), 1, "{shell}: {:?}", sourced.vars);
            }
            let python = readers::python_dotenv(&run.stdout);
            let parsed: Value = serde_json::from_str(&python[&name]).expect("JSON in python");
            assert_eq!(parsed, descriptor(&emu, username), "python-dotenv");
            assert!(
                run.stderr.contains(&format!("--org {alias}")),
                "says the name CumulusCI answers to: {}",
                run.stderr
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sfs_variables_read_back_the_same_in_sh_bash_and_python_dotenv() {
    let (emu, ws) = granted(&["plain@example.com", BACKQUOTE, QUOTES]).await;
    for (alias, username) in [
        ("a1", "plain@example.com"),
        ("a2", BACKQUOTE),
        ("a3", QUOTES),
    ] {
        let run = token(&ws, &emu, alias, &["--format", "dotenv"]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let expected = sf_vars(&ws, &emu, username);
        for shell in ["sh", "bash"] {
            let sourced = readers::source(shell, &run.stdout);
            assert_ran_nothing(&sourced, shell);
            assert_eq!(sourced.vars, expected, "{shell} read:\n{}", run.stdout);
        }
        assert_eq!(
            readers::python_dotenv(&run.stdout),
            expected,
            "python-dotenv"
        );
        assert!(!run.stderr.contains(&expected["SF_ACCESS_TOKEN"]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_no_dotenv_quoting_carries_is_refused_with_the_formats_that_do() {
    let (emu, ws) = granted(&[QUOTE_DOLLAR]).await;
    for vars in ["sf", "cumulusci"] {
        let run = token(&ws, &emu, "a1", &["--format", "dotenv", "--vars", vars]).await;
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stdout.is_empty(),
            "nothing half-printed: {}",
            run.stdout
        );
        assert!(
            run.stderr.contains("--format docker") && run.stderr.contains("--format github"),
            "{}",
            run.stderr
        );
    }
    // The readers that take values as they are carry it.
    let run = token(&ws, &emu, "a1", &["--format", "docker"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        readers::docker_env_file(&run.stdout).unwrap(),
        sf_vars(&ws, &emu, QUOTE_DOLLAR)
    );
}

// --- docker --env-file, GitLab's dotenv report, $GITHUB_ENV --------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn docker_reads_every_value_as_it_is() {
    let (emu, ws) = granted(&[BACKQUOTE, QUOTES, QUOTE_DOLLAR]).await;
    for (alias, username) in [("a1", BACKQUOTE), ("a2", QUOTES), ("a3", QUOTE_DOLLAR)] {
        let run = token(&ws, &emu, alias, &["--format", "docker"]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            readers::docker_env_file(&run.stdout).unwrap(),
            sf_vars(&ws, &emu, username)
        );
        assert_no_secret(&run.stderr, &[ws.auth_token(username)]);
        let run = token(
            &ws,
            &emu,
            alias,
            &["--format", "docker", "--vars", "cumulusci"],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let vars = readers::docker_env_file(&run.stdout).unwrap();
        let name = format!("CUMULUSCI_ORG_{}", alias.to_uppercase());
        let parsed: Value = serde_json::from_str(&vars[&name]).expect("docker keeps the JSON");
        assert_eq!(parsed, descriptor(&emu, username));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gitlab_gets_the_descriptor_as_json_and_a_clear_error_for_what_it_cannot_take() {
    let (emu, ws) = granted(&["plain@example.com", QUOTES, BACKQUOTE]).await;
    for (alias, username) in [("a1", "plain@example.com"), ("a2", QUOTES)] {
        let run = token(
            &ws,
            &emu,
            alias,
            &["--format", "gitlab", "--vars", "cumulusci"],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let vars = readers::gitlab_dotenv(&run.stdout).unwrap();
        let name = format!("CUMULUSCI_ORG_{}", alias.to_uppercase());
        let parsed: Value = serde_json::from_str(&vars[&name]).expect("GitLab keeps the JSON");
        assert_eq!(parsed, descriptor(&emu, username));
    }
    // `$` would be expanded by GitLab: refused, naming the variable.
    let run = token(
        &ws,
        &emu,
        "a3",
        &["--format", "gitlab", "--vars", "cumulusci"],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("CUMULUSCI_ORG_A3"), "{}", run.stderr);
    // sf's variables, token included, can go there, with a warning that they are kept.
    let run = token(&ws, &emu, "a1", &["--format", "gitlab"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        readers::gitlab_dotenv(&run.stdout).unwrap(),
        sf_vars(&ws, &emu, "plain@example.com")
    );
    assert!(run.stderr.contains("artifacts"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn github_env_gets_the_descriptor_without_a_mask_and_reads_back() {
    let (emu, ws) = granted(&[QUOTE_DOLLAR]).await;
    let env_file = ws.dir.path().join("github_env");
    std::fs::write(&env_file, "").unwrap();
    let run = fleetauth_env(
        &ws.token_args(&emu, "a1", &["--format", "github", "--vars", "cumulusci"]),
        None,
        &[("GITHUB_ENV", env_file.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no secret, no mask: {}", run.stdout);
    let vars = readers::github_env(&std::fs::read_to_string(&env_file).unwrap()).unwrap();
    let parsed: Value = serde_json::from_str(&vars["CUMULUSCI_ORG_A1"]).unwrap();
    assert_eq!(parsed, descriptor(&emu, QUOTE_DOLLAR));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_github_env_that_does_not_exist_is_refused_before_anything_is_sent() {
    let (emu, ws) = granted(&["plain@example.com"]).await;
    let missing = ws.dir.path().join("set_env_missing");
    let requests = emu.stats.snapshot().requests;
    let run = fleetauth_env(
        &ws.token_args(&emu, "a1", &["--format", "github", "--max-age", "0s"]),
        None,
        &[("GITHUB_ENV", missing.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "not even the mask: {}", run.stdout);
    assert!(
        run.stderr.contains("does not exist") && run.stderr.contains("nothing was sent"),
        "{}",
        run.stderr
    );
    assert!(
        !missing.exists(),
        "no file was created (it would hold the token)"
    );
    assert_eq!(emu.stats.snapshot().requests, requests, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn github_env_without_a_final_newline_gets_the_variables_on_lines_of_their_own() {
    let (emu, ws) = granted(&["plain@example.com"]).await;
    let env_file = ws.dir.path().join("github_env");
    std::fs::write(&env_file, "EARLIER=v").unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = fleetauth_env(
        &ws.token_args(&emu, "a1", &["--format", "github"]),
        None,
        &[("GITHUB_ENV", env_file.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&env_file).unwrap();
    let vars =
        readers::github_env(&text).unwrap_or_else(|e| panic!("the runner fails: {e}\n{text}"));
    let mut expected = sf_vars(&ws, &emu, "plain@example.com");
    expected.insert("EARLIER".into(), "v".into());
    assert_eq!(vars, expected);
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600,
        "the runner's file keeps its mode"
    );
}

// --- sf's conventions -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn token_takes_the_org_as_sf_names_it_with_o_or_target_org() {
    let (emu, ws) = granted(&["plain@example.com"]).await;
    let stored = ws.auth_token("plain@example.com");
    for flag in ["-o", "--target-org"] {
        let mut args = ws.token_args(&emu, "a1", &[]);
        args.insert(1, flag.into());
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 0, "{flag}: {}", run.stderr);
        assert_eq!(run.stdout, format!("{stored}\n"));
    }
    // Both at once is ambiguous; neither is missing the org.
    let mut args = ws.token_args(&emu, "a1", &[]);
    args.extend(["-o".to_string(), "a1".to_string()]);
    assert_eq!(fleetauth(&args, None).await.code, 2);
    let mut args = ws.token_args(&emu, "a1", &[]);
    args.remove(1);
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("USERNAME|ALIAS"), "{}", run.stderr);
}

const CUSTOM_AUD: &str = "https://aud.example.com";

/// An emulator that accepts only `CUSTOM_AUD` as the audience.
async fn custom_audience_emulator(users: &[&str]) -> EmulatorHandle {
    let mut cfg = config(users);
    cfg.audiences = vec![CUSTOM_AUD.into()];
    start(cfg).await
}

#[tokio::test(flavor = "multi_thread")]
async fn sfdx_audience_url_is_read_as_sf_audience_url_and_sf_audience_url_wins() {
    let emu = custom_audience_emulator(&["plain@example.com"]).await;
    let ws = Workspace::with_users(&["plain@example.com".to_string()]);
    let grant = ws.grant_args(&emu, &["--force"]);
    let token = ws.token_args(&emu, "plain@example.com", &["--max-age", "0s"]);
    for args in [&grant, &token] {
        let run = fleetauth_env(args, None, &[("SFDX_AUDIENCE_URL", CUSTOM_AUD)]).await;
        assert_eq!(run.code, 0, "{:?}: {}", args[0], run.stderr);
        let run = fleetauth_env(
            args,
            None,
            &[
                ("SF_AUDIENCE_URL", "https://test.salesforce.com"),
                ("SFDX_AUDIENCE_URL", CUSTOM_AUD),
            ],
        )
        .await;
        assert_eq!(
            run.code, 1,
            "{:?}: SF_AUDIENCE_URL wins: {}",
            args[0], run.stderr
        );
        let run = fleetauth_env(
            args,
            None,
            &[
                ("SF_AUDIENCE_URL", CUSTOM_AUD),
                ("SFDX_AUDIENCE_URL", "https://test.salesforce.com"),
            ],
        )
        .await;
        assert_eq!(run.code, 0, "{:?}: {}", args[0], run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_takes_audience_as_a_flag_and_from_both_variables() {
    let emu = custom_audience_emulator(&["hub@example.com"]).await;
    let ws = Workspace::with_users(&[]);
    let home = ws.dir.path().join("home");
    let login: Vec<String> = [
        "login",
        "-o",
        "hub@example.com",
        "-i",
        CLIENT_ID,
        "-f",
        ws.key.to_str().unwrap(),
        "-r",
        &emu.url(),
        "--sf-home",
        home.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let run = fleetauth(&login, None).await;
    assert_eq!(
        run.code, 1,
        "the default audience is refused here: {}",
        run.stderr
    );
    let mut with_flag = login.clone();
    with_flag.extend(["--audience".to_string(), CUSTOM_AUD.to_string()]);
    let run = fleetauth(&with_flag, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for var in ["SF_AUDIENCE_URL", "SFDX_AUDIENCE_URL"] {
        let run = fleetauth_env(&login, None, &[(var, CUSTOM_AUD)]).await;
        assert_eq!(run.code, 0, "{var}: {}", run.stderr);
    }
    let run = fleetauth_env(
        &login,
        None,
        &[
            ("SF_AUDIENCE_URL", "https://login.salesforce.com"),
            ("SFDX_AUDIENCE_URL", CUSTOM_AUD),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "SF_AUDIENCE_URL wins: {}", run.stderr);
    let run = fleetauth(
        &[with_flag, vec!["--audience".into(), "not a url".into()]].concat(),
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// `login` takes grant's key and network flags, and validates them by the same rules: an
/// encrypted key with its passphrase variable, `--cert`, `--ca-file`, `--allow-host`.
#[tokio::test(flavor = "multi_thread")]
async fn login_has_grants_key_and_network_flags() {
    let emu = start(config(&["hub@example.com"])).await;
    let ws = Workspace::with_users(&[]);
    let home = ws.dir.path().join("home");
    let login = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["login", "-o", "hub@example.com", "-i", CLIENT_ID, "-r"]
            .map(String::from)
            .to_vec();
        args.push(emu.url());
        args.extend(["--sf-home".to_string(), home.display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let encrypted = fixture("keys/server.encrypted.key").display().to_string();
    let key = ws.key.display().to_string();
    let with_passphrase = login(&["-f", &encrypted, "--jwt-key-passphrase-env", "HUB_KEY_PASS"]);
    let run = fleetauth_env(&with_passphrase, None, &[("HUB_KEY_PASS", "correct-horse")]).await;
    assert_eq!(
        run.code, 0,
        "an encrypted key and its passphrase: {}",
        run.stderr
    );
    let run = fleetauth(&with_passphrase, None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("$HUB_KEY_PASS"), "{}", run.stderr);

    let other = fixture("keys/other.key").display().to_string();
    let cert = fixture("keys/server.crt").display().to_string();
    let run = fleetauth(&login(&["-f", &other, "--cert", &cert]), None).await;
    assert_eq!(
        run.code, 2,
        "a key that is not the certificate's: {}",
        run.stderr
    );
    assert!(run.stderr.contains("does not match"), "{}", run.stderr);

    let missing = ws.dir.path().join("no-such-ca.pem").display().to_string();
    let run = fleetauth(&login(&["-f", &key, "--ca-file", &missing]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no-such-ca.pem"), "{}", run.stderr);

    let run = fleetauth(&login(&["-f", &key, "--allow-host", "*.acme.com"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        grants(&emu).get("hub@example.com"),
        Some(&2),
        "nothing was sent for the refused settings"
    );
}

/// `sf data query` and `sf org display` with nothing but the exported variables (read by
/// bash from `--format dotenv`): no login step, no auth file in sf's home.
#[tokio::test(flavor = "multi_thread")]
async fn sf_queries_and_displays_the_org_with_only_the_exported_variables() {
    let (emu, ws) = granted(&["plain@example.com"]).await;
    let run = token(&ws, &emu, "a1", &["--format", "dotenv"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let vars = readers::source("bash", &run.stdout).vars;
    let home = tempfile::tempdir().unwrap();
    let sf_with_vars = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("--json");
        let out = sf::sf(home.path(), &all)
            .envs(&vars)
            .output()
            .expect("sf runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "sf {args:?} printed no JSON ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        v
    };
    let query = sf_with_vars(&["data", "query", "-q", "SELECT Id FROM Organization"]);
    assert_eq!(query["status"], 0, "{query}");
    assert_eq!(query["result"]["totalSize"], 1, "{query}");
    let display = sf_with_vars(&["org", "display"]);
    assert_eq!(display["status"], 0, "{display}");
    assert_eq!(display["result"]["instanceUrl"], emu.url(), "{display}");
    assert!(
        !home.path().join(".sfdx/plain@example.com.json").exists(),
        "no login step wrote an auth file"
    );
}

/// A relative key path and a relative `--sf-home` still give sf an absolute, normalized
/// `privateKey`, which it re-reads from any directory to refresh a token.
#[tokio::test(flavor = "multi_thread")]
async fn sf_auth_files_name_the_key_by_its_absolute_normalized_path() {
    let emu = start(config(&["plain@example.com"])).await;
    let ws = Workspace::with_users(&["plain@example.com".to_string()]);
    std::fs::create_dir(ws.dir.path().join("sub")).unwrap();
    let mut args = ws.grant_args(&emu, &["--sf-home", "home"]);
    set_flag(&mut args, "-f", "./sub/../server.key");
    let run = fleetauth_in(Some(ws.dir.path()), &args, None, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = ws.dir.path().join("home/.sfdx/plain@example.com.json");
    let auth: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let expected = ws.dir.path().canonicalize().unwrap().join("server.key");
    assert_eq!(auth["privateKey"], expected.display().to_string());
    assert_eq!(
        auth["name"], "Emulated Scratch Org",
        "sf's Organization.Name"
    );
}

// --- CumulusCI ------------------------------------------------------------------------------------

/// The real CumulusCI (`.ci/python/cumulusci.txt`) takes the org `--vars cumulusci` describes,
/// mints its own token by the JWT flow from `SFDX_CLIENT_ID` and `SFDX_HUB_KEY` (PEM text)
/// against the emulator over HTTPS, and answers to the lower-cased name. The emulator takes only
/// test.salesforce.com as the audience, as a scratch org does: without `"sandbox": true`,
/// CumulusCI signs for login.salesforce.com and is refused.
#[tokio::test(flavor = "multi_thread")]
async fn cumulusci_mints_its_own_token_for_the_exported_org_over_https() {
    let cci = crate::support::python::venv_bin("cumulusci").join("cci");
    let username = "test-cci@example.com";
    let (ca_pem, identity) = test_ca();
    let mut cfg = config(&[username]);
    cfg.audiences = vec!["https://test.salesforce.com".into()];
    cfg.tls = Some(identity);
    let emu = start(cfg).await;
    assert!(emu.url().starts_with("https://127.0.0.1:"), "{}", emu.url());
    let ws = Workspace::new("orgs.csv", &format!("username,alias\n{username},ci-3.x\n"));
    let ca = ws.dir.path().join("ca.pem");
    std::fs::write(&ca, &ca_pem).unwrap();
    let ca_flag = ["--ca-file", ca.to_str().unwrap()];
    let run = fleetauth(&ws.grant_args(&emu, &ca_flag), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = token(
        &ws,
        &emu,
        "ci-3.x",
        &[&ca_flag[..], &["--format", "docker", "--vars", "cumulusci"]].concat(),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("--org ci_3_x"), "{}", run.stderr);
    let vars = readers::docker_env_file(&run.stdout).unwrap();
    let grants_before = grants(&emu).get(username).copied().unwrap_or(0);

    // A home of its own, with the hourly PyPI version check marked as done: cci talks to
    // 127.0.0.1 only (anything else meets a dead proxy).
    let home = ws.dir.path().join("cci-home");
    std::fs::create_dir_all(home.join(".cumulusci")).unwrap();
    std::fs::write(home.join(".cumulusci/cumulus_timestamp"), "9999999999").unwrap();
    let out = tokio::process::Command::from(scrubbed(&cci, &home))
        .args(["org", "info", "ci_3_x", "--json"])
        .current_dir(&home)
        .envs(&vars)
        .env("SFDX_CLIENT_ID", CLIENT_ID)
        .env("SFDX_HUB_KEY", fleetauth::emulator::test_keys::PRIVATE_KEY)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .await
        .expect("cci runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(home.join(".cumulusci/logs/cci.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "cci failed: {stdout}\n{stderr}\n{log}"
    );
    let start = stdout
        .find('{')
        .unwrap_or_else(|| panic!("no JSON from cci: {stdout}"));
    let info: Value = serde_json::from_str(&stdout[start..]).expect("cci printed JSON");
    assert_eq!(info["username"], username, "{info}");
    assert_eq!(info["instance_url"], emu.url(), "{info}");
    assert_eq!(
        info["userinfo"]["organization_id"],
        fleetauth::emulator::ids_for(username).0,
        "{info}"
    );
    assert_eq!(
        info["org_type"], "Developer Edition",
        "it read the Organization: {info}"
    );
    assert_eq!(
        grants(&emu).get(username).copied().unwrap_or(0),
        grants_before + 1,
        "cci minted its own token, from the emulator"
    );
}
