//! Each error class, every fault kind, interruption, the deadline and the early stop.

use std::time::Duration;

use fleetauth::emulator::{Fault, Scripted};

use crate::support::*;
use crate::{orgs, statuses};

// --- each error class --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_wide_error_costs_exactly_one_request_and_explains_the_fix() {
    let users = usernames("perm", 5);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let mut args = ws.grant_args(&emu, &[]);
    set_flag(&mut args, "-i", "3MVGwrongKEY");
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1);
    let stats = emu.stats.snapshot();
    assert_eq!(stats.requests, 1, "the canary's one request, nothing more");
    let report = ws.report();
    for (i, org) in orgs(&report).iter().enumerate() {
        assert_eq!(org["attempts"], u64::from(i == 0));
        // The orgs never tried carry a code of their own, not the error they never met.
        let code = if i == 0 {
            "invalid_client_id"
        } else {
            "not_attempted"
        };
        assert_eq!(org["error"]["code"], code);
        let description = org["error"]["description"].as_str().unwrap();
        if i == 0 {
            assert_eq!(description, "client identifier invalid");
        } else {
            assert!(description.starts_with("not attempted"), "{description}");
        }
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
    let mut cfg = config(&users);
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
/// When the answers never show a Salesforce token endpoint (`canary_stops`), only the first org
/// is tried, and the rest are reported as not attempted.
async fn always_failing(
    fault: Fault,
    extra: &[&str],
    expected_attempts: u64,
    code: &str,
    canary_stops: bool,
) {
    let users = usernames(fault.name(), 2);
    let mut cfg = config(&users);
    cfg.faults = vec![(fault, 1.0)];
    cfg.slow_delay = Duration::from_secs(3);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args(&emu, extra), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = ws.report();
    for (i, org) in orgs(&report).iter().enumerate() {
        let tried = i == 0 || !canary_stops;
        assert_eq!(org["status"], "failed");
        assert_eq!(
            org["attempts"].as_u64().unwrap(),
            if tried { expected_attempts } else { 0 },
            "{fault:?}: {org}"
        );
        assert_eq!(org["error"]["kind"], "transient");
        assert_eq!(
            org["error"]["code"],
            if tried { code } else { "not_attempted" }
        );
        assert!(org["error"]["hint"].as_str().is_some());
        if !tried {
            assert!(
                org["error"]["description"]
                    .as_str()
                    .unwrap()
                    .starts_with("not attempted: the first org failed"),
                "{org}"
            );
        }
    }
    let orgs_tried = if canary_stops { 1 } else { 2 };
    assert_eq!(
        emu.stats.snapshot().faults[fault.name()],
        orgs_tried * expected_attempts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_max_retries_times() {
    always_failing(
        Fault::ServerError,
        &["--max-retries", "2"],
        3,
        "unknown_error",
        false,
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
        true,
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
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_resets_are_retried() {
    always_failing(
        Fault::Reset,
        &["--max-retries", "2"],
        3,
        "connection_reset",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_bodies_are_retried() {
    always_failing(
        Fault::Truncated,
        &["--max-retries", "1"],
        2,
        "ERROR_HTTP_200",
        true,
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
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_through_every_fault_kind_is_authorized_and_granted_once() {
    let users = usernames("faulty", 40);
    let mut cfg = config(&users);
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
    let mut cfg = config(&users);
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
    // The run-wide brake engaged (paused, then a lower rate), and said so.
    assert!(
        run.stderr
            .contains("login rate exceeded: pausing, then sending at 1/2 of --rate"),
        "{}",
        run.stderr
    );
}

// --- interruption ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sigint_writes_the_report_with_pending_orgs_and_exits_130() {
    let users = usernames("intr", 30);
    let mut cfg = config(&users);
    cfg.latency = Duration::from_millis(100);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let child = ws
        .command(&ws.grant_args(&emu, &["--rate", "5", "--concurrency", "2"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once some orgs are authorized (their grants counted by the emulator), with most
    // still to go at 5 requests a second.
    until("three grants", || grants(&emu).values().sum::<u64>() >= 3).await;
    signal(child.id().unwrap(), libc::SIGINT);
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
    let mut cfg = config(&users);
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
async fn a_fleet_wide_misconfiguration_stops_the_run_after_exactly_one_request() {
    let users = usernames("misconf", 40);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let mut args = ws.grant_args(&emu, &["--concurrency", "16", "--rate", "100"]);
    set_flag(&mut args, "-i", "3MVGwrongKEY");
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let requests = emu.stats.snapshot().requests;
    assert_eq!(
        requests, 1,
        "the canary goes alone: {requests} failing logins sent"
    );
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
