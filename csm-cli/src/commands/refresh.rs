//! `csm-cli refresh`: one run of the engine over chosen stations, with a progress bar on a
//! terminal and a summary (or its JSON) at the end.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use csm_core::model::{Station, StationId};
use csm_core::refresh::RefreshOutcome;
use csm_core::settings::Settings;
use csm_flags::{
    CacheFlags, DatabaseFlags, EngineFlags, RecordingFlags, SimulatorFlags, TimeZoneFlags,
    VendorFlags,
};
use serde::Serialize;

use super::{FLUSH_DEADLINE, JsonOutput, emit_json, open, settle_by};
use crate::UsageError;

/// Arguments of `refresh`.
#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Stations to refresh.
    pub stations: Vec<String>,
    /// Refresh every enabled station.
    #[arg(long, conflicts_with = "stations")]
    pub all: bool,
    /// Refresh the stations this many times, one round after another in one process, each
    /// round's rows written before the next starts: how a server's steady cycles behave
    /// (statements prepared, last readings in memory), with a summary for each round.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    /// With `--rounds`: start a round every this many seconds (one that overruns is followed
    /// at once); without it, each round follows the previous.
    #[arg(long, value_name = "SECS", requires = "rounds", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub every: Option<u64>,
    /// `--json`: the summary as JSON.
    #[command(flatten)]
    pub output: JsonOutput,
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
    #[command(flatten)]
    recording: RecordingFlags,
    #[command(flatten)]
    timezone: TimeZoneFlags,
}

settle_by!(RefreshArgs: database, cache, engine, vendors, simulator, recording, timezone);

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

/// What `--json` prints: one summary, or with `--rounds` above 1 one a round.
#[derive(Serialize)]
#[serde(untagged)]
enum Rounds<'a> {
    One(&'a RefreshSummary),
    Many(&'a [RefreshSummary]),
}

/// A station that failed.
#[derive(Debug, Serialize)]
pub struct FailedStation {
    /// The station that failed.
    pub station_id: String,
    /// Its refresh error, as the API's `last_error` shows it.
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
    let mut summaries = Vec::with_capacity(args.rounds as usize);
    let first = tokio::time::Instant::now();
    for round in 1..=args.rounds {
        if let Some(every) = args.every {
            let due = first + Duration::from_secs(every) * (round - 1);
            tokio::time::sleep_until(due).await;
        }
        round_begins(round);
        let stations = chosen_stations(&monitor, &args).await?;
        let progress = Progress::new(stations.len());
        let started = Instant::now();
        let outcomes = monitor
            .refresh()
            .many(stations, |outcome| progress.step(outcome))
            .await;
        let report = if round == args.rounds {
            monitor.shutdown(FLUSH_DEADLINE).await
        } else {
            monitor.flush().await
        };
        progress.finish();
        summaries.push(summarize(&outcomes, started.elapsed(), report.pending_rows));
    }
    emit_json(
        out,
        &args.output,
        || match &summaries[..] {
            [one] => Rounds::One(one),
            rounds => Rounds::Many(rounds),
        },
        |out| {
            for (round, summary) in summaries.iter().enumerate() {
                if summaries.len() > 1 {
                    write!(out, "round {}/{}: ", round + 1, summaries.len())?;
                }
                write_summary(out, summary)?;
            }
            Ok(())
        },
    )?;
    let failed = summaries
        .iter()
        .any(|s| !s.failed.is_empty() || s.unwritten_rows > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Marks where a round starts, for a profiler that cuts its counts at each call
/// (`valgrind --tool=callgrind --dump-before=…round_begins…`, see `scripts/profile-refresh.sh`).
#[inline(never)]
fn round_begins(round: u32) {
    std::hint::black_box(round);
}

/// The stations a round refreshes: every enabled one, or those named.
async fn chosen_stations(
    monitor: &csm_core::monitor::Monitor,
    args: &RefreshArgs,
) -> anyhow::Result<Vec<Arc<Station>>> {
    if args.all {
        return Ok(monitor.stations().enabled().await?);
    }
    let mut chosen = Vec::with_capacity(args.stations.len());
    for raw in &args.stations {
        let id = StationId::parse(raw)?;
        chosen.push(monitor.stations().get(&id).await?);
    }
    Ok(chosen)
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
