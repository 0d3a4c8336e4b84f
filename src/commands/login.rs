//! `fleetauth login`: one org, with `sf org login jwt`'s flags, written into the Salesforce
//! CLI's state (auth file, alias, `target-org` / `target-dev-hub`). Typically the Dev Hub
//! itself, before `grant --sf --dev-hub-username`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::assertion::Signer;
use crate::cli::LoginArgs;
use crate::credentials;
use crate::exit::Exit;
use crate::fleet::{Fleet, Limits, Sinks, Status};
use crate::input::{check_username, Origin, Target};
use crate::retry::Policy;
use crate::sfstate::handoff::Handoff;
use crate::sfstate::{probe, SfState};
use crate::tls::Network;
use crate::token::TokenClient;
use crate::urls;
use crate::urls::HostPolicy;

pub async fn run(args: LoginArgs) -> Exit {
    let json_out = args.json;
    match login(args).await {
        Ok((exit, value, line)) => {
            if json_out {
                crate::say_out!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            } else if exit == Exit::Success {
                crate::say_out!("{line}");
            } else {
                crate::say_err!("{line}");
            }
            exit
        }
        Err(message) => {
            crate::say_err!("error: {message}");
            if json_out {
                crate::say_out!(
                    "{}",
                    json!({"status": 2, "name": "UsageError", "message": message, "warnings": []})
                );
            }
            Exit::Usage
        }
    }
}

/// The default `aud` for a login URL: sandboxes and scratch orgs use test, the rest login.
fn audience_for(host: &url::Url) -> &'static str {
    let h = host.host_str().unwrap_or_default();
    if h == "test.salesforce.com" || h.contains(".sandbox.") || h.contains(".scratch.") {
        "https://test.salesforce.com"
    } else {
        "https://login.salesforce.com"
    }
}

async fn login(args: LoginArgs) -> Result<(Exit, Value, String), String> {
    let env = |var: &str| std::env::var(var).ok();
    check_username(&args.username)?;
    let client_id = args
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or("no consumer key: pass --client-id (-i) or set SFDX_CLIENT_ID")?;
    let host = urls::token_host(&args.instance_url).map_err(|e| format!("--instance-url: {e}"))?;
    if host
        .host_str()
        .is_some_and(|h| h.ends_with(".lightning.force.com"))
    {
        return Err("Invalid instance URL. It should NOT be a lightning domain: use the My Domain (.my.salesforce.com) or login URL".into());
    }
    // `--audience`, $SF_AUDIENCE_URL (read by clap), $SFDX_AUDIENCE_URL, else by the host.
    let audience = match crate::config::audience_setting(args.audience.clone(), &env) {
        Some(a) => crate::config::parse_audience(&a)
            .map(|u| urls::display(&u))
            .map_err(|e| e.to_string())?,
        None => audience_for(&host).to_string(),
    };
    let key = credentials::load(args.jwt_key_file.as_deref(), env).map_err(|e| e.to_string())?;
    let home = match &args.sf_home {
        Some(h) => h.clone(),
        None => env("HOME")
            .map(Into::into)
            .ok_or("$HOME is not set: pass --sf-home DIR")?,
    };
    let network = Network::new(&[], HostPolicy::default().with_host_of(&host), &env)
        .map_err(|e| e.to_string())?;
    let state = SfState::open(&home, &env, &key).map_err(|e| e.to_string())?;
    let warnings = state.notes.clone();
    let state = Arc::new(state);
    let handoff = Handoff {
        state: Arc::clone(&state),
        http: probe::client(&network, args.request_timeout).map_err(|e| e.to_string())?,
        client_id: client_id.clone(),
        dev_hub: None,
        alias_prefix: None,
        probe_dev_hub: true,
        // `-a` names the alias explicitly, as `sf org login jwt -a` does: it is re-pointed.
        replace_aliases: true,
        writer: Default::default(),
    };
    let sf_writer = handoff.writer_shared();
    let client = TokenClient::new(args.request_timeout, 1, &network).map_err(|e| e.to_string())?;
    let fleet = Arc::new(Fleet::new(
        client,
        Signer::new(key, client_id, audience),
        Policy {
            replication_budget: Duration::from_secs(30),
            ..Policy::default()
        },
        Limits {
            concurrency: 1,
            rate: 10.0,
            rate_limited_pause: Duration::from_secs(5),
            grace: Duration::from_secs(1),
        },
        host,
        Sinks::default().with(handoff),
        {
            let stop = crate::stop::Stopper::new();
            stop.on_signals();
            stop
        },
    ));
    let target = Target {
        username: args.username.clone(),
        alias: args.alias.clone(),
        instance_url: None,
        origin: Origin::Entry(1),
        record: vec![args.username.clone()],
    };
    let outcome = fleet.run(&[target], |_| {}).await.remove(0);
    let aliases = sf_writer.finish().await;
    let mut warnings = warnings;
    warnings.extend(
        aliases
            .kept
            .iter()
            .map(|a| format!("sf alias {a} was left as it is")),
    );
    warnings.extend(aliases.failure_warning());
    match outcome.status {
        Status::Authorized => {
            let name = args.alias.clone().unwrap_or_else(|| args.username.clone());
            let mut entries = Vec::new();
            if args.set_default {
                entries.push(("target-org", name.clone()));
            }
            if args.set_default_dev_hub {
                entries.push(("target-dev-hub", name));
            }
            let cwd = std::env::current_dir().unwrap_or_else(|_| home.clone());
            state
                .set_config(&cwd, &entries)
                .map_err(|e| e.to_string())?;
            // The result is the auth file as written, without the token.
            let path = state.auth_path(&args.username);
            let mut result: Value = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_else(|| json!({}));
            if let Some(m) = result.as_object_mut() {
                m.remove("accessToken");
                if let Some(alias) = &args.alias {
                    m.insert("alias".into(), json!(alias));
                }
            }
            let line = format!(
                "Successfully authorized {} with org ID {}",
                args.username,
                outcome.org_id.clone().unwrap_or_default()
            );
            Ok((
                Exit::Success,
                json!({"status": 0, "result": result, "warnings": warnings}),
                line,
            ))
        }
        Status::Pending => Ok((
            Exit::Interrupted,
            json!({"status": 130, "name": "Interrupted", "message": "interrupted", "warnings": warnings}),
            "interrupted".into(),
        )),
        Status::Failed | Status::Skipped => {
            let (message, hint) = outcome
                .error
                .map(|e| (format!("{}: {}", e.code, e.description), e.hint))
                .unwrap_or_else(|| ("the login failed".into(), None));
            let line = match &hint {
                Some(h) => format!("Error (JwtGrantError): {message}\nfix: {h}"),
                None => format!("Error (JwtGrantError): {message}"),
            };
            Ok((
                Exit::SomeFailed,
                json!({"status": 1, "name": "JwtGrantError", "message": message, "hint": hint, "exitCode": 1, "warnings": warnings}),
                line,
            ))
        }
    }
}
