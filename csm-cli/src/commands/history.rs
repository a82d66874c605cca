//! `csm-cli history`, `sessions`, `stats` and `prune`: what happened at a station over time,
//! how busy it (or the fleet) is, and the retention job.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use csm_core::history::stats::{DEFAULT_DAYS, Stats};
use csm_core::model::StationId;
use csm_core::monitor::{ReadingsQuery, SessionsQuery};
use csm_core::settings::Settings;
use csm_core::views::history::{
    AvailabilityReportJson, FleetStatsJson, HistoryJson, SessionListJson, StationAvailabilityJson,
    StationStatsJson, csv,
};
use csm_flags::{CacheFlags, DatabaseFlags, RetentionFlags, TimeZoneFlags};

use super::{JsonOutput, Output, emit, emit_json, open, settle_by};

/// Arguments of `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The station.
    pub station: String,
    /// Only this port.
    #[arg(long)]
    pub port: Option<u32>,
    /// From this time (RFC 3339, e.g. 2026-12-01T08:00:00+08:00; default: 24 hours ago).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339; default: now).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// At most this many readings per port (1–5,000).
    #[arg(long, default_value_t = ReadingsQuery::DEFAULT_POINTS)]
    pub points: u32,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    database: DatabaseFlags,
}

settle_by!(HistoryArgs: database);

/// `history`: a station's readings over time.
pub async fn history(
    settings: Settings,
    args: HistoryArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    let id = StationId::parse(&args.station)?;
    let station = monitor.stations().get(&id).await?;
    let readings = monitor
        .history()
        .readings(&ReadingsQuery {
            station_id: id,
            port: args.port,
            from: args.since,
            to: args.until,
            points: args.points,
        })
        .await?;
    emit(
        out,
        &args.output,
        || HistoryJson::of(&station, &readings),
        || csv::readings(&station, &readings.readings),
        |out| {
            let value = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
            let mut table = super::table(["at", "port", "status", "V", "A", "W", "kWh"]);
            for r in &readings.readings {
                table.add_row([
                    r.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    r.port.to_string(),
                    r.status.to_string(),
                    value(r.voltage),
                    value(r.current),
                    value(r.power),
                    value(r.energy_kwh),
                ]);
            }
            writeln!(out, "{} {}", station.id, station.name)?;
            writeln!(out, "{table}")?;
            writeln!(
                out,
                "{} readings from {} to {} UTC{}",
                readings.readings.len(),
                readings.from.format("%Y-%m-%d %H:%M"),
                readings.to.format("%Y-%m-%d %H:%M"),
                if readings.truncated {
                    " (more than one answer holds: ask for a shorter range)"
                } else {
                    ""
                }
            )?;
            Ok(())
        },
    )
}

/// Arguments of `sessions`.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// The station.
    pub station: String,
    /// Only this port.
    #[arg(long)]
    pub port: Option<u32>,
    /// Sessions that started from this time (RFC 3339; default: 7 days ago).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// … and before this time (RFC 3339; default: now).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// At most this many, newest first (1–1,000).
    #[arg(long, default_value_t = SessionsQuery::DEFAULT_LIMIT)]
    pub limit: u32,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
}

settle_by!(SessionsArgs: database, cache);

/// `sessions`: a station's charging sessions.
pub async fn sessions(
    settings: Settings,
    args: SessionsArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    let id = StationId::parse(&args.station)?;
    let station = monitor.stations().get(&id).await?;
    let sessions = monitor
        .history()
        .sessions(&SessionsQuery {
            station_id: id,
            port: args.port,
            from: args.since,
            to: args.until,
            limit: args.limit,
        })
        .await?;
    emit(
        out,
        &args.output,
        || SessionListJson::of(&station, &sessions),
        || csv::sessions(&station, &sessions),
        |out| {
            let mut table = super::table(["port", "started", "ended", "minutes", "kWh"]);
            for session in &sessions {
                let row = &session.row;
                let ended = match (row.ended_at, session.open) {
                    (Some(end), _) => end.format("%Y-%m-%d %H:%M").to_string(),
                    (None, true) => "(running)".into(),
                    (None, false) => "(end not seen)".into(),
                };
                table.add_row([
                    row.port.to_string(),
                    row.started_at.format("%Y-%m-%d %H:%M").to_string(),
                    ended,
                    row.duration()
                        .map(|d| format!("{:.0}", d.num_seconds() as f64 / 60.0))
                        .unwrap_or_default(),
                    row.energy_kwh.map(|e| e.to_string()).unwrap_or_default(),
                ]);
            }
            writeln!(out, "{} {}", station.id, station.name)?;
            writeln!(out, "{table}")?;
            writeln!(out, "{} sessions (UTC)", sessions.len())?;
            Ok(())
        },
    )
}

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The station; without one, the whole fleet.
    pub station: Option<String>,
    /// Days up to now (1–366).
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    pub days: u32,
    /// `--json`: the document of `GET /api/stations/{station_id}/stats` (`GET /api/stats`).
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
    #[command(flatten)]
    timezone: TimeZoneFlags,
}

settle_by!(StatsArgs: database, cache, timezone);

/// `stats`: how busy a station, or the fleet, has been.
pub async fn stats(
    settings: Settings,
    args: StatsArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    let Some(station) = &args.station else {
        let fleet = FleetStatsJson::of(monitor.history().fleet_stats(args.days).await?);
        return emit_json(out, &args.output, || &fleet, |out| print_fleet(out, &fleet));
    };
    let id = StationId::parse(station)?;
    let station = monitor.stations().get(&id).await?;
    let stats = monitor.history().station_stats(&id, args.days).await?;
    let json = StationStatsJson::of(&station, stats);
    emit_json(
        out,
        &args.output,
        || &json,
        |out| {
            writeln!(out, "{} {}", json.station_id, json.name)?;
            write_stats(out, &json.stats)
        },
    )
}

/// The people's view of the fleet's figures, with the stations most often broken.
fn print_fleet(out: &mut (dyn Write + Send), fleet: &FleetStatsJson) -> anyhow::Result<()> {
    writeln!(out, "fleet of {} stations", fleet.stations)?;
    write_stats(out, &fleet.stats)?;
    for (title, ranked) in [
        ("most fault", &fleet.most_fault),
        ("most offline", &fleet.most_offline),
    ] {
        if ranked.is_empty() {
            continue;
        }
        writeln!(out, "{title}:")?;
        for r in ranked {
            writeln!(out, "  {:>9.0} min  {} {}", r.minutes, r.station_id, r.name)?;
        }
    }
    Ok(())
}

fn write_stats(out: &mut (dyn Write + Send), stats: &Stats) -> anyhow::Result<()> {
    let percent = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{:.0}%", v * 100.0));
    let minutes = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0} min"));
    writeln!(
        out,
        "last {} days ({}): utilisation {}, {} sessions (median {}, 90% under {}), {:.1} kWh",
        stats.days,
        stats.timezone,
        percent(stats.utilisation),
        stats.sessions,
        minutes(stats.median_session_minutes),
        minutes(stats.p90_session_minutes),
        stats.energy_kwh
    )?;
    writeln!(
        out,
        "port minutes: {:.0} free, {:.0} occupied, {:.0} fault, {:.0} offline, {:.0} reserved, {:.0} out of service; availability {}",
        stats.minutes.free,
        stats.minutes.occupied,
        stats.minutes.fault,
        stats.minutes.offline,
        stats.minutes.reserved,
        stats.minutes.unavailable,
        availability_text(stats.availability)
    )?;
    writeln!(out, "occupancy by hour (%), Monday first:")?;
    write!(out, "     ")?;
    for hour in 0..24 {
        write!(out, "{hour:>4}")?;
    }
    writeln!(out)?;
    for (day, hours) in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .iter()
        .zip(&stats.occupancy)
    {
        write!(out, "{day}  ")?;
        for cell in hours {
            match cell {
                Some(v) => write!(out, "{:>4.0}", v * 100.0)?,
                None => write!(out, "   ·")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Arguments of `prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    retention: RetentionFlags,
}

settle_by!(PruneArgs: database, retention);

/// `prune`: deletes history past its retention once (the server does it every hour).
pub async fn prune(
    settings: Settings,
    _args: PruneArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    let report = monitor.history().prune().await?;
    for (what, before, deleted) in &report.deleted {
        writeln!(
            out,
            "{:<14} {deleted:>9} rows older than {} deleted",
            what.table(),
            before.format("%Y-%m-%d %H:%M UTC")
        )?;
    }
    writeln!(out, "hourly statistics are kept")?;
    Ok(ExitCode::SUCCESS)
}

/// "97.4%", or "–" when nothing was counted.
fn availability_text(share: Option<f64>) -> String {
    share.map_or("–".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// Arguments of `availability`.
#[derive(Debug, Args)]
pub struct AvailabilityArgs {
    /// The station (its days and outages); without one, the fleet's report of the stations
    /// below `--below`.
    pub station: Option<String>,
    /// Days up to now (1–366; default 30 for a station, 7 for the fleet).
    #[arg(long)]
    pub days: Option<u32>,
    /// The fleet's report lists the stations below this share (0–1).
    #[arg(long, default_value_t = 0.95)]
    pub below: f64,
    /// `--json`, `--csv`: the documents of `GET /api/stations/{id}/availability` and
    /// `GET /api/availability`.
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
    #[command(flatten)]
    timezone: TimeZoneFlags,
}

settle_by!(AvailabilityArgs: database, cache, timezone);

/// "1 day", "7 days".
fn days_text(days: u32) -> String {
    if days == 1 {
        "1 day".to_owned()
    } else {
        format!("{days} days")
    }
}

/// `availability`: a station's availability a day and its outages, or the fleet's report.
pub async fn availability(
    settings: Settings,
    args: AvailabilityArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let zone = settings.history.timezone;
    let monitor = open(settings).await?;
    let Some(station) = &args.station else {
        let days = args.days.unwrap_or(7);
        let report = AvailabilityReportJson::of(
            &monitor
                .history()
                .availability_report(days, args.below)
                .await?,
        );
        return emit(
            out,
            &args.output,
            || &report,
            || csv::availability_report(&report),
            |out| {
                writeln!(
                    out,
                    "fleet availability over the last {}: {}; {} stations below {:.1}%",
                    days_text(days),
                    availability_text(report.availability),
                    report.stations.len(),
                    report.below * 100.0
                )?;
                for r in &report.stations {
                    writeln!(
                        out,
                        "  {:>6}  {:>8.0} min down  {:>8.0} min out of service  {} {}",
                        availability_text(Some(r.availability)),
                        r.down_minutes,
                        r.unavailable_minutes,
                        r.station_id,
                        r.name
                    )?;
                }
                Ok(())
            },
        );
    };
    let id = StationId::parse(station)?;
    let found = monitor
        .history()
        .station_availability(&id, args.days.unwrap_or(30))
        .await?;
    let json = StationAvailabilityJson::of(found);
    emit(
        out,
        &args.output,
        || &json,
        || csv::availability(&json),
        |out| {
            writeln!(
                out,
                "{} {}: availability {} over the last {} ({})",
                json.station_id,
                json.name,
                availability_text(json.availability),
                days_text(json.days),
                json.timezone
            )?;
            let mut table = super::table([
                "day",
                "availability",
                "fault min",
                "offline min",
                "out of service min",
            ]);
            for d in &json.daily {
                table.add_row([
                    d.date.to_string(),
                    availability_text(d.availability),
                    format!("{:.0}", d.fault_minutes),
                    format!("{:.0}", d.offline_minutes),
                    format!("{:.0}", d.unavailable_minutes),
                ]);
            }
            writeln!(out, "{table}")?;
            if json.outages.is_empty() {
                writeln!(out, "no outages")?;
                return Ok(());
            }
            writeln!(out, "outages ({}):", json.timezone)?;
            for o in &json.outages {
                let local = |t: chrono::DateTime<chrono::Utc>| {
                    t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
                };
                let to = o.to.map_or("now".to_owned(), local);
                let ports: Vec<String> = o.ports.iter().map(u32::to_string).collect();
                let why: Vec<&str> = o.statuses.iter().map(|s| s.as_str()).collect();
                writeln!(
                    out,
                    "  {} – {}  ports {}  {}{}",
                    local(o.from),
                    to,
                    ports.join(","),
                    why.join(", "),
                    o.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )?;
            }
            Ok(())
        },
    )
}
