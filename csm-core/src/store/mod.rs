//! Durable storage: the `Store` trait and its MySQL/MariaDB and SQLite adapters.
//!
//! The store keeps the station catalogue, the current state of every port (status, vendor code,
//! since when) and the history of status events. Live measurements (voltage, current, ...) change
//! on every fetch and live in the cache; the store records them only with a durable change.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::InvalidInput;
use crate::model::history::{HistoryQuery, HourDelta, HourRow, HourTotals, ReadingRow, SessionRow};
use crate::model::ocpp::{ChargePointRecord, StoredFrame};
use crate::model::{PortState, Station, StationHealth, StationId, StationState, StatusEvent};
use crate::secret::redact_url;

mod access;
mod alerts;
mod instances;
mod kept;
mod mysql;
mod ocpp;
mod record;
mod rows;
mod sql;
mod sql_store;
mod sqlite;
pub mod statements;

pub use self::access::AccessStore;
pub use self::alerts::{AlertStore, Finish, OpenAlert, OutboxRow};
pub use self::sql_store::{Backend, SqlStore};

/// A store in a MySQL or MariaDB database.
pub type MySqlStore = SqlStore<sqlx::MySql>;
/// A store in one SQLite file: the embedded default.
pub type SqliteStore = SqlStore<sqlx::Sqlite>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out, connection lost).
    #[error("cannot reach the {backend} database at {target} while {doing}: {source}")]
    Unavailable {
        /// `mysql` or `sqlite`.
        backend: &'static str,
        /// Where the database is, without credentials.
        target: String,
        /// What csm was doing.
        doing: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database answered with an error.
    #[error("database error while {doing}: {source}")]
    Query {
        /// What csm was doing.
        doing: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying migrations failed.
    #[error("could not apply migrations to {target}: {source}")]
    Migrate {
        /// Where the database is, without credentials.
        target: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The database did not answer within the wait allowed on a request path.
    #[error("the {backend} database at {target} did not answer within {after_ms} ms while {doing}")]
    TimedOut {
        /// `mysql` or `sqlite`.
        backend: &'static str,
        /// Where the database is, without credentials.
        target: String,
        /// What csm was doing.
        doing: &'static str,
        /// The wait.
        after_ms: u64,
    },
    /// A station with this id exists already.
    #[error("station {0} already exists")]
    Conflict(StationId),
    /// Something else of this name exists already (an alert channel).
    #[error("{what} {name:?} already exists")]
    Duplicate {
        /// What it is (`channel`).
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// The URL or options of the database are wrong.
    #[error("{0}")]
    Config(String),
    /// Data that csm refuses to store.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A value read back from the database is not one csm wrote.
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        /// Table the row is in.
        table: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl StoreError {
    /// Whether trying again later may succeed (the database was unreachable or busy), as
    /// opposed to an error that will repeat.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } | StoreError::TimedOut { .. } => true,
            StoreError::Query { source, .. } => is_transient_sqlx(source),
            _ => false,
        }
    }
}

/// Whether a driver error of any backend may go away on retry: the connection or the pool
/// failed. Errors the database itself answered are the backend's to judge
/// ([`Backend::is_transient`]).
fn is_transient_sqlx(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_)
            | sqlx::Error::Tls(_)
    )
}

/// Longest wait for the store on a request path (a cache miss, the first catalogue, history):
/// past it the request fails as unavailable instead of hanging on a database that is away.
pub const READ_WAIT: std::time::Duration = std::time::Duration::from_millis(800);

/// `work`, given at most `wait`: a store call on a request path must not hang on a database
/// that is away (a pool waits for a connection for seconds before it gives up).
pub async fn within<T>(
    wait: std::time::Duration,
    doing: &'static str,
    store: &dyn Store,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(wait, work).await {
        Ok(done) => done,
        Err(_) => Err(StoreError::TimedOut {
            backend: store.backend(),
            target: store.target(),
            doing,
            after_ms: wait.as_millis() as u64,
        }),
    }
}

/// Counts of an import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    /// Stations that did not exist before.
    pub added: u64,
    /// Stations that existed and were overwritten.
    pub updated: u64,
}

/// The current state of one port as written to the store.
#[derive(Clone, Debug, PartialEq)]
pub struct PortStateRow {
    /// The station.
    pub station_id: StationId,
    /// The port's state.
    pub state: PortState,
    /// When it was observed.
    pub observed_at: DateTime<Utc>,
}

/// Writes of many refresh jobs, applied in one transaction with multi-row statements.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    /// Port states to insert or overwrite.
    pub ports: Vec<PortStateRow>,
    /// Status events to append (a repeated event is ignored, so a retried batch is harmless).
    pub events: Vec<StatusEvent>,
    /// Station health to insert or overwrite.
    pub health: Vec<StationHealth>,
    /// Readings to keep (a repeated one is ignored).
    pub readings: Vec<ReadingRow>,
    /// Sessions started or ended (an end fills in the row its start made).
    pub sessions: Vec<SessionRow>,
    /// Seconds and counts to add to ports' hours (and so to their stations' and the fleet's).
    pub hours: Vec<HourDelta>,
}

impl WriteBatch {
    /// Rows the batch writes.
    pub fn len(&self) -> usize {
        self.ports.len()
            + self.events.len()
            + self.health.len()
            + self.readings.len()
            + self.sessions.len()
            + self.hours.len()
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which status events to read, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventQuery {
    /// Only this station.
    pub station_id: Option<StationId>,
    /// Only this port (with a station).
    pub port: Option<u32>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// At most this many.
    pub limit: u32,
}

impl EventQuery {
    /// Events answered when the query names no limit.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// Most events one query answers.
    pub const MAX_LIMIT: u32 = 1_000;

    /// Checks the port and the limit (a `since` after `until` is an empty range, not an error).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if let Some(port) = self.port
            && !(1..=crate::model::MAX_PORT).contains(&port)
        {
            return Err(InvalidInput::new(
                "port",
                format!("{port} is outside 1..={}", crate::model::MAX_PORT),
            ));
        }
        if !(1..=Self::MAX_LIMIT).contains(&self.limit) {
            return Err(InvalidInput::new(
                "limit",
                format!("{} is outside 1..={}", self.limit, Self::MAX_LIMIT),
            ));
        }
        Ok(())
    }
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            station_id: None,
            port: None,
            since: None,
            until: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// Durable storage of stations, port state and status events.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// `mysql` or `sqlite`.
    fn backend(&self) -> &'static str;

    /// Where the database is (host:port/database or file), without credentials.
    fn target(&self) -> String;

    /// Creates the database if needed and applies pending migrations. Safe to run repeatedly.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Adds a station; fails with [`StoreError::Conflict`] if its id exists.
    async fn add_station(&self, station: &Station) -> Result<(), StoreError>;

    /// Inserts or overwrites many stations in one transaction: all or nothing.
    async fn upsert_stations(&self, stations: &[Station]) -> Result<UpsertCounts, StoreError>;

    /// Removes a station with its port state and health (its history stays). `false` if it did
    /// not exist.
    async fn remove_station(&self, id: &StationId) -> Result<bool, StoreError>;

    /// Every station, ordered by id.
    async fn list_stations(&self) -> Result<Vec<Station>, StoreError>;

    /// A number that changes whenever the station list changes (added, updated, removed).
    async fn catalog_version(&self) -> Result<u64, StoreError>;

    /// One station.
    async fn get_station(&self, id: &StationId) -> Result<Option<Station>, StoreError>;

    /// The stored state of the given stations (those with any stored state; any order).
    async fn station_states(&self, ids: &[StationId]) -> Result<Vec<StationState>, StoreError>;

    /// Applies a batch of writes in one transaction.
    async fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError>;

    /// Status events, newest first.
    async fn events(&self, query: &EventQuery) -> Result<Vec<StatusEvent>, StoreError>;

    /// Number of stored status events (of one station, or all).
    async fn count_events(&self, station_id: Option<&StationId>) -> Result<u64, StoreError>;

    /// Stored readings of a station in a time range, oldest first, at most `query.limit`.
    async fn readings(&self, query: &HistoryQuery) -> Result<Vec<ReadingRow>, StoreError>;

    /// Sessions of a station that started in a time range, newest first.
    async fn sessions(&self, query: &HistoryQuery) -> Result<Vec<SessionRow>, StoreError>;

    /// Lengths in seconds of the ended sessions of a station (or of the fleet) that started at
    /// or after `since`, the most recent first, at most `limit`.
    async fn session_lengths(
        &self,
        station_id: Option<&StationId>,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<u32>, StoreError>;

    /// The hourly totals of a station (or of the fleet) for hours in `[from, to)`, oldest first.
    async fn hours(
        &self,
        station_id: Option<&StationId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourRow>, StoreError>;

    /// Each station's totals over the hours in `[from, to)` (stations with any).
    async fn station_totals(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(StationId, HourTotals)>, StoreError>;

    /// The alerts' tables (channels, rules, outbox).
    fn alerts(&self) -> &dyn AlertStore;

    /// The tables of access control (API tokens, the audit log).
    fn access(&self) -> &dyn AccessStore;

    /// Records that cluster instance `id` reached the cluster's Redis at `at`, without a break
    /// since `since`.
    async fn record_redis_seen(
        &self,
        id: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Whether a cluster instance other than `id` has reached the cluster's Redis without a
    /// break from `since` (or earlier) to after `after`.
    async fn redis_seen_elsewhere(
        &self,
        id: &str,
        since: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The stored password hash of every OCPP charge point that has one.
    async fn charger_passwords(&self) -> Result<Vec<(StationId, String)>, StoreError>;

    /// Stores (or, with `None`, removes) the password hash of an OCPP charge point.
    async fn set_charger_password(
        &self,
        id: &StationId,
        hash: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The security profile of every OCPP charge point set above 1 (2: TLS; 3: TLS with
    /// its client certificate).
    async fn charger_profiles(&self) -> Result<Vec<(StationId, u8)>, StoreError>;

    /// Stores the security profile of an OCPP charge point (1, the default, removes its row).
    async fn set_charger_profile(&self, id: &StationId, profile: u8) -> Result<(), StoreError>;

    /// Stores records of the registry of OCPP charge points (each replaces its charge point's).
    async fn write_charge_points(&self, records: &[ChargePointRecord]) -> Result<(), StoreError>;

    /// Every record of the registry of OCPP charge points.
    async fn charge_points(&self) -> Result<Vec<ChargePointRecord>, StoreError>;

    /// Appends frames of the chargers' message logs.
    async fn write_ocpp_messages(&self, frames: &[StoredFrame]) -> Result<(), StoreError>;

    /// A charger's stored frames after id `after`: the newest `limit`, oldest first.
    async fn ocpp_messages(
        &self,
        id: &StationId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredFrame>, StoreError>;

    /// Deletes at most `chunk` rows of `what` older than `before`; returns how many went.
    async fn prune(
        &self,
        what: Prunable,
        before: DateTime<Utc>,
        chunk: u32,
    ) -> Result<u64, StoreError>;
}

/// History that retention deletes (hourly roll-ups are kept for good).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prunable {
    /// Raw readings.
    Readings,
    /// Status events.
    Events,
    /// Sessions, by when they started.
    Sessions,
    /// The audit log.
    Audit,
    /// The chargers' message logs kept in the database.
    OcppMessages,
}

impl Prunable {
    /// All of them.
    pub const ALL: [Prunable; 5] = [
        Prunable::Readings,
        Prunable::Events,
        Prunable::Sessions,
        Prunable::Audit,
        Prunable::OcppMessages,
    ];

    /// The table's name.
    pub fn table(self) -> &'static str {
        self.definition().name
    }

    /// The table and the time column that ages its rows.
    pub(crate) fn definition(self) -> &'static statements::Table {
        match self {
            Prunable::Readings => &<ReadingRow as record::Record>::TABLE,
            Prunable::Events => &<StatusEvent as record::Record>::TABLE,
            Prunable::Sessions => &<SessionRow as record::Record>::TABLE,
            Prunable::Audit => &<crate::model::access::AuditEntry as record::Record>::TABLE,
            Prunable::OcppMessages => &<crate::model::ocpp::StoredFrame as record::Record>::TABLE,
        }
    }

    /// The time column that ages its rows.
    pub(crate) fn aged_by(self) -> &'static str {
        match self {
            Prunable::Readings | Prunable::Events | Prunable::Audit | Prunable::OcppMessages => {
                "at"
            }
            Prunable::Sessions => "started_at",
        }
    }
}

/// Opens the store named by a database URL (`mysql://…`, `mariadb://…` or `sqlite://…`).
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("sqlite") => Ok(Arc::new(SqliteStore::connect(url, max_connections).await?)),
        Some("mysql" | "mariadb") => Ok(Arc::new(MySqlStore::connect(url, max_connections)?)),
        _ => Err(StoreError::Config(format!(
            "{:?} is not a database URL csm can use; write mysql://user:password@host:3306/database or sqlite://path/to/file.db",
            redact_url(url)
        ))),
    }
}
