//! `csm-cli ports` and `csm-cli events`: what csm knows of a station now, and what happened.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use csm_core::model::{PortStatus, StationId, StationSummary};
use csm_core::monitor::StationView;
use csm_core::settings::Settings;
use csm_core::store::EventQuery;
use csm_core::views::{EventListJson, StationDetailJson};
use csm_flags::{CacheFlags, DatabaseFlags};

use super::{JsonOutput, Output, emit, emit_json, open, settle_by};

/// Arguments of `ports`.
#[derive(Debug, Args)]
pub struct PortsArgs {
    /// The station.
    pub station: String,
    /// `--json`: the document of `GET /api/stations/{station_id}`.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
}

settle_by!(PortsArgs: database, cache);

/// `ports`: what csm knows of a station's ports (from the cache, else the database).
pub async fn ports(
    settings: Settings,
    args: PortsArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    let id = StationId::parse(&args.station)?;
    let view = monitor.stations().view(&id).await?;
    emit_json(
        out,
        &args.output,
        || StationDetailJson::of(&view),
        |out| print_ports(out, &view),
    )
}

/// The people's view of a station's ports: a table, the summary, and whether it is stale.
fn print_ports(out: &mut (dyn Write + Send), view: &StationView) -> anyhow::Result<()> {
    writeln!(out, "{} {}", view.station.id, view.station.name)?;
    let Some(state) = &view.state else {
        writeln!(
            out,
            "no data yet: run `csm-cli refresh {}`",
            view.station.id
        )?;
        return Ok(());
    };
    let fmt =
        |value: Option<f64>, unit: &str| value.map(|v| format!("{v} {unit}")).unwrap_or_default();
    let mut table = super::table([
        "port",
        "status",
        "since",
        "voltage",
        "current",
        "power",
        "energy",
        "session ends",
        "free in",
        "code",
    ]);
    let now = chrono::Utc::now();
    for (index, port) in state.ports.iter().enumerate() {
        let r = &port.reading;
        let free_in = view
            .estimates
            .get(index)
            .copied()
            .flatten()
            .map(|e| {
                let minutes = ((e.at - now).num_seconds().max(0) as f64 / 60.0).round();
                match e.sessions {
                    Some(n) => format!("~{minutes} min ({n} sessions)"),
                    None => format!("~{minutes} min (vendor)"),
                }
            })
            .unwrap_or_default();
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
            free_in,
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
    Ok(())
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
            PortStatus::Unavailable => summary.unavailable,
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
    /// `--json` or `--csv`: as `GET /api/stations/{station_id}/events`.
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    database: DatabaseFlags,
}

settle_by!(EventsArgs: database);

/// `events`: a station's status history.
pub async fn events(
    settings: Settings,
    args: EventsArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    let id = StationId::parse(&args.station)?;
    let events = monitor
        .history()
        .events(&EventQuery {
            station_id: Some(id.clone()),
            port: args.port,
            limit: args.limit,
            ..EventQuery::default()
        })
        .await?;
    let station = monitor.stations().get(&id).await?;
    emit(
        out,
        &args.output,
        || EventListJson::of(&id, &events),
        || csm_core::views::history::csv::events(&station, &events),
        |out| {
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
            Ok(())
        },
    )
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
