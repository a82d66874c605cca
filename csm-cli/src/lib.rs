//! csm-cli: the command line of the charging station monitor.
//!
//! Every command is a function that takes its settings, its arguments and a writer for its
//! output, so the tests run them exactly as the binary does. `main.rs` only parses and
//! dispatches. Each command takes only the flag groups it uses (database, cache, engine,
//! vendors, simulator), so its `--help` lists nothing else.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use csm_core::MonitorError;
use csm_core::error::InvalidInput;
use csm_core::settings::{Settings, SettingsError};
use csm_flags::LogFormat;

pub mod commands;
pub mod simulate;
pub mod simulate_ocpp;

/// Charging station monitor: set up the database, check connections, refresh stations, manage
/// the station list, read ports and history, and serve a simulated fleet.
#[derive(Debug, Parser)]
#[command(name = "csm-cli", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr: `text` or `json` (`RUST_LOG` sets the level).
    #[arg(long, env = "CSM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database (MySQL: if missing) and apply migrations; safe to run again.
    InitDb(commands::InitDbArgs),
    /// Check the database, the cache and every vendor base URL; exit 1 if any fails.
    TestConnection(commands::TestConnectionArgs),
    /// Refresh stations once and print a summary; exit 1 if any station failed.
    Refresh(commands::RefreshArgs),
    /// Manage the station list.
    #[command(subcommand)]
    Stations(commands::StationsCommand),
    /// Print the current ports of a station.
    Ports(commands::PortsArgs),
    /// Print the status changes of a station.
    Events(commands::EventsArgs),
    /// Print a station's readings over time (voltage, current, power, energy).
    History(commands::HistoryArgs),
    /// Print a station's charging sessions.
    Sessions(commands::SessionsArgs),
    /// Print how busy a station, or the whole fleet, has been.
    Stats(commands::StatsArgs),
    /// A station's availability a day and its outages, or the stations of the fleet below a
    /// threshold.
    Availability(commands::AvailabilityArgs),
    /// Delete history past its retention once (the server does it every hour).
    Prune(commands::PruneArgs),
    /// Alert channels, rules and the history of fired alerts.
    #[command(subcommand)]
    Alerts(commands::AlertsCommand),
    /// OCPP charge points: which are connected, their last message and firmware.
    #[command(subcommand)]
    Ocpp(commands::OcppCommand),
    /// API tokens, one per person with a role (viewer, operator, admin).
    #[command(subcommand)]
    Tokens(commands::TokensCommand),
    /// The audit log: every write and command, who sent it, from where, how it ended.
    Audit(commands::AuditArgs),
    /// The servers sharing this database and Redis: which are alive, what each refreshes.
    #[command(subcommand)]
    Cluster(commands::ClusterCommand),
    /// Check a vendor profile against a real answer: what each of its pointers finds.
    #[command(subcommand)]
    Vendors(commands::VendorsCommand),
    /// Serve a simulated fleet over HTTP with csm's native contract.
    Simulate(simulate::SimulateArgs),
    /// Connect simulated EV chargers to a central system over OCPP 1.6J.
    SimulateOcpp(simulate_ocpp::SimulateOcppArgs),
}

impl Command {
    /// Whether the command is a server (many clients at once) rather than a single job.
    pub fn serves(&self) -> bool {
        matches!(self, Self::Simulate(_) | Self::SimulateOcpp(_))
    }
}

/// A mistake in what the user asked for: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs a parsed command line, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitCode> {
    run_with(cli, |_| {}, out).await
}

/// [`run`], with the settings the flags describe adjusted by `adjust` before they are used
/// (tests; programs that wrap the CLI).
pub async fn run_with(
    cli: Cli,
    adjust: impl FnOnce(&mut Settings),
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    use commands::Settle;
    let mut settings = Settings::default();
    match &cli.command {
        Command::InitDb(args) => args.apply(&mut settings),
        Command::TestConnection(args) => args.apply(&mut settings),
        Command::Refresh(args) => args.apply(&mut settings),
        Command::Stations(command) => command.apply(&mut settings),
        Command::Ports(args) => args.apply(&mut settings),
        Command::Events(args) => args.apply(&mut settings),
        Command::History(args) => args.apply(&mut settings),
        Command::Sessions(args) => args.apply(&mut settings),
        Command::Stats(args) => args.apply(&mut settings),
        Command::Availability(args) => args.apply(&mut settings),
        Command::Prune(args) => args.apply(&mut settings),
        Command::Alerts(command) => command.apply(&mut settings),
        Command::Ocpp(command) => command.apply(&mut settings),
        Command::Cluster(command) => command.apply(&mut settings),
        Command::Tokens(command) => command.apply(&mut settings),
        Command::Audit(args) => args.apply(&mut settings),
        Command::Vendors(command) => command.apply(&mut settings),
        Command::Simulate(_) | Command::SimulateOcpp(_) => {}
    }
    adjust(&mut settings);
    settings.validate()?;
    match cli.command {
        Command::InitDb(_) => commands::init_db(settings, out).await,
        Command::TestConnection(_) => commands::test_connection(settings, out).await,
        Command::Refresh(args) => commands::refresh(settings, args, out).await,
        Command::Stations(command) => commands::stations(settings, command, out).await,
        Command::Ports(args) => commands::ports(settings, args, out).await,
        Command::Events(args) => commands::events(settings, args, out).await,
        Command::History(args) => commands::history(settings, args, out).await,
        Command::Sessions(args) => commands::sessions(settings, args, out).await,
        Command::Stats(args) => commands::stats(settings, args, out).await,
        Command::Availability(args) => commands::availability(settings, args, out).await,
        Command::Prune(args) => commands::prune(settings, args, out).await,
        Command::Alerts(command) => commands::alerts(settings, command, out).await,
        Command::Ocpp(command) => commands::ocpp(settings, command, out).await,
        Command::Cluster(command) => commands::cluster(settings, command, out).await,
        Command::Tokens(command) => commands::tokens(settings, command, out).await,
        Command::Audit(args) => commands::audit(settings, args, out).await,
        Command::Vendors(command) => commands::vendors(settings, command, out).await,
        Command::Simulate(args) => simulate::run(args, out).await,
        Command::SimulateOcpp(args) => simulate_ocpp::run(args, out).await,
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

/// Whether the error is only that the reader of the output went away (`csm-cli … | head`):
/// then the command ends quietly.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|json| json.io_error_kind() == Some(BrokenPipe))
    })
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
