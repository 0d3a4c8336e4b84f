//! Keys and secrets: encrypted keys, the certificate check, and no secret in any output.

use std::time::Duration;

use fleetauth::emulator::{Fault, Scripted};

use crate::support::*;

// --- secrets -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn no_token_or_key_bytes_reach_stdout_stderr_or_the_reports() {
    let users = usernames("secret", 6);
    let mut cfg = config(&users);
    // A per-org permanent error (the canary is the first org: keep it healthy).
    cfg.users.get_mut(&users[5]).unwrap().scripted = Some(Scripted {
        status: 400,
        error: "inactive_user".into(),
        description: "user is inactive".into(),
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

// --- keys --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_key_is_opened_with_the_passphrase_from_the_named_variable() {
    let emu = start(config(&["test-enc1@example.com"])).await;
    let ws = Workspace::with_users(&["test-enc1@example.com".to_string()]);
    let mut args = ws.grant_args(&emu, &["--jwt-key-passphrase-env", "HUB_KEY_PASS"]);
    set_flag(
        &mut args,
        "-f",
        fixture("keys/server.encrypted.key").display().to_string(),
    );
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
    set_flag(
        &mut args,
        "-f",
        fixture("keys/other.key").display().to_string(),
    );
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
    drop_flag(&mut args, "-f");
    let pem = fleetauth::emulator::test_keys::PRIVATE_KEY;
    let run = fleetauth_env(&args, None, &[("SFDX_HUB_KEY", pem)]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = format!("{}{}", run.stdout, run.stderr);
    assert!(pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .all(|l| !seen.contains(l)));
}

/// Key text pasted where a path or a variable's name was expected (`-f "$(cat server.key)"`,
/// `-f "$(base64 -w0 server.key)"`, the passphrase for `--jwt-key-passphrase-env`) is refused
/// without being quoted: not on stderr, not in the `--json` envelope, not in `check`'s verdict.
#[tokio::test(flavor = "multi_thread")]
async fn key_text_given_for_a_path_or_a_name_is_never_quoted() {
    let ws = Workspace::with_users(&usernames("pasted", 1));
    let pem = std::fs::read_to_string(&ws.key).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&pem)
    };
    let list = ws.list.display().to_string();
    let base = |command: &str, flag: &str, value: &str| -> Vec<String> {
        let mut args: Vec<String> = [command, &list, "-i", "3MVG9pasted"]
            .map(String::from)
            .to_vec();
        args.extend([flag.to_string(), value.to_string()]);
        args.extend([
            "-r".to_string(),
            "http://127.0.0.1:9".to_string(),
            "--json".to_string(),
        ]);
        args
    };
    let passphrase = "MyS3cretPassphrase!";
    for (args, why) in [
        (base("grant", "-f", &pem), "PEM text for -f"),
        (base("grant", "--jwt-key-file", &b64), "base64 for -f"),
        (base("grant", "-f", &body), "the key's body for -f"),
        (base("check", "-f", &b64), "check: base64 for -f"),
        (
            {
                let mut args = base("check", "-f", ws.key.to_str().unwrap());
                set_flag(&mut args, "-i", b64.clone());
                args
            },
            "base64 key text for -i",
        ),
        (
            {
                let mut args = base("grant", "-f", ws.key.to_str().unwrap());
                args.retain(|a| a != "-i" && a != "3MVG9pasted");
                args.push(format!("--client-id={pem}"));
                args
            },
            "PEM key text for -i",
        ),
        (
            [
                base("grant", "-f", ws.key.to_str().unwrap()),
                vec!["--jwt-key-passphrase-env".into(), passphrase.into()],
            ]
            .concat(),
            "the passphrase for its variable's name",
        ),
    ] {
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 2, "{why}: {}", run.stderr);
        let out = format!("{}{}", run.stdout, run.stderr);
        for secret in [
            &body[..24],
            &b64[..24],
            &body[body.len() - 24..],
            passphrase,
        ] {
            assert!(!out.contains(secret), "{why}: {secret} shown in {out}");
        }
        assert!(!out.contains("PRIVATE KEY"), "{why}: {out}");
    }
}

/// A key, certificate or CA file that is a FIFO or a device is refused at once (exit 2, with
/// what it is), never read: a FIFO would block the run past every signal, `/dev/zero` would
/// fill the memory. A trust variable naming one warns, as any unusable trust setting does.
#[tokio::test(flavor = "multi_thread")]
async fn key_cert_and_ca_paths_naming_a_fifo_or_a_device_are_refused_unread() {
    let ws = Workspace::with_users(&usernames("fifo", 1));
    let fifo = ws.dir.path().join("key.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo = fifo.display().to_string();
    let key = ws.key.display().to_string();
    let list = ws.list.display().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["check", &list, "-i", "3MVG9fifo"]
            .map(String::from)
            .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    for (extra, what) in [
        (vec!["-f", &fifo], "FIFO"),
        (vec!["-f", "/dev/zero"], "device"),
        (vec!["-f", &key, "--cert", &fifo], "FIFO"),
        (vec!["-f", &key, "--ca-file", "/dev/zero"], "device"),
    ] {
        let run = tokio::time::timeout(Duration::from_secs(60), fleetauth(&args(&extra), None))
            .await
            .expect("a FIFO or a device must not hang the run");
        assert_eq!(run.code, 2, "{extra:?}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(what) || run.stderr.contains(what),
            "{extra:?}: {}{}",
            run.stdout,
            run.stderr
        );
    }
    let run = fleetauth_env(
        &args(&["-f", &key]),
        None,
        &[("NODE_EXTRA_CA_CERTS", &fifo)],
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("NODE_EXTRA_CA_CERTS is ignored") && run.stdout.contains("FIFO"),
        "{}",
        run.stdout
    );
}
