//! The SQLite backend: the embedded default (`sqlite://csm.db`). WAL mode and a busy timeout so
//! the server's readers and the batch writer do not block each other.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use super::StoreError;
use super::sql_store::{Backend, SqlStore};
use super::statements::Dialect;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqlStore<Sqlite> {
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
            .busy_timeout(Duration::from_secs(5))
            .statement_cache_capacity(super::statements::STATEMENTS_KEPT);
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
        Ok(Self {
            pool,
            target,
            server: None,
            writer: Default::default(),
            housekeeping: Default::default(),
        })
    }
}

impl Backend for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn prepare(_: &SqlStore<Self>) -> Result<(), StoreError> {
        // The file is made when the pool connects.
        Ok(())
    }

    fn is_transient(error: &sqlx::Error) -> bool {
        // Busy or locked, with their extended codes.
        matches!(error, sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("5" | "6" | "261" | "262" | "517")))
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn last_insert_id(result: &SqliteQueryResult) -> u64 {
        u64::try_from(result.last_insert_rowid()).unwrap_or_default()
    }
}
