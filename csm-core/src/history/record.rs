//! What a successful refresh adds to history, derived in memory from the previous state, the
//! new one and its status events — no database read on the refresh path:
//!
//! - the stays that closed (a port left a status, or csm got a station back after an outage,
//!   which counts as offline) become seconds in the hourly roll-ups;
//! - a port that became occupied starts a session, one that left `occupied` ends it;
//! - a reading is kept when the status changed, a measurement moved beyond its deadband since
//!   the last kept one, or it is the first of a new heartbeat period (periods of
//!   `heartbeat_secs` aligned to the clock, so every period in which a port was observed has a
//!   reading, whichever process observed it).
//!
//! The last kept reading of each port is held here, compactly (a few dozen bytes a port), until
//! the station is removed. A process that has none yet (it just started, or it is a `csm-cli
//! refresh` run) starts from the previous observation in the diff base: its measurements
//! stand for the last kept ones, its time for when they were kept.

use foldhash::{HashMap, HashMapExt};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{HourDelta, HourTotals, ReadingRow, SessionRow, split_by_hour, status_index};
use crate::model::{PortReading, PortState, PortStatus, StationId, StationState, StatusEvent};
use crate::settings::{Deadband, HistorySettings};

/// What a refresh adds to history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    /// Readings to store.
    pub readings: Vec<ReadingRow>,
    /// Sessions started or ended.
    pub sessions: Vec<SessionRow>,
    /// Seconds added to hours.
    pub hours: Vec<HourDelta>,
}

/// Derives history from refreshes; see the module's documentation.
pub struct Recorder {
    deadband: Deadband,
    heartbeat_secs: i64,
    kept: Mutex<HashMap<StationId, Vec<Kept>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("deadband", &self.deadband)
            .field("heartbeat_secs", &self.heartbeat_secs)
            .finish_non_exhaustive()
    }
}

/// What is remembered of a port: its last kept reading (measurements as `f32`, NaN where
/// absent, precise enough to compare with a deadband) and the last energy it reported, which
/// a session's end takes (the reading that ends it usually has none).
#[derive(Clone, Copy, Debug)]
struct Kept {
    port: u32,
    /// Seconds since 1970.
    at: i64,
    status: PortStatus,
    values: [f32; 4],
    energy_seen: f32,
}

impl Kept {
    fn of(reading: &PortReading, at: DateTime<Utc>) -> Self {
        let values = measurements(reading).map(|v| v.map_or(f32::NAN, |v| v as f32));
        Self {
            port: reading.port,
            at: at.timestamp(),
            status: reading.status,
            values,
            energy_seen: values[3],
        }
    }
}

fn measurements(reading: &PortReading) -> [Option<f64>; 4] {
    [
        reading.voltage,
        reading.current,
        reading.power,
        reading.energy_kwh,
    ]
}

impl Recorder {
    /// A recorder with the settings' deadbands and heartbeat.
    pub fn new(settings: &HistorySettings) -> Self {
        Self {
            deadband: settings.deadband,
            heartbeat_secs: settings.heartbeat_secs.min(i64::MAX as u64) as i64,
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets a removed station.
    pub fn forget(&self, id: &StationId) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StationId, Vec<Kept>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the successful refresh that turned `previous` into `state` (with `events`) adds to
    /// history. Sets `state.counted_from` when the refresh ended an outage.
    pub fn record(
        &self,
        previous: Option<&StationState>,
        state: &mut StationState,
        events: &[StatusEvent],
    ) -> Recorded {
        let Some(now) = state.observed_at else {
            return Recorded::default();
        };
        state.counted_from = match previous {
            Some(p) if outage_start(p).is_some() => Some(now),
            Some(p) => p.counted_from,
            None => None,
        };
        let mut memory = self.lock();
        let kept = memory.entry(state.station_id.clone()).or_default();
        let energy_seen = |port: u32, old: &PortState| {
            let remembered = kept
                .iter()
                .find(|k| k.port == port)
                .map(|k| k.energy_seen)
                .filter(|e| !e.is_nan())
                .map(f64::from);
            old.reading.energy_kwh.or(remembered)
        };
        let sessions = sessions(previous, events, energy_seen);
        let mut hours = previous.map_or_else(Vec::new, |p| closed_stays(p, events, now));
        hours.extend(session_hours(&sessions, events));
        let readings = self.readings(kept, previous, state, now);
        Recorded {
            readings,
            sessions,
            hours,
        }
    }

    /// The readings of `state` worth keeping, remembered as the last kept ones.
    fn readings(
        &self,
        kept: &mut Vec<Kept>,
        previous: Option<&StationState>,
        state: &StationState,
        at: DateTime<Utc>,
    ) -> Vec<ReadingRow> {
        let mut rows = Vec::new();
        for port in &state.ports {
            let reading = &port.reading;
            let mut slot = kept.iter().position(|k| k.port == reading.port);
            if slot.is_none()
                && let Some(seed) = seed(previous, reading.port)
            {
                kept.push(seed);
                slot = Some(kept.len() - 1);
            }
            let keep = slot.is_none_or(|i| self.worth_keeping(&kept[i], reading, at));
            match slot {
                Some(i) if !keep => {
                    kept[i].energy_seen = reading.energy_kwh.map_or(f32::NAN, |e| e as f32);
                    continue;
                }
                Some(i) => kept[i] = Kept::of(reading, at),
                None => kept.push(Kept::of(reading, at)),
            }
            rows.push(ReadingRow {
                station_id: state.station_id.clone(),
                port: reading.port,
                at,
                status: reading.status,
                voltage: reading.voltage,
                current: reading.current,
                power: reading.power,
                energy_kwh: reading.energy_kwh,
            });
        }
        rows
    }

    /// Whether `reading` differs enough from the last kept one to be stored.
    fn worth_keeping(&self, last: &Kept, reading: &PortReading, at: DateTime<Utc>) -> bool {
        let period = |secs: i64| secs.div_euclid(self.heartbeat_secs.max(1));
        if reading.status != last.status || period(at.timestamp()) != period(last.at) {
            return true;
        }
        let bands = [
            self.deadband.voltage,
            self.deadband.current,
            self.deadband.power,
            self.deadband.energy_kwh,
        ];
        measurements(reading)
            .iter()
            .zip(last.values)
            .zip(bands)
            .any(|((now, then), band)| match now {
                None => !then.is_nan(),
                Some(now) => then.is_nan() || (now - f64::from(then)).abs() > band,
            })
    }
}

/// What stands for the last kept reading of a port the recorder has not seen: the previous
/// observation (when the diff base has one with its time).
fn seed(previous: Option<&StationState>, port: u32) -> Option<Kept> {
    let previous = previous?;
    let at = previous.observed_at?;
    let old = previous.ports.iter().find(|p| p.reading.port == port)?;
    Some(Kept::of(&old.reading, at))
}

/// When the outage that `previous` is in began: the last successful observation of a station
/// whose last refresh failed.
fn outage_start(previous: &StationState) -> Option<DateTime<Utc>> {
    previous.last_error.as_ref().and(previous.observed_at)
}

/// The uncounted part of a port's stay up to `until`, as at most two parts: the stay in its
/// status up to the last good observation, and, when the station has been unreachable since,
/// offline from then on.
fn stay_parts(
    port: &PortState,
    station: &StationState,
    until: DateTime<Utc>,
) -> [(PortStatus, DateTime<Utc>, DateTime<Utc>); 2] {
    let from = station
        .counted_from
        .map_or(port.since, |counted| counted.max(port.since));
    let status = port.reading.status;
    match outage_start(station) {
        Some(lost_at) => {
            let lost_at = lost_at.clamp(from, until.max(from));
            [
                (status, from, lost_at),
                (PortStatus::Offline, lost_at, until),
            ]
        }
        None => [(status, from, until), (status, until, until)],
    }
}

/// `[from, to)` in `status` as seconds added to the port's hours.
fn stay_hours(
    station_id: &StationId,
    port: u32,
    (status, from, to): (PortStatus, DateTime<Utc>, DateTime<Utc>),
    hours: &mut Vec<HourDelta>,
) {
    for (hour, secs) in split_by_hour(from, to) {
        let mut totals = HourTotals::default();
        totals.secs[status_index(status)] = secs;
        hours.push(HourDelta {
            station_id: station_id.clone(),
            port,
            hour,
            totals,
        });
    }
}

/// The stays that this refresh closed, as seconds added to hours: every stay when csm got the
/// station back after an outage (the outage as offline), otherwise the stays of ports whose
/// status changed.
fn closed_stays(
    previous: &StationState,
    events: &[StatusEvent],
    now: DateTime<Utc>,
) -> Vec<HourDelta> {
    let recovered = outage_start(previous).is_some();
    let mut hours = Vec::new();
    for old in &previous.ports {
        let port = old.reading.port;
        let until = if recovered {
            Some(now)
        } else {
            events
                .iter()
                .find(|e| e.port == port && e.old.is_some())
                .map(|e| e.at)
        };
        if let Some(until) = until {
            for part in stay_parts(old, previous, until) {
                stay_hours(&previous.station_id, port, part, &mut hours);
            }
        }
    }
    hours
}

/// The stays running in `state` up to `now`, as seconds of their hours: what statistics add
/// to the stored hours (which hold only closed stays).
pub fn open_stays(state: &StationState, now: DateTime<Utc>) -> Vec<HourDelta> {
    let mut hours = Vec::new();
    for port in &state.ports {
        for part in stay_parts(port, state, now) {
            stay_hours(&state.station_id, port.reading.port, part, &mut hours);
        }
    }
    hours
}

/// Sessions started count in the hour they started, energy in the hour they ended.
fn session_hours(sessions: &[SessionRow], events: &[StatusEvent]) -> Vec<HourDelta> {
    let started = events
        .iter()
        .filter(|e| e.new == PortStatus::Occupied)
        .map(|e| {
            let totals = HourTotals {
                sessions_started: 1,
                ..HourTotals::default()
            };
            (&e.station_id, e.port, e.at, totals)
        });
    let ended = sessions.iter().filter_map(|s| {
        let totals = HourTotals {
            energy_kwh: s.energy_kwh?,
            ..HourTotals::default()
        };
        Some((&s.station_id, s.port, s.ended_at?, totals))
    });
    started
        .chain(ended)
        .map(|(station_id, port, at, totals)| HourDelta {
            station_id: station_id.clone(),
            port,
            hour: super::hour_of(at),
            totals,
        })
        .collect()
}

/// Sessions started and ended by the events. A session cut by an outage ends when csm last saw
/// the port occupied (the time after counts as offline); one csm first saw already running
/// starts when csm first saw it.
fn sessions(
    previous: Option<&StationState>,
    events: &[StatusEvent],
    energy_seen: impl Fn(u32, &PortState) -> Option<f64>,
) -> Vec<SessionRow> {
    let mut rows = Vec::new();
    for event in events {
        let ended = previous
            .and_then(|p| p.ports.iter().find(|p| p.reading.port == event.port))
            .filter(|_| event.old == Some(PortStatus::Occupied));
        if let Some(old) = ended {
            let lost = previous.and_then(outage_start);
            let end = lost.map_or(event.at, |lost_at| lost_at.max(old.since));
            rows.push(SessionRow {
                station_id: event.station_id.clone(),
                port: event.port,
                started_at: old.since,
                ended_at: Some(end),
                energy_kwh: energy_seen(event.port, old),
            });
        }
        if event.new == PortStatus::Occupied {
            rows.push(SessionRow {
                station_id: event.station_id.clone(),
                port: event.port,
                started_at: event.at,
                ended_at: None,
                energy_kwh: None,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    fn reading(
        port: u32,
        status: PortStatus,
        volts: Option<f64>,
        amps: Option<f64>,
    ) -> PortReading {
        PortReading {
            port,
            status,
            raw_code: None,
            voltage: volts,
            current: amps,
            power: None,
            energy_kwh: None,
            session_ends_at: None,
        }
    }

    fn state(at: DateTime<Utc>, ports: Vec<(PortReading, DateTime<Utc>)>) -> StationState {
        StationState {
            station_id: StationId::parse("H1").unwrap(),
            observed_at: Some(at),
            checked_at: at,
            last_error: None,
            failures: 0,
            ports: ports
                .into_iter()
                .map(|(reading, since)| PortState { reading, since })
                .collect(),
            counted_from: None,
        }
    }

    #[test]
    fn readings_are_kept_on_a_change_beyond_the_deadband_or_the_heartbeat() {
        let recorder = Recorder::new(&HistorySettings::default());
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        let at = |secs: i64| t0 + TimeDelta::seconds(secs);
        let kept = |secs: i64, volts: Option<f64>, amps: Option<f64>, status: PortStatus| {
            let mut s = state(at(secs), vec![(reading(1, status, volts, amps), t0)]);
            recorder.record(None, &mut s, &[]).readings.len()
        };
        assert_eq!(
            kept(0, Some(220.0), Some(1.0), PortStatus::Occupied),
            1,
            "first sight"
        );
        assert_eq!(
            kept(30, Some(222.0), Some(1.2), PortStatus::Occupied),
            0,
            "inside the deadbands"
        );
        assert_eq!(
            kept(60, Some(226.0), Some(1.2), PortStatus::Occupied),
            1,
            "6 V > 5 V"
        );
        assert_eq!(
            kept(90, Some(226.0), Some(1.8), PortStatus::Occupied),
            1,
            "0.6 A > 0.5 A"
        );
        assert_eq!(
            kept(120, Some(226.0), None, PortStatus::Occupied),
            1,
            "a measurement gone"
        );
        assert_eq!(
            kept(150, Some(226.0), None, PortStatus::Free),
            1,
            "status changed"
        );
        assert_eq!(kept(180, Some(226.0), None, PortStatus::Free), 0);
        assert_eq!(kept(899, Some(226.0), None, PortStatus::Free), 0);
        assert_eq!(
            kept(900, Some(226.0), None, PortStatus::Free),
            1,
            "the first of a new 15-minute period"
        );
        assert_eq!(kept(1_790, Some(226.0), None, PortStatus::Free), 0);
    }

    #[test]
    fn a_new_process_starts_from_the_previous_observation() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 10).unwrap();
        let t1 = t0 + TimeDelta::seconds(30);
        let previous = state(
            t0,
            vec![(reading(1, PortStatus::Occupied, Some(220.0), Some(1.0)), t0)],
        );
        let fresh = Recorder::new(&HistorySettings::default());
        let mut same = state(
            t1,
            vec![(reading(1, PortStatus::Occupied, Some(221.0), Some(1.1)), t0)],
        );
        let recorded = fresh.record(Some(&previous), &mut same, &[]);
        assert!(
            recorded.readings.is_empty(),
            "inside the deadbands of the previous observation"
        );
        let other = Recorder::new(&HistorySettings::default());
        let mut moved = state(
            t1,
            vec![(reading(1, PortStatus::Occupied, Some(221.0), Some(2.0)), t0)],
        );
        assert_eq!(
            other
                .record(Some(&previous), &mut moved, &[])
                .readings
                .len(),
            1
        );
    }

    #[test]
    fn a_change_closes_the_stay_and_sessions_start_and_end() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 8, 30, 0).unwrap();
        let t1 = t0 + TimeDelta::minutes(45);
        let id = StationId::parse("H1").unwrap();
        let mut occupied = reading(1, PortStatus::Occupied, None, None);
        occupied.energy_kwh = Some(1.5);
        let before = state(t0, vec![(occupied, t0)]);
        let mut after = state(t1, vec![(reading(1, PortStatus::Free, None, None), t1)]);
        let event = StatusEvent {
            station_id: id.clone(),
            port: 1,
            old: Some(PortStatus::Occupied),
            new: PortStatus::Free,
            at: t1,
        };
        let recorder = Recorder::new(&HistorySettings::default());
        let recorded = recorder.record(Some(&before), &mut after, &[event]);
        let occupied_secs: u64 = recorded
            .hours
            .iter()
            .map(|h| h.totals.secs_in(PortStatus::Occupied))
            .sum();
        assert_eq!(occupied_secs, 45 * 60);
        assert_eq!(
            recorded
                .hours
                .iter()
                .filter(|h| h.totals.secs_in(PortStatus::Occupied) > 0)
                .count(),
            2,
            "8:30–9:00 and 9:00–9:15"
        );
        assert_eq!(recorded.sessions.len(), 1);
        assert_eq!(recorded.sessions[0].started_at, t0);
        assert_eq!(recorded.sessions[0].ended_at, Some(t1));
        assert_eq!(recorded.sessions[0].energy_kwh, Some(1.5));
        let energy: f64 = recorded.hours.iter().map(|h| h.totals.energy_kwh).sum();
        assert_eq!(energy, 1.5);
    }

    #[test]
    fn an_outage_counts_as_offline_and_stays_restart_after_it() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        let lost = t0 + TimeDelta::minutes(10);
        let back = t0 + TimeDelta::minutes(40);
        let mut failing = state(lost, vec![(reading(1, PortStatus::Free, None, None), t0)]);
        failing.last_error = Some("timed out".into());
        let mut recovered = state(back, vec![(reading(1, PortStatus::Free, None, None), t0)]);
        let recorder = Recorder::new(&HistorySettings::default());
        let recorded = recorder.record(Some(&failing), &mut recovered, &[]);
        let sum = |status| -> u64 {
            recorded
                .hours
                .iter()
                .map(|h| h.totals.secs_in(status))
                .sum()
        };
        assert_eq!(sum(PortStatus::Free), 10 * 60);
        assert_eq!(sum(PortStatus::Offline), 30 * 60);
        assert_eq!(recovered.counted_from, Some(back));
        // The next change counts the stay from the recovery, not from its old `since`.
        let later = back + TimeDelta::minutes(5);
        let mut changed = state(
            later,
            vec![(reading(1, PortStatus::Occupied, None, None), later)],
        );
        let event = StatusEvent {
            station_id: recovered.station_id.clone(),
            port: 1,
            old: Some(PortStatus::Free),
            new: PortStatus::Occupied,
            at: later,
        };
        let recorded = recorder.record(Some(&recovered), &mut changed, &[event]);
        let free: u64 = recorded
            .hours
            .iter()
            .map(|h| h.totals.secs_in(PortStatus::Free))
            .sum();
        assert_eq!(free, 5 * 60);
        assert_eq!(changed.counted_from, Some(back), "carried over");
    }
}
