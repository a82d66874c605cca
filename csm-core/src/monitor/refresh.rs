//! The refresh area: refreshing stations now (many, one, or a user's manual refresh with its
//! cool-down and fleet-wide limit), the scheduler that refreshes every station each interval,
//! and the stream of what changed (what the live event stream and alert rules listen to).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{MonitorError, Ocpp, Parts};
use crate::cache::StatusCache;
use crate::catalog::CatalogCell;
use crate::cluster::Cluster;
use crate::model::{OCPP_VENDOR, Station, StationId};
use crate::rate::TokenBucket;
use crate::refresh::scheduler::{self, Share};
use crate::refresh::{Engine, RefreshOutcome, StationUpdate};
use crate::settings::Settings;

/// The answer to a manual refresh.
#[derive(Clone, Debug)]
pub enum ManualRefresh {
    /// The refresh ran (or joined a running one).
    Refreshed(RefreshOutcome),
    /// The station's data is younger than the cool-down; try again after `retry_after`.
    CoolingDown {
        /// When a refresh will be accepted.
        retry_after: Duration,
    },
    /// Too many manual refreshes across all stations this minute.
    RateLimited {
        /// When a refresh will be accepted.
        retry_after: Duration,
    },
    /// The station is a charger connected to another instance, which refreshed it (or
    /// could not).
    Forwarded {
        /// The instance holding its connection (`None`: none does).
        holder: Option<String>,
        /// Whether it refreshed the station, or why not.
        result: Result<(), String>,
    },
}

/// The refresh area of the [`Monitor`](super::Monitor).
#[derive(Clone)]
pub struct Refresh {
    settings: Arc<Settings>,
    cache: Arc<dyn StatusCache>,
    engine: Engine,
    catalog: Arc<CatalogCell>,
    ocpp: Ocpp,
    cluster: Cluster,
    /// Manual refreshes across all stations (`CSM_MANUAL_REFRESH_PER_MINUTE`).
    limiter: Arc<Mutex<TokenBucket>>,
}

impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresh")
            .field("engine", &self.engine)
            .finish()
    }
}

impl Refresh {
    pub(super) fn new(parts: &Parts, ocpp: &Ocpp) -> Self {
        let per_minute = f64::from(parts.settings.manual_refresh.per_minute.max(1));
        Self {
            settings: Arc::clone(&parts.settings),
            cache: Arc::clone(&parts.cache),
            engine: parts.engine.clone(),
            catalog: Arc::clone(&parts.catalog),
            ocpp: ocpp.clone(),
            cluster: parts.cluster.clone(),
            limiter: Arc::new(Mutex::new(TokenBucket::new(per_minute, per_minute / 60.0))),
        }
    }

    /// Refreshes the given stations now (at most the engine's concurrency at once), calling
    /// `progress` as each ends.
    pub async fn many(
        &self,
        stations: Vec<Arc<Station>>,
        progress: impl Fn(&RefreshOutcome) + Send + Sync,
    ) -> Vec<RefreshOutcome> {
        self.engine.refresh_many(stations, progress).await
    }

    /// Refreshes one station now (or joins its running refresh).
    pub async fn one(&self, station: Arc<Station>) -> RefreshOutcome {
        self.engine.refresh(station).await
    }

    /// Refresh jobs running now.
    pub fn running(&self) -> usize {
        self.engine.running()
    }

    /// Starts a refresh of every enabled station in the background; returns how many.
    pub async fn all_in_background(&self) -> Result<usize, MonitorError> {
        let catalog = self.catalog.get().await?;
        let stations: Vec<Arc<Station>> = catalog
            .stations
            .iter()
            .filter(|s| s.enabled)
            .cloned()
            .collect();
        let count = stations.len();
        let engine = self.engine.clone();
        tokio::spawn(async move {
            engine.refresh_many(stations, |_| {}).await;
        });
        Ok(count)
    }

    /// A manual refresh: skipped while the station's data is younger than the cool-down, and
    /// limited across all stations so nobody can hammer a vendor through csm. A charge point
    /// is first asked for its status (TriggerMessage).
    pub async fn manual(&self, id: &StationId) -> Result<ManualRefresh, MonitorError> {
        let station = self
            .catalog
            .get()
            .await?
            .get(id)
            .cloned()
            .ok_or_else(|| MonitorError::NotFound(id.clone()))?;
        let cooldown = self.settings.manual_refresh.cooldown();
        // Without either, the age is unknown; the global limit still protects the vendor.
        let checked_at = match self.cache.get(id).await {
            Ok(Some(state)) => Some(state.checked_at),
            _ => self.engine.last_known(id).map(|s| s.checked_at),
        };
        if let Some(checked_at) = checked_at {
            let age = (Utc::now() - checked_at).to_std().unwrap_or(Duration::ZERO);
            if age < cooldown {
                return Ok(ManualRefresh::CoolingDown {
                    retry_after: cooldown - age,
                });
            }
        }
        if let Err(retry_after) = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Ok(ManualRefresh::RateLimited { retry_after });
        }
        // Once across the cluster, however many instances are asked at once.
        if !self
            .cluster
            .first_within(&format!("manual-refresh:{id}"), cooldown)
            .await
        {
            return Ok(ManualRefresh::CoolingDown {
                retry_after: cooldown,
            });
        }
        if station.vendor == OCPP_VENDOR {
            if self.cluster.is_shared() && !self.ocpp.holds(id) {
                let remote = self.ocpp.refresh_remote(&station).await;
                return Ok(ManualRefresh::Forwarded {
                    holder: remote.holder,
                    result: remote.result,
                });
            }
            self.ocpp.trigger(&station).await;
        }
        Ok(ManualRefresh::Refreshed(self.engine.refresh(station).await))
    }

    /// Refreshes every enabled station this instance refreshes (all of them alone, its share
    /// in a cluster) every refresh interval until `cancel` fires.
    pub async fn run_scheduler(&self, cancel: CancellationToken) {
        let interval = self.settings.engine.refresh_interval();
        let share = InstanceShare {
            cluster: self.cluster.clone(),
            ocpp: self.ocpp.clone(),
        };
        scheduler::run(
            self.engine.clone(),
            Arc::clone(&self.catalog),
            share,
            interval,
            cancel,
        )
        .await;
    }

    /// Changes as they happen (what the live event stream and alerts listen to).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StationUpdate>> {
        self.engine.subscribe()
    }

    /// Changes this instance has made since start (status events or a health change of a
    /// station), counted once the station's new state is in the cache: a reader that sees the
    /// count move knows the cache has the change.
    pub fn changes_made(&self) -> u64 {
        self.engine.updates_sent()
    }

    /// Status events produced since start.
    pub fn events_produced(&self) -> u64 {
        self.engine.events_produced()
    }
}

/// The stations this instance refreshes: the polled stations of the slots it holds, and the
/// chargers connected to it (a charger's state is where its connection is; another instance
/// would only see it as not connected).
struct InstanceShare {
    cluster: Cluster,
    ocpp: Ocpp,
}

impl Share for InstanceShare {
    fn owns(&self, station: &Station) -> bool {
        if station.vendor == OCPP_VENDOR {
            self.ocpp.refreshes(&station.id)
        } else {
            self.cluster.owns(&station.id)
        }
    }

    fn gained(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.cluster.is_shared().then(|| self.cluster.gained())
    }

    fn refreshing(&self, stations: &[Arc<Station>]) {
        let polled = stations.iter().filter(|s| s.vendor != OCPP_VENDOR).count();
        self.cluster.set_stations(polled);
    }
}
