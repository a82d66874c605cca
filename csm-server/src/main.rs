//! `csm-server`: load `.env`, parse the command line, serve until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use csm_server::flags::ServerFlags;

// mimalloc: a long-running server's memory stays flat with it, where the system allocator's
// fragmentation made the RSS grow cycle after cycle (measured with 50,000 stations).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `.env` first, so clap sees its values as environment variables; real ones win.
    let _ = dotenvy::dotenv();
    let parsed = ServerFlags::parse().into_settings();
    csm_server::init_logging(parsed.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(csm_server::run(parsed.settings, parsed.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
