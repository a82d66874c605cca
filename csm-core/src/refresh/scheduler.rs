//! The scheduler: every interval, start a refresh of every enabled station this instance
//! refreshes (all of them alone, its [`Share`] in a cluster), without waiting for any of them.
//! Each station has its own moment in the interval (its phase, from its slot), so the fleet's
//! refreshes are spread over the interval instead of all starting at its beginning: the load
//! on the vendors, the database and the live event streams stays even, and a station is asked
//! an interval apart wherever it is refreshed. A station this instance has no recent state of
//! (at start, or new) is refreshed at once. A station whose refresh from an earlier turn is
//! still running (a slow vendor, or one it waits on to retry) is skipped this turn, so no
//! vendor's waits delay the others' next refresh. Stations that become this instance's
//! between two turns are refreshed at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::catalog::CatalogCell;
use crate::cluster::{SLOTS, slot_of};
use crate::model::Station;
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
/// next one; stations gained between two cycles are refreshed when gained, unless this engine
/// refreshed them within the interval.
pub async fn run(
    engine: Engine,
    source: impl StationSource,
    share: impl Share,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut gained = share.gained();
    let mut stations: Vec<Arc<Station>> = Vec::new();
    // When the current interval began: phases count from it.
    let mut began = tokio::time::Instant::now();
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
        // Stations this instance has no recent state of (none within an interval and a half:
        // a station refreshed at its phase last interval is not, whatever the timers'
        // jitter) are refreshed at once, and again at
        // their phase if it is still ahead in this interval: from then on each is asked an
        // interval apart, its data never older than an interval (the price: two requests in
        // the interval a station is first seen or gained).
        let now: Vec<Arc<Station>> = mine
            .iter()
            .filter(|s| !seen_within(&engine, s, interval.mul_f64(1.5)))
            .cloned()
            .collect();
        let phased: Vec<Arc<Station>> = match turn {
            Turn::Every => mine,
            Turn::Gained => {
                let elapsed = began.elapsed();
                now.iter()
                    .filter(|s| phase(s, interval) > elapsed)
                    .cloned()
                    .collect()
            }
        };
        if now.is_empty() && phased.is_empty() {
            continue;
        }
        let first = tokio::select! {
            () = cancel.cancelled() => break,
            cycle = engine.start_cycle(now) => cycle,
        };
        tokio::spawn(spread(
            engine.clone(),
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

/// How finely the phases are kept: stations due within this of each other start together.
const STEP: Duration = Duration::from_millis(20);

/// Starts each of `phased` at its phase after `started`, then records the turn's duration
/// (until the last job it started ends) with `first`, the jobs started at once.
async fn spread(
    engine: Engine,
    first: super::Cycle,
    mut phased: Vec<Arc<Station>>,
    started: tokio::time::Instant,
    interval: Duration,
    cancel: CancellationToken,
) {
    phased.sort_by_cached_key(|s| phase(s, interval));
    let mut cycles = vec![first];
    let mut rest = phased.as_slice();
    while let Some(next) = rest.first() {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(started + phase(next, interval)) => {}
        }
        let until = started.elapsed() + STEP;
        let due = rest.partition_point(|s| phase(s, interval) <= until);
        let (batch, later) = rest.split_at(due.max(1));
        rest = later;
        cycles.push(engine.start_cycle(batch.to_vec()).await);
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
