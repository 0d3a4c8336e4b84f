//! `fleetauth bench`: a fleet run against the in-process emulator, measured. Prints wall time
//! against the physical floor T* = max(N / rate, N × latency / concurrency) + the longest
//! replication delay, CPU per org, peak RSS and requests per org. `--soak` adds every fault
//! kind, replication delays and a login rate limit, and checks each org was granted once.
//!
//! The emulator runs on its own single-threaded runtime on its own OS thread, so its CPU time
//! is measured apart from the client's and its load is visible (it must not be the bottleneck).

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use crate::cli::{BenchArgs, GrantArgs, TargetArgs};
use crate::config::GrantConfig;
use crate::emulator::{self, test_keys, EmulatorConfig, Fault, StatsSnapshot, User};
use crate::exit::Exit;
use crate::stop::Stopper;

/// CPU time (user + system) of this thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// (CPU time of the whole process, peak RSS in bytes).
fn process_usage() -> (Duration, u64) {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    (
        tv(ru.ru_utime) + tv(ru.ru_stime),
        ru.ru_maxrss as u64 * 1024,
    )
}

struct EmulatorThread {
    url: String,
    stats: std::sync::Arc<emulator::Stats>,
    stop: tokio::sync::oneshot::Sender<()>,
    done: std::thread::JoinHandle<Duration>,
}

fn spawn_emulator(config: EmulatorConfig) -> anyhow::Result<EmulatorThread> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let done = std::thread::Builder::new()
        .name("emulator".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("emulator runtime");
            runtime.block_on(async move {
                match emulator::start(config, 0).await {
                    Ok(handle) => {
                        let _ =
                            ready_tx.send(Ok((handle.url(), std::sync::Arc::clone(&handle.stats))));
                        let _ = stop_rx.await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                    }
                }
            });
            thread_cpu()
        })?;
    let (url, stats) = ready_rx.recv()?.map_err(anyhow::Error::msg)?;
    Ok(EmulatorThread {
        url,
        stats,
        stop: stop_tx,
        done,
    })
}

pub async fn run(args: BenchArgs) -> Exit {
    match bench(args).await {
        Ok(exit) => exit,
        Err(e) => {
            crate::say_err!("error: {e:#}");
            Exit::Usage
        }
    }
}

async fn bench(args: BenchArgs) -> anyhow::Result<Exit> {
    let n = args.orgs.max(1);
    let mut rng = rand::thread_rng();
    let mut config = EmulatorConfig::new(
        test_keys::CERTIFICATE.as_bytes().to_vec(),
        test_keys::CLIENT_ID,
    );
    config.latency = args.latency;
    let mut longest_delay = Duration::ZERO;
    let mut list = String::with_capacity(n * 40);
    for i in 0..n {
        let username = format!("test-bench{i:06}@example.com");
        let mut user = User::default();
        if args.soak && rng.gen_bool(0.2) {
            user.replication_delay = Duration::from_millis(rng.gen_range(0..5_000));
            longest_delay = longest_delay.max(user.replication_delay);
        }
        config.users.insert(username.clone(), user);
        list.push_str(&username);
        list.push('\n');
    }
    let request_timeout = if args.soak {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(30)
    };
    if args.soak {
        config.faults = Fault::ALL.iter().map(|&f| (f, 0.02)).collect();
        config.slow_delay = Duration::from_secs(2);
        config.login_rate = Some((args.rate * 0.8).ceil() as u32);
    }
    let emu = spawn_emulator(config)?;

    let temp = tempfile::tempdir()?;
    let orgs = temp.path().join("orgs.csv");
    let key = temp.path().join("server.key");
    std::fs::write(&orgs, list)?;
    crate::store::write_atomic(&key, test_keys::PRIVATE_KEY.as_bytes(), 0o600)?;
    let grant = GrantArgs {
        target: TargetArgs {
            client_id: Some(test_keys::CLIENT_ID.to_string()),
            jwt_key_file: Some(key),
            instance_url: emu.url.clone(),
            ..GrantArgs::defaults(&orgs).target
        },
        concurrency: args.concurrency,
        rate: args.rate,
        max_retries: if args.soak { 10 } else { 5 },
        request_timeout,
        out_dir: temp.path().join("out"),
        quiet: true,
        ..GrantArgs::defaults(&orgs)
    };
    let config = GrantConfig::from_args(grant, |_| None)?;
    let (cpu_before, _) = process_usage();
    let started = Instant::now();
    let finished = crate::commands::grant::run(config, Stopper::new()).await?;
    let wall = started.elapsed();
    let (cpu_after, peak_rss) = process_usage();
    let stats: StatsSnapshot = emu.stats.snapshot();
    let _ = emu.stop.send(());
    let emulator_cpu = emu.done.join().unwrap_or_default();

    let summary = &finished.report.summary;
    let floor = (n as f64 / args.rate)
        .max(n as f64 * args.latency.as_secs_f64() / args.concurrency as f64)
        + longest_delay.as_secs_f64();
    let client_cpu = (cpu_after - cpu_before).saturating_sub(emulator_cpu);
    let granted_once =
        stats.grants.len() == summary.authorized && stats.grants.values().all(|&g| g == 1);
    let retries = summary
        .attempts
        .saturating_sub(summary.authorized as u64 + summary.failed as u64);
    let figures = json!({
        "orgs": n,
        "latencyMs": args.latency.as_millis() as u64,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "soak": args.soak,
        "wallS": wall.as_secs_f64(),
        "floorS": floor,
        "wallOverFloor": wall.as_secs_f64() / floor,
        "grantsPerS": summary.authorized as f64 / wall.as_secs_f64(),
        "authorized": summary.authorized,
        "failed": summary.failed,
        "requests": stats.requests,
        "requestsPerOrg": stats.requests as f64 / n as f64,
        "retries": retries,
        "clientCpuS": client_cpu.as_secs_f64(),
        "clientCpuMsPerGrant": client_cpu.as_secs_f64() * 1000.0 / summary.authorized.max(1) as f64,
        "emulatorCpuS": emulator_cpu.as_secs_f64(),
        "emulatorBusy": emulator_cpu.as_secs_f64() / wall.as_secs_f64(),
        "peakRssMb": peak_rss as f64 / 1_048_576.0,
        "peakInFlight": stats.peak_in_flight,
        "peakRequestsPerSecond": stats.peak_requests_per_second,
        "faults": stats.faults,
        "rateLimitedAnswers": stats.answers.get("login rate exceeded").copied().unwrap_or(0),
        "replicationAnswers": stats.answers.get("invalid_grant: user hasn't approved this consumer").copied().unwrap_or(0),
        "grantedExactlyOnce": granted_once,
    });
    if args.json {
        crate::say_out!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        crate::say_out!(
            "orgs {n}, latency {} ms, concurrency {}, rate {}/s{}",
            args.latency.as_millis(),
            args.concurrency,
            args.rate,
            if args.soak {
                ", soak (faults, replication delays, login rate limit)"
            } else {
                ""
            }
        );
        crate::say_out!(
            "wall            {:>10.2} s   floor T* {:.2} s   wall/T* {:.3}",
            wall.as_secs_f64(),
            floor,
            wall.as_secs_f64() / floor
        );
        crate::say_out!(
            "authorized      {:>10}     failed {}   {:.0} grants/s",
            summary.authorized,
            summary.failed,
            summary.authorized as f64 / wall.as_secs_f64()
        );
        crate::say_out!(
            "requests        {:>10}     {:.3} per org, {} retries",
            stats.requests,
            stats.requests as f64 / n as f64,
            retries
        );
        crate::say_out!(
            "client CPU      {:>10.3} s   {:.3} ms per grant",
            client_cpu.as_secs_f64(),
            client_cpu.as_secs_f64() * 1000.0 / summary.authorized.max(1) as f64
        );
        crate::say_out!(
            "emulator CPU    {:>10.3} s   busy {:.0}% of one core (its own thread)",
            emulator_cpu.as_secs_f64(),
            100.0 * emulator_cpu.as_secs_f64() / wall.as_secs_f64()
        );
        crate::say_out!(
            "peak RSS        {:>10.1} MB  (client and emulator, one process)",
            peak_rss as f64 / 1_048_576.0
        );
        crate::say_out!(
            "peak in flight  {:>10}     peak requests in a second {}",
            stats.peak_in_flight,
            stats.peak_requests_per_second
        );
        if args.soak {
            crate::say_out!("faults injected {:?}", stats.faults);
            crate::say_out!(
                "rate limited    {:>10}     replication waits {}",
                figures["rateLimitedAnswers"],
                figures["replicationAnswers"]
            );
        }
        crate::say_out!(
            "granted exactly once: {}",
            if granted_once { "yes" } else { "NO" }
        );
    }
    Ok(if granted_once && summary.failed == 0 {
        Exit::Success
    } else {
        Exit::SomeFailed
    })
}
