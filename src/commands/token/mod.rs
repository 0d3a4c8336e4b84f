//! `fleetauth token <USERNAME|ALIAS>`: a usable access token for one org, for the job that was
//! handed the org: `SF_ACCESS_TOKEN=$(fleetauth token ci3)`. The token comes from
//! [`session::obtain`](crate::commands::session::obtain): the org's fresh auth file, or a grant.
//!
//! The token goes to stdout (or `$GITHUB_ENV`) and nowhere else: never to stderr.

use std::io::Write as _;
use std::path::PathBuf;

use serde_json::json;

use crate::cli::{TokenArgs, TokenFormat};
use crate::commands::session::{self, TokenError};
use crate::exit::Exit;

mod export;

pub async fn run(args: TokenArgs) -> Exit {
    let (json, format) = (args.json, args.format);
    let mut warnings = Vec::new();
    let result = match token(args, &mut warnings).await {
        Ok(issued) => export::print(&issued, format, json, &warnings).map_err(TokenError::Failed),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Exit::Success,
        Err(e) => {
            crate::say_err!("error: {e}");
            for w in &warnings {
                crate::say_err!("warning: {w}");
            }
            if json {
                let envelope = json!({
                    "status": e.exit() as u8,
                    "name": e.name(),
                    "message": e.to_string(),
                    "warnings": warnings,
                });
                let mut out = std::io::stdout().lock();
                let _ = serde_json::to_writer_pretty(&mut out, &envelope);
                let _ = writeln!(out);
            }
            e.exit()
        }
    }
}

async fn token(args: TokenArgs, warnings: &mut Vec<String>) -> Result<session::Issued, TokenError> {
    let env = |var: &str| std::env::var(var).ok();
    // Everything that can be checked without sending anything, first.
    if args.format == TokenFormat::Github && env("GITHUB_ENV").is_none_or(|v| v.is_empty()) {
        return Err(TokenError::Usage(
            "--format github appends to the file named by $GITHUB_ENV, which is not set: run it in a GitHub Actions step, or use --format dotenv".into(),
        ));
    }
    if args.format == TokenFormat::Github {
        // Found before anything is sent: the file the token will be appended to.
        let file = PathBuf::from(env("GITHUB_ENV").unwrap_or_default());
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&file)
            .map_err(|e| {
                TokenError::Usage(format!(
                    "cannot append to $GITHUB_ENV ({}): {e}; nothing was sent",
                    file.display()
                ))
            })?;
    }
    session::obtain(args, warnings).await
}
