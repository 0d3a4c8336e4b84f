//! How a run is controlled and how it ends: signals, --deadline, flag bounds, a store that
//! fails (a full disk, an out dir moved away), and values that must not panic.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// Poll `done` (an emulator counter, a file) until it holds, for up to a minute.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn total_grants(emu: &EmulatorHandle) -> u64 {
    grants(emu).values().sum()
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

// --- signals and the deadline -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_run_writes_the_report_and_exits_130() {
    let users = usernames("term", 30);
    let mut cfg = config(&users);
    cfg.latency = Duration::from_millis(50);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let child = command(ws.grant_args(&emu, &["--rate", "5", "--concurrency", "2"]))
        .spawn()
        .unwrap();
    wait_for("two grants", || total_grants(&emu) >= 2).await;
    let pid = libc::pid_t::try_from(child.id().unwrap()).unwrap();
    // SAFETY: a signal to our own child, not yet waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let run = finish(child).await;
    assert_eq!(run.code, 130, "{}", run.stderr);
    let report = ws.report();
    let (authorized, pending) = (
        report["summary"]["authorized"].as_u64().unwrap(),
        report["summary"]["pending"].as_u64().unwrap(),
    );
    assert!(authorized >= 2 && pending > 0, "{}", report["summary"]);
    assert_eq!(authorized + pending, 30);
    assert_eq!(ws.auth_files().len() as u64, authorized);
    assert!(temp_files(&ws.out).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_ends_a_run_whose_list_is_still_being_read() {
    let emu = start(config(&["a@x.com"])).await;
    let ws = Workspace::with_users(&["a@x.com".to_string()]);
    let mut args = ws.grant_args(&emu, &["--deadline", "1s"]);
    args[1] = "-".into();
    let mut child = command(&args).stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    use tokio::io::AsyncWriteExt as _;
    stdin.write_all(b"a@x.com\n").await.unwrap();
    // stdin stays open: the list never ends, the deadline must.
    let run = finish(child).await;
    drop(stdin);
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(run.stderr.contains("--deadline"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    assert_eq!(total_grants(&emu), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn temp_files_left_by_an_earlier_run_are_removed() {
    let emu = start(config(&["a@x.com"])).await;
    let ws = Workspace::with_users(&["a@x.com".to_string()]);
    std::fs::create_dir(&ws.out).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&ws.out, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        ws.out.join(".fleetauth-AbC123.tmp"),
        "{\"accessToken\":\"x\"}",
    )
    .unwrap();
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(temp_files(&ws.out), Vec::<String>::new());
}

// --- a store that fails ------------------------------------------------------------------------

/// The child may write files of at most `bytes` bytes; a larger write fails with EFBIG
/// ("File too large"), as a full disk fails with ENOSPC. SIGXFSZ keeps its default (death):
/// fleetauth itself must ignore it, as `ulimit -f` in a user's shell would leave it.
fn file_size_limit(cmd: &mut tokio::process::Command, bytes: u64) {
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.as_std_mut().pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_stops_the_run_says_why_and_points_at_no_file_it_did_not_write() {
    let users = usernames("full", 40);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let mut cmd = command(ws.grant_args(&emu, &["--concurrency", "4", "--rate", "1000", "--json"]));
    file_size_limit(&mut cmd, 64);
    let run = finish(cmd.spawn().unwrap()).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("File too large"), "{}", run.stderr);
    assert!(
        total_grants(&emu) <= 1 + 2 * 4,
        "the run kept sending after the store failed: {} grants",
        total_grants(&emu)
    );
    // The report could not be written: it is on stdout, and nothing points at the files.
    assert!(!ws.out.join("report.json").exists());
    assert!(!ws.out.join("failed.csv").exists());
    assert!(!run.stderr.contains("see the report"), "{}", run.stderr);
    assert!(!run.stderr.contains("lists them"), "{}", run.stderr);
    let envelope: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json envelope");
    assert_eq!(envelope["status"], 1);
    assert_eq!(envelope["result"]["summary"]["total"], 40);
    assert_eq!(envelope["result"]["summary"]["authorized"], 0);
    assert!(ws.auth_files().is_empty());
    assert!(temp_files(&ws.out).is_empty(), "{:?}", temp_files(&ws.out));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_out_dir_moved_away_stops_the_run_and_keeps_every_file_written() {
    let users = usernames("moved", 40);
    let mut cfg = config(&users);
    cfg.latency = Duration::from_millis(30);
    let emu = start(cfg).await;
    let ws = Workspace::with_users(&users);
    let child = command(ws.grant_args(&emu, &["--concurrency", "2", "--rate", "20", "--json"]))
        .spawn()
        .unwrap();
    let files = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .ends_with("@example.com.json")
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    wait_for("three auth files", || files(&ws.out) >= 3).await;
    let moved = ws.dir.path().join("moved");
    std::fs::rename(&ws.out, &moved).unwrap();
    let run = finish(child).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("No such file or directory"),
        "{}",
        run.stderr
    );
    let sent = total_grants(&emu);
    assert!(
        sent < 30,
        "the run kept sending after the store failed: {sent}"
    );
    let envelope: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json envelope");
    let summary = &envelope["result"]["summary"];
    // Every file written before the move is kept, and the report counts exactly those.
    assert_eq!(
        summary["authorized"].as_u64().unwrap(),
        files(&moved) as u64
    );
    assert_eq!(
        summary["authorized"].as_u64().unwrap()
            + summary["failed"].as_u64().unwrap()
            + summary["pending"].as_u64().unwrap(),
        40
    );
    assert!(!run.stderr.contains("see the report"), "{}", run.stderr);
}

// --- values that cannot work --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn flag_values_that_cannot_work_are_usage_errors_and_the_ranges_that_work_still_do() {
    let emu = start(config(&["a@x.com"])).await;
    let ws = Workspace::with_users(&["a@x.com".to_string()]);
    for rate in ["1e-20", "0", "-1", "NaN", "inf", "100001"] {
        let flag = format!("--rate={rate}");
        let run = fleetauth(&ws.grant_args(&emu, &[&flag]), None).await;
        assert_eq!(run.code, 2, "--rate {rate}: {}", run.stderr);
        assert!(run.stderr.contains("--rate"), "{}", run.stderr);
    }
    let run = fleetauth(&ws.grant_args(&emu, &["--rate", "100000"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = fleetauth(&ws.grant_args(&emu, &["--rate", "0.01", "--force"]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let keys = ws.dir.path().join("keys");
    for days in ["4294967295", "3000000"] {
        let args = [
            "keygen",
            "--days",
            days,
            "--out-dir",
            keys.to_str().unwrap(),
        ];
        let run = fleetauth(&args.map(String::from), None).await;
        assert_eq!(run.code, 2, "--days {days}: {}", run.stderr);
        assert!(run.stderr.contains("--days"), "{}", run.stderr);
    }
    assert!(!keys.join("server.key").exists(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_json_into_an_out_dir_whose_name_is_not_utf8_is_a_usage_error_not_a_panic() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt as _;
    let emu = start(config(&["a@x.com"])).await;
    let ws = Workspace::with_users(&["a@x.com".to_string()]);
    let mut name = ws.dir.path().as_os_str().to_owned().into_vec();
    name.extend_from_slice(b"/out-\xff");
    let out = OsString::from_vec(name);
    let mut args: Vec<OsString> = ws
        .token_args(&emu, "a@x.com", &["--json"])
        .into_iter()
        .map(OsString::from)
        .collect();
    let at = args.iter().position(|a| a == "--out-dir").unwrap();
    args[at + 1] = out;
    let run = finish(command(&args).spawn().unwrap()).await;
    // The auth file's path is recorded in the envelope as text: refused, before anything is sent.
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not valid UTF-8"), "{}", run.stderr);
    let envelope: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json envelope");
    assert_eq!(envelope["status"], 2);
    assert!(grants(&emu).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_over_the_size_cap_is_an_input_error_naming_the_cap() {
    let emu = start(config(&["a@x.com"])).await;
    let ws = Workspace::with_users(&["a@x.com".to_string()]);
    // One line over the cap: no need to hold more than that.
    let line = "a".repeat(65 * 1024 * 1024);
    let mut args = ws.grant_args(&emu, &[]);
    args[1] = "-".into();
    let mut child = command(&args).stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        // fleetauth stops reading at the cap: the rest meets a closed pipe.
        let _ = stdin.write_all(line.as_bytes()).await;
        line
    });
    let run = finish(child).await;
    let line = feeder.await.unwrap();
    assert_eq!(run.code, 2, "{}", &run.stderr[..run.stderr.len().min(2000)]);
    assert!(
        run.stderr.contains("64 MiB"),
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert!(
        run.stderr.contains("split"),
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    std::fs::write(&ws.list, &line).unwrap();
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("64 MiB"),
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert_eq!(total_grants(&emu), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_in_the_out_dir_does_not_hang_token() {
    let emu = start(config(&["a@x.com"])).await;
    let ws = Workspace::new("orgs.csv", "username,alias\na@x.com,ci1\n");
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fifo = std::ffi::CString::new(ws.out.join("b@x.com.json").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let child = command(ws.token_args(&emu, "ci1", &[])).spawn().unwrap();
    let run = tokio::time::timeout(Duration::from_secs(30), finish(child))
        .await
        .expect("token did not hang on the FIFO");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), ws.auth_token("a@x.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_into_a_closed_stdout_fails() {
    let emu = start(config(&["a@x.com"])).await;
    let ws = Workspace::new("orgs.csv", "username,alias\na@x.com,ci1\n");
    let run = fleetauth(&ws.grant_args(&emu, &[]), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut cmd = command(ws.token_args(&emu, "ci1", &[]));
    // SAFETY: close only touches the child's own descriptor table.
    unsafe {
        cmd.as_std_mut().pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let run = finish(cmd.spawn().unwrap()).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("stdout"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_step_summary_of_a_fleet_wide_failure_of_6000_orgs_stays_small() {
    let users: Vec<String> = (0..6000)
        .map(|i| format!("test-a-rather-long-scratch-org-username-{i:05}@example.com"))
        .collect();
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let summary = ws.dir.path().join("step-summary.md");
    let mut args = ws.grant_args(&emu, &[]);
    set_flag(&mut args, "-i", "3MVGwrongKEY");
    let run = fleetauth_env(
        &args,
        None,
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let text = std::fs::read_to_string(&summary).unwrap();
    // The orgs never tried share one row (the cap itself is pinned by markdown's unit test).
    assert!(text.len() < 64 * 1024, "{} bytes", text.len());
    assert!(text.contains("invalid\\_client\\_id"), "{text}");
}

// --- sf's state ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_live_alias_lock_fails_the_aliases_not_the_orgs_whose_auth_files_were_written() {
    let users = usernames("alock", 3);
    let emu = start(config(&users)).await;
    let ws = Workspace::with_users(&users);
    let home = ws.dir.path().join("home");
    let lock = home.join(".sfdx/alias.json.lock");
    std::fs::create_dir_all(&lock).unwrap();
    // A running sf refreshes its lock's time; this one stays live for the whole run.
    let refresher = {
        let lock = lock.clone();
        tokio::spawn(async move {
            loop {
                let path = std::ffi::CString::new(lock.to_str().unwrap()).unwrap();
                // SAFETY: utimes with a valid C string and a null time (now).
                unsafe { libc::utimes(path.as_ptr(), std::ptr::null()) };
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let sf_home = home.display().to_string();
    let args = ws.grant_args(&emu, &["--sf-home", &sf_home, "--alias-prefix", "P"]);
    let run = fleetauth(&args, None).await;
    refresher.abort();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = ws.report();
    assert_eq!(
        crate::statuses(&report),
        ["authorized"; 3],
        "{}",
        run.stderr
    );
    for user in &users {
        assert!(home.join(format!(".sfdx/{user}.json")).is_file());
    }
    assert!(
        run.stderr.contains("3 sf alias(es) could not be written")
            && run.stderr.contains("their sf auth files are written")
            && run.stderr.contains("sf alias set P1="),
        "{}",
        run.stderr
    );
}
