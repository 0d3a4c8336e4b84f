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
pub mod defaults;
pub mod emulator;
pub mod exit;
pub mod files;
pub mod finish;
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
            finish::grant(result, output)
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
                Err(e) => finish::fail(&finish::UsageError(e.to_string()), &[], false),
            }
        }
        Command::Emulate(args) => commands::emulate::run(args).await,
    }
}
