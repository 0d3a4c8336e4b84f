//! How every command ends: one mapping from an error to its exit code, its name and the
//! `--json` envelope (shaped like the Salesforce CLI's error output), and the printing of a
//! finished run. Each command returns a typed error; nothing else picks an exit code for one.

use crate::commands::grant::Finished;
use crate::commands::session::TokenError;
use crate::commands::setup::SetupError;
use crate::config::Output;
use crate::exit::Exit;
use crate::{report, sanitize, say, say_err};

/// An error that ends a command: what the pipeline sees of it.
pub trait Failure: std::fmt::Display {
    /// The exit code.
    fn exit(&self) -> Exit;
    /// The `name` of the `--json` envelope (sf's error names: `UsageError`, `ConfigError`…).
    fn name(&self) -> &'static str;
}

/// A command line or a setting that cannot work: nothing was done (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Failure for UsageError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
    fn name(&self) -> &'static str {
        "UsageError"
    }
}

impl Failure for SetupError {
    fn exit(&self) -> Exit {
        match self {
            SetupError::Interrupted | SetupError::DeadlineWhileReading(_) => Exit::Interrupted,
            _ => Exit::Usage,
        }
    }
    fn name(&self) -> &'static str {
        match self {
            SetupError::Config(_) => "ConfigError",
            SetupError::Input(_) => "InputError",
            SetupError::Store(_) => "StoreError",
            SetupError::Client(_) => "ClientError",
            SetupError::Sf(_) | SetupError::Sink(_) => "SfStateError",
            SetupError::Hub(_) => "DevHubError",
            SetupError::Output(_) => "OutputError",
            SetupError::Interrupted => "Interrupted",
            SetupError::DeadlineWhileReading(_) => "Deadline",
        }
    }
}

impl Failure for TokenError {
    fn exit(&self) -> Exit {
        match self {
            TokenError::Usage(_) | TokenError::Setup(_) => Exit::Usage,
            TokenError::Failed(_) => Exit::SomeFailed,
            TokenError::Interrupted => Exit::Interrupted,
        }
    }
    fn name(&self) -> &'static str {
        match self {
            TokenError::Usage(_) => "UsageError",
            TokenError::Setup(e) => e.name(),
            TokenError::Failed(_) => "GrantError",
            TokenError::Interrupted => "Interrupted",
        }
    }
}

/// End a command with `error`: `error: …` and the warnings on stderr, the envelope on stdout
/// with `--json`; the exit code.
/// Messages about settings may quote what the user typed: key text pasted where a path was
/// expected is never shown ([`sanitize::without_key_material`]).
pub fn fail(error: &dyn Failure, warnings: &[String], json: bool) -> Exit {
    let message = error.to_string();
    let message = sanitize::without_key_material(&message);
    let warnings: Vec<String> = warnings
        .iter()
        .map(|w| sanitize::without_key_material(w).into_owned())
        .collect();
    say_err!("error: {message}");
    for w in &warnings {
        say_err!("warning: {w}");
    }
    let exit = error.exit();
    if json {
        let _ = print_json(&error_envelope(exit, error.name(), &message, &warnings));
    }
    exit
}

/// The `--json` envelope of a command that failed, shaped like sf's error output.
pub fn error_envelope(
    exit: Exit,
    name: &str,
    message: &str,
    warnings: &[String],
) -> serde_json::Value {
    serde_json::json!({
        "status": exit as u8,
        "name": name,
        "message": message,
        "exitCode": exit as u8,
        "warnings": warnings,
    })
}

/// Print a grant's result (summary on stderr, the `--json` envelope on stdout) and pick the
/// exit code. `--quiet` drops the summary only: warnings and errors are always printed.
pub fn grant(result: Result<Finished, SetupError>, output: Output) -> Exit {
    let finished = match result {
        Ok(finished) => finished,
        Err(e) => return fail(&e, &[], output.json),
    };
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
    if !output.json {
        return exit;
    }
    /// The envelope, serialized straight from the report (no copy of it).
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        status: u8,
        result: &'a report::Report,
        warnings: &'a [String],
        errors: &'a [String],
    }
    // Every error of the run: the outputs that could not be written, and each group of failed
    // orgs (an empty list while orgs failed would read as a clean run).
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
    if print_json(&envelope) {
        return exit;
    }
    match &finished.report_file {
        Some(path) => say_err!(
            "error: cannot write the --json report to stdout; the report is in {}",
            path.display()
        ),
        None => say_err!("error: cannot write the --json report to stdout, and the report file could not be written either"),
    }
    if exit == Exit::Success {
        Exit::SomeFailed
    } else {
        exit
    }
}

/// `value` as pretty JSON on stdout, streamed; `false` when stdout is gone or full.
pub fn print_json(value: &impl serde::Serialize) -> bool {
    use std::io::Write as _;
    if say::stdout_was_closed() {
        return false;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value).is_ok()
        && out.write_all(b"\n").is_ok()
        && out.flush().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setup_error_is_a_usage_error_but_an_interruption() {
        let interrupted = SetupError::Interrupted;
        assert_eq!(interrupted.exit(), Exit::Interrupted);
        let deadline = SetupError::DeadlineWhileReading(std::time::Duration::from_secs(2));
        assert_eq!(deadline.exit(), Exit::Interrupted);
        let output = SetupError::Output("x".into());
        assert_eq!((output.exit(), output.name()), (Exit::Usage, "OutputError"));
    }

    #[test]
    fn a_token_error_names_its_setup_cause() {
        let e = TokenError::Setup(SetupError::Output("x".into()));
        assert_eq!((e.exit(), e.name()), (Exit::Usage, "OutputError"));
        let failed = TokenError::Failed("no".into());
        assert_eq!(
            (failed.exit(), failed.name()),
            (Exit::SomeFailed, "GrantError")
        );
    }

    #[test]
    fn the_envelope_carries_the_exit_code_twice_and_the_warnings() {
        let v = error_envelope(Exit::Usage, "UsageError", "bad", &["w".to_string()]);
        assert_eq!(v["status"], 2);
        assert_eq!(v["exitCode"], 2);
        assert_eq!(v["warnings"][0], "w");
        assert_eq!(v["message"], "bad");
    }
}
