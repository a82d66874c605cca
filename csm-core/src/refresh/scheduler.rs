//! The scheduler: every interval, start a refresh of every enabled station this instance
//! refreshes (all of them alone, its [`Share`] in a cluster), without waiting for any of them.
//! Each station has its own moment in the interval (its phase, from its slot), so the fleet's
//! refreshes are spread over the interval instead of all starting at its beginning: the load
//! on the vendors, the database and the live event streams stays even, and a station is asked
//! an interval apart wherever it is refreshed. A station this instance has no recent state of
//! (at start, or new) is refreshed at once. A station whose refresh from an earlier turn is
//! still running (a slow vendor, or one it waits on to retry) is skipped this turn, so no
//! vendor's waits delay the others' next refresh. Stations that become this instance's
//! between two turns are refreshed at their phase (they keep the cadence they had on the
//! instance before), at once if their data would otherwise grow older than an interval and a
//! quarter.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::catalog::CatalogCell;
use crate::cluster::{SLOTS, slot_of};
use crate::model::{Station, StationId};
use crate::store::{Store, StoreError};

/// Why a turn of the scheduler runs.
enum Turn {
    /// The interval came round: every station of the share.
    Every,
    /// Stations were gained: those of the share this engine has not refreshed lately.
    Gained,
}

/// Waits for the next change of `gained` (forever without one, or once its sender is gone).
async fn changed(gained: &mut Option<watch::Receiver<u64>>) -> Result<(), ()> {
    match gained {
        Some(receiver) => {
            if receiver.changed().await.is_err() {
                *gained = None;
                return Err(());
            }
            Ok(())
        }
        None => std::future::pending().await,
    }
}

/// Where the scheduler finds the stations of a cycle.
#[async_trait]
pub trait StationSource: Send + Sync {
    /// Every station (the scheduler keeps the enabled ones).
    async fn stations(&self) -> Result<Vec<Arc<Station>>, StoreError>;
}

/// The catalogue held in memory: the same station values the API serves, not a second copy of
/// the fleet.
#[async_trait]
impl StationSource for Arc<CatalogCell> {
    async fn stations(&self) -> Result<Vec<Arc<Station>>, StoreError> {
        Ok(self.get().await?.stations.to_vec())
    }
}

#[async_trait]
impl StationSource for Arc<dyn Store> {
    async fn stations(&self) -> Result<Vec<Arc<Station>>, StoreError> {
        Ok(self
            .list_stations()
            .await?
            .into_iter()
            .map(Arc::new)
            .collect())
    }
}

/// Which stations this instance refreshes.
pub trait Share: Send + Sync {
    /// Whether this instance refreshes `station` now.
    fn owns(&self, station: &Station) -> bool;

    /// Changes when this instance gains stations between two turns (`None`: never).
    fn gained(&self) -> Option<watch::Receiver<u64>>;

    /// Told, each turn, which stations this instance refreshes.
    fn refreshing(&self, _stations: &[Arc<Station>]) {}
}

/// A share of every station: an instance alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct Everything;

impl Share for Everything {
    fn owns(&self, _station: &Station) -> bool {
        true
    }

    fn gained(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

/// Refreshes every enabled station of `source` in `share` every `interval` until `cancel`
/// fires. Stations are read again each cycle, so additions and removals take effect by the
/// next one; stations gained between two cycles join the current one at their phase.
pub async fn run(
    engine: Engine,
    source: impl StationSource,
    share: impl Share + 'static,
    interval: Duration,
    cancel: CancellationToken,
) {
    let share = Arc::new(share);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut gained = share.gained();
    let mut stations: Vec<Arc<Station>> = Vec::new();
    // When the current interval began: phases count from it.
    let mut began = tokio::time::Instant::now();
    // The stations of the share at the last turn.
    let mut shared = HashSet::new();
    loop {
        let turn = tokio::select! {
            () = cancel.cancelled() => break,
            tick = ticker.tick() => {
                began = tick;
                Turn::Every
            }
            Ok(()) = changed(&mut gained) => Turn::Gained,
        };
        match source.stations().await {
            Ok(list) => {
                stations = list.into_iter().filter(|s| s.enabled).collect();
            }
            Err(error) => {
                tracing::warn!(%error, known = stations.len(), "cannot list stations; refreshing the ones known from the last cycle");
            }
        }
        let mine: Vec<Arc<Station>> = stations.iter().filter(|s| share.owns(s)).cloned().collect();
        share.refreshing(&mine);
        // Every station is due at its phase; one whose data would be more than an interval old
        // by then (new, seen first at start, or taken over from an instance that died and
        // missed its turn) is refreshed at once as well. A station taken over from a live
        // instance keeps its cadence: it was refreshed at the same phase there.
        let elapsed = began.elapsed();
        let ids: HashSet<StationId> = mine.iter().map(|s| s.id.clone()).collect();
        let every = matches!(turn, Turn::Every);
        let (fresh, phased): (Vec<Arc<Station>>, Vec<Arc<Station>>) = match turn {
            Turn::Every => (mine.clone(), mine),
            Turn::Gained => {
                // Only the stations new to the share: the others are in this interval's turn.
                let new: Vec<Arc<Station>> = mine
                    .iter()
                    .filter(|s| !shared.contains(&s.id))
                    .cloned()
                    .collect();
                let ahead = new
                    .iter()
                    .filter(|s| phase(s, interval) > elapsed)
                    .cloned()
                    .collect();
                (new, ahead)
            }
        };
        shared = ids;
        let now: Vec<Arc<Station>> = fresh
            .into_iter()
            .filter(|s| {
                // When its phase comes: in this turn (already, if it has passed), or for a
                // station gained after its phase passed, in the next interval.
                let ahead = phase(s, interval).saturating_sub(elapsed);
                let next = if ahead.is_zero() && !every {
                    interval.saturating_sub(elapsed) + phase(s, interval)
                } else {
                    ahead
                };
                !seen_within(&engine, s, interval.mul_f64(1.25).saturating_sub(next))
            })
            .collect();
        if now.is_empty() && phased.is_empty() {
            continue;
        }
        let first = tokio::select! {
            () = cancel.cancelled() => break,
            cycle = engine.start_cycle(now) => cycle,
        };
        tokio::spawn(spread(
            engine.clone(),
            Arc::clone(&share),
            first,
            phased,
            began,
            interval,
            cancel.child_token(),
        ));
    }
}

/// Whether this engine has a state of `station` checked within `interval`.
fn seen_within(engine: &Engine, station: &Station, interval: Duration) -> bool {
    let recent = chrono::TimeDelta::from_std(interval).unwrap_or(chrono::TimeDelta::MAX);
    engine
        .last_known(&station.id)
        .is_some_and(|state| chrono::Utc::now() - state.checked_at < recent)
}

/// Where in the interval `station` is refreshed: its slot's share of the interval, the same
/// on every instance and every turn.
fn phase(station: &Station, interval: Duration) -> Duration {
    interval.mul_f64(f64::from(slot_of(&station.id)) / f64::from(SLOTS))
}

/// How finely the phases are kept when `stations` are spread over `interval`: stations due
/// within a hundredth of the interval of each other (at least 10 ms, at most 100 ms) start
/// together, so an interval has at most about a hundred turns, each with its fixed cost,
/// whatever the number of stations; with few stations (an instance's share of a cluster's
/// fleet), within longer, so that a turn still starts about [`TURN_STATIONS`] of them: up to a
/// fortieth of the interval (so the requests stay spread over it rather than in a few bursts)
/// and at most [`LONGEST_STEP`].
fn step(interval: Duration, stations: usize) -> Duration {
    let finest = (interval / 100).clamp(Duration::from_millis(10), Duration::from_millis(100));
    let longest = (interval / 40).min(LONGEST_STEP).max(finest);
    let gathering = interval.mul_f64(TURN_STATIONS as f64 / stations.max(1) as f64);
    gathering.clamp(finest, longest)
}

/// Stations a turn should start, where the phases allow (see [`step`]).
const TURN_STATIONS: usize = 16;

/// The longest a station starts ahead of its phase (see [`step`]).
const LONGEST_STEP: Duration = Duration::from_millis(250);

/// Starts each of `phased` at its phase after `started` (if still in `share` then), then records the turn's duration
/// (until the last job it started ends) with `first`, the jobs started at once.
async fn spread(
    engine: Engine,
    share: Arc<impl Share>,
    first: super::Cycle,
    mut phased: Vec<Arc<Station>>,
    started: tokio::time::Instant,
    interval: Duration,
    cancel: CancellationToken,
) {
    phased.sort_by_cached_key(|s| phase(s, interval));
    let step = step(interval, phased.len());
    let mut cycles = vec![first];
    let mut rest = phased.as_slice();
    while let Some(next) = rest.first() {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(started + phase(next, interval)) => {}
        }
        let until = started.elapsed() + step;
        let due = rest.partition_point(|s| phase(s, interval) <= until);
        let (batch, later) = rest.split_at(due.max(1));
        rest = later;
        // A station whose slot went to another instance meanwhile is that one's now.
        let still: Vec<Arc<Station>> = batch.iter().filter(|s| share.owns(s)).cloned().collect();
        cycles.push(engine.start_cycle(still).await);
    }
    let skipped: usize = cycles.iter().map(super::Cycle::skipped).sum();
    if skipped > 0 {
        tracing::debug!(
            skipped,
            "stations still refreshing from an earlier turn were skipped"
        );
    }
    let mut outcomes = Vec::new();
    for cycle in cycles {
        outcomes.extend(cycle.finished().await);
    }
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    let elapsed = started.elapsed();
    metrics::histogram!("csm_refresh_cycle_seconds").record(elapsed.as_secs_f64());
    tracing::debug!(
        stations = outcomes.len(),
        failed,
        ?elapsed,
        "refresh turn done"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_gathers_a_hundredth_of_the_interval_or_enough_stations() {
        let ms = Duration::from_millis;
        // A large fleet: a hundredth of the interval, 10–100 ms.
        assert_eq!(step(Duration::from_secs(10), 2_000), ms(100));
        assert_eq!(step(Duration::from_secs(2), 10_000), ms(20));
        assert_eq!(step(Duration::from_millis(500), 10_000), ms(10));
        assert_eq!(step(Duration::from_secs(60), 100_000), ms(100));
        // A share of a few hundred: about 16 stations a turn.
        assert_eq!(step(Duration::from_secs(10), 640), ms(250));
        assert_eq!(step(Duration::from_secs(10), 800), ms(200));
        // Few stations: at most a fortieth of the interval, and a quarter second, ahead of a
        // phase.
        assert_eq!(step(Duration::from_secs(1), 200), ms(25));
        assert_eq!(step(Duration::from_secs(2), 20), ms(50));
        assert_eq!(step(Duration::from_secs(300), 0), ms(250));
        assert_eq!(step(Duration::from_millis(200), 1), ms(10));
    }
}
