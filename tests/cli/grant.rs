//! The happy path, replication delays, and the rate and concurrency limits.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use fleetauth::emulator::User;
use serde_json::Value;

use crate::orgs;
use crate::support::*;

// --- the happy path --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_writes_one_private_auth_file_per_org_and_a_matching_report() {
    let users = usernames("happy", 12);
    let emu = start(config(&users)).await;
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
    let mut cfg = empty_config();
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
    let mut cfg = empty_config();
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
        assert_eq!(org["error"]["kind"], "replication_delay");
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

// --- limits ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn concurrency_limit_is_honoured() {
    let users = usernames("conc", 24);
    let mut cfg = config(&users);
    cfg.latency = Duration::from_millis(150);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args(&emu, &["--concurrency", "3", "--rate", "1000"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Reached and never passed: 23 orgs after the canary, each answered in 150 ms, keep all
    // three slots busy (a serial run would peak at 1).
    let peak = emu.stats.snapshot().peak_in_flight;
    assert_eq!(peak, 3, "peak in flight");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_is_honoured() {
    let users = usernames("rate", 24);
    let emu = start(config(&users)).await;
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
