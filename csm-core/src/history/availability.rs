//! Availability: the share of port time a station could serve riders. Port time in fault or
//! offline counts against it; time the operator took a port out of service (`unavailable`) and
//! time csm knows nothing of (`unknown`) count neither way. Daily figures come from the hourly
//! totals; the outages (from, to, which ports, why) from the status events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::history::HourTotals;
use crate::model::{PortStatus, StatusEvent};
use crate::time;

/// Whether a status counts against availability.
pub fn is_down(status: PortStatus) -> bool {
    matches!(status, PortStatus::Fault | PortStatus::Offline)
}

/// Up time over counted time (counted: all but `unavailable` and `unknown`); `None` with nothing
/// counted. Four decimals.
pub fn availability(totals: &HourTotals) -> Option<f64> {
    let counted = totals.total_secs()
        - totals.secs_in(PortStatus::Unavailable)
        - totals.secs_in(PortStatus::Unknown);
    let down = totals.secs_in(PortStatus::Fault) + totals.secs_in(PortStatus::Offline);
    (counted > 0).then(|| {
        let share = counted.saturating_sub(down) as f64 / counted as f64;
        (share * 10_000.0).round() / 10_000.0
    })
}

/// A stretch of time in which ports of a station were down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outage {
    /// When the first port went down (the range's start when it was down before).
    #[serde(serialize_with = "time::rfc3339")]
    pub from: DateTime<Utc>,
    /// When the last port came back; `null` while it lasts.
    #[serde(serialize_with = "time::optional")]
    pub to: Option<DateTime<Utc>>,
    /// The ports that were down in it.
    pub ports: Vec<u32>,
    /// Why: `fault`, `offline`, or both.
    pub statuses: Vec<PortStatus>,
    /// What the station says now, for an outage that lasts (the vendor's or csm's reason).
    pub reason: Option<String>,
}

/// One port's stretch down.
struct Down {
    port: u32,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
    status: PortStatus,
}

/// The outages of a station from `from` on: from its status events in the range (any order)
/// and each port's status now (`current`: port, status). A port's status before its first
/// event in the range is that event's `old`; a port with no event keeps its status now over the
/// whole range. Overlapping stretches of several ports make one outage, oldest first.
pub fn outages(
    from: DateTime<Utc>,
    events: &[StatusEvent],
    current: &[(u32, PortStatus)],
    reason: Option<&str>,
) -> Vec<Outage> {
    let mut by_port: BTreeMap<u32, Vec<&StatusEvent>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.at >= from) {
        by_port.entry(event.port).or_default().push(event);
    }
    let mut downs: Vec<Down> = Vec::new();
    for (port, events) in &mut by_port {
        events.sort_by_key(|e| e.at);
        let mut open: Option<(DateTime<Utc>, PortStatus)> = events[0]
            .old
            .filter(|s| is_down(*s))
            .map(|status| (from, status));
        for event in events.iter() {
            if let Some((start, status)) = open.take() {
                downs.push(Down {
                    port: *port,
                    from: start,
                    to: Some(event.at),
                    status,
                });
            }
            if is_down(event.new) {
                open = Some((event.at, event.new));
            }
        }
        if let Some((start, status)) = open {
            downs.push(Down {
                port: *port,
                from: start,
                to: None,
                status,
            });
        }
    }
    for (port, status) in current {
        if !by_port.contains_key(port) && is_down(*status) {
            downs.push(Down {
                port: *port,
                from,
                to: None,
                status: *status,
            });
        }
    }
    downs.sort_by_key(|d| d.from);
    let mut merged: Vec<Outage> = Vec::new();
    for down in downs {
        let overlaps = merged.last().is_some_and(|last| match last.to {
            None => true,
            Some(end) => down.from <= end,
        });
        if overlaps && let Some(last) = merged.last_mut() {
            last.to = match (last.to, down.to) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            if !last.ports.contains(&down.port) {
                last.ports.push(down.port);
                last.ports.sort_unstable();
            }
            if !last.statuses.contains(&down.status) {
                last.statuses.push(down.status);
                last.statuses.sort();
            }
            continue;
        }
        merged.push(Outage {
            from: down.from,
            to: down.to,
            ports: vec![down.port],
            statuses: vec![down.status],
            reason: None,
        });
    }
    for outage in merged.iter_mut().filter(|o| o.to.is_none()) {
        outage.reason = reason.map(str::to_owned);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap()
            + chrono::TimeDelta::minutes(i64::from(minute))
    }

    fn event(port: u32, old: Option<PortStatus>, new: PortStatus, minute: u32) -> StatusEvent {
        StatusEvent {
            station_id: crate::model::StationId::parse("S1").unwrap(),
            port,
            old,
            new,
            at: at(minute),
        }
    }

    #[test]
    fn availability_counts_fault_and_offline_against_and_out_of_service_neither_way() {
        let mut totals = HourTotals::default();
        let index = |s| crate::model::history::status_index(s);
        totals.secs[index(PortStatus::Free)] = 2_400;
        totals.secs[index(PortStatus::Occupied)] = 600;
        totals.secs[index(PortStatus::Fault)] = 600;
        totals.secs[index(PortStatus::Offline)] = 400;
        totals.secs[index(PortStatus::Unavailable)] = 3_600;
        totals.secs[index(PortStatus::Unknown)] = 100;
        assert_eq!(availability(&totals), Some(0.75));
        assert_eq!(availability(&HourTotals::default()), None);
    }

    #[test]
    fn outages_join_the_ports_down_at_once_and_keep_the_one_that_lasts() {
        use PortStatus::{Fault, Free, Occupied, Offline};
        let events = [
            // Port 1: in fault from before the range until minute 10.
            event(1, Some(Fault), Free, 10),
            // Port 2: offline 5–20, overlapping port 1: one outage 0–20 of ports 1 and 2.
            event(2, Some(Free), Offline, 5),
            event(2, Some(Offline), Occupied, 20),
            // Port 1 again: fault from minute 40, still.
            event(1, Some(Free), Fault, 40),
        ];
        let found = outages(
            at(0),
            &events,
            &[(1, Fault), (2, Occupied), (3, Free)],
            Some("RCD tripped"),
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].from, found[0].to), (at(0), Some(at(20))));
        assert_eq!(found[0].ports, [1, 2]);
        assert_eq!(found[0].statuses, [Fault, Offline]);
        assert_eq!(found[0].reason, None);
        assert_eq!(
            (found[1].from, found[1].to, &found[1].ports),
            (at(40), None, &vec![1])
        );
        assert_eq!(found[1].reason.as_deref(), Some("RCD tripped"));
        // A port with no event, offline now: down over the whole range, so one outage of all.
        let found = outages(
            at(0),
            &events,
            &[(1, Fault), (2, Occupied), (3, Offline)],
            None,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].from, found[0].to, &found[0].ports),
            (at(0), None, &vec![1, 2, 3])
        );
    }
}
