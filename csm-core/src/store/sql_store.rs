//! The one implementation of [`Store`], over sqlx, for MySQL/MariaDB and SQLite alike: the SQL
//! comes from [`statements`](super::statements), the values from [`rows`](super::rows), and
//! what differs between the two backends (connecting, migrations, which errors are transient)
//! from [`Backend`], implemented in `mysql.rs` and `sqlite.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Acquire, Pool, Transaction};

use super::kept::Kept;
use super::record::Record;
use super::rows::{self, StationRow};
use super::sql::{Sql, Statement, shared_statement, statement};
use super::statements::{self, Dialect, LOOKUP_CHUNK, placeholder_list};
use super::{EventQuery, PortStateRow, Prunable, Store, StoreError, UpsertCounts, WriteBatch};
use crate::error::InvalidInput;
use crate::model::history::{HistoryQuery, HourRow, HourTotals, ReadingRow, RollUp, SessionRow};
use crate::model::ocpp::ChargePointRecord;
use crate::model::{Station, StationHealth, StationId, StationState, StatusEvent};

/// What a backend adds to the shared SQL.
pub trait Backend: Sql + sqlx::Database<Connection: sqlx::migrate::Migrate> {
    /// How the backend spells what differs.
    const DIALECT: Dialect;

    /// The backend's migrations (`migrations/<backend>`).
    fn migrator() -> &'static sqlx::migrate::Migrator;

    /// Prepares the database before its migrations run (MySQL: creates it if missing).
    fn prepare(store: &SqlStore<Self>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether an error of the database may go away on retry (busy, locked, connection lost).
    fn is_transient(error: &sqlx::Error) -> bool;

    /// Rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// The key the database gave the row an insert made.
    fn last_insert_id(result: &Self::QueryResult) -> u64;
}

/// A store in a MySQL/MariaDB or SQLite database ([`super::MySqlStore`],
/// [`super::SqliteStore`]).
#[derive(Debug)]
pub struct SqlStore<DB: Backend> {
    pub(super) pool: Pool<DB>,
    /// Where the database is, without credentials (`host:port/db`, a file).
    pub(super) target: String,
    /// MySQL: the server URL without a database and the database's name, to create it.
    pub(super) server: Option<(url::Url, String)>,
    /// MySQL: the connection the batch writer keeps, so that its multi-row statements are
    /// prepared on one connection, not on each of the pool's in turn (MySQL answers a prepare
    /// with a definition of every parameter: up to 2,048 for one statement).
    pub(super) writer: Arc<Kept<DB>>,
    /// The connection kept for the statements made every second or so, whatever the load:
    /// the cluster's record that this instance reaches Redis, the alert worker's look at its
    /// outbox.
    pub(super) housekeeping: Arc<Kept<DB>>,
}

impl<DB: Backend> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            target: self.target.clone(),
            server: self.server.clone(),
            writer: Arc::clone(&self.writer),
            housekeeping: Arc::clone(&self.housekeeping),
        }
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// The error of a failed call while `doing`: unavailable when a retry may help.
    /// `conflict` when the driver says a unique key was violated, else the driver's error.
    pub(super) fn unique(
        &self,
        doing: &'static str,
        source: sqlx::Error,
        conflict: impl FnOnce() -> StoreError,
    ) -> StoreError {
        match &source {
            sqlx::Error::Database(db) if db.is_unique_violation() => conflict(),
            _ => self.error(doing, source),
        }
    }

    pub(super) fn error(&self, doing: &'static str, source: sqlx::Error) -> StoreError {
        if super::is_transient_sqlx(&source) || DB::is_transient(&source) {
            StoreError::Unavailable {
                backend: DB::DIALECT.name(),
                target: self.target.clone(),
                doing,
                source,
            }
        } else {
            StoreError::Query { doing, source }
        }
    }

    /// Starts a transaction; end it with [`SqlStore::finish`].
    pub(super) async fn begin(
        &self,
        doing: &'static str,
    ) -> Result<Transaction<'static, DB>, StoreError> {
        // Boxed: borrowing a connection (and perhaps connecting) is a future of kilobytes,
        // which every caller's future would otherwise hold, and move at each call.
        Box::pin(self.pool.begin())
            .await
            .map_err(|e| self.error(doing, e))
    }

    /// Commits a transaction whose work succeeded; after an error, rolls it back at once, so
    /// the connection does not go back to the pool inside an open transaction that would hold
    /// its locks until the connection is next used.
    pub(super) async fn finish<T>(
        &self,
        tx: Transaction<'_, DB>,
        work: Result<T, StoreError>,
        doing: &'static str,
    ) -> Result<T, StoreError> {
        match work {
            Ok(value) => {
                tx.commit().await.map_err(|e| self.error(doing, e))?;
                Ok(value)
            }
            Err(error) => {
                let _ = tx.rollback().await;
                Err(error)
            }
        }
    }

    /// Writes `rows` of `table` in multi-row statements of a few fixed sizes.
    pub(super) async fn insert_rows<R: Record>(
        &self,
        tx: &mut Transaction<'_, DB>,
        rows: &[R],
        doing: &'static str,
    ) -> Result<(), StoreError> {
        for chunk in DB::DIALECT.shaped_chunks(rows) {
            let insert = chunk.iter().fold(
                shared_statement(DB::DIALECT.shared_insert::<R>(chunk.len())),
                |q, row| row.bind::<DB>(q),
            );
            DB::execute(insert, &mut **tx)
                .await
                .map_err(|e| self.error(doing, e))?;
        }
        Ok(())
    }

    /// Rows of a query on the pool.
    pub(super) async fn fetch(
        &self,
        query: Statement<DB>,
        doing: &'static str,
    ) -> Result<Vec<DB::Row>, StoreError> {
        DB::fetch(query, &self.pool)
            .await
            .map_err(|e| self.error(doing, e))
    }

    /// Runs a statement made every second or so on the kept housekeeping connection (on one of
    /// the pool's while another call has it).
    pub(super) async fn execute_kept(
        &self,
        query: Statement<DB>,
        doing: &'static str,
    ) -> Result<u64, StoreError> {
        let done = match self.housekeeping.try_lock(&self.pool) {
            Some(mut held) => {
                let connection = held
                    .connection(&self.pool)
                    .await
                    .map_err(|e| self.error(doing, e))?;
                let done = DB::execute(query, connection).await;
                held.done(done.is_ok());
                done
            }
            None => DB::execute_on(query, &self.pool).await,
        };
        done.map(|done| DB::rows_affected(&done))
            .map_err(|e| self.error(doing, e))
    }

    /// Bumps the catalogue version, so every reader reloads the station list.
    async fn bump_catalog(
        &self,
        tx: &mut Transaction<'static, DB>,
        doing: &'static str,
    ) -> Result<(), StoreError> {
        let bump = statement("UPDATE catalog_meta SET version = version + 1 WHERE id = 1");
        DB::execute(bump, &mut **tx)
            .await
            .map_err(|e| self.error(doing, e))?;
        Ok(())
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// Writes a batch's rows in `tx` and commits it.
    async fn write_batch(
        &self,
        mut tx: Transaction<'_, DB>,
        batch: &WriteBatch,
        doing: &'static str,
    ) -> Result<(), StoreError> {
        let work = async {
            let tx = &mut tx;
            self.insert_rows(tx, &batch.ports, "writing port states")
                .await?;
            self.insert_rows(tx, &batch.events, "writing status events")
                .await?;
            self.insert_rows(tx, &batch.health, "writing station health")
                .await?;
            self.write_history(tx, batch).await
        }
        .await;
        self.finish(tx, work, doing).await
    }

    /// The history rows of a batch: readings, sessions and the hours they add to.
    async fn write_history(
        &self,
        tx: &mut Transaction<'_, DB>,
        batch: &WriteBatch,
    ) -> Result<(), StoreError> {
        self.insert_rows(tx, &batch.readings, "writing readings")
            .await?;
        self.insert_rows(tx, &batch.sessions, "writing sessions")
            .await?;
        if batch.hours.is_empty() {
            return Ok(());
        }
        let roll_up = RollUp::of(&batch.hours);
        let doing = "adding to hourly statistics";
        self.insert_rows(tx, &roll_up.ports, doing).await?;
        self.insert_rows(tx, &roll_up.stations, doing).await?;
        self.insert_rows(tx, &roll_up.fleet, doing).await
    }
}

/// `… AND station_id = ?` when there is a station, with its id bound after `statement`'s.
fn and_station(sql: &mut String, station_id: Option<&StationId>) {
    if station_id.is_some() {
        sql.push_str(" AND station_id = ?");
    }
}

/// `SELECT columns FROM table WHERE station_id IN (?, …)` of a record's table, with the ids
/// bound.
fn rows_of_stations<DB: Sql, R: Record>(ids: &[StationId]) -> Statement<DB> {
    let sql = format!(
        "SELECT {} FROM {} WHERE station_id IN {}",
        R::column_list(),
        R::TABLE.name,
        placeholder_list(ids.len())
    );
    ids.iter()
        .fold(statement(sql), |q, id| DB::bind_text(q, Some(id.as_str())))
}

/// Binds a history query's station, port, range and limit after `sql`'s placeholders.
fn bind_history_query<DB: Sql>(sql: String, query: &HistoryQuery) -> Statement<DB> {
    let mut select = DB::bind_text(statement(sql), Some(query.station_id.as_str()));
    if let Some(port) = query.port {
        select = DB::bind_u32(select, port);
    }
    select = DB::bind_time(select, Some(query.from));
    select = DB::bind_time(select, Some(query.to));
    DB::bind_int(select, Some(i64::from(query.limit)))
}

/// Refuses a list with a bad station or an id twice, naming the entry.
fn check_import(stations: &[Station]) -> Result<(), InvalidInput> {
    let mut seen = HashMap::new();
    for (index, station) in stations.iter().enumerate() {
        station
            .validate()
            .map_err(|e| e.at(format_args!("station {} ({})", index + 1, station.id)))?;
        if let Some(first) = seen.insert(station.id.as_str(), index) {
            return Err(InvalidInput::new(
                "station id",
                format!(
                    "{} appears twice (entries {} and {})",
                    station.id,
                    first + 1,
                    index + 1
                ),
            ));
        }
    }
    Ok(())
}

#[async_trait]
impl<DB: Backend> Store for SqlStore<DB> {
    fn backend(&self) -> &'static str {
        DB::DIALECT.name()
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn alerts(&self) -> &dyn super::AlertStore {
        self
    }

    fn access(&self) -> &dyn super::AccessStore {
        self
    }

    async fn charger_passwords(&self) -> Result<Vec<(StationId, String)>, StoreError> {
        self.read_charger_passwords().await
    }

    async fn set_charger_password(
        &self,
        id: &StationId,
        hash: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write_charger_password(id, hash).await
    }

    async fn charger_profiles(&self) -> Result<Vec<(StationId, u8)>, StoreError> {
        self.read_charger_profiles().await
    }

    async fn set_charger_profile(&self, id: &StationId, profile: u8) -> Result<(), StoreError> {
        self.write_charger_profile(id, profile).await
    }

    async fn write_charge_points(&self, records: &[ChargePointRecord]) -> Result<(), StoreError> {
        self.insert_charge_points(records).await
    }

    async fn charge_points(&self) -> Result<Vec<ChargePointRecord>, StoreError> {
        self.read_charge_points().await
    }

    async fn write_ocpp_messages(
        &self,
        frames: &[crate::model::ocpp::StoredFrame],
    ) -> Result<(), StoreError> {
        self.insert_ocpp_messages(frames).await
    }

    async fn ocpp_messages(
        &self,
        id: &StationId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<crate::model::ocpp::StoredFrame>, StoreError> {
        self.read_ocpp_messages(id, after, limit).await
    }

    async fn record_redis_seen(
        &self,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.write_redis_seen(id, at, since).await
    }

    async fn redis_seen_elsewhere(
        &self,
        id: &str,
        since: chrono::DateTime<chrono::Utc>,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        self.read_redis_seen_elsewhere(id, since, after).await
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        DB::prepare(self).await?;
        DB::migrator()
            .run(&self.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                target: self.target.clone(),
                source,
            })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        DB::execute_on(statement("SELECT 1"), &self.pool)
            .await
            .map_err(|e| self.error("checking the connection", e))?;
        Ok(())
    }

    async fn add_station(&self, station: &Station) -> Result<(), StoreError> {
        station.validate()?;
        let row = StationRow {
            station: station.clone(),
            written_at: crate::model::now(),
        };
        let doing = "adding a station";
        let mut tx = self.begin(doing).await?;
        let work = async {
            let tx = &mut tx;
            let insert = format!(
                "INSERT INTO stations ({}) VALUES {}",
                StationRow::column_list(),
                placeholder_list(StationRow::COLUMNS.len())
            );
            DB::execute(row.bind::<DB>(statement(insert)), &mut **tx)
                .await
                .map_err(|e| self.unique(doing, e, || StoreError::Conflict(station.id.clone())))?;
            self.bump_catalog(tx, doing).await
        }
        .await;
        self.finish(tx, work, doing).await
    }

    async fn upsert_stations(&self, stations: &[Station]) -> Result<UpsertCounts, StoreError> {
        check_import(stations)?;
        let now = crate::model::now();
        let rows: Vec<StationRow> = stations
            .iter()
            .map(|station| StationRow {
                station: station.clone(),
                written_at: now,
            })
            .collect();
        let doing = "importing stations";
        let mut tx = self.begin(doing).await?;
        let work = async {
            let tx = &mut tx;
            let mut existing = 0_u64;
            for chunk in stations.chunks(DB::DIALECT.rows_per_statement::<StationRow>()) {
                let sql = format!(
                    "SELECT COUNT(*) AS n FROM stations WHERE id IN {}",
                    placeholder_list(chunk.len())
                );
                let count = chunk
                    .iter()
                    .fold(statement(sql), |q, s| DB::bind_text(q, Some(s.id.as_str())));
                let found = DB::fetch_in(count, &mut **tx)
                    .await
                    .map_err(|e| self.error(doing, e))?;
                existing += found
                    .first()
                    .map(rows::count::<DB>)
                    .transpose()?
                    .unwrap_or(0);
            }
            self.insert_rows(tx, &rows, doing).await?;
            self.bump_catalog(tx, doing).await?;
            Ok(UpsertCounts {
                added: stations.len() as u64 - existing,
                updated: existing,
            })
        }
        .await;
        self.finish(tx, work, doing).await
    }

    async fn remove_station(&self, id: &StationId) -> Result<bool, StoreError> {
        let doing = "removing a station";
        let delete = |sql: &'static str| DB::bind_text(statement(sql), Some(id.as_str()));
        let mut tx = self.begin(doing).await?;
        let work = async {
            let tx = &mut tx;
            let done = DB::execute(delete("DELETE FROM stations WHERE id = ?"), &mut **tx)
                .await
                .map_err(|e| self.error(doing, e))?;
            // Its history stays; its port state and health go.
            for sql in [
                "DELETE FROM port_states WHERE station_id = ?",
                "DELETE FROM station_health WHERE station_id = ?",
                "DELETE FROM ocpp_passwords WHERE station_id = ?",
                "DELETE FROM ocpp_security WHERE station_id = ?",
                "DELETE FROM ocpp_charge_points WHERE station_id = ?",
            ] {
                DB::execute(delete(sql), &mut **tx)
                    .await
                    .map_err(|e| self.error(doing, e))?;
            }
            self.bump_catalog(tx, doing).await?;
            Ok(DB::rows_affected(&done) > 0)
        }
        .await;
        self.finish(tx, work, doing).await
    }

    async fn list_stations(&self) -> Result<Vec<Station>, StoreError> {
        let query = format!(
            "SELECT {} FROM stations ORDER BY id",
            StationRow::column_list()
        );
        let found = self.fetch(statement(query), "listing stations").await?;
        found
            .iter()
            .map(|row| StationRow::from_row::<DB>(row).map(|r| r.station))
            .collect()
    }

    async fn catalog_version(&self) -> Result<u64, StoreError> {
        let query = statement("SELECT CAST(version AS SIGNED) AS n FROM catalog_meta WHERE id = 1");
        let found = self.fetch(query, "reading the catalogue version").await?;
        Ok(found
            .first()
            .map(rows::count::<DB>)
            .transpose()?
            .unwrap_or(0))
    }

    async fn get_station(&self, id: &StationId) -> Result<Option<Station>, StoreError> {
        let query = format!(
            "SELECT {} FROM stations WHERE id = ?",
            StationRow::column_list()
        );
        let query = DB::bind_text(statement(query), Some(id.as_str()));
        let found = self.fetch(query, "reading a station").await?;
        found
            .first()
            .map(|row| StationRow::from_row::<DB>(row).map(|r| r.station))
            .transpose()
    }

    async fn station_states(&self, ids: &[StationId]) -> Result<Vec<StationState>, StoreError> {
        let mut ports = Vec::new();
        let mut health = Vec::new();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let found = self
                .fetch(
                    rows_of_stations::<DB, PortStateRow>(chunk),
                    "reading port states",
                )
                .await?;
            for row in &found {
                ports.push(PortStateRow::from_row::<DB>(row)?);
            }
            let found = self
                .fetch(
                    rows_of_stations::<DB, StationHealth>(chunk),
                    "reading station health",
                )
                .await?;
            for row in &found {
                health.push(StationHealth::from_row::<DB>(row)?);
            }
        }
        Ok(rows::assemble_states(ports, health))
    }

    async fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let doing = "writing a batch";
        if DB::DIALECT == Dialect::Sqlite {
            let tx = self.begin(doing).await?;
            return self.write_batch(tx, batch, doing).await;
        }
        // After a failure the batch writer keeps the rows and tries again, on a fresh
        // connection.
        let mut held = self.writer.lock(&self.pool).await;
        let connection = held
            .connection(&self.pool)
            .await
            .map_err(|e| self.error(doing, e))?;
        let tx = connection.begin().await.map_err(|e| self.error(doing, e))?;
        let written = self.write_batch(tx, batch, doing).await;
        held.done(written.is_ok());
        written
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<StatusEvent>, StoreError> {
        let mut sql = format!(
            "SELECT {} FROM status_events WHERE 1 = 1",
            StatusEvent::column_list()
        );
        if query.station_id.is_some() {
            sql.push_str(" AND station_id = ?");
        }
        if query.port.is_some() {
            sql.push_str(" AND port = ?");
        }
        if query.since.is_some() {
            sql.push_str(" AND at >= ?");
        }
        if query.until.is_some() {
            sql.push_str(" AND at < ?");
        }
        sql.push_str(" ORDER BY at DESC, port DESC LIMIT ?");
        let mut select = statement(sql);
        if let Some(station) = &query.station_id {
            select = DB::bind_text(select, Some(station.as_str()));
        }
        if let Some(port) = query.port {
            select = DB::bind_u32(select, port);
        }
        if let Some(since) = query.since {
            select = DB::bind_time(select, Some(since));
        }
        if let Some(until) = query.until {
            select = DB::bind_time(select, Some(until));
        }
        select = DB::bind_int(select, Some(i64::from(query.limit)));
        let found = self.fetch(select, "reading status events").await?;
        found.iter().map(StatusEvent::from_row::<DB>).collect()
    }

    async fn readings(&self, query: &HistoryQuery) -> Result<Vec<ReadingRow>, StoreError> {
        let mut sql = format!(
            "SELECT {} FROM port_readings WHERE station_id = ?",
            ReadingRow::column_list()
        );
        if query.port.is_some() {
            sql.push_str(" AND port = ?");
        }
        sql.push_str(" AND at >= ? AND at < ? ORDER BY at, port LIMIT ?");
        let found = self
            .fetch(bind_history_query(sql, query), "reading history")
            .await?;
        found.iter().map(ReadingRow::from_row::<DB>).collect()
    }

    async fn sessions(&self, query: &HistoryQuery) -> Result<Vec<SessionRow>, StoreError> {
        let mut sql = format!(
            "SELECT {} FROM sessions WHERE station_id = ?",
            SessionRow::column_list()
        );
        if query.port.is_some() {
            sql.push_str(" AND port = ?");
        }
        sql.push_str(
            " AND started_at >= ? AND started_at < ? ORDER BY started_at DESC, port LIMIT ?",
        );
        let found = self
            .fetch(bind_history_query(sql, query), "reading sessions")
            .await?;
        found.iter().map(SessionRow::from_row::<DB>).collect()
    }

    async fn session_lengths(
        &self,
        station_id: Option<&StationId>,
        since: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<u32>, StoreError> {
        let mut sql =
            String::from("SELECT duration_secs FROM sessions WHERE duration_secs IS NOT NULL");
        and_station(&mut sql, station_id);
        sql.push_str(" AND started_at >= ? ORDER BY started_at DESC LIMIT ?");
        let mut select = statement(sql);
        if let Some(id) = station_id {
            select = DB::bind_text(select, Some(id.as_str()));
        }
        select = DB::bind_time(select, Some(since));
        select = DB::bind_int(select, Some(i64::from(limit)));
        let found = self.fetch(select, "reading session lengths").await?;
        found.iter().map(rows::duration::<DB>).collect()
    }

    async fn hours(
        &self,
        station_id: Option<&StationId>,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<HourRow>, StoreError> {
        let table = if station_id.is_some() {
            <(StationId, HourRow)>::TABLE.name
        } else {
            HourRow::TABLE.name
        };
        let mut sql = format!(
            "SELECT hour, {} FROM {table} WHERE hour >= ? AND hour < ?",
            statements::summed_totals()
        );
        and_station(&mut sql, station_id);
        sql.push_str(" GROUP BY hour ORDER BY hour");
        let mut select = DB::bind_time(statement(sql), Some(from));
        select = DB::bind_time(select, Some(to));
        if let Some(id) = station_id {
            select = DB::bind_text(select, Some(id.as_str()));
        }
        let found = self.fetch(select, "reading hourly statistics").await?;
        found.iter().map(HourRow::from_row::<DB>).collect()
    }

    async fn station_totals(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(StationId, HourTotals)>, StoreError> {
        let sql = format!(
            "SELECT station_id, {} FROM station_hours WHERE hour >= ? AND hour < ? GROUP BY station_id",
            statements::summed_totals()
        );
        let select = DB::bind_time(DB::bind_time(statement(sql), Some(from)), Some(to));
        let found = self.fetch(select, "reading stations' statistics").await?;
        found.iter().map(rows::station_totals::<DB>).collect()
    }

    async fn prune(
        &self,
        what: Prunable,
        before: chrono::DateTime<chrono::Utc>,
        chunk: u32,
    ) -> Result<u64, StoreError> {
        let sql = DB::DIALECT.delete_before(what.definition(), what.aged_by(), chunk);
        let delete = DB::bind_time(statement(sql), Some(before));
        let done = DB::execute_on(delete, &self.pool)
            .await
            .map_err(|e| self.error("pruning history", e))?;
        Ok(DB::rows_affected(&done))
    }

    async fn count_events(&self, station_id: Option<&StationId>) -> Result<u64, StoreError> {
        let query = match station_id {
            Some(id) => DB::bind_text(
                statement("SELECT COUNT(*) AS n FROM status_events WHERE station_id = ?"),
                Some(id.as_str()),
            ),
            None => statement("SELECT COUNT(*) AS n FROM status_events"),
        };
        let found = self.fetch(query, "counting status events").await?;
        Ok(found
            .first()
            .map(rows::count::<DB>)
            .transpose()?
            .unwrap_or(0))
    }
}
