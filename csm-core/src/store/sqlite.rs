//! The SQLite adapter: the embedded default (`sqlite://csm.db`). WAL mode and a busy timeout so
//! the server's readers and the batch writer do not block each other.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use super::StoreError;
use super::rows::{Dialect, LOOKUP_CHUNK, impl_store, in_transaction};
use crate::model::{Station, StationId, StationState, StatusEvent};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    target: String,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by `url` (`sqlite://path.db`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Config(format!(
                    "{url:?} is not a SQLite URL csm can open ({e}); write sqlite://path/to/file.db"
                ))
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let target = options.get_filename().display().to_string();
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Unavailable {
                backend: "sqlite",
                target: target.clone(),
                doing: "opening the database file",
                source,
            })?;
        Ok(Self { pool, target })
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                target: self.target.clone(),
                source,
            })
    }

    fn error(&self, doing: &'static str, source: sqlx::Error) -> StoreError {
        if super::is_transient_sqlx(&source) {
            StoreError::Unavailable {
                backend: "sqlite",
                target: self.target.clone(),
                doing,
                source,
            }
        } else {
            StoreError::Query { doing, source }
        }
    }
}

impl_store!(SqliteStore, Sqlite, Dialect::Sqlite);
