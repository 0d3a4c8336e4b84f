//! Several org lists in one run: `grant a.csv b.json`, `check` alike, and `token`/`open`
//! `--list FILE` repeated. The main use: a receiving CI job combining the report.json of every
//! shard of a matrix.

use serde_json::Value;

use crate::orgs;
use crate::support::*;

/// `args` with the list (the second argument) replaced by `lists`.
fn with_lists(mut args: Vec<String>, lists: &[&std::path::Path]) -> Vec<String> {
    args.splice(1..2, lists.iter().map(|l| l.display().to_string()));
    args
}

fn write(ws: &Workspace, name: &str, text: &str) -> std::path::PathBuf {
    let path = ws.dir.path().join(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiving_job_combines_the_report_json_of_every_shard_with_token_and_grant_sf() {
    let users = usernames("lists", 8);
    let emu = start(config(&users)).await;
    let list: String = std::iter::once("username,alias".to_string())
        .chain(
            users
                .iter()
                .enumerate()
                .map(|(i, u)| format!("{u},ci{}", i + 1)),
        )
        .collect::<Vec<_>>()
        .join("\n");
    let matrix = Workspace::new("orgs.csv", &(list + "\n"));

    // The matrix: two jobs, one shard each, each leaving its report.json.
    let mut shard_users: Vec<Vec<String>> = Vec::new();
    for k in 1..=2 {
        let mut args = matrix.grant_args(&emu, &["--shard", &format!("{k}/2")]);
        let out = matrix.dir.path().join(format!("out{k}"));
        set_flag(&mut args, "--out-dir", out.display().to_string());
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        shard_users.push(
            orgs(&report)
                .iter()
                .map(|o| o["username"].as_str().unwrap().to_string())
                .collect(),
        );
    }
    assert!(
        shard_users.iter().all(|s| !s.is_empty()),
        "both shards hold orgs: {shard_users:?}"
    );

    // The receiver: only the two report.json files, its own out dir and a fresh HOME.
    let rx = Workspace::new("unused.csv", "");
    let reports: Vec<_> = (1..=2)
        .map(|k| {
            let text =
                std::fs::read_to_string(matrix.dir.path().join(format!("out{k}/report.json")))
                    .unwrap();
            write(&rx, &format!("shard{k}/report.json"), &text)
        })
        .collect();
    let (r1, r2) = (
        reports[0].display().to_string(),
        reports[1].display().to_string(),
    );

    // `token --list` once per shard's report: every alias of either shard resolves, and its
    // instance URL from the report is the host tried (the fallback answers nothing).
    for (i, username) in users.iter().enumerate() {
        let alias = format!("ci{}", i + 1);
        let mut args = rx.token_args(&emu, &alias, &["--list", &r1, "--list", &r2]);
        set_flag(&mut args, "-r", "http://127.0.0.1:9");
        let run = fleetauth(&args, None).await;
        assert_eq!(run.code, 0, "token {alias}: {}", run.stderr);
        assert_eq!(run.stdout, format!("{}\n", rx.auth_token(username)));
    }
    // `open --list` resolves the same way, in a job of its own.
    let mut args = rx.open_args(&emu, "ci2", &["--url-only", "--list", &r1, "--list", &r2]);
    set_flag(
        &mut args,
        "--out-dir",
        rx.dir.path().join("opener").display().to_string(),
    );
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "open: {}", run.stderr);
    assert!(
        run.stdout
            .starts_with(&format!("{}/secur/frontdoor.jsp?otp=", emu.url())),
        "{}",
        run.stdout
    );

    // Without the lists (and before any auth file carries it), no alias is known.
    let mut args = rx.token_args(&emu, "ci1", &[]);
    set_flag(
        &mut args,
        "--out-dir",
        rx.dir.path().join("empty").display().to_string(),
    );
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);

    // `check` and `grant --sf` take both reports as one list.
    let mut check = with_lists(rx.grant_args(&emu, &[]), &[&reports[0], &reports[1]]);
    check[0] = "check".into();
    check.truncate(check.len() - 2);
    let run = fleetauth(&check, None).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "{r1}, {r2}: 8 rows, 8 orgs to grant, 0 repeated, 8 with their own instance URL"
        )),
        "{}",
        run.stdout
    );
    let home = rx.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut args = with_lists(
        rx.grant_args(
            &emu,
            &["--sf", "--sf-home", home.to_str().unwrap(), "--force"],
        ),
        &[&reports[0], &reports[1]],
    );
    set_flag(
        &mut args,
        "--out-dir",
        rx.dir.path().join("all").display().to_string(),
    );
    let run = fleetauth_env(&args, None, &[("HOME", home.to_str().unwrap())]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(rx.dir.path().join("all/report.json")).unwrap(),
    )
    .unwrap();
    let mut granted: Vec<&str> = orgs(&report)
        .iter()
        .inspect(|o| assert_eq!(o["status"], "authorized", "{o}"))
        .map(|o| o["username"].as_str().unwrap())
        .collect();
    granted.sort();
    let mut all = users.clone();
    all.sort();
    assert_eq!(granted, all, "every org of both shards, once");
    assert_eq!(report["summary"]["list"], format!("{r1}, {r2}"));
    let aliases: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".sfdx/alias.json")).unwrap())
            .unwrap();
    for (i, username) in users.iter().enumerate() {
        assert_eq!(
            aliases["orgs"][format!("ci{}", i + 1)],
            username.as_str(),
            "sf's alias.json: {aliases}"
        );
    }

    // --shard applies to the merged list: share 1/2 of both reports is the first job's share.
    let mut args = with_lists(
        rx.grant_args(&emu, &["--shard", "1/2"]),
        &[&reports[1], &reports[0]],
    );
    set_flag(
        &mut args,
        "--out-dir",
        rx.dir.path().join("again").display().to_string(),
    );
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(rx.dir.path().join("again/report.json")).unwrap(),
    )
    .unwrap();
    let mut again: Vec<String> = orgs(&report)
        .iter()
        .map(|o| o["username"].as_str().unwrap().to_string())
        .collect();
    again.sort();
    let mut first = shard_users[0].clone();
    first.sort();
    assert_eq!(again, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_username_in_two_lists_is_one_org_and_conflicting_rows_are_an_input_error() {
    let users = usernames("twice", 3);
    let emu = start(config(&users)).await;
    let ws = Workspace::new(
        "a.csv",
        &format!("username,alias\n{},ci1\n{},\n", users[0], users[1]),
    );
    // The same org again, in another case and with the alias only this list gives: one org.
    let b = write(
        &ws,
        "b.csv",
        &format!(
            "username,alias\n{},ci2\n{}\n",
            users[1].to_uppercase(),
            users[2]
        ),
    );
    let run = fleetauth(&with_lists(ws.grant_args(&emu, &[]), &[&ws.list, &b]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        grants(&emu).values().all(|n| *n == 1) && grants(&emu).len() == 3,
        "each org granted once: {:?}",
        grants(&emu)
    );
    let report = ws.report();
    let second = orgs(&report)
        .iter()
        .find(|o| o["username"] == users[1].as_str())
        .unwrap();
    assert_eq!(
        second["alias"], "ci2",
        "the blank alias is taken from b.csv"
    );
    let b_name = b.display().to_string();
    let a_name = ws.list.display().to_string();
    assert!(
        run.stderr.contains(&format!(
            "{b_name}:line 2: {} repeats the username of {a_name}:line 3; granted once",
            users[1].to_uppercase()
        )),
        "{}",
        run.stderr
    );

    // The same username with another alias: nothing is sent, both rows are named.
    let emu = start(config(&users)).await;
    let c = write(&ws, "c.csv", &format!("username,alias\n{},ci9\n", users[0]));
    let run = fleetauth(&with_lists(ws.grant_args(&emu, &[]), &[&ws.list, &c]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let c_name = c.display().to_string();
    assert!(
        run.stderr.contains(&format!("{c_name}:line 2"))
            && run.stderr.contains(&format!("{a_name}:line 2"))
            && run.stderr.contains("\"ci1\"")
            && run.stderr.contains("\"ci9\""),
        "{}",
        run.stderr
    );
    assert!(
        grants(&emu).is_empty(),
        "nothing was sent: {:?}",
        grants(&emu)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alias_given_to_two_orgs_across_lists_is_an_input_error_for_grant_and_token() {
    let users = usernames("xalias", 2);
    let emu = start(config(&users)).await;
    let ws = Workspace::new("a.csv", &format!("username,alias\n{},ci\n", users[0]));
    let b = write(
        &ws,
        "b.json",
        &format!(r#"[{{"username":"{}","alias":"ci"}}]"#, users[1]),
    );
    let (a_name, b_name) = (ws.list.display().to_string(), b.display().to_string());
    let run = fleetauth(&with_lists(ws.grant_args(&emu, &[]), &[&ws.list, &b]), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{b_name}:entry 1"))
            && run.stderr.contains(&format!("on {a_name}:line 2")),
        "{}",
        run.stderr
    );
    let run = fleetauth(
        &ws.token_args(&emu, "ci", &["--list", &a_name, "--list", &b_name]),
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{b_name}:entry 1")),
        "{}",
        run.stderr
    );
    assert!(
        grants(&emu).is_empty(),
        "nothing was sent: {:?}",
        grants(&emu)
    );

    // Standard input is one list, once.
    let run = fleetauth(
        &with_lists(ws.grant_args(&emu, &[]), &["-".as_ref(), "-".as_ref()]),
        Some(""),
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("standard input"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_csv_of_lists_of_different_shapes_is_a_list_grant_reads_back() {
    let users = usernames("shape", 2);
    let emu = start(config(&users)).await;
    let ws = Workspace::new(
        "a.csv",
        &format!("username,team\n{},red\nnobody@example.com,blue\n", users[0]),
    );
    let b = write(
        &ws,
        "b.json",
        &format!(
            r#"[{{"username":"{}","alias":"s2"}},{{"username":"gone@example.com","alias":"s3"}}]"#,
            users[1]
        ),
    );
    let run = fleetauth(&with_lists(ws.grant_args(&emu, &[]), &[&ws.list, &b]), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed = ws.out.join("failed.csv");
    assert_eq!(
        std::fs::read_to_string(&failed).unwrap(),
        "username,alias,instanceUrl,team\nnobody@example.com,,,blue\ngone@example.com,s3,,\n"
    );
    // Passed back, it is read as a list (the two are still unknown: exit 1, not 2).
    let mut args = ws.grant_args(&emu, &[]);
    args[1] = failed.display().to_string();
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = ws.report();
    let alias = orgs(&report)
        .iter()
        .find(|o| o["username"] == "gone@example.com")
        .map(|o| o["alias"].clone());
    assert_eq!(alias, Some(Value::from("s3")));
}

/// A shard that drew no org of a small fleet leaves a report.json that lists none: among
/// several lists it adds nothing; only lists that are all empty are an error.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_list_among_several_adds_nothing_and_all_empty_is_an_error() {
    let users = usernames("sparse", 2);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let empty = write(&ws, "empty.csv", "username\n");
    let run = fleetauth(
        &with_lists(ws.grant_args(&emu, &[]), &[&empty, &ws.list]),
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(grants(&emu).len(), 2);
    let other = write(&ws, "empty2.csv", "username\n");
    let run = fleetauth(
        &with_lists(ws.grant_args(&emu, &[]), &[&empty, &other]),
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("lists no orgs"), "{}", run.stderr);
}

/// A receiving job handed `fleetauth-out/report.json` cannot write its own report over it:
/// the refusal names the out dir's report (no `--report` was given) and how to avoid it, and
/// the README's recipe (another `--out-dir`) works.
#[tokio::test(flavor = "multi_thread")]
async fn a_handed_over_report_in_the_out_dir_is_not_overwritten_and_another_out_dir_works() {
    let users = usernames("handed", 2);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = ws.out.join("report.json");
    let run = fleetauth(
        &with_lists(ws.grant_args(&emu, &["--force"]), &[&report]),
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        !run.stderr.contains("--report ") && run.stderr.contains("another --out-dir"),
        "{}",
        run.stderr
    );
    let other = ws.dir.path().join("fleet").display().to_string();
    let mut args = with_lists(ws.grant_args(&emu, &["--force"]), &[&report]);
    set_flag(&mut args, "--out-dir", other);
    let run = fleetauth(&args, None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// failed.csv, which CI recipes upload, leaves out a list's columns that hold secrets by name
/// (an access token, an sfdx auth URL) and keeps the rest; `grant` reads it back.
#[tokio::test(flavor = "multi_thread")]
async fn failed_csv_leaves_out_the_lists_secret_columns() {
    let known = usernames("secretcol", 1);
    let emu = start(config(&known)).await;
    let unknown = "test-secretcol-gone@example.com";
    let list = format!(
        "username,accessToken,team,sfdx_auth_url\n{},00Dxx!LIVETOKEN1,red,force://a\n{unknown},00Dxx!LIVETOKEN2,blue,force://b\n",
        known[0]
    );
    let ws = Workspace::new("orgs.csv", &list);
    let run = fleetauth(&ws.grant_args(&emu, &["--replication-timeout", "1s"]), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed = std::fs::read_to_string(ws.out.join("failed.csv")).unwrap();
    assert!(failed.starts_with("username,team\n"), "{failed}");
    assert!(
        failed.contains(unknown) && failed.contains("blue"),
        "{failed}"
    );
    assert!(
        !failed.contains("LIVETOKEN") && !failed.contains("force://"),
        "{failed}"
    );
}
