//! The monitor: the one door the server and the CLI go through. It builds the store, the cache,
//! the sources and the refresh engine from the settings, and hands out one handle per area of
//! what users ask:
//!
//! - [`Monitor::stations`]: the catalogue and what each station's ports are doing;
//! - [`Monitor::refresh`]: refreshing now, the scheduler, the change stream;
//! - [`Monitor::history`]: readings, sessions, statistics, estimates, retention;
//! - [`Monitor::alerts`]: channels, rules, fired alerts and the tasks behind them;
//! - [`Monitor::access`]: API tokens and roles, and the audit log;
//! - [`Monitor::ocpp`]: chargers connecting, their frames, passwords and the registry;
//! - [`Monitor::cluster`]: this instance among the others on the same database and Redis.
//!
//! Each area holds what it uses and reaches another only through that one's methods. Reads come
//! from the cache and fall back to the store; they never call a vendor, and they never wait long
//! on a database that is away: the catalogue is held in memory ([`crate::catalog`]) and every
//! store read on a request path is bounded by [`READ_WAIT`].

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{self, CacheError, StatusCache};
use crate::catalog::CatalogCell;
use crate::charger::{ChargerError, Chargers, SourcesError};
use crate::cluster::{Cluster, Coordinator};
use crate::error::InvalidInput;
use crate::feed::{Announcement, Feed};
use crate::ocpp::OcppSource;
use crate::refresh::{Engine, EngineConfig, FlushReport};
use crate::settings::{Settings, SettingsError};
use crate::store::{self, Store, StoreError};

mod access;
mod alerts;
mod checks;
mod history;
mod list;
mod ocpp;
mod passwords;
mod refresh;
mod stations;

pub use self::access::{Access, Identity, MAX_AUDIT, TOKENS_FRESH, token_hash};
pub use self::alerts::{Alerts, MAX_ALERT_HISTORY};
pub use self::checks::{ConnectionCheck, Readiness};
pub use self::history::{
    AvailabilityReport, FLEET_STATS_FRESH, FleetStats, History, MAX_OUTAGE_EVENTS, MAX_READINGS,
    PRUNE_CHUNK, PruneReport, Readings, ReadingsQuery, STATS_WAIT, Session, SessionsQuery,
    StationAvailability, StationAvailabilityRow, check_days, downsample,
};
pub use self::list::{StationPage, StationQuery};
pub use self::ocpp::{
    Admitted, BeforeBoot, CALL_TIMEOUT, ChargePointStatus, CommandOutcome, CommandReport,
    Connection, MAX_COMMAND_TIMEOUT, MessageLogRead, Ocpp, OcppReply, OpenSocket,
    QUIET_AFTER_CONNECT, REGISTRY_EVERY, TRIGGER_TIMEOUT, Transport,
};
pub use self::passwords::{PASSWORDS_FRESH, PasswordCache};
pub use self::refresh::{ManualRefresh, Refresh};
pub use self::stations::{StationView, Stations};
pub use crate::catalog::Catalog;
pub use crate::store::READ_WAIT;

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
    NotFound(crate::model::StationId),
    /// No alert channel or rule of this name.
    #[error("{0}")]
    Missing(String),
    /// The credentials are missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// The change would break something that depends on what it changes.
    #[error("{0}")]
    Conflict(String),
    /// A call to a charger got no answer (not connected, timed out, refused).
    #[error(transparent)]
    Call(#[from] crate::ocpp::CallError),
    /// No station exists at all.
    #[error(
        "no stations are configured; add one with `csm-cli stations add` or POST /api/stations"
    )]
    NoStations,
}

/// What the monitor builds once and shares with its areas (each keeps what it uses).
struct Parts {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    engine: Engine,
    catalog: Arc<CatalogCell>,
    feed: Feed,
    cluster: Cluster,
}

/// The monitor. Cheap to share behind an `Arc`.
pub struct Monitor {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    engine: Engine,
    stations: Stations,
    refresh: Refresh,
    history: History,
    alerts: Alerts,
    access: Access,
    ocpp: Ocpp,
    cluster: Cluster,
    feed: Feed,
    catalog: Arc<CatalogCell>,
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

/// The database as the cluster's witness of who still reaches Redis (the server wires it to
/// every clustered instance).
#[derive(Debug)]
pub struct StoreWitness(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl crate::cluster::Witness for StoreWitness {
    async fn reached(
        &self,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), String> {
        self.0
            .record_redis_seen(id, at, since)
            .await
            .map_err(|e| e.to_string())
    }

    async fn reached_elsewhere(
        &self,
        id: &str,
        since: chrono::DateTime<chrono::Utc>,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, String> {
        self.0
            .redis_seen_elsewhere(id, since, after)
            .await
            .map_err(|e| e.to_string())
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
        let id = settings
            .instance_id
            .clone()
            .unwrap_or_else(crate::cluster::generated_id);
        let (cluster, feed) = match (&settings.cache.redis_url, settings.is_clustered()) {
            (Some(url), true) => {
                let prefix = &settings.cache.prefix;
                let coordinator = Coordinator::new(url, prefix).map_err(CacheError::Config)?;
                let feed = Feed::shared(url, prefix).map_err(CacheError::Config)?;
                let cluster = Cluster::member(id, coordinator);
                cluster.set_witness(Arc::new(StoreWitness(Arc::clone(&store))));
                (cluster, feed)
            }
            _ => (Cluster::single(id), Feed::local()),
        };
        Ok(Self::assemble(
            settings, store, cache, chargers, cluster, feed,
        ))
    }

    /// A monitor over adapters built elsewhere (tests, embedding programs), alone (a cluster of
    /// one). The OCPP source is the monitor's own: connections feed it.
    pub fn from_parts(
        settings: Settings,
        store: Arc<dyn Store>,
        cache: Arc<dyn StatusCache>,
        chargers: Chargers,
    ) -> Self {
        let id = settings
            .instance_id
            .clone()
            .unwrap_or_else(crate::cluster::generated_id);
        Self::assemble(
            settings,
            store,
            cache,
            chargers,
            Cluster::single(id),
            Feed::local(),
        )
    }

    fn assemble(
        settings: Settings,
        store: Arc<dyn Store>,
        cache: Arc<dyn StatusCache>,
        mut chargers: Chargers,
        cluster: Cluster,
        feed: Feed,
    ) -> Self {
        let settings = Arc::new(settings);
        let source = Arc::new(OcppSource::new(settings.ocpp.heartbeat_secs));
        chargers.insert(Arc::clone(&source) as Arc<dyn crate::charger::ChargerApi>);
        let engine = Engine::new(
            Arc::clone(&store),
            Arc::clone(&cache),
            chargers,
            EngineConfig::from_settings(&settings.engine, &settings.history),
        );
        let parts = Parts {
            settings: Arc::clone(&settings),
            store: Arc::clone(&store),
            cache: Arc::clone(&cache),
            engine: engine.clone(),
            catalog: CatalogCell::new(Arc::clone(&store)),
            feed: feed.clone(),
            cluster: cluster.clone(),
        };
        let history = History::new(&parts);
        let ocpp = Ocpp::new(&parts, source);
        let stations = Stations::new(&parts, &history, &ocpp);
        let refresh = Refresh::new(&parts, &ocpp);
        let alerts = Alerts::new(&parts);
        let access = Access::new(&parts);
        let catalog = parts.catalog;
        Self {
            settings,
            store,
            cache,
            engine,
            stations,
            refresh,
            history,
            alerts,
            access,
            ocpp,
            cluster,
            feed,
            catalog,
        }
    }

    /// The stations: the catalogue, what their ports are doing, adding and removing them.
    pub fn stations(&self) -> &Stations {
        &self.stations
    }

    /// Refreshing stations: now, on a schedule, and the stream of what changed.
    pub fn refresh(&self) -> &Refresh {
        &self.refresh
    }

    /// History: readings, sessions, statistics, estimates and retention.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Alerts: channels, rules, fired alerts, and the tasks that evaluate and deliver them.
    pub fn alerts(&self) -> &Alerts {
        &self.alerts
    }

    /// Access: API tokens and their roles, and the audit log.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// OCPP chargers: their connections, frames, passwords and registry.
    pub fn ocpp(&self) -> &Ocpp {
        &self.ocpp
    }

    /// This instance in its cluster: its id, the slots it holds, the members.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Beats in the cluster until `cancel` fires, then leaves it (its stations go to the others
    /// at once). Alone, returns at once.
    pub async fn run_cluster(&self, cancel: tokio_util::sync::CancellationToken) {
        let ocpp = self.ocpp.clone();
        self.cluster.run(move || ocpp.sockets(), cancel).await;
    }

    /// The change feed: every station change of the fleet, each once, with ids clients resume
    /// from (alone: this instance's own).
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// Feeds this instance's changes into the feed (and reads every instance's, in a cluster),
    /// and acts on what other instances announce, until `cancel` fires.
    pub async fn run_feed(&self, cancel: tokio_util::sync::CancellationToken) {
        let mut announcements = self.feed.announcements();
        let catalog = Arc::clone(&self.catalog);
        let alerts = self.alerts.clone();
        let token = cancel.clone();
        let listening = tokio::spawn(async move {
            loop {
                let what = tokio::select! {
                    () = token.cancelled() => return,
                    what = announcements.recv() => what,
                };
                match what {
                    Ok(Announcement::Catalog) => {
                        if let Err(error) = catalog.check().await {
                            tracing::debug!(%error, "cannot read the station list another instance changed; it is checked again on the next read");
                        }
                    }
                    Ok(Announcement::Rules) => alerts.rules_changed_elsewhere(),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let _ = catalog.check().await;
                        alerts.rules_changed_elsewhere();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        self.feed.run(self.engine.subscribe(), cancel).await;
        let _ = listening.await;
    }

    /// Answers the other instances' requests (calls to chargers connected here, their manual
    /// refreshes, chargers that moved) and looks for chargers whose instance is gone, until
    /// `cancel` fires. Alone, returns at once.
    pub async fn run_requests(&self, cancel: tokio_util::sync::CancellationToken) {
        let (ocpp, token) = (self.ocpp.clone(), cancel.clone());
        let orphans = tokio::spawn(async move { ocpp.run_orphans(token).await });
        let refresh = self.refresh.clone();
        self.ocpp
            .run_requests(
                move |station| {
                    let refresh = refresh.clone();
                    Box::pin(async move {
                        match refresh.one(station).await.result {
                            Ok(_) => Ok(()),
                            Err(error) => Err(error.to_string()),
                        }
                    })
                },
                cancel,
            )
            .await;
        let _ = orphans.await;
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

    /// Writes everything produced so far; returns what could not be written.
    pub async fn flush(&self) -> FlushReport {
        self.engine.flush().await
    }

    /// Lets running refresh jobs end (up to `deadline`) and writes what they produced.
    pub async fn shutdown(&self, deadline: Duration) -> FlushReport {
        self.engine.shutdown(deadline).await
    }
}
