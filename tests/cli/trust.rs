//! Trust edges: where an assertion may go, redirects, corporate TLS and proxies, the canary,
//! and nothing silent (issue: trust edges).

use std::time::Duration;

use serde_json::Value;

use crate::orgs;
use crate::support::*;

// --- where an assertion may go -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_row_naming_a_foreign_host_is_rejected_with_file_and_line_and_nothing_is_sent() {
    let emu = start(config(&[
        "test-host1@example.com",
        "test-host2@example.com",
    ]))
    .await;
    let ws = Workspace::new(
        "orgs.csv",
        "username,instanceUrl\ntest-host1@example.com,https://acme.scratch.my.salesforce.com\ntest-host2@example.com,https://collector.evil.example\n",
    );
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("orgs.csv:line 3")
            && run.stderr.contains("collector.evil.example")
            && run.stderr.contains("--allow-host collector.evil.example"),
        "{}",
        run.stderr
    );
    assert_eq!(emu.stats.snapshot().requests, 0, "nothing was sent");
    // check says the same, and is NOT READY.
    let mut check = ws.grant_args(&emu, &[]);
    check[0] = "check".into();
    drop_flag(&mut check, "--out-dir");
    let run = fleetauth(&check, None).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("NOT READY") && run.stdout.contains("line 3"),
        "{}",
        run.stdout
    );
    // Named with --allow-host, the host is the user's choice.
    check.extend(["--allow-host".into(), "*.evil.example".into()]);
    let run = fleetauth(&check, None).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_gets_exactly_one_request_and_fails_the_run_naming_where_it_pointed() {
    let fake = fake_endpoint(
        307,
        &[(
            "Location",
            "https://collector.evil.example/services/oauth2/token",
        )],
        Vec::new(),
    )
    .await;
    let users = usernames("redirect", 3);
    let ws = Workspace::with_users(&users);
    let mut args = ws.grant_args_to(&fake.url, &[]);
    args.extend(["--concurrency".into(), "8".into()]);
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        fake.requests(),
        1,
        "the assertion went out once, and never on"
    );
    let report = ws.report();
    let first = &orgs(&report)[0];
    assert_eq!(first["error"]["kind"], "permanent");
    assert!(
        first["error"]["description"]
            .as_str()
            .unwrap()
            .contains("collector.evil.example"),
        "{first}"
    );
    assert!(orgs(&report)[1..].iter().all(|o| o["attempts"] == 0));
}

// --- TLS and proxies ---------------------------------------------------------------------------

async fn tls_emulator(users: &[String]) -> (EmulatorHandle, std::path::PathBuf, tempfile::TempDir) {
    let (ca_pem, identity) = test_ca();
    let mut cfg = config(users);
    cfg.tls = Some(identity);
    let emu = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("corp-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    (emu, ca, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_fails_fast_with_the_fix_and_a_trusted_ca_works_three_ways() {
    let users = usernames("tls", 4);
    let (emu, ca, _dir) = tls_emulator(&users).await;
    assert!(emu.url().starts_with("https://"));
    let ws = Workspace::with_users(&users);
    let args = ws.grant_args(&emu, &["--force"]);

    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = ws.report();
    let first = &orgs(&report)[0];
    assert_eq!(first["error"]["code"], "untrusted_certificate", "{first}");
    assert_eq!(first["attempts"], 1, "not retried: {first}");
    let hint = first["error"]["hint"].as_str().unwrap();
    for setting in [
        "--ca-file",
        "NODE_EXTRA_CA_CERTS",
        "SSL_CERT_FILE",
        "HTTPS_PROXY",
    ] {
        assert!(hint.contains(setting), "{hint}");
    }
    assert_eq!(
        report["summary"]["attempts"], 1,
        "the canary stopped the run"
    );
    assert_eq!(emu.stats.snapshot().requests, 0);

    let ca_path = ca.display().to_string();
    let mut with_flag = args.clone();
    with_flag.extend(["--ca-file".into(), ca_path.clone()]);
    let run = fleetauth(&with_flag, None).await;
    assert_eq!(run.code, 0, "--ca-file: {}", run.stderr);
    for var in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"] {
        let run = fleetauth_env(&args, None, &[(var, &ca_path)]).await;
        assert_eq!(run.code, 0, "{var}: {}", run.stderr);
    }
    assert_eq!(grants(&emu).values().sum::<u64>(), 12, "three runs of four");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_carries_every_grant_with_its_credentials_and_no_proxy_bypasses_it() {
    let users = usernames("proxy", 5);
    let (emu, ca, _dir) = tls_emulator(&users).await;
    let proxy = connect_proxy().await;
    let ws = Workspace::with_users(&users);
    let mut args = ws.grant_args(&emu, &["--force", "--json"]);
    args.extend(["--ca-file".into(), ca.display().to_string()]);
    let proxy_url = proxy
        .url
        .replace("http://", "http://ci-bot:s3cr3t-proxy-pw@");

    let run = fleetauth_env(&args, None, &[("HTTPS_PROXY", &proxy_url)]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(proxy.tunnels() >= 1, "no tunnel through the proxy");
    assert_eq!(grants(&emu).values().sum::<u64>(), 5);
    let auth = proxy.authorizations.lock().unwrap().clone();
    assert!(
        !auth.is_empty() && auth.iter().all(|a| a.starts_with("Basic ")),
        "the proxy credentials were sent: {auth:?}"
    );
    let mut seen = run.stdout + &run.stderr;
    seen.push_str(&std::fs::read_to_string(ws.out.join("report.json")).unwrap());
    assert!(
        !seen.contains("s3cr3t-proxy-pw"),
        "the proxy password leaked"
    );

    let tunnels = proxy.tunnels();
    let run = fleetauth_env(
        &args,
        None,
        &[("HTTPS_PROXY", &proxy_url), ("NO_PROXY", "127.0.0.1")],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(proxy.tunnels(), tunnels, "NO_PROXY bypasses the proxy");
    assert_eq!(grants(&emu).values().sum::<u64>(), 10);
}

// --- the canary --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_html_404_from_the_token_host_stops_the_run_after_one_request() {
    let fake = fake_endpoint(
        404,
        &[("Content-Type", "text/html")],
        b"<html><head><title>Not Found</title></head></html>".to_vec(),
    )
    .await;
    let users = usernames("html404", 30);
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args_to(&fake.url, &["--concurrency", "16"]), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(fake.requests(), 1);
    assert!(
        run.stderr.contains("stopped early")
            && run.stderr.contains("not a Salesforce token endpoint"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_rate_really_drops_after_login_rate_exceeded() {
    let users = usernames("ratedrop", 120);
    let mut cfg = config(&users);
    cfg.login_rate = Some(20);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &["--rate", "40", "--concurrency", "40", "--max-retries", "12"],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = emu.stats.snapshot();
    let limited = stats
        .answers
        .get("login rate exceeded")
        .copied()
        .unwrap_or(0);
    assert!(limited > 0, "the emulator never limited: {stats:?}");
    // Per whole second of the run: once limited, the run pauses and goes on at half its rate or
    // less. The pause is 5 s; the limit was hit in second k and its answer came back before
    // k + 2 (a margin of a whole second for a late answer and requests already on their way),
    // so seconds k + 2 to k + 4 see no request at all, wherever in its second the limit fell.
    let per_second = &stats.per_second;
    let first_limited = per_second
        .iter()
        .position(|&n| n > 20)
        .expect("a second over the limit");
    let after = &per_second[first_limited + 1..];
    assert!(
        after
            .get(1..4)
            .is_some_and(|pause| pause.iter().all(|&n| n == 0)),
        "no pause after the limit: {per_second:?}"
    );
    let mean = after.iter().sum::<u64>() as f64 / after.len().max(1) as f64;
    assert!(
        mean <= 20.0,
        "after `login rate exceeded` the run still sent {mean:.1} requests/s (asked: 40): {per_second:?}"
    );
}

// --- nothing silent ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn quiet_drops_the_summary_but_never_a_warning() {
    let emu = start(config(&["test-quiet1@example.com"])).await;
    let ws = Workspace::new(
        "orgs.csv",
        "test-quiet1@example.com\ntest-quiet1@example.com\n",
    );
    let run = fleetauth(&ws.grant_args(&emu, &["-q"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains("repeats"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(" authorized, "),
        "no summary: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_that_cannot_be_written_is_found_before_anything_is_sent() {
    let emu = start(config(&["test-rep1@example.com"])).await;
    let ws = Workspace::with_users(&["test-rep1@example.com".to_string()]);
    let blocker = ws.dir.path().join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let report = blocker.join("report.json").display().to_string();
    let run = fleetauth(
        &ws.grant_args(&emu, &["-q", "--json", "--report", &report]),
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot write") && run.stderr.contains("report.json"),
        "{}",
        run.stderr
    );
    let envelope: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(envelope["status"], 2);
    assert_eq!(emu.stats.snapshot().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn freshness_is_per_sink_and_per_identity() {
    let users = usernames("fresh", 3);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    assert_eq!(fleetauth(&ws.grant_args(&emu, &[]), None).await.code, 0);
    // Fresh in the out dir, but not in sf's state: --sf grants and writes them there.
    let home = ws.dir.path().join("home");
    let sf_home = home.display().to_string();
    let run = fleetauth(&ws.grant_args(&emu, &["--sf-home", &sf_home]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(grants(&emu).values().sum::<u64>(), 6);
    for u in &users {
        assert!(
            home.join(".sfdx").join(format!("{u}.json")).is_file(),
            "{u}"
        );
    }
    // Now fresh in both: skipped.
    let run = fleetauth(&ws.grant_args(&emu, &["--sf-home", &sf_home]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(grants(&emu).values().sum::<u64>(), 6);
    // Another audience is another identity: granted again.
    let run = fleetauth(
        &ws.grant_args(&emu, &["--audience", "https://login.salesforce.com"]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(grants(&emu).values().sum::<u64>(), 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_array_of_sf_org_list_is_read_and_dev_hubs_are_left_out_with_a_note() {
    let users = [
        "test-s1@example.com",
        "test-jwt1@example.com",
        "test-o1@example.com",
    ];
    let emu = start(config(&users)).await;
    let ws = Workspace::new(
        "orgs.json",
        &std::fs::read_to_string(fixture("lists/sf-org-list-all.json")).unwrap(),
    );
    let run = fleetauth(&ws.grant_args(&emu, &["--json"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = ws.report();
    let mut authorized: Vec<&str> = orgs(&report)
        .iter()
        .filter(|o| o["status"] == "authorized")
        .map(|o| o["username"].as_str().unwrap())
        .collect();
    authorized.sort();
    assert_eq!(
        authorized,
        [
            "test-jwt1@example.com",
            "test-o1@example.com",
            "test-s1@example.com"
        ]
    );
    let hub = orgs(&report)
        .iter()
        .find(|o| o["username"] == "hub@example.com")
        .expect("the Dev Hub is in the report");
    assert_eq!(hub["status"], "skipped");
    assert!(hub["note"].as_str().unwrap().contains("Dev Hub"), "{hub}");
    assert_eq!(
        emu.stats.snapshot().requests,
        3,
        "each org once, the hub never"
    );
}

// --- storage -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_or_shared_out_dir_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let emu = start(config(&["test-dir1@example.com"])).await;
    let ws = Workspace::with_users(&["test-dir1@example.com".to_string()]);
    let real = ws.dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, &ws.out).unwrap();
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    std::fs::remove_file(&ws.out).unwrap();
    std::fs::create_dir(&ws.out).unwrap();
    std::fs::set_permissions(&ws.out, std::fs::Permissions::from_mode(0o775)).unwrap();
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("chmod 700"), "{}", run.stderr);
    assert_eq!(emu.stats.snapshot().requests, 0);
    let _ = Duration::ZERO;
}

// --- the emulator answers as the recorded answers say ------------------------------------------

/// The emulator's answers are the files in fixtures/answers: each recorded OAuth error, scripted
/// for a user, comes back with the same status, content type and body; each fault page too.
#[tokio::test(flavor = "multi_thread")]
async fn the_emulator_answers_exactly_like_the_recorded_answers() {
    use fleetauth::emulator::answers::RawAnswer;
    use fleetauth::emulator::{Fault, Scripted};
    let key = fleetauth::credentials::load(Some(&fixture("keys/server.key")), |_| None).unwrap();
    let signer = fleetauth::assertion::Signer::new(
        key,
        CLIENT_ID.to_string(),
        "https://test.salesforce.com".to_string(),
    );
    let http = http();
    let post = |url: String, user: &str| {
        let assertion = signer.sign(user).unwrap();
        let form = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(),
            ),
            ("assertion", assertion.expose().clone()),
        ];
        http.post(format!("{url}/services/oauth2/token"))
            .form(&form)
            .send()
    };
    let same = |what: &str, recorded: &RawAnswer, status: u16, ct: &str, body: &str| {
        assert_eq!(status, recorded.status, "{what}");
        assert_eq!(Some(ct), recorded.header("content-type"), "{what}");
        let parsed = |b: &str| serde_json::from_str::<Value>(b).ok();
        match (parsed(body), parsed(&recorded.body)) {
            (Some(a), Some(b)) => assert_eq!(a, b, "{what}"),
            _ => assert_eq!(body, recorded.body, "{what}"),
        }
    };
    let root = fixture("answers");
    let mut checked = 0;
    for class in [
        "replication_delay",
        "rate_limited",
        "permanent",
        "fleet_wide",
        "transient",
    ] {
        for file in std::fs::read_dir(root.join(class)).unwrap() {
            let file = file.unwrap().path();
            let recorded = RawAnswer::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let Some(json) = serde_json::from_str::<Value>(&recorded.body)
                .ok()
                .filter(|j| j["error"].is_string())
            else {
                continue;
            };
            let user = "test-recorded@example.com";
            let mut cfg = config(&[user]);
            cfg.users.get_mut(user).unwrap().scripted = Some(Scripted {
                status: recorded.status,
                error: json["error"].as_str().unwrap().into(),
                description: json["error_description"].as_str().unwrap().into(),
            });
            let emu = start(cfg).await;
            let answer = post(emu.url(), user).await.unwrap();
            let status = answer.status().as_u16();
            let ct = answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            same(
                &file.display().to_string(),
                &recorded,
                status,
                &ct,
                &answer.text().await.unwrap(),
            );
            checked += 1;
        }
    }
    for (fault, name) in [
        (Fault::Maintenance, "transient/maintenance-503.http"),
        (Fault::NotReady, "transient/not-ready-420.http"),
        (Fault::Truncated, "transient/truncated-200.http"),
        (Fault::ServerError, "transient/unknown-error-500.http"),
    ] {
        let recorded =
            RawAnswer::parse(&std::fs::read_to_string(root.join(name)).unwrap()).unwrap();
        let user = "test-fault@example.com";
        let mut cfg = config(&[user]);
        cfg.faults = vec![(fault, 1.0)];
        let emu = start(cfg).await;
        let answer = post(emu.url(), user).await.unwrap();
        let status = answer.status().as_u16();
        let ct = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        same(name, &recorded, status, &ct, &answer.text().await.unwrap());
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} recorded answers checked");
}
