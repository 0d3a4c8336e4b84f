//! Handing orgs to another CI system: report.json as a secret-free org list, `fleetauth token`
//! and its exports, and the CI-native reports (Markdown, JUnit, `$GITHUB_STEP_SUMMARY`).

use std::time::{Duration, SystemTime};

use fleetauth::emulator::{EmulatorHandle, Scripted, User};
use serde_json::Value;

use crate::orgs;
use crate::support::sf::sf_json;
use crate::support::*;

/// Every token the emulator issued so far.
fn issued_tokens(emu: &EmulatorHandle) -> Vec<String> {
    let tokens = emu.stats.snapshot().tokens;
    assert!(!tokens.is_empty(), "the emulator issued tokens");
    tokens
}

fn assert_no_token_in(emu: &EmulatorHandle, what: &str, bytes: &[u8]) {
    for token in issued_tokens(emu) {
        let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
        assert!(!found, "{what} holds an access token");
        // The part after the org id alone is the secret: it must not be there either.
        let secret = token.split_once('!').map_or(token.as_str(), |(_, s)| s);
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{what} holds the secret part of an access token"
        );
    }
}

fn total_grants(emu: &EmulatorHandle) -> u64 {
    grants(emu).values().sum()
}

/// GET an authenticated REST resource of the emulator with `token`: its status.
async fn rest_status(emu: &EmulatorHandle, token: &str) -> u16 {
    http()
        .get(format!("{}/services/data/v62.0/", emu.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("the emulator answers")
        .status()
        .as_u16()
}

fn junit_cases(xml: &str) -> Vec<(String, String, bool, bool)> {
    let doc = roxmltree::Document::parse(xml).expect("the JUnit file is well-formed XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            (
                n.attribute("name").unwrap_or_default().to_string(),
                n.attribute("classname").unwrap_or_default().to_string(),
                n.children().any(|c| c.has_tag_name("failure")),
                n.children().any(|c| c.has_tag_name("skipped")),
            )
        })
        .collect()
}

// --- the two-job hand-off ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn report_json_alone_hands_the_fleet_to_a_fresh_job_and_the_real_sf() {
    let users = usernames("hand", 3);
    let emu = start(config(&users)).await;

    // Job A: grant the fleet, with every CI report.
    let list = format!(
        "username,alias\n{},ci1\n{},ci2\n{},\n",
        users[0], users[1], users[2]
    );
    let a = Workspace::new("orgs.csv", &list);
    let (md, junit) = (
        a.dir.path().join("summary.md"),
        a.dir.path().join("junit.xml"),
    );
    let run = fleetauth(
        &a.grant_args(
            &emu,
            &[
                "--summary-md",
                md.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
            ],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report_bytes = std::fs::read(a.out.join("report.json")).unwrap();
    let report: Value = serde_json::from_slice(&report_bytes).unwrap();
    for org in orgs(&report) {
        assert_eq!(org["status"], "authorized", "{org}");
        assert_eq!(org["clientId"], CLIENT_ID);
        assert_eq!(org["audience"], "https://test.salesforce.com");
        assert_eq!(org["tokenHost"], emu.url());
        assert_eq!(org["instanceUrl"], emu.url());
        let (org_id, user_id) = fleetauth::emulator::ids_for(org["username"].as_str().unwrap());
        assert_eq!(
            (org["orgId"].as_str(), org["userId"].as_str()),
            (Some(&*org_id), Some(&*user_id))
        );
        assert!(
            org["issuedAt"]
                .as_str()
                .is_some_and(|t| t.starts_with("20")),
            "{org}"
        );
    }

    // Only report.json travels (an artifact); job B has its own key (a CI secret) and a fresh HOME.
    let b = Workspace::new("report.json", std::str::from_utf8(&report_bytes).unwrap());
    let home = b.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut check = b.grant_args(&emu, &[]);
    check[0] = "check".into();
    check.truncate(check.len() - 2); // no --out-dir
    let run = fleetauth(&check, None).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("3 rows, 3 orgs to grant, 0 repeated, 3 with their own instance URL"),
        "{}",
        run.stdout
    );
    let args = b.grant_args(&emu, &["--sf", "--sf-home", home.to_str().unwrap()]);
    let run = fleetauth_env(&args, None, &[("HOME", home.to_str().unwrap())]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let received = b.report();
    let names: Vec<&str> = orgs(&received)
        .iter()
        .map(|o| o["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, users.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(orgs(&received).iter().all(|o| o["status"] == "authorized"));
    assert_eq!(
        orgs(&received)[0]["alias"],
        "ci1",
        "the aliases travel with the report"
    );

    // Every org works in the real sf, by username and by the alias the report carried.
    for target in [users[0].as_str(), "ci2", users[2].as_str()] {
        let out = sf_json(
            &home,
            &[
                "data",
                "query",
                "-q",
                "SELECT Id FROM Organization",
                "-o",
                target,
            ],
        );
        assert_eq!(out["status"], 0, "sf data query -o {target}: {out}");
        assert_eq!(out["result"]["totalSize"], 1, "{out}");
    }

    // No secret in anything meant to be shared.
    assert_no_token_in(&emu, "job A's report.json", &report_bytes);
    assert_no_token_in(&emu, "the Markdown summary", &std::fs::read(&md).unwrap());
    assert_no_token_in(&emu, "the JUnit file", &std::fs::read(&junit).unwrap());
    assert_no_token_in(
        &emu,
        "job B's report.json",
        &std::fs::read(b.out.join("report.json")).unwrap(),
    );
}

// --- fleetauth token --------------------------------------------------------------------------

/// A workspace with one org granted (alias `ci1`), and its emulator.
async fn one_granted_org(prefix: &str) -> (EmulatorHandle, Workspace, String) {
    let users = usernames(prefix, 1);
    let emu = start(config(&users)).await;
    let ws = Workspace::new("orgs.csv", &format!("username,alias\n{},ci1\n", users[0]));
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(total_grants(&emu), 1);
    let username = users[0].clone();
    (emu, ws, username)
}

#[tokio::test(flavor = "multi_thread")]
async fn token_reuses_a_fresh_auth_file_without_a_request() {
    let (emu, ws, username) = one_granted_org("reuse").await;
    let stored = ws.auth_token(&username);
    for org in ["ci1", username.as_str()] {
        let run = fleetauth(&ws.token_args(&emu, org, &[]), None).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            run.stdout,
            format!("{stored}\n"),
            "the token and a newline, nothing else"
        );
        assert!(!run.stderr.contains(&stored), "no token on stderr");
    }
    assert_eq!(
        emu.stats.snapshot().requests,
        1,
        "no token request was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_grants_a_new_one_when_the_auth_file_is_older_than_max_age() {
    let (emu, ws, username) = one_granted_org("stale").await;
    let first = ws.auth_token(&username);

    // Two hours old: past the default --max-age of 90 minutes.
    let path = ws.out.join(format!("{username}.json"));
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(2 * 3600))
        .unwrap();
    drop(file);
    let run = fleetauth(&ws.token_args(&emu, "ci1", &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(total_grants(&emu), 2, "one new grant");
    let second = ws.auth_token(&username);
    assert_ne!(second, first);
    assert_eq!(
        run.stdout,
        format!("{second}\n"),
        "the new token, also in the rewritten auth file"
    );
    assert_eq!(issued_tokens(&emu).last(), Some(&second));

    // --max-age 0s: always a new one.
    let run = fleetauth(&ws.token_args(&emu, "ci1", &["--max-age", "0s"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(total_grants(&emu), 3);
    assert_eq!(run.stdout, format!("{}\n", ws.auth_token(&username)));
    assert!(!run.stderr.contains(&second));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_verify_mints_a_working_token_after_the_session_expired() {
    let (emu, ws, username) = one_granted_org("verify").await;
    let old = ws.auth_token(&username);
    assert_eq!(rest_status(&emu, &old).await, 200);

    // A live session passes --verify and is reused.
    let run = fleetauth(&ws.token_args(&emu, "ci1", &["--verify"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{old}\n"));
    assert_eq!(total_grants(&emu), 1);

    assert!(emu.expire_sessions() > 0);
    assert_eq!(rest_status(&emu, &old).await, 401);
    // Without --verify the young file is trusted as it is.
    let run = fleetauth(&ws.token_args(&emu, "ci1", &[]), None).await;
    assert_eq!(run.stdout, format!("{old}\n"));

    let run = fleetauth(&ws.token_args(&emu, "ci1", &["--verify"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let new = run.stdout.trim_end().to_string();
    assert_ne!(new, old, "a new token was minted");
    assert_eq!(total_grants(&emu), 2);
    assert_eq!(ws.auth_token(&username), new, "and stored");
    assert_eq!(rest_status(&emu, &new).await, 200, "the new token works");
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
    assert!(!run.stderr.contains(&new) && !run.stderr.contains(&old));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_in_a_fresh_job_finds_the_alias_and_instance_url_in_a_handed_over_report() {
    let (emu, a, username) = one_granted_org("fresh").await;
    // Job B: only report.json, in its own out dir; its fallback host answers nothing, so the
    // grant works only if the report's instance URL is tried first.
    let b = Workspace::new("unused.csv", "");
    std::fs::create_dir(&b.out).unwrap();
    std::fs::copy(a.out.join("report.json"), b.out.join("report.json")).unwrap();
    let mut args = b.token_args(&emu, "ci1", &[]);
    set_flag(&mut args, "-r", "http://127.0.0.1:9");
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(total_grants(&emu), 2, "job B granted its own token");
    let token = b.auth_token(&username);
    assert_eq!(run.stdout, format!("{token}\n"));
    assert_ne!(token, a.auth_token(&username));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_refuses_a_handed_over_report_that_points_to_a_foreign_host() {
    let (emu, a, _) = one_granted_org("foreign").await;
    let b = Workspace::new("unused.csv", "");
    std::fs::create_dir(&b.out).unwrap();
    let report = std::fs::read_to_string(a.out.join("report.json"))
        .unwrap()
        .replace(
            &format!("\"instanceUrl\": \"{}\"", emu.url()),
            "\"instanceUrl\": \"https://evil.example.com\"",
        );
    assert!(report.contains("evil.example.com"));
    std::fs::write(b.out.join("report.json"), report).unwrap();
    let run = fleetauth(&b.token_args(&emu, "ci1", &[]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("evil.example.com") && run.stderr.contains("--allow-host"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert_eq!(
        emu.stats.snapshot().requests,
        1,
        "only job A's grant: no assertion left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_with_an_unknown_alias_exits_2_with_a_clear_message_and_sends_nothing() {
    let (emu, ws, _) = one_granted_org("unknown").await;
    let run = fleetauth(&ws.token_args(&emu, "nope", &[]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("unknown alias `nope`") && run.stderr.contains("--sf"),
        "{}",
        run.stderr
    );
    assert_eq!(emu.stats.snapshot().requests, 1, "only job A's grant");

    let run = fleetauth(&ws.token_args(&emu, "nope", &["--json"]), None).await;
    assert_eq!(run.code, 2);
    let envelope: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(envelope["status"], 2);
    assert!(envelope["message"]
        .as_str()
        .unwrap()
        .contains("unknown alias"));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_of_an_org_that_cannot_be_granted_exits_1_with_the_fix() {
    let users = usernames("refused", 1);
    let mut cfg = config(&users);
    cfg.users.get_mut(&users[0]).unwrap().scripted = Some(Scripted {
        status: 400,
        error: "inactive_user".into(),
        description: "user is inactive".into(),
    });
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.token_args(&emu, &users[0], &[]), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("inactive_user") && run.stderr.contains("fix:"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_resolves_an_alias_through_sf_alias_json_with_sf() {
    let users = usernames("sfalias", 1);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let home = ws.dir.path().join("home");
    std::fs::create_dir_all(home.join(".sfdx")).unwrap();
    std::fs::write(
        home.join(".sfdx/alias.json"),
        format!(r#"{{"orgs":{{"qa7":"{}"}}}}"#, users[0]),
    )
    .unwrap();
    let run = fleetauth(&ws.token_args(&emu, "qa7", &[]), None).await;
    assert_eq!(run.code, 2, "not without --sf: {}", run.stderr);
    let run = fleetauth(
        &ws.token_args(&emu, "qa7", &["--sf-home", home.to_str().unwrap()]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{}\n", ws.auth_token(&users[0])));
    assert!(
        home.join(format!(".sfdx/{}.json", users[0])).is_file(),
        "sf's state got the grant"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_json_is_sfs_envelope() {
    let (emu, ws, username) = one_granted_org("json").await;
    let run = fleetauth(&ws.token_args(&emu, "ci1", &["--json"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let envelope: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(envelope["status"], 0);
    assert_eq!(envelope["warnings"], serde_json::json!([]));
    let result = &envelope["result"];
    assert_eq!(result["accessToken"], ws.auth_token(&username));
    assert_eq!(result["username"], username);
    assert_eq!(result["instanceUrl"], emu.url());
    assert_eq!(result["reused"], true);
}

// --- exports ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn github_format_masks_the_token_first_and_exports_it_through_github_env() {
    let (emu, ws, username) = one_granted_org("github").await;
    let env_file = ws.dir.path().join("github_env");
    std::fs::write(&env_file, "EARLIER=kept\n").unwrap();
    let run = fleetauth_env(
        &ws.token_args(&emu, "ci1", &["--format", "github", "--max-age", "0s"]),
        None,
        &[("GITHUB_ENV", env_file.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = ws.auth_token(&username);
    assert_eq!(
        run.stdout.lines().next(),
        Some(format!("::add-mask::{token}").as_str()),
        "the mask is the first line on stdout"
    );
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "and the only one: {}",
        run.stdout
    );
    assert!(!run.stderr.contains(&token));
    let vars = readers::github_env(&std::fs::read_to_string(&env_file).unwrap()).unwrap();
    assert_eq!(vars["EARLIER"], "kept");
    assert_eq!(vars["SF_ACCESS_TOKEN"], token);
    assert_eq!(vars["SF_ORG_INSTANCE_URL"], emu.url());
    assert_eq!(vars["SF_USERNAME"], username);

    // Outside GitHub Actions: a clear error before anything is sent or printed.
    let requests = emu.stats.snapshot().requests;
    let run = fleetauth(
        &ws.token_args(&emu, "ci1", &["--format", "github", "--max-age", "0s"]),
        None,
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("GITHUB_ENV"), "{}", run.stderr);
    assert_eq!(emu.stats.snapshot().requests, requests);
}

#[tokio::test(flavor = "multi_thread")]
async fn dotenv_and_cumulusci_formats_parse_back() {
    let (emu, ws, username) = one_granted_org("dotenv").await;
    let token = ws.auth_token(&username);
    let run = fleetauth(&ws.token_args(&emu, "ci1", &["--format", "dotenv"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let vars = readers::source("bash", &run.stdout).vars;
    assert_eq!(vars.len(), 4, "{}", run.stdout);
    assert_eq!(vars["SF_ACCESS_TOKEN"], token);
    assert_eq!(vars["SF_ORG_INSTANCE_URL"], emu.url());
    assert_eq!(vars["SF_USERNAME"], username);

    let run = fleetauth(
        &ws.token_args(&emu, "ci1", &["--format", "cumulusci"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains(&token),
        "no token: CumulusCI mints its own"
    );
    let vars = readers::source("bash", &run.stdout).vars;
    let descriptor: Value =
        serde_json::from_str(&vars["CUMULUSCI_ORG_CI1"]).expect("the descriptor is JSON");
    assert_eq!(
        descriptor,
        serde_json::json!({"username": username, "instance_url": emu.url(), "sandbox": true})
    );
}

// --- CI-native reports ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn junit_markdown_and_the_step_summary_describe_every_failed_org() {
    let users = usernames("ci", 5);
    let mut cfg = config(&users);
    for (i, error) in [(1, "inactive_user"), (3, "invalid_app_access")] {
        cfg.users.get_mut(&users[i]).unwrap().scripted = Some(Scripted {
            status: 400,
            error: error.into(),
            description: format!("{error} <for> \"this\" & that"),
        });
    }
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let (md, junit, step) = (
        ws.dir.path().join("summary.md"),
        ws.dir.path().join("junit.xml"),
        ws.dir.path().join("step_summary.md"),
    );
    std::fs::write(&step, "# an earlier step\n").unwrap();
    let run = fleetauth_env(
        &ws.grant_args(
            &emu,
            &[
                "--summary-md",
                md.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
            ],
        ),
        None,
        &[("GITHUB_STEP_SUMMARY", step.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = ws.report();
    let failed: Vec<&Value> = orgs(&report)
        .iter()
        .filter(|o| o["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 2);

    // JUnit: one testcase per org, failures exactly the failed orgs.
    let cases = junit_cases(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(cases.len(), users.len());
    let mut failing: Vec<&str> = cases.iter().filter(|c| c.2).map(|c| c.0.as_str()).collect();
    failing.sort_unstable();
    let mut expected: Vec<&str> = failed
        .iter()
        .map(|o| o["username"].as_str().unwrap())
        .collect();
    expected.sort_unstable();
    assert_eq!(failing, expected);
    assert!(
        cases.iter().all(|c| c.1 == ws.list.display().to_string()),
        "classname = the list without an alias"
    );

    // Markdown: every failed org with its error and its fix.
    let summary = std::fs::read_to_string(&md).unwrap();
    let plain = summary.replace('\\', "");
    for org in &failed {
        let line = plain
            .lines()
            .find(|l| l.contains(org["username"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("{} is not in the summary:\n{summary}", org["username"]));
        assert!(
            line.contains(org["error"]["code"].as_str().unwrap()),
            "{line}"
        );
        assert!(
            line.contains(org["error"]["hint"].as_str().unwrap()),
            "{line}"
        );
    }

    // $GITHUB_STEP_SUMMARY gets the same Markdown, appended.
    assert_eq!(
        std::fs::read_to_string(&step).unwrap(),
        format!("# an earlier step\n{summary}")
    );
    // ...unless --no-step-summary.
    std::fs::write(&step, "").unwrap();
    let run = fleetauth_env(
        &ws.grant_args(&emu, &["--no-step-summary"]),
        None,
        &[("GITHUB_STEP_SUMMARY", step.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&step).unwrap(), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn replication_waits_are_recorded_and_drawn() {
    let users = usernames("wait", 3);
    let mut cfg = config(&users);
    for u in &users[..2] {
        cfg.users.insert(
            u.clone(),
            User {
                replication_delay: Duration::from_millis(1500),
                ..User::default()
            },
        );
    }
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let md = ws.dir.path().join("summary.md");
    let run = fleetauth(
        &ws.grant_args(&emu, &["--summary-md", md.to_str().unwrap()]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = ws.report();
    let wait = |u: &str| {
        orgs(&report).iter().find(|o| o["username"] == u).unwrap()["replicationWaitMs"]
            .as_u64()
            .unwrap()
    };
    assert!(wait(&users[0]) > 0 && wait(&users[1]) > 0);
    assert_eq!(wait(&users[2]), 0);
    // The terminal summary's histogram and the Markdown's table and slowest list.
    assert!(run.stderr.contains("replication waits"), "{}", run.stderr);
    let histogram_line = run
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("none"))
        .expect("a row for the orgs that did not wait");
    assert!(
        histogram_line.contains(" 1 ") && histogram_line.ends_with('#'),
        "{histogram_line}"
    );
    let summary = std::fs::read_to_string(&md).unwrap();
    assert!(summary.contains("### Replication waits"), "{summary}");
    let slowest = &summary[summary.find("#### Slowest").expect("the slowest waits")..];
    for u in &users[..2] {
        assert!(slowest.contains(u.as_str()), "{summary}");
    }
    assert!(!slowest.contains(users[2].as_str()), "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_run_keeps_the_hand_off_facts_of_the_fresh_orgs_it_skips() {
    let users = usernames("resume", 2);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = ws.report();

    // The second run skips both (fresh), and its report is still a complete hand-off.
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(total_grants(&emu), 2, "nothing granted again");
    let second = ws.report();
    for (before, after) in orgs(&first).iter().zip(orgs(&second)) {
        assert_eq!(after["status"], "skipped");
        for key in [
            "username",
            "orgId",
            "userId",
            "instanceUrl",
            "tokenHost",
            "audience",
            "clientId",
        ] {
            assert_eq!(after[key], before[key], "{key}");
        }
        assert!(after["issuedAt"].is_string(), "{after}");
    }
    assert_no_token_in(
        &emu,
        "the resumed run's report",
        &std::fs::read(ws.out.join("report.json")).unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_ci_report_is_found_before_anything_is_sent() {
    let users = usernames("unwritable", 1);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let nowhere = ws.dir.path().join("no/such/dir");
    let (md, junit, step) = (
        nowhere.join("s.md"),
        nowhere.join("j.xml"),
        nowhere.join("step.md"),
    );
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a std::path::Path);
    let cases: [Case; 3] = [
        (vec!["--summary-md", md.to_str().unwrap()], vec![], &md),
        (vec!["--junit", junit.to_str().unwrap()], vec![], &junit),
        (
            vec![],
            vec![("GITHUB_STEP_SUMMARY", step.to_str().unwrap())],
            &step,
        ),
    ];
    for (flags, env, path) in cases {
        let run = fleetauth_env(&ws.grant_args(&emu, &flags), None, &env).await;
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains("cannot write") && run.stderr.contains(&path.display().to_string()),
            "{}",
            run.stderr
        );
    }
    assert_eq!(emu.stats.snapshot().requests, 0, "nothing sent");
    // --no-step-summary skips an unusable $GITHUB_STEP_SUMMARY.
    let run = fleetauth_env(
        &ws.grant_args(&emu, &["--no-step-summary"]),
        None,
        &[("GITHUB_STEP_SUMMARY", step.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ws.report()["summary"]["authorized"], 1);
}

/// Parallel CI steps ask for tokens from one out dir at once: each waits its turn for the
/// directory's lock instead of failing.
#[tokio::test(flavor = "multi_thread")]
async fn parallel_token_calls_on_one_out_dir_all_succeed() {
    let users = usernames("partok", 6);
    let mut cfg = config(&users);
    cfg.latency = std::time::Duration::from_millis(200);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    std::fs::create_dir_all(&ws.out).unwrap();
    let runs = futures::future::join_all(
        users
            .iter()
            .map(|u| ws.token_args(&emu, u, &[]))
            .collect::<Vec<_>>()
            .iter()
            .map(|args| fleetauth(args, None)),
    )
    .await;
    for (user, run) in users.iter().zip(&runs) {
        assert_eq!(run.code, 0, "{user}: {}", run.stderr);
        assert_eq!(run.stdout.trim(), ws.auth_token(user), "{user}");
    }
    assert_eq!(grants(&emu).values().sum::<u64>(), 6);
}

// --- token against hostile hand-offs (an adversarial pass) ---------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn token_treats_usernames_case_insensitively_so_one_org_keeps_one_file() {
    let (emu, ws, username) = one_granted_org("casefold").await;
    let run = fleetauth(&ws.token_args(&emu, &username.to_uppercase(), &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), ws.auth_token(&username));
    assert_eq!(total_grants(&emu), 1, "the existing file was reused");
    assert_eq!(ws.auth_files().len(), 1, "no second file for the same org");
    let run = fleetauth(&ws.token_args(&emu, "ci1", &[]), None).await;
    assert_eq!(run.code, 0, "the alias still names one org: {}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_checks_a_planted_auth_file_before_reusing_it() {
    let (emu, ws, username) = one_granted_org("planted").await;
    let path = ws.out.join(format!("{username}.json"));
    let planted = serde_json::json!({
        "username": username,
        "orgId": "00D000000000001AAA",
        "userId": "005000000000001AAA",
        "accessToken": "AAA\u{1b}[2J\n::add-mask::x\nBBB",
        "instanceUrl": "http://127.0.0.1:1/\u{1b}[31m'$(id)'",
        "alias": "ci1",
    });
    std::fs::write(&path, planted.to_string()).unwrap();
    let run = fleetauth(&ws.token_args(&emu, &username, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "one line: {:?}", run.stdout);
    assert!(!run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'));
    assert!(
        run.stderr.contains("not an auth file fleetauth wrote"),
        "{}",
        run.stderr
    );
    assert_eq!(total_grants(&emu), 2, "granted anew instead");
    assert_eq!(run.stdout.trim(), ws.auth_token(&username));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_reads_a_handed_over_report_like_any_list() {
    let emu = start(config(&[
        "test-rep-e@example.com",
        "test-rep-f@example.com",
    ]))
    .await;
    let ws = Workspace::new("unused.csv", "");
    std::fs::create_dir_all(&ws.out).unwrap();
    let write = |orgs: serde_json::Value| {
        std::fs::write(
            ws.out.join("report.json"),
            serde_json::json!({ "orgs": orgs }).to_string(),
        )
        .unwrap()
    };
    // One alias for two orgs: refused, not resolved to the first.
    write(serde_json::json!([
        {"username": "test-rep-e@example.com", "alias": "ci9"},
        {"username": "test-rep-f@example.com", "alias": "ci9"},
    ]));
    let run = fleetauth(&ws.token_args(&emu, "ci9", &[]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    // An alias with escapes and a line break: refused, and printed escaped.
    write(serde_json::json!([
        {"username": "test-rep-e@example.com", "alias": "evil\u{1b}[31m\nx"},
    ]));
    let run = fleetauth(&ws.token_args(&emu, "test-rep-e@example.com", &[]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        !run.stderr.contains('\u{1b}'),
        "raw escape on stderr: {:?}",
        run.stderr
    );
    // An instance URL with escapes: refused, printed escaped.
    write(serde_json::json!([
        {"username": "test-rep-e@example.com", "instanceUrl": "https://evil.example.com/\u{1b}]0;PWNED\u{7}"},
    ]));
    let run = fleetauth(&ws.token_args(&emu, "test-rep-e@example.com", &[]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{7}'),
        "{:?}",
        run.stderr
    );
    assert_eq!(emu.stats.snapshot().requests, 0, "nothing sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_fails_when_stdout_or_github_env_cannot_take_the_token() {
    let (emu, ws, _) = one_granted_org("stdoutgone").await;
    let mut child = ws
        .command(&ws.token_args(&emu, "ci1", &[]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().await.unwrap();
    assert_ne!(
        status.code(),
        Some(0),
        "a token nobody received is no success"
    );
    assert_ne!(status.code(), Some(101), "and no panic");

    let nowhere = ws.dir.path().join("no/such/dir/env");
    let run = fleetauth_env(
        &ws.token_args(&emu, "ci1", &["--format", "github", "--max-age", "0s"]),
        None,
        &[("GITHUB_ENV", nowhere.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("GITHUB_ENV") && run.stderr.contains("nothing was sent"));
    assert_eq!(total_grants(&emu), 1, "found before the grant");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alias_that_is_another_orgs_username_is_an_input_error() {
    let emu = start(config(&["ali-a@example.com", "ali-b@example.com"])).await;
    let ws = Workspace::new(
        "orgs.csv",
        "username,alias\nali-a@example.com,ali-b@example.com\nali-b@example.com,bb\n",
    );
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("must not name another org"),
        "{}",
        run.stderr
    );
    assert_eq!(emu.stats.snapshot().requests, 0);
}
