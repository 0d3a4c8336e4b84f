use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fleetauth::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
