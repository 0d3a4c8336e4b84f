//! The suite's own honesty and the outputs' contracts: every child in a scrubbed environment,
//! report.json and the `--json` envelopes against their checked-in JSON Schemas, JUnit against
//! junit-10.xsd, millisecond timestamps, and what a fleet-wide stop prints.

use std::collections::BTreeSet;

use crate::support::*;

#[test]
fn a_child_of_the_suite_gets_only_path_a_temp_home_and_the_keychain_switch() {
    let home = tempfile::tempdir().unwrap();
    let out = scrubbed("env", home.path()).output().expect("env runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["HOME", "PATH", "SF_USE_GENERIC_UNIX_KEYCHAIN", "TMPDIR"]),
        "GITHUB_*, proxies, SF_* and SFDX_* of the caller never reach a child: {text}"
    );
    let home_line = format!("HOME={}", home.path().display());
    assert!(text.lines().any(|l| l == home_line), "{text}");
}

// --- the outputs against their schemas ---------------------------------------------------------

/// A run with one org of each kind (authorized with and without an alias, failed, skipped as a
/// repeat), with the JSON envelope and every CI report: (workspace, run, JUnit path).
async fn mixed_run(prefix: &str) -> (EmulatorHandle, Workspace, Run, std::path::PathBuf) {
    let users = usernames(prefix, 3);
    let mut cfg = config(&users);
    cfg.users.get_mut(&users[2]).unwrap().scripted = Some(fleetauth::emulator::Scripted {
        status: 400,
        error: "inactive_user".into(),
        description: "inactive user".into(),
    });
    let emu = start(cfg).await;
    let ws = Workspace::new(
        "orgs.csv",
        &format!(
            "username,alias\n{0},ci1\n{1},\n{2},\n{0},\n",
            users[0], users[1], users[2]
        ),
    );
    let junit = ws.dir.path().join("junit.xml");
    let md = ws.dir.path().join("summary.md");
    let run = fleetauth(
        &ws.grant_args(
            &emu,
            &[
                "--json",
                "--junit",
                junit.to_str().unwrap(),
                "--summary-md",
                md.to_str().unwrap(),
            ],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    (emu, ws, run, junit)
}

#[tokio::test(flavor = "multi_thread")]
async fn report_json_and_every_json_envelope_match_their_checked_in_schemas() {
    let (emu, ws, run, _) = mixed_run("schema").await;
    let report = ws.report();
    assert_eq!(report["schemaVersion"], 1);
    let statuses: BTreeSet<&str> = crate::statuses(&report).into_iter().collect();
    assert_eq!(
        statuses,
        BTreeSet::from(["authorized", "failed", "skipped"]),
        "{report}"
    );
    schema::assert_json_valid("report", &report);
    let envelope: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json is JSON");
    schema::assert_json_valid("grant-envelope", &envelope);

    // A run that cannot start: the error envelope (exit 2).
    let mut args = ws.grant_args(&emu, &["--json"]);
    args[1] = ws.dir.path().join("missing.csv").display().to_string();
    let failed = fleetauth(&args, None).await;
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    schema::assert_json_valid(
        "error-envelope",
        &serde_json::from_str(&failed.stdout).unwrap(),
    );

    // `token --json`, granted now and reused, and one that fails.
    for extra in [&["--json", "--max-age", "0s"][..], &["--json"][..]] {
        let token = fleetauth(&ws.token_args(&emu, "ci1", extra), None).await;
        assert_eq!(token.code, 0, "{}", token.stderr);
        schema::assert_json_valid(
            "token-envelope",
            &serde_json::from_str(&token.stdout).unwrap(),
        );
    }
    let unknown = fleetauth(&ws.token_args(&emu, "nobody-here", &["--json"]), None).await;
    assert_ne!(unknown.code, 0);
    schema::assert_json_valid(
        "error-envelope",
        &serde_json::from_str(&unknown.stdout).unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schemas_reject_a_wrong_type_a_missing_field_or_a_nanosecond_timestamp() {
    let (_emu, ws, run, _) = mixed_run("broken").await;
    let report = ws.report();
    schema::assert_json_valid("report", &report);
    type Breaking = Box<dyn Fn(&mut serde_json::Value)>;
    let broken: Vec<(&str, Breaking)> = vec![
        (
            "no schemaVersion",
            Box::new(|r| drop(r.as_object_mut().unwrap().remove("schemaVersion"))),
        ),
        (
            "attempts as a string",
            Box::new(|r| r["orgs"][0]["attempts"] = "1".into()),
        ),
        (
            "no summary.total",
            Box::new(|r| drop(r["summary"].as_object_mut().unwrap().remove("total"))),
        ),
        (
            "an unknown status",
            Box::new(|r| r["orgs"][0]["status"] = "granted".into()),
        ),
        (
            "an org without username",
            Box::new(|r| drop(r["orgs"][1].as_object_mut().unwrap().remove("username"))),
        ),
        (
            "nanoseconds",
            Box::new(|r| r["summary"]["startedAt"] = "2026-12-02T05:50:13.904886250Z".into()),
        ),
        (
            "a failed org without its error",
            Box::new(|r| {
                let failed = r["orgs"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|o| o["status"] == "failed")
                    .unwrap();
                failed["error"] = serde_json::Value::Null;
            }),
        ),
        (
            "an extra field",
            Box::new(|r| r["summary"]["surprise"] = true.into()),
        ),
    ];
    for (what, breaking) in broken {
        let mut doc = report.clone();
        breaking(&mut doc);
        assert!(
            schema::json_errors("report", &doc).is_err(),
            "the schema took a report with {what}"
        );
    }
    let mut envelope: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    envelope["status"] = "1".into();
    assert!(
        schema::json_errors("grant-envelope", &envelope).is_err(),
        "a status as a string"
    );
    envelope["status"] = 1.into();
    envelope.as_object_mut().unwrap().remove("errors");
    assert!(
        schema::json_errors("grant-envelope", &envelope).is_err(),
        "no errors array"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn junit_validates_against_junit_10_xsd_and_keeps_what_reporters_read() {
    let (_emu, ws, _run, junit) = mixed_run("xsd").await;
    if let Err(errors) = schema::xml_errors("junit-10.xsd", &junit) {
        panic!("{errors}\n{}", std::fs::read_to_string(&junit).unwrap());
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    // What GitLab's and GitHub's JUnit reporters read: the totals, one testcase per org with
    // name, classname and time, a failure with message and type, skipped.
    let suites = doc.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    assert_eq!(suites.attribute("tests"), Some("4"));
    assert_eq!(suites.attribute("failures"), Some("1"));
    let suite = suites
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("skipped"), Some("1"));
    let stamp = suite.attribute("timestamp").unwrap();
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
        "milliseconds in UTC: {stamp}"
    );
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4);
    assert!(cases
        .iter()
        .all(|c| c.attribute("classname").is_some() && c.attribute("time").is_some()));
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(failure.attribute("type"), Some("inactive_user"));
    assert!(failure
        .attribute("message")
        .unwrap()
        .contains("inactive user"));
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("skipped"))
            .count(),
        1
    );

    // The check can fail: the old shape (`skipped` on testsuites) is refused.
    let old = ws.dir.path().join("old.xml");
    std::fs::write(
        &old,
        xml.replacen("<testsuites ", "<testsuites skipped=\"1\" ", 1),
    )
    .unwrap();
    let errors =
        schema::xml_errors("junit-10.xsd", &old).expect_err("the XSD refuses the old shape");
    assert!(errors.contains("skipped"), "{errors}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_timestamp_written_has_milliseconds() {
    let (_emu, ws, _run, _) = mixed_run("millis").await;
    let millis = |t: &str| {
        t.len() == 24
            && t.ends_with('Z')
            && t.as_bytes()[19] == b'.'
            && t[20..23].bytes().all(|b| b.is_ascii_digit())
    };
    let report = ws.report();
    let mut stamps = vec![
        report["summary"]["startedAt"].as_str().unwrap().to_string(),
        report["summary"]["finishedAt"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    stamps.extend(
        crate::orgs(&report)
            .iter()
            .filter_map(|o| o["issuedAt"].as_str().map(String::from)),
    );
    for file in ws.auth_files() {
        let auth: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        stamps.push(auth["issuedAt"].as_str().unwrap().to_string());
    }
    assert!(stamps.len() >= 6, "{stamps:?}");
    assert!(stamps.iter().all(|t| millis(t)), "{stamps:?}");
}

// --- what a fleet-wide stop prints -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_wide_stop_for_60_orgs_leads_with_the_fix_and_fits_a_screen() {
    let users = usernames("screen", 60);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let md = ws.dir.path().join("summary.md");
    let mut args = ws.grant_args(&emu, &["--summary-md", md.to_str().unwrap(), "--json"]);
    set_flag(&mut args, "-i", "3MVGwrongKEY");
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(emu.stats.snapshot().requests, 1);

    // stderr: the cause and the fix first, the 59 orgs never tried in one line.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines.len() <= 15, "{} lines:\n{}", lines.len(), run.stderr);
    let lead = lines
        .iter()
        .position(|l| l.starts_with("stopped early: 59 of 60 orgs were never tried"))
        .unwrap_or_else(|| panic!("no lead:\n{}", run.stderr));
    assert!(
        lines[lead + 1].contains("fix: the consumer key is wrong"),
        "the fix right below the cause:\n{}",
        run.stderr
    );
    let listed = lines
        .iter()
        .position(|l| l.contains("FAILED") || l.contains("NOT TRIED"))
        .unwrap();
    assert!(lead < listed, "{}", run.stderr);
    assert!(
        lines.iter().any(|l| l.contains("NOT TRIED 59 orgs: ")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("60 orgs in "), "{}", run.stderr);
    assert!(run.stderr.contains("(1 attempt)"), "{}", run.stderr);

    // Markdown: a screenful, the lead before the table, one row for the orgs never tried.
    let summary = std::fs::read_to_string(&md).unwrap();
    let md_lines = summary.lines().count();
    assert!(md_lines <= 40, "{md_lines} lines:\n{summary}");
    let lead = summary
        .find("Stopped early")
        .or_else(|| summary.find("stopped early"))
        .unwrap();
    assert!(
        lead < summary.find("### Not authorized").unwrap(),
        "{summary}"
    );
    assert!(summary.contains("| 59 orgs: "), "{summary}");

    // The envelope's errors say what failed; the orgs never tried have a code of their own.
    let envelope: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let errors: Vec<&str> = envelope["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("1 org failed: invalid_client_id"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("59 orgs not tried: not_attempted"),
        "{errors:?}"
    );
    let report = ws.report();
    let codes: BTreeSet<&str> = crate::orgs(&report)
        .iter()
        .skip(1)
        .map(|o| o["error"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, BTreeSet::from(["not_attempted"]));
    schema::assert_json_valid("grant-envelope", &envelope);
}

#[tokio::test(flavor = "multi_thread")]
async fn five_identical_permanent_errors_stop_the_run_and_the_rest_are_not_tried() {
    let users = usernames("same", 20);
    let mut cfg = config(&users);
    for user in &users {
        cfg.users.get_mut(user).unwrap().scripted = Some(fleetauth::emulator::Scripted {
            status: 400,
            error: "inactive_user".into(),
            description: "user is inactive".into(),
        });
    }
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(
        &ws.grant_args(&emu, &["--concurrency", "1", "--rate", "5"]),
        None,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Not fleet-wide by itself (one inactive user says nothing of the next), so the canary
    // opens the gate; five in a row with no success say it is the configuration. One request
    // every 200 ms, one at a time: the stop is seen before the sixth is due, or as it leaves.
    let requests = emu.stats.snapshot().requests;
    assert!(
        (5..=6).contains(&requests),
        "five failures, and at most the one request already on its way: {requests}"
    );
    assert!(
        run.stderr.contains(
            "stopped early: the first 5 orgs failed with `inactive_user: user is inactive`"
        ),
        "{}",
        run.stderr
    );
    let report = ws.report();
    let tried = crate::orgs(&report)
        .iter()
        .filter(|o| o["attempts"] == 1)
        .count();
    assert_eq!(tried as u64, requests);
    for o in crate::orgs(&report).iter().filter(|o| o["attempts"] == 0) {
        assert_eq!(o["status"], "failed");
        assert_eq!(o["error"]["code"], "not_attempted", "{o}");
    }
    assert_eq!(report["summary"]["failed"], 20);
}
