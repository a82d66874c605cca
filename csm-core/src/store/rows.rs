//! SQL shared by the MySQL and SQLite adapters: row types, the dialect differences, and the
//! `impl_store!` macro that implements [`Store`](super::Store) for both. The backends differ only
//! in connection setup, migrations, upsert syntax and bind limits, so one body serves both and
//! the contract tests prove it on each.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::{PortReading, PortState, Station, StationId, StationState, StatusEvent};

/// SQL differences between the backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    MySql,
    Sqlite,
}

impl Dialect {
    pub(super) fn name(self) -> &'static str {
        match self {
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// Bind parameters one statement may carry.
    fn max_binds(self) -> usize {
        match self {
            Dialect::MySql => 65_535,
            Dialect::Sqlite => 32_766,
        }
    }

    /// Rows per multi-row statement for a table of `columns` bound columns: under the bind limit
    /// and small enough that one statement stays a few hundred kilobytes.
    pub(super) fn rows_per_statement(self, columns: usize) -> usize {
        (self.max_binds() / columns).min(1_024)
    }

    /// `rows` in multi-row statements of a few fixed sizes (powers of four, up to
    /// [`rows_per_statement`](Self::rows_per_statement)), largest first. A table then needs at
    /// most six distinct statements, each prepared once per connection and reused; chunks of
    /// any size would make the database prepare a new statement of up to a thousand rows for
    /// nearly every batch.
    pub(super) fn shaped_chunks<T>(self, rows: &[T], columns: usize) -> impl Iterator<Item = &[T]> {
        let mut largest = 1;
        while largest * 4 <= self.rows_per_statement(columns) {
            largest *= 4;
        }
        let mut rest = rows;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let mut size = largest;
            while size > rest.len() {
                size /= 4;
            }
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            Some(chunk)
        })
    }

    pub(super) fn insert_ignore(self) -> &'static str {
        match self {
            Dialect::MySql => "INSERT IGNORE INTO",
            Dialect::Sqlite => "INSERT OR IGNORE INTO",
        }
    }

    /// The tail of an `INSERT` that overwrites `columns` when the row with the same `key` exists.
    pub(super) fn upsert(self, key: &[&str], columns: &[&str]) -> String {
        match self {
            Dialect::MySql => {
                let sets: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect();
                format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
            }
            Dialect::Sqlite => {
                let sets: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    key.join(", "),
                    sets.join(", ")
                )
            }
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct StationRow {
    id: String,
    name: String,
    address: Option<String>,
    lat: Option<f64>,
    lng: Option<f64>,
    vendor: String,
    enabled: bool,
    port_count: u32,
}

impl StationRow {
    pub(super) fn into_station(self) -> Result<Station, StoreError> {
        Ok(Station {
            id: parse_id("stations", &self.id)?,
            name: self.name,
            address: self.address,
            lat: self.lat,
            lng: self.lng,
            vendor: self.vendor,
            enabled: self.enabled,
            port_count: self.port_count,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct PortRow {
    station_id: String,
    port: u32,
    status: String,
    raw_code: Option<String>,
    voltage: Option<f64>,
    current: Option<f64>,
    power: Option<f64>,
    energy_kwh: Option<f64>,
    session_ends_at: Option<DateTime<Utc>>,
    since: DateTime<Utc>,
    observed_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct HealthRow {
    station_id: String,
    last_ok_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    checked_at: DateTime<Utc>,
    failures: u32,
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    station_id: String,
    port: u32,
    old_status: Option<String>,
    new_status: String,
    at: DateTime<Utc>,
}

impl EventRow {
    pub(super) fn into_event(self) -> Result<StatusEvent, StoreError> {
        Ok(StatusEvent {
            station_id: parse_id("status_events", &self.station_id)?,
            port: self.port,
            old: self
                .old_status
                .as_deref()
                .map(|s| parse_status("status_events", s))
                .transpose()?,
            new: parse_status("status_events", &self.new_status)?,
            at: self.at,
        })
    }
}

fn parse_id(table: &'static str, raw: &str) -> Result<StationId, StoreError> {
    StationId::parse(raw).map_err(|e| StoreError::Corrupt {
        table,
        message: e.to_string(),
    })
}

fn parse_status(table: &'static str, raw: &str) -> Result<crate::model::PortStatus, StoreError> {
    raw.parse()
        .map_err(|e: crate::error::InvalidInput| StoreError::Corrupt {
            table,
            message: e.to_string(),
        })
}

/// Builds station states from their port rows and health rows.
pub(super) fn assemble_states(
    ports: Vec<PortRow>,
    health: Vec<HealthRow>,
) -> Result<Vec<StationState>, StoreError> {
    let mut states: HashMap<String, StationState> = HashMap::new();
    for row in health {
        let id = parse_id("station_health", &row.station_id)?;
        states.insert(
            row.station_id,
            StationState {
                station_id: id,
                observed_at: row.last_ok_at,
                checked_at: row.checked_at,
                last_error: row.last_error,
                failures: row.failures,
                ports: Vec::new(),
            },
        );
    }
    for row in ports {
        let state = match states.get_mut(&row.station_id) {
            Some(state) => state,
            None => {
                let id = parse_id("port_states", &row.station_id)?;
                states
                    .entry(row.station_id.clone())
                    .or_insert(StationState {
                        station_id: id,
                        observed_at: Some(row.observed_at),
                        checked_at: row.observed_at,
                        last_error: None,
                        failures: 0,
                        ports: Vec::new(),
                    })
            }
        };
        if state.observed_at.is_none_or(|at| at < row.observed_at) {
            state.observed_at = Some(row.observed_at);
        }
        state.ports.push(PortState {
            reading: PortReading {
                port: row.port,
                status: parse_status("port_states", &row.status)?,
                raw_code: row.raw_code,
                voltage: row.voltage,
                current: row.current,
                power: row.power,
                energy_kwh: row.energy_kwh,
                session_ends_at: row.session_ends_at,
            },
            since: row.since,
        });
    }
    let mut states: Vec<StationState> = states.into_values().collect();
    for state in &mut states {
        state.ports.sort_by_key(|p| p.reading.port);
    }
    Ok(states)
}

/// Station ids per `IN (…)` lookup.
pub(super) const LOOKUP_CHUNK: usize = 100;

pub(super) const PORT_COLUMNS: &str = "station_id, port, status, raw_code, voltage, current, power, energy_kwh, session_ends_at, since, observed_at";
pub(super) const HEALTH_COLUMNS: &str = "station_id, last_ok_at, last_error, checked_at, failures";

/// Runs `$body` (which uses the transaction `$tx`) and commits; on an error it rolls back at
/// once, so the connection does not go back to the pool inside an open transaction that would
/// hold its locks until the connection is next used.
macro_rules! in_transaction {
    ($self:ident, $tx:ident, $doing:expr, $body:block) => {{
        let mut $tx = $self
            .pool
            .begin()
            .await
            .map_err(|e| $self.error($doing, e))?;
        let outcome: Result<_, StoreError> = async { $body }.await;
        match outcome {
            Ok(value) => {
                $tx.commit().await.map_err(|e| $self.error($doing, e))?;
                Ok(value)
            }
            Err(error) => {
                let _ = $tx.rollback().await;
                Err(error)
            }
        }
    }};
}

pub(super) use in_transaction;

/// Multi-row statements stay prepared on each connection (the cache keeps the most recent
/// hundred): preparing one again for every batch costs MariaDB far more than executing it.
///
/// Implements `Store` for an adapter with fields `pool: sqlx::Pool<$db>` and `target: String`
/// and the inherent methods `run_migrations()` and `error(doing, sqlx::Error)`.
macro_rules! impl_store {
    ($store:ty, $db:ty, $dialect:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $dialect.name()
            }

            fn target(&self) -> String {
                self.target.clone()
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                self.run_migrations().await
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.error("checking the connection", e))?;
                Ok(())
            }

            async fn add_station(&self, station: &Station) -> Result<(), StoreError> {
                station.validate()?;
                let now = chrono::Utc::now();
                in_transaction!(self, tx, "adding a station", {
                    let inserted = sqlx::query(
                        "INSERT INTO stations (id, name, address, lat, lng, vendor, enabled, port_count, created_at, updated_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(station.id.as_str())
                    .bind(station.name.trim())
                    .bind(station.address.as_deref())
                    .bind(station.lat)
                    .bind(station.lng)
                    .bind(station.vendor.as_str())
                    .bind(station.enabled)
                    .bind(station.port_count)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                            return Err(StoreError::Conflict(station.id.clone()));
                        }
                        Err(e) => return Err(self.error("adding a station", e)),
                    }
                    sqlx::query("UPDATE catalog_meta SET version = version + 1 WHERE id = 1")
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.error("adding a station", e))?;
                    Ok(())
                })
            }

            async fn upsert_stations(
                &self,
                stations: &[Station],
            ) -> Result<$crate::store::UpsertCounts, StoreError> {
                let mut seen = std::collections::HashMap::new();
                for (index, station) in stations.iter().enumerate() {
                    station
                        .validate()
                        .map_err(|e| e.at(format_args!("station {} ({})", index + 1, station.id)))?;
                    if let Some(first) = seen.insert(station.id.as_str(), index) {
                        return Err($crate::error::InvalidInput::new(
                            "station id",
                            format!(
                                "{} appears twice (entries {} and {})",
                                station.id,
                                first + 1,
                                index + 1
                            ),
                        )
                        .into());
                    }
                }
                let dialect = $dialect;
                let now = chrono::Utc::now();
                in_transaction!(self, tx, "importing stations", {
                    let mut existing = 0_u64;
                    for chunk in stations.chunks(dialect.rows_per_statement(10)) {
                        let mut count = sqlx::QueryBuilder::<$db>::new(
                            "SELECT COUNT(*) FROM stations WHERE id IN (",
                        );
                        let mut ids = count.separated(", ");
                        for station in chunk {
                            ids.push_bind(station.id.as_str());
                        }
                        count.push(")");
                        let (found,): (i64,) = count
                            .build_query_as()
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(|e| self.error("importing stations", e))?;
                        existing += found as u64;

                        let mut insert = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO stations (id, name, address, lat, lng, vendor, enabled, port_count, created_at, updated_at) ",
                        );
                        insert.push_values(chunk, |mut row, station| {
                            row.push_bind(station.id.as_str())
                                .push_bind(station.name.trim())
                                .push_bind(station.address.as_deref())
                                .push_bind(station.lat)
                                .push_bind(station.lng)
                                .push_bind(station.vendor.as_str())
                                .push_bind(station.enabled)
                                .push_bind(station.port_count)
                                .push_bind(now)
                                .push_bind(now);
                        });
                        insert.push(dialect.upsert(
                            &["id"],
                            &["name", "address", "lat", "lng", "vendor", "enabled", "port_count", "updated_at"],
                        ));
                        insert
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| self.error("importing stations", e))?;
                    }
                    sqlx::query("UPDATE catalog_meta SET version = version + 1 WHERE id = 1")
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.error("importing stations", e))?;
                    Ok($crate::store::UpsertCounts {
                        added: stations.len() as u64 - existing,
                        updated: existing,
                    })
                })
            }

            async fn remove_station(&self, id: &StationId) -> Result<bool, StoreError> {
                in_transaction!(self, tx, "removing a station", {
                    let removed = sqlx::query("DELETE FROM stations WHERE id = ?")
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.error("removing a station", e))?
                        .rows_affected();
                    sqlx::query("UPDATE catalog_meta SET version = version + 1 WHERE id = 1")
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.error("removing a station", e))?;
                    for sql in [
                        "DELETE FROM port_states WHERE station_id = ?",
                        "DELETE FROM station_health WHERE station_id = ?",
                    ] {
                        sqlx::query(sql)
                            .bind(id.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| self.error("removing a station", e))?;
                    }
                    Ok(removed > 0)
                })
            }

            async fn list_stations(&self) -> Result<Vec<Station>, StoreError> {
                let rows: Vec<$crate::store::rows::StationRow> = sqlx::query_as(concat!(
                    "SELECT id, name, address, lat, lng, vendor, enabled, port_count ",
                    "FROM stations ORDER BY id"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error("listing stations", e))?;
                rows.into_iter().map(|row| row.into_station()).collect()
            }

            async fn catalog_version(&self) -> Result<u64, StoreError> {
                let (version,): (i64,) = sqlx::query_as("SELECT CAST(version AS SIGNED) FROM catalog_meta WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.error("reading the catalogue version", e))?;
                Ok(version as u64)
            }

            async fn get_station(&self, id: &StationId) -> Result<Option<Station>, StoreError> {
                let row: Option<$crate::store::rows::StationRow> = sqlx::query_as(concat!(
                    "SELECT id, name, address, lat, lng, vendor, enabled, port_count ",
                    "FROM stations WHERE id = ?"
                ))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error("reading a station", e))?;
                row.map(|row| row.into_station()).transpose()
            }

            async fn station_states(
                &self,
                ids: &[StationId],
            ) -> Result<Vec<StationState>, StoreError> {
                let mut ports = Vec::new();
                let mut health = Vec::new();
                // Short IN lists: past ~200 values MariaDB stops looking the keys up in the index
                // and may scan the whole table instead.
                for chunk in ids.chunks(LOOKUP_CHUNK) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM port_states WHERE station_id IN (",
                        $crate::store::rows::PORT_COLUMNS
                    ));
                    let mut list = query.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str());
                    }
                    query.push(")");
                    ports.extend(
                        query
                            .build_query_as::<$crate::store::rows::PortRow>()
                            .fetch_all(&self.pool)
                            .await
                            .map_err(|e| self.error("reading port states", e))?,
                    );
                    let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM station_health WHERE station_id IN (",
                        $crate::store::rows::HEALTH_COLUMNS
                    ));
                    let mut list = query.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str());
                    }
                    query.push(")");
                    health.extend(
                        query
                            .build_query_as::<$crate::store::rows::HealthRow>()
                            .fetch_all(&self.pool)
                            .await
                            .map_err(|e| self.error("reading station health", e))?,
                    );
                }
                $crate::store::rows::assemble_states(ports, health)
            }

            async fn apply(&self, batch: &$crate::store::WriteBatch) -> Result<(), StoreError> {
                if batch.is_empty() {
                    return Ok(());
                }
                let dialect = $dialect;
                in_transaction!(self, tx, "writing a batch", {
                    for chunk in dialect.shaped_chunks(&batch.ports, 11) {
                        let mut insert = sqlx::QueryBuilder::<$db>::new(format!(
                            "INSERT INTO port_states ({}) ",
                            $crate::store::rows::PORT_COLUMNS
                        ));
                        insert.push_values(chunk, |mut row, port| {
                            let reading = &port.state.reading;
                            row.push_bind(port.station_id.as_str())
                                .push_bind(reading.port)
                                .push_bind(reading.status.as_str())
                                .push_bind(reading.raw_code.as_deref())
                                .push_bind(reading.voltage)
                                .push_bind(reading.current)
                                .push_bind(reading.power)
                                .push_bind(reading.energy_kwh)
                                .push_bind(reading.session_ends_at)
                                .push_bind(port.state.since)
                                .push_bind(port.observed_at);
                        });
                        insert.push(dialect.upsert(
                            &["station_id", "port"],
                            &[
                                "status", "raw_code", "voltage", "current", "power", "energy_kwh",
                                "session_ends_at", "since", "observed_at",
                            ],
                        ));
                        insert
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| self.error("writing port states", e))?;
                    }
                    for chunk in dialect.shaped_chunks(&batch.events, 5) {
                        let mut insert = sqlx::QueryBuilder::<$db>::new(format!(
                            "{} status_events (station_id, port, old_status, new_status, at) ",
                            dialect.insert_ignore()
                        ));
                        insert.push_values(chunk, |mut row, event| {
                            row.push_bind(event.station_id.as_str())
                                .push_bind(event.port)
                                .push_bind(event.old.map(|s| s.as_str()))
                                .push_bind(event.new.as_str())
                                .push_bind(event.at);
                        });
                        insert
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| self.error("writing status events", e))?;
                    }
                    for chunk in dialect.shaped_chunks(&batch.health, 5) {
                        let mut insert = sqlx::QueryBuilder::<$db>::new(format!(
                            "INSERT INTO station_health ({}) ",
                            $crate::store::rows::HEALTH_COLUMNS
                        ));
                        insert.push_values(chunk, |mut row, health| {
                            row.push_bind(health.station_id.as_str())
                                .push_bind(health.last_ok_at)
                                .push_bind(health.last_error.as_deref())
                                .push_bind(health.checked_at)
                                .push_bind(health.failures);
                        });
                        insert.push(dialect.upsert(
                            &["station_id"],
                            &["last_ok_at", "last_error", "checked_at", "failures"],
                        ));
                        insert
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| self.error("writing station health", e))?;
                    }
                    Ok(())
                })
            }

            async fn events(
                &self,
                query: &$crate::store::EventQuery,
            ) -> Result<Vec<StatusEvent>, StoreError> {
                let mut sql = sqlx::QueryBuilder::<$db>::new(
                    "SELECT station_id, port, old_status, new_status, at FROM status_events WHERE 1 = 1",
                );
                if let Some(station) = &query.station_id {
                    sql.push(" AND station_id = ").push_bind(station.as_str());
                }
                if let Some(port) = query.port {
                    sql.push(" AND port = ").push_bind(port);
                }
                if let Some(since) = query.since {
                    sql.push(" AND at >= ").push_bind(since);
                }
                if let Some(until) = query.until {
                    sql.push(" AND at < ").push_bind(until);
                }
                sql.push(" ORDER BY at DESC, port DESC LIMIT ")
                    .push_bind(i64::from(query.limit));
                let rows: Vec<$crate::store::rows::EventRow> = sql
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.error("reading status events", e))?;
                rows.into_iter().map(|row| row.into_event()).collect()
            }

            async fn count_events(&self, station_id: Option<&StationId>) -> Result<u64, StoreError> {
                let mut sql = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*) FROM status_events");
                if let Some(station) = station_id {
                    sql.push(" WHERE station_id = ").push_bind(station.as_str());
                }
                let (count,): (i64,) = sql
                    .build_query_as()
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.error("counting status events", e))?;
                Ok(count as u64)
            }
        }
    };
}

pub(super) use impl_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_stay_under_the_bind_limits() {
        for dialect in [Dialect::MySql, Dialect::Sqlite] {
            for columns in [1, 5, 10, 11] {
                let rows = dialect.rows_per_statement(columns);
                assert!(
                    rows * columns <= dialect.max_binds(),
                    "{dialect:?} {columns}"
                );
                assert!(rows >= 1);
            }
        }
    }

    #[test]
    fn batches_are_cut_into_a_few_fixed_statement_sizes() {
        for dialect in [Dialect::MySql, Dialect::Sqlite] {
            let mut sizes = std::collections::BTreeSet::new();
            for n in 0..3_000_usize {
                let rows: Vec<usize> = (0..n).collect();
                let chunks: Vec<&[usize]> = dialect.shaped_chunks(&rows, 11).collect();
                assert_eq!(
                    chunks.concat(),
                    rows,
                    "{dialect:?}: every row once, in order"
                );
                assert!(chunks.windows(2).all(|w| w[0].len() >= w[1].len()));
                sizes.extend(chunks.iter().map(|c| c.len()));
            }
            assert_eq!(
                sizes.into_iter().collect::<Vec<_>>(),
                [1, 4, 16, 64, 256, 1024],
                "{dialect:?}"
            );
        }
        let rows = [0_u8; 1_000];
        let sizes: Vec<usize> = Dialect::MySql
            .shaped_chunks(&rows, 5)
            .map(<[u8]>::len)
            .collect();
        assert_eq!(sizes, [256, 256, 256, 64, 64, 64, 16, 16, 4, 4]);
    }

    #[test]
    fn upserts_use_each_dialects_syntax() {
        assert_eq!(
            Dialect::MySql.upsert(&["id"], &["name"]),
            " ON DUPLICATE KEY UPDATE name = VALUES(name)"
        );
        assert_eq!(
            Dialect::Sqlite.upsert(&["station_id", "port"], &["status", "since"]),
            " ON CONFLICT (station_id, port) DO UPDATE SET status = excluded.status, since = excluded.since"
        );
    }
}
