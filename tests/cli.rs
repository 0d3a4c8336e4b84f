//! End-to-end tests: the real `fleetauth` binary against the emulator.

mod support;

#[path = "cli/sf_cli.rs"]
mod sf_cli;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use fleetauth::emulator::{Fault, Scripted, User};
use serde_json::Value;
use support::*;

fn orgs(report: &Value) -> &Vec<Value> {
    report["orgs"].as_array().expect("orgs is an array")
}

fn statuses(report: &Value) -> Vec<&str> {
    orgs(report)
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect()
}

// --- the happy path --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_writes_one_private_auth_file_per_org_and_a_matching_report() {
    let users = usernames("happy", 12);
    let emu = start(config(
        &users.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    // The out dir is private; each auth file is 0600 and carries what a user needs.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ws.out), 0o700);
    let files = ws.auth_files();
    assert_eq!(files.len(), users.len());
    let tokens: HashSet<String> = emu.stats.snapshot().tokens.into_iter().collect();
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
        let auth: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let username = auth["username"].as_str().unwrap();
        assert_eq!(
            file.file_name().unwrap().to_str().unwrap(),
            format!("{username}.json")
        );
        assert!(
            tokens.contains(auth["accessToken"].as_str().unwrap()),
            "token not issued by the emulator"
        );
        assert_eq!(
            auth["orgId"].as_str().unwrap(),
            fleetauth::emulator::ids_for(username).0
        );
        assert_eq!(
            auth["userId"].as_str().unwrap(),
            fleetauth::emulator::ids_for(username).1
        );
        assert_eq!(auth["instanceUrl"], emu.url().as_str());
        assert_eq!(auth["loginUrl"], emu.url().as_str());
        assert_eq!(auth["audience"], "https://test.salesforce.com");
        assert_eq!(auth["clientId"], CLIENT_ID);
        assert!(time::OffsetDateTime::parse(
            auth["issuedAt"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok());
    }

    // The report agrees with the files and the emulator: one grant per org, nothing else.
    let report = ws.report();
    let summary = &report["summary"];
    assert_eq!(summary["total"], 12);
    assert_eq!(summary["authorized"], 12);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["attempts"], 12);
    for org in orgs(&report) {
        let path = std::path::PathBuf::from(org["authFile"].as_str().unwrap());
        assert!(files.contains(&path));
        assert_eq!(org["attempts"], 1);
        assert!(org["error"].is_null());
    }
    let grants = grants(&emu);
    assert!(
        users.iter().all(|u| grants.get(u) == Some(&1)),
        "{grants:?}"
    );
    assert!(!ws.out.join("failed.csv").exists());
    assert!(
        run.stderr.contains("12 authorized, 0 failed"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replication_delay_is_waited_out_not_reported() {
    let users = usernames("late", 3);
    let mut cfg = config(&[]);
    for u in &users {
        cfg.users.insert(
            u.clone(),
            User {
                replication_delay: Duration::from_secs(3),
                ..User::default()
            },
        );
    }
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args(&emu, &["--replication-timeout", "60s"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = ws.report();
    assert_eq!(report["summary"]["authorized"], 3);
    for org in orgs(&report) {
        assert!(org["attempts"].as_u64().unwrap() > 1, "{org}");
    }
    let stats = emu.stats.snapshot();
    assert!(stats.answers["invalid_grant: user hasn't approved this consumer"] >= 3);
    assert!(users.iter().all(|u| stats.grants.get(u) == Some(&1)));
}

#[tokio::test(flavor = "multi_thread")]
async fn replication_delay_beyond_the_budget_fails_with_a_hint() {
    let users = usernames("never", 2);
    let mut cfg = config(&[]);
    for u in &users {
        cfg.users.insert(
            u.clone(),
            User {
                replication_delay: Duration::from_secs(3600),
                ..User::default()
            },
        );
    }
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args(&emu, &["--replication-timeout", "3s"]), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = ws.report();
    for org in orgs(&report) {
        assert_eq!(org["status"], "failed");
        assert_eq!(org["error"]["kind"], "permanent");
        assert!(
            org["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("--replication-timeout"),
            "{org}"
        );
        assert!(org["attempts"].as_u64().unwrap() >= 2);
    }
    // failed.csv is the next run's input and lists exactly the failed orgs.
    let failed = std::fs::read_to_string(ws.out.join("failed.csv")).unwrap();
    assert_eq!(
        failed.lines().skip(1).collect::<HashSet<_>>(),
        users.iter().map(String::as_str).collect()
    );
}

// --- each error class --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_error_costs_exactly_one_request_and_explains_the_fix() {
    let users = usernames("perm", 5);
    let emu = start(config(
        &users.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let ws = Workspace::with_users(&users);
    let mut args = ws.grant_args(&emu, &[]);
    let client = args.iter().position(|a| a == CLIENT_ID).unwrap();
    args[client] = "3MVGwrongKEY".into();
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1);
    let stats = emu.stats.snapshot();
    assert_eq!(stats.requests, 5, "one request per org");
    let report = ws.report();
    for org in orgs(&report) {
        assert_eq!(org["attempts"], 1);
        assert_eq!(org["error"]["code"], "invalid_client_id");
        assert_eq!(org["error"]["description"], "client identifier invalid");
        assert!(org["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("consumer key is wrong"));
    }
    assert!(
        run.stderr.contains("fix: the consumer key is wrong"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scripted_permanent_errors_are_reported_per_org_while_the_rest_succeed() {
    let users = usernames("mixed", 4);
    let mut cfg = config(&users.iter().map(String::as_str).collect::<Vec<_>>());
    cfg.users.get_mut(&users[1]).unwrap().scripted = Some(Scripted {
        status: 400,
        error: "inactive_user".into(),
        description: "user is inactive".into(),
    });
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 1);
    let report = ws.report();
    assert_eq!(
        statuses(&report),
        ["authorized", "failed", "authorized", "authorized"]
    );
    assert_eq!(orgs(&report)[1]["error"]["code"], "inactive_user");
    assert_eq!(emu.stats.snapshot().attempts[&users[1]], 1);
    assert_eq!(ws.auth_files().len(), 3);
}

/// Every request gets `fault`: each org is tried exactly `expected_attempts` times, then fails.
async fn always_failing(fault: Fault, extra: &[&str], expected_attempts: u64, code: &str) {
    let users = usernames(fault.name(), 2);
    let mut cfg = config(&users.iter().map(String::as_str).collect::<Vec<_>>());
    cfg.faults = vec![(fault, 1.0)];
    cfg.slow_delay = Duration::from_secs(3);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args(&emu, extra), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = ws.report();
    for org in orgs(&report) {
        assert_eq!(org["status"], "failed");
        assert_eq!(
            org["attempts"].as_u64().unwrap(),
            expected_attempts,
            "{fault:?}: {org}"
        );
        assert_eq!(org["error"]["kind"], "transient");
        assert_eq!(org["error"]["code"], code);
        assert!(org["error"]["hint"].as_str().is_some());
    }
    assert_eq!(
        emu.stats.snapshot().faults[fault.name()],
        2 * expected_attempts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_max_retries_times() {
    always_failing(
        Fault::ServerError,
        &["--max-retries", "2"],
        3,
        "unknown_error",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_pages_are_retried_max_retries_times() {
    always_failing(
        Fault::Maintenance,
        &["--max-retries", "1"],
        2,
        "ERROR_HTTP_503",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_420_is_retried_at_most_three_times() {
    always_failing(
        Fault::NotReady,
        &["--max-retries", "9"],
        4,
        "ERROR_HTTP_420",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_resets_are_retried() {
    always_failing(Fault::Reset, &["--max-retries", "2"], 3, "connection_reset").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_bodies_are_retried() {
    always_failing(
        Fault::Truncated,
        &["--max-retries", "1"],
        2,
        "ERROR_HTTP_200",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_the_timeout_are_retried() {
    always_failing(
        Fault::Slow,
        &["--max-retries", "1", "--request-timeout", "300ms"],
        2,
        "timeout",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_through_every_fault_kind_is_authorized_and_granted_once() {
    let users = usernames("faulty", 40);
    let mut cfg = config(&users.iter().map(String::as_str).collect::<Vec<_>>());
    cfg.faults = Fault::ALL.iter().map(|&f| (f, 0.05)).collect();
    cfg.slow_delay = Duration::from_secs(2);
    cfg.login_rate = Some(60);
    for u in users.iter().take(10) {
        cfg.users.get_mut(u).unwrap().replication_delay = Duration::from_secs(2);
    }
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let args = ws.grant_args(
        &emu,
        &[
            "--max-retries",
            "12",
            "--request-timeout",
            "500ms",
            "--rate",
            "200",
            "--concurrency",
            "16",
        ],
    );
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = emu.stats.snapshot();
    assert!(
        users.iter().all(|u| stats.grants.get(u) == Some(&1)),
        "{:?}",
        stats.grants
    );
    assert!(stats.faults.values().sum::<u64>() > 0);
    assert_eq!(
        ws.report()["summary"]["attempts"].as_u64().unwrap(),
        stats.requests
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_rate_exceeded_slows_the_run_down_and_every_org_gets_through() {
    let users = usernames("ratelimited", 16);
    let mut cfg = config(&users.iter().map(String::as_str).collect::<Vec<_>>());
    cfg.login_rate = Some(4);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &["--rate", "40", "--concurrency", "8", "--max-retries", "8"],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = emu.stats.snapshot();
    assert!(
        stats
            .answers
            .get("login rate exceeded")
            .copied()
            .unwrap_or(0)
            > 0,
        "{:?}",
        stats.answers
    );
    assert!(users.iter().all(|u| stats.grants.get(u) == Some(&1)));
}

// --- limits ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn concurrency_limit_is_honoured() {
    let users = usernames("conc", 24);
    let mut cfg = config(&users.iter().map(String::as_str).collect::<Vec<_>>());
    cfg.latency = Duration::from_millis(150);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args(&emu, &["--concurrency", "3", "--rate", "1000"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let peak = emu.stats.snapshot().peak_in_flight;
    assert!((1..=3).contains(&peak), "peak in flight {peak}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_is_honoured() {
    let users = usernames("rate", 24);
    let emu = start(config(
        &users.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args(&emu, &["--concurrency", "2", "--rate", "6"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Any one-second window sees at most the rate plus the burst (= concurrency).
    let peak = emu.stats.snapshot().peak_requests_per_second;
    assert!(peak <= 6 + 2, "peak requests in a second {peak}");
}

// --- input -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_usernames_are_granted_once_and_reported() {
    let emu = start(config(&["test-dup1@example.com", "test-dup2@example.com"])).await;
    let ws = Workspace::new(
        "orgs.csv",
        "test-dup1@example.com\nTEST-DUP1@example.com\ntest-dup2@example.com\n",
    );
    let run = fleetauth(&ws.grant_args(&emu, &["--json"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(emu.stats.snapshot().requests, 2);
    let envelope: Value =
        serde_json::from_str(&run.stdout).expect("stdout is only the JSON envelope");
    assert_eq!(envelope["status"], 0);
    assert_eq!(envelope["result"]["summary"]["skipped"], 1);
    let skipped = orgs(&envelope["result"])
        .iter()
        .find(|o| o["status"] == "skipped")
        .unwrap();
    assert!(
        skipped["note"].as_str().unwrap().contains("line 1"),
        "{skipped}"
    );
    assert!(envelope["warnings"][0]
        .as_str()
        .unwrap()
        .contains("repeats"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_input_shape_in_fixtures_is_read_and_granted() {
    let cases = [
        ("plain.csv", 3),
        ("header.csv", 3),
        ("signup.csv", 2),
        ("strings.json", 2),
        ("objects.json", 3),
        ("sf-data-query.json", 2),
        ("sf-org-list.json", 2),
        ("sf-org-create-scratch.json", 1),
    ];
    let mut cfg = config(&[]);
    cfg.any_user = Some(Duration::ZERO);
    let emu = start(cfg).await;
    for (file, n) in cases {
        let ws = Workspace::new("unused.csv", "");
        let mut args = ws.grant_args(&emu, &[]);
        args[1] = fixture(&format!("lists/{file}")).display().to_string();
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 0, "{file}: {}", run.stderr);
        assert_eq!(ws.report()["summary"]["authorized"], n, "{file}");
        assert_eq!(ws.auth_files().len(), n, "{file}");
    }
    let aliased = Workspace::new("unused.csv", "");
    let mut args = aliased.grant_args(&emu, &[]);
    args[1] = fixture("lists/header.csv").display().to_string();
    fleetauth(&args, None).await;
    let auth: Value = serde_json::from_str(
        &std::fs::read_to_string(aliased.out.join("test-hdr1@example.com.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(auth["alias"], "hdr1");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_can_come_from_stdin() {
    let emu = start(config(&["test-stdin1@example.com"])).await;
    let ws = Workspace::new("unused.csv", "");
    let mut args = ws.grant_args(&emu, &[]);
    args[1] = "-".into();
    let run = fleetauth(
        &args,
        Some(r#"{"status":0,"result":{"username":"test-stdin1@example.com"}}"#),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ws.auth_files().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rows_own_instance_url_is_tried_first_then_the_fallback() {
    // The org's own host rejects the audience; the run's host grants.
    let mut own = config(&["test-row1@example.com"]);
    own.audiences = vec![];
    let own = start(own).await;
    let fallback = start(config(&["test-row1@example.com"])).await;
    let ws = Workspace::new(
        "orgs.csv",
        &format!(
            "username,instanceUrl\ntest-row1@example.com,{}\n",
            own.url()
        ),
    );
    let run = fleetauth(&ws.grant_args(&fallback, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(own.stats.snapshot().requests, 1);
    assert_eq!(fallback.stats.snapshot().grants["test-row1@example.com"], 1);
    assert_eq!(ws.report()["orgs"][0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn report_can_be_written_as_csv_elsewhere() {
    let emu = start(config(&["test-csvrep1@example.com"])).await;
    let ws = Workspace::with_users(&["test-csvrep1@example.com".to_string()]);
    let path = ws.dir.path().join("report.csv");
    let run = fleetauth(
        &ws.grant_args(&emu, &["--report", path.to_str().unwrap()]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let csv = std::fs::read_to_string(&path).unwrap();
    assert!(csv.starts_with("username,alias,status,attempts"), "{csv}");
    assert!(
        csv.contains("test-csvrep1@example.com,,authorized,1"),
        "{csv}"
    );
}

// --- bad input: exit 2, nothing sent ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_with_a_clear_message_and_sends_nothing() {
    let emu = start(config(&["test-ok@example.com"])).await;
    type Tweak = Box<dyn Fn(&Workspace, &mut Vec<String>)>;
    let set = |flag: &'static str, value: String| -> Tweak {
        Box::new(move |_, args: &mut Vec<String>| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1] = value.clone();
        })
    };
    let cases: Vec<(&str, &str, Tweak, &str)> = vec![
        (
            "bad username",
            "test-ok@example.com\n../../etc/passwd\n",
            Box::new(|_, _| {}),
            "line 2",
        ),
        (
            "empty list",
            "# nobody\n",
            Box::new(|_, _| {}),
            "lists no orgs",
        ),
        (
            "no username column",
            "alias,team\na,b\n",
            Box::new(|_, _| {}),
            "no username column",
        ),
        (
            "certificate as key",
            "test-ok@example.com\n",
            set("-f", fixture("keys/server.crt").display().to_string()),
            "a certificate",
        ),
        (
            "public key",
            "test-ok@example.com\n",
            set("-f", fixture("keys/server.pub").display().to_string()),
            "a public key",
        ),
        (
            "weak key",
            "test-ok@example.com\n",
            set("-f", fixture("keys/weak1024.key").display().to_string()),
            "under 2048 bits",
        ),
        (
            "garbage key",
            "test-ok@example.com\n",
            set("-f", fixture("keys/garbage.key").display().to_string()),
            "garbage.key",
        ),
        (
            "missing key",
            "test-ok@example.com\n",
            set("-f", "/nonexistent/server.key".into()),
            "cannot read the key file",
        ),
        (
            "plain http",
            "test-ok@example.com\n",
            set("-r", "http://test.salesforce.com".into()),
            "https://",
        ),
        (
            "bad row url",
            "username,instanceUrl\ntest-ok@example.com,http://example.com\n",
            Box::new(|_, _| {}),
            "line 2",
        ),
        (
            "no client id",
            "test-ok@example.com\n",
            Box::new(|_, args: &mut Vec<String>| {
                let i = args.iter().position(|a| a == "-i").unwrap();
                args.drain(i..i + 2);
            }),
            "SFDX_CLIENT_ID",
        ),
        (
            "world-writable out dir",
            "test-ok@example.com\n",
            Box::new(|ws: &Workspace, _: &mut Vec<String>| {
                std::fs::create_dir(&ws.out).unwrap();
                std::fs::set_permissions(&ws.out, std::fs::Permissions::from_mode(0o777)).unwrap();
            }),
            "writable by every user",
        ),
    ];
    for (name, list, tweak, expected) in cases {
        let ws = Workspace::new("orgs.csv", list);
        let mut args = ws.grant_args(&emu, &[]);
        tweak(&ws, &mut args);
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{name}: stdout {}", run.stdout);
    }
    assert_eq!(
        emu.stats.snapshot().requests,
        0,
        "bad input must send nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_mode_reports_usage_errors_on_stdout_as_json() {
    let emu = start(config(&[])).await;
    let ws = Workspace::new("orgs.csv", "nope\n");
    let run = fleetauth(&ws.grant_args(&emu, &["--json"]), None).await;
    assert_eq!(run.code, 2);
    let envelope: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(envelope["status"], 2);
    assert_eq!(envelope["name"], "InputError");
}

// --- secrets -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn no_token_or_key_bytes_reach_stdout_stderr_or_the_reports() {
    let users = usernames("secret", 6);
    let mut cfg = config(&users.iter().map(String::as_str).collect::<Vec<_>>());
    cfg.users.get_mut(&users[0]).unwrap().scripted = Some(Scripted {
        status: 400,
        error: "invalid_grant".into(),
        description: "invalid assertion".into(),
    });
    // Every failure kind: a permanent error, a replication budget spent, and every fault.
    cfg.users.get_mut(&users[1]).unwrap().replication_delay = Duration::from_secs(3600);
    cfg.faults = Fault::ALL.iter().map(|&f| (f, 0.08)).collect();
    cfg.slow_delay = Duration::from_secs(1);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let report_csv = ws.dir.path().join("r.csv");
    let mut seen = String::new();
    let timeouts = [
        "--replication-timeout",
        "2s",
        "--request-timeout",
        "300ms",
        "--max-retries",
        "8",
        "--force",
    ];
    for extra in [
        vec!["--json"],
        vec!["--report", report_csv.to_str().unwrap()],
    ] {
        let extra: Vec<&str> = extra.into_iter().chain(timeouts).collect();
        let run = fleetauth(&ws.grant_args(&emu, &extra), None).await;
        seen.push_str(&run.stdout);
        seen.push_str(&run.stderr);
    }
    for file in ["report.json", "failed.csv"] {
        seen.push_str(&std::fs::read_to_string(ws.out.join(file)).unwrap_or_default());
    }
    seen.push_str(&std::fs::read_to_string(&report_csv).unwrap());
    let tokens = emu.stats.snapshot().tokens;
    assert!(!tokens.is_empty());
    for token in &tokens {
        assert!(!seen.contains(token.as_str()), "an access token leaked");
        let secret_part = token.split('!').nth(1).unwrap();
        assert!(
            !seen.contains(secret_part),
            "part of an access token leaked"
        );
    }
    let key = fleetauth::emulator::test_keys::PRIVATE_KEY;
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!seen.contains(line), "a line of the private key leaked");
    }
    assert!(!seen.contains("eyJ"), "an assertion (JWT) leaked");
}

// --- interruption ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sigint_writes_the_report_with_pending_orgs_and_exits_130() {
    let users = usernames("intr", 30);
    let mut cfg = config(&users.iter().map(String::as_str).collect::<Vec<_>>());
    cfg.latency = Duration::from_millis(100);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetauth"))
        .args(ws.grant_args(&emu, &["--rate", "5", "--concurrency", "2"]))
        .env_remove("SFDX_CLIENT_ID")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = ws.report();
    let pending = report["summary"]["pending"].as_u64().unwrap();
    let authorized = report["summary"]["authorized"].as_u64().unwrap();
    assert!(pending > 0 && authorized > 0, "{}", report["summary"]);
    assert_eq!(authorized + pending, 30);
    assert_eq!(ws.auth_files().len() as u64, authorized);
    // No temp file is left behind.
    let leftovers = std::fs::read_dir(&ws.out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0);

    // The same command again grants exactly the pending orgs: nobody is granted twice.
    let run = fleetauth(
        &ws.grant_args(&emu, &["--rate", "50", "--concurrency", "8"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let again = ws.report();
    assert_eq!(again["summary"]["skipped"].as_u64().unwrap(), authorized);
    assert_eq!(again["summary"]["authorized"].as_u64().unwrap(), pending);
    let grants = grants(&emu);
    assert!(
        users.iter().all(|u| grants.get(u) == Some(&1)),
        "{grants:?}"
    );
    assert_eq!(ws.auth_files().len(), 30);

    // --force grants them all again.
    let run = fleetauth(
        &ws.grant_args(&emu, &["--rate", "100", "--concurrency", "8", "--force"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(grants_of(&emu, &users).iter().all(|&n| n == 2));
}

fn grants_of(emu: &fleetauth::emulator::EmulatorHandle, users: &[String]) -> Vec<u64> {
    let grants = grants(emu);
    users
        .iter()
        .map(|u| grants.get(u).copied().unwrap_or(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_ends_the_run_like_an_interruption() {
    let users = usernames("deadline", 20);
    let mut cfg = config(&users.iter().map(String::as_str).collect::<Vec<_>>());
    cfg.latency = Duration::from_millis(200);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &["--rate", "4", "--concurrency", "1", "--deadline", "1s"],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(run.stderr.contains("--deadline"), "{}", run.stderr);
    let summary = &ws.report()["summary"];
    assert!(summary["pending"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(
        summary["authorized"].as_u64().unwrap() as usize,
        ws.auth_files().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_wide_misconfiguration_stops_the_run_early() {
    let users = usernames("misconf", 40);
    let emu = start(config(
        &users.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let ws = Workspace::with_users(&users);
    let mut args = ws.grant_args(&emu, &["--concurrency", "2", "--rate", "20"]);
    let client = args.iter().position(|a| a == CLIENT_ID).unwrap();
    args[client] = "3MVGwrongKEY".into();
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let requests = emu.stats.snapshot().requests;
    assert!(requests <= 5 + 2, "{requests} failing logins sent");
    assert!(
        run.stderr.contains("stopped early") && run.stderr.contains("consumer key is wrong"),
        "{}",
        run.stderr
    );
    let report = ws.report();
    assert_eq!(report["summary"]["failed"], 40);
    assert_eq!(report["summary"]["attempts"].as_u64().unwrap(), requests);
    let untried = orgs(&report).iter().filter(|o| o["attempts"] == 0).count();
    assert_eq!(untried as u64, 40 - requests);
    let failed_csv = std::fs::read_to_string(ws.out.join("failed.csv")).unwrap();
    assert_eq!(failed_csv.lines().count(), 41);
}

// --- keys --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_key_is_opened_with_the_passphrase_from_the_named_variable() {
    let emu = start(config(&["test-enc1@example.com"])).await;
    let ws = Workspace::with_users(&["test-enc1@example.com".to_string()]);
    let mut args = ws.grant_args(&emu, &["--jwt-key-passphrase-env", "HUB_KEY_PASS"]);
    let f = args.iter().position(|a| a == "-f").unwrap();
    args[f + 1] = fixture("keys/server.encrypted.key").display().to_string();
    let run = fleetauth_env(&args, None, &[("HUB_KEY_PASS", "correct-horse")]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("correct-horse"));
    let wrong = fleetauth_env(&args, None, &[("HUB_KEY_PASS", "nope")]).await;
    assert_eq!(wrong.code, 2);
    assert!(
        wrong.stderr.contains("passphrase does not open"),
        "{}",
        wrong.stderr
    );
    assert_eq!(emu.stats.snapshot().requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_that_does_not_match_the_certificate_is_refused_before_anything_is_sent() {
    let emu = start(config(&["test-cert1@example.com"])).await;
    let ws = Workspace::with_users(&["test-cert1@example.com".to_string()]);
    let cert = fixture("keys/server.crt").display().to_string();
    let good = fleetauth(&ws.grant_args(&emu, &["--cert", &cert]), None).await;
    assert_eq!(good.code, 0, "{}", good.stderr);
    let mut args = ws.grant_args(&emu, &["--cert", &cert, "--force"]);
    let f = args.iter().position(|a| a == "-f").unwrap();
    args[f + 1] = fixture("keys/other.key").display().to_string();
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("does not match the certificate"),
        "{}",
        run.stderr
    );
    assert_eq!(
        emu.stats.snapshot().requests,
        1,
        "only the good run sent a request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_from_the_environment_never_reaches_the_output() {
    let emu = start(config(&["test-envkey1@example.com"])).await;
    let ws = Workspace::with_users(&["test-envkey1@example.com".to_string()]);
    let mut args = ws.grant_args(&emu, &["--json"]);
    let f = args.iter().position(|a| a == "-f").unwrap();
    args.drain(f..f + 2);
    let pem = fleetauth::emulator::test_keys::PRIVATE_KEY;
    let run = fleetauth_env(&args, None, &[("SFDX_HUB_KEY", pem)]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = format!("{}{}", run.stdout, run.stderr);
    assert!(pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .all(|l| !seen.contains(l)));
}

// --- ergonomics: keygen, check, shards, completions ---------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn keygen_writes_a_pair_the_emulator_accepts_and_never_overwrites_it() {
    let ws = Workspace::new("orgs.csv", "test-kg1@example.com\n");
    let dir = ws.dir.path().join("keys");
    let args: Vec<String> = [
        "keygen",
        "--out-dir",
        dir.to_str().unwrap(),
        "--common-name",
        "fleet CI",
    ]
    .map(String::from)
    .to_vec();
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("Admin approved users are pre-authorized")
            && run.stdout.contains("Use digital signatures")
    );
    let mode = std::fs::metadata(dir.join("server.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let cert = std::fs::read(dir.join("server.crt")).unwrap();
    let again = fleetauth(&args, None).await;
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(
        std::fs::read(dir.join("server.crt")).unwrap(),
        cert,
        "nothing was overwritten"
    );

    // The emulator, holding the generated certificate, grants assertions signed with the key.
    let mut cfg = config(&["test-kg1@example.com"]);
    cfg.certificate_pem = cert;
    let emu = start(cfg).await;
    let mut grant = ws.grant_args(&emu, &["--cert", dir.join("server.crt").to_str().unwrap()]);
    let f = grant.iter().position(|a| a == "-f").unwrap();
    grant[f + 1] = dir.join("server.key").display().to_string();
    let run = fleetauth(&grant, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(grants(&emu)["test-kg1@example.com"], 1);
}

fn check_args(
    ws: &Workspace,
    emu: &fleetauth::emulator::EmulatorHandle,
    extra: &[&str],
) -> Vec<String> {
    let mut args = ws.grant_args(emu, extra);
    args[0] = "check".into();
    let out = args.iter().position(|a| a == "--out-dir").unwrap();
    args.drain(out..out + 2);
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn check_validates_everything_offline_and_prints_the_claims_but_no_secret() {
    let emu = start(config(&["test-chk1@example.com"])).await;
    let ws = Workspace::new(
        "orgs.csv",
        "username\ntest-chk1@example.com\ntest-chk2@example.com\nTEST-CHK1@example.com\n",
    );
    let cert = fixture("keys/server.crt").display().to_string();
    let run = fleetauth(&check_args(&ws, &emu, &["--cert", &cert]), None).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("RSA 2048 bits") && run.stdout.contains("matches the key"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("3 rows, 2 orgs to grant") && run.stdout.contains("1 repeated"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(r#""iss":"3MVG9fleetauthDEMOconsumerKEY","sub":"test-chk1@example.com","aud":"https://test.salesforce.com""#), "{}", run.stdout);
    assert!(run.stdout.contains("READY"));
    assert!(
        !run.stdout.contains("eyJ"),
        "no signed assertion is printed"
    );
    let key = fleetauth::emulator::test_keys::PRIVATE_KEY;
    assert!(key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .all(|l| !run.stdout.contains(l)));
    assert_eq!(
        emu.stats.snapshot().requests,
        0,
        "check sends nothing without --online"
    );

    // Not ready: a key that does not match the certificate; a bad row.
    let mut mismatch = check_args(&ws, &emu, &["--cert", &cert]);
    let f = mismatch.iter().position(|a| a == "-f").unwrap();
    mismatch[f + 1] = fixture("keys/other.key").display().to_string();
    let run = fleetauth(&mismatch, None).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.contains("NOT READY") && run.stdout.contains("does not match the certificate"),
        "{}",
        run.stdout
    );
    let bad = Workspace::new("orgs.csv", "test-ok@example.com\nnot a user\n");
    let run = fleetauth(&check_args(&bad, &emu, &[]), None).await;
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("orgs.csv:line 2"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_online_grants_once_and_diagnoses_the_setting_to_fix() {
    let mut cfg = config(&["hub-ok@example.com"]);
    cfg.users.insert(
        "hub-new@example.com".into(),
        User {
            replication_delay: Duration::from_secs(3600),
            ..User::default()
        },
    );
    let emu = start(cfg).await;
    let ws = Workspace::new("orgs.csv", "test-online1@example.com\n");
    let run = fleetauth(
        &check_args(&ws, &emu, &["--online", "hub-ok@example.com"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("granted"));
    let run = fleetauth(
        &check_args(&ws, &emu, &["--online", "hub-new@example.com"]),
        None,
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stdout
            .contains("Admin approved users are pre-authorized"),
        "{}",
        run.stdout
    );
    let mut wrong = check_args(&ws, &emu, &["--online", "hub-ok@example.com"]);
    let i = wrong.iter().position(|a| a == CLIENT_ID).unwrap();
    wrong[i] = "3MVGwrong".into();
    let run = fleetauth(&wrong, None).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.contains("consumer key is wrong"),
        "{}",
        run.stdout
    );
    assert_eq!(
        emu.stats.snapshot().requests,
        3,
        "one request per --online check"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_of_a_ci_matrix_cover_every_org_exactly_once() {
    let users = usernames("shard", 40);
    let emu = start(config(
        &users.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let ws = Workspace::with_users(&users);
    let mut covered = 0;
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let mut args = ws.grant_args(&emu, &["--shard", &shard, "--rate", "100"]);
        let out = args.iter().position(|a| a == "--out-dir").unwrap();
        args[out + 1] = ws.dir.path().join(format!("out{k}")).display().to_string();
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(ws.dir.path().join(format!("out{k}/report.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report["summary"]["shard"], shard.as_str());
        covered += report["summary"]["authorized"].as_u64().unwrap();
    }
    assert_eq!(covered, 40);
    let grants = grants(&emu);
    assert!(
        users.iter().all(|u| grants.get(u) == Some(&1)),
        "every org exactly once: {grants:?}"
    );
    let bad = fleetauth(&ws.grant_args(&emu, &["--shard", "5/4"]), None).await;
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("K/N"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = fleetauth(&["completions".to_string(), shell.to_string()], None).await;
        assert_eq!(run.code, 0);
        assert!(
            run.stdout.contains("fleetauth") && run.stdout.contains("grant"),
            "{shell}"
        );
    }
    let man = fleetauth(&["man".to_string()], None).await;
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    for sub in ["grant", "check", "keygen", "login", "emulate", "bench"] {
        let help = fleetauth(&[sub.to_string(), "--help".to_string()], None).await;
        assert!(
            help.stdout.contains("Example"),
            "{sub} --help has no example"
        );
    }
}
