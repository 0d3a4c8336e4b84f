//! The out dir and what lives in it: one auth file per org whatever the username's spelling,
//! outputs that may not land on the out dir's own files, `token`'s lock, and the keys and login
//! URLs handed to the Salesforce CLI.

use std::path::Path;
use std::time::Duration;

use fleetauth::emulator::{EmulatorHandle, User};
use serde_json::Value;

use crate::orgs;
use crate::support::sf::sf_json;
use crate::support::*;

fn total_grants(emu: &EmulatorHandle) -> u64 {
    grants(emu).values().sum()
}

/// An emulator that knows every username, in any spelling.
async fn any_user_emulator() -> EmulatorHandle {
    let mut config = empty_config();
    config.any_user = Some(Duration::ZERO);
    start(config).await
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Wait (at most a minute) until `done` holds, checking on each emulator request or file
/// change a test waits for; fails the test with `what` otherwise.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- one auth file per org ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn two_spellings_of_one_username_share_one_auth_file_and_its_alias() {
    let emu = any_user_emulator().await;
    let ws = Workspace::new("orgs.csv", "username,alias\nTest.User@Example.com,ci1\n");
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    // The next night's list spells the username as `sf org list` shows it.
    std::fs::write(&ws.list, "username,alias\ntest.user@example.com,ci1\n").unwrap();
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        total_grants(&emu),
        1,
        "the org's fresh auth file was found under the other spelling: {}",
        run.stderr
    );
    assert_eq!(
        ws.auth_files(),
        vec![ws.out.join("test.user@example.com.json")],
        "one auth file, named as sf looks the org up"
    );
    assert_eq!(ws.report()["orgs"][0]["status"], "skipped");

    let run = fleetauth(&ws.token_args(&emu, "ci1", &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("{}\n", ws.auth_token("test.user@example.com"))
    );
    assert_eq!(total_grants(&emu), 1, "token reused the file");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auth_file_under_another_spelling_is_replaced_not_duplicated() {
    let emu = any_user_emulator().await;
    let ws = Workspace::new("orgs.csv", "username,alias\nmixed.case@example.com,m1\n");
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // An earlier version named the file as the list spelled the username.
    let lower = ws.out.join("mixed.case@example.com.json");
    let upper = ws.out.join("Mixed.Case@Example.com.json");
    std::fs::rename(&lower, &upper).unwrap();

    // `token` finds it in any spelling, and reuses it.
    let run = fleetauth(&ws.token_args(&emu, "MIXED.CASE@example.com", &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&upper).unwrap();
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        run.stdout,
        format!("{}\n", stored["accessToken"].as_str().unwrap())
    );
    assert_eq!(total_grants(&emu), 1);

    // A new grant replaces it: one file, under the name sf would look up.
    let run = fleetauth(&ws.grant_args(&emu, &["--force"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(total_grants(&emu), 2);
    assert_eq!(ws.auth_files(), vec![lower.clone()], "{}", run.stderr);
    let report = ws.report();
    assert_eq!(orgs(&report)[0]["authFile"], lower.display().to_string());
}

// --- keys and login URLs handed to sf ---------------------------------------------------------

/// `grant --sf --sf-home <home>` with the hub key in `$SFDX_HUB_KEY` (no `-f`).
fn grant_with_env_key(ws: &Workspace, emu: &EmulatorHandle, home: &str) -> Vec<String> {
    let mut args = ws.grant_args(emu, &["--sf", "--sf-home", home]);
    drop_flag(&mut args, "-f");
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_key_in_sfdx_hub_key_leaves_the_first_for_sfs_refreshes() {
    let users = usernames("twokeys", 1);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let home = ws.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let first_key = std::fs::read_to_string(&ws.key).unwrap();
    let args = grant_with_env_key(&ws, &emu, home.to_str().unwrap());
    let run = fleetauth_env(&args, None, &[("SFDX_HUB_KEY", &first_key)]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let recorded = read_json(&home.join(format!(".sfdx/{}.json", users[0])));
    let private_key = recorded["privateKey"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(&private_key).unwrap(), first_key);

    // Another pipeline on the same machine runs with another key (here one the connected app
    // does not know: its grants fail, but the key was handed to sf before anything was sent).
    let other_key = std::fs::read_to_string(fixture("keys/other.key")).unwrap();
    let mut again = args.clone();
    again.push("--force".into());
    let run = fleetauth_env(&again, None, &[("SFDX_HUB_KEY", &other_key)]).await;
    assert_ne!(run.code, 0, "the other key cannot grant: {}", run.stderr);
    assert!(
        std::fs::read_to_string(&private_key).unwrap() == first_key,
        "the first org's key file was replaced"
    );
    let keys: Vec<_> = std::fs::read_dir(home.join(".sfdx"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".key"))
        .collect();
    assert_eq!(keys.len(), 2, "one key file per key");

    // sf still refreshes the first org with the first key.
    assert!(emu.expire_sessions() > 0);
    let out = sf_json(
        &home,
        &[
            "data",
            "query",
            "-q",
            "SELECT Id FROM Organization",
            "-o",
            &users[0],
        ],
    );
    assert_eq!(out["status"], 0, "sf refreshed with the first key: {out}");
    assert_eq!(
        emu.stats.snapshot().grants[&users[0]],
        2,
        "through a new JWT grant"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relative_sf_home_records_an_absolute_private_key() {
    let users = usernames("relhome", 1);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    std::fs::create_dir(ws.dir.path().join("home")).unwrap();
    let key = std::fs::read_to_string(&ws.key).unwrap();
    let args = grant_with_env_key(&ws, &emu, "home");
    let run = fleetauth_in(Some(ws.dir.path()), &args, None, &[("SFDX_HUB_KEY", &key)]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let recorded = read_json(&ws.dir.path().join(format!("home/.sfdx/{}.json", users[0])));
    let private_key = recorded["privateKey"].as_str().unwrap();
    assert!(
        Path::new(private_key).is_absolute(),
        "sf cannot find {private_key} from another directory"
    );
    assert_eq!(std::fs::read_to_string(private_key).unwrap(), key);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiving_job_records_the_instance_it_granted_at_as_sfs_login_url() {
    let users = usernames("recvlogin", 1);
    let emu = start(config(&users)).await;
    // Job A grants the org and hands over report.json.
    let a = Workspace::with_users(&users);
    let run = fleetauth(&a.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = std::fs::read_to_string(a.out.join("report.json")).unwrap();

    // Job B's token host knows none of the orgs: each is granted at its own instance.
    let elsewhere = start(empty_config()).await;
    let b = Workspace::new("report.json", &report);
    let home = b.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let run = fleetauth_env(
        &b.grant_args(&elsewhere, &["--sf", "--sf-home", home.to_str().unwrap()]),
        None,
        &[("HOME", home.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(total_grants(&elsewhere), 0);
    let recorded = read_json(&home.join(format!(".sfdx/{}.json", users[0])));
    assert_eq!(recorded["loginUrl"], format!("{}/", emu.url()));

    // Once the session lapses, sf refreshes it where it was granted.
    assert!(emu.expire_sessions() > 0);
    let out = sf_json(
        &home,
        &[
            "data",
            "query",
            "-q",
            "SELECT Id FROM Organization",
            "-o",
            &users[0],
        ],
    );
    assert_eq!(out["status"], 0, "sf refreshed the org: {out}");
    assert_eq!(emu.stats.snapshot().grants[&users[0]], 3);
}

// --- aliases -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_alias_prefix_giving_another_orgs_alias_is_an_input_error() {
    let users = usernames("prefix", 2);
    let emu = start(config(&users)).await;
    // `--alias-prefix fleet` gives the second org `fleet2`, which the list gives the first.
    let ws = Workspace::new(
        "orgs.csv",
        &format!("username,alias\n{},fleet2\n{},\n", users[0], users[1]),
    );
    let home = ws.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &[
                "--sf",
                "--sf-home",
                home.to_str().unwrap(),
                "--alias-prefix",
                "fleet",
            ],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("fleet2") && run.stderr.contains("--alias-prefix"),
        "{}",
        run.stderr
    );
    assert_eq!(emu.stats.snapshot().requests, 0, "nothing was sent");
    // The prefix alias of an org that the list gives the same org is no conflict.
    std::fs::write(
        &ws.list,
        format!("username,alias\n{},fleet1\n{},\n", users[0], users[1]),
    )
    .unwrap();
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &[
                "--sf",
                "--sf-home",
                home.to_str().unwrap(),
                "--alias-prefix",
                "fleet",
            ],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

// --- output paths ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn outputs_naming_the_out_dirs_own_files_or_the_list_are_refused_before_anything_is_sent() {
    let users = usernames("paths", 1);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let auth = ws.out.join(format!("{}.json", users[0]));
    let report = ws.out.join("report.json");
    let snapshot = |p: &Path| std::fs::read(p).unwrap_or_default();
    let (auth_before, report_before, list_before) =
        (snapshot(&auth), snapshot(&report), snapshot(&ws.list));
    let linked = ws.dir.path().join("linked.csv");
    std::fs::hard_link(&ws.list, &linked).unwrap();
    let through = ws.out.join("..").join("out").join("report.json");
    let upper = ws.out.join(format!("{}.json", users[0].to_uppercase()));

    let cases: Vec<(&str, String)> = vec![
        ("--summary-md", auth.display().to_string()),
        ("--summary-md", upper.display().to_string()),
        ("--junit", report.display().to_string()),
        ("--junit", through.display().to_string()),
        (
            "--report",
            ws.out.join(".fleetauth.lock").display().to_string(),
        ),
        ("--report", ws.list.display().to_string()),
        ("--summary-md", linked.display().to_string()),
        ("--report", ws.out.join("failed.csv").display().to_string()),
        (
            "--junit",
            ws.out.join("other@example.com.json").display().to_string(),
        ),
    ];
    let requests = emu.stats.snapshot().requests;
    for (flag, path) in &cases {
        let run = fleetauth(&ws.grant_args(&emu, &["--force", flag, path]), None).await;
        assert_eq!(run.code, 2, "{flag} {path}: {}", run.stderr);
        assert!(
            run.stderr.contains(flag.trim_start_matches('-'))
                && run.stderr.contains("nothing was sent"),
            "{flag} {path}: {}",
            run.stderr
        );
        assert_eq!(
            emu.stats.snapshot().requests,
            requests,
            "{flag} {path}: sent"
        );
    }
    assert_eq!(snapshot(&auth), auth_before);
    assert_eq!(snapshot(&report), report_before);
    assert_eq!(snapshot(&ws.list), list_before);
    assert!(!upper.exists());

    // Two outputs on one file are refused too.
    let md = ws.dir.path().join("ci.out");
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &[
                "--force",
                "--summary-md",
                md.to_str().unwrap(),
                "--junit",
                md.to_str().unwrap(),
            ],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);

    // `token USERNAME` needs no report.json: a broken one changes nothing.
    std::fs::write(&report, "<testsuites/>").unwrap();
    let run = fleetauth(&ws.token_args(&emu, &users[0], &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{}\n", ws.auth_token(&users[0])));
}

// --- token and the out dir's lock --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn token_reuses_a_fresh_file_while_another_token_holds_the_lock_granting() {
    let users = usernames("lockreuse", 2);
    let mut config = config(&users[..1]);
    // The second org is never ready: its `token` keeps the out dir's lock while it waits.
    config.users.insert(
        users[1].clone(),
        User {
            replication_delay: Duration::from_secs(3600),
            ..User::default()
        },
    );
    let emu = start(config).await;
    let ws = Workspace::new("orgs.csv", &format!("username,alias\n{},ready\n", users[0]));
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let mut waiting = command(ws.token_args(&emu, &users[1], &[]))
        .spawn()
        .unwrap();
    let emu_stats = std::sync::Arc::clone(&emu.stats);
    let slow = users[1].clone();
    wait_until("the second org's token sends its first request", || {
        emu_stats
            .snapshot()
            .attempts
            .get(&slow)
            .copied()
            .unwrap_or(0)
            >= 1
    })
    .await;

    let run = fleetauth(&ws.token_args(&emu, "ready", &[]), None).await;
    assert_eq!(run.code, 0, "the reuse waited for the lock: {}", run.stderr);
    assert_eq!(run.stdout, format!("{}\n", ws.auth_token(&users[0])));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the other token is still granting"
    );
    waiting.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tokens_for_one_org_grant_it_once() {
    let users = usernames("lockonce", 1);
    let mut config = config(&users);
    config.users.insert(
        users[0].clone(),
        User {
            replication_delay: Duration::from_secs(2),
            ..User::default()
        },
    );
    let emu = start(config).await;
    let ws = Workspace::with_users(&users);
    let args = ws.token_args(&emu, &users[0], &[]);
    let (first, second) = tokio::join!(
        finish(command(&args).spawn().unwrap()),
        finish(command(&args).spawn().unwrap()),
    );
    assert_eq!(
        (first.code, second.code),
        (0, 0),
        "{}{}",
        first.stderr,
        second.stderr
    );
    assert_eq!(
        total_grants(&emu),
        1,
        "the second found the first's fresh file"
    );
    assert_eq!(first.stdout, second.stdout);
}

/// A re-run repairs sf's state: an org whose sf auth file no longer reads, or whose alias is
/// gone from alias.json, is granted again, though its out-dir file is fresh; the others are not.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_grants_again_what_sfs_state_lost_and_skips_the_rest() {
    let users = usernames("repair", 3);
    let emu = start(config(&users)).await;
    let list = format!(
        "username,alias\n{},r1\n{},r2\n{},r3\n",
        users[0], users[1], users[2]
    );
    let ws = Workspace::new("orgs.csv", &list);
    let home = ws.dir.path().join("home");
    let sf_home = home.display().to_string();
    let args = ws.grant_args(&emu, &["--sf", "--sf-home", &sf_home]);
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::write(home.join(format!(".sfdx/{}.json", users[0])), "{").unwrap();
    let alias_file = home.join(".sfdx/alias.json");
    let mut aliases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&alias_file).unwrap()).unwrap();
    aliases["orgs"].as_object_mut().unwrap().remove("r2");
    std::fs::write(&alias_file, aliases.to_string()).unwrap();
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let granted = grants(&emu);
    assert_eq!(
        granted.get(&users[0]),
        Some(&2),
        "the unreadable sf auth file"
    );
    assert_eq!(granted.get(&users[1]), Some(&2), "the lost alias");
    assert_eq!(
        granted.get(&users[2]),
        Some(&1),
        "the intact org is skipped"
    );
    let aliases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&alias_file).unwrap()).unwrap();
    assert_eq!(aliases["orgs"]["r2"], users[1].as_str());
    let auth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.join(format!(".sfdx/{}.json", users[0]))).unwrap(),
    )
    .unwrap();
    assert_eq!(auth["username"], users[0].as_str());
}
