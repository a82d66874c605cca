//! The scheduler: every interval, start a refresh of every enabled station this instance
//! refreshes (all of them alone, its [`Share`] in a cluster), without waiting for any of them.
//! A station whose refresh from an earlier turn is still running (a slow vendor, or one it
//! waits on to retry) is skipped this turn, so no vendor's waits delay the others' next
//! refresh. Stations that become this instance's between two turns are refreshed at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::catalog::CatalogCell;
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
    loop {
        let turn = tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticker.tick() => Turn::Every,
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
        let due = match turn {
            Turn::Every => mine,
            Turn::Gained => {
                let recent =
                    chrono::TimeDelta::from_std(interval).unwrap_or(chrono::TimeDelta::MAX);
                let now = chrono::Utc::now();
                mine.into_iter()
                    .filter(|s| {
                        engine
                            .last_known(&s.id)
                            .is_none_or(|state| now - state.checked_at >= recent)
                    })
                    .collect()
            }
        };
        if due.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let cycle = tokio::select! {
            () = cancel.cancelled() => break,
            cycle = engine.start_cycle(due) => cycle,
        };
        if cycle.skipped() > 0 {
            tracing::debug!(
                skipped = cycle.skipped(),
                "stations still refreshing from an earlier turn were skipped"
            );
        }
        // The cycle's duration, for metrics: until the last job it started ends.
        tokio::spawn(async move {
            let outcomes = cycle.finished().await;
            let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
            let elapsed = started.elapsed();
            metrics::histogram!("csm_refresh_cycle_seconds").record(elapsed.as_secs_f64());
            tracing::debug!(
                stations = outcomes.len(),
                failed,
                ?elapsed,
                "refresh cycle done"
            );
        });
    }
}
