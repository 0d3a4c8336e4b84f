//! End-to-end tests: the real `fleetauth` binary against the emulator.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a test or benchmark fails by panicking"
)]
mod support;

#[path = "cli/devhub.rs"]
mod devhub;
#[path = "cli/ergonomics.rs"]
mod ergonomics;
#[path = "cli/exports.rs"]
mod exports;
#[path = "cli/failures.rs"]
mod failures;
#[path = "cli/grant.rs"]
mod grant;
#[path = "cli/handoff.rs"]
mod handoff;
#[path = "cli/hostile.rs"]
mod hostile;
#[path = "cli/input.rs"]
mod input;
#[path = "cli/install.rs"]
mod install;
#[path = "cli/lists.rs"]
mod lists;
#[path = "cli/open.rs"]
mod open;
#[path = "cli/outdir.rs"]
mod outdir;
#[path = "cli/outputs.rs"]
mod outputs;
#[path = "cli/review_trust.rs"]
mod review_trust;
#[path = "cli/runctl.rs"]
mod runctl;
#[path = "cli/secrets.rs"]
mod secrets;
#[path = "cli/sf_cli.rs"]
mod sf_cli;
#[path = "cli/trust.rs"]
mod trust;

use serde_json::Value;

pub(crate) fn orgs(report: &Value) -> &Vec<Value> {
    report["orgs"].as_array().expect("orgs is an array")
}

pub(crate) fn statuses(report: &Value) -> Vec<&str> {
    orgs(report)
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect()
}
