//! Comparing a new snapshot with the previous state of its station: the new state, the status
//! events, and the port rows whose durable part changed (the only ones written to the store).

use chrono::{DateTime, Utc};

use crate::model::{PortState, Snapshot, StationState, StatusEvent};
use crate::store::PortStateRow;

/// What a snapshot changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delta {
    /// Ports whose status changed (or that were seen for the first time).
    pub events: Vec<StatusEvent>,
    /// Ports whose durable state changed: status, vendor code or session end.
    pub ports: Vec<PortStateRow>,
}

/// Applies `snapshot` to `previous`: the ports of the new state (with `since` carried over for
/// unchanged statuses) and what changed.
pub fn diff(previous: Option<&StationState>, snapshot: &Snapshot) -> (Vec<PortState>, Delta) {
    let observed_at = snapshot.observed_at;
    let old_ports: &[PortState] = previous.map(|p| p.ports.as_slice()).unwrap_or_default();
    let mut ports = Vec::with_capacity(snapshot.ports.len());
    let mut delta = Delta::default();
    for reading in &snapshot.ports {
        // Both lists are sorted by port number and usually identical in shape.
        let old = old_ports
            .binary_search_by_key(&reading.port, |p| p.reading.port)
            .ok()
            .map(|index| &old_ports[index]);
        let since = match old {
            Some(old) if old.reading.status == reading.status => old.since,
            _ => observed_at,
        };
        let state = PortState {
            reading: reading.clone(),
            since,
        };
        let status_changed = old.is_none_or(|old| old.reading.status != reading.status);
        if status_changed {
            delta.events.push(event(snapshot, old, &state, observed_at));
        }
        if old.is_none_or(|old| old.durable_change(&state)) {
            delta.ports.push(PortStateRow {
                station_id: snapshot.station_id.clone(),
                state: state.clone(),
                observed_at,
            });
        }
        ports.push(state);
    }
    (ports, delta)
}

fn event(
    snapshot: &Snapshot,
    old: Option<&PortState>,
    new: &PortState,
    at: DateTime<Utc>,
) -> StatusEvent {
    StatusEvent {
        station_id: snapshot.station_id.clone(),
        port: new.reading.port,
        old: old.map(|o| o.reading.status),
        new: new.reading.status,
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortReading, PortStatus, StationId};
    use chrono::Duration;

    fn reading(port: u32, status: PortStatus, volts: f64) -> PortReading {
        PortReading {
            port,
            status,
            raw_code: Some(status.as_str().into()),
            voltage: Some(volts),
            current: None,
            power: None,
            energy_kwh: None,
            session_ends_at: None,
        }
    }

    fn snapshot(at: DateTime<Utc>, ports: Vec<PortReading>) -> Snapshot {
        Snapshot {
            station_id: StationId::parse("S1").unwrap(),
            observed_at: at,
            ports,
        }
    }

    fn state_of(snapshot: &Snapshot, ports: Vec<PortState>) -> StationState {
        StationState {
            station_id: snapshot.station_id.clone(),
            observed_at: Some(snapshot.observed_at),
            checked_at: snapshot.observed_at,
            last_error: None,
            failures: 0,
            ports,
            counted_from: None,
        }
    }

    #[test]
    fn first_sight_records_every_port() {
        let t0 = Utc::now();
        let first = snapshot(
            t0,
            vec![
                reading(1, PortStatus::Free, 220.0),
                reading(2, PortStatus::Occupied, 219.0),
            ],
        );
        let (ports, delta) = diff(None, &first);
        assert_eq!(ports.len(), 2);
        assert_eq!(delta.events.len(), 2);
        assert_eq!(delta.events[0].old, None);
        assert_eq!(delta.ports.len(), 2);
        assert!(ports.iter().all(|p| p.since == t0));
    }

    #[test]
    fn only_status_changes_make_events_and_measurements_alone_make_no_writes() {
        let t0 = Utc::now();
        let t1 = t0 + Duration::seconds(30);
        let first = snapshot(
            t0,
            vec![
                reading(1, PortStatus::Free, 220.0),
                reading(2, PortStatus::Occupied, 219.0),
            ],
        );
        let (ports, _) = diff(None, &first);
        let previous = state_of(&first, ports);
        let second = snapshot(
            t1,
            vec![
                reading(1, PortStatus::Free, 221.3),
                reading(2, PortStatus::Free, 220.0),
            ],
        );
        let (ports, delta) = diff(Some(&previous), &second);
        assert_eq!(delta.events.len(), 1);
        let event = &delta.events[0];
        assert_eq!(
            (event.port, event.old, event.new, event.at),
            (2, Some(PortStatus::Occupied), PortStatus::Free, t1)
        );
        assert_eq!(delta.ports.len(), 1, "port 1 only changed its voltage");
        assert_eq!(ports[0].since, t0, "port 1 has been free since t0");
        assert_eq!(
            ports[0].reading.voltage,
            Some(221.3),
            "the live reading is kept"
        );
        assert_eq!(ports[1].since, t1);
    }
}
