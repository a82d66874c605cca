//! The commands of `csm-cli`, each a function of its settings, its arguments and a writer. A
//! command's `--json` prints the document the matching API endpoint answers, made by the same
//! code ([`csm_core::views`]).
//!
//! - this file: what every command shares, `init-db` and `test-connection`;
//! - [`refresh`] runs `refresh`;
//! - [`stations`] runs `stations list|add|remove|import|sync`;
//! - [`read`] runs `ports` and `events`;
//! - [`history`] runs `history`, `sessions`, `stats` and `prune`;
//! - [`alerts`] runs `alerts channels|rules|history`;
//! - [`ocpp`] runs `ocpp status`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use csm_core::Monitor;
use csm_core::settings::Settings;
use csm_flags::{CacheFlags, DatabaseFlags, VendorFlags};
use serde::Serialize;

mod alerts;
mod history;
mod ocpp;
mod read;
mod refresh;
mod stations;

pub use self::alerts::{AlertsCommand, alerts};
pub use self::history::{
    HistoryArgs, PruneArgs, SessionsArgs, StatsArgs, history, prune, sessions, stats,
};
pub use self::ocpp::{OcppCommand, StatusArgs, ocpp};
pub use self::read::{EventsArgs, PortsArgs, events, ports};
pub use self::refresh::{FailedStation, RefreshArgs, RefreshSummary, refresh};
pub use self::stations::{
    AddArgs, ImportArgs, ListArgs, RemoveArgs, StationsCommand, SyncArgs, stations,
};

/// How long a flush at the end of a command may wait for an unreachable database.
pub(crate) const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// The settings a command's flags describe.
pub trait Settle {
    /// Defaults, with the command's flag groups applied.
    fn settings(&self) -> Settings;
}

/// Applies flag groups to the defaults.
pub(crate) fn settings_of(apply: &[&dyn Fn(&mut Settings)]) -> Settings {
    let mut settings = Settings::default();
    for group in apply {
        group(&mut settings);
    }
    settings
}

/// Opens the monitor and makes sure the database has its tables.
pub(crate) async fn open(mut settings: Settings) -> anyhow::Result<Monitor> {
    // A command reads each station once: a local copy in front of Redis would only be filled.
    settings.cache.local_ttl_ms = 0;
    let monitor = Monitor::open(settings).await?;
    monitor
        .migrate()
        .await
        .context("preparing the database (run `csm-cli init-db` to see the details)")?;
    Ok(monitor)
}

/// Writes a document as pretty JSON and a newline.
pub(crate) fn print_json(
    out: &mut (dyn Write + Send),
    document: &impl Serialize,
) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, document)?;
    writeln!(out)?;
    Ok(())
}

/// Arguments of `init-db`.
#[derive(Debug, Args)]
pub struct InitDbArgs {
    #[command(flatten)]
    database: DatabaseFlags,
}

impl Settle for InitDbArgs {
    fn settings(&self) -> Settings {
        settings_of(&[&|s| self.database.clone().apply(s)])
    }
}

/// `init-db`.
pub async fn init_db(settings: Settings, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitCode> {
    let monitor = Monitor::open(settings).await?;
    monitor.migrate().await?;
    writeln!(out, "database ready: {}", monitor.database())?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `test-connection`.
#[derive(Debug, Args)]
pub struct TestConnectionArgs {
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
    #[command(flatten)]
    vendors: VendorFlags,
}

impl Settle for TestConnectionArgs {
    fn settings(&self) -> Settings {
        settings_of(&[
            &|s| self.database.clone().apply(s),
            &|s| self.cache.clone().apply(s),
            &|s| self.vendors.clone().apply(s),
        ])
    }
}

/// `test-connection`: the database, the cache and every vendor with a base URL, checked at
/// once; one line each.
pub async fn test_connection(
    settings: Settings,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = Monitor::open(settings).await?;
    let checks = monitor.check_connections().await;
    let width = checks.iter().map(|c| c.target.len()).max().unwrap_or(0);
    for check in &checks {
        write!(
            out,
            "{:<9}{:<width$}  {:<4} {:>5} ms",
            check.kind,
            check.target,
            if check.ok { "OK" } else { "FAIL" },
            check.millis
        )?;
        match &check.error {
            Some(error) => writeln!(out, "  {error}")?,
            None => writeln!(out)?,
        }
    }
    let unchecked = monitor.unchecked_vendors();
    if !unchecked.is_empty() {
        writeln!(
            out,
            "not checked (no base URL; set CSM_VENDOR_<NAME>_BASE_URL): {}",
            unchecked.join(", ")
        )?;
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        writeln!(out, "{failed} of {} checks failed", checks.len())?;
        Ok(ExitCode::FAILURE)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}
