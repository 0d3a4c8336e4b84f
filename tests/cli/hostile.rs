//! Hostile answers and hostile surroundings: a fake token endpoint answering in every wrong
//! way, closed pipes, busy and unusable directories, signals (issue: hostile answers).

use std::os::unix::fs::FileTypeExt;
use std::time::Duration;

use serde_json::Value;

use crate::orgs;
use crate::support::*;

/// Shaped like a real session id (15-character org id, `!`, session), so each hostile case is
/// refused for its own reason, not for the token's shape.
const TOKEN: &str = "00D5g000000HoSt!AQ0AQHostileTokenBytes9d8f7g6h5j4k3l2m1n0pQrStUvWxYz.AbCdEf";

fn success_body(instance_url: &str, token: &str) -> Vec<u8> {
    serde_json::json!({
        "access_token": token,
        "instance_url": instance_url,
        "id": "https://test.salesforce.com/id/00D5g000000HoStLAA/0055g000000HoStLAA",
        "token_type": "Bearer",
    })
    .to_string()
    .into_bytes()
}

/// Run a 3-org grant against `fake`; everything the run printed or wrote, and the report.
async fn run_against(fake: &FakeEndpoint, extra: &[&str]) -> (Run, String, Value) {
    let users = usernames("hostile", 3);
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args_to(&fake.url, extra), None).await;
    let mut seen = run.stdout.clone() + &run.stderr;
    for entry in std::fs::read_dir(&ws.out).unwrap() {
        seen.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    let report = ws.report();
    (run, seen, report)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hostile_answer_gets_a_token_into_any_output_or_counts_as_authorized() {
    let cut = format!(r#"{{"access_token":"{TOKEN}","instance_url":"https://x.my.sales"#);
    let cases: Vec<(&str, u16, &str, Vec<u8>)> = vec![
        ("truncated 200", 200, "application/json", cut.into_bytes()),
        ("html 200", 200, "text/html", format!("<html><title>{TOKEN}</title><p>{TOKEN}</p></html>").into_bytes()),
        ("extra text", 200, "application/json", format!("{}garbage {TOKEN}", String::from_utf8(success_body("https://a.my.salesforce.com", TOKEN)).unwrap()).into_bytes()),
        ("evil http instance", 200, "application/json", success_body("http://evil.example.com", TOKEN)),
        ("javascript instance", 200, "application/json", success_body("javascript:alert(1)", TOKEN)),
        ("foreign https instance", 200, "application/json", success_body("https://evil.example.com", TOKEN)),
        ("empty token", 200, "application/json", success_body("https://a.my.salesforce.com", "")),
        ("token in an error", 400, "application/json", serde_json::json!({"error": "invalid_grant", "error_description": format!("bad {TOKEN}")}).to_string().into_bytes()),
        ("404 html", 404, "text/html", format!("<html><title>Not Found</title>{TOKEN}</html>").into_bytes()),
        ("501 html", 501, "text/html", b"<html><title>Not Implemented</title></html>".to_vec()),
    ];
    for (what, status, ct, body) in cases {
        let fake = fake_endpoint(status, &[("Content-Type", ct)], body).await;
        let (run, seen, report) = run_against(&fake, &["--max-retries", "1", "--json"]).await;
        assert_ne!(run.code, 0, "{what}: {}", run.stderr);
        assert_eq!(report["summary"]["authorized"], 0, "{what}");
        assert_no_secret(&seen, &[TOKEN.to_string()]);
        let secret = TOKEN.split_once('!').unwrap().1;
        assert!(
            !seen.contains(&secret[..12]),
            "{what}: a piece of the token leaked"
        );
        // Never more requests than orgs: fleet-wide answers stop the run after the canary
        // (and its one retry), a per-org rejection costs one request per org.
        assert!(fake.requests() <= 3, "{what}: {} requests", fake.requests());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_ansi_laden_error_is_capped_and_escaped() {
    // 10 MB: the answer is cut at 256 KB, so it is no JSON any more; and 200 KB, under the cut,
    // so the description itself (escapes all through it) is parsed, escaped and capped.
    for (what, repeat, parsed) in [("10 MB", 2_000_000, false), ("200 KB", 10_000, true)] {
        let description = format!(
            "\x1b[2J\x1b[31mALERT\x1b[0m {}",
            "blah \x1b]0;PWNED\x07 ".repeat(repeat / 4)
        );
        let body = serde_json::json!({"error": "invalid_grant", "error_description": description})
            .to_string()
            .into_bytes();
        let fake = fake_endpoint(400, &[("Content-Type", "application/json")], body).await;
        let (run, seen, report) = run_against(&fake, &["--json"]).await;
        assert_eq!(run.code, 1, "{what}: {}", run.stderr);
        assert!(
            !seen.contains('\x1b') && !seen.contains('\x07'),
            "{what}: a raw escape reached an output"
        );
        let text = report.to_string();
        assert!(
            text.len() < 20_000,
            "{what}: the report is {} bytes",
            text.len()
        );
        assert!(
            run.stderr.len() < 20_000,
            "{what}: stderr is {} bytes",
            run.stderr.len()
        );
        let error = &orgs(&report)[0]["error"];
        assert_eq!(error["code"] == "invalid_grant", parsed, "{what}: {error}");
        if parsed {
            let kept = error["description"].as_str().unwrap();
            assert!(
                kept.contains("ALERT") && kept.len() <= 1_000,
                "{what}: the description is kept, escaped and short: {kept}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_port_with_200_orgs_ends_after_the_canarys_retries() {
    // Take a free port, then close it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let users = usernames("closed", 200);
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args_to(
            &format!("http://127.0.0.1:{port}"),
            &["--max-retries", "2", "--concurrency", "32"],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = ws.report();
    assert_eq!(
        report["summary"]["attempts"], 3,
        "the canary's three tries, nothing else"
    );
    assert_eq!(report["summary"]["failed"], 200);
    assert!(run.stderr.contains("stopped early"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_out_dir_or_broken_sf_state_is_found_before_anything_is_sent() {
    let emu = start(config(&["test-pre1@example.com"])).await;
    let ws = Workspace::with_users(&["test-pre1@example.com".to_string()]);
    let file = ws.dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let mut args = ws.grant_args(&emu, &[]);
    set_flag(
        &mut args,
        "--out-dir",
        file.join("out").display().to_string(),
    );
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(emu.stats.snapshot().requests, 0);

    let home = ws.dir.path().join("home");
    std::fs::create_dir_all(home.join(".sfdx")).unwrap();
    std::fs::write(home.join(".sfdx/alias.json"), "{ not json").unwrap();
    let sf_home = home.display().to_string();
    let run = fleetauth(
        &ws.grant_args(&emu, &["--sf-home", &sf_home, "--alias-prefix", "ci"]),
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("alias.json"), "{}", run.stderr);
    assert_eq!(emu.stats.snapshot().requests, 0, "nothing sent");
    // Fixed, the retry grants it and writes the alias: nothing was left "fresh" half-done.
    std::fs::write(home.join(".sfdx/alias.json"), "{}").unwrap();
    let run = fleetauth(
        &ws.grant_args(&emu, &["--sf-home", &sf_home, "--alias-prefix", "ci"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let aliases = std::fs::read_to_string(home.join(".sfdx/alias.json")).unwrap();
    assert!(
        aliases.contains(r#""ci1":"test-pre1@example.com""#),
        "{aliases}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stderr_never_loses_the_report() {
    let users = usernames("pipe", 3);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let mut child = ws
        .command(&ws.grant_args(&emu, &["--force"]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    drop(child.stdout.take());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "no panic on a closed pipe");
    assert_eq!(ws.report()["summary"]["authorized"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_into_a_busy_out_dir_exits_2_and_sends_nothing() {
    let emu = start(config(&["test-busy1@example.com"])).await;
    let ws = Workspace::with_users(&["test-busy1@example.com".to_string()]);
    let held = fleetauth::store::OutDir::open(&ws.out).unwrap();
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("another fleetauth run"),
        "{}",
        run.stderr
    );
    assert_eq!(emu.stats.snapshot().requests, 0);
    drop(held);
    assert_eq!(fleetauth(&ws.grant_args(&emu, &[]), None).await.code, 0);
}

async fn slow_run(ws: &Workspace, emu: &EmulatorHandle, stdin: bool) -> tokio::process::Child {
    ws.command(&ws.grant_args(emu, &["--concurrency", "4", "--rate", "100"]))
        .stdin(if stdin {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigint_stops_now_and_in_flight_requests_are_counted() {
    let users = usernames("twice", 8);
    let mut cfg = config(&users);
    cfg.latency = Duration::from_secs(20);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let mut child = slow_run(&ws, &emu, false).await;
    let pid = child.id().unwrap();
    // The canary's request is at the emulator (which answers in 20 s): interrupt, and once the
    // run says it is finishing what is in flight, interrupt again.
    until("the canary's request", || {
        emu.stats.snapshot().requests >= 1
    })
    .await;
    signal(pid, libc::SIGINT);
    let (_, rest) = stderr_until(child.stderr.take().unwrap(), "a second Ctrl-C stops now").await;
    signal(pid, libc::SIGINT);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the second SIGINT ends the run at once")
        .unwrap();
    assert_eq!(out.status.code(), Some(130));
    let rest = rest.await.unwrap();
    assert!(
        rest.contains("stopping now"),
        "the second signal was heard: {rest}"
    );
    let report = ws.report();
    let in_flight: Vec<&Value> = orgs(&report)
        .iter()
        .filter(|o| o["attempts"].as_u64() == Some(1))
        .collect();
    assert!(
        !in_flight.is_empty(),
        "the canary's request was in flight: {report}"
    );
    for o in in_flight {
        assert_eq!(o["status"], "pending");
        assert!(
            o["note"]
                .as_str()
                .unwrap()
                .contains("may have been granted"),
            "{o}"
        );
    }
    assert_eq!(
        report["summary"]["attempts"].as_u64(),
        Some(emu.stats.snapshot().requests)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sighup_end_the_run_like_sigint_with_a_report() {
    for (name, sig) in [("SIGTERM", libc::SIGTERM), ("SIGHUP", libc::SIGHUP)] {
        let users = usernames(&format!("sig{sig}-"), 4);
        let mut cfg = config(&users);
        cfg.latency = Duration::from_secs(20);
        let emu = start(cfg).await;
        let ws = Workspace::with_users(&users);
        let mut child = slow_run(&ws, &emu, false).await;
        until("the canary's request", || {
            emu.stats.snapshot().requests >= 1
        })
        .await;
        signal(child.id().unwrap(), sig);
        let (said, rest) = stderr_until(child.stderr.take().unwrap(), "interrupted").await;
        assert!(
            said.contains("finishing requests in flight"),
            "{name}: {said}"
        );
        let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .unwrap()
            .unwrap();
        let rest = rest.await.unwrap();
        assert_eq!(status.code(), Some(130), "{name}: {rest}");
        let report = ws.report();
        assert_eq!(report["summary"]["pending"], 4, "{name}: {report}");
        assert!(
            std::fs::read_to_string(ws.out.join("failed.csv"))
                .unwrap()
                .contains(&users[0]),
            "{name}: failed.csv lists the pending orgs"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_while_the_list_is_read_from_stdin_ends_the_run() {
    let emu = start(config(&["test-stdin1@example.com"])).await;
    let ws = Workspace::with_users(&["test-stdin1@example.com".to_string()]);
    let mut args = ws.grant_args(&emu, &[]);
    args[1] = "-".into();
    let child = ws
        .command(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Held open until the run ends: the list never arrives.
    let mut child = child;
    let _stdin = child.stdin.take();
    // Once the process catches SIGINT (its handler is installed before the list is read).
    let pid = child.id().unwrap();
    until("a SIGINT handler", || catches(pid, libc::SIGINT)).await;
    signal(pid, libc::SIGINT);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("a signal ends a run waiting on stdin")
        .unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was sent"));
    assert_eq!(emu.stats.snapshot().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_already_passed_sends_nothing() {
    let users = usernames("dead0", 5);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args(&emu, &["--deadline", "0s"]), None).await;
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert_eq!(emu.stats.snapshot().requests, 0);
    assert_eq!(ws.report()["summary"]["pending"], 5);
}

// --- sf aliases and input hygiene --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_sf_alias_is_not_re_pointed_unless_asked() {
    let emu = start(config(&["test-al1@example.com"])).await;
    let ws = Workspace::new("orgs.csv", "username,alias\ntest-al1@example.com,hub\n");
    let home = ws.dir.path().join("home");
    std::fs::create_dir_all(home.join(".sfdx")).unwrap();
    std::fs::write(
        home.join(".sfdx/alias.json"),
        r#"{"orgs":{"hub":"hub@acme.com"}}"#,
    )
    .unwrap();
    let sf_home = home.display().to_string();
    let run = fleetauth(&ws.grant_args(&emu, &["--sf-home", &sf_home]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("alias hub already names hub@acme.com"),
        "{}",
        run.stderr
    );
    let aliases = std::fs::read_to_string(home.join(".sfdx/alias.json")).unwrap();
    assert!(aliases.contains(r#""hub":"hub@acme.com""#), "{aliases}");
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &["--sf-home", &sf_home, "--sf-replace-aliases", "--force"],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let aliases = std::fs::read_to_string(home.join(".sfdx/alias.json")).unwrap();
    assert!(
        aliases.contains(r#""hub":"test-al1@example.com""#),
        "{aliases}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn input_hygiene_duplicate_aliases_bad_domains_bom_and_numeric_aliases() {
    let emu = start(config(&["test-h1@example.com", "test-h2@example.com"])).await;
    let ws = Workspace::new(
        "orgs.csv",
        "username,alias\ntest-h1@example.com,ci\ntest-h2@example.com,ci\n",
    );
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("line 3") && run.stderr.contains("line 2"),
        "{}",
        run.stderr
    );

    let ws = Workspace::new("orgs.csv", "test-h1@example.com\"],\n");
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("only letters, digits, dots and hyphens"),
        "{}",
        run.stderr
    );

    let ws = Workspace::new(
        "orgs.json",
        "\u{feff}[{\"username\":\"test-h1@example.com\",\"alias\":42}]",
    );
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(orgs(&ws.report())[0]["alias"], "42");
    assert_eq!(emu.stats.snapshot().requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_usage_error_with_json_still_prints_the_envelope() {
    let run = fleetauth(
        &[
            "grant".into(),
            "orgs.csv".into(),
            "--json".into(),
            "--concurrency".into(),
            "many".into(),
        ],
        None,
    )
    .await;
    assert_eq!(run.code, 2);
    let envelope: Value = serde_json::from_str(&run.stdout).expect("an envelope on stdout");
    assert_eq!(envelope["status"], 2);
    assert_eq!(envelope["name"], "UsageError");
    assert!(
        envelope["message"].as_str().unwrap().contains("many"),
        "{envelope}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_404_from_another_kind_of_server_stops_after_one_request() {
    let body = br#"{"timestamp":"2026-11-25T00:00:00Z","status":404,"error":"Not Found","path":"/services/oauth2/token"}"#;
    let fake = fake_endpoint(404, &[("Content-Type", "application/json")], body.to_vec()).await;
    let users = usernames("spring", 40);
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args_to(&fake.url, &["--concurrency", "32", "--rate", "1000"]),
        None,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(fake.requests(), 1, "one assertion, not the fleet's");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_url_on_a_foreign_host_is_not_authorized() {
    let body = serde_json::json!({
        "access_token": TOKEN,
        "instance_url": "https://a.my.salesforce.com",
        "id": "https://evil.example.com/id/00D5g000000HoStLAA/0055g000000HoStLAA",
    })
    .to_string()
    .into_bytes();
    let fake = fake_endpoint(200, &[("Content-Type", "application/json")], body).await;
    let (run, seen, report) = run_against(&fake, &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(report["summary"]["authorized"], 0);
    assert!(seen.contains("`id`"), "the error names the field: {seen}");
    assert_no_secret(&seen, &[TOKEN.to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_text_in_the_csv_report_cannot_become_a_spreadsheet_formula() {
    let body = serde_json::json!({"error": "invalid_grant", "error_description": "=1+2"})
        .to_string()
        .into_bytes();
    let fake = fake_endpoint(400, &[("Content-Type", "application/json")], body).await;
    let users = usernames("formula", 2);
    let ws = Workspace::with_users(&users);
    let csv = ws.dir.path().join("report.csv");
    let run = fleetauth(
        &ws.grant_args_to(&fake.url, &["--report", csv.to_str().unwrap()]),
        None,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.contains("'=1+2"), "{text}");
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(!cell.starts_with(['=', '+', '@']), "{cell:?} in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_path_that_is_a_device_pipe_or_symlink_is_refused() {
    let emu = start(config(&["test-dev1@example.com"])).await;
    let ws = Workspace::with_users(&["test-dev1@example.com".to_string()]);
    let link = ws.dir.path().join("out.json");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    for path in ["/dev/null".to_string(), link.display().to_string()] {
        let run = fleetauth(&ws.grant_args(&emu, &["--report", &path]), None).await;
        assert_eq!(run.code, 2, "{path}: {}", run.stderr);
        assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
    }
    assert!(std::fs::symlink_metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(emu.stats.snapshot().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_report_that_cannot_reach_stdout_fails_the_run() {
    let emu = start(config(&["test-full1@example.com"])).await;
    let ws = Workspace::with_users(&["test-full1@example.com".to_string()]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = ws
        .command(&ws.grant_args(&emu, &["--json", "-q"]))
        .stdout(std::process::Stdio::from(full))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write the --json report"),
        "{stderr}"
    );
    assert_eq!(
        ws.report()["summary"]["authorized"],
        1,
        "the report is still written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_too_large_for_memory_are_usage_errors_naming_the_range() {
    let max = u64::MAX.to_string();
    let cases: [(&[&str], &str); 3] = [
        (
            &["bench", "--orgs", &max, "--latency", "0s"],
            "0..=10000000",
        ),
        (
            &[
                "emulate",
                "--hub-orgs",
                &max,
                "--dev-hub",
                "h@example.com",
                "--port",
                "0",
            ],
            "0..=1000000",
        ),
        (&["demo", "--orgs", &max], "0..=1000000"),
    ];
    for (args, range) in cases {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(range), "{args:?}: {}", run.stderr);
    }
}

/// A path fleetauth records as text but whose bytes are not UTF-8 (`bad\xff\xfe`): refused
/// before anything is sent, not written into sf's auth file as `bad\u{FFFD}\u{FFFD}` (a file
/// that does not exist, so sf's later refreshes fail while the grant said it worked).
#[tokio::test(flavor = "multi_thread")]
async fn paths_that_are_not_utf8_are_refused_where_they_would_be_recorded() {
    use std::ffi::{OsStr, OsString};
    use std::os::unix::ffi::OsStrExt;

    let users = usernames("latin1", 1);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let bad = |name: &str| {
        let mut bytes = ws.dir.path().as_os_str().as_bytes().to_vec();
        bytes.extend_from_slice(b"/bad\xff\xfe");
        bytes.extend_from_slice(name.as_bytes());
        std::path::PathBuf::from(OsStr::from_bytes(&bytes))
    };
    let key = bad(".key");
    std::fs::copy(&ws.key, &key).unwrap();
    let list = bad(".csv");
    std::fs::copy(&ws.list, &list).unwrap();
    let home = ws.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let grant = |replace: &[(&str, &std::path::Path)], sf: bool| {
        let mut args: Vec<OsString> = ws
            .grant_args(&emu, &[])
            .into_iter()
            .map(OsString::from)
            .collect();
        if sf {
            args.extend(["--sf".into(), "--sf-home".into(), home.clone().into()]);
        }
        for (flag, path) in replace {
            let at = match *flag {
                "list" => 1,
                flag => args.iter().position(|a| a == flag).unwrap() + 1,
            };
            args[at] = path.as_os_str().to_owned();
        }
        args
    };
    let sf_home = bad("-home");
    std::fs::create_dir(&sf_home).unwrap();
    let cases = [
        (
            "the key under --sf",
            grant(&[("-f", &key)], true),
            "--jwt-key-file",
        ),
        (
            "--sf-home",
            grant(&[("--sf-home", &sf_home)], true),
            "--sf-home",
        ),
        (
            "--out-dir",
            grant(&[("--out-dir", &bad("-out"))], false),
            "--out-dir",
        ),
        ("the list", grant(&[("list", &list)], false), "the org list"),
    ];
    for (what, args, flag) in cases {
        let run = finish(command(&args).spawn().unwrap()).await;
        assert_eq!(run.code, 2, "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains(flag)
                && run.stderr.contains("not valid UTF-8")
                && run.stderr.contains("rename or move it"),
            "{what}: {}",
            run.stderr
        );
        assert!(grants(&emu).is_empty(), "{what}: nothing is sent");
    }
    // `fleetauth login` records the key's path in sf's auth file too.
    let login: Vec<OsString> = vec![
        "login".into(),
        "-o".into(),
        users[0].clone().into(),
        "-i".into(),
        CLIENT_ID.into(),
        "-f".into(),
        key.clone().into(),
        "-r".into(),
        emu.url().into(),
        "--sf-home".into(),
        home.clone().into(),
    ];
    let run = finish(command(&login).spawn().unwrap()).await;
    assert_eq!(run.code, 2, "login: {}", run.stderr);
    assert!(
        run.stderr.contains("--jwt-key-file") && run.stderr.contains("rename or move it"),
        "login: {}",
        run.stderr
    );
    assert!(grants(&emu).is_empty(), "login: nothing is sent");
    // `token` records its out dir's file in `--json`, and with `--sf` the key in sf's state.
    let bad_out = bad("-tout");
    for (what, flag, path, sf) in [
        ("token --out-dir", "--out-dir", &bad_out, false),
        ("token -f under --sf", "-f", &key, true),
    ] {
        let mut args: Vec<OsString> = ws
            .token_args(&emu, &users[0], &[])
            .into_iter()
            .map(OsString::from)
            .collect();
        let at = args.iter().position(|a| a == flag).unwrap() + 1;
        args[at] = path.clone().into_os_string();
        if sf {
            args.extend([
                "--sf".into(),
                "--sf-home".into(),
                home.clone().into_os_string(),
            ]);
        }
        let run = finish(command(&args).spawn().unwrap()).await;
        assert_eq!(run.code, 2, "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains("not valid UTF-8"),
            "{what}: {}",
            run.stderr
        );
        assert!(grants(&emu).is_empty(), "{what}: nothing is sent");
    }
    assert!(
        !home
            .join(".sfdx")
            .join(format!("{}.json", users[0]))
            .exists(),
        "no auth file names a key that does not exist"
    );

    // The same key, list and out dir under UTF-8 names still work, the key without --sf too
    // (nothing records its path then).
    let run = finish(command(grant(&[("-f", &key)], false)).spawn().unwrap()).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(grants(&emu).len(), 1);
}

/// A token answer's `instance_url` on a host no server is named by (an empty label, a trailing
/// dot, a percent-encoded name that decodes to `evil.com..salesforce.com`, port 0) is not
/// stored: the org fails, naming the field.
#[tokio::test(flavor = "multi_thread")]
async fn an_instance_url_with_a_malformed_host_is_not_authorized() {
    for instance_url in [
        "https://.salesforce.com",
        "https://a..salesforce.com",
        "https://evil.com%2e.salesforce.com",
        "https://x.my.salesforce.com.",
        "https://x.my.salesforce.com:0",
    ] {
        let body = success_body(instance_url, TOKEN);
        let fake = fake_endpoint(200, &[("Content-Type", "application/json")], body).await;
        let (run, seen, report) = run_against(&fake, &["--max-retries", "1"]).await;
        assert_eq!(run.code, 1, "{instance_url}: {}", run.stderr);
        assert_eq!(report["summary"]["authorized"], 0, "{instance_url}");
        assert!(
            seen.contains("`instance_url`"),
            "{instance_url}: the error names the field: {seen}"
        );
        assert!(!seen.contains("evil.com..salesforce.com"), "{seen}");
        assert_no_secret(&seen, &[TOKEN.to_string()]);
    }
}
