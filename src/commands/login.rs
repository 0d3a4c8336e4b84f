//! `fleetauth login`: one org, with `sf org login jwt`'s flags, written into the Salesforce
//! CLI's state (auth file, alias, `target-org` / `target-dev-hub`). Typically the Dev Hub
//! itself, before `grant --sf --dev-hub-username`.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::cli::LoginArgs;
use crate::config::LoginConfig;
use crate::exit::Exit;
use crate::fleet::{Fleet, Sinks, Status};
use crate::input::{Origin, Target};
use crate::sfstate::handoff::Handoff;
use crate::sfstate::{probe, SfState};
use crate::token::TokenClient;

pub async fn run(args: LoginArgs) -> Exit {
    let json_out = args.json;
    match login(args).await {
        Ok((exit, value, line)) => {
            if json_out {
                let _ = crate::finish::print_json(&value);
                return exit;
            }
            // Off --json, the warnings the envelope carries go to stderr.
            let warnings = value
                .get("warnings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for w in warnings.filter_map(Value::as_str) {
                crate::say_err!("warning: {w}");
            }
            if exit == Exit::Success {
                crate::say_out!("{line}");
            } else {
                crate::say_err!("{line}");
            }
            exit
        }
        Err(message) => crate::finish::fail(&crate::finish::UsageError(message), &[], json_out),
    }
}

async fn login(args: LoginArgs) -> Result<(Exit, Value, String), String> {
    let env = |var: &str| std::env::var(var).ok();
    let LoginConfig {
        username,
        alias,
        signer,
        host,
        network,
        request_timeout,
        policy,
        limits,
        sf_home: home,
        set_default,
        set_default_dev_hub,
    } = LoginConfig::from_args(args, &env).map_err(|e| e.to_string())?;
    let state = SfState::open(&home, &env, signer.key()).map_err(|e| e.to_string())?;
    // Trust settings that could not be used are said, as by grant.
    let warnings: Vec<String> = state
        .notes
        .iter()
        .chain(&network.warnings)
        .cloned()
        .collect();
    let state = Arc::new(state);
    let handoff = Handoff {
        state: Arc::clone(&state),
        http: probe::client(&network, request_timeout).map_err(|e| e.to_string())?,
        client_id: signer.client_id().to_string(),
        dev_hub: None,
        alias_prefix: None,
        probe_dev_hub: true,
        // `-a` names the alias explicitly, as `sf org login jwt -a` does: it is re-pointed.
        replace_aliases: true,
        writer: Default::default(),
        aliases_before: Default::default(),
    };
    let client = TokenClient::new(request_timeout, 1, &network).map_err(|e| e.to_string())?;
    let fleet = Arc::new(Fleet::new(
        client,
        signer,
        policy,
        limits,
        host,
        Sinks::default().with(handoff),
        {
            let stop = crate::stop::Stopper::new();
            stop.on_signals();
            stop
        },
    ));
    let target = Target {
        username: username.clone(),
        alias: alias.clone(),
        instance_url: None,
        origin: Origin::Entry(1),
        record: vec![username.clone()],
        place: 0,
    };
    let outcome = Arc::clone(&fleet).run(&[target], |_| {}).await.remove(0);
    // What sf's state could not take is said (as warnings: the login itself worked).
    let closing = fleet.sinks().finish().await;
    let mut warnings = warnings;
    warnings.extend(closing.warnings.into_iter().chain(closing.errors));
    match outcome.status {
        Status::Authorized => {
            let name = alias.clone().unwrap_or_else(|| username.clone());
            let mut entries = Vec::new();
            if set_default {
                entries.push(("target-org", name.clone()));
            }
            if set_default_dev_hub {
                entries.push(("target-dev-hub", name));
            }
            let cwd = std::env::current_dir().unwrap_or_else(|_| home.clone());
            state
                .set_config(&cwd, &entries)
                .map_err(|e| e.to_string())?;
            // The result is the auth file as written, without the token.
            let path = state.auth_path(&username);
            let mut result: Value = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_else(|| json!({}));
            if let Some(m) = result.as_object_mut() {
                m.remove("accessToken");
                if let Some(alias) = &alias {
                    m.insert("alias".into(), json!(alias));
                }
            }
            let line = format!(
                "Successfully authorized {} with org ID {}",
                username,
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
