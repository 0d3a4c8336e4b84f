//! `fleetauth token <USERNAME|ALIAS>`: a usable access token for one org, for the job that was
//! handed the org: `SF_ACCESS_TOKEN=$(fleetauth token ci3)`. The token comes from
//! [`session::obtain`](crate::commands::session::obtain): the org's fresh auth file, or a grant.
//!
//! The token goes to stdout (or `$GITHUB_ENV`) and nowhere else: never to stderr.

use crate::cli::TokenArgs;
use crate::commands::session::{self, TokenError};
use crate::exit::Exit;

mod export;

pub async fn run(args: TokenArgs) -> Exit {
    let (json, export) = (args.json, export::Export::from_args(&args));
    let mut warnings = Vec::new();
    let result = match token(args, &mut warnings).await {
        Ok(issued) => export::print(&issued, export, json, &warnings).map_err(TokenError::Failed),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Exit::Success,
        Err(e) => crate::finish::fail(&e, &warnings, json),
    }
}

async fn token(args: TokenArgs, warnings: &mut Vec<String>) -> Result<session::Issued, TokenError> {
    let env = |var: &str| std::env::var(var).ok();
    // Everything that can be checked without sending anything, first.
    export::Export::from_args(&args)
        .preflight(&env)
        .map_err(TokenError::Usage)?;
    session::obtain(args, warnings).await
}
