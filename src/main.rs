use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fleetauth::cli::Cli::parse();
    // File writes (auth files, fsync) run on blocking threads: a few are enough, and every
    // extra thread costs a stack and an allocator arena.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return fleetauth::exit::Exit::Usage.into();
        }
    };
    runtime.block_on(fleetauth::run(cli)).into()
}
