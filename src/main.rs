use std::process::ExitCode;

use clap::Parser;

// musl's allocator serializes threads; see Cargo.toml.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Past a file-size limit (`ulimit -f`) a write fails with EFBIG, which the run reports as
    // a store failure, keeping what was written, instead of dying of SIGXFSZ mid-write.
    // SAFETY: setting a signal's disposition to ignore, before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = match fleetauth::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return fleetauth::cli::usage_error(e).into(),
    };
    // File writes (auth files, fsync) run on blocking threads: a few are enough, and every
    // extra thread costs a stack and an allocator arena.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            fleetauth::say_err!("error: cannot start the async runtime: {e}");
            return fleetauth::exit::Exit::Usage.into();
        }
    };
    let exit = runtime.block_on(fleetauth::run(cli));
    // A read of stdin cut short by a signal may still be blocked: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    exit.into()
}
