//! The monitor service: what the server and the CLI are built on. It owns the store, the cache,
//! the sources and the refresh engine, and answers the questions users ask: which stations
//! exist, what their ports are doing, refresh this one now, add and remove stations.
//!
//! Reads come from the cache and fall back to the store; they never call a vendor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::cache::{self, CacheError, StatusCache};
use crate::charger::{ChargerError, Chargers, ProfileError, SIMULATOR_VENDOR, Simulator};
use crate::error::InvalidInput;
use crate::model::{Station, StationId, StationState};
use crate::refresh::{Engine, EngineConfig, RefreshOutcome};
use crate::settings::{Settings, SettingsError};
use crate::store::{self, Store, StoreError, UpsertCounts};

/// How long the station catalogue is served from memory before it is read again.
const CATALOG_TTL: Duration = Duration::from_secs(2);

/// Why a monitor operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A source failed.
    #[error(transparent)]
    Charger(#[from] ChargerError),
    /// The settings cannot work.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A vendor profile is broken.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Input was refused.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// No station has this id.
    #[error("station {0} not found")]
    NotFound(StationId),
    /// No station exists at all.
    #[error(
        "no stations are configured; add one with `csm-cli stations add` or POST /api/stations"
    )]
    NoStations,
}

/// A station and what is known of its ports.
#[derive(Clone, Debug)]
pub struct StationView {
    /// The station.
    pub station: Arc<Station>,
    /// Its state, if any fetch ever succeeded or failed.
    pub state: Option<Arc<StationState>>,
    /// Whether the ports shown are out of date (last fetch failed or too old).
    pub stale: bool,
}

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
}

/// Whether the monitor's dependencies answer.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// The store's answer.
    pub database: Result<(), String>,
    /// The cache's answer.
    pub cache: Result<(), String>,
}

/// The monitor service. Cheap to share behind an `Arc`.
pub struct Monitor {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    engine: Engine,
    catalog: RwLock<Option<Catalog>>,
    limiter: Mutex<TokenBucket>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("store", &self.store)
            .field("cache", &self.cache)
            .field("engine", &self.engine)
            .finish()
    }
}

#[derive(Clone)]
struct Catalog {
    /// When it was last checked against the store; `None` once a change made it out of date.
    loaded: Option<Instant>,
    /// The store's catalogue version it was read at.
    version: u64,
    stations: Arc<Vec<Arc<Station>>>,
    by_id: Arc<HashMap<StationId, usize>>,
}

impl Catalog {
    fn expired(&self) -> bool {
        self.loaded.is_none_or(|at| at.elapsed() >= CATALOG_TTL)
    }
}

impl Monitor {
    /// Connects everything the settings name. The database is not touched yet: call
    /// [`Monitor::migrate`] (`init-db`) to create its tables.
    pub async fn open(settings: Settings) -> Result<Self, MonitorError> {
        settings.validate()?;
        let store = store::connect(settings.database_url(), settings.db_max_connections).await?;
        let cache = cache::connect(
            settings.redis_url.as_deref(),
            &settings.cache_prefix,
            settings.cache_ttl(),
            Duration::from_millis(settings.cache_local_ttl_ms),
        )?;
        let chargers = Chargers::from_settings(&settings)?;
        Ok(Self::from_parts(settings, store, cache, chargers))
    }

    /// A monitor over adapters built elsewhere (tests, embedding programs).
    pub fn from_parts(
        settings: Settings,
        store: Arc<dyn Store>,
        cache: Arc<dyn StatusCache>,
        chargers: Chargers,
    ) -> Self {
        let engine = Engine::new(
            Arc::clone(&store),
            Arc::clone(&cache),
            chargers,
            EngineConfig::from_settings(&settings),
        );
        let per_minute = f64::from(settings.manual_refresh_per_minute.max(1));
        Self {
            settings: Arc::new(settings),
            store,
            cache,
            engine,
            catalog: RwLock::new(None),
            limiter: Mutex::new(TokenBucket::new(per_minute, per_minute / 60.0)),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<dyn StatusCache> {
        &self.cache
    }

    /// The refresh engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Creates the database and applies migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), MonitorError> {
        Ok(self.store.migrate().await?)
    }

    /// Every station, from a catalogue kept in memory for a moment.
    pub async fn stations(&self) -> Result<Arc<Vec<Arc<Station>>>, MonitorError> {
        Ok(self.catalog().await?.stations)
    }

    async fn catalog(&self) -> Result<Catalog, MonitorError> {
        let current = self
            .catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(catalog) = current.as_ref().filter(|c| !c.expired()) {
            return Ok(catalog.clone());
        }
        // A cheap question first: has the list changed at all since it was read?
        let version = match self.store.catalog_version().await {
            Ok(version) => version,
            // The last catalogue is better than none while the database is away.
            Err(error) => return current.ok_or(MonitorError::Store(error)),
        };
        if let Some(mut catalog) = current
            .clone()
            .filter(|c| c.loaded.is_some() && c.version == version)
        {
            catalog.loaded = Some(Instant::now());
            *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Some(catalog.clone());
            return Ok(catalog);
        }
        let stations: Vec<Arc<Station>> = match self.store.list_stations().await {
            Ok(list) => list.into_iter().map(Arc::new).collect(),
            Err(error) => return current.ok_or(MonitorError::Store(error)),
        };
        let by_id = stations
            .iter()
            .enumerate()
            .map(|(index, s)| (s.id.clone(), index))
            .collect();
        let catalog = Catalog {
            loaded: Some(Instant::now()),
            version,
            stations: Arc::new(stations),
            by_id: Arc::new(by_id),
        };
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Some(catalog.clone());
        Ok(catalog)
    }

    /// Makes the next read load the catalogue again (kept meanwhile as a fallback).
    fn invalidate_catalog(&self) {
        if let Some(catalog) = self
            .catalog
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            catalog.loaded = None;
        }
    }

    /// One station.
    pub async fn station(&self, id: &StationId) -> Result<Arc<Station>, MonitorError> {
        let catalog = self.catalog().await?;
        catalog
            .by_id
            .get(id)
            .map(|&index| Arc::clone(&catalog.stations[index]))
            .ok_or_else(|| MonitorError::NotFound(id.clone()))
    }

    /// The station served by `GET /api/ports`: `CSM_DEFAULT_STATION`, else the first one.
    pub async fn default_station(&self) -> Result<Arc<Station>, MonitorError> {
        match &self.settings.default_station {
            Some(id) => self.station(&StationId::parse(id)?).await,
            None => self
                .stations()
                .await?
                .first()
                .cloned()
                .ok_or(MonitorError::NoStations),
        }
    }

    /// A station with the state of its ports.
    pub async fn view(&self, id: &StationId) -> Result<StationView, MonitorError> {
        let station = self.station(id).await?;
        let mut views = self.views_of(vec![station]).await;
        Ok(views.remove(0))
    }

    /// Every station with the state of its ports.
    pub async fn views(&self) -> Result<Vec<StationView>, MonitorError> {
        let stations = self.stations().await?;
        Ok(self.views_of(stations.to_vec()).await)
    }

    /// The views of some stations (in the order given): their states come from the cache, else
    /// the store, else what this process last saw. Reading only the stations wanted (a page of
    /// a large fleet) costs a fraction of [`Monitor::views`].
    pub async fn views_of(&self, stations: Vec<Arc<Station>>) -> Vec<StationView> {
        let ids: Vec<StationId> = stations.iter().map(|s| s.id.clone()).collect();
        let mut states: Vec<Option<Arc<StationState>>> = match self.cache.get_many(&ids).await {
            Ok(found) => found,
            Err(error) => {
                metrics::counter!("csm_cache_requests_total", "result" => "error")
                    .increment(ids.len() as u64);
                tracing::debug!(%error, "cache read failed; reading the store");
                vec![None; ids.len()]
            }
        };
        let hits = states.iter().filter(|s| s.is_some()).count() as u64;
        metrics::counter!("csm_cache_requests_total", "result" => "hit").increment(hits);
        let missing: Vec<usize> = (0..ids.len()).filter(|&i| states[i].is_none()).collect();
        if !missing.is_empty() {
            metrics::counter!("csm_cache_requests_total", "result" => "miss")
                .increment(missing.len() as u64);
            let wanted: Vec<StationId> = missing.iter().map(|&i| ids[i].clone()).collect();
            match self.store.station_states(&wanted).await {
                Ok(stored) => {
                    let mut stored: HashMap<StationId, StationState> = stored
                        .into_iter()
                        .map(|s| (s.station_id.clone(), s))
                        .collect();
                    for &index in &missing {
                        states[index] = stored.remove(&ids[index]).map(Arc::new);
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read stored port states"),
            }
            // Neither the cache nor the store: what this process last saw (statuses only).
            for index in missing {
                if states[index].is_none() {
                    states[index] = self.engine.last_known(&ids[index]);
                }
            }
        }
        let now = Utc::now();
        let max_age = self.stale_after();
        stations
            .into_iter()
            .zip(states)
            .map(|(station, state)| StationView {
                stale: state.as_ref().is_none_or(|s| s.is_stale(now, max_age)),
                station,
                state,
            })
            .collect()
    }

    /// Data older than this is shown as stale: two refresh intervals plus one request timeout.
    pub fn stale_after(&self) -> chrono::Duration {
        let age = self.settings.refresh_interval() * 2 + self.settings.http_timeout();
        chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
    }

    /// Adds a station.
    pub async fn add_station(&self, station: &Station) -> Result<(), MonitorError> {
        self.engine.chargers().get(&station.vendor)?;
        self.store.add_station(station).await?;
        self.invalidate_catalog();
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
        let counts = self.store.upsert_stations(stations).await?;
        self.invalidate_catalog();
        Ok(counts)
    }

    /// Imports the station list of a vendor whose profile can list stations.
    pub async fn sync_vendor(&self, vendor: &str) -> Result<UpsertCounts, MonitorError> {
        let stations = self.engine.chargers().get(vendor)?.list_stations().await?;
        self.import(&stations).await
    }

    /// Removes a station, its port state and its cache entry (its history stays).
    pub async fn remove_station(&self, id: &StationId) -> Result<(), MonitorError> {
        if !self.store.remove_station(id).await? {
            return Err(MonitorError::NotFound(id.clone()));
        }
        self.engine.forget(id);
        if let Err(error) = self.cache.remove(id).await {
            tracing::warn!(%error, station = %id, "cannot remove the station from the cache; it expires on its own");
        }
        self.invalidate_catalog();
        Ok(())
    }

    /// A manual refresh: skipped while the station's data is younger than the cool-down, and
    /// limited across all stations so nobody can hammer a vendor through csm.
    pub async fn manual_refresh(&self, id: &StationId) -> Result<ManualRefresh, MonitorError> {
        let station = self.station(id).await?;
        let cooldown = self.settings.manual_refresh_cooldown();
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
        Ok(ManualRefresh::Refreshed(self.engine.refresh(station).await))
    }

    /// Adds demo stations on the simulator when the store has no station at all (the embedded
    /// default's first start). Returns how many were added.
    pub async fn seed_demo(&self, count: usize) -> Result<usize, MonitorError> {
        if !self.store.list_stations().await?.is_empty() {
            return Ok(0);
        }
        let fleet = Simulator::with_fleet(self.settings.simulator_seed, 1.0, count, 12).fleet();
        let demo: Vec<Station> = fleet
            .into_iter()
            .enumerate()
            .map(|(index, mut station)| {
                // Piles of different sizes, as on a real campus.
                station.port_count = [10, 12, 16, 20][index % 4];
                station.vendor = SIMULATOR_VENDOR.into();
                station
            })
            .collect();
        self.import(&demo).await?;
        Ok(demo.len())
    }

    /// Whether the store and the cache answer.
    pub async fn readiness(&self) -> Readiness {
        let (database, cache) = tokio::join!(self.store.ping(), self.cache.ping());
        Readiness {
            database: database.map_err(|e| e.to_string()),
            cache: cache.map_err(|e| e.to_string()),
        }
    }
}

/// The scheduler reads the monitor's catalogue: the same station values the API serves, not a
/// second copy of the fleet.
#[async_trait::async_trait]
impl crate::refresh::scheduler::StationSource for Arc<Monitor> {
    async fn stations(&self) -> Result<Vec<Arc<Station>>, String> {
        Monitor::stations(self)
            .await
            .map(|list| list.to_vec())
            .map_err(|e| e.to_string())
    }
}

/// A token bucket: `capacity` tokens, refilled at `rate` per second.
#[derive(Debug)]
struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    fn new(capacity: f64, rate: f64) -> Self {
        Self {
            capacity,
            rate,
            tokens: capacity,
            updated: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is available.
    fn take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refuses_when_empty_and_says_how_long_to_wait() {
        let mut bucket = TokenBucket::new(2.0, 1.0);
        assert!(bucket.take().is_ok());
        assert!(bucket.take().is_ok());
        let wait = bucket.take().unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }
}
