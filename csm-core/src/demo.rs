//! The demo: what the embedded default starts with when its database is empty. Simulated
//! e-bike piles on the built-in simulator, each with a simulated past — what the simulator's
//! stations did before now, derived exactly as the refresh engine derives history from live
//! refreshes (the same diff and [`Recorder`]), a snapshot every step — so that charts and the
//! heat map show something at once; and simulated OCPP chargers' stations. Simulated data of
//! simulated stations, never mixed into a real station's history.

use chrono::{DateTime, TimeDelta, Utc};

use crate::charger::simulator::past_span;
use crate::charger::{SIMULATOR_VENDOR, Simulator};
use crate::history::record::Recorder;
use crate::model::{Station, StationId, StationState};
use crate::settings::{HistorySettings, Settings};
use crate::store::{Store, StoreError, WriteBatch};

/// The demo's piles: `count` stations of the simulator's fleet, of the sizes a campus has.
pub fn stations(seed: u64, count: usize) -> Vec<Station> {
    Simulator::with_fleet(seed, 1.0, count, 12)
        .fleet()
        .into_iter()
        .enumerate()
        .map(|(index, mut station)| {
            station.port_count = [10, 12, 16, 20][index % 4];
            station.vendor = SIMULATOR_VENDOR.into();
            station
        })
        .collect()
}

/// The demo's OCPP chargers (two connectors each), with names a car park would give them.
pub fn charge_points(ids: &[StationId]) -> Vec<Station> {
    ids.iter()
        .enumerate()
        .map(|(n, id)| Station {
            address: Some("地下停车场 B1".into()),
            port_count: 2,
            ..Station::charge_point(id.clone(), format!("地下车库 {} 号直流快充", n + 1))
        })
        .collect()
}

/// Writes the simulated past of `stations` from the simulator's start until now (a snapshot
/// every step of [`past_span`]); returns the rows written.
pub async fn write_past(
    store: &dyn Store,
    simulator: &Simulator,
    stations: &[Station],
    settings: &Settings,
) -> Result<usize, StoreError> {
    let past = (simulator.origin(), crate::model::now());
    let (_, step) = past_span(settings.simulator.speed);
    let mut rows = 0;
    for station in stations {
        let (batches, _) = simulate(
            simulator,
            station,
            past,
            step,
            &settings.history,
            crate::refresh::WriterConfig::default().max_rows,
        );
        for batch in &batches {
            store.apply(batch).await?;
            rows += batch.len();
        }
    }
    tracing::info!(from = %past.0, rows, "wrote a simulated past for the demo stations");
    Ok(rows)
}

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
    use crate::model::PortStatus;

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
