//! `csm-cli`: parse the command line (after loading `.env`), run the command, map errors to
//! exit codes (2: usage, 1: failure at run time).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `.env` first, so clap sees its values as environment variables; real ones win.
    let _ = dotenvy::dotenv();
    let cli = csm_cli::Cli::parse();
    csm_cli::init_logging(cli.settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(csm_cli::run(cli, &mut stdout)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", csm_cli::render_error(&error));
            ExitCode::from(csm_cli::exit_code_for(&error))
        }
    }
}
