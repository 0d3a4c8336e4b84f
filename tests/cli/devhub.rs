//! The Dev Hub as the source of truth (`-v`): the hub's Active orgs as the list (paged), a
//! listed org the hub refuses failing with no request for it, expiry and limits in every
//! report, the External-Client-App diagnosis, escaped SOQL, and the hub's token kept out of
//! every output.

use std::time::Duration;

use fleetauth::emulator::{EmulatorHandle, ScratchOrg};

use crate::support::*;
use crate::{orgs, statuses};

const HUB: &str = "hub@acme.com";

/// `grant [list] -v HUB --hub-instance-url <emu>` plus `extra`; `list: false` drops the list.
fn hub_args(ws: &Workspace, emu: &EmulatorHandle, list: bool, extra: &[&str]) -> Vec<String> {
    let url = emu.url();
    let mut args = ws.grant_args(emu, &["-v", HUB, "--hub-instance-url", &url]);
    args.extend(extra.iter().map(|s| s.to_string()));
    if !list {
        args.remove(1);
    }
    args
}

fn attempts(emu: &EmulatorHandle, user: &str) -> u64 {
    emu.stats
        .snapshot()
        .attempts
        .get(user)
        .copied()
        .unwrap_or(0)
}

fn org<'a>(report: &'a serde_json::Value, user: &str) -> &'a serde_json::Value {
    orgs(report)
        .iter()
        .find(|o| o["username"] == user)
        .unwrap_or_else(|| panic!("{user} is in the report"))
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_v_with_no_list_pages_through_more_than_2000_orgs_and_authorizes_exactly_the_active_ones(
) {
    let active = usernames("hubpage", 2_050);
    let mut rows: Vec<ScratchOrg> = active.iter().map(ScratchOrg::active).collect();
    let gone: Vec<String> = usernames("hubgone", 30);
    rows.extend(
        gone[..20]
            .iter()
            .map(|u| ScratchOrg::active(u).with_status("Deleted")),
    );
    rows.extend(
        gone[20..25]
            .iter()
            .map(|u| ScratchOrg::active(u).with_status("Error")),
    );
    rows.extend(
        gone[25..]
            .iter()
            .map(|u| ScratchOrg::active(u).with_status("Creating")),
    );
    let emu = start(hub_config(HUB, rows)).await;
    let ws = Workspace::new("unused.csv", "");
    let args = hub_args(
        &ws,
        &emu,
        false,
        &["--rate", "100000", "--concurrency", "64", "--json"],
    );
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = ws.report();
    assert_eq!(report["summary"]["authorized"], 2_050, "{}", run.stderr);
    assert_eq!(report["summary"]["total"], 2_050);
    let granted = grants(&emu);
    for u in &active {
        assert_eq!(granted.get(u), Some(&1), "{u} granted once");
    }
    for u in &gone {
        assert_eq!(attempts(&emu, u), 0, "{u} is not Active: nothing sent");
    }
    assert!(
        emu.hub_pages() >= 2,
        "the query was paged ({} pages)",
        emu.hub_pages()
    );
    assert_eq!(report["summary"]["list"], format!("Dev Hub {HUB}"));
    assert!(
        orgs(&report).iter().all(|o| o["username"] != HUB),
        "the hub is not one of the orgs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listed_deleted_org_and_a_typo_fail_at_once_with_no_token_request_for_them() {
    let good = usernames("hubok", 3);
    let deleted = "test-hubdeleted@example.com";
    let expired = "test-hubexpired@example.com";
    let typo = "test-hubok2@exmaple.com";
    let mut rows: Vec<ScratchOrg> = good.iter().map(ScratchOrg::active).collect();
    rows.push(
        ScratchOrg::active(deleted)
            .with_status("Deleted")
            .expiring_in_days(-3),
    );
    rows.push(ScratchOrg::active(expired).expiring_in_days(-1));
    let mut cfg = hub_config(HUB, rows);
    // Every other user would wait out a replication delay of an hour: a typo without the
    // hub's check would spend the whole budget.
    cfg.any_user = Some(Duration::from_secs(3600));
    for u in &good {
        cfg.users.insert(u.clone(), Default::default());
    }
    let emu = start(cfg).await;
    let list = format!(
        "username\n{}\n{deleted}\n{}\n{typo}\n{expired}\n{}\n",
        good[0], good[1], good[2]
    );
    let ws = Workspace::new("orgs.csv", &list);
    let run = fleetauth(
        &hub_args(&ws, &emu, true, &["--replication-timeout", "10m"]),
        None,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = ws.report();
    for u in &good {
        assert_eq!(org(&report, u)["status"], "authorized");
    }
    for (user, code) in [
        (deleted, "org_deleted"),
        (typo, "not_in_dev_hub"),
        (expired, "org_expired"),
    ] {
        let o = org(&report, user);
        assert_eq!(o["status"], "failed");
        assert_eq!(o["attempts"], 0);
        assert_eq!(o["error"]["code"], code, "{o}");
        assert_eq!(attempts(&emu, user), 0, "no assertion was sent for {user}");
    }
    let hint = org(&report, typo)["error"]["hint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        hint.contains("typo? the Dev Hub has test-hubok2@example.com"),
        "{hint}"
    );
    assert_eq!(org(&report, deleted)["hubStatus"], "Deleted");
    let failed = std::fs::read_to_string(ws.out.join("failed.csv")).unwrap();
    assert!(
        failed.contains(typo) && failed.contains(deleted),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listed_org_without_an_instance_url_gets_the_hubs_login_url() {
    let user = "test-hublogin@example.com";
    let emu = start(hub_config(HUB, vec![ScratchOrg::active(user)])).await;
    let ws = Workspace::with_users(&[user.to_string()]);
    // The run's own host is unreachable: only the hub's LoginUrl (the emulator) can grant.
    let mut args = hub_args(&ws, &emu, true, &[]);
    set_flag(&mut args, "-r", "http://127.0.0.1:9");
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(org(&ws.report(), user)["tokenHost"], emu.url());
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_and_limits_reach_every_report_format() {
    let users = usernames("hubexp", 3);
    let rows = vec![
        ScratchOrg::active(&users[0]).expiring_in_days(0),
        ScratchOrg::active(&users[1]).expiring_in_days(5),
        ScratchOrg::active(&users[2]).expiring_in_days(20),
    ];
    let mut cfg = hub_config(HUB, rows);
    cfg.hub_limits = (40, 80);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let (csv, md, junit) = (
        ws.dir.path().join("r.csv"),
        ws.dir.path().join("sum.md"),
        ws.dir.path().join("junit.xml"),
    );
    let extra = [
        "--summary-md",
        md.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--json",
    ];
    let run = fleetauth(&hub_args(&ws, &emu, true, &extra), None).await;
    assert_eq!(
        run.code, 0,
        "an expiring org is a warning only: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("expire within --warn-expiring 1day") && run.stderr.contains(&users[0]),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&format!("{} (", users[1])),
        "{}",
        run.stderr
    );
    let report = ws.report();
    // The hub's fields are part of report.json's pinned shape.
    schema::assert_json_valid("report", &report);
    assert_eq!(statuses(&report), ["authorized"; 3]);
    let expiry: Vec<String> = users
        .iter()
        .map(|u| {
            org(&report, u)["expirationDate"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        expiry
            .iter()
            .all(|d| d.len() == 10 && d.as_bytes()[4] == b'-'),
        "{expiry:?}"
    );
    assert_eq!(org(&report, &users[0])["hubStatus"], "Active");
    let hub = &report["summary"]["devHub"];
    assert_eq!(hub["activeScratchOrgs"]["max"], 40, "{hub}");
    assert_eq!(hub["activeScratchOrgs"]["remaining"], 37, "{hub}");
    assert_eq!(hub["dailyScratchOrgs"]["max"], 80, "{hub}");
    let envelope: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(envelope["result"]["summary"]["devHub"], *hub);
    assert!(
        run.stderr.contains("ActiveScratchOrgs 37 of 40 remaining"),
        "{}",
        run.stderr
    );

    // The CSV report of the same run.
    let again = fleetauth(
        &hub_args(
            &ws,
            &emu,
            true,
            &["--force", "--report", csv.to_str().unwrap()],
        ),
        None,
    )
    .await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let (e, h) = (
        header
            .iter()
            .position(|c| c == "expirationDate")
            .expect("expirationDate column"),
        header
            .iter()
            .position(|c| c == "hubStatus")
            .expect("hubStatus column"),
    );
    for record in reader.records() {
        let record = record.unwrap();
        let i = users.iter().position(|u| u == &record[0]).unwrap();
        assert_eq!(record[e], expiry[i]);
        assert_eq!(&record[h], "Active");
    }

    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("ActiveScratchOrgs 37 of 40 remaining"), "{md}");
    assert!(md.contains(&expiry[0]) && md.contains("| Active |"), "{md}");
    let junit = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let property = |case: &str, name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(case))
            .and_then(|c| {
                c.descendants()
                    .find(|p| p.has_tag_name("property") && p.attribute("name") == Some(name))
            })
            .and_then(|p| p.attribute("value").map(String::from))
    };
    assert_eq!(
        property(&users[0], "expirationDate"),
        Some(expiry[0].clone())
    );
    assert_eq!(property(&users[1], "hubStatus").as_deref(), Some("Active"));
    assert!(
        junit.contains("name=\"ActiveScratchOrgs.remaining\" value=\"37\""),
        "{junit}"
    );

    // check -v prints the limits too.
    let mut check = hub_args(&ws, &emu, true, &[]);
    check[0] = "check".into();
    let pos = check.iter().position(|a| a == "--out-dir").unwrap();
    check.drain(pos..pos + 2);
    let checked = fleetauth(&check, None).await;
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    assert!(
        checked
            .stdout
            .contains("ActiveScratchOrgs 37 of 40 remaining, DailyScratchOrgs"),
        "{}",
        checked.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_external_client_app_hub_stops_after_the_hub_login_and_one_canary_request() {
    let users = usernames("hubeca", 5);
    let mut cfg = hub_config(HUB, users.iter().map(ScratchOrg::active).collect());
    cfg.eca_hub = true;
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&hub_args(&ws, &emu, true, &[]), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let stats = emu.stats.snapshot();
    assert_eq!(
        stats.requests, 2,
        "the hub's login and one canary request: {:?}",
        stats.attempts
    );
    assert_eq!(stats.grants.get(HUB), Some(&1));
    assert!(run.stderr.contains("stopped early"), "{}", run.stderr);
    assert!(run.stderr.contains("External Client App"), "{}", run.stderr);
    let report = ws.report();
    for o in orgs(&report) {
        assert!(
            o["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("External Client App"),
            "{o}"
        );
    }

    // check --online gives the same diagnosis.
    let url = emu.url();
    let args: Vec<String> = [
        "check",
        ws.list.to_str().unwrap(),
        "-i",
        CLIENT_ID,
        "-f",
        ws.key.to_str().unwrap(),
        "-r",
        &url,
        "-v",
        HUB,
        "--hub-instance-url",
        &url,
        "--online",
        &users[0],
    ]
    .map(String::from)
    .to_vec();
    let checked = fleetauth(&args, None).await;
    assert_eq!(checked.code, 2, "{}", checked.stdout);
    assert!(
        checked.stdout.contains("External Client App"),
        "{}",
        checked.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn soql_literals_with_quotes_and_backslashes_are_escaped() {
    let odd = r"ops\o'neil@example.com";
    let quoted = "test-o'brien@example.com";
    let mine = usernames("hubmine", 3);
    let mut rows: Vec<ScratchOrg> = mine
        .iter()
        .map(|u| ScratchOrg::active(u).created_by(odd))
        .collect();
    rows.extend(usernames("hubother", 4).iter().map(ScratchOrg::active));
    rows.push(ScratchOrg::active(quoted));
    let emu = start(hub_config(HUB, rows)).await;
    // A filter with a quote and a backslash: unescaped, the emulator answers MALFORMED_QUERY.
    let ws = Workspace::new("unused.csv", "");
    let run = fleetauth(&hub_args(&ws, &emu, false, &["--created-by", odd]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = ws.report();
    let mut names: Vec<&str> = orgs(&report)
        .iter()
        .map(|o| o["username"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, mine.iter().map(String::as_str).collect::<Vec<_>>());
    // A listed username with a quote is found, not refused as a bad query.
    let ws = Workspace::with_users(&[quoted.to_string()]);
    let run = fleetauth(&hub_args(&ws, &emu, true, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(org(&ws.report(), quoted)["hubStatus"], "Active");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_that_cannot_be_queried_is_a_setup_error_unless_told_to_go_on() {
    let user = "test-hubnot1@example.com";
    // `-v` names a scratch org, not a Dev Hub: it grants, but ScratchOrgInfo is INVALID_TYPE.
    let emu = start(config(&[user, "not-a-hub@acme.com"])).await;
    let ws = Workspace::with_users(&[user.to_string()]);
    let url = emu.url();
    let mut args = ws.grant_args(
        &emu,
        &["-v", "not-a-hub@acme.com", "--hub-instance-url", &url],
    );
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("INVALID_TYPE") && run.stderr.contains("is not a Dev Hub"),
        "{}",
        run.stderr
    );
    assert_eq!(attempts(&emu, user), 0, "nothing was sent for the org");
    args.push("--no-hub-check".into());
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("going on without the Dev Hub's check"),
        "{}",
        run.stderr
    );
    assert_eq!(grants(&emu).get(user), Some(&1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_hub_audience_says_the_hubs_audience_or_host_is_wrong() {
    let user = "test-hubaud1@example.com";
    let emu = start(hub_config(HUB, vec![ScratchOrg::active(user)])).await;
    let ws = Workspace::with_users(&[user.to_string()]);
    let run = fleetauth(
        &hub_args(
            &ws,
            &emu,
            true,
            &["--hub-audience", "https://wrong.example.com"],
        ),
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("audience is invalid"), "{}", run.stderr);
    assert!(
        run.stderr.contains("the hub's audience or host is wrong"),
        "{}",
        run.stderr
    );
    assert_eq!(attempts(&emu, user), 0);
    // A hub host that cannot be reached: the same cause.
    let mut args = hub_args(&ws, &emu, true, &[]);
    set_flag(&mut args, "--hub-instance-url", "http://127.0.0.1:9");
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("the hub's audience or host is wrong"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_token_is_reused_across_commands_and_never_appears_in_any_output() {
    let users = usernames("hubleak", 3);
    let emu = start(hub_config(
        HUB,
        users.iter().map(ScratchOrg::active).collect(),
    ))
    .await;
    let ws = Workspace::with_users(&users);
    let (csv, md, junit) = (
        ws.dir.path().join("r.csv"),
        ws.dir.path().join("sum.md"),
        ws.dir.path().join("junit.xml"),
    );
    let mut seen = String::new();
    for extra in [
        vec![
            "--json",
            "--summary-md",
            md.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        vec!["--force", "--report", csv.to_str().unwrap()],
    ] {
        let run = fleetauth(&hub_args(&ws, &emu, true, &extra), None).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        seen.push_str(&run.stdout);
        seen.push_str(&run.stderr);
    }
    let mut no_list = hub_args(&ws, &emu, false, &["--force", "--json"]);
    no_list.push("-q".into());
    let run = fleetauth(&no_list, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    seen.push_str(&run.stdout);
    seen.push_str(&run.stderr);
    // `token -v` prints the org's token (its purpose), never the hub's.
    let url = emu.url();
    let token = fleetauth(
        &ws.token_args(
            &emu,
            &users[0],
            &["-v", HUB, "--hub-instance-url", &url, "--json"],
        ),
        None,
    )
    .await;
    assert_eq!(token.code, 0, "{}", token.stderr);
    assert_eq!(
        grants(&emu).get(HUB),
        Some(&1),
        "one hub login, reused by every command"
    );
    for file in [
        ws.out.join("report.json"),
        csv.clone(),
        md.clone(),
        junit.clone(),
    ] {
        seen.push_str(&std::fs::read_to_string(&file).unwrap());
    }
    let stats = emu.stats.snapshot();
    let hub_tokens: Vec<String> = stats
        .tokens
        .iter()
        .filter(|t| t.starts_with(&fleetauth::emulator::ids_for(HUB).0[..15]))
        .cloned()
        .collect();
    assert_eq!(hub_tokens.len(), 1);
    assert_no_secret(&seen, &stats.tokens);
    let token_out = format!("{}{}", token.stdout, token.stderr);
    assert_no_secret(&token_out, &hub_tokens);
    // Kept apart: not an auth file of the out dir, and 0600.
    assert!(ws
        .auth_files()
        .iter()
        .all(|f| !f.to_string_lossy().contains(".hub")));
    assert_eq!(ws.auth_files().len(), users.len());
    let cached: Vec<_> = std::fs::read_dir(ws.out.join(".hub")).unwrap().collect();
    assert_eq!(cached.len(), 1);
    use std::os::unix::fs::PermissionsExt as _;
    let meta = cached[0].as_ref().unwrap().metadata().unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_v_fails_a_deleted_org_without_sending_for_it() {
    let user = "test-hubtokdel@example.com";
    let emu = start(hub_config(
        HUB,
        vec![ScratchOrg::active(user).with_status("Deleted")],
    ))
    .await;
    let ws = Workspace::with_users(&[user.to_string()]);
    let url = emu.url();
    let run = fleetauth(
        &ws.token_args(&emu, user, &["-v", HUB, "--hub-instance-url", &url]),
        None,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("org_deleted") && run.stderr.contains("nothing was sent"),
        "{}",
        run.stderr
    );
    assert_eq!(attempts(&emu, user), 0);
    assert!(run.stdout.is_empty());
}

/// `--alias-prefix P` names an org by its place in the list, `P<place>`, whatever is not sent
/// in a given run: an org the hub refuses keeps its number unused, and an org granted again
/// on a resumed run gets the alias it had.
#[tokio::test(flavor = "multi_thread")]
async fn alias_prefix_numbers_follow_the_list_not_what_each_run_sends() {
    let good = usernames("place", 3);
    let typo = "test-place1@exmaple.com";
    let mut cfg = hub_config(HUB, good.iter().map(ScratchOrg::active).collect());
    for u in &good {
        cfg.users.insert(u.clone(), Default::default());
    }
    let emu = start(cfg).await;
    let list = format!("username\n{}\n{typo}\n{}\n{}\n", good[0], good[1], good[2]);
    let ws = Workspace::new("orgs.csv", &list);
    let home = ws.dir.path().join("home");
    let sf_home = home.display().to_string();
    let args = hub_args(
        &ws,
        &emu,
        true,
        &["--sf-home", &sf_home, "--alias-prefix", "P"],
    );
    let aliases = || -> serde_json::Value {
        let text = std::fs::read_to_string(home.join(".sfdx/alias.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["orgs"].clone()
    };
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1, "the typo fails: {}", run.stderr);
    let expected = serde_json::json!({"P1": good[0], "P3": good[1], "P4": good[2]});
    assert_eq!(aliases(), expected, "{}", run.stderr);
    // A resumed run grants only the org whose auth file is gone: it keeps its alias.
    let file = ws
        .auth_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains(&good[1]))
        .expect("the org's auth file");
    std::fs::remove_file(file).unwrap();
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(aliases(), expected, "{}", run.stderr);
    assert!(!run.stderr.contains("already names"), "{}", run.stderr);
    assert_eq!(grants(&emu).get(&good[1]), Some(&2));
}
