//! `fleetauth demo`: the whole grant flow against the in-process emulator, with the test key
//! from fixtures/, a few dozen generated scratch orgs with replication delays of a few
//! seconds and a sprinkle of transient faults, in a temp dir.

use std::time::Duration;

use rand::Rng;

use crate::cli::DemoArgs;
use crate::config::{GrantConfig, Output, TargetConfig};
use crate::emulator::{self, test_keys, EmulatorConfig, Fault, User};
use crate::exit::Exit;

pub async fn run(args: DemoArgs) -> Exit {
    match demo(args).await {
        Ok(exit) => exit,
        Err(e) => crate::finish::fail(&crate::finish::UsageError(format!("{e:#}")), &[], false),
    }
}

async fn demo(args: DemoArgs) -> anyhow::Result<Exit> {
    use anyhow::Context as _;
    let n = args.orgs.max(1);
    let mut rng = rand::thread_rng();
    let mut config = EmulatorConfig::new(
        test_keys::CERTIFICATE.as_bytes().to_vec(),
        test_keys::CLIENT_ID,
    );
    config.latency = Duration::from_millis(50);
    config.faults = vec![
        (Fault::Maintenance, 0.03),
        (Fault::Reset, 0.02),
        (Fault::NotReady, 0.01),
    ];
    // The Dev Hub is the list: its Active scratch orgs; two Deleted ones are left out.
    const HUB: &str = "hub@example.com";
    config.users.insert(
        HUB.to_string(),
        User {
            dev_hub: true,
            ..User::default()
        },
    );
    for i in 1..=2 {
        config.scratch_orgs.push(
            emulator::ScratchOrg::active(format!("test-deleted{i}@example.com"))
                .with_status("Deleted")
                .expiring_in_days(-1),
        );
    }
    let mut list = String::from("username,alias\n");
    for i in 1..=n {
        let username = format!(
            "test-{:012x}@example.com",
            rng.gen::<u64>() & 0xffff_ffff_ffff
        );
        let delay = args.max_delay.mul_f64(rng.gen::<f64>());
        config.users.insert(
            username.clone(),
            User {
                replication_delay: delay,
                ..User::default()
            },
        );
        config
            .scratch_orgs
            .push(emulator::ScratchOrg::active(username.clone()));
        list.push_str(&format!("{username},scratch{i}\n"));
    }
    let emulator = emulator::start(config, 0)
        .await
        .context("starting the emulator")?;

    let temp = tempfile::tempdir().context("creating a temp dir")?;
    let work = temp.path();
    let orgs = work.join("orgs.csv");
    let key = work.join("server.key");
    std::fs::write(&orgs, list).context("writing the org list")?;
    crate::store::write_atomic(&key, test_keys::PRIVATE_KEY.as_bytes(), 0o600)
        .context("writing the demo key")?;
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| work.join("fleetauth-out"));

    crate::say_err!(
        "fleetauth demo: {n} scratch orgs on an emulated token endpoint at {} (replication delays up to {}, 50 ms latency, ~6% transient faults)",
        emulator.url(),
        humantime::format_duration(args.max_delay)
    );
    crate::say_err!(
        "  the same as: fleetauth grant -v {HUB} --hub-instance-url {} -i {} -f {} -r {} --out-dir {}\n  (the Dev Hub {HUB} is the list: its {n} Active scratch orgs; it also lists 2 Deleted ones)\n",
        emulator.url(),
        test_keys::CLIENT_ID,
        key.display(),
        emulator.url(),
        out_dir.display()
    );
    let mut config = GrantConfig::new(vec![orgs], TargetConfig::emulator(&emulator.url(), &key)?);
    config.orgs = Vec::new();
    config.hub = Some(
        crate::hub::HubOptions::new(
            HUB,
            &emulator.url(),
            None,
            None,
            None,
            Duration::from_secs(24 * 3600),
            false,
            None,
        )
        .map_err(anyhow::Error::msg)?,
    );
    config.policy.replication_budget = Duration::from_secs(60);
    config.request_timeout = Duration::from_secs(10);
    config.out_dir = out_dir.clone();
    let stop = crate::stop::Stopper::new();
    stop.on_signals();
    let result = crate::commands::grant::run(config, stop).await;
    let exit = crate::finish::grant(
        result,
        Output {
            quiet: false,
            json: false,
        },
    );
    let stats = emulator.stats.snapshot();
    crate::say_err!(
        "\nemulator: {} token requests, {} grants, {} replication waits answered, faults injected: {:?}",
        stats.requests,
        stats.grants.values().sum::<u64>(),
        stats.answers.get("invalid_grant: user hasn't approved this consumer").copied().unwrap_or(0),
        stats.faults
    );
    if args.out_dir.is_some() {
        crate::say_err!("auth files and report.json are in {}", out_dir.display());
    } else {
        crate::say_err!(
            "(temp dir removed; pass --out-dir DIR to keep the auth files and report.json)"
        );
    }
    Ok(exit)
}
