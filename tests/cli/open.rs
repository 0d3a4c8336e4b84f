//! `fleetauth open`: a single-use login link, asked of the emulator's singleaccess with the
//! org's token, checked, and handed over on stdout (or to a browser) only.

use crate::support::{self, Workspace};
use fleetauth::emulator::ScriptedLink;

const USER: &str = "test-open1@example.com";

async fn setup() -> (support::EmulatorHandle, Workspace) {
    let emu = support::start(support::config(&[USER])).await;
    let ws = Workspace::with_users(&[USER.to_string()]);
    std::fs::create_dir_all(ws.dir.path().join("home")).unwrap();
    (emu, ws)
}

/// HOME inside the workspace, so that any file the run writes is found by `all_files`.
fn home(ws: &Workspace) -> String {
    ws.dir.path().join("home").display().to_string()
}

/// The link must be in no file of the workspace (out dir, HOME) and not on stderr.
fn assert_link_kept(ws: &Workspace, link: &str, stderr: &str) {
    let otp = link
        .split("otp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(otp.len() >= 32, "a real one-time secret: {otp}");
    assert!(!stderr.contains(otp), "the link reached stderr: {stderr}");
    for file in ws.all_files() {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(otp),
            "the link reached {}",
            file.display()
        );
    }
}

#[tokio::test]
async fn url_only_prints_a_link_that_logs_in_once_and_is_kept_out_of_every_file() {
    let (emu, ws) = setup().await;
    let run = support::fleetauth_headless(
        &ws.open_args(&emu, USER, &["--url-only"]),
        &[("HOME", &home(&ws))],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let link = run.stdout.trim_end_matches('\n');
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "the link alone: {}",
        run.stdout
    );
    assert!(
        link.starts_with(&format!("{}/secur/frontdoor.jsp?otp=", emu.url())),
        "{link}"
    );
    support::assert_no_secret(&run.stdout, &emu.stats.snapshot().tokens);
    support::assert_no_secret(&run.stderr, &emu.stats.snapshot().tokens);
    assert_link_kept(&ws, link, &run.stderr);

    let (first, location, _) = support::http_get(link).await;
    assert_eq!(first, 302, "the first use logs in");
    assert_eq!(location.as_deref(), Some("/lightning/page/home"));
    let (second, _, body) = support::http_get(link).await;
    assert_eq!(second, 400, "a second use fails: {body}");
    let door = emu.frontdoor.snapshot();
    assert_eq!((door.issued, door.logins, door.refused), (1, 1, 1));
    assert_eq!(door.methods.get("POST"), Some(&1));
    assert_eq!(support::grants(&emu).get(USER), Some(&1));

    // Again with --path: the token is reused, and the link lands there.
    let path = "/lightning/setup/SetupOneHome/home";
    let run = support::fleetauth_headless(
        &ws.open_args(&emu, USER, &["--url-only", "--path", path]),
        &[("HOME", &home(&ws))],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (status, location, _) = support::http_get(run.stdout.trim()).await;
    assert_eq!((status, location.as_deref()), (302, Some(path)));
    assert_eq!(
        support::grants(&emu).get(USER),
        Some(&1),
        "reused, not granted"
    );
    assert_eq!(
        emu.frontdoor.snapshot().redirect_uris,
        [None, Some(path.to_string())]
    );
    assert_link_kept(&ws, run.stdout.trim(), &run.stderr);
}

#[tokio::test]
async fn a_hostile_singleaccess_answer_prints_nothing_and_fails_clearly() {
    let (emu, ws) = setup().await;
    let json = |v: serde_json::Value| v.to_string().into_bytes();
    let huge = format!(
        r#"{{"frontdoor_uri":"{}/secur/frontdoor.jsp?otp=abc","pad":"{}"}}"#,
        emu.url(),
        "x".repeat(200 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a foreign host",
            json(
                serde_json::json!({"frontdoor_uri": "https://evil.example.com/secur/frontdoor.jsp?otp=stolenstolenstolen"}),
            ),
            "evil.example.com",
        ),
        (
            "http to a non-loopback host",
            json(
                serde_json::json!({"frontdoor_uri": "http://acme.my.salesforce.com/secur/frontdoor.jsp?otp=stolenstolenstolen"}),
            ),
            "plain http",
        ),
        (
            "no frontdoor_uri",
            json(
                serde_json::json!({"url": "https://acme.my.salesforce.com/secur/frontdoor.jsp?otp=stolenstolenstolen"}),
            ),
            "no `frontdoor_uri`",
        ),
        (
            "a redirect elsewhere",
            json(
                serde_json::json!({"frontdoor_uri": format!("{}/secur/frontdoor.jsp?otp=stolenstolenstolen&retURL=https://evil.com", emu.url())}),
            ),
            "no --path was asked for",
        ),
        (
            "a session id in capitals",
            json(
                serde_json::json!({"frontdoor_uri": format!("{}/secur/frontdoor.jsp?otp=stolenstolenstolen&SID=x", emu.url())}),
            ),
            "session id",
        ),
        (
            "two otps",
            json(
                serde_json::json!({"frontdoor_uri": format!("{}/secur/frontdoor.jsp?otp=stolenstolenstolen&otp=def", emu.url())}),
            ),
            "more than once",
        ),
        (
            "another query key",
            json(
                serde_json::json!({"frontdoor_uri": format!("{}/secur/frontdoor.jsp?otp=stolenstolenstolen&next=x", emu.url())}),
            ),
            "query key other than",
        ),
        ("a huge body", huge.into_bytes(), "larger than 64 KiB"),
        (
            "not JSON",
            b"<html>otp=stolenstolenstolen</html>".to_vec(),
            "not JSON",
        ),
    ];
    for (what, body, says) in cases {
        emu.frontdoor.script(ScriptedLink {
            status: 200,
            content_type: "application/json".into(),
            body,
        });
        let run = support::fleetauth_headless(
            &ws.open_args(&emu, USER, &["--url-only"]),
            &[("HOME", &home(&ws))],
        )
        .await;
        assert_eq!(run.code, 1, "{what}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{what}: nothing is printed");
        assert!(
            run.stderr.contains("unexpected_response") && run.stderr.contains(says),
            "{what}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("stolen"),
            "{what}: the link is never echoed"
        );
        support::assert_no_secret(&run.stderr, &emu.stats.snapshot().tokens);
    }
}

#[tokio::test]
async fn a_path_with_a_scheme_or_host_is_refused_before_anything_is_sent() {
    let (emu, ws) = setup().await;
    for path in [
        "https://evil.example.com/x",
        "//evil.example.com",
        "/%2F%2Fevil.example.com",
        "/x//evil.example.com",
        "/..//evil.example.com",
        "/x/../../..//evil.example.com",
        "/%2e%2e%2f%2fevil.example.com",
    ] {
        let run = support::fleetauth_headless(
            &ws.open_args(&emu, USER, &["--url-only", "--path", path]),
            &[("HOME", &home(&ws))],
        )
        .await;
        assert_eq!(run.code, 2, "{path}: {}", run.stderr);
        assert!(run.stderr.contains("--path"), "{}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    assert_eq!(emu.stats.snapshot().requests, 0, "no token request");
    assert_eq!(
        emu.frontdoor.snapshot().requests,
        0,
        "no singleaccess request"
    );
}

#[tokio::test]
async fn without_a_browser_the_link_is_printed_and_stderr_says_so() {
    let (emu, ws) = setup().await;
    // Headless, then a $BROWSER that fails: both print the link and say why.
    let failing = ws.dir.path().join("failing-browser");
    std::fs::write(&failing, "#!/bin/sh\nexit 3\n").unwrap();
    make_executable(&failing);
    let failing = failing.display().to_string();
    for (envs, why) in [
        (vec![], "no display"),
        (vec![("BROWSER", failing.as_str())], "failed"),
        (vec![("CI", "true"), ("DISPLAY", ":0")], "CI"),
    ] {
        let mut envs = envs;
        let h = home(&ws);
        envs.push(("HOME", &h));
        let run = support::fleetauth_headless(&ws.open_args(&emu, USER, &[]), &envs).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout
                .starts_with(&format!("{}/secur/frontdoor.jsp?otp=", emu.url())),
            "the link on stdout: {}",
            run.stdout
        );
        assert!(
            run.stderr.contains("no browser can be opened here") && run.stderr.contains(why),
            "{why}: {}",
            run.stderr
        );
        assert_link_kept(&ws, run.stdout.trim(), &run.stderr);
    }
}

#[tokio::test]
async fn a_browser_gets_the_link_and_stdout_stays_empty() {
    let (emu, ws) = setup().await;
    // A "browser" that keeps what it was given, so the test can use the link once.
    let seen = ws.dir.path().join("seen");
    let script = ws.dir.path().join("browser");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", seen.display()),
    )
    .unwrap();
    make_executable(&script);
    let browser = script.display().to_string();
    let run = support::fleetauth_headless(
        &ws.open_args(&emu, USER, &[]),
        &[("BROWSER", &browser), ("HOME", &home(&ws))],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "", "the browser got it, stdout did not");
    assert!(run.stderr.contains("opened"), "{}", run.stderr);
    let link = std::fs::read_to_string(&seen).unwrap();
    assert!(!run.stderr.contains(&link));
    assert_eq!(support::http_get(&link).await.0, 302);
    assert_eq!(support::http_get(&link).await.0, 400);
}

#[tokio::test]
async fn json_and_github_formats_have_sf_s_and_the_runner_s_shapes() {
    let (emu, ws) = setup().await;
    let run = support::fleetauth_headless(
        &ws.open_args(&emu, USER, &["--json"]),
        &[("HOME", &home(&ws))],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(v["status"], 0);
    let (org_id, _) = fleetauth::emulator::ids_for(USER);
    assert_eq!(v["result"]["orgId"], org_id.as_str());
    assert_eq!(v["result"]["username"], USER);
    let url = v["result"]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/secur/frontdoor.jsp?otp=", emu.url())));
    assert!(v["warnings"].is_array());
    assert_eq!(
        support::http_get(url).await.0,
        302,
        "--json opened no browser"
    );

    let run = support::fleetauth_headless(
        &ws.open_args(&emu, USER, &["--format", "github"]),
        &[("HOME", &home(&ws))],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    let link = lines[1];
    assert_eq!(lines[0], format!("::add-mask::{link}"), "masked first");
    assert!(link.starts_with(&format!("{}/secur/frontdoor.jsp?otp=", emu.url())));
    assert_link_kept(&ws, link, &run.stderr);

    // A usage error with --json is still one JSON document on stdout.
    let run = support::fleetauth_headless(
        &ws.open_args(
            &emu,
            USER,
            &["--json", "--path", "https://evil.example.com"],
        ),
        &[("HOME", &home(&ws))],
    )
    .await;
    assert_eq!(run.code, 2);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("an error envelope");
    assert_eq!(v["status"], 2);
}

#[tokio::test]
async fn an_expired_session_is_granted_anew_once() {
    let (emu, ws) = setup().await;
    let args = ws.open_args(&emu, USER, &["--url-only"]);
    let first = support::fleetauth_headless(&args, &[("HOME", &home(&ws))]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(emu.expire_sessions() > 0);
    let run = support::fleetauth_headless(&args, &[("HOME", &home(&ws))]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("has expired"), "{}", run.stderr);
    assert_eq!(
        support::grants(&emu).get(USER),
        Some(&2),
        "granted once more"
    );
    let door = emu.frontdoor.snapshot();
    assert_eq!((door.unauthorized, door.issued), (1, 2));
    assert_eq!(support::http_get(run.stdout.trim()).await.0, 302);
    support::assert_no_secret(&run.stderr, &emu.stats.snapshot().tokens);
}

#[tokio::test]
async fn the_org_may_be_named_with_target_org_as_in_sf() {
    let (emu, ws) = setup().await;
    let mut args = ws.open_args(&emu, USER, &["--url-only"]);
    args.remove(1);
    args.splice(1..1, ["-o".to_string(), USER.to_string()]);
    let run = support::fleetauth_headless(&args, &[("HOME", &home(&ws))]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("/secur/frontdoor.jsp?otp="));
    let both = ws.open_args(&emu, USER, &["--url-only", "-o", USER]);
    let run = support::fleetauth_headless(&both, &[("HOME", &home(&ws))]).await;
    assert_eq!(run.code, 2, "USER and -o USER together: {}", run.stderr);
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn open_has_help_with_examples_and_its_own_man_page() {
    let help = support::fleetauth(&["open".into(), "--help".into()], None).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("--url-only"));
    let man = support::fleetauth(&["man".into(), "open".into()], None).await;
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(
        man.stdout.contains(".TH fleetauth-open 1"),
        "{}",
        man.stdout
    );
    assert!(man.stdout.contains("url\\-only"));
    let none = support::fleetauth(&["man".into(), "nosuch".into()], None).await;
    assert_eq!(none.code, 2);
}

/// `open` with `args`, headless, stdout closed (`>&-`) or, with `full`, on /dev/full.
async fn open_without_stdout(args: Vec<String>, ws: &Workspace, full: bool) -> support::Run {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = support::command(args);
    let h = home(ws);
    for (k, v) in [
        ("DISPLAY", ""),
        ("WAYLAND_DISPLAY", ""),
        ("BROWSER", ""),
        ("CI", ""),
        ("GITHUB_ACTIONS", ""),
        ("HOME", h.as_str()),
    ] {
        cmd.env(k, v);
    }
    if full {
        cmd.stdout(std::fs::File::create("/dev/full").unwrap());
    } else {
        // SAFETY: close only touches the child's own descriptor table.
        unsafe {
            cmd.as_std_mut().pre_exec(|| {
                libc::close(1);
                Ok(())
            });
        }
    }
    support::finish(cmd.spawn().unwrap()).await
}

#[tokio::test]
async fn into_a_closed_stdout_no_link_is_issued_and_open_fails() {
    let (emu, ws) = setup().await;
    for extra in [
        &["--url-only"][..],
        &["--json"],
        &["--format", "github"],
        // Headless: the link would be printed instead of opened.
        &[],
    ] {
        let run = open_without_stdout(ws.open_args(&emu, USER, extra), &ws, false).await;
        assert_eq!(run.code, 1, "{extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("stdout") && run.stderr.contains("closed"),
            "{extra:?}: {}",
            run.stderr
        );
    }
    assert_eq!(
        emu.frontdoor.snapshot().requests,
        0,
        "no link was asked for"
    );
    assert_eq!(emu.stats.snapshot().requests, 0, "no token was asked for");
}

#[tokio::test]
async fn a_link_that_cannot_be_written_fails() {
    let (emu, ws) = setup().await;
    for extra in [&["--url-only"][..], &["--json"], &["--format", "github"]] {
        let run = open_without_stdout(ws.open_args(&emu, USER, extra), &ws, true).await;
        assert_eq!(run.code, 1, "{extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("cannot write the link to stdout"),
            "{extra:?}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("otp="),
            "never the link: {}",
            run.stderr
        );
    }
}
