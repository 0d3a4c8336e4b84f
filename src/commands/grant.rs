//! `fleetauth grant`: the pipeline of a run, phase by phase.

use std::sync::Arc;
use std::time::Instant;

use crate::config::{CiReports, GrantConfig};
use crate::exit::Exit;
use crate::fleet::{Fleet, Sinks};
use crate::input::{self, InputError};
use crate::plan;
use crate::progress::{self, Progress};
use crate::report::{self, Issuer, JUnit, Markdown, Report, StepSummary};
use crate::stop::{StopReason, Stopper};
use crate::store::{OutDir, Outputs};
use crate::token::TokenClient;

use super::setup::handoff;
pub use super::setup::SetupError;

/// A finished (or interrupted) run.
#[derive(Debug)]
pub struct Finished {
    pub report: Report,
    pub warnings: Vec<String>,
    /// Outputs that could not be written (report, failed.csv, summaries): the run fails.
    pub errors: Vec<String>,
    /// Why the run ended early, if it did.
    pub stopped: Option<StopReason>,
    /// Where the report was written (`None`: it could not be).
    pub report_file: Option<std::path::PathBuf>,
}

impl Finished {
    pub fn exit(&self) -> Exit {
        if matches!(
            self.stopped,
            Some(StopReason::Interrupted | StopReason::Deadline(_))
        ) {
            Exit::Interrupted
        } else if self.report.summary.failed > 0
            || self.report.summary.pending > 0
            || !self.errors.is_empty()
        {
            Exit::SomeFailed
        } else {
            Exit::Success
        }
    }
}

/// Write the CI-facing reports (`--summary-md`, `--junit`, `$GITHUB_STEP_SUMMARY`). Their
/// paths were checked before the first request; a failure now fails the run (exit 1), with
/// every grant kept.
fn write_ci_reports(
    ci: &CiReports,
    report: &Report,
    full_report: Option<&std::path::Path>,
    errors: &mut Vec<String>,
) {
    if let Some(path) = &ci.summary_md {
        if let Err(e) = report::write(report, &Markdown, path) {
            errors.push(format!("--summary-md: {e}"));
        }
    }
    if let Some(path) = &ci.junit {
        if let Err(e) = report::write(report, &JUnit, path) {
            errors.push(format!("--junit: {e}"));
        }
    }
    if let Some(path) = &ci.step_summary {
        let summary = StepSummary {
            full_report: full_report.map(|p| p.display().to_string()),
        };
        if let Err(e) = report::append(report, &summary, path) {
            errors.push(format!(
                "cannot append the summary to $GITHUB_STEP_SUMMARY ({}): {e}; --no-step-summary skips it",
                path.display()
            ));
        }
    }
}

/// Run a grant to the end, or until `stop` fires.
pub async fn run(config: GrantConfig, stop: Stopper) -> Result<Finished, SetupError> {
    let started_at = time::OffsetDateTime::now_utc();
    let started = Instant::now();

    // Read and check the list: nothing is sent before this passes. Reading waits for stdin,
    // so it runs apart and a signal still ends the run.
    let (orgs, format) = (config.orgs.clone(), config.format);
    // A signal or the deadline while the list is still being read ends the run there: no
    // org is known yet, so there is nothing to report but that nothing was sent. A deadline of
    // zero (check the list, send nothing) still reads it, for a report of every org pending;
    // a second Ctrl-C ends even that.
    let reading_ends = async {
        stop.stopped().await;
        if matches!(stop.reason(), Some(StopReason::Deadline(d)) if d.is_zero()) {
            stop.aborted().await;
        }
    };
    let list = match orgs.is_empty() {
        true => None,
        false => Some(tokio::select! {
            biased;
            () = reading_ends => return Err(match stop.reason() {
                Some(StopReason::Deadline(limit)) => SetupError::DeadlineWhileReading(*limit),
                _ => SetupError::Interrupted,
            }),
            read = tokio::task::spawn_blocking(move || input::read_all(&orgs, format)) => {
                read.map_err(|e| SetupError::Output(format!("reading the list failed: {e}")))??
            }
        }),
    };
    if let Some(list) = &list {
        input::check_hosts(list, &config.network.hosts)?;
    }

    // Preflight: every place this run writes to is usable before the first request.
    let out = OutDir::open(&config.out_dir)?;
    let report_path = config
        .report
        .clone()
        .unwrap_or_else(|| out.path().join("report.json"));
    claim_outputs(&config, &out, &report_path)?;
    preflight_output(&report_path)?;
    for path in config.ci.paths() {
        preflight_output(path)?;
    }
    let mut warnings: Vec<String> = config.network.warnings.clone();
    let sf = match &config.sf {
        Some(options) => Some(handoff(options, &config, &mut warnings)?),
        None => None,
    };
    let sinks = Sinks::for_run(out.clone(), &config.signer, &config.host, sf);

    // The Dev Hub (-v): the list itself when none was given, else the check of every row
    // before anything is sent for it.
    let (list, hub) = match &config.hub {
        Some(options) => {
            let cache = crate::hub::cache::path(out.path(), options, config.signer.client_id());
            let asked = crate::hub::vet::prepare(
                options,
                &config.signer,
                &config.network,
                config.request_timeout,
                Some(&cache),
                list,
                &mut warnings,
            );
            let (list, prepared) = tokio::select! {
                biased;
                () = stop.stopped() => return Err(SetupError::Interrupted),
                asked = asked => asked?,
            };
            (list, Some(prepared))
        }
        None => (
            list.ok_or_else(|| {
                SetupError::Output("no org list given: name one, or the Dev Hub with -v".into())
            })?,
            None,
        ),
    };

    // Plan: each username once, and not again while every sink holds a fresh grant of it.
    // The list's rows move into the plan: a fleet is large, and they are held once.
    let input::OrgList {
        source,
        columns,
        targets,
        excluded,
    } = list;
    let plan = plan::plan_owned(targets, excluded, config.shard, |target| {
        if hub
            .as_ref()
            .is_some_and(|h| h.refusal(&target.username).is_some())
        {
            return None;
        }
        sinks.fresh(target, config.fresh_for)
    });
    warnings.extend(plan.duplicates.iter().map(|(t, first)| {
        format!(
            "{}: {} repeats the username of {first}; granted once",
            t.origin.at(&source),
            t.username
        )
    }));
    warnings.extend(
        plan.excluded
            .iter()
            .map(|(t, why)| format!("{}: {} is {why}", t.origin.at(&source), t.username)),
    );
    if let Some(prefix) = config.sf.as_ref().and_then(|o| o.alias_prefix.as_deref()) {
        let rows = plan::prefix_alias_conflicts(&plan, prefix);
        if !rows.is_empty() {
            return Err(InputError::Rejected {
                source_name: source,
                rows,
            }
            .into());
        }
    }
    sinks.preflight(&plan.grant, &mut warnings)?;
    let client = TokenClient::new(
        config.request_timeout,
        config.limits.concurrency,
        &config.network,
    )?;

    // Grant, with progress on stderr.
    let progress = Progress::new(
        plan.grant.len(),
        if config.output.quiet {
            progress::Mode::Quiet
        } else {
            progress::Mode::Auto
        },
    );
    let issuer = Issuer {
        list: source.clone(),
        client_id: config.signer.client_id().into(),
        audience: config.signer.audience().into(),
    };
    let fleet = Arc::new(Fleet::new(
        client,
        config.signer,
        config.policy,
        config.limits,
        config.host,
        sinks,
        stop.clone(),
    ));
    // Orgs the Dev Hub refused fail at once: nothing is sent for them.
    let outcomes = match &hub {
        Some(hub) => {
            if let Some(w) = hub.expiring(
                &plan.grant,
                config
                    .hub
                    .as_ref()
                    .map_or_else(Default::default, |h| h.warn_expiring),
            ) {
                warnings.push(w);
            }
            let (send, refusals) = hub.split(&plan.grant);
            let outcomes = progress
                .during(Arc::clone(&fleet).run(&send, |event| progress.observe(event)))
                .await;
            crate::hub::Prepared::merge(refusals, outcomes)
        }
        None => {
            progress
                .during(Arc::clone(&fleet).run(&plan.grant, |event| progress.observe(event)))
                .await
        }
    };
    progress.finish();
    let closing = fleet.sinks().finish().await;
    // The fleet (its client, pools and books) goes before the report's rows are made.
    drop(fleet);
    warnings.extend(closing.warnings);
    let mut errors = closing.errors;
    if let Some(StopReason::StoreFailed { error }) = stop.reason() {
        errors.push(format!(
            "stopped: {}; no more token requests were sent. Every auth file written before is kept in {}; fix that (free space, restore the directory), then re-run the same command: what was stored is skipped",
            error.description,
            out.path().display()
        ));
    }
    // Every write queued has landed or failed, and no temp file (holding a token) is left.
    if let Err(e) = out.settle().await {
        warnings.push(format!(
            "cannot remove leftover temp files in {}: {e}; delete the .fleetauth-*.tmp files there (they may hold tokens)",
            out.path().display()
        ));
    }

    // Report: report.json (or --report), the CI reports, and failed.csv for the next run. A
    // report that cannot be written fails the run, loudly; every grant already made is kept.
    // The list's own cells of the authorized orgs are needed no more (failed.csv lists the
    // others): let them go before the report's rows are made.
    let mut plan = plan;
    for (target, outcome) in plan.grant.iter_mut().zip(&outcomes) {
        if outcome.status == crate::fleet::Status::Authorized {
            target.record = Vec::new();
        }
    }
    release_free_memory();
    let mut report = Report::build(&plan, outcomes, &issuer, started_at, started.elapsed());
    report.summary.shard = config.shard.map(|s| s.to_string());
    if let Some(hub) = &hub {
        hub.annotate(&mut report);
    }
    let report_written = match report.write(&report_path) {
        Ok(()) => true,
        Err(e) => {
            errors.push(format!(
                "{e}; every grant made is kept in {}{}",
                out.path().display(),
                if config.output.json {
                    ", and the report is on stdout (--json)"
                } else {
                    "; --json prints the report on stdout"
                }
            ));
            false
        }
    };
    write_ci_reports(
        &config.ci,
        &report,
        report_written.then_some(report_path.as_path()),
        &mut errors,
    );
    let failed_path = out.path().join("failed.csv");
    match report.write_failed(&columns, &plan.grant, &failed_path) {
        Ok(true) => warnings.push(format!(
            "{} not authorized; {} lists them for the next run",
            report::plural(report.unfinished().count() as u64, "org"),
            failed_path.display()
        )),
        Ok(false) => {}
        Err(e) => errors.push(e.to_string()),
    }
    let mut stopped = stop.reason().cloned();
    if let Some(hub) = &hub {
        hub.diagnose_stop(&mut stopped);
    }
    if let Some(StopReason::Misconfigured { error, failures }) = &stopped {
        warnings.insert(
            0,
            format!(
                "stopped early: {} failed with `{}: {}`; the rest were not tried, to keep Salesforce from blocking this machine for failed logins. Fix: {}",
                crate::fleet::first_orgs(*failures),
                error.code,
                error.description,
                error.hint.as_deref().unwrap_or("see the error")
            ),
        );
    }
    Ok(Finished {
        report,
        warnings,
        errors,
        stopped,
        report_file: report_written.then_some(report_path),
    })
}

/// Give the memory the fleet's requests freed back to the system before the report's rows are
/// made: glibc keeps freed memory in each thread's arena, where the rows (made on this thread)
/// cannot use it, so a large fleet's peak would hold both.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages of the allocator's heaps back to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// No output may land on a file the run reads or keeps (an org's auth file, the out dir's lock,
/// report.json or failed.csv, the list, the key, sf's state) or on another output.
fn claim_outputs(
    config: &GrantConfig,
    out: &OutDir,
    report_path: &std::path::Path,
) -> Result<(), SetupError> {
    let mut outputs = Outputs::new(out);
    for orgs in config.orgs.iter().filter(|o| o.as_os_str() != "-") {
        outputs.reserve(orgs, "the org list");
    }
    if let crate::credentials::KeyOrigin::File(key) = &config.signer.key().origin {
        outputs.reserve(key, "the private key");
    }
    if let Some(sf) = &config.sf {
        outputs.reserve_dir(&sf.home.join(".sfdx"), "the Salesforce CLI's state");
        outputs.reserve_dir(&sf.home.join(".sf"), "the Salesforce CLI's config");
    }
    // The default report is the out dir's: a receiving job's list may be that very file.
    let report_flag = match config.report {
        Some(_) => "--report",
        None => "the run's report (the out dir's report.json; give this run another --out-dir, or --report)",
    };
    outputs
        .claim(report_flag, report_path)
        .map_err(SetupError::Output)?;
    if config.report.is_some() {
        outputs.reserve(
            &out.path().join("report.json"),
            "the out dir's report.json, which `fleetauth token` reads",
        );
    }
    let ci = &config.ci;
    for (flag, path) in [
        ("--summary-md", &ci.summary_md),
        ("--junit", &ci.junit),
        ("$GITHUB_STEP_SUMMARY", &ci.step_summary),
    ] {
        if let Some(path) = path {
            outputs.claim(flag, path).map_err(SetupError::Output)?;
        }
    }
    Ok(())
}

/// A report path must be writable before anything is sent: its directory exists and takes a
/// new file.
pub fn preflight_output(path: &std::path::Path) -> Result<(), SetupError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(SetupError::Output(format!(
                "{} is a directory; give a file path for the report",
                path.display()
            )))
        }
        // Reports replace their file atomically: a device, a pipe or a symlink (`/dev/stdout`)
        // would be replaced by a regular file, not written through.
        Ok(meta) if !meta.is_file() => {
            return Err(SetupError::Output(format!(
                "{} is not a regular file (a device, pipe or symbolic link), and fleetauth replaces report files whole; give a regular file path (for the report on stdout, use --json)",
                path.display()
            )))
        }
        _ => {}
    }
    tempfile::Builder::new()
        .prefix(".fleetauth-probe-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            SetupError::Output(format!(
                "cannot write {}: {e}; fix the directory or pick another path (nothing was sent)",
                path.display()
            ))
        })
}
