//! The commands of `csm-cli`, each a function of its settings, its arguments and a writer. A
//! command's `--json` prints the document the matching API endpoint answers, made by the same
//! code ([`csm_core::views`]).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use csm_core::Monitor;
use csm_core::charger::SIMULATOR_VENDOR;
use csm_core::import::{ImportFormat, parse_stations};
use csm_core::model::{PortStatus, Station, StationId, StationSummary};
use csm_core::monitor::StationQuery;
use csm_core::refresh::RefreshOutcome;
use csm_core::settings::Settings;
use csm_core::store::EventQuery;
use csm_core::views::{EventListJson, ListView, StationDetailJson, StationListJson};
use csm_flags::{CacheFlags, DatabaseFlags, EngineFlags, SimulatorFlags, VendorFlags};
use serde::Serialize;

use crate::UsageError;

/// How long a flush at the end of a command may wait for an unreachable database.
const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// The settings a command's flags describe.
pub trait Settle {
    /// Defaults, with the command's flag groups applied.
    fn settings(&self) -> Settings;
}

/// Applies flag groups to the defaults.
fn settings_of(apply: &[&dyn Fn(&mut Settings)]) -> Settings {
    let mut settings = Settings::default();
    for group in apply {
        group(&mut settings);
    }
    settings
}

/// Opens the monitor and makes sure the database has its tables.
async fn open(mut settings: Settings) -> anyhow::Result<Monitor> {
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
fn print_json(out: &mut (dyn Write + Send), document: &impl Serialize) -> anyhow::Result<()> {
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

/// Arguments of `refresh`.
#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Stations to refresh.
    pub stations: Vec<String>,
    /// Refresh every enabled station.
    #[arg(long, conflicts_with = "stations")]
    pub all: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
    #[command(flatten)]
    engine: EngineFlags,
    #[command(flatten)]
    vendors: VendorFlags,
    #[command(flatten)]
    simulator: SimulatorFlags,
}

impl Settle for RefreshArgs {
    fn settings(&self) -> Settings {
        settings_of(&[
            &|s| self.database.clone().apply(s),
            &|s| self.cache.clone().apply(s),
            &|s| self.engine.clone().apply(s),
            &|s| self.vendors.clone().apply(s),
            &|s| self.simulator.clone().apply(s),
        ])
    }
}

/// The summary of `refresh`.
#[derive(Debug, Default, Serialize)]
pub struct RefreshSummary {
    /// Stations refreshed.
    pub stations: usize,
    /// Stations that succeeded.
    pub ok: usize,
    /// Stations that failed, with their errors.
    pub failed: Vec<FailedStation>,
    /// Ports read.
    pub ports: usize,
    /// Ports whose status changed.
    pub status_changes: usize,
    /// Port rows written to the database.
    pub rows_written: usize,
    /// Retries of transient failures.
    pub retries: u32,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
    /// Stations per second.
    pub stations_per_sec: f64,
    /// Median time of one station's job, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile of one station's job, milliseconds.
    pub p99_ms: f64,
    /// Rows that could not be written because the database was unreachable.
    pub unwritten_rows: usize,
}

/// A station that failed.
#[derive(Debug, Serialize)]
pub struct FailedStation {
    /// The station.
    pub station_id: String,
    /// Why.
    pub error: String,
}

/// `refresh`: one run of the engine over the chosen stations.
pub async fn refresh(
    settings: Settings,
    args: RefreshArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    if !args.all && args.stations.is_empty() {
        return Err(UsageError(
            "name the stations to refresh (csm-cli refresh S0001 S0002) or pass --all".into(),
        )
        .into());
    }
    let monitor = open(settings).await?;
    let stations: Vec<Arc<Station>> = if args.all {
        monitor.enabled_stations().await?
    } else {
        let mut chosen = Vec::with_capacity(args.stations.len());
        for raw in &args.stations {
            let id = StationId::parse(raw)?;
            chosen.push(monitor.station(&id).await?);
        }
        chosen
    };
    let progress = Progress::new(stations.len());
    let started = Instant::now();
    let outcomes = monitor
        .refresh(stations, |outcome| progress.step(outcome))
        .await;
    let report = monitor.shutdown(FLUSH_DEADLINE).await;
    let elapsed = started.elapsed();
    progress.finish();
    let summary = summarize(&outcomes, elapsed, report.pending_rows);
    if args.json {
        print_json(out, &summary)?;
    } else {
        write_summary(out, &summary)?;
    }
    let failed = !summary.failed.is_empty() || summary.unwritten_rows > 0;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn write_summary(out: &mut (dyn Write + Send), summary: &RefreshSummary) -> anyhow::Result<()> {
    writeln!(
        out,
        "refreshed {} stations in {:.2} s ({:.0} stations/s): {} ok, {} failed; {} ports read, {} status changes, {} rows written; per station p50 {:.1} ms, p99 {:.1} ms",
        summary.stations,
        summary.elapsed_secs,
        summary.stations_per_sec,
        summary.ok,
        summary.failed.len(),
        summary.ports,
        summary.status_changes,
        summary.rows_written,
        summary.p50_ms,
        summary.p99_ms,
    )?;
    for failed in summary.failed.iter().take(50) {
        writeln!(out, "  FAIL {}: {}", failed.station_id, failed.error)?;
    }
    if summary.failed.len() > 50 {
        writeln!(out, "  … and {} more failures", summary.failed.len() - 50)?;
    }
    if summary.unwritten_rows > 0 {
        writeln!(
            out,
            "warning: {} rows could not be written because the database was unreachable",
            summary.unwritten_rows
        )?;
    }
    Ok(())
}

fn summarize(
    outcomes: &[RefreshOutcome],
    elapsed: Duration,
    unwritten_rows: usize,
) -> RefreshSummary {
    let mut summary = RefreshSummary {
        stations: outcomes.len(),
        elapsed_secs: elapsed.as_secs_f64(),
        stations_per_sec: outcomes.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        unwritten_rows,
        ..RefreshSummary::default()
    };
    let mut latencies: Vec<f64> = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        latencies.push(outcome.elapsed.as_secs_f64() * 1000.0);
        summary.retries += outcome.attempts.saturating_sub(1);
        match &outcome.result {
            Ok(stats) => {
                summary.ok += 1;
                summary.ports += stats.ports;
                summary.status_changes += stats.status_changes;
                summary.rows_written += stats.rows_written;
            }
            Err(error) => summary.failed.push(FailedStation {
                station_id: outcome.station_id.to_string(),
                error: error.to_string(),
            }),
        }
    }
    summary
        .failed
        .sort_by(|a, b| a.station_id.cmp(&b.station_id));
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            latencies[((latencies.len() - 1) as f64 * p).round() as usize]
        }
    };
    summary.p50_ms = percentile(0.50);
    summary.p99_ms = percentile(0.99);
    summary
}

/// Progress of a refresh: a bar on a terminal, a line every tenth of the way otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: AtomicUsize,
}

impl Progress {
    fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} stations {per_sec} eta {eta} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            total,
            done: AtomicUsize::new(0),
        }
    }

    fn step(&self, outcome: &RefreshOutcome) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                if let Err(error) = &outcome.result {
                    bar.println(format!("FAIL {}: {error}", outcome.station_id));
                }
            }
            None => {
                let tenth = (self.total / 10).max(1);
                if done.is_multiple_of(tenth) || done == self.total {
                    let _ = writeln!(
                        std::io::stderr(),
                        "refreshed {done}/{} stations",
                        self.total
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

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
    fn settings(&self) -> Settings {
        match self {
            Self::List(args) => settings_of(&[&|s| args.database.clone().apply(s), &|s| {
                args.cache.clone().apply(s)
            }]),
            Self::Add(args) => settings_of(&[&|s| args.database.clone().apply(s), &|s| {
                args.vendors.clone().apply(s)
            }]),
            Self::Remove(args) => settings_of(&[&|s| args.database.clone().apply(s), &|s| {
                args.cache.clone().apply(s)
            }]),
            Self::Import(args) => settings_of(&[&|s| args.database.clone().apply(s), &|s| {
                args.vendors.clone().apply(s)
            }]),
            Self::Sync(args) => settings_of(&[&|s| args.database.clone().apply(s), &|s| {
                args.vendors.clone().apply(s)
            }]),
        }
    }
}

/// Arguments of `stations list`: the filters and page of `GET /api/stations`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the JSON of `GET /api/stations` with the same filters.
    #[arg(long)]
    pub json: bool,
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
            monitor.add_station(&station).await?;
            writeln!(out, "added station {} ({})", station.id, station.name)?;
        }
        StationsCommand::Remove(args) => {
            let id = StationId::parse(&args.id)?;
            monitor.remove_station(&id).await?;
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
            let counts = monitor.import(&stations).await?;
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
            let counts = monitor.sync_vendor(&args.vendor).await?;
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
    };
    let page = monitor.list(&query).await?;
    if args.json {
        return print_json(out, &StationListJson::of(&page, args.view));
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["id", "name", "vendor", "ports", "enabled", "address"]);
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

/// Arguments of `ports`.
#[derive(Debug, Args)]
pub struct PortsArgs {
    /// The station.
    pub station: String,
    /// Print the JSON of `GET /api/stations/{station_id}`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
}

impl Settle for PortsArgs {
    fn settings(&self) -> Settings {
        settings_of(&[&|s| self.database.clone().apply(s), &|s| {
            self.cache.clone().apply(s)
        }])
    }
}

/// `ports`: what csm knows of a station's ports (from the cache, else the database).
pub async fn ports(
    settings: Settings,
    args: PortsArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    let id = StationId::parse(&args.station)?;
    let view = monitor.view(&id).await?;
    if args.json {
        print_json(out, &StationDetailJson::of(&view))?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{} {}", view.station.id, view.station.name)?;
    let Some(state) = view.state else {
        writeln!(
            out,
            "no data yet: run `csm-cli refresh {}`",
            view.station.id
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let fmt =
        |value: Option<f64>, unit: &str| value.map(|v| format!("{v} {unit}")).unwrap_or_default();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "port",
        "status",
        "since",
        "voltage",
        "current",
        "power",
        "energy",
        "session ends",
        "code",
    ]);
    for port in &state.ports {
        let r = &port.reading;
        table.add_row([
            r.port.to_string(),
            r.status.to_string(),
            port.since.format("%Y-%m-%d %H:%M:%S").to_string(),
            fmt(r.voltage, "V"),
            fmt(r.current, "A"),
            fmt(r.power, "W"),
            fmt(r.energy_kwh, "kWh"),
            r.session_ends_at
                .map(|t| t.format("%H:%M").to_string())
                .unwrap_or_default(),
            r.raw_code.clone().unwrap_or_default(),
        ]);
    }
    writeln!(out, "{table}")?;
    write!(out, "{}", summary_line(&state.summary()))?;
    if let Some(observed) = state.observed_at {
        write!(
            out,
            "; observed {}",
            observed.format("%Y-%m-%d %H:%M:%S UTC")
        )?;
    }
    writeln!(out)?;
    if let Some(error) = &state.last_error {
        writeln!(out, "STALE: the last refresh failed: {error}")?;
    } else if view.stale {
        writeln!(out, "STALE: these ports have not been refreshed recently")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// "2 free, 2 occupied, 1 unknown (5 ports)": free and occupied always, every other status
/// that some port has, so the counts add up to the ports shown.
fn summary_line(summary: &StationSummary) -> String {
    let counts = PortStatus::ALL.map(|status| {
        let n = match status {
            PortStatus::Free => summary.free,
            PortStatus::Occupied => summary.occupied,
            PortStatus::Fault => summary.fault,
            PortStatus::Offline => summary.offline,
            PortStatus::Reserved => summary.reserved,
            PortStatus::Unknown => summary.unknown,
        };
        (status, n)
    });
    let shown: Vec<String> = counts
        .iter()
        .filter(|(status, n)| *n > 0 || matches!(status, PortStatus::Free | PortStatus::Occupied))
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    format!("{} ({} ports)", shown.join(", "), summary.total)
}

/// Arguments of `events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The station.
    pub station: String,
    /// Only this port.
    #[arg(long)]
    pub port: Option<u32>,
    /// At most this many, newest first (1–1,000).
    #[arg(long, default_value_t = EventQuery::DEFAULT_LIMIT)]
    pub limit: u32,
    /// Print the JSON of `GET /api/stations/{station_id}/events`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    database: DatabaseFlags,
}

impl Settle for EventsArgs {
    fn settings(&self) -> Settings {
        settings_of(&[&|s| self.database.clone().apply(s)])
    }
}

/// `events`: a station's status history.
pub async fn events(
    settings: Settings,
    args: EventsArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    let id = StationId::parse(&args.station)?;
    let events = monitor
        .events(&EventQuery {
            station_id: Some(id.clone()),
            port: args.port,
            limit: args.limit,
            ..EventQuery::default()
        })
        .await?;
    if args.json {
        print_json(out, &EventListJson::of(&id, &events))?;
        return Ok(ExitCode::SUCCESS);
    }
    for event in &events {
        writeln!(
            out,
            "{}  port {:>3}  {:>8} → {}",
            event.at.format("%Y-%m-%d %H:%M:%S"),
            event.port,
            event.old.map(|s| s.as_str()).unwrap_or("(new)"),
            event.new
        )?;
    }
    writeln!(out, "{} events", events.len())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_every_status_shown() {
        let summary = StationSummary::of([
            PortStatus::Free,
            PortStatus::Free,
            PortStatus::Occupied,
            PortStatus::Occupied,
            PortStatus::Unknown,
        ]);
        assert_eq!(
            summary_line(&summary),
            "2 free, 2 occupied, 1 unknown (5 ports)"
        );
        let faulty = StationSummary::of([PortStatus::Fault, PortStatus::Offline]);
        assert_eq!(
            summary_line(&faulty),
            "0 free, 0 occupied, 1 fault, 1 offline (2 ports)"
        );
    }
}
