//! `fleetauth bench`: a fleet run against the emulator, measured. Prints wall time against the
//! physical floor T* = max(N / rate, N × latency / concurrency, longest replication delay +
//! latency), CPU per grant, peak RSS and requests per org. `--soak` adds every fault kind,
//! replication delays and a login rate limit, and checks each org was granted once.
//!
//! The emulator is a separate process (`fleetauth emulate`, spawned from this executable, or
//! one already running at `--emulator-url`), so the CPU time and peak RSS measured here are the
//! client's alone. The child emulator's CPU is read once it has exited (`RUSAGE_CHILDREN`); an
//! external one's is not measured, and the output says so.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use crate::cli::BenchArgs;
use crate::config::{GrantConfig, SfOptions, TargetConfig};
use crate::emulator::{test_keys, Fault, StatsSnapshot};
use crate::exit::Exit;
use crate::stop::Stopper;

/// CPU time (user + system) and peak RSS in bytes of this process, or of its waited-for
/// children.
fn usage(who: libc::c_int) -> (Duration, u64) {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    // ru_maxrss is in bytes on macOS, in KiB on Linux and the BSDs.
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    let peak = ru.ru_maxrss as u64;
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    let peak = ru.ru_maxrss as u64 * 1024;
    (tv(ru.ru_utime) + tv(ru.ru_stime), peak)
}

/// The floor of a run: no client can finish sooner.
pub fn floor(
    n: usize,
    rate: f64,
    latency: Duration,
    concurrency: usize,
    longest_delay: Duration,
) -> f64 {
    let n = n as f64;
    (n / rate)
        .max(n * latency.as_secs_f64() / concurrency.max(1) as f64)
        .max((longest_delay + latency).as_secs_f64())
}

/// The emulator the bench talks to: a child process (`child`), or one already running at
/// `--emulator-url` (not ours to stop or measure).
struct Emulator {
    url: String,
    child: Option<Child>,
}

impl Emulator {
    fn spawn(args: &BenchArgs, users: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args([
            "emulate".to_string(),
            "--port".into(),
            "0".into(),
            "--latency".into(),
            format!("{}us", args.latency.as_micros()),
        ]);
        if let Some(users) = users {
            command.arg("--users").arg(users);
        }
        if args.soak {
            for fault in Fault::ALL {
                command.arg("--fault").arg(format!("{}=0.02", fault.name()));
            }
            command.args(["--slow-delay", "2s", "--login-rate"]);
            command.arg(((args.rate * 0.8).ceil() as u32).to_string());
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut emulator = Emulator {
            url: String::new(),
            child: Some(child),
        };
        let mut line = String::new();
        if let Some(stdout) = emulator.child.as_mut().and_then(|c| c.stdout.take()) {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        emulator.url = line.trim().to_string();
        if !emulator.url.starts_with("http://") {
            anyhow::bail!("the emulator did not start (it printed {line:?})");
        }
        Ok(emulator)
    }

    async fn stats(&self) -> anyhow::Result<StatsSnapshot> {
        let url = format!("{}/_emulator/stats", self.url.trim_end_matches('/'));
        let http = crate::tls::Network::defaults()?
            .builder(Duration::from_secs(30))
            .build()?;
        Ok(http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Stop a child emulator (SIGINT, as Ctrl-C) and return its CPU time.
    fn stop(&mut self) -> Option<Duration> {
        let mut child = self.child.take()?;
        let (before, _) = usage(libc::RUSAGE_CHILDREN);
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill only sends a signal to our own child, which has not been waited for.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        child.wait().ok()?;
        let (after, _) = usage(libc::RUSAGE_CHILDREN);
        Some(after.saturating_sub(before))
    }
}

impl Drop for Emulator {
    /// A bench that stops early does not leave its emulator running.
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn run(args: BenchArgs) -> Exit {
    match bench(args).await {
        Ok(exit) => exit,
        Err(e) => crate::finish::fail(&crate::finish::UsageError(format!("{e:#}")), &[], false),
    }
}

async fn bench(args: BenchArgs) -> anyhow::Result<Exit> {
    // Checked before anything is spawned or written.
    // By the same rules as `grant`'s.
    crate::config::check_concurrency(args.concurrency).map_err(anyhow::Error::msg)?;
    crate::config::check_rate(args.rate).map_err(anyhow::Error::msg)?;
    let n = args.orgs.max(1);
    let temp = tempfile::tempdir()?;
    // A fresh prefix per run keeps an external emulator's counters of earlier runs apart.
    let mut rng = rand::thread_rng();
    let prefix = format!("test-bench{:08x}-", rng.gen::<u32>());
    let mut longest_delay = Duration::ZERO;
    let mut list = String::with_capacity(n * 40);
    // The emulator's users with their replication delays (--soak only; otherwise it knows
    // every user).
    let mut users = String::new();
    for i in 0..n {
        let username = format!("{prefix}{i:06}@example.com");
        let delay = if args.soak && rng.gen_bool(0.2) {
            Duration::from_millis(rng.gen_range(0..5_000))
        } else {
            Duration::ZERO
        };
        longest_delay = longest_delay.max(delay);
        if args.soak {
            users.push_str(&format!("{username},{}ms\n", delay.as_millis()));
        }
        list.push_str(&username);
        list.push('\n');
    }
    let orgs = temp.path().join("orgs.csv");
    let key = temp.path().join("server.key");
    std::fs::write(&orgs, list)?;
    crate::store::write_atomic(&key, test_keys::PRIVATE_KEY.as_bytes(), 0o600)?;
    let mut emulator = match &args.emulator_url {
        Some(url) => Emulator {
            url: url.clone(),
            child: None,
        },
        None if args.soak => {
            let path = temp.path().join("users.csv");
            std::fs::write(&path, users)?;
            Emulator::spawn(&args, Some(&path))?
        }
        None => Emulator::spawn(&args, None)?,
    };

    let request_timeout = if args.soak {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(30)
    };
    let out_dir = temp.path().join("out");
    let mut config = GrantConfig::new(
        vec![orgs.clone()],
        TargetConfig::emulator(&emulator.url, &key)?,
    );
    config.limits.concurrency = args.concurrency;
    config.limits.rate = args.rate;
    config.policy.max_retries = if args.soak { 10 } else { 5 };
    config.request_timeout = request_timeout;
    config.out_dir = out_dir.clone();
    config.output.quiet = true;
    if args.sf {
        config.sf = Some(SfOptions {
            home: temp.path().join("home"),
            replace_aliases: false,
            alias_prefix: Some("P".into()),
            dev_hub: None,
            dev_hub_from_target: false,
        });
    }
    let (cpu_before, _) = usage(libc::RUSAGE_SELF);
    let started = Instant::now();
    let finished = crate::commands::grant::run(config, Stopper::new()).await?;
    let wall = started.elapsed();
    let (cpu_after, peak_rss) = usage(libc::RUSAGE_SELF);
    let stats = emulator.stats().await?;
    let external = emulator.child.is_none();
    let emulator_cpu = emulator.stop();

    let summary = &finished.report.summary;
    let floor = floor(n, args.rate, args.latency, args.concurrency, longest_delay);
    let client_cpu = cpu_after - cpu_before;
    let ours = |map: &std::collections::HashMap<String, u64>| {
        map.iter()
            .filter(|(user, _)| user.starts_with(&prefix))
            .map(|(_, &count)| count)
            .collect::<Vec<u64>>()
    };
    let grants = ours(&stats.grants);
    let granted_once = grants.len() == summary.authorized && grants.iter().all(|&g| g == 1);
    // An external emulator counts every run it served: take this run's usernames only (a
    // connection reset before the request was read is then not counted).
    let requests = if external {
        ours(&stats.attempts).iter().sum()
    } else {
        stats.requests
    };
    let retries = summary
        .attempts
        .saturating_sub(summary.authorized as u64 + summary.failed as u64);
    let per_grant_ms = client_cpu.as_secs_f64() * 1000.0 / summary.authorized.max(1) as f64;
    let figures = json!({
        "orgs": n,
        "latencyMs": args.latency.as_secs_f64() * 1000.0,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "soak": args.soak,
        "sf": args.sf,
        "emulator": if external { "external" } else { "child process" },
        "outDir": out_dir.display().to_string(),
        "wallS": wall.as_secs_f64(),
        "floorS": floor,
        "wallOverFloor": wall.as_secs_f64() / floor,
        "grantsPerS": summary.authorized as f64 / wall.as_secs_f64(),
        "authorized": summary.authorized,
        "failed": summary.failed,
        "requests": requests,
        "requestsPerOrg": requests as f64 / n as f64,
        "retries": retries,
        "clientCpuS": client_cpu.as_secs_f64(),
        "clientCpuMsPerGrant": per_grant_ms,
        "clientPeakRssMb": peak_rss as f64 / 1_048_576.0,
        "emulatorCpuS": emulator_cpu.map(|c| c.as_secs_f64()),
        "emulatorBusy": emulator_cpu.map(|c| c.as_secs_f64() / wall.as_secs_f64()),
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
        print_figures(&args, &figures);
    }
    Ok(if granted_once && summary.failed == 0 {
        Exit::Success
    } else {
        Exit::SomeFailed
    })
}

fn print_figures(args: &BenchArgs, f: &serde_json::Value) {
    let num = |key: &str| f[key].as_f64().unwrap_or(0.0);
    crate::say_out!(
        "orgs {}, latency {} ms, concurrency {}, rate {}/s{}",
        f["orgs"],
        num("latencyMs"),
        args.concurrency,
        args.rate,
        if args.soak {
            ", soak (faults, replication delays, login rate limit)"
        } else {
            ""
        }
    );
    if args.sf {
        crate::say_out!(
            "sf state        every org handed to sf, aliases P1..Pn (--sf --alias-prefix P)"
        );
    }
    crate::say_out!(
        "measured        the client alone (this process); the emulator is {} at {}",
        if f["emulator"] == "external" {
            "an external one"
        } else {
            "a child process"
        },
        args.emulator_url
            .as_deref()
            .unwrap_or("a port of 127.0.0.1")
    );
    crate::say_out!(
        "out dir         {}",
        f["outDir"].as_str().unwrap_or_default()
    );
    crate::say_out!(
        "wall            {:>10.2} s   floor T* {:.2} s   wall/T* {:.3}",
        num("wallS"),
        num("floorS"),
        num("wallOverFloor")
    );
    crate::say_out!(
        "authorized      {:>10}     failed {}   {:.0} grants/s",
        f["authorized"],
        f["failed"],
        num("grantsPerS")
    );
    crate::say_out!(
        "requests        {:>10}     {:.3} per org, {} retries",
        f["requests"],
        num("requestsPerOrg"),
        f["retries"]
    );
    crate::say_out!(
        "client CPU      {:>10.3} s   {:.3} ms per grant",
        num("clientCpuS"),
        num("clientCpuMsPerGrant")
    );
    crate::say_out!("client peak RSS {:>10.1} MB", num("clientPeakRssMb"));
    match f["emulatorCpuS"].as_f64() {
        Some(cpu) => println!(
            "emulator CPU    {:>10.3} s   busy {:.0}% of one core (its own process)",
            cpu,
            100.0 * num("emulatorBusy")
        ),
        None => println!("emulator CPU    not measured (external emulator)"),
    }
    crate::say_out!(
        "peak in flight  {:>10}     peak requests in a second {}{}",
        f["peakInFlight"],
        f["peakRequestsPerSecond"],
        if args.emulator_url.is_some() {
            " (since the emulator started)"
        } else {
            ""
        }
    );
    if args.soak {
        crate::say_out!("faults injected {}", f["faults"]);
        crate::say_out!(
            "rate limited    {:>10}     replication waits {}",
            f["rateLimitedAnswers"],
            f["replicationAnswers"]
        );
    }
    crate::say_out!(
        "granted exactly once: {}",
        if f["grantedExactlyOnce"] == true {
            "yes"
        } else {
            "NO"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_largest_of_rate_latency_and_replication_bounds() {
        let ms = Duration::from_millis;
        // Rate-bound: 1,000 orgs at 50/s.
        assert_eq!(floor(1000, 50.0, ms(100), 32, ms(0)), 20.0);
        // Latency-bound: 1,000 × 1 s over 10 slots.
        assert_eq!(floor(1000, 1e6, ms(1000), 10, ms(0)), 100.0);
        // Replication-bound: one org waits 5 s, then needs one more answer.
        assert_eq!(floor(10, 1e6, ms(100), 32, ms(5000)), 5.1);
    }
}
