//! History through the monitor: a station's readings (downsampled), its sessions, the
//! statistics of a station and of the fleet, the "free in about N minutes" estimates, and the
//! retention job. Reads are bounded like every other request-path read; statistics, which
//! may sum many hours, get [`STATS_WAIT`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::{MonitorError, Parts, READ_WAIT};
use crate::catalog::CatalogCell;
use crate::error::InvalidInput;
use crate::history::availability;
use crate::history::estimate::SessionLengths;
use crate::history::estimate::{self, FreeEstimate};
use crate::history::record::open_stays;
use crate::history::stats::{self, Stats};
use crate::history::{HistoryQuery, HourDelta, HourTotals, ReadingRow, SessionRow};
use crate::model::{MAX_PORT, PortStatus, Station, StationId, StationState, StatusEvent};
use crate::refresh::Engine;
use crate::settings::Settings;
use crate::store::{self, Prunable};
use crate::store::{EventQuery, Store};

/// Longest wait for the store when reading statistics.
pub const STATS_WAIT: Duration = Duration::from_secs(5);
/// How long an answer of the fleet's statistics is reused.
pub const FLEET_STATS_FRESH: Duration = Duration::from_secs(30);
/// Wait for a station's session lengths the first time its answer needs them.
const LENGTHS_WAIT: Duration = Duration::from_millis(300);
/// Most raw readings one history answer reads before downsampling.
pub const MAX_READINGS: u32 = 100_000;
/// Rows one pruning statement deletes.
pub const PRUNE_CHUNK: u32 = 5_000;
/// How often the retention job runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// Which readings of a station to answer, and how many points at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadingsQuery {
    /// The station.
    pub station_id: StationId,
    /// Only this port.
    pub port: Option<u32>,
    /// From this time on (default: 24 hours before `to`).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (default: now).
    pub to: Option<DateTime<Utc>>,
    /// At most this many points per port.
    pub points: u32,
}

impl ReadingsQuery {
    /// Points per port when the question names none.
    pub const DEFAULT_POINTS: u32 = 500;
    /// Most points per port.
    pub const MAX_POINTS: u32 = 5_000;
}

/// A station's readings over a range, each port's downsampled.
#[derive(Clone, Debug, PartialEq)]
pub struct Readings {
    /// The range.
    pub from: DateTime<Utc>,
    /// The range's end.
    pub to: DateTime<Utc>,
    /// The readings, by port then time.
    pub readings: Vec<ReadingRow>,
    /// Whether the range held more than [`MAX_READINGS`] readings (the newest were not read).
    pub truncated: bool,
}

/// Which sessions of a station to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionsQuery {
    /// The station.
    pub station_id: StationId,
    /// Only this port.
    pub port: Option<u32>,
    /// Sessions that started from this time on (default: 7 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// … and before this time (default: now).
    pub to: Option<DateTime<Utc>>,
    /// At most this many, newest first.
    pub limit: u32,
}

impl SessionsQuery {
    /// Sessions answered when the question names no limit.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// Most sessions one answer holds.
    pub const MAX_LIMIT: u32 = 1_000;
}

/// A session as answered: open when it is the port's running stay.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// The stored row.
    pub row: SessionRow,
    /// Whether it is still running (its port is occupied since its start).
    pub open: bool,
}

/// The fleet's statistics: the stations' together, and those longest in fault or offline.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetStats {
    /// Stations in the catalogue.
    pub stations: usize,
    /// Everything together.
    pub stats: Stats,
    /// Stations with the most fault minutes (at most 10, most first).
    pub most_fault: Vec<(Arc<Station>, f64)>,
    /// Stations with the most offline minutes.
    pub most_offline: Vec<(Arc<Station>, f64)>,
}

/// Status events an outage list reads at most (a station that changed more often over the
/// range gets the outages of its last this many changes, and says so).
pub const MAX_OUTAGE_EVENTS: u32 = 50_000;

/// A station's availability: its statistics (with each day's availability) and outages.
#[derive(Clone, Debug)]
pub struct StationAvailability {
    /// The station.
    pub station: Arc<Station>,
    /// Its statistics over the range.
    pub stats: Stats,
    /// Its outages, oldest first.
    pub outages: Vec<availability::Outage>,
    /// Whether the range held more status events than were read.
    pub events_cut: bool,
}

/// A station below the threshold of an [`AvailabilityReport`].
#[derive(Clone, Debug)]
pub struct StationAvailabilityRow {
    /// The station.
    pub station: Arc<Station>,
    /// Its availability over the range.
    pub availability: f64,
    /// Port minutes in fault or offline.
    pub down_minutes: f64,
    /// Port minutes taken out of service.
    pub unavailable_minutes: f64,
}

/// The fleet's availability, and the stations below a threshold.
#[derive(Clone, Debug)]
pub struct AvailabilityReport {
    /// Days covered.
    pub days: u32,
    /// Start of the range.
    pub from: DateTime<Utc>,
    /// Its end (now).
    pub to: DateTime<Utc>,
    /// The threshold.
    pub below: f64,
    /// The fleet's availability over the range.
    pub availability: Option<f64>,
    /// The stations below the threshold, least available first.
    pub stations: Vec<StationAvailabilityRow>,
}

/// What one run of the retention job deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Rows deleted per table, with the cut-off.
    pub deleted: Vec<(Prunable, DateTime<Utc>, u64)>,
}

fn check_port(port: Option<u32>) -> Result<(), InvalidInput> {
    match port {
        Some(port) if !(1..=MAX_PORT).contains(&port) => Err(InvalidInput::new(
            "port",
            format!("{port} is outside 1..={MAX_PORT}"),
        )),
        _ => Ok(()),
    }
}

/// The range `[from, to)` of a query, with `default` before `to` when `from` is not given;
/// times before 1970 (which csm never stored, and some databases cannot compare) count as
/// 1970.
fn range_of(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    default: TimeDelta,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let to = to
        .unwrap_or_else(crate::model::now)
        .max(DateTime::UNIX_EPOCH);
    let from = from.unwrap_or(to - default).max(DateTime::UNIX_EPOCH);
    (from, to)
}

/// Checks how many days statistics are asked for.
pub fn check_days(days: u32) -> Result<(), InvalidInput> {
    if (1..=stats::MAX_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(InvalidInput::new(
            "days",
            format!("{days} is outside 1..={}", stats::MAX_DAYS),
        ))
    }
}

/// Keeps at most `points` readings of each port: the range cut into `points` equal spans, the
/// last reading of each span (a real reading, never an average).
pub fn downsample(
    readings: Vec<ReadingRow>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    points: u32,
) -> Vec<ReadingRow> {
    let span_ms =
        ((to - from).num_milliseconds().max(1) as f64 / f64::from(points.max(1))).max(1.0);
    let bucket = |at: DateTime<Utc>| ((at - from).num_milliseconds() as f64 / span_ms) as i64;
    let mut readings = readings;
    readings.sort_by(|a, b| a.port.cmp(&b.port).then(a.at.cmp(&b.at)));
    let mut kept: Vec<ReadingRow> = Vec::with_capacity(readings.len().min(points as usize * 4));
    for reading in readings {
        let same_bucket = kept
            .last()
            .is_some_and(|last| last.port == reading.port && bucket(last.at) == bucket(reading.at));
        if same_bucket {
            if let Some(last) = kept.last_mut() {
                *last = reading;
            }
        } else {
            kept.push(reading);
        }
    }
    kept
}

/// The history area of the [`Monitor`](super::Monitor).
#[derive(Clone)]
pub struct History {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    engine: Engine,
    catalog: Arc<CatalogCell>,
    lengths: Arc<SessionLengths>,
    /// The fleet's statistics by days, reused for [`FLEET_STATS_FRESH`].
    fleet_stats: moka::sync::Cache<u32, FleetStats>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("store", &self.store)
            .finish()
    }
}

impl History {
    pub(super) fn new(parts: &Parts) -> Self {
        Self {
            settings: Arc::clone(&parts.settings),
            store: Arc::clone(&parts.store),
            engine: parts.engine.clone(),
            catalog: Arc::clone(&parts.catalog),
            lengths: SessionLengths::new(Arc::clone(&parts.store)),
            fleet_stats: moka::sync::Cache::builder()
                .max_capacity(u64::from(stats::MAX_DAYS))
                .time_to_live(FLEET_STATS_FRESH)
                .build(),
        }
    }

    /// A station of the catalogue.
    async fn station(&self, id: &StationId) -> Result<Arc<Station>, MonitorError> {
        self.catalog
            .get()
            .await?
            .get(id)
            .cloned()
            .ok_or_else(|| MonitorError::NotFound(id.clone()))
    }

    /// A station's current state (the station must exist).
    async fn state(&self, id: &StationId) -> Result<Option<Arc<StationState>>, MonitorError> {
        self.station(id).await?;
        let mut current = self.engine.current(std::slice::from_ref(id)).await;
        Ok(current.pop().and_then(|c| c.state))
    }

    /// Forgets a removed station's session lengths.
    pub(super) fn forget(&self, id: &StationId) {
        self.lengths.forget(id);
    }

    /// A station's readings over a range, each port downsampled to `query.points`.
    pub async fn readings(&self, query: &ReadingsQuery) -> Result<Readings, MonitorError> {
        check_port(query.port)?;
        if !(1..=ReadingsQuery::MAX_POINTS).contains(&query.points) {
            return Err(InvalidInput::new(
                "points",
                format!(
                    "{} is outside 1..={}",
                    query.points,
                    ReadingsQuery::MAX_POINTS
                ),
            )
            .into());
        }
        self.station(&query.station_id).await?;
        let (from, to) = range_of(query.from, query.to, TimeDelta::hours(24));
        if from >= to {
            return Ok(Readings {
                from,
                to,
                readings: Vec::new(),
                truncated: false,
            });
        }
        let stored = HistoryQuery {
            station_id: query.station_id.clone(),
            port: query.port,
            from,
            to,
            limit: MAX_READINGS,
        };
        let read = self.store.readings(&stored);
        let found = store::within(READ_WAIT, "reading history", &*self.store, read).await?;
        let truncated = found.len() >= MAX_READINGS as usize;
        Ok(Readings {
            from,
            to,
            readings: downsample(found, (from, to), query.points),
            truncated,
        })
    }

    /// A station's sessions that started in a range, newest first.
    pub async fn sessions(&self, query: &SessionsQuery) -> Result<Vec<Session>, MonitorError> {
        check_port(query.port)?;
        if !(1..=SessionsQuery::MAX_LIMIT).contains(&query.limit) {
            return Err(InvalidInput::new(
                "limit",
                format!(
                    "{} is outside 1..={}",
                    query.limit,
                    SessionsQuery::MAX_LIMIT
                ),
            )
            .into());
        }
        let state = self.state(&query.station_id).await?;
        let (from, to) = range_of(query.from, query.to, TimeDelta::days(7));
        if from >= to {
            return Ok(Vec::new());
        }
        let stored = HistoryQuery {
            station_id: query.station_id.clone(),
            port: query.port,
            from,
            to,
            limit: query.limit,
        };
        let read = self.store.sessions(&stored);
        let rows = store::within(READ_WAIT, "reading sessions", &*self.store, read).await?;
        let running = |row: &SessionRow| {
            row.ended_at.is_none()
                && state.as_ref().is_some_and(|state| {
                    state.ports.iter().any(|p| {
                        p.reading.port == row.port
                            && p.reading.status == PortStatus::Occupied
                            && p.since == row.started_at
                    })
                })
        };
        Ok(rows
            .into_iter()
            .map(|row| Session {
                open: running(&row),
                row,
            })
            .collect())
    }

    /// A station's statistics over the last `days` days.
    pub async fn station_stats(&self, id: &StationId, days: u32) -> Result<Stats, MonitorError> {
        check_days(days)?;
        let state = self.state(id).await?;
        let now = crate::model::now();
        let range = stats::range(days, now);
        let open = state
            .as_deref()
            .map(|s| open_stays(s, now))
            .unwrap_or_default();
        self.summarize(Some(id), days, range, &open).await
    }

    /// The fleet's statistics over the last `days` days; an answer is reused for
    /// [`FLEET_STATS_FRESH`] (summing every station's hours of a long range takes a while).
    pub async fn fleet_stats(&self, days: u32) -> Result<FleetStats, MonitorError> {
        check_days(days)?;
        if let Some(fresh) = self.fleet_stats.get(&days) {
            return Ok(fresh);
        }
        let stats = self.count_fleet(days).await?;
        self.fleet_stats.insert(days, stats.clone());
        Ok(stats)
    }

    async fn count_fleet(&self, days: u32) -> Result<FleetStats, MonitorError> {
        let catalog = self.catalog.get().await?;
        let ids: Vec<StationId> = catalog.stations.iter().map(|s| s.id.clone()).collect();
        let current = self.engine.current(&ids).await;
        let now = crate::model::now();
        let range = stats::range(days, now);
        let open: Vec<HourDelta> = current
            .iter()
            .filter_map(|c| c.state.as_deref())
            .flat_map(|state| open_stays(state, now))
            .collect();
        let stats = self.summarize(None, days, range, &open).await?;
        let read = self.store.station_totals(range.0, range.1);
        let stored = store::within(
            STATS_WAIT,
            "reading stations' statistics",
            &*self.store,
            read,
        )
        .await?;
        let mut totals: std::collections::HashMap<StationId, HourTotals> =
            stored.into_iter().collect();
        for delta in open.iter().filter(|d| d.hour >= range.0) {
            totals
                .entry(delta.station_id.clone())
                .or_default()
                .add(&delta.totals);
        }
        let ranked = |status: PortStatus| {
            let mut ranked: Vec<(Arc<Station>, f64)> = totals
                .iter()
                .filter_map(|(id, totals)| {
                    let secs = totals.secs_in(status);
                    let station = catalog.get(id)?;
                    (secs > 0).then(|| (Arc::clone(station), (secs as f64 / 6.0).round() / 10.0))
                })
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
            ranked.truncate(10);
            ranked
        };
        Ok(FleetStats {
            stations: catalog.stations.len(),
            most_fault: ranked(PortStatus::Fault),
            most_offline: ranked(PortStatus::Offline),
            stats,
        })
    }

    /// Statistics of a station (or the fleet) from its stored hours, `open` stays and session
    /// lengths.
    async fn summarize(
        &self,
        id: Option<&StationId>,
        days: u32,
        range: (DateTime<Utc>, DateTime<Utc>),
        open: &[HourDelta],
    ) -> Result<Stats, MonitorError> {
        let tz = self.settings.history.timezone;
        let read = async {
            let hours = self.store.hours(id, range.0, range.1).await?;
            let lengths = self
                .store
                .session_lengths(id, range.0, stats::LENGTH_SAMPLE)
                .await?;
            Ok((hours, lengths))
        };
        let (hours, lengths) =
            store::within(STATS_WAIT, "reading statistics", &*self.store, read).await?;
        Ok(stats::summarize(days, range, tz, &hours, open, lengths))
    }

    /// A station's availability over the last `days` days: each day's, the whole range's, and
    /// its outages (from its status events and its ports now).
    pub async fn station_availability(
        &self,
        id: &StationId,
        days: u32,
    ) -> Result<StationAvailability, MonitorError> {
        let stats = self.station_stats(id, days).await?;
        let station = self.station(id).await?;
        let state = self.state(id).await?;
        let query = EventQuery {
            station_id: Some(id.clone()),
            port: None,
            since: Some(stats.from),
            until: None,
            limit: MAX_OUTAGE_EVENTS,
        };
        let read = self.store.events(&query);
        let events = store::within(STATS_WAIT, "reading status events", &*self.store, read).await?;
        let current: Vec<(u32, PortStatus)> = state
            .as_deref()
            .map(|s| {
                s.ports
                    .iter()
                    .map(|p| (p.reading.port, p.reading.status))
                    .collect()
            })
            .unwrap_or_default();
        let reason = state.as_deref().and_then(|s| {
            s.last_error.clone().or_else(|| {
                let codes: Vec<String> = s
                    .ports
                    .iter()
                    .filter(|p| availability::is_down(p.reading.status))
                    .filter_map(|p| {
                        p.reading
                            .raw_code
                            .as_ref()
                            .map(|c| format!("port {}: {c}", p.reading.port))
                    })
                    .collect();
                (!codes.is_empty()).then(|| codes.join("; "))
            })
        });
        let outages = availability::outages(stats.from, &events, &current, reason.as_deref());
        Ok(StationAvailability {
            station,
            stats,
            outages,
            events_cut: events.len() >= MAX_OUTAGE_EVENTS as usize,
        })
    }

    /// The fleet's availability over the last `days` days, and the stations below `below`
    /// (a share, 0–1), least available first.
    pub async fn availability_report(
        &self,
        days: u32,
        below: f64,
    ) -> Result<AvailabilityReport, MonitorError> {
        if !(0.0..=1.0).contains(&below) {
            return Err(InvalidInput::new(
                "below",
                format!("{below} is not a share within 0..1 (0.95: 95%)"),
            )
            .into());
        }
        let fleet = self.fleet_stats(days).await?;
        let catalog = self.catalog.get().await?;
        let (from, to) = (fleet.stats.from, fleet.stats.to);
        let read = self.store.station_totals(from, to);
        let stored = store::within(
            STATS_WAIT,
            "reading stations' statistics",
            &*self.store,
            read,
        )
        .await?;
        let mut stations: Vec<StationAvailabilityRow> = stored
            .into_iter()
            .filter_map(|(id, totals)| {
                let station = Arc::clone(catalog.get(&id)?);
                let share = availability::availability(&totals)?;
                let minutes = |s| (totals.secs_in(s) as f64 / 6.0).round() / 10.0;
                (share < below).then(|| StationAvailabilityRow {
                    station,
                    availability: share,
                    down_minutes: minutes(PortStatus::Fault) + minutes(PortStatus::Offline),
                    unavailable_minutes: minutes(PortStatus::Unavailable),
                })
            })
            .collect();
        stations.sort_by(|a, b| {
            a.availability
                .total_cmp(&b.availability)
                .then_with(|| a.station.id.cmp(&b.station.id))
        });
        Ok(AvailabilityReport {
            days,
            from,
            to,
            below,
            availability: fleet.stats.availability,
            stations,
        })
    }

    /// A station's status changes, newest first.
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<StatusEvent>, MonitorError> {
        query.validate()?;
        if let Some(id) = &query.station_id {
            self.station(id).await?;
        }
        let read = self.store.events(query);
        Ok(store::within(READ_WAIT, "reading status events", &*self.store, read).await?)
    }

    /// The estimate of each port of a state (aligned with its ports), from the session
    /// lengths held now.
    pub fn estimates(&self, state: &StationState) -> Vec<Option<FreeEstimate>> {
        let needs_history = state.ports.iter().any(|p| {
            p.reading.status == PortStatus::Occupied && p.reading.session_ends_at.is_none()
        });
        let (station, fleet) = if needs_history {
            self.lengths.get(&state.station_id)
        } else {
            (None, None)
        };
        let now = crate::model::now();
        state
            .ports
            .iter()
            .map(|port| estimate::estimate(port, now, station.as_deref(), fleet.as_deref()))
            .collect()
    }

    /// Waits a moment for the session lengths of the states whose occupied ports need them
    /// and that were never read, so that a first answer has its estimates too.
    pub(super) async fn wait_for_lengths(&self, states: &[&StationState]) {
        let needing: Vec<&StationId> = states
            .iter()
            .filter(|s| {
                s.ports.iter().any(|p| {
                    p.reading.status == PortStatus::Occupied && p.reading.session_ends_at.is_none()
                })
            })
            .map(|s| &s.station_id)
            .collect();
        if !needing.is_empty() {
            self.lengths.wait_for(&needing, LENGTHS_WAIT).await;
        }
    }

    /// Deletes history past its retention: readings older than `readings_days`, events and
    /// sessions older than `events_days` (hourly totals are kept). Deletes in chunks of
    /// [`PRUNE_CHUNK`] rows, each its own short statement, so no lock is held long.
    pub async fn prune(&self) -> Result<PruneReport, MonitorError> {
        let history = &self.settings.history;
        let now = crate::model::now();
        let mut report = PruneReport::default();
        for what in Prunable::ALL {
            let days = match what {
                Prunable::Readings => history.readings_days,
                Prunable::Events | Prunable::Sessions => history.events_days,
                Prunable::Audit => history.audit_days,
                Prunable::OcppMessages => history.ocpp_log_days,
            };
            let before = now - TimeDelta::days(i64::from(days));
            let mut deleted = 0;
            loop {
                let done = self.store.prune(what, before, PRUNE_CHUNK).await?;
                deleted += done;
                if done < u64::from(PRUNE_CHUNK) {
                    break;
                }
                // Let other writers in between chunks.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            report.deleted.push((what, before, deleted));
        }
        Ok(report)
    }

    /// Runs the retention job now and then every hour until `cancel` fires.
    pub async fn run_pruning(&self, cancel: CancellationToken) {
        loop {
            match self.prune().await {
                Ok(report) => {
                    for (what, before, deleted) in report.deleted.iter().filter(|d| d.2 > 0) {
                        tracing::info!(table = what.table(), %before, deleted, "pruned history past its retention");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "pruning history failed; trying again in an hour")
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(PRUNE_EVERY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn reading(port: u32, at: DateTime<Utc>, volts: f64) -> ReadingRow {
        ReadingRow {
            station_id: StationId::parse("S1").unwrap(),
            port,
            at,
            status: PortStatus::Free,
            voltage: Some(volts),
            current: None,
            power: None,
            energy_kwh: None,
        }
    }

    #[test]
    fn downsampling_keeps_the_last_real_reading_of_each_span_per_port() {
        let from = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let to = from + TimeDelta::hours(1);
        let mut readings = Vec::new();
        for minute in 0..60 {
            for port in [1, 2] {
                readings.push(reading(
                    port,
                    from + TimeDelta::minutes(minute),
                    f64::from(minute as u32),
                ));
            }
        }
        let kept = downsample(readings, (from, to), 6);
        assert_eq!(kept.len(), 12);
        let port1: Vec<f64> = kept
            .iter()
            .filter(|r| r.port == 1)
            .filter_map(|r| r.voltage)
            .collect();
        assert_eq!(port1, [9.0, 19.0, 29.0, 39.0, 49.0, 59.0]);
        let few = vec![
            reading(1, from, 1.0),
            reading(1, from + TimeDelta::minutes(30), 2.0),
        ];
        assert_eq!(downsample(few.clone(), (from, to), 500), few);
    }
}
