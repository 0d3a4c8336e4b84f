//! Compatibility with the real Salesforce CLI (the pinned 2.135.7): what `fleetauth grant --sf`
//! and `fleetauth login` write is what `sf` reads, uses and refreshes.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use fleetauth::emulator::User;
use serde_json::Value;

use crate::support::sf::{sf, sf_json};
use crate::support::*;

const HUB: &str = "hub@example.com";

/// Every org `sf org list --json` shows, by username, from all of its arrays.
fn sf_orgs(home: &Path) -> HashMap<String, Value> {
    let list = sf_json(home, &["org", "list"]);
    assert_eq!(list["status"], 0, "{list}");
    let mut orgs = HashMap::new();
    for (_, entries) in list["result"].as_object().unwrap() {
        for org in entries.as_array().into_iter().flatten() {
            orgs.insert(org["username"].as_str().unwrap().to_string(), org.clone());
        }
    }
    orgs
}

fn query_ok(home: &Path, target: &str) -> bool {
    let out = sf_json(
        home,
        &[
            "data",
            "query",
            "-q",
            "SELECT Id FROM Organization",
            "-o",
            target,
        ],
    );
    out["status"] == 0 && out["result"]["totalSize"] == 1
}

fn emulator_config(scratch: &[String], extra: &[&str]) -> fleetauth::emulator::EmulatorConfig {
    let mut names: Vec<&str> = scratch.iter().map(String::as_str).collect();
    names.extend_from_slice(extra);
    let mut cfg = config(&names);
    cfg.users.insert(
        HUB.into(),
        User {
            dev_hub: true,
            ..User::default()
        },
    );
    cfg
}

async fn login_hub(ws: &Workspace, emu: &fleetauth::emulator::EmulatorHandle, home: &Path) {
    let args: Vec<String> = [
        "login",
        "-o",
        HUB,
        "-i",
        CLIENT_ID,
        "-f",
        ws.key.to_str().unwrap(),
        "-r",
        &emu.url(),
        "-a",
        "hub",
        "-d",
        "--sf-home",
        home.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("Successfully authorized hub@example.com with org ID 00D"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sf_lists_uses_and_refreshes_every_org_fleetauth_authorized() {
    let scratch = usernames("sf", 3);
    let emu = start(emulator_config(&scratch, &["test-sfown@example.com"])).await;
    let list = format!(
        "username,alias\n{},scr1\n{},scr2\n{},scr3\n",
        scratch[0], scratch[1], scratch[2]
    );
    let ws = Workspace::new("orgs.csv", &list);
    let home = ws.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();

    // The Dev Hub first, as `sf org login jwt -d -a hub` would.
    login_hub(&ws, &emu, &home).await;
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".sf/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["target-dev-hub"], "hub");
    let mirror: Value = serde_json::from_str(
        &std::fs::read_to_string(home.join(".sfdx/sfdx-config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(mirror["defaultdevhubusername"], "hub");

    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &[
                "--sf",
                "--sf-home",
                home.to_str().unwrap(),
                "--dev-hub-username",
                HUB,
                "--alias-prefix",
                "fleet",
            ],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = ws.report();

    // sf lists every org with its alias, the fleet as scratch orgs of the hub.
    let orgs = sf_orgs(&home);
    assert!(
        orgs[HUB]["isDevHub"].as_bool().unwrap_or(false),
        "{}",
        orgs[HUB]
    );
    let aliases: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".sfdx/alias.json")).unwrap())
            .unwrap();
    for (i, org) in report["orgs"].as_array().unwrap().iter().enumerate() {
        let username = org["username"].as_str().unwrap();
        let listed = orgs
            .get(username)
            .unwrap_or_else(|| panic!("sf org list lacks {username}: {orgs:?}"));
        assert_eq!(listed["orgId"], org["orgId"]);
        assert!(
            listed["alias"] == format!("scr{}", i + 1)
                || listed["alias"] == format!("fleet{}", i + 1),
            "{listed}"
        );
        assert_eq!(aliases["orgs"][format!("scr{}", i + 1)], username);
        assert_eq!(aliases["orgs"][format!("fleet{}", i + 1)], username);
        assert_eq!(listed["devHubUsername"], HUB);
    }
    let scratch_listed = sf_json(&home, &["org", "list"])["result"]["scratchOrgs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(scratch_listed, 3);

    // sf org display shows the same org id and instance URL.
    let display = sf_json(&home, &["org", "display", "-o", "scr1"]);
    assert_eq!(display["status"], 0, "{display}");
    assert_eq!(display["result"]["id"], report["orgs"][0]["orgId"]);
    assert_eq!(display["result"]["instanceUrl"], emu.url().as_str());

    // sf queries the org with the token fleetauth stored...
    assert!(query_ok(&home, "scr1"));
    assert_eq!(emu.stats.snapshot().grants[&scratch[0]], 1);
    // ...and, once the session expires, refreshes it through the JWT flow with the stored key.
    assert!(emu.expire_sessions() > 0);
    assert!(query_ok(&home, "scr1"));
    assert_eq!(
        emu.stats.snapshot().grants[&scratch[0]],
        2,
        "sf refreshed through a new JWT grant"
    );

    // A file written by `sf org login jwt` for another org coexists with ours; both work.
    let key_json = std::fs::read_to_string(home.join(".sfdx/key.json")).unwrap();
    let out = sf(
        &home,
        &[
            "org",
            "login",
            "jwt",
            "-o",
            "test-sfown@example.com",
            "-i",
            CLIENT_ID,
            "-f",
            ws.key.to_str().unwrap(),
            "-r",
            &emu.url(),
            "-a",
            "sfown",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "sf org login jwt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(query_ok(&home, "sfown"));
    assert!(query_ok(&home, "scr2"));
    assert_eq!(
        std::fs::read_to_string(home.join(".sfdx/key.json")).unwrap(),
        key_json,
        "the key is never replaced"
    );
    let orgs = sf_orgs(&home);
    assert!(
        scratch.iter().all(|u| orgs.contains_key(u)) && orgs.contains_key("test-sfown@example.com")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_key_is_used_and_sf_reads_what_fleetauth_encrypted_with_it() {
    let scratch = usernames("sfv2", 1);
    let emu = start(emulator_config(&scratch, &[])).await;
    let ws = Workspace::new(
        "orgs.csv",
        &format!("username,alias\n{},v2org\n", scratch[0]),
    );
    let home = ws.dir.path().join("home");
    std::fs::create_dir_all(home.join(".sfdx")).unwrap();
    let key = home.join(".sfdx/key.json");
    let v2 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    std::fs::write(&key, format!("{{\n    \"account\": \"local\",\n    \"key\": \"{v2}\",\n    \"service\": \"sfdx\"\n}}")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let run = fleetauth(
        &ws.grant_args(&emu, &["--sf-home", home.to_str().unwrap()]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let auth: Value = serde_json::from_str(
        &std::fs::read_to_string(home.join(format!(".sfdx/{}.json", scratch[0]))).unwrap(),
    )
    .unwrap();
    let stored = auth["accessToken"].as_str().unwrap();
    let token = &emu.stats.snapshot().tokens[0];
    // A v2 value carries a 24-hex-character IV.
    assert_eq!(
        stored.split(':').next().unwrap().len(),
        24 + 2 * token.len()
    );
    assert!(query_ok(&home, "v2org"));
    let display = sf_json(&home, &["org", "display", "-o", "v2org"]);
    assert_eq!(
        display["result"]["accessToken"],
        token.as_str(),
        "sf decrypted fleetauth's v2 value"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_refuses_a_dev_hub_that_sf_does_not_know() {
    let scratch = usernames("nohub", 1);
    let emu = start(emulator_config(&scratch, &[])).await;
    let ws = Workspace::with_users(&scratch);
    let home = ws.dir.path().join("home");
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &[
                "--sf-home",
                home.to_str().unwrap(),
                "--dev-hub-username",
                HUB,
            ],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("fleetauth login -o hub@example.com"),
        "{}",
        run.stderr
    );
    assert_eq!(emu.stats.snapshot().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn fleetauth_and_sf_writing_one_state_around_each_other_lose_no_entries() {
    let scratch = usernames("beside", 24);
    let mut cfg = emulator_config(
        &scratch,
        &["test-side1@example.com", "test-side2@example.com"],
    );
    cfg.latency = std::time::Duration::from_millis(150);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&scratch);
    let home = ws.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let sf_login = |user: &str, alias: &str| {
        sf(
            &home,
            &[
                "org",
                "login",
                "jwt",
                "-o",
                user,
                "-i",
                CLIENT_ID,
                "-f",
                ws.key.to_str().unwrap(),
                "-r",
                &emu.url(),
                "-a",
                alias,
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    // sf creates the key first; then both write auth files and aliases, sf while fleetauth
    // runs (nothing forces their writes to interleave: the lock itself is pinned by
    // `fleetauth_waits_on_sfs_alias_lock_and_keeps_what_sf_wrote_under_it`).
    assert!(sf_login("test-side1@example.com", "side1")
        .wait()
        .unwrap()
        .success());
    let beside = sf_login("test-side2@example.com", "side2");
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &[
                "--sf-home",
                home.to_str().unwrap(),
                "--alias-prefix",
                "fa",
                "--rate",
                "8",
                "--concurrency",
                "2",
            ],
        ),
        None,
    )
    .await;
    let out = beside.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    let aliases: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".sfdx/alias.json")).unwrap())
            .unwrap();
    let aliases = aliases["orgs"].as_object().unwrap();
    assert_eq!(aliases["side1"], "test-side1@example.com");
    assert_eq!(aliases["side2"], "test-side2@example.com");
    for (i, user) in scratch.iter().enumerate() {
        assert_eq!(
            aliases[&format!("fa{}", i + 1)],
            user.as_str(),
            "alias fa{} lost",
            i + 1
        );
    }
    assert!(!std::fs::read_dir(home.join(".sfdx")).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".lock")));
    assert!(query_ok(&home, "side2"));
    assert!(query_ok(&home, "fa24"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_key_is_handed_to_sf_decrypted_and_sf_refreshes_with_it() {
    let scratch = usernames("sfenc", 2);
    let emu = start(emulator_config(&scratch, &[])).await;
    let ws = Workspace::new(
        "orgs.csv",
        &format!("username,alias\n{},enc1\n{},enc2\n", scratch[0], scratch[1]),
    );
    let home = ws.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut args = ws.grant_args(
        &emu,
        &[
            "--sf-home",
            home.to_str().unwrap(),
            "--jwt-key-passphrase-env",
            "HUB_KEY_PASS",
        ],
    );
    let encrypted = fixture("keys/server.encrypted.key");
    set_flag(&mut args, "-f", encrypted.display().to_string());
    let run = fleetauth_env(&args, None, &[("HUB_KEY_PASS", "correct-horse")]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let key = fleetauth::credentials::parse(
        std::fs::read(fixture("keys/server.key")).unwrap(),
        fleetauth::credentials::KeyOrigin::File("k".into()),
    )
    .unwrap();
    let copy = fleetauth::sfstate::hub_key_path(&home.join(".sfdx"), &key);
    assert!(
        run.stderr.contains("is encrypted") && run.stderr.contains(&copy.display().to_string()),
        "the run says where the decrypted key went: {}",
        run.stderr
    );
    assert_eq!(
        std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let auth: Value = serde_json::from_str(
        &std::fs::read_to_string(home.join(format!(".sfdx/{}.json", scratch[0]))).unwrap(),
    )
    .unwrap();
    assert_eq!(auth["privateKey"], copy.display().to_string());
    // sf refreshes an expired session with the decrypted copy.
    assert!(emu.expire_sessions() > 0);
    assert!(query_ok(&home, "enc1"));
    assert_eq!(
        emu.stats.snapshot().grants[&scratch[0]],
        2,
        "sf refreshed through a new JWT grant with the decrypted key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fleetauth_waits_on_sfs_alias_lock_and_keeps_what_sf_wrote_under_it() {
    let scratch = usernames("lockwait", 3);
    let emu = start(config(&scratch)).await;
    let ws = Workspace::with_users(&scratch);
    let home = ws.dir.path().join("home");
    std::fs::create_dir_all(home.join(".sfdx")).unwrap();
    let alias_json = home.join(".sfdx/alias.json");
    std::fs::write(&alias_json, "{}").unwrap();
    // "sf" holds the lock on alias.json, as proper-lockfile does: a fresh `<file>.lock` dir.
    let lock = home.join(".sfdx/alias.json.lock");
    std::fs::create_dir(&lock).unwrap();
    let mut child = ws
        .command(&ws.grant_args(
            &emu,
            &["--sf-home", home.to_str().unwrap(), "--alias-prefix", "fa"],
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The grants are made and every org's auth file is in sf's state: only the aliases, behind
    // the lock, are left; the run waits for it.
    until("every grant and sf auth file", || {
        emu.stats.snapshot().grants.values().sum::<u64>() == 3
            && scratch
                .iter()
                .all(|u| home.join(format!(".sfdx/{u}.json")).is_file())
    })
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "fleetauth finished while sf held the alias lock"
    );
    assert_eq!(
        std::fs::read_to_string(&alias_json).unwrap(),
        "{}",
        "fleetauth wrote alias.json while sf held its lock"
    );
    // "sf" writes its alias under the lock, then releases it.
    std::fs::write(&alias_json, r#"{"orgs":{"side":"side@example.com"}}"#).unwrap();
    std::fs::remove_dir(&lock).unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let aliases: Value =
        serde_json::from_str(&std::fs::read_to_string(&alias_json).unwrap()).unwrap();
    assert_eq!(
        aliases["orgs"]["side"], "side@example.com",
        "sf's entry kept"
    );
    for (i, user) in scratch.iter().enumerate() {
        assert_eq!(aliases["orgs"][format!("fa{}", i + 1)], user.as_str());
    }
}
