//! Where an assertion or a secret can go, after an outside review (issue 16, items 1, 4, 5, 6):
//! loopback in data only for a loopback token host, a token of any session-id alphabet redacted
//! everywhere, a proxy that is unusable or refuses its credentials, a CA setting that is ignored.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::orgs;
use crate::support::*;

/// A local port nothing listens on: any https request of a run goes there through
/// `HTTPS_PROXY` and is refused, so a test can name a real Salesforce host as the token host
/// and still never leave 127.0.0.1.
async fn dead_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

// --- 1. loopback in data only when the token host is loopback ----------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_row_gets_no_assertion_when_the_token_host_is_not_loopback() {
    let user = "test-loop1@example.com";
    let emu = start(config(&[user])).await;
    let dead = dead_port().await;
    for (name, url) in [
        ("plain http", emu.url()),
        ("localhost", emu.url().replace("127.0.0.1", "localhost")),
        ("https", emu.url().replace("http://", "https://")),
    ] {
        let ws = Workspace::new("orgs.csv", &format!("username,instanceUrl\n{user},{url}\n"));
        let args = ws.grant_args_to("https://test.salesforce.com", &[]);
        let run = fleetauth_env(&args, None, &[("HTTPS_PROXY", &dead)]).await;
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("orgs.csv:line 2") && run.stderr.contains("loopback"),
            "{name}: {}",
            run.stderr
        );
        assert_eq!(emu.stats.snapshot().requests, 0, "{name}: nothing was sent");
    }
    // The same row with a loopback token host is the user's own emulator: it is granted.
    let ws = Workspace::new(
        "orgs.csv",
        &format!("username,instanceUrl\n{user},{}\n", emu.url()),
    );
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(grants(&emu).get(user), Some(&1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handed_over_report_naming_loopback_sends_nothing_to_it() {
    let user = "test-loop2@example.com";
    let emu = start(config(&[user])).await;
    let dead = dead_port().await;
    let ws = Workspace::with_users(&[user.to_string()]);
    std::fs::create_dir_all(&ws.out).unwrap();
    std::fs::write(
        ws.out.join("report.json"),
        serde_json::json!({"orgs": [{
            "username": user, "alias": "ci1", "status": "authorized",
            "instanceUrl": emu.url(), "tokenHost": emu.url(),
        }]})
        .to_string(),
    )
    .unwrap();
    let mut args = ws.token_args(&emu, "ci1", &[]);
    set_flag(&mut args, "-r", "https://test.salesforce.com");
    let run = fleetauth_env(&args, None, &[("HTTPS_PROXY", &dead)]).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("loopback"), "{}", run.stderr);
    assert_eq!(emu.stats.snapshot().requests, 0, "nothing was sent");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

// --- 4. a token of any session-id character is redacted whole ----------------------------------

/// A session id holding `/` (and every other character one may hold), each piece unique.
const SLASHED: &str =
    "00D5g000000SlAs!AQ0AQSlashOne/SlashTwoPart~Third+Fourth=/Fifth.Sixth_Seven-Eight";

fn pieces() -> Vec<&'static str> {
    SLASHED
        .split(['!', '/', '~', '+', '=', '.', '_', '-'])
        .filter(|p| p.len() >= 4)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slashed_token_echoed_by_a_server_reaches_no_output() {
    let bodies = [
        (
            400,
            "application/json",
            serde_json::json!({"error": "invalid_grant", "error_description": format!("bad session {SLASHED} here")}).to_string(),
        ),
        (
            500,
            "text/html",
            format!("<html><title>oops {SLASHED}</title></html>"),
        ),
        (
            400,
            "application/json",
            serde_json::json!({"error": "invalid_grant", "error_description": format!("see https://h.example/x?sid={SLASHED}")}).to_string(),
        ),
        (
            400,
            "application/json",
            serde_json::json!({"error": "invalid_grant", "error_description": format!("see https://h.example/id/{SLASHED}/x")}).to_string(),
        ),
    ];
    for (status, ct, body) in bodies {
        let fake = fake_endpoint(status, &[("Content-Type", ct)], body.into_bytes()).await;
        let users = usernames("slash", 2);
        let ws = Workspace::with_users(&users);
        let dir = ws.dir.path();
        let (csv, md, junit) = (
            dir.join("report.csv"),
            dir.join("summary.md"),
            dir.join("junit.xml"),
        );
        let step = dir.join("step-summary.md");
        let mut args =
            ws.grant_args_to(&fake.url, &["--max-retries", "0", "--json", "--summary-md"]);
        args.push(md.display().to_string());
        args.extend(["--junit".into(), junit.display().to_string()]);
        let run = fleetauth_env(
            &args,
            None,
            &[("GITHUB_STEP_SUMMARY", step.to_str().unwrap())],
        )
        .await;
        assert_ne!(run.code, 0, "{}", run.stderr);
        // The same run as CSV.
        args.extend([
            "--report".into(),
            csv.display().to_string(),
            "--force".into(),
        ]);
        let csv_run = fleetauth(&args, None).await;
        let mut seen = run.stdout + &run.stderr + &csv_run.stdout + &csv_run.stderr;
        for file in [&csv, &md, &junit, &step] {
            seen.push_str(
                &std::fs::read_to_string(file)
                    .unwrap_or_else(|e| panic!("{} was written: {e}", file.display())),
            );
        }
        for entry in std::fs::read_dir(&ws.out).unwrap() {
            seen.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
        }
        assert!(seen.contains("[redacted]"), "{seen}");
        for piece in pieces() {
            assert!(
                !seen.contains(piece),
                "{status} {ct}: `{piece}` of the token leaked:\n{seen}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_arabic_letter_mark_in_server_text_is_escaped() {
    let body = serde_json::json!({"error": "invalid_grant", "error_description": "user \u{61c}nosrever\u{2069} x"}).to_string();
    let fake = fake_endpoint(
        400,
        &[("Content-Type", "application/json")],
        body.into_bytes(),
    )
    .await;
    let ws = Workspace::with_users(&usernames("bidi", 1));
    let run = fleetauth(&ws.grant_args_to(&fake.url, &["--max-retries", "0"]), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = std::fs::read_to_string(ws.out.join("report.json")).unwrap();
    for text in [&run.stderr, &report] {
        assert!(
            !text.contains('\u{61c}') && !text.contains('\u{2069}'),
            "{text}"
        );
    }
    assert!(run.stderr.contains("\\u{61c}"), "{}", run.stderr);
}

// --- 5. proxies: unusable settings, refused credentials, ignored CA settings --------------------

const PROXY_PASSWORD: &str = "s3cr3t-proxy-pw";

/// A proxy on 127.0.0.1 that answers every request (a CONNECT or a forwarded one) with 407,
/// and counts them.
struct RefusingProxy {
    addr: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RefusingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RefusingProxy {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0_u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = stream
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://ci-bot:{PROXY_PASSWORD}@{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_407_is_tried_once_names_the_proxy_and_stops_the_fleet() {
    let emu = start(config(&usernames("p407", 4))).await;
    // Through a CONNECT tunnel (https, HTTPS_PROXY or ALL_PROXY) and through a forwarding
    // proxy (plain http to the emulator, HTTP_PROXY).
    let https_host = emu.url().replace("http://", "https://");
    for (var, host) in [
        ("HTTPS_PROXY", https_host.as_str()),
        ("all_proxy", https_host.as_str()),
        ("HTTP_PROXY", emu.url().as_str()),
    ] {
        let proxy = RefusingProxy::start().await;
        let ws = Workspace::with_users(&usernames("p407", 4));
        let run = fleetauth_env(
            &ws.grant_args_to(host, &["--json"]),
            None,
            &[(var, &proxy.url())],
        )
        .await;
        assert_eq!(run.code, 1, "{var}: {}", run.stderr);
        assert_eq!(proxy.requests(), 1, "{var}: one attempt, never retried");
        let report = ws.report();
        let first = &orgs(&report)[0];
        assert_eq!(
            first["error"]["code"], "proxy_auth_required",
            "{var}: {first}"
        );
        assert_eq!(first["attempts"], 1, "{var}: {first}");
        let hint = first["error"]["hint"].as_str().unwrap();
        assert!(
            hint.contains(&proxy.addr) && hint.contains(var),
            "{var}: {hint}"
        );
        assert_eq!(report["summary"]["authorized"], 0, "{var}");
        let mut seen = run.stdout + &run.stderr;
        for entry in std::fs::read_dir(&ws.out).unwrap() {
            seen.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
        }
        assert!(seen.contains(&proxy.addr), "{var}: the fix names the proxy");
        assert!(
            !seen.contains(PROXY_PASSWORD) && !seen.contains("ci-bot"),
            "{var}: the proxy credentials leaked:\n{seen}"
        );
    }
    assert_eq!(emu.stats.snapshot().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unparsable_proxy_variable_is_a_setup_error_and_nothing_is_sent() {
    let users = usernames("badproxy", 2);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
    ] {
        for value in [
            format!("http://ci-bot:{PROXY_PASSWORD}@proxy.corp:notaport"),
            format!("socks5://ci-bot:{PROXY_PASSWORD}@proxy.corp:1080"),
        ] {
            let run = fleetauth_env(&ws.grant_args(&emu, &[]), None, &[(var, &value)]).await;
            assert_eq!(run.code, 2, "{var}={value}: {}", run.stderr);
            assert!(run.stderr.contains(var), "{var}: {}", run.stderr);
            assert!(
                !run.stderr.contains(PROXY_PASSWORD) && !run.stdout.contains(PROXY_PASSWORD),
                "{var}: {}",
                run.stderr
            );
        }
    }
    // `token` and `check` refuse it the same way.
    let value = format!("http://ci-bot:{PROXY_PASSWORD}@proxy.corp:notaport");
    let run = fleetauth_env(
        &ws.token_args(&emu, &users[0], &[]),
        None,
        &[("HTTPS_PROXY", &value)],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty() && !run.stderr.contains(PROXY_PASSWORD));
    assert_eq!(emu.stats.snapshot().requests, 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_ssl_cert_file_is_warned_about_by_every_command_even_quiet() {
    let users = usernames("sslfile", 1);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let missing = ws.dir.path().join("no-such-ca.pem");
    let env = [("SSL_CERT_FILE", missing.to_str().unwrap())];
    let run = fleetauth_env(&ws.grant_args(&emu, &["-q"]), None, &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("SSL_CERT_FILE"),
        "grant: {}",
        run.stderr
    );
    let run = fleetauth_env(&ws.token_args(&emu, &users[0], &[]), None, &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("SSL_CERT_FILE"),
        "token: {}",
        run.stderr
    );
    let mut check = ws.grant_args(&emu, &[]);
    check[0] = "check".into();
    drop_flag(&mut check, "--out-dir");
    let run = fleetauth_env(&check, None, &env).await;
    assert!(
        (run.stdout.clone() + &run.stderr).contains("SSL_CERT_FILE"),
        "check: {}{}",
        run.stdout,
        run.stderr
    );
}
