//! keygen, check, shards, completions and the man page.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use fleetauth::emulator::User;
use serde_json::Value;

use crate::support::*;

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
    set_flag(
        &mut grant,
        "-f",
        dir.join("server.key").display().to_string(),
    );
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
    drop_flag(&mut args, "--out-dir");
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
    set_flag(
        &mut mismatch,
        "-f",
        fixture("keys/other.key").display().to_string(),
    );
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
    set_flag(&mut wrong, "-i", "3MVGwrong");
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
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let mut covered = 0;
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let mut args = ws.grant_args(&emu, &["--shard", &shard, "--rate", "100"]);
        set_flag(
            &mut args,
            "--out-dir",
            ws.dir.path().join(format!("out{k}")).display().to_string(),
        );
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
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    for sub in [
        "grant", "check", "keygen", "login", "emulate", "bench", "token",
    ] {
        let help = fleetauth(&[sub.to_string(), "--help".to_string()], None).await;
        assert!(
            help.stdout.contains("Example"),
            "{sub} --help has no example"
        );
    }
}

/// The README's first command, end to end: the demo grants every emulated org and exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("demo-out");
    let run = fleetauth(
        &[
            "demo".to_string(),
            "--orgs".to_string(),
            "12".to_string(),
            "--max-delay".to_string(),
            "1s".to_string(),
            "--out-dir".to_string(),
            dir.display().to_string(),
        ],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("12 authorized"), "{}", run.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["authorized"], 12);
}
