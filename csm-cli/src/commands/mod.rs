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
//! - [`ocpp`] runs `ocpp status`;
//! - [`cluster`] runs `cluster status`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use csm_core::Monitor;
use csm_core::settings::Settings;
use csm_flags::{CacheFlags, DatabaseFlags, VendorFlags};
use serde::Serialize;

mod access;
mod alerts;
mod cluster;
mod history;
mod ocpp;
mod operate;
mod read;
mod refresh;
mod server;
mod stations;
mod vendors;

pub use self::access::{AuditArgs, TokensCommand, audit, tokens};
pub use self::alerts::{AlertsCommand, alerts};
pub use self::cluster::{ClusterCommand, ClusterStatusArgs, cluster};
pub use self::history::{
    AvailabilityArgs, HistoryArgs, PruneArgs, SessionsArgs, StatsArgs, availability, history,
    prune, sessions, stats,
};
pub use self::ocpp::{OcppCommand, StatusArgs, ocpp};
pub use self::read::{EventsArgs, PortsArgs, events, ports};
pub use self::refresh::{FailedStation, RefreshArgs, RefreshSummary, refresh};
pub use self::stations::{
    AddArgs, ImportArgs, ListArgs, RemoveArgs, StationsCommand, SyncArgs, stations,
};
pub use self::vendors::{VendorsCheckArgs, VendorsCommand, vendors};

/// How long a flush at the end of a command may wait for an unreachable database.
pub(crate) const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// A command's flags, applied to the settings.
pub trait Settle {
    /// Applies the command's flag groups to `settings`.
    fn apply(&self, settings: &mut Settings);
}

/// Implements [`Settle`] for a command's arguments by applying the flag groups it names, in
/// order: `settle_by!(PortsArgs: database, cache);`.
macro_rules! settle_by {
    ($args:ty: $($group:ident),+ $(,)?) => {
        impl $crate::commands::Settle for $args {
            fn apply(&self, settings: &mut csm_core::settings::Settings) {
                $(self.$group.apply(settings);)+
            }
        }
    };
}
pub(crate) use settle_by;

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

/// How a listing is printed: `--json` (the document the matching API endpoint answers),
/// `--csv` (where the API has CSV), else a table for people.
#[derive(Debug, Default, Args)]
pub struct Output {
    /// Print the JSON the API answers.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (a header row, UTF-8, RFC 4180 quoting), as the API's `?format=csv`.
    #[arg(long)]
    pub csv: bool,
}

/// `--json` alone, for listings the API has no CSV of.
#[derive(Debug, Default, Args)]
pub struct JsonOutput {
    /// Print JSON instead of text: the document the matching API endpoint answers.
    #[arg(long)]
    pub json: bool,
}

/// Prints what a command found, the one way every listing is printed: the API's JSON document
/// (`document`), its CSV (`csv`, asked for only with `--csv`), or the people's view (`human`:
/// usually a [`table`]).
pub(crate) fn emit<J: Serialize>(
    out: &mut (dyn Write + Send),
    output: &Output,
    document: impl FnOnce() -> J,
    csv: impl FnOnce() -> Vec<u8>,
    human: impl FnOnce(&mut (dyn Write + Send)) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    if output.json {
        print_json(out, &document())?;
    } else if output.csv {
        out.write_all(&csv())?;
    } else {
        human(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// [`emit`] for a listing the API has no CSV of.
pub(crate) fn emit_json<J: Serialize>(
    out: &mut (dyn Write + Send),
    output: &JsonOutput,
    document: impl FnOnce() -> J,
    human: impl FnOnce(&mut (dyn Write + Send)) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let output = Output {
        json: output.json,
        csv: false,
    };
    emit(out, &output, document, Vec::new, human)
}

/// A table in the CLI's one style, with its header.
pub(crate) fn table<const N: usize>(header: [&str; N]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(header);
    table
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

settle_by!(InitDbArgs: database);

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

settle_by!(TestConnectionArgs: database, cache, vendors);

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
