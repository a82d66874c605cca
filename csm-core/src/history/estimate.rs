//! "Free in about N minutes": when an occupied port will likely be free.
//!
//! The vendor's `session_ends_at` when it sends one. Otherwise the station's past sessions,
//! conditioned on how long this one has lasted: of the past sessions that lasted at least as
//! long, the median length, minus what has passed ([`median_remaining`]). With fewer than
//! [`MIN_SESSIONS`] such sessions at the station, the fleet's; with fewer there too, no
//! estimate.
//!
//! Session lengths are read from the store in the background and kept for a few minutes
//! ([`SessionLengths`]), so a station answer never waits on the database for them for more
//! than a short, bounded moment.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::model::{PortState, PortStatus, StationId};
use crate::store::Store;

/// Fewest past sessions an estimate rests on.
pub const MIN_SESSIONS: usize = 5;
/// How far back past sessions are read.
const LOOKBACK_DAYS: i64 = 30;
/// Most sessions read per station.
const STATION_SAMPLE: u32 = 500;
/// Most sessions read for the fleet.
const FLEET_SAMPLE: u32 = 5_000;
/// Lengths older than this are read again (in the background; the old ones serve meanwhile).
const FRESH_FOR: Duration = Duration::from_secs(300);
/// Stations whose lengths are held.
const MAX_STATIONS: u64 = 100_000;

/// What an estimate rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The vendor said when the session ends.
    Vendor,
    /// Past sessions.
    History,
}

/// Whose past sessions an estimate rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// This station's.
    Station,
    /// The whole fleet's (the station has too few).
    Fleet,
}

/// When an occupied port will likely be free.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FreeEstimate {
    /// The likely time.
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub at: DateTime<Utc>,
    /// What it rests on.
    pub basis: Basis,
    /// How many past sessions it rests on (`null` for the vendor's word).
    pub sessions: Option<u32>,
    /// Whose sessions (`null` for the vendor's word).
    pub scope: Option<Scope>,
}

/// Of the lengths (seconds, sorted ascending) at least `elapsed` long, the median, minus
/// `elapsed`: the median remaining time of sessions that lasted at least this long; and how
/// many lengths it rests on. `None` with fewer than [`MIN_SESSIONS`].
pub fn median_remaining(sorted: &[u32], elapsed: u32) -> Option<(u32, usize)> {
    let first = sorted.partition_point(|length| *length < elapsed);
    let longer = &sorted[first..];
    if longer.len() < MIN_SESSIONS {
        return None;
    }
    let median = longer[longer.len() / 2];
    Some((median - elapsed, longer.len()))
}

/// The estimate for a port, from the vendor or from session lengths (the station's, then the
/// fleet's). `None` for a port that is not occupied or when there is nothing to go on.
pub fn estimate(
    port: &PortState,
    now: DateTime<Utc>,
    station: Option<&[u32]>,
    fleet: Option<&[u32]>,
) -> Option<FreeEstimate> {
    if port.reading.status != PortStatus::Occupied {
        return None;
    }
    if let Some(at) = port.reading.session_ends_at {
        return Some(FreeEstimate {
            at,
            basis: Basis::Vendor,
            sessions: None,
            scope: None,
        });
    }
    let elapsed = u32::try_from((now - port.since).num_seconds().max(0)).unwrap_or(u32::MAX);
    let from = |lengths: Option<&[u32]>, scope| {
        let (remaining, count) = median_remaining(lengths?, elapsed)?;
        // The session's likely end, from its start: the same whenever it is asked.
        let length = i64::from(elapsed) + i64::from(remaining);
        Some(FreeEstimate {
            at: port.since + TimeDelta::seconds(length),
            basis: Basis::History,
            sessions: Some(u32::try_from(count).unwrap_or(u32::MAX)),
            scope: Some(scope),
        })
    };
    from(station, Scope::Station).or_else(|| from(fleet, Scope::Fleet))
}

/// Sorted session lengths of a station and of the fleet, as held now (`None`: not read yet).
pub type HeldLengths = (Option<Arc<[u32]>>, Option<Arc<[u32]>>);

/// Sorted session lengths and when they were read.
#[derive(Debug)]
struct Lengths {
    sorted: Arc<[u32]>,
    read_at: Instant,
}

impl Clone for Lengths {
    fn clone(&self) -> Self {
        Self {
            sorted: Arc::clone(&self.sorted),
            read_at: self.read_at,
        }
    }
}

/// Recent session lengths of stations and of the fleet, read from the store in the background.
pub struct SessionLengths {
    store: Arc<dyn Store>,
    stations: moka::sync::Cache<StationId, Lengths>,
    fleet: Mutex<Option<Lengths>>,
    /// Reads under way (`None`: the fleet's).
    loading: Mutex<HashSet<Option<StationId>>>,
    changed: tokio::sync::Notify,
    /// After a read failed or a wait ran out: no answer waits for lengths before this.
    no_waiting_until: Mutex<Option<Instant>>,
    /// Reads at once (a first list of many stations starts many).
    reads: tokio::sync::Semaphore,
}

/// How long answers stop waiting for lengths after the store failed to give them in time.
const QUIET_AFTER_TROUBLE: Duration = Duration::from_secs(30);

impl std::fmt::Debug for SessionLengths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLengths")
            .field("stations", &self.stations.entry_count())
            .finish_non_exhaustive()
    }
}

impl SessionLengths {
    /// Lengths read from `store`.
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            stations: moka::sync::Cache::new(MAX_STATIONS),
            fleet: Mutex::new(None),
            loading: Mutex::new(HashSet::new()),
            changed: tokio::sync::Notify::new(),
            no_waiting_until: Mutex::new(None),
            reads: tokio::sync::Semaphore::new(4),
        })
    }

    /// The lengths of a station and of the fleet as held now; starts reading those missing or
    /// old.
    pub fn get(self: &Arc<Self>, id: &StationId) -> HeldLengths {
        let station = self.stations.get(id);
        let fleet = self.fleet_held();
        if station
            .as_ref()
            .is_none_or(|l| l.read_at.elapsed() > FRESH_FOR)
        {
            self.start(Some(id.clone()));
        }
        if fleet
            .as_ref()
            .is_none_or(|l| l.read_at.elapsed() > FRESH_FOR)
        {
            self.start(None);
        }
        (station.map(|l| l.sorted), fleet.map(|l| l.sorted))
    }

    /// Waits up to `wait` for the lengths of `ids` (and of the fleet) that have never been
    /// read, starting their reads — unless the store recently failed to answer in time, so
    /// that while the database is away answers do not wait at all.
    pub async fn wait_for(self: &Arc<Self>, ids: &[&StationId], wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            for id in ids {
                self.get(id);
            }
            let missing = ids
                .iter()
                .any(|id| self.stations.get(*id).is_none() && self.is_loading(Some(id)))
                || (self.fleet_held().is_none() && self.is_loading(None));
            if !missing || self.in_trouble() {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                self.trouble();
                return;
            }
        }
    }

    fn fleet_held(&self) -> Option<Lengths> {
        self.fleet.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn in_trouble(&self) -> bool {
        let until = *self
            .no_waiting_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|until| Instant::now() < until)
    }

    fn trouble(&self) {
        *self
            .no_waiting_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + QUIET_AFTER_TROUBLE);
    }

    /// Forgets a station's lengths (its sessions changed a lot, or it was removed).
    pub fn forget(&self, id: &StationId) {
        self.stations.invalidate(id);
    }

    fn is_loading(&self, key: Option<&StationId>) -> bool {
        self.loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key.cloned())
    }

    /// Reads a station's (or the fleet's) lengths in the background unless a read is under way.
    fn start(self: &Arc<Self>, key: Option<StationId>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone())
        {
            return;
        }
        let this = Arc::clone(self);
        runtime.spawn(async move {
            let _permit = this.reads.acquire().await;
            let since = crate::model::now() - TimeDelta::days(LOOKBACK_DAYS);
            let limit = if key.is_some() {
                STATION_SAMPLE
            } else {
                FLEET_SAMPLE
            };
            match this.store.session_lengths(key.as_ref(), since, limit).await {
                Ok(mut lengths) => {
                    lengths.sort_unstable();
                    let read = Lengths {
                        sorted: lengths.into(),
                        read_at: Instant::now(),
                    };
                    match &key {
                        Some(id) => this.stations.insert(id.clone(), read),
                        None => *this.fleet.lock().unwrap_or_else(|p| p.into_inner()) = Some(read),
                    }
                }
                Err(error) => {
                    this.trouble();
                    tracing::debug!(%error, "cannot read session lengths; estimates wait for the database");
                }
            }
            this.loading
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            this.changed.notify_waiters();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PortReading;

    /// A seeded generator of exponential lengths.
    fn exponential(count: usize, mean: f64) -> Vec<u32> {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut lengths: Vec<u32> = (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
                (-mean * (1.0 - unit).ln()) as u32
            })
            .collect();
        lengths.sort_unstable();
        lengths
    }

    #[test]
    fn the_remaining_time_follows_the_distribution() {
        // Uniform lengths of 10..=100 minutes: a session 40 minutes in ends, by the median of
        // those that lasted 40 or more (40..=100), at 70: 30 minutes from now.
        let uniform: Vec<u32> = (10..=100).map(|m| m * 60).collect();
        assert_eq!(median_remaining(&uniform, 40 * 60), Some((30 * 60, 61)));
        assert_eq!(median_remaining(&uniform, 0), Some((55 * 60, 91)));
        // Past the longest but a few: nothing to go on.
        assert_eq!(median_remaining(&uniform, 97 * 60), None);

        // Exponential lengths forget their past: whatever has passed, the median remaining
        // time is ln 2 × the mean.
        let mean = 3_600.0;
        let lengths = exponential(20_000, mean);
        let expected = std::f64::consts::LN_2 * mean;
        for elapsed in [0, 1_800, 5_400] {
            let (remaining, _) = median_remaining(&lengths, elapsed).unwrap();
            let error = (f64::from(remaining) - expected).abs() / expected;
            assert!(
                error < 0.05,
                "{elapsed} s in: {remaining} s left, expected ~{expected:.0}"
            );
        }
    }

    #[test]
    fn the_vendor_goes_first_then_the_station_then_the_fleet() {
        let now = Utc::now();
        let mut port = PortState {
            reading: PortReading::status_only(1, PortStatus::Occupied),
            since: now - TimeDelta::minutes(10),
        };
        let many: Vec<u32> = (1..=20).map(|m| m * 600).collect();
        let few = [3_600, 7_200];
        let fleet = estimate(&port, now, Some(&few), Some(&many)).unwrap();
        assert_eq!(
            (fleet.basis, fleet.scope),
            (Basis::History, Some(Scope::Fleet))
        );
        assert_eq!(fleet.sessions, Some(20));
        let station = estimate(&port, now, Some(&many), None).unwrap();
        assert_eq!(station.scope, Some(Scope::Station));
        assert_eq!(station.at, now + TimeDelta::seconds(11 * 600 - 600));
        assert_eq!(estimate(&port, now, Some(&few), None), None);

        port.reading.session_ends_at = Some(now + TimeDelta::minutes(7));
        let vendor = estimate(&port, now, None, None).unwrap();
        assert_eq!(vendor.basis, Basis::Vendor);
        assert_eq!(vendor.at, now + TimeDelta::minutes(7));

        port.reading.status = PortStatus::Free;
        assert_eq!(estimate(&port, now, Some(&many), Some(&many)), None);
    }
}
