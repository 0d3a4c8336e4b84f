//! `fleetauth emulate`: serve the emulator until Ctrl-C.

use std::path::Path;
use std::time::Duration;

use crate::cli::EmulateArgs;
use crate::emulator::{self, test_keys, EmulatorConfig, Fault, User};
use crate::exit::Exit;

pub async fn run(args: EmulateArgs) -> Exit {
    match build(&args) {
        Ok(config) => match emulator::start(config, args.port).await {
            Ok(handle) => {
                crate::say_out!("{}", handle.url());
                crate::say_err!(
                    "fleetauth emulator: token endpoint {}/services/oauth2/token, counters at {}/_emulator/stats; Ctrl-C stops it",
                    handle.url(),
                    handle.url()
                );
                let _ = tokio::signal::ctrl_c().await;
                Exit::Success
            }
            Err(e) => crate::finish::fail(&crate::finish::UsageError(e.to_string()), &[], false),
        },
        Err(e) => crate::finish::fail(&crate::finish::UsageError(e), &[], false),
    }
}

fn build(args: &EmulateArgs) -> Result<EmulatorConfig, String> {
    let cert = match &args.cert {
        Some(p) => crate::files::read_small(p, crate::files::KEY_CAP)
            .map_err(|e| format!("cannot read --cert {}: {e}", p.display()))?,
        None => test_keys::CERTIFICATE.as_bytes().to_vec(),
    };
    let client_id = args
        .client_id
        .clone()
        .unwrap_or_else(|| test_keys::CLIENT_ID.to_string());
    let mut config = EmulatorConfig::new(cert, client_id);
    config.latency = args.latency;
    config.slow_delay = args.slow_delay;
    config.login_rate = args.login_rate;
    match &args.users {
        Some(path) => config.users = read_users(path, args.delay)?,
        None => config.any_user = Some(args.delay),
    }
    for hub in &args.dev_hubs {
        let user = config.users.entry(hub.clone()).or_default();
        user.dev_hub = true;
    }
    if let Some(n) = args.hub_orgs {
        if args.dev_hubs.is_empty() {
            return Err("--hub-orgs needs the Dev Hub user: add --dev-hub hub@example.com".into());
        }
        config.scratch_orgs = hub_orgs(n);
    }
    config.eca_hub = args.eca_hub;
    for spec in &args.faults {
        let (kind, p) = spec
            .split_once('=')
            .ok_or_else(|| format!("--fault {spec}: write KIND=PROBABILITY, e.g. 503=0.05"))?;
        let fault = Fault::parse(kind).ok_or_else(|| format!("--fault {spec}: unknown kind `{kind}`; use 500, 503, 420, reset, truncated or slow"))?;
        let p: f64 = p
            .parse()
            .ok()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| format!("--fault {spec}: the probability must be between 0 and 1"))?;
        config.faults.push((fault, p));
    }
    if config.faults.iter().map(|(_, p)| p).sum::<f64>() > 1.0 {
        return Err("--fault probabilities add up to more than 1".into());
    }
    Ok(config)
}

/// `n` ScratchOrgInfo rows `test-hub<i>@example.com`, mostly Active; every 50 starting at
/// the 8th a Deleted one, at the 14th one in Error, at the 30th an expired one, at the 32nd
/// one expiring today.
pub fn hub_orgs(n: usize) -> Vec<emulator::ScratchOrg> {
    (1..=n)
        .map(|i| {
            let org = emulator::ScratchOrg::active(format!("test-hub{i}@example.com"));
            match i % 50 {
                8 => org.with_status("Deleted").expiring_in_days(-1),
                14 => org.with_status("Error"),
                30 => org.expiring_in_days(-2),
                32 => org.expiring_in_days(0),
                _ => org,
            }
        })
        .collect()
}

fn read_users(
    path: &Path,
    default_delay: Duration,
) -> Result<std::collections::HashMap<String, User>, String> {
    let bytes = crate::files::read_small(path, crate::input::MAX_LIST_BYTES)
        .map_err(|e| format!("cannot read --users {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("--users {} is not UTF-8 text", path.display()))?;
    let mut users = std::collections::HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with('#')
            || line.eq_ignore_ascii_case("username")
            || line.to_ascii_lowercase().starts_with("username,")
        {
            continue;
        }
        let (name, delay) = match line.split_once(',') {
            Some((name, delay)) => (
                name.trim(),
                humantime::parse_duration(delay.trim()).map_err(|e| {
                    format!("{}:{}: bad delay `{delay}` ({e})", path.display(), n + 1)
                })?,
            ),
            None => (line, default_delay),
        };
        users.insert(
            name.to_string(),
            User {
                replication_delay: delay,
                ..User::default()
            },
        );
    }
    Ok(users)
}
