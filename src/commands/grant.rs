//! `fleetauth grant`: the pipeline of a run, phase by phase.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, GrantConfig};
use crate::exit::Exit;
use crate::fleet::Fleet;
use crate::input::{self, InputError};
use crate::plan;
use crate::progress::{self, Progress};
use crate::report::Report;
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
}

/// A finished (or interrupted) run.
#[derive(Debug)]
pub struct Finished {
    pub report: Report,
    pub warnings: Vec<String>,
    pub interrupted: bool,
}

impl Finished {
    pub fn exit(&self) -> Exit {
        if self.interrupted {
            Exit::Interrupted
        } else if self.report.summary.failed > 0 || self.report.summary.pending > 0 {
            Exit::SomeFailed
        } else {
            Exit::Success
        }
    }
}

/// Run a grant to the end, or until `cancel` fires.
pub async fn run(config: GrantConfig, cancel: CancellationToken) -> Result<Finished, SetupError> {
    let started_at = time::OffsetDateTime::now_utc();
    let started = Instant::now();

    // Read and check the list, and plan the run: nothing is sent before this passes.
    let list = input::read(&config.orgs, config.format)?;
    let plan = plan::plan(&list);
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

    // Grant, with progress on stderr.
    let mut progress = Progress::new(
        plan.grant.len(),
        if config.output.quiet {
            progress::Mode::Quiet
        } else {
            progress::Mode::Auto
        },
    );
    let fleet = Arc::new(Fleet::new(
        client,
        config.signer,
        config.policy,
        config.limits,
        config.host,
        out.clone(),
        cancel.clone(),
    ));
    let outcomes = fleet
        .run(plan.grant.clone(), |event| progress.observe(event))
        .await;
    progress.finish();

    // Report: report.json (or --report), and failed.csv for the next run.
    let report = Report::build(&plan, outcomes, started_at, started.elapsed());
    if let Err(e) = report.write(&report_path) {
        warnings.push(format!("{e}; the report is only on stdout with --json"));
    }
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
    Ok(Finished {
        report,
        warnings,
        interrupted: cancel.is_cancelled(),
    })
}
