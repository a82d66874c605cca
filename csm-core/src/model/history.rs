//! The records of history the store keeps: readings, sessions and hourly roll-ups of ports,
//! stations and the fleet, and how a stay is cut into hours. What derives them and reads them
//! back is [`crate::history`].

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::{PortStatus, StationId};

/// One stored reading of a port.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadingRow {
    /// The station.
    pub station_id: StationId,
    /// The port.
    pub port: u32,
    /// When it was observed.
    pub at: DateTime<Utc>,
    /// Status then.
    pub status: PortStatus,
    /// Volts, if the vendor sent them.
    pub voltage: Option<f64>,
    /// Amperes.
    pub current: Option<f64>,
    /// Watts.
    pub power: Option<f64>,
    /// kWh of the running session.
    pub energy_kwh: Option<f64>,
}

/// A charging session: a port's stay in `occupied`.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    /// The station.
    pub station_id: StationId,
    /// The port.
    pub port: u32,
    /// When the port became occupied.
    pub started_at: DateTime<Utc>,
    /// When it stopped being occupied; `None` while the session runs.
    pub ended_at: Option<DateTime<Utc>>,
    /// Energy delivered, when the vendor sends it.
    pub energy_kwh: Option<f64>,
}

impl SessionRow {
    /// Length of an ended session.
    pub fn duration(&self) -> Option<TimeDelta> {
        self.ended_at.map(|end| end - self.started_at)
    }
}

/// What an hour adds up to: seconds in each status (in the order of [`PortStatus::ALL`]),
/// sessions started and energy delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HourTotals {
    /// Seconds in each status, by [`PortStatus::ALL`] order.
    pub secs: [u64; PortStatus::ALL.len()],
    /// Sessions that started.
    pub sessions_started: u64,
    /// kWh of the sessions that ended.
    pub energy_kwh: f64,
}

impl HourTotals {
    /// Adds another hour's (or part's) totals.
    pub fn add(&mut self, other: &HourTotals) {
        for (mine, theirs) in self.secs.iter_mut().zip(other.secs) {
            *mine += theirs;
        }
        self.sessions_started += other.sessions_started;
        self.energy_kwh += other.energy_kwh;
    }

    /// Seconds in a status.
    pub fn secs_in(&self, status: PortStatus) -> u64 {
        self.secs[status_index(status)]
    }

    /// Seconds in any status.
    pub fn total_secs(&self) -> u64 {
        self.secs.iter().sum()
    }
}

/// Where a status sits in [`PortStatus::ALL`] (and in [`HourTotals::secs`]).
pub fn status_index(status: PortStatus) -> usize {
    PortStatus::ALL
        .iter()
        .position(|s| *s == status)
        .unwrap_or(PortStatus::ALL.len() - 1)
}

/// What a batch adds to one port's hour.
#[derive(Clone, Debug, PartialEq)]
pub struct HourDelta {
    /// The station.
    pub station_id: StationId,
    /// The port.
    pub port: u32,
    /// Start of the UTC hour.
    pub hour: DateTime<Utc>,
    /// What it adds.
    pub totals: HourTotals,
}

/// A stored hour of a station or of the fleet.
#[derive(Clone, Debug, PartialEq)]
pub struct HourRow {
    /// Start of the UTC hour.
    pub hour: DateTime<Utc>,
    /// Its totals.
    pub totals: HourTotals,
}

/// Port hours merged by key, and what they add to their stations' and the fleet's hours: the
/// rows one batch writes, each key once and in key order (so that two writers lock rows in
/// the same order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RollUp {
    /// Per port and hour.
    pub ports: Vec<HourDelta>,
    /// Per station and hour.
    pub stations: Vec<(StationId, HourRow)>,
    /// Per hour.
    pub fleet: Vec<HourRow>,
}

impl RollUp {
    /// Sums `deltas` per port, station and fleet hour.
    pub fn of(deltas: &[HourDelta]) -> Self {
        use std::collections::BTreeMap;
        let mut ports: BTreeMap<(&StationId, u32, DateTime<Utc>), HourTotals> = BTreeMap::new();
        let mut stations: BTreeMap<(&StationId, DateTime<Utc>), HourTotals> = BTreeMap::new();
        let mut fleet: BTreeMap<DateTime<Utc>, HourTotals> = BTreeMap::new();
        for delta in deltas {
            let key = (&delta.station_id, delta.port, delta.hour);
            ports.entry(key).or_default().add(&delta.totals);
            let key = (&delta.station_id, delta.hour);
            stations.entry(key).or_default().add(&delta.totals);
            fleet.entry(delta.hour).or_default().add(&delta.totals);
        }
        Self {
            ports: ports
                .into_iter()
                .map(|((station_id, port, hour), totals)| HourDelta {
                    station_id: station_id.clone(),
                    port,
                    hour,
                    totals,
                })
                .collect(),
            stations: stations
                .into_iter()
                .map(|((station_id, hour), totals)| (station_id.clone(), HourRow { hour, totals }))
                .collect(),
            fleet: fleet
                .into_iter()
                .map(|(hour, totals)| HourRow { hour, totals })
                .collect(),
        }
    }
}

/// The start of the UTC hour `at` falls in.
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}

/// `[from, to)` cut at UTC hour boundaries: each hour's start and the seconds of it covered
/// (whole seconds; the parts of a second are carried so that the parts add up to the whole).
pub fn split_by_hour(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> impl Iterator<Item = (DateTime<Utc>, u64)> {
    let mut at = from;
    let mut counted_ms: i64 = 0;
    let start = from;
    std::iter::from_fn(move || {
        if at >= to {
            return None;
        }
        let hour = hour_of(at);
        let next = (hour + TimeDelta::hours(1)).min(to);
        // Seconds counted so far round down; this part takes what brings the total to the
        // whole seconds since the start.
        let elapsed_ms = (next - start).num_milliseconds();
        let secs = (elapsed_ms / 1000 - counted_ms / 1000).max(0) as u64;
        counted_ms = elapsed_ms;
        at = next;
        Some((hour, secs))
    })
}

/// Which stored history to read: a station (or the fleet), maybe one port, a time range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The station.
    pub station_id: StationId,
    /// Only this port.
    pub port: Option<u32>,
    /// From this time on.
    pub from: DateTime<Utc>,
    /// Before this time.
    pub to: DateTime<Utc>,
    /// At most this many rows.
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn stays_are_cut_at_hour_boundaries_and_add_up() {
        let from =
            Utc.with_ymd_and_hms(2026, 12, 1, 7, 40, 0).unwrap() + TimeDelta::milliseconds(500);
        let to = Utc.with_ymd_and_hms(2026, 12, 1, 10, 5, 0).unwrap();
        let parts: Vec<(DateTime<Utc>, u64)> = split_by_hour(from, to).collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(
            parts[0].0,
            Utc.with_ymd_and_hms(2026, 12, 1, 7, 0, 0).unwrap()
        );
        assert_eq!(parts[0].1, 19 * 60 + 59);
        assert_eq!(parts[1].1, 3600);
        assert_eq!(parts[3].1, 5 * 60);
        let total: u64 = parts.iter().map(|p| p.1).sum();
        assert_eq!(total as i64, (to - from).num_seconds());
        assert_eq!(split_by_hour(to, to).count(), 0);
        assert_eq!(split_by_hour(to, from).count(), 0);
    }
}
