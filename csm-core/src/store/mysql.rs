//! The MySQL/MariaDB adapter for deployments. The pool connects lazily, so a database that is
//! down at start-up is reported by the first query (with host and port) instead of a hang.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Connection, MySql, MySqlConnection, MySqlPool};

use super::StoreError;
use super::rows::{Dialect, LOOKUP_CHUNK, impl_store, in_transaction};
use crate::error::redact_url;
use crate::model::{Station, StationId, StationState, StatusEvent};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

/// A store in a MySQL or MariaDB database.
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    /// `host:port/database`, for messages.
    target: String,
    /// The URL without its database, for creating the database.
    server_url: url::Url,
    database: String,
}

impl MySqlStore {
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
            .charset("utf8mb4");
        let pool = MySqlPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let mut server_url = parsed;
        server_url.set_path("");
        Ok(Self {
            pool,
            target: format!("{host}:{port}/{database}"),
            server_url,
            database,
        })
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        let options = MySqlConnectOptions::from_str(self.server_url.as_str())
            .map_err(|e| StoreError::Config(e.to_string()))?
            .charset("utf8mb4");
        let mut server = MySqlConnection::connect_with(&options)
            .await
            .map_err(|e| self.error("connecting to create the database", e))?;
        // The name was checked in `connect` to hold only [A-Za-z0-9_$].
        let create = format!(
            "CREATE DATABASE IF NOT EXISTS `{}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            self.database
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&mut server)
            .await
            .map_err(|e| self.error("creating the database", e))?;
        let _ = server.close().await;
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
                backend: "mysql",
                target: self.target.clone(),
                doing,
                source,
            }
        } else {
            StoreError::Query { doing, source }
        }
    }
}

impl_store!(MySqlStore, MySql, Dialect::MySql);
