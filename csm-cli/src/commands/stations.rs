//! `csm-cli stations …`: list (with the API's filters and JSON), add, remove, import, sync.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use csm_core::Monitor;
use csm_core::charger::SIMULATOR_VENDOR;
use csm_core::import::{ImportFormat, parse_stations};
use csm_core::model::{PortStatus, Station, StationId};
use csm_core::monitor::{StationPage, StationQuery};
use csm_core::settings::Settings;
use csm_core::views::{ListView, StationListJson};
use csm_flags::{CacheFlags, DatabaseFlags, VendorFlags};

use super::{JsonOutput, Settle, emit_json, open, settle_by};
use crate::UsageError;

/// `stations …`.
#[derive(Debug, Subcommand)]
pub enum StationsCommand {
    /// List the stations (with `--json`: the document of `GET /api/stations`).
    List(ListArgs),
    /// Add a station.
    Add(AddArgs),
    /// Remove a station (its history stays).
    Remove(RemoveArgs),
    /// Import stations from a CSV or JSON file; a file with any bad row imports nothing.
    Import(ImportArgs),
    /// Import the station list of a vendor whose profile can list stations.
    Sync(SyncArgs),
}

impl Settle for StationsCommand {
    fn apply(&self, settings: &mut Settings) {
        match self {
            Self::List(args) => args.apply(settings),
            Self::Add(args) => args.apply(settings),
            Self::Remove(args) => args.apply(settings),
            Self::Import(args) => args.apply(settings),
            Self::Sync(args) => args.apply(settings),
        }
    }
}

settle_by!(ListArgs: database, cache);
settle_by!(AddArgs: database, vendors);
settle_by!(RemoveArgs: database, cache);
settle_by!(ImportArgs: database, vendors);
settle_by!(SyncArgs: database, vendors);

/// Arguments of `stations list`: the filters and page of `GET /api/stations`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// `--json`: the document of `GET /api/stations` with the same filters.
    #[command(flatten)]
    pub output: JsonOutput,
    /// Only stations whose id, name or address contains this text (case-insensitive).
    #[arg(long)]
    pub q: Option<String>,
    /// Only stations with at least one port in this status.
    #[arg(long)]
    pub status: Option<PortStatus>,
    /// Only stations of this vendor profile.
    #[arg(long)]
    pub vendor: Option<String>,
    /// Only these stations (ids separated by commas).
    #[arg(long)]
    pub ids: Option<String>,
    /// At most this many stations (1–10,000).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Stations to skip first.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// With `--json`: `full` (each station with its ports) or `summary` (without them).
    #[arg(long, default_value = "full")]
    pub view: ListView,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
}

/// Arguments of `stations add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The vendor's station id.
    pub id: String,
    /// Name shown to users.
    pub name: String,
    /// Vendor profile that reads the station.
    #[arg(long, default_value = SIMULATOR_VENDOR)]
    pub vendor: String,
    /// Address.
    #[arg(long)]
    pub address: Option<String>,
    /// Latitude.
    #[arg(long, allow_negative_numbers = true)]
    pub lat: Option<f64>,
    /// Longitude.
    #[arg(long, allow_negative_numbers = true)]
    pub lng: Option<f64>,
    /// Number of ports.
    #[arg(long, default_value_t = 0)]
    pub ports: u32,
    /// Add it disabled (not refreshed by the scheduler).
    #[arg(long)]
    pub disabled: bool,
    /// OCPP charge points (`--vendor ocpp`): the password the charger sends with HTTP Basic
    /// auth (16 to 40 characters), stored only as a salted hash. Also read from
    /// CSM_OCPP_PASSWORD, which keeps it out of the shell's history.
    #[arg(long, env = "CSM_OCPP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// OCPP charge points: the security profile it must connect with — 1 (its password, if
    /// any), 2 (TLS: wss://) or 3 (TLS with its client certificate, CN = its id).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub security_profile: u8,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    vendors: VendorFlags,
}

/// Arguments of `stations remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The station.
    pub id: String,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
}

/// Arguments of `stations import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file (`.csv` or `.json`).
    pub file: PathBuf,
    /// Format (`csv` or `json`), when the file name does not say.
    #[arg(long)]
    pub format: Option<ImportFormat>,
    /// Vendor of rows that name none.
    #[arg(long, default_value = SIMULATOR_VENDOR)]
    pub vendor: String,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    vendors: VendorFlags,
}

/// Arguments of `stations sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The vendor profile.
    #[arg(long)]
    pub vendor: String,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    vendors: VendorFlags,
}

/// `stations …`.
pub async fn stations(
    settings: Settings,
    command: StationsCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    match command {
        StationsCommand::List(args) => list_stations(&monitor, args, out).await?,
        StationsCommand::Add(args) => {
            let station = Station {
                id: StationId::parse(&args.id)?,
                name: args.name,
                address: args.address,
                lat: args.lat,
                lng: args.lng,
                vendor: args.vendor,
                enabled: !args.disabled,
                port_count: args.ports,
            };
            station.validate()?;
            match (args.password.as_deref(), args.security_profile) {
                (None, 1) => monitor.stations().add(&station).await?,
                (password, profile) => {
                    monitor
                        .ocpp()
                        .add_charge_point(&station, password, profile)
                        .await?
                }
            }
            writeln!(out, "added station {} ({})", station.id, station.name)?;
        }
        StationsCommand::Remove(args) => {
            let id = StationId::parse(&args.id)?;
            monitor.stations().remove(&id).await?;
            writeln!(out, "removed station {id}")?;
        }
        StationsCommand::Import(args) => {
            let format = args
                .format
                .or_else(|| ImportFormat::from_path(&args.file))
                .ok_or_else(|| {
                    UsageError(format!(
                        "cannot tell the format of {}: name it .csv or .json, or pass --format csv|json",
                        args.file.display()
                    ))
                })?;
            let text = std::fs::read_to_string(&args.file)
                .with_context(|| format!("reading {}", args.file.display()))?;
            let stations = parse_stations(&text, format, &args.vendor)
                .with_context(|| format!("importing {}", args.file.display()))?;
            let counts = monitor.stations().import(&stations).await?;
            writeln!(
                out,
                "imported {} stations from {} ({} added, {} updated)",
                stations.len(),
                args.file.display(),
                counts.added,
                counts.updated
            )?;
        }
        StationsCommand::Sync(args) => {
            let counts = monitor.stations().sync_vendor(&args.vendor).await?;
            writeln!(
                out,
                "synced vendor {}: {} added, {} updated",
                args.vendor, counts.added, counts.updated
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `stations list`: the page the filters select, as a table or as the API's JSON.
async fn list_stations(
    monitor: &Monitor,
    args: ListArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let query = StationQuery {
        search: args.q,
        status: args.status,
        vendor: args.vendor,
        ids: args
            .ids
            .as_deref()
            .map(StationQuery::parse_ids)
            .transpose()?,
        limit: args.limit,
        offset: args.offset,
        estimates: args.output.json && args.view == ListView::Full,
    };
    let page = monitor.stations().list(&query).await?;
    emit_json(
        out,
        &args.output,
        || StationListJson::of(&page, args.view),
        |out| print_stations(out, &page),
    )?;
    Ok(())
}

/// The page as a table, and how many of the matching stations it shows.
fn print_stations(out: &mut (dyn Write + Send), page: &StationPage) -> anyhow::Result<()> {
    let mut table = super::table(["id", "name", "vendor", "ports", "enabled", "address"]);
    for view in &page.views {
        let s = &view.station;
        table.add_row([
            s.id.to_string(),
            s.name.clone(),
            s.vendor.clone(),
            s.port_count.to_string(),
            if s.enabled { "yes" } else { "no" }.to_string(),
            s.address.clone().unwrap_or_default(),
        ]);
    }
    writeln!(out, "{table}")?;
    if page.views.len() == page.total {
        writeln!(out, "{} stations", page.total)?;
    } else {
        writeln!(out, "{} of {} stations", page.views.len(), page.total)?;
    }
    Ok(())
}
