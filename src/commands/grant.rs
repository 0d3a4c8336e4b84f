//! `fleetauth grant`: the pipeline of a run, phase by phase.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::GrantArgs;
use crate::config::{ConfigError, GrantConfig, SfOptions};
use crate::exit::Exit;
use crate::fleet::{Fleet, Sinks};
use crate::input::{self, InputError};
use crate::plan;
use crate::progress::{self, Progress};
use crate::report::{self, Issuer, JUnit, Markdown, Report};
use crate::sfstate::handoff::Handoff;
use crate::sfstate::{SfState, SfStateError};
use crate::stop::{StopReason, Stopper};
use crate::store::{OutDir, StoreError};
use crate::token::TokenClient;

/// What stops a run before it starts (exit 2): nothing has been sent.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Sf(#[from] SfStateError),
}

/// A finished (or interrupted) run.
#[derive(Debug)]
pub struct Finished {
    pub report: Report,
    pub warnings: Vec<String>,
    /// Why the run ended early, if it did.
    pub stopped: Option<StopReason>,
}

impl Finished {
    pub fn exit(&self) -> Exit {
        if matches!(
            self.stopped,
            Some(StopReason::Interrupted | StopReason::Deadline(_))
        ) {
            Exit::Interrupted
        } else if self.report.summary.failed > 0 || self.report.summary.pending > 0 {
            Exit::SomeFailed
        } else {
            Exit::Success
        }
    }
}

/// Where the CI-facing reports of a run go, besides report.json: `--summary-md`, `--junit`,
/// and `$GITHUB_STEP_SUMMARY` unless `--no-step-summary`.
#[derive(Debug, Clone, Default)]
pub struct CiReports {
    pub summary_md: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub step_summary: Option<PathBuf>,
}

impl CiReports {
    pub fn from_args(args: &GrantArgs, env: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            summary_md: args.summary_md.clone(),
            junit: args.junit.clone(),
            step_summary: (!args.no_step_summary)
                .then(|| env("GITHUB_STEP_SUMMARY"))
                .flatten()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        }
    }

    /// Write each; a failure is a warning, never a lost run.
    fn write(&self, report: &Report, warnings: &mut Vec<String>) {
        if let Some(path) = &self.summary_md {
            if let Err(e) = report::write(report, &Markdown, path) {
                warnings.push(format!("--summary-md: {e}"));
            }
        }
        if let Some(path) = &self.junit {
            if let Err(e) = report::write(report, &JUnit, path) {
                warnings.push(format!("--junit: {e}"));
            }
        }
        if let Some(path) = &self.step_summary {
            if let Err(e) = report::append(report, &Markdown, path) {
                warnings.push(format!(
                    "cannot append the summary to $GITHUB_STEP_SUMMARY ({}): {e}",
                    path.display()
                ));
            }
        }
    }
}

/// Run a grant to the end, or until `stop` fires.
pub async fn run(config: GrantConfig, stop: Stopper) -> Result<Finished, SetupError> {
    run_with(config, &CiReports::default(), stop).await
}

/// [`run`], also writing the CI-facing reports.
pub async fn run_with(
    config: GrantConfig,
    ci: &CiReports,
    stop: Stopper,
) -> Result<Finished, SetupError> {
    let started_at = time::OffsetDateTime::now_utc();
    let started = Instant::now();

    // Read and check the list, and plan the run: nothing is sent before this passes.
    let list = input::read(&config.orgs, config.format)?;
    let plan = plan::plan(&list, config.shard, |target| {
        fresh_auth_file(&config, &target.username)
    });
    let mut warnings: Vec<String> = plan
        .duplicates
        .iter()
        .map(|(t, first)| {
            format!(
                "{}:{}: {} repeats the username of {first}; granted once",
                list.source, t.origin, t.username
            )
        })
        .collect();

    // Prepare the output directory and the one pooled client.
    let out = OutDir::open(&config.out_dir)?;
    let report_path = config
        .report
        .clone()
        .unwrap_or_else(|| out.path().join("report.json"));
    let client = TokenClient::new(config.request_timeout, config.limits.concurrency)?;
    let sf = match &config.sf {
        Some(options) => Some(handoff(options, &config, &mut warnings)?),
        None => None,
    };

    // Grant, with progress on stderr.
    let mut progress = Progress::new(
        plan.grant.len(),
        if config.output.quiet {
            progress::Mode::Quiet
        } else {
            progress::Mode::Auto
        },
    );
    let issuer = Issuer {
        list: list.source.clone(),
        client_id: config.signer.client_id().to_string(),
        audience: config.signer.audience().to_string(),
    };
    let fleet = Arc::new(Fleet::new(
        client,
        config.signer,
        config.policy,
        config.limits,
        config.host,
        Sinks {
            out: Some(out.clone()),
            sf,
        },
        stop.clone(),
    ));
    let outcomes = fleet
        .run(plan.grant.clone(), |event| progress.observe(event))
        .await;
    progress.finish();

    // Report: report.json (or --report), the CI reports, and failed.csv for the next run.
    let mut report = Report::build(&plan, outcomes, &issuer, started_at, started.elapsed());
    report.summary.shard = config.shard.map(|s| s.to_string());
    if let Err(e) = report.write(&report_path) {
        warnings.push(format!("{e}; the report is only on stdout with --json"));
    }
    ci.write(&report, &mut warnings);
    let failed_path = out.path().join("failed.csv");
    match report.write_failed(&list, &failed_path) {
        Ok(true) => warnings.push(format!(
            "{} org(s) not authorized; {} lists them for the next run",
            report.unfinished().count(),
            failed_path.display()
        )),
        Ok(false) => {}
        Err(e) => warnings.push(e.to_string()),
    }
    let stopped = stop.reason().cloned();
    if let Some(StopReason::Misconfigured { error, failures }) = &stopped {
        warnings.insert(
            0,
            format!(
                "stopped early: the first {failures} orgs all failed with `{}: {}`; the rest were not tried, to keep Salesforce from blocking this machine for failed logins. Fix: {}",
                error.code,
                error.description,
                error.hint.as_deref().unwrap_or("see the error")
            ),
        );
    }
    Ok(Finished {
        report,
        warnings,
        stopped,
    })
}

/// The target's auth file from an earlier run, if younger than `--fresh-for`.
fn fresh_auth_file(config: &GrantConfig, username: &str) -> Option<(std::path::PathBuf, String)> {
    let limit = config.fresh_for?;
    let path = config.out_dir.join(format!("{username}.json"));
    let meta = std::fs::symlink_metadata(&path)
        .ok()
        .filter(|m| m.is_file())?;
    let age = meta.modified().ok()?.elapsed().unwrap_or_default();
    (age < limit).then(|| {
        let age = std::time::Duration::from_secs(age.as_secs());
        let note = format!(
            "authorized {} ago by an earlier run (younger than --fresh-for {}); --force grants it again",
            humantime::format_duration(age),
            humantime::format_duration(limit)
        );
        (path, note)
    })
}

/// Open the Salesforce CLI's state for `--sf`; the Dev Hub named must already be there.
pub(crate) fn handoff(
    options: &SfOptions,
    config: &GrantConfig,
    warnings: &mut Vec<String>,
) -> Result<Handoff, SetupError> {
    let env = |var: &str| std::env::var(var).ok();
    let state = SfState::open(&options.home, &env, config.signer.key())?;
    if let Some(hub) = &options.dev_hub {
        if !state.has_auth(hub) {
            return Err(ConfigError::Usage(format!(
                "--dev-hub-username {hub}: the Dev Hub is not authorized in {}; log in to it first: fleetauth login -o {hub} -i <consumer key> -f <key> -r https://login.salesforce.com -d",
                state.auth_path(hub).display()
            ))
            .into());
        }
    }
    warnings.extend(state.notes.iter().cloned());
    Ok(Handoff {
        state: std::sync::Arc::new(state),
        http: crate::sfstate::probe::client(config.request_timeout)?,
        login_url: config.host.as_str().to_string(),
        client_id: config.signer.client_id().to_string(),
        dev_hub: options.dev_hub.clone(),
        alias_prefix: options.alias_prefix.clone(),
        probe_dev_hub: false,
    })
}
