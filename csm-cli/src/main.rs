//! `csm-cli`: parse the command line (after loading `.env`), run the command, map errors to
//! exit codes (2: usage, 1: failure at run time). A reader that goes away (`| head`) ends the
//! command quietly.

use std::process::ExitCode;

use clap::Parser;

// mimalloc: fewer instructions per allocation than the system allocator on the refresh path
// (built without transparent huge pages, so memory stays at what is used).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `.env` first, so clap sees its values as environment variables; real ones win.
    let _ = dotenvy::dotenv();
    let cli = match csm_cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and usage errors; printing them into a closed pipe is not an error.
            let _ = error.print();
            return ExitCode::from(error.exit_code().clamp(0, 255) as u8);
        }
    };
    csm_cli::init_logging(cli.log_format);
    // `simulate` serves many clients at once and gets worker threads. Every other command is
    // one job: on a machine of one or two cores, which the vendor, the database and Redis
    // share, one thread spends about a third less CPU than two workers handing tasks to each
    // other (measured on `refresh --all`, see BENCHMARKS.md); with more cores the workers have
    // cores of their own and pay off.
    let few_cores = std::thread::available_parallelism().map_or(true, |n| n.get() <= 2);
    let runtime = if cli.command.serves() || !few_cores {
        tokio::runtime::Runtime::new()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(csm_cli::run(cli, &mut stdout)) {
        Ok(code) => code,
        Err(error) if csm_cli::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", csm_cli::render_error(&error));
            ExitCode::from(csm_cli::exit_code_for(&error))
        }
    }
}
