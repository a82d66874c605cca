//! A simulated past: what the built-in simulator's stations did before now, derived exactly
//! as the refresh engine derives history from live refreshes (the same diff and
//! [`Recorder`]), a snapshot every `step`. The demo starts with one so that its charts and heat
//! map show something at once; it is simulated data of simulated stations, never mixed into a
//! real station's history.

use chrono::{DateTime, TimeDelta, Utc};

use super::record::Recorder;
use crate::charger::Simulator;
use crate::model::{Station, StationState};
use crate::settings::HistorySettings;
use crate::store::WriteBatch;

/// How much past the demo begins with: a week at a snapshot a minute on a real-time
/// simulator; with a faster simulated clock a snapshot every `60 s / speed` (at least a second),
/// and at most [`DEMO_SNAPSHOTS`] of them. Returns the past's length and its step.
pub fn demo_span(speed: f64) -> (TimeDelta, TimeDelta) {
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    let step_ms = (60_000.0 / speed).max(1_000.0) as i64;
    let step = TimeDelta::milliseconds(step_ms);
    let length = (step * DEMO_SNAPSHOTS).min(DEMO_PAST);
    (length, step)
}

/// The longest simulated past of the demo.
pub const DEMO_PAST: TimeDelta = TimeDelta::days(7);
/// The most snapshots of a demo station's past.
pub const DEMO_SNAPSHOTS: i32 = 10_080;

/// The rows of one station's simulated past over `[from, to)`, a snapshot every `step`, in
/// batches of about `batch_rows` rows; and the state it ends in.
pub fn simulate(
    simulator: &Simulator,
    station: &Station,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    step: TimeDelta,
    history: &HistorySettings,
    batch_rows: usize,
) -> (Vec<WriteBatch>, Option<StationState>) {
    let recorder = Recorder::new(history);
    let step = step.max(TimeDelta::seconds(1));
    let mut batches = Vec::new();
    let mut batch = WriteBatch::default();
    let mut state: Option<StationState> = None;
    let mut at = from;
    while at < to {
        let snapshot = simulator.snapshot_at(station, at);
        if let Some((next, rows)) =
            crate::refresh::derive(station, state.take(), snapshot, &recorder)
        {
            append(&mut batch, rows);
            state = Some(next);
        }
        if batch.len() >= batch_rows {
            batches.push(std::mem::take(&mut batch));
        }
        at += step;
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    (batches, state)
}

fn append(batch: &mut WriteBatch, rows: WriteBatch) {
    batch.ports.extend(rows.ports);
    batch.events.extend(rows.events);
    batch.health.extend(rows.health);
    batch.readings.extend(rows.readings);
    batch.sessions.extend(rows.sessions);
    batch.hours.extend(rows.hours);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortStatus, StationId};

    #[test]
    fn a_simulated_day_has_sessions_hours_and_few_readings() {
        let now = Utc::now();
        let from = now - TimeDelta::days(1);
        let simulator = Simulator::new(7, 1.0).starting_at(from);
        let station = Station {
            id: StationId::parse("S0001").unwrap(),
            name: "S0001".into(),
            address: None,
            lat: None,
            lng: None,
            vendor: "simulator".into(),
            enabled: true,
            port_count: 10,
        };
        let step = TimeDelta::seconds(30);
        let (batches, last) = simulate(
            &simulator,
            &station,
            (from, now),
            step,
            &HistorySettings::default(),
            10_000,
        );
        let sum = |f: fn(&WriteBatch) -> usize| batches.iter().map(f).sum::<usize>();
        let observed = 10 * (TimeDelta::days(1).num_seconds() / step.num_seconds()) as usize;
        let readings = sum(|b| b.readings.len());
        assert!(
            sum(|b| b.sessions.len()) > 10,
            "sessions: {}",
            sum(|b| b.sessions.len())
        );
        assert!(sum(|b| b.hours.len()) > 24);
        assert!(
            readings * 10 < observed,
            "{readings} readings kept of {observed} seen"
        );
        let last = last.unwrap();
        assert_eq!(last.ports.len(), 10);
        // The hours account for the closed stays: never more than the ports' time.
        let counted: u64 = batches
            .iter()
            .flat_map(|b| &b.hours)
            .map(|h| h.totals.total_secs())
            .sum();
        assert!(counted <= 10 * 86_400, "{counted}");
        assert!(
            batches
                .iter()
                .flat_map(|b| &b.events)
                .any(|e| e.new == PortStatus::Occupied)
        );
    }
}
