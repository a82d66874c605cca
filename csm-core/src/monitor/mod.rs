//! The monitor service: the one door the server and the CLI go through. It owns the store, the
//! cache, the sources and the refresh engine, and answers the questions users ask: which
//! stations exist, what their ports are doing, what happened, refresh this one now, add and
//! remove stations, do the connections work.
//!
//! Reads come from the cache and fall back to the store; they never call a vendor, and they
//! never wait long on a database that is away: the catalogue is held in memory
//! ([`catalog`]) and every store read on a request path is bounded by [`READ_WAIT`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::cache::{self, CacheError, StatusCache};
use crate::charger::{ChargerError, Chargers, SIMULATOR_VENDOR, Simulator, SourcesError};
use crate::error::InvalidInput;
use crate::history::estimate::{FreeEstimate, SessionLengths};
use crate::model::{Station, StationId, StationState, StatusEvent};
use crate::rate::TokenBucket;
use crate::refresh::{Engine, EngineConfig, FlushReport, RefreshOutcome, StationUpdate, scheduler};
use crate::settings::{Settings, SettingsError};
use crate::store::{self, EventQuery, Store, StoreError, UpsertCounts};

mod alerts;
pub mod catalog;
mod charge_points;
mod checks;
mod history;
mod list;
mod ocpp;

pub use self::alerts::MAX_ALERT_HISTORY;
pub use self::catalog::Catalog;
pub use self::charge_points::{ChargePointStatus, Connection, REGISTRY_EVERY};
pub use self::checks::{ConnectionCheck, Readiness};
pub use self::history::{
    FLEET_STATS_FRESH, FleetStats, MAX_READINGS, PRUNE_CHUNK, PruneReport, Readings, ReadingsQuery,
    STATS_WAIT, Session, SessionsQuery, check_days, downsample,
};
pub use self::list::{StationPage, StationQuery};
pub use self::ocpp::{
    Admitted, BeforeBoot, CALL_TIMEOUT, OcppReply, QUIET_AFTER_CONNECT, TRIGGER_TIMEOUT,
};

/// Longest wait for the store on a request path (a cache miss, the first catalogue, history):
/// past it the request fails as unavailable instead of hanging on a database that is away.
pub const READ_WAIT: Duration = Duration::from_millis(800);

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
    /// The sources cannot be set up (a broken vendor profile, no HTTP client).
    #[error(transparent)]
    Sources(#[from] SourcesError),
    /// Input was refused.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// No station has this id.
    #[error("station {0} not found")]
    NotFound(StationId),
    /// No alert channel or rule of this name.
    #[error("{0}")]
    Missing(String),
    /// The credentials are missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// The change would break something that depends on what it changes.
    #[error("{0}")]
    Conflict(String),
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
    /// When each occupied port will likely be free, aligned with the state's ports.
    pub estimates: Vec<Option<FreeEstimate>>,
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

/// The monitor service. Cheap to share behind an `Arc`.
pub struct Monitor {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    engine: Engine,
    catalog: Arc<catalog::CatalogCell>,
    limiter: Mutex<TokenBucket>,
    lengths: Arc<SessionLengths>,
    /// The fleet's statistics by days, reused for [`FLEET_STATS_FRESH`].
    fleet_stats: moka::sync::Cache<u32, FleetStats>,
    /// What the alert tasks share.
    hub: Arc<crate::alerts::Hub>,
    /// Every charge point's password hash, read at once and reused for [`PASSWORDS_FRESH`]:
    /// a car park connecting at once asks the database once, not once per charger.
    charger_passwords: moka::future::Cache<(), Arc<HashMap<StationId, String>>>,
    /// The last password hashes read, kept for while the database is away (chargers keep
    /// reconnecting through an outage); this process's own changes are applied to it.
    last_passwords: Mutex<Option<Arc<HashMap<StationId, String>>>>,
    /// Auto registrations of charge points (`CSM_OCPP_AUTO_PER_MINUTE`).
    registrations: Mutex<TokenBucket>,
}

/// How long a charge point's password hash is reused before it is read again (this
/// process's own changes apply at once).
pub const PASSWORDS_FRESH: Duration = Duration::from_secs(60);

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("store", &self.store)
            .field("cache", &self.cache)
            .field("engine", &self.engine)
            .finish()
    }
}

impl Monitor {
    /// Connects everything the settings name. The database is not touched yet: call
    /// [`Monitor::migrate`] (`init-db`) to create its tables.
    pub async fn open(settings: Settings) -> Result<Self, MonitorError> {
        settings.validate()?;
        let store =
            store::connect(settings.database.url(), settings.database.max_connections).await?;
        let cache = cache::connect(
            settings.cache.redis_url.as_deref(),
            &settings.cache.prefix,
            settings.cache_ttl(),
            Duration::from_millis(settings.cache.local_ttl_ms),
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
            EngineConfig::from_settings(&settings.engine, &settings.history),
        );
        let per_minute = f64::from(settings.manual_refresh.per_minute.max(1));
        let registrations = f64::from(settings.ocpp.auto_per_minute.max(1));
        Self {
            catalog: catalog::CatalogCell::new(Arc::clone(&store)),
            lengths: SessionLengths::new(Arc::clone(&store)),
            fleet_stats: moka::sync::Cache::builder()
                .max_capacity(u64::from(crate::history::stats::MAX_DAYS))
                .time_to_live(FLEET_STATS_FRESH)
                .build(),
            settings: Arc::new(settings),
            store,
            cache,
            engine,
            hub: Arc::new(crate::alerts::Hub::new()),
            charger_passwords: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(PASSWORDS_FRESH)
                .build(),
            last_passwords: Mutex::new(None),
            limiter: Mutex::new(TokenBucket::new(per_minute, per_minute / 60.0)),
            registrations: Mutex::new(TokenBucket::new(registrations, registrations / 60.0)),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The database in use (`mysql host:3306/db`, `sqlite csm.db`), without credentials.
    pub fn database(&self) -> String {
        format!("{} {}", self.store.backend(), self.store.target())
    }

    /// The vendor profiles stations may name.
    pub fn vendors(&self) -> Vec<String> {
        self.engine.chargers().names()
    }

    /// Creates the database and applies migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), MonitorError> {
        Ok(self.store.migrate().await?)
    }

    /// The store, for the alert tasks.
    pub(crate) fn store_handle(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The engine, for the alert tasks.
    pub(crate) fn engine_handle(&self) -> &Engine {
        &self.engine
    }

    /// What the alert tasks share.
    pub(crate) fn alert_hub(&self) -> &crate::alerts::Hub {
        &self.hub
    }

    // ---- stations ----------------------------------------------------------------------

    /// The catalogue held in memory (see [`catalog`]).
    pub async fn catalog(&self) -> Result<Arc<Catalog>, MonitorError> {
        Ok(self.catalog.get(READ_WAIT).await?)
    }

    /// Every station, ordered by id.
    pub async fn stations(&self) -> Result<Arc<[Arc<Station>]>, MonitorError> {
        Ok(Arc::clone(&self.catalog().await?.stations))
    }

    /// One station.
    pub async fn station(&self, id: &StationId) -> Result<Arc<Station>, MonitorError> {
        self.catalog()
            .await?
            .get(id)
            .cloned()
            .ok_or_else(|| MonitorError::NotFound(id.clone()))
    }

    /// The station served by `GET /api/ports`: the configured default, else the first one.
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

    /// The views of some stations (in the order given): their states come from the cache, else
    /// the store (within [`READ_WAIT`]), else what this process last saw; with the estimates of
    /// their occupied ports (waiting a moment for session lengths never read before).
    pub async fn views_of(&self, stations: Vec<Arc<Station>>) -> Vec<StationView> {
        self.views(stations, true).await
    }

    /// [`Monitor::views_of`], with the estimates only when `estimates` (a list that shows no
    /// ports needs none).
    pub(super) async fn views(
        &self,
        stations: Vec<Arc<Station>>,
        estimates: bool,
    ) -> Vec<StationView> {
        let ids: Vec<StationId> = stations.iter().map(|s| s.id.clone()).collect();
        let mut cache_answered = true;
        let mut states: Vec<Option<Arc<StationState>>> = match self.cache.get_many(&ids).await {
            Ok(found) => found,
            Err(error) => {
                cache_answered = false;
                metrics::counter!("csm_cache_requests_total", "result" => "error")
                    .increment(ids.len() as u64);
                tracing::debug!(%error, "cache read failed; reading the store");
                vec![None; ids.len()]
            }
        };
        let hits = states.iter().filter(|s| s.is_some()).count() as u64;
        metrics::counter!("csm_cache_requests_total", "result" => "hit").increment(hits);
        let mut lapsed = vec![false; ids.len()];
        let missing: Vec<usize> = (0..ids.len()).filter(|&i| states[i].is_none()).collect();
        if !missing.is_empty() {
            metrics::counter!("csm_cache_requests_total", "result" => "miss")
                .increment(missing.len() as u64);
            let wanted: Vec<StationId> = missing.iter().map(|&i| ids[i].clone()).collect();
            let stored = store::within(
                READ_WAIT,
                "reading port states",
                &*self.store,
                self.store.station_states(&wanted),
            )
            .await;
            match stored {
                Ok(stored) => {
                    let mut stored: HashMap<StationId, StationState> = stored
                        .into_iter()
                        .map(|s| (s.station_id.clone(), s))
                        .collect();
                    for &index in &missing {
                        states[index] = stored.remove(&ids[index]).map(|mut state| {
                            // The stored check time trails the truth by up to two intervals;
                            // this process may know a later one.
                            if let Some(checked) = self.engine.last_checked(&ids[index]) {
                                state.checked_at = state.checked_at.max(checked);
                                // The live state this process kept in the cache has lapsed.
                                lapsed[index] = cache_answered;
                            }
                            Arc::new(state)
                        });
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
        if estimates {
            self.wait_for_lengths(&states).await;
        }
        let now = Utc::now();
        let max_age = self.stale_after();
        stations
            .into_iter()
            .zip(states)
            .zip(lapsed)
            .map(|((station, state), lapsed)| StationView {
                stale: lapsed || state.as_ref().is_none_or(|s| s.is_stale(now, max_age)),
                estimates: state
                    .as_deref()
                    .filter(|_| estimates)
                    .map(|s| self.estimates(s))
                    .unwrap_or_default(),
                station,
                state,
            })
            .collect()
    }

    /// Data older than this is shown as stale.
    pub fn stale_after(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.stale_after()).unwrap_or(chrono::Duration::MAX)
    }

    /// A station's status changes, newest first.
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<StatusEvent>, MonitorError> {
        query.validate()?;
        if let Some(id) = &query.station_id {
            self.station(id).await?;
        }
        let read = self.store.events(query);
        Ok(store::within(READ_WAIT, "reading status events", &*self.store, read).await?)
    }

    /// Adds a station.
    pub async fn add_station(&self, station: &Station) -> Result<(), MonitorError> {
        self.engine.chargers().get(&station.vendor)?;
        self.store.add_station(station).await?;
        self.catalog.changed().await;
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
        self.catalog.changed().await;
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
        self.lengths.forget(id);
        if let Some(ocpp) = self.engine.chargers().ocpp() {
            ocpp.forget(id);
        }
        self.charger_passwords.invalidate_all();
        self.patch_last_passwords(id, None);
        if let Err(error) = self.cache.remove(id).await {
            tracing::warn!(%error, station = %id, "cannot remove the station from the cache; it expires on its own");
        }
        self.catalog.changed().await;
        Ok(())
    }

    /// Adds demo stations on the simulator when the store has no station at all (the embedded
    /// default's first start), with a simulated past ([`crate::history::past`]) from the
    /// simulator's start until now, so that their history and statistics show at once.
    /// Returns how many stations were added.
    pub async fn seed_demo(&self, count: usize) -> Result<usize, MonitorError> {
        if !self.store.list_stations().await?.is_empty() {
            return Ok(0);
        }
        let fleet = Simulator::with_fleet(self.settings.simulator.seed, 1.0, count, 12).fleet();
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
        if let Some(simulator) = self.engine.chargers().simulator() {
            let past = (simulator.origin(), crate::model::now());
            let (_, step) = crate::history::past::demo_span(self.settings.simulator.speed);
            let mut rows = 0;
            for station in &demo {
                let (batches, _) = crate::history::past::simulate(
                    simulator,
                    station,
                    past,
                    step,
                    &self.settings.history,
                    crate::refresh::WriterConfig::default().max_rows,
                );
                for batch in &batches {
                    self.store.apply(batch).await?;
                    rows += batch.len();
                }
            }
            tracing::info!(
                from = %past.0,
                rows,
                "wrote a simulated past for the demo stations"
            );
        }
        Ok(demo.len())
    }

    // ---- refreshing ------------------------------------------------------------------

    /// Refreshes the given stations now (at most the engine's concurrency at once), calling
    /// `progress` as each ends.
    pub async fn refresh(
        &self,
        stations: Vec<Arc<Station>>,
        progress: impl Fn(&RefreshOutcome) + Send + Sync,
    ) -> Vec<RefreshOutcome> {
        self.engine.refresh_many(stations, progress).await
    }

    /// Refreshes one station now (or joins its running refresh).
    pub async fn refresh_one(&self, station: Arc<Station>) -> RefreshOutcome {
        self.engine.refresh(station).await
    }

    /// Refresh jobs running now.
    pub fn refreshes_running(&self) -> usize {
        self.engine.running()
    }

    /// Every enabled station.
    pub async fn enabled_stations(&self) -> Result<Vec<Arc<Station>>, MonitorError> {
        let stations = self.stations().await?;
        Ok(stations.iter().filter(|s| s.enabled).cloned().collect())
    }

    /// Starts a refresh of every enabled station in the background; returns how many.
    pub async fn refresh_all_in_background(&self) -> Result<usize, MonitorError> {
        let stations = self.enabled_stations().await?;
        let count = stations.len();
        let engine = self.engine.clone();
        tokio::spawn(async move {
            engine.refresh_many(stations, |_| {}).await;
        });
        Ok(count)
    }

    /// A manual refresh: skipped while the station's data is younger than the cool-down, and
    /// limited across all stations so nobody can hammer a vendor through csm.
    pub async fn manual_refresh(&self, id: &StationId) -> Result<ManualRefresh, MonitorError> {
        let station = self.station(id).await?;
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
        if station.vendor == crate::ocpp::OCPP_VENDOR {
            self.ocpp_trigger(&station).await;
        }
        Ok(ManualRefresh::Refreshed(self.engine.refresh(station).await))
    }

    /// Refreshes every enabled station every refresh interval until `cancel` fires.
    pub async fn run_scheduler(self: Arc<Self>, cancel: CancellationToken) {
        let interval = self.settings.engine.refresh_interval();
        let engine = self.engine.clone();
        scheduler::run(engine, self, interval, cancel).await;
    }

    /// Changes as they happen (what the live event stream and alerts listen to).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StationUpdate>> {
        self.engine.subscribe()
    }

    /// Status events produced since start.
    pub fn events_produced(&self) -> u64 {
        self.engine.events_produced()
    }

    /// Writes everything produced so far; returns what could not be written.
    pub async fn flush(&self) -> FlushReport {
        self.engine.flush().await
    }

    /// Lets running refresh jobs end (up to `deadline`) and writes what they produced.
    pub async fn shutdown(&self, deadline: Duration) -> FlushReport {
        self.engine.shutdown(deadline).await
    }
}

/// The scheduler reads the monitor's catalogue: the same station values the API serves, not a
/// second copy of the fleet.
#[async_trait::async_trait]
impl scheduler::StationSource for Arc<Monitor> {
    async fn stations(&self) -> Result<Vec<Arc<Station>>, StoreError> {
        Ok(self.catalog.get(READ_WAIT).await?.stations.to_vec())
    }
}
