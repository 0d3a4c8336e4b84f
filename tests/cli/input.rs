//! Org lists: shapes, duplicates, stdin, row instance URLs, and bad input (exit 2, nothing sent).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;

use crate::orgs;
use crate::support::*;

// --- input -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_usernames_are_granted_once_and_reported() {
    let emu = start(config(&["test-dup1@example.com", "test-dup2@example.com"])).await;
    let ws = Workspace::new(
        "orgs.csv",
        "test-dup1@example.com\nTEST-DUP1@example.com\ntest-dup2@example.com\n",
    );
    let run = fleetauth(&ws.grant_args(&emu, &["--json"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(emu.stats.snapshot().requests, 2);
    let envelope: Value =
        serde_json::from_str(&run.stdout).expect("stdout is only the JSON envelope");
    assert_eq!(envelope["status"], 0);
    assert_eq!(envelope["result"]["summary"]["skipped"], 1);
    let skipped = orgs(&envelope["result"])
        .iter()
        .find(|o| o["status"] == "skipped")
        .unwrap();
    assert!(
        skipped["note"].as_str().unwrap().contains("line 1"),
        "{skipped}"
    );
    assert!(envelope["warnings"][0]
        .as_str()
        .unwrap()
        .contains("repeats"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_input_shape_in_fixtures_is_read_and_granted() {
    let cases = [
        ("plain.csv", 3),
        ("header.csv", 3),
        ("signup.csv", 2),
        ("strings.json", 2),
        ("objects.json", 3),
        ("sf-data-query.json", 2),
        ("sf-org-list.json", 2),
        ("sf-org-create-scratch.json", 1),
    ];
    let mut cfg = empty_config();
    cfg.any_user = Some(Duration::ZERO);
    let emu = start(cfg).await;
    for (file, n) in cases {
        let ws = Workspace::new("unused.csv", "");
        let mut args = ws.grant_args(&emu, &[]);
        args[1] = fixture(&format!("lists/{file}")).display().to_string();
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 0, "{file}: {}", run.stderr);
        assert_eq!(ws.report()["summary"]["authorized"], n, "{file}");
        assert_eq!(ws.auth_files().len(), n, "{file}");
    }
    let aliased = Workspace::new("unused.csv", "");
    let mut args = aliased.grant_args(&emu, &[]);
    args[1] = fixture("lists/header.csv").display().to_string();
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let auth: Value = serde_json::from_str(
        &std::fs::read_to_string(aliased.out.join("test-hdr1@example.com.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(auth["alias"], "hdr1");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_can_come_from_stdin() {
    let emu = start(config(&["test-stdin1@example.com"])).await;
    let ws = Workspace::new("unused.csv", "");
    let mut args = ws.grant_args(&emu, &[]);
    args[1] = "-".into();
    let run = fleetauth(
        &args,
        Some(r#"{"status":0,"result":{"username":"test-stdin1@example.com"}}"#),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ws.auth_files().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rows_own_instance_url_is_tried_first_then_the_fallback() {
    // The org's own host rejects the audience; the run's host grants.
    let mut own = config(&["test-row1@example.com"]);
    own.audiences = vec![];
    let own = start(own).await;
    let fallback = start(config(&["test-row1@example.com"])).await;
    let ws = Workspace::new(
        "orgs.csv",
        &format!(
            "username,instanceUrl\ntest-row1@example.com,{}\n",
            own.url()
        ),
    );
    let run = fleetauth(&ws.grant_args(&fallback, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(own.stats.snapshot().requests, 1);
    assert_eq!(fallback.stats.snapshot().grants["test-row1@example.com"], 1);
    assert_eq!(ws.report()["orgs"][0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn report_can_be_written_as_csv_elsewhere() {
    let emu = start(config(&["test-csvrep1@example.com"])).await;
    let ws = Workspace::with_users(&["test-csvrep1@example.com".to_string()]);
    let path = ws.dir.path().join("report.csv");
    let run = fleetauth(
        &ws.grant_args(&emu, &["--report", path.to_str().unwrap()]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let csv = std::fs::read_to_string(&path).unwrap();
    assert!(csv.starts_with("username,alias,status,attempts"), "{csv}");
    assert!(
        csv.contains("test-csvrep1@example.com,,authorized,1"),
        "{csv}"
    );
}

// --- bad input: exit 2, nothing sent ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_with_a_clear_message_and_sends_nothing() {
    let emu = start(config(&["test-ok@example.com"])).await;
    type Tweak = Box<dyn Fn(&Workspace, &mut Vec<String>)>;
    let set = |flag: &'static str, value: String| -> Tweak {
        Box::new(move |_, args: &mut Vec<String>| set_flag(args, flag, value.clone()))
    };
    let cases: Vec<(&str, &str, Tweak, &str)> = vec![
        (
            "bad username",
            "test-ok@example.com\n../../etc/passwd\n",
            Box::new(|_, _| {}),
            "line 2",
        ),
        (
            "empty list",
            "# nobody\n",
            Box::new(|_, _| {}),
            "lists no orgs",
        ),
        (
            "no username column",
            "alias,team\na,b\n",
            Box::new(|_, _| {}),
            "no username column",
        ),
        (
            "certificate as key",
            "test-ok@example.com\n",
            set("-f", fixture("keys/server.crt").display().to_string()),
            "a certificate",
        ),
        (
            "public key",
            "test-ok@example.com\n",
            set("-f", fixture("keys/server.pub").display().to_string()),
            "a public key",
        ),
        (
            "weak key",
            "test-ok@example.com\n",
            set("-f", fixture("keys/weak1024.key").display().to_string()),
            "under 2048 bits",
        ),
        (
            "garbage key",
            "test-ok@example.com\n",
            set("-f", fixture("keys/garbage.key").display().to_string()),
            "garbage.key",
        ),
        (
            "missing key",
            "test-ok@example.com\n",
            set("-f", "/nonexistent/server.key".into()),
            "cannot read the key file",
        ),
        (
            "plain http",
            "test-ok@example.com\n",
            set("-r", "http://test.salesforce.com".into()),
            "https://",
        ),
        (
            "bad row url",
            "username,instanceUrl\ntest-ok@example.com,http://example.com\n",
            Box::new(|_, _| {}),
            "line 2",
        ),
        (
            "no client id",
            "test-ok@example.com\n",
            Box::new(|_, args: &mut Vec<String>| drop_flag(args, "-i")),
            "SFDX_CLIENT_ID",
        ),
        (
            "world-writable out dir",
            "test-ok@example.com\n",
            Box::new(|ws: &Workspace, _: &mut Vec<String>| {
                std::fs::create_dir(&ws.out).unwrap();
                std::fs::set_permissions(&ws.out, std::fs::Permissions::from_mode(0o777)).unwrap();
            }),
            "writable by other users",
        ),
        (
            "an out dir under a directory every user may write, without the sticky bit",
            "test-ok@example.com\n",
            Box::new(|ws: &Workspace, args: &mut Vec<String>| {
                let open = ws.dir.path().join("shared");
                std::fs::create_dir(&open).unwrap();
                std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
                set_flag(args, "--out-dir", open.join("out").display().to_string());
            }),
            "no sticky bit",
        ),
    ];
    for (name, list, tweak, expected) in cases {
        let ws = Workspace::new("orgs.csv", list);
        let mut args = ws.grant_args(&emu, &[]);
        tweak(&ws, &mut args);
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{name}: stdout {}", run.stdout);
    }
    assert_eq!(
        emu.stats.snapshot().requests,
        0,
        "bad input must send nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_mode_reports_usage_errors_on_stdout_as_json() {
    let emu = start(empty_config()).await;
    let ws = Workspace::new("orgs.csv", "nope\n");
    let run = fleetauth(&ws.grant_args(&emu, &["--json"]), None).await;
    assert_eq!(run.code, 2);
    let envelope: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(envelope["status"], 2);
    assert_eq!(envelope["name"], "InputError");
}
