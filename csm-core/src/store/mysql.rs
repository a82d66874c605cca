//! The MySQL/MariaDB backend for deployments. The pool connects lazily, so a database that is
//! down at start-up is reported by the first query (with host and port) instead of a hang.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPoolOptions, MySqlQueryResult};
use sqlx::{Connection, MySql, MySqlConnection};

use super::StoreError;
use super::sql_store::{Backend, SqlStore};
use super::statements::Dialect;
use crate::secret::redact_url;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

impl SqlStore<MySql> {
    /// Prepares a pool for `url` (`mysql://user:password@host:3306/database`); nothing is
    /// connected until the first query.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let bad_url = |why: String| {
            StoreError::Config(format!(
                "{:?} is not a MySQL URL csm can use ({why}); write mysql://user:password@host:3306/database",
                redact_url(url)
            ))
        };
        let mut parsed = url::Url::parse(url).map_err(|e| bad_url(e.to_string()))?;
        if parsed.scheme() == "mariadb" {
            parsed
                .set_scheme("mysql")
                .map_err(|()| bad_url("cannot use its scheme".into()))?;
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| bad_url("it names no host".into()))?
            .to_owned();
        let port = parsed.port().unwrap_or(3306);
        let database = parsed.path().trim_start_matches('/').to_owned();
        if database.is_empty() {
            return Err(bad_url("it names no database".into()));
        }
        if !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            return Err(bad_url(format!(
                "database name {database:?} may only contain letters, digits, _ and $"
            )));
        }
        let options = MySqlConnectOptions::from_str(parsed.as_str())
            .map_err(|e| bad_url(e.to_string()))?
            .charset("utf8mb4")
            .statement_cache_capacity(super::statements::STATEMENTS_KEPT);
        let pool = MySqlPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let mut server_url = parsed;
        server_url.set_path("");
        Ok(Self {
            pool,
            target: format!("{host}:{port}/{database}"),
            server: Some((server_url, database)),
            writer: Default::default(),
            housekeeping: Default::default(),
        })
    }

    /// Creates the database if it does not exist yet.
    async fn create_database(&self) -> Result<(), StoreError> {
        let Some((server_url, database)) = &self.server else {
            return Ok(());
        };
        let options = MySqlConnectOptions::from_str(server_url.as_str())
            .map_err(|e| StoreError::Config(e.to_string()))?
            .charset("utf8mb4");
        let mut server = MySqlConnection::connect_with(&options)
            .await
            .map_err(|e| self.error("connecting to create the database", e))?;
        // The name was checked in `connect` to hold only [A-Za-z0-9_$].
        let create = format!(
            "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&mut server)
            .await
            .map_err(|e| self.error("creating the database", e))?;
        let _ = server.close().await;
        Ok(())
    }
}

impl Backend for MySql {
    const DIALECT: Dialect = Dialect::MySql;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn prepare(store: &SqlStore<Self>) -> Result<(), StoreError> {
        store.create_database().await
    }

    fn is_transient(error: &sqlx::Error) -> bool {
        // Lock wait timeout, deadlock, server shutdown, connection killed, server gone away,
        // connection lost.
        matches!(error, sqlx::Error::Database(db)
            if db.try_downcast_ref::<MySqlDatabaseError>()
                .is_some_and(|e| matches!(e.number(), 1205 | 1213 | 1053 | 1927 | 2006 | 2013)))
    }

    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }

    fn last_insert_id(result: &MySqlQueryResult) -> u64 {
        result.last_insert_id()
    }
}
