//! `fleetauth check`: everything `grant` validates, without the network: the key (and that it
//! matches the certificate), the list, the URLs; then the claims it would send for the first
//! org. `--online USERNAME` performs one real grant and turns its error into a diagnosis.

use std::time::SystemTime;

use crate::assertion::MAX_LIFETIME;
use crate::cli::CheckArgs;
use crate::config::GrantConfig;
use crate::exit::Exit;
use crate::input;
use crate::plan;
use crate::token::{ErrorKind, TokenClient};
use crate::urls;

pub async fn run(args: CheckArgs) -> Exit {
    match check(args).await {
        Ok(true) => Exit::Success,
        Ok(false) => Exit::Usage,
        Err(message) => {
            let message = crate::sanitize::without_key_material(&message);
            crate::say_out!("NOT READY  {message}");
            Exit::Usage
        }
    }
}

async fn check(args: CheckArgs) -> Result<bool, String> {
    let online = args.online.clone();
    let env = |var: &str| std::env::var(var).ok();
    let config = GrantConfig::for_check(&args, &env).map_err(|e| e.to_string())?;
    let key = config.signer.key();
    crate::say_out!("ok  key        {}: RSA {} bits", key.origin, key.bits);
    match &args.target.key.cert {
        Some(cert) => crate::say_out!("ok  certificate {}: matches the key", cert.display()),
        None => crate::say_out!(
            "--  certificate not checked (pass --cert server.crt to check the key against it)"
        ),
    }
    crate::say_out!(
        "ok  token host {} (fallback for rows with their own instance URL)",
        urls::token_endpoint(&config.host)
    );
    crate::say_out!("ok  audience   {}", config.signer.audience());

    let list = match config.orgs.is_empty() {
        false => {
            let list = input::read_all(&config.orgs, config.format).map_err(|e| e.to_string())?;
            input::check_hosts(&list, &config.network.hosts).map_err(|e| e.to_string())?;
            Some(list)
        }
        true => None,
    };
    for note in config.network.notes.iter().chain(&config.network.warnings) {
        crate::say_out!("--  trust      {note}");
    }
    // The Dev Hub (-v): granted and asked for real (check sends nothing else unasked).
    let mut refused = 0;
    let (list, hub) = match &config.hub {
        None => (
            list.ok_or("no org list given: name one, or the Dev Hub with -v")?,
            None,
        ),
        Some(options) => {
            let mut warnings = Vec::new();
            let (list, hub) = crate::hub::vet::prepare(
                options,
                &config.signer,
                &config.network,
                config.request_timeout,
                None,
                list,
                &mut warnings,
            )
            .await
            .map_err(|e| e.to_string())?;
            for w in warnings {
                crate::say_out!("--  dev hub    {w}");
            }
            if let Some(summary) = &hub.summary {
                crate::say_out!(
                    "ok  dev hub    {} granted at {}; {} scratch orgs read in {} requests ({} ms)",
                    summary.username,
                    urls::display(&options.host),
                    summary.scratch_orgs,
                    summary.requests,
                    summary.query_ms
                );
                crate::say_out!("ok  limits     {}", summary.limits_line());
            }
            for t in &list.targets {
                if let Some(e) = hub.refusal(&t.username) {
                    refused += 1;
                    crate::say_out!(
                        "NO  org        {}: {}: {}",
                        t.username,
                        e.code,
                        e.description
                    );
                    if let Some(fix) = &e.hint {
                        crate::say_out!("    fix: {fix}");
                    }
                }
            }
            if let Some(w) = hub.expiring(&list.targets, options.warn_expiring) {
                crate::say_out!("--  expiring   {w}");
            }
            (list, Some(hub))
        }
    };
    let plan = plan::plan(&list, config.shard, |_| None);
    let with_url = plan
        .grant
        .iter()
        .filter(|t| t.instance_url.is_some())
        .count();
    crate::say_out!(
        "ok  list       {}: {} rows, {} orgs to grant{}, {} repeated, {} with their own instance URL",
        list.source,
        list.targets.len(),
        plan.grant.len(),
        config.shard.map(|s| format!(" in shard {s}")).unwrap_or_default(),
        plan.duplicates.len(),
        with_url
    );
    for (t, first) in &plan.duplicates {
        crate::say_out!(
            "    {}: {} repeats {first}",
            t.origin.at(&list.source),
            t.username
        );
    }
    if let Some(first) = plan.grant.first() {
        let claims = config.signer.claims(&first.username, SystemTime::now());
        crate::say_out!(
            "ok  claims     for the first org (signed afresh per attempt, exp = now + {} s):\n    {}",
            MAX_LIFETIME.as_secs(),
            serde_json::to_string(&claims).unwrap_or_default()
        );
    }

    let Some(username) = online else {
        if refused > 0 {
            crate::say_out!("NOT READY  {refused} listed org(s) would fail at once (above)");
            return Ok(false);
        }
        crate::say_out!(
            "READY  (nothing was sent to the orgs; --online USERNAME tries one real grant)"
        );
        return Ok(true);
    };
    input::check_username(&username)?;
    let client =
        TokenClient::new(config.request_timeout, 1, &config.network).map_err(|e| e.to_string())?;
    let assertion = config.signer.sign(&username).map_err(|e| e.to_string())?;
    match client
        .request(&urls::token_endpoint(&config.host), &assertion)
        .await
    {
        Ok(grant) => {
            crate::say_out!(
                "ok  online     {username} granted: org {} at {}",
                grant.org_id,
                grant.instance_url
            );
            crate::say_out!("READY");
            Ok(true)
        }
        Err(e) => {
            crate::say_out!("NO  online     {username}: {}: {}", e.code, e.description);
            let diagnosis = match e.kind {
                ErrorKind::ReplicationDelay => "the user is not pre-authorized: in the connected app set Permitted Users to \"Admin approved users are pre-authorized\" and add the user's profile or a permission set (a brand-new org may also still be replicating: try again in a few minutes)".to_string(),
                ErrorKind::RateLimited => "the user exceeded 3,600 logins in the last hour; wait, then check again".to_string(),
                ErrorKind::Transient => "Salesforce or the network failed; nothing is known about the setup yet: check again".to_string(),
                ErrorKind::Permanent => e.hint.clone().unwrap_or_else(|| "see the error".into()),
            };
            // What the Dev Hub's answers add: one cause, with its fix.
            let hub_status = hub
                .as_ref()
                .and_then(|h| h.rows.get(&username.to_lowercase()))
                .map(|r| r.status.as_str());
            let diagnosis = hub
                .as_ref()
                .and_then(|h| crate::hub::diagnose::org(&e, h.granted, hub_status))
                .map_or(diagnosis, str::to_string);
            crate::say_out!("    fix: {diagnosis}");
            crate::say_out!("NOT READY");
            Ok(false)
        }
    }
}
