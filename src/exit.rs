//! Exit codes, the contract with the calling pipeline (listed in the README).

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every org authorized (or skipped).
    Success = 0,
    /// The run finished, and some orgs failed.
    SomeFailed = 1,
    /// Usage, configuration or input error: nothing was sent.
    Usage = 2,
    /// Interrupted (SIGINT, SIGTERM or `--deadline`); the report lists the pending orgs.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}
