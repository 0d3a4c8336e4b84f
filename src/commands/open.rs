//! `fleetauth open <USERNAME|ALIAS>`: a single-use login link for a person, as `sf org open`
//! makes since 2025 (reference dev-hub.md §6). The org's token comes from
//! [`session::obtain`](crate::commands::session::obtain), exactly as for `fleetauth token`
//! (reused while fresh, else granted); a session that has expired since is granted anew once.
//! The link is asked of the org's `singleaccess` endpoint, checked, and then opened in the
//! browser or printed.
//!
//! The link is a credential until used: it goes to stdout (or the browser) and nowhere else,
//! never to stderr, a file or an error message.

use std::time::Duration;

use serde_json::json;

use crate::cli::{OpenArgs, OpenFormat, TokenArgs, TokenFormat};
use crate::commands::session::{self, Issued, TokenError};
use crate::config::TargetConfig;
use crate::exit::Exit;
use crate::secret::Secret;

mod browser;
mod link;

use link::Refused;

/// Why a link is not written to a closed stdout (`fleetauth open … --url-only >&-`).
const CLOSED: &str = "cannot write the link to stdout: it is closed, so the single-use link would be lost; give the command a stdout (a pipe or a file)";

/// How the link is handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// In the browser, or printed where none can be opened.
    Browser,
    /// On stdout.
    Print,
    /// `::add-mask::` first, then on stdout.
    Github,
    /// In sf's `--json` envelope.
    Json,
}

pub async fn run(args: OpenArgs) -> Exit {
    let json = args.json;
    let mut warnings = Vec::new();
    match open(args, &mut warnings).await {
        Ok(()) => Exit::Success,
        Err(e) => crate::finish::fail(&e, &warnings, json),
    }
}

/// `token`'s flags for the same org and out dir, reusing an auth file younger than `max_age`.
fn token_args(args: &OpenArgs, org: &str, max_age: Duration) -> TokenArgs {
    TokenArgs {
        org: Some(org.to_string()),
        target_org: None,
        target: args.target.clone(),
        // A login link asks no Dev Hub: the org is the one the user named.
        hub: crate::cli::HubArgs {
            target_dev_hub: None,
            hub_instance_url: crate::hub::LOGIN.into(),
            hub_audience: None,
            no_hub_check: false,
            warn_expiring: Duration::from_secs(24 * 3600),
        },
        out_dir: args.out_dir.clone(),
        lists: args.lists.clone(),
        max_age,
        verify: false,
        format: TokenFormat::Token,
        vars: crate::cli::TokenVars::Sf,
        json: args.json,
        request_timeout: args.request_timeout,
        sf: args.sf,
        sf_home: args.sf_home.clone(),
        dev_hub_username: args.dev_hub_username.clone(),
    }
}

async fn open(args: OpenArgs, warnings: &mut Vec<String>) -> Result<(), TokenError> {
    let env = |var: &str| std::env::var(var).ok();
    // Everything that can be checked without sending anything, first.
    let org = args
        .target_org
        .clone()
        .or_else(|| args.org.clone())
        .ok_or_else(|| {
            TokenError::Usage("name the org: fleetauth open USERNAME|ALIAS (or -o)".into())
        })?;
    let path = args
        .path
        .as_deref()
        .map(link::check_path)
        .transpose()
        .map_err(TokenError::Usage)?;
    let delivery = match (args.json, args.format, args.url_only) {
        (true, _, _) => Delivery::Json,
        (false, OpenFormat::Github, _) => Delivery::Github,
        (false, OpenFormat::Url, true) => Delivery::Print,
        (false, OpenFormat::Url, false) => Delivery::Browser,
    };
    // A link written to a closed stdout would be issued on the org and lost: refuse first,
    // before any token or link is asked for. A browser needs no stdout, unless none can be
    // opened here and the link would be printed instead.
    if crate::say::stdout_was_closed() {
        let needs_stdout = match delivery {
            Delivery::Browser => browser::choose(&env, std::env::consts::OS).is_err(),
            Delivery::Print | Delivery::Github | Delivery::Json => true,
        };
        if needs_stdout {
            return Err(TokenError::Failed(format!(
                "{CLOSED}; nothing was asked of the org"
            )));
        }
    }
    crate::config::check_request_timeout(args.request_timeout)?;
    // The same trust store and host rule as the grant (the key is checked here too).
    let network = TargetConfig::from_args(args.target.clone(), &env)?.network;
    let http = crate::sfstate::probe::client(&network, args.request_timeout)
        .map_err(|e| TokenError::Usage(format!("cannot set up the HTTP client: {e}")))?;

    let mut issued = session::obtain(token_args(&args, &org, args.max_age), warnings).await?;
    let mut answer = ask(&http, &network, &issued, path.as_deref()).await;
    if answer == Err(Refused::Expired) && issued.reused {
        crate::say_err!(
            "fleetauth: the session of {} has expired (401 INVALID_SESSION_ID); granting a new token",
            issued.username
        );
        issued = session::obtain(token_args(&args, &org, Duration::ZERO), warnings).await?;
        answer = ask(&http, &network, &issued, path.as_deref()).await;
    }
    let url = answer.map_err(|refused| {
        let why = match refused {
            Refused::Expired => "singleaccess refused the org's new token (401 INVALID_SESSION_ID); check that the user may log in to the org".to_string(),
            Refused::Failed(why) => why,
        };
        TokenError::Failed(format!("no login link for {}: {why}", issued.username))
    })?;
    deliver(&issued, &url, delivery, warnings, &env).await
}

/// One `singleaccess` request with the org's token, to its checked instance URL.
async fn ask(
    http: &reqwest::Client,
    network: &crate::tls::Network,
    issued: &Issued,
    path: Option<&str>,
) -> Result<Secret<String>, Refused> {
    // The instance URL came from a file: the rule for hosts named by data holds.
    let instance = network
        .hosts
        .row_host(&issued.instance_url)
        .map_err(|e| Refused::Failed(format!("the org's instance URL: {e}")))?;
    link::request(http, &instance, &network.hosts, &issued.access_token, path).await
}

/// Hand the link over as asked; where no browser can be opened, print it and say so.
#[expect(
    clippy::expect_used,
    reason = "serializing a JSON value to memory cannot fail"
)]
async fn deliver(
    issued: &Issued,
    url: &Secret<String>,
    delivery: Delivery,
    warnings: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), TokenError> {
    let link = url.expose();
    let print = |text: String| {
        if crate::say::stdout_was_closed() {
            return Err(TokenError::Failed(format!(
                "{CLOSED}; the link issued for {} was not delivered (ask for a new one)",
                issued.username
            )));
        }
        if crate::say::out_raw(&text) {
            Ok(())
        } else {
            Err(TokenError::Failed(format!(
                "cannot write the link to stdout; the link issued for {} was not delivered (ask for a new one)",
                issued.username
            )))
        }
    };
    for w in warnings {
        crate::say_err!("warning: {w}");
    }
    let user = &issued.username;
    match delivery {
        Delivery::Json => {
            let envelope = json!({
                "status": 0,
                "result": {"orgId": issued.org_id, "username": user, "url": link},
                "warnings": warnings,
            });
            let mut text = serde_json::to_string_pretty(&envelope).expect("JSON always serializes");
            text.push('\n');
            print(text)
        }
        Delivery::Github => {
            // The mask comes first, so that the runner hides the link in every later line.
            print(format!("::add-mask::{}\n{link}\n", command_value(link)))
        }
        Delivery::Print => {
            unmasked_in_actions(env);
            print(format!("{link}\n"))
        }
        Delivery::Browser => match browser::choose(env, std::env::consts::OS) {
            Ok(opener) => match browser::launch(&opener, link).await {
                Ok(()) => {
                    crate::say_err!(
                        "fleetauth: opened {user} in the browser ({}) through a single-use login link",
                        opener.program.display()
                    );
                    Ok(())
                }
                Err(why) => printed_instead(user, &why, link, env, print),
            },
            Err(why) => printed_instead(user, &why, link, env, print),
        },
    }
}

/// No browser: the link on stdout, and the reason on stderr.
fn printed_instead(
    user: &str,
    why: &str,
    link: &str,
    env: &dyn Fn(&str) -> Option<String>,
    print: impl Fn(String) -> Result<(), TokenError>,
) -> Result<(), TokenError> {
    crate::say_err!(
        "fleetauth: no browser can be opened here ({why}); the single-use login link for {user} is on stdout: open it once, in a browser"
    );
    unmasked_in_actions(env);
    print(format!("{link}\n"))
}

/// In a GitHub Actions step the link would show in the log: say how to mask it.
fn unmasked_in_actions(env: &dyn Fn(&str) -> Option<String>) {
    if env("GITHUB_ACTIONS").is_some_and(|v| v == "true") {
        crate::say_err!(
            "warning: in GitHub Actions stdout goes to the job log: use --format github to mask the link"
        );
    }
}

/// A value in a workflow command (`::add-mask::`), escaped as the runner unescapes it.
fn command_value(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}
