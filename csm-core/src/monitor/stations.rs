//! The stations area: the catalogue (every station, held in memory), what each station's ports
//! are doing now with their "free in about N minutes" estimates, and the changes to the
//! catalogue (add, import, sync from a vendor, remove, the demo's stations).

use std::sync::Arc;

use chrono::Utc;

use super::{History, MonitorError, Ocpp, Parts};
use crate::cache::StatusCache;
use crate::catalog::{Catalog, CatalogCell};
use crate::error::InvalidInput;
use crate::feed::{Announcement, Feed};
use crate::history::estimate::FreeEstimate;
use crate::model::{Station, StationId, StationState};
use crate::refresh::Engine;
use crate::settings::Settings;
use crate::store::{Store, UpsertCounts};

/// A station and what is known of its ports.
#[derive(Clone, Debug)]
pub struct StationView {
    /// The station.
    pub station: Arc<Station>,
    /// Its state, if any fetch ever succeeded or failed.
    pub state: Option<Arc<StationState>>,
    /// Whether the ports shown are out of date: the last fetch failed, they are older than
    /// [`Stations::stale_after`], or they were read from the database after the live state
    /// lapsed.
    pub stale: bool,
    /// When each occupied port will likely be free, aligned with the state's ports.
    pub estimates: Vec<Option<FreeEstimate>>,
}

/// The stations area of the [`Monitor`](super::Monitor).
#[derive(Clone)]
pub struct Stations {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    engine: Engine,
    catalog: Arc<CatalogCell>,
    history: History,
    ocpp: Ocpp,
    feed: Feed,
}

impl std::fmt::Debug for Stations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stations")
            .field("catalog", &self.catalog)
            .finish()
    }
}

impl Stations {
    pub(super) fn new(parts: &Parts, history: &History, ocpp: &Ocpp) -> Self {
        Self {
            settings: Arc::clone(&parts.settings),
            store: Arc::clone(&parts.store),
            cache: Arc::clone(&parts.cache),
            engine: parts.engine.clone(),
            catalog: Arc::clone(&parts.catalog),
            history: history.clone(),
            ocpp: ocpp.clone(),
            feed: parts.feed.clone(),
        }
    }

    /// The catalogue held in memory (see [`crate::catalog`]).
    pub async fn catalog(&self) -> Result<Arc<Catalog>, MonitorError> {
        Ok(self.catalog.get().await?)
    }

    /// Every station, ordered by id.
    pub async fn all(&self) -> Result<Arc<[Arc<Station>]>, MonitorError> {
        Ok(Arc::clone(&self.catalog().await?.stations))
    }

    /// Every enabled station.
    pub async fn enabled(&self) -> Result<Vec<Arc<Station>>, MonitorError> {
        let stations = self.all().await?;
        Ok(stations.iter().filter(|s| s.enabled).cloned().collect())
    }

    /// One station.
    pub async fn get(&self, id: &StationId) -> Result<Arc<Station>, MonitorError> {
        self.catalog()
            .await?
            .get(id)
            .cloned()
            .ok_or_else(|| MonitorError::NotFound(id.clone()))
    }

    /// The station of `GET /api/ports`: `CSM_DEFAULT_STATION`, else the first.
    pub async fn default(&self) -> Result<Arc<Station>, MonitorError> {
        if let Some(id) = &self.settings.default_station {
            return self.get(id).await;
        }
        self.all()
            .await?
            .first()
            .cloned()
            .ok_or(MonitorError::NoStations)
    }

    /// One station with what is known of its ports.
    pub async fn view(&self, id: &StationId) -> Result<StationView, MonitorError> {
        let station = self.get(id).await?;
        let mut views = self.views(vec![station]).await;
        Ok(views.remove(0))
    }

    /// The views of some stations (in the order given), with the estimates of their occupied
    /// ports (waiting a moment for session lengths never read before).
    pub async fn views(&self, stations: Vec<Arc<Station>>) -> Vec<StationView> {
        self.views_with(stations, true).await
    }

    /// [`Stations::views`], with the estimates only when `estimates` (a list that shows no
    /// ports needs none).
    pub(super) async fn views_with(
        &self,
        stations: Vec<Arc<Station>>,
        estimates: bool,
    ) -> Vec<StationView> {
        let ids: Vec<StationId> = stations.iter().map(|s| s.id.clone()).collect();
        let current = self.engine.current(&ids).await;
        if estimates {
            let states: Vec<&StationState> =
                current.iter().filter_map(|c| c.state.as_deref()).collect();
            self.history.wait_for_lengths(&states).await;
        }
        let now = Utc::now();
        let max_age = self.stale_after();
        stations
            .into_iter()
            .zip(current)
            .map(|(station, current)| StationView {
                stale: current.lapsed
                    || current
                        .state
                        .as_ref()
                        .is_none_or(|s| s.is_stale(now, max_age)),
                estimates: current
                    .state
                    .as_deref()
                    .filter(|_| estimates)
                    .map(|s| self.history.estimates(s))
                    .unwrap_or_default(),
                station,
                state: current.state,
            })
            .collect()
    }

    /// Data older than this is shown as stale.
    pub fn stale_after(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.stale_after()).unwrap_or(chrono::Duration::MAX)
    }

    /// Adds a station.
    pub async fn add(&self, station: &Station) -> Result<(), MonitorError> {
        self.engine.chargers().get(&station.vendor)?;
        self.catalog.add(station).await?;
        self.feed.announce(Announcement::Catalog).await;
        Ok(())
    }

    /// Adds or overwrites many stations at once, all or nothing.
    pub async fn import(&self, stations: &[Station]) -> Result<UpsertCounts, MonitorError> {
        for station in stations {
            self.engine.chargers().get(&station.vendor).map_err(|e| {
                InvalidInput::new("vendor", e.to_string())
                    .at(format_args!("station {}", station.id))
            })?;
        }
        let counts = self.catalog.upsert(stations).await?;
        self.feed.announce(Announcement::Catalog).await;
        Ok(counts)
    }

    /// Imports the station list of a vendor whose profile can list stations.
    pub async fn sync_vendor(&self, vendor: &str) -> Result<UpsertCounts, MonitorError> {
        let stations = self.engine.chargers().get(vendor)?.list_stations().await?;
        self.import(&stations).await
    }

    /// Removes a station, its port state and its cache entry (its history stays).
    pub async fn remove(&self, id: &StationId) -> Result<(), MonitorError> {
        if !self.catalog.remove(id).await? {
            return Err(MonitorError::NotFound(id.clone()));
        }
        self.feed.announce(Announcement::Catalog).await;
        self.engine.forget(id);
        self.history.forget(id);
        self.ocpp.forget(id);
        if let Err(error) = self.cache.remove(id).await {
            tracing::warn!(%error, station = %id, "cannot remove the station from the cache; it expires on its own");
        }
        Ok(())
    }

    /// Adds the demo's stations on the simulator when there is no station at all (the
    /// embedded default's first start), with a simulated past from the simulator's start until
    /// now ([`crate::demo`]), so that their history and statistics show at once. Returns how
    /// many stations were added.
    pub async fn seed_demo(&self, count: usize) -> Result<usize, MonitorError> {
        if !self.catalog.check().await?.stations.is_empty() {
            return Ok(0);
        }
        let demo = crate::demo::stations(self.settings.simulator.seed, count);
        self.import(&demo).await?;
        if let Some(simulator) = self.engine.chargers().simulator() {
            crate::demo::write_past(&*self.store, simulator, &demo, &self.settings).await?;
        }
        Ok(demo.len())
    }

    /// Adds the demo's simulated charge points (`ids`, vendor `ocpp`, two connectors each) that
    /// are not stations yet; returns how many.
    pub async fn seed_demo_charge_points(&self, ids: &[String]) -> Result<usize, MonitorError> {
        let ids = ids
            .iter()
            .map(|id| StationId::parse(id).map_err(|e| e.at("charge point id")))
            .collect::<Result<Vec<_>, _>>()?;
        let catalog = self.catalog().await?;
        let mut added = 0;
        for station in crate::demo::charge_points(&ids) {
            if catalog.get(&station.id).is_none() {
                self.add(&station).await?;
                added += 1;
            }
        }
        Ok(added)
    }
}
