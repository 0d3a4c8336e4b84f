//! fleetauth: authorize whole fleets of Salesforce scratch orgs at once.
//!
//! The flow of a run, one module per stage:
//! `input` → `plan` → `fleet` (with `credentials`, `assertion`, `token`, `retry`) → `store`
//! and `report`, while `progress` draws on stderr. `emulator` is the token endpoint used by
//! the demo, the tests and the benchmarks.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod assertion;
pub mod cli;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod emulator;
pub mod exit;
pub mod fleet;
pub mod hub;
pub mod input;
pub mod manpage;
pub mod plan;
pub mod progress;
pub mod report;
pub mod retry;
pub mod sanitize;
pub mod say;
pub mod secret;
pub mod sfstate;
pub mod stop;
pub mod store;
pub mod tls;
pub mod token;
pub mod urls;

use crate::cli::{Cli, Command};
use crate::commands::grant::{Finished, SetupError};
use crate::config::{GrantConfig, Output};
use crate::exit::Exit;
use crate::stop::Stopper;

/// Run one command to its exit code.
pub async fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Grant(args) => {
            let output = Output {
                quiet: args.quiet,
                json: args.json,
            };
            // Signals first: a run waiting on its list (stdin) must still end on Ctrl-C.
            let stop = Stopper::new();
            stop.on_signals();
            let result = async {
                let config = GrantConfig::from_args(*args, |var| std::env::var(var).ok())?;
                stop.after(config.deadline);
                commands::grant::run(config, stop).await
            }
            .await;
            present(result, output)
        }
        Command::Token(args) => commands::token::run(args).await,
        Command::Open(args) => commands::open::run(args).await,
        Command::Login(args) => commands::login::run(args).await,
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Bench(args) => commands::bench::run(args).await,
        Command::Check(args) => commands::check::run(args).await,
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "fleetauth", &mut std::io::stdout());
            Exit::Success
        }
        Command::Man { command } => {
            let mut out = std::io::stdout().lock();
            match manpage::render(command.as_deref(), &mut out) {
                Ok(()) => Exit::Success,
                Err(e) => {
                    crate::say_err!("error: {e}");
                    Exit::Usage
                }
            }
        }
        Command::Emulate(args) => commands::emulate::run(args).await,
    }
}

/// Print a run's result (summary on stderr, the `--json` envelope on stdout) and pick the exit
/// code. `--quiet` drops the summary only: warnings and errors are always printed.
pub fn present(result: Result<Finished, SetupError>, output: Output) -> Exit {
    match result {
        Ok(finished) => {
            let exit = finished.exit();
            if !output.quiet {
                say::err_raw(&report::terminal(
                    &finished.report,
                    finished.report_file.as_deref(),
                ));
            }
            for w in &finished.warnings {
                say_err!("warning: {w}");
            }
            for e in &finished.errors {
                say_err!("error: {e}");
            }
            if output.json {
                /// The envelope, serialized straight from the report (no copy of it).
                #[derive(serde::Serialize)]
                struct Envelope<'a> {
                    status: u8,
                    result: &'a report::Report,
                    warnings: &'a [String],
                    errors: &'a [String],
                }
                // Every error of the run: the outputs that could not be written, and each group
                // of failed orgs (an empty list while orgs failed would read as a clean run).
                let errors: Vec<String> = finished
                    .errors
                    .iter()
                    .cloned()
                    .chain(finished.report.failures())
                    .collect();
                let envelope = Envelope {
                    status: exit as u8,
                    result: &finished.report,
                    warnings: &finished.warnings,
                    errors: &errors,
                };
                // A pipeline reading the report from stdout must not get an empty one and 0.
                if !print_stdout(&envelope) {
                    match &finished.report_file {
                        Some(path) => say_err!(
                            "error: cannot write the --json report to stdout; the report is in {}",
                            path.display()
                        ),
                        None => say_err!("error: cannot write the --json report to stdout, and the report file could not be written either"),
                    }
                    if exit == Exit::Success {
                        return Exit::SomeFailed;
                    }
                }
            }
            exit
        }
        Err(e) => {
            say_err!("error: {e}");
            let (exit, kind) = match &e {
                SetupError::Config(_) => (Exit::Usage, "ConfigError"),
                SetupError::Input(_) => (Exit::Usage, "InputError"),
                SetupError::Store(_) => (Exit::Usage, "StoreError"),
                SetupError::Client(_) => (Exit::Usage, "ClientError"),
                SetupError::Sf(_) => (Exit::Usage, "SfStateError"),
                SetupError::Hub(_) => (Exit::Usage, "DevHubError"),
                SetupError::Output(_) => (Exit::Usage, "OutputError"),
                SetupError::Interrupted => (Exit::Interrupted, "Interrupted"),
                SetupError::DeadlineWhileReading(_) => (Exit::Interrupted, "Deadline"),
            };
            if output.json {
                let _ = print_stdout(&error_envelope(exit, kind, &e.to_string()));
            }
            exit
        }
    }
}

/// The `--json` envelope of a run that did not start, shaped like sf's error output.
pub fn error_envelope(exit: Exit, name: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "status": exit as u8,
        "name": name,
        "message": message,
        "exitCode": exit as u8,
        "warnings": [],
    })
}

/// `value` as pretty JSON on stdout, streamed; `false` when stdout is gone or full.
fn print_stdout(value: &impl serde::Serialize) -> bool {
    use std::io::Write as _;
    if say::stdout_was_closed() {
        return false;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value).is_ok()
        && out.write_all(b"\n").is_ok()
        && out.flush().is_ok()
}
