//! The scheduler: every interval, start a refresh of every enabled station, without waiting for
//! any of them. A station whose refresh from an earlier turn is still running (a slow vendor,
//! or one it waits on to retry) is skipped this turn, so no vendor's waits delay the others'
//! next refresh.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::catalog::CatalogCell;
use crate::model::Station;
use crate::store::{Store, StoreError};

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

/// Refreshes every enabled station of `source` every `interval` until `cancel` fires. Stations
/// are read again each cycle, so additions and removals take effect by the next one.
pub async fn run(
    engine: Engine,
    source: impl StationSource,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut stations: Vec<Arc<Station>> = Vec::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        match source.stations().await {
            Ok(list) => {
                stations = list.into_iter().filter(|s| s.enabled).collect();
            }
            Err(error) => {
                tracing::warn!(%error, known = stations.len(), "cannot list stations; refreshing the ones known from the last cycle");
            }
        }
        let started = std::time::Instant::now();
        let cycle = tokio::select! {
            () = cancel.cancelled() => break,
            cycle = engine.start_cycle(stations.clone()) => cycle,
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
