//! csm-cli: the command line of the charging station monitor.
//!
//! Every command is a function that takes its dependencies and a writer for its output, so
//! the tests run them exactly as the binary does. `main.rs` only parses and dispatches.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use csm_core::MonitorError;
use csm_core::error::InvalidInput;
use csm_core::settings::{LogFormat, Settings, SettingsError};

pub mod commands;
pub mod simulate;

/// Charging station monitor: set up the database, check connections, refresh stations, manage
/// the station list, and serve a simulated fleet.
#[derive(Debug, Parser)]
#[command(name = "csm-cli", version, about, long_about = None)]
pub struct Cli {
    /// Settings (also read from CSM_* environment variables and `.env`).
    #[command(flatten)]
    pub settings: Settings,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database (MySQL: if missing) and apply migrations; safe to run again.
    InitDb,
    /// Check the database, the cache and every vendor base URL; exit 1 if any fails.
    TestConnection,
    /// Refresh stations once and print a summary; exit 1 if any station failed.
    Refresh(commands::RefreshArgs),
    /// Manage the station list.
    #[command(subcommand)]
    Stations(commands::StationsCommand),
    /// Print the current ports of a station.
    Ports(commands::PortsArgs),
    /// Print the status history of a station.
    Events(commands::EventsArgs),
    /// Serve a simulated fleet over HTTP with csm's native contract.
    Simulate(simulate::SimulateArgs),
}

impl Command {
    /// Whether the command is a server (many clients at once) rather than a single job.
    pub fn serves(&self) -> bool {
        matches!(self, Self::Simulate(_))
    }
}

/// A mistake in what the user asked for: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs a parsed command line, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitCode> {
    let settings = cli.settings.finish()?;
    match cli.command {
        Command::InitDb => commands::init_db(settings, out).await,
        Command::TestConnection => commands::test_connection(settings, out).await,
        Command::Refresh(args) => commands::refresh(settings, args, out).await,
        Command::Stations(command) => commands::stations(settings, command, out).await,
        Command::Ports(args) => commands::ports(settings, args, out).await,
        Command::Events(args) => commands::events(settings, args, out).await,
        Command::Simulate(args) => simulate::run(args, out).await,
    }
}

/// The exit code for an error: 2 for usage mistakes (bad settings, bad arguments), 1 for
/// failures at run time.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    let usage = error.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause.is::<SettingsError>()
            || cause.is::<InvalidInput>()
            || matches!(
                cause.downcast_ref::<MonitorError>(),
                Some(MonitorError::Settings(_) | MonitorError::Invalid(_))
            )
    });
    if usage { 2 } else { 1 }
}

/// The error as one paragraph: each cause once (messages that already quote their cause are
/// not repeated).
pub fn render_error(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Sets up logging on stderr: warnings by default, `RUST_LOG` to change.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,csm_core::refresh=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
