//! One refresh job, in named steps: fetch the snapshot ([`Engine::fetch`]), settle it against
//! the diff base into a new state and the rows to write ([`settle`]), then record both: diff
//! base, cache, batch writer and subscribers ([`Engine::record`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Base, Engine, RefreshError, RefreshOutcome, RefreshStats, StationUpdate, diff, retry};
use crate::charger::ChargerError;
use crate::history::record::Recorder;
use crate::model::{Snapshot, Station, StationHealth, StationState};
use crate::store::WriteBatch;

/// What a job made of its fetch: the station's new state, the rows to write, and what to tell.
pub(super) struct Settled {
    /// The new state; `None` when a failure left nothing to go on (see [`settle`]).
    pub(super) state: Option<StationState>,
    /// Rows for the store.
    pub(super) batch: WriteBatch,
    /// Whether the station's health changed (failing, recovered, a new error).
    pub(super) health_changed: bool,
    /// Counts of a success, or the failure.
    pub(super) result: Result<RefreshStats, RefreshError>,
}

impl Engine {
    pub(super) async fn run_job(&self, station: &Station, base: Option<Base>) -> RefreshOutcome {
        let started = Instant::now();
        let (fetched, attempts) = self.fetch(station).await;
        let base = match base {
            Some(base) => base,
            None => self.base(&station.id).await,
        };
        let settled = settle(
            station,
            &base,
            fetched,
            &self.inner.recorder,
            crate::model::now(),
        );
        let result = self.record(station, settled).await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!("csm_refresh_jobs_total", "outcome" => outcome).increment(1);
        let elapsed = started.elapsed();
        metrics::histogram!("csm_refresh_duration_seconds").record(elapsed.as_secs_f64());
        RefreshOutcome {
            station_id: station.id.clone(),
            result,
            attempts,
            elapsed,
        }
    }

    /// One snapshot of the station from its source, retrying transient failures; and the
    /// number of attempts. Its time is cut to the precision csm stores, so the session a
    /// port's `since` starts is found again when it ends.
    async fn fetch(&self, station: &Station) -> (Result<Snapshot, ChargerError>, u32) {
        let inner = &self.inner;
        match inner.chargers.get(&station.vendor) {
            Ok(api) => {
                let attempts = retry::Attempts {
                    policy: &inner.config.retry,
                    slots: Some(&inner.permits),
                    breakers: Some(&inner.breakers),
                };
                let fetched = attempts.fetch(&**api, station).await;
                let result = fetched.result.map(|mut snapshot| {
                    snapshot.observed_at = crate::model::stored_precision(snapshot.observed_at);
                    snapshot
                });
                (result, fetched.attempts)
            }
            Err(error) => (Err(error), 1),
        }
    }

    /// Keeps the new state (diff base and cache), queues its rows and tells subscribers.
    pub(super) async fn record(
        &self,
        station: &Station,
        settled: Settled,
    ) -> Result<RefreshStats, RefreshError> {
        let inner = &self.inner;
        let Settled {
            state,
            mut batch,
            health_changed,
            result,
        } = settled;
        let state = state.map(Arc::new);
        if let Some(state) = &state {
            // The stored health says when csm last checked the station (what a reader of the
            // database sees once the live state lapsed), within `health_every`.
            if batch.health.is_empty()
                && inner.base.health_due(
                    &state.station_id,
                    state.checked_at,
                    inner.config.health_every,
                )
            {
                batch.health.push(health_of(state));
            }
            inner.base.keep(state, !batch.health.is_empty());
            if let Err(error) = inner.cache.put_many(std::slice::from_ref(state)).await {
                tracing::debug!(%error, "cache write failed; this process keeps the state");
            }
        }
        let events = batch.events.clone();
        if !events.is_empty() {
            inner
                .events_produced
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            metrics::counter!("csm_status_events_total").increment(events.len() as u64);
        }
        inner.writer.write(batch).await;
        if let Some(state) = state
            && inner.updates.receiver_count() > 0
            && (!events.is_empty() || health_changed || inner.watches(&state.station_id))
        {
            inner.updates_sent.fetch_add(1, Ordering::AcqRel);
            let _ = inner.updates.send(Arc::new(StationUpdate {
                state,
                events,
                health_changed,
            }));
        }
        match &result {
            Err(RefreshError::Source(error)) if health_changed && error.is_waiting() => {
                tracing::info!(station = %station.id, vendor = %station.vendor, %error, "waiting for the station");
            }
            Err(error) if health_changed => {
                tracing::warn!(station = %station.id, vendor = %station.vendor, %error, "refresh failed");
            }
            _ => {}
        }
        result
    }
}

/// The new state of a station from what its source delivered, compared with the base.
///
/// - A snapshot: ports diffed against the base; only changed ports make rows and events. With
///   an [`Base::Unknown`] base the ports are written (so the store catches up with the vendor)
///   but no status change is invented.
/// - A failure: the last ports are kept, marked with the error, so they show as stale rather
///   than vanishing. With nothing to go on (an unknown base) nothing is kept: an empty station
///   would read as new ports at the next success, and a health row would wipe the stored one.
/// - A failure that says the station itself is offline ([`ChargerError::station_offline`]: a
///   charger lost its connection to csm): that is what csm observes now, so the known ports
///   turn offline like any snapshot would turn them (events, the end of running sessions,
///   history), and the state keeps the error: stale, with the reason.
///
/// A success also adds to history ([`Recorder`]): readings, sessions and hourly totals.
pub(super) fn settle(
    station: &Station,
    base: &Base,
    fetched: Result<Snapshot, ChargerError>,
    recorder: &Recorder,
    now: DateTime<Utc>,
) -> Settled {
    match fetched {
        Ok(mut snapshot) => {
            let dropped = snapshot.drop_impossible();
            let note = (!dropped.is_empty()).then(|| {
                let notes: Vec<String> = dropped.iter().map(ToString::to_string).collect();
                format!(
                    "{}: impossible readings: {}",
                    station.vendor,
                    notes.join("; ")
                )
            });
            settle_snapshot(station, base, &snapshot, recorder, now, note)
        }
        Err(error) if error.station_offline() && base.state().is_some() => {
            settle_offline(station, base, error, recorder, now)
        }
        Err(error) => settle_failure(station, base, error, now),
    }
}

/// What a job makes of a snapshot of a station whose previous state is `previous`: the new
/// state and the rows to write. The engine's own derivation, for a simulated past
/// ([`crate::history::past`]).
pub(crate) fn derive(
    station: &Station,
    previous: Option<StationState>,
    snapshot: Snapshot,
    recorder: &Recorder,
) -> Option<(StationState, WriteBatch)> {
    let base = previous.map_or(Base::New, |state| Base::Known(Arc::new(state)));
    let now = snapshot.observed_at;
    let settled = settle_snapshot(station, &base, &snapshot, recorder, now, None);
    Some((settled.state?, settled.batch))
}

/// A snapshot diffed against the base. `note`: what was wrong with it, though it was read
/// (values dropped as impossible), kept as the station's last error.
fn settle_snapshot(
    station: &Station,
    base: &Base,
    snapshot: &Snapshot,
    recorder: &Recorder,
    now: DateTime<Utc>,
    note: Option<String>,
) -> Settled {
    let previous = base.state();
    let (ports, mut delta) = diff::diff(previous, snapshot);
    if matches!(base, Base::Unknown) {
        tracing::debug!(station = %station.id, "no previous state to compare with (cache and database unreachable): ports kept, no events");
        delta.events.clear();
    }
    let recovered = previous.is_none_or(|p| p.last_error != note);
    let mut state = StationState {
        station_id: station.id.clone(),
        observed_at: Some(snapshot.observed_at),
        checked_at: now,
        last_error: note,
        failures: 0,
        ports,
        counted_from: None,
    };
    let history = recorder.record(previous, &mut state, &delta.events);
    let stats = RefreshStats {
        ports: state.ports.len(),
        status_changes: delta.events.len(),
        rows_written: delta.ports.len(),
    };
    let batch = WriteBatch {
        ports: delta.ports,
        events: delta.events,
        health: if recovered {
            vec![health_of(&state)]
        } else {
            Vec::new()
        },
        readings: history.readings,
        sessions: history.sessions,
        hours: history.hours,
    };
    Settled {
        state: Some(state),
        batch,
        health_changed: recovered,
        result: Ok(stats),
    }
}

/// A station offline: its known ports observed offline now (measurements unknown), marked with
/// the error.
fn settle_offline(
    station: &Station,
    base: &Base,
    error: ChargerError,
    recorder: &Recorder,
    now: DateTime<Utc>,
) -> Settled {
    let previous = base.state();
    let ports = previous.map_or_else(Vec::new, |p| {
        p.ports
            .iter()
            .map(|port| crate::model::PortReading::offline(port.reading.port))
            .collect()
    });
    let snapshot = Snapshot {
        station_id: station.id.clone(),
        observed_at: crate::model::stored_precision(now),
        ports,
    };
    let mut settled = settle_snapshot(station, base, &snapshot, recorder, now, None);
    let message = error.to_string();
    if let Some(state) = &mut settled.state {
        state.last_error = Some(message.clone());
        state.failures = previous.map_or(0, |p| p.failures) + 1;
        // Written every time: the hourly totals now count up to here (`counted_from`).
        settled.batch.health = vec![health_of(state)];
    }
    settled.health_changed =
        previous.is_none_or(|p| p.last_error.as_deref() != Some(message.as_str()));
    settled.result = Err(RefreshError::Source(error));
    settled
}

/// A failure: the base's ports kept, marked with the error.
fn settle_failure(
    station: &Station,
    base: &Base,
    error: ChargerError,
    now: DateTime<Utc>,
) -> Settled {
    let message = error.to_string();
    let (ports, observed_at, failures, changed, counted_from) = match base {
        Base::Unknown => {
            return Settled {
                state: None,
                batch: WriteBatch::default(),
                health_changed: true,
                result: Err(RefreshError::Source(error)),
            };
        }
        Base::New => (Vec::new(), None, 1, true, None),
        Base::Known(p) => (
            p.ports.clone(),
            p.observed_at,
            p.failures + 1,
            p.last_error.as_deref() != Some(message.as_str()),
            p.counted_from,
        ),
    };
    let state = StationState {
        station_id: station.id.clone(),
        observed_at,
        checked_at: now,
        last_error: Some(message),
        failures,
        ports,
        counted_from,
    };
    let mut batch = WriteBatch::default();
    if changed {
        batch.health.push(health_of(&state));
    }
    Settled {
        state: Some(state),
        batch,
        health_changed: changed,
        result: Err(RefreshError::Source(error)),
    }
}

fn health_of(state: &StationState) -> StationHealth {
    StationHealth {
        station_id: state.station_id.clone(),
        last_ok_at: state.observed_at,
        last_error: state.last_error.clone(),
        checked_at: state.checked_at,
        failures: state.failures,
        counted_from: state.counted_from,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::model::{PortReading, PortStatus, StationId};
    use crate::settings::HistorySettings;

    fn station() -> Station {
        Station {
            id: StationId::parse("CP1").unwrap(),
            name: "CP1".into(),
            address: None,
            lat: None,
            lng: None,
            vendor: "ocpp".into(),
            enabled: true,
            port_count: 2,
        }
    }

    fn snapshot(at: DateTime<Utc>, statuses: [PortStatus; 2]) -> Snapshot {
        Snapshot {
            station_id: station().id,
            observed_at: at,
            ports: (1..)
                .zip(statuses)
                .map(|(port, status)| PortReading {
                    status,
                    power: Some(3_000.0),
                    raw_code: Some("Charging".into()),
                    ..PortReading::offline(port)
                })
                .collect(),
        }
    }

    fn gone() -> ChargerError {
        ChargerError::Disconnected {
            vendor: "ocpp".into(),
            station: "CP1".into(),
        }
    }

    #[test]
    fn a_charger_gone_offline_turns_its_ports_offline_and_history_adds_up() {
        use PortStatus::{Free, Occupied, Offline};
        let recorder = Recorder::new(&HistorySettings::default());
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        let at = |minutes: i64| t0 + TimeDelta::minutes(minutes);
        let station = station();
        let mut batches = Vec::new();
        let run = |base: Base, fetched: Result<Snapshot, ChargerError>, now| {
            let settled = settle(&station, &base, fetched, &recorder, now);
            let outcome = (
                Arc::new(settled.state.unwrap()),
                settled.health_changed,
                settled.result.is_ok(),
            );
            (outcome, settled.batch)
        };
        let ((live, _, ok), first) = run(Base::New, Ok(snapshot(at(0), [Occupied, Free])), at(0));
        assert!(ok);
        batches.push(first);
        let ((offline, changed, ok), batch) =
            run(Base::Known(Arc::clone(&live)), Err(gone()), at(10));
        assert!(!ok && changed);
        assert_eq!(
            offline
                .ports
                .iter()
                .map(|p| (p.reading.status, p.since, p.reading.power))
                .collect::<Vec<_>>(),
            [(Offline, at(10), None), (Offline, at(10), None)],
            "offline now, nothing measured"
        );
        assert!(
            offline
                .last_error
                .as_deref()
                .unwrap()
                .contains("not connected")
        );
        assert!(offline.is_stale(at(10), TimeDelta::hours(1)));
        assert_eq!(
            batch
                .events
                .iter()
                .map(|e| (e.old, e.new))
                .collect::<Vec<_>>(),
            [(Some(Occupied), Offline), (Some(Free), Offline)]
        );
        assert_eq!(batch.sessions.len(), 1);
        assert_eq!(
            (batch.sessions[0].started_at, batch.sessions[0].ended_at),
            (at(0), Some(at(10)))
        );
        batches.push(batch);

        // Still gone: nothing changes, nothing to tell, but the time is counted.
        let ((still, changed, _), batch) =
            run(Base::Known(Arc::clone(&offline)), Err(gone()), at(20));
        assert!(!changed && batch.events.is_empty());
        assert_eq!(still.failures, 2);
        batches.push(batch);

        // Back, with other statuses.
        let ((back, changed, ok), batch) = run(
            Base::Known(Arc::clone(&still)),
            Ok(snapshot(at(30), [Free, Occupied])),
            at(30),
        );
        assert!(ok && changed && back.last_error.is_none());
        assert_eq!(batch.events.len(), 2);
        batches.push(batch);

        // Every minute of both ports is counted once, in the status it had.
        let mut minutes = std::collections::BTreeMap::new();
        for hour in batches.iter().flat_map(|b| &b.hours) {
            for status in [Free, Occupied, Offline] {
                *minutes.entry((hour.port, status)).or_insert(0) +=
                    hour.totals.secs_in(status) / 60;
            }
        }
        assert_eq!(minutes[&(1, Occupied)], 10);
        assert_eq!(minutes[&(1, Offline)], 20);
        assert_eq!(minutes[&(2, Free)], 10);
        assert_eq!(minutes[&(2, Offline)], 20);
        assert_eq!(minutes[&(1, Free)] + minutes[&(2, Occupied)], 0);
    }

    #[test]
    fn a_charger_never_seen_offline_has_no_ports_to_turn() {
        let recorder = Recorder::new(&HistorySettings::default());
        let now = crate::model::now();
        let settled = settle(&station(), &Base::New, Err(gone()), &recorder, now);
        let state = settled.state.unwrap();
        assert!(state.ports.is_empty() && state.last_error.is_some());
        assert!(settled.batch.events.is_empty());
    }
}
