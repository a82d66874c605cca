//! The record of each table: how a station, a port's state, a status event, a station's
//! health, a reading, a session and the hourly totals are written as rows and read back
//! ([`Record`]), with the reader that turns a bad value into an error naming its table and
//! column.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::record::{Column, Record, Value};
use super::sql::Sql;
use super::statements::{self, OnConflict, Table};
use super::{PortStateRow, StoreError};
use crate::model::history::{HourDelta, HourRow, HourTotals, ReadingRow, SessionRow};
use crate::model::{
    PortReading, PortState, PortStatus, Station, StationHealth, StationId, StationState,
    StatusEvent,
};

/// A station as a row of the catalogue: its `created_at` and `updated_at` are both
/// `written_at` (an upsert keeps the first `created_at`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StationRow {
    /// The station.
    pub(crate) station: Station,
    /// When it was written.
    pub(crate) written_at: DateTime<Utc>,
}

impl Record for StationRow {
    const TABLE: Table = Table {
        name: "stations",
        key: &["id"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("id", |r| Value::text(r.station.id.as_str())),
        Column::new("name", |r| Value::text(r.station.name.trim())),
        Column::new("address", |r| Value::Text(r.station.address.as_deref())),
        Column::new("lat", |r| Value::Real(r.station.lat)),
        Column::new("lng", |r| Value::Real(r.station.lng)),
        Column::new("vendor", |r| Value::text(&r.station.vendor)),
        Column::new("enabled", |r| Value::Bool(r.station.enabled)),
        Column::new("port_count", |r| Value::U32(r.station.port_count)),
        Column::new("created_at", |r| Value::time(r.written_at)),
        Column::new("updated_at", |r| Value::time(r.written_at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            station: Station {
                id: r.id("id")?,
                name: r.text("name")?,
                address: r.opt_text("address")?,
                lat: r.real("lat")?,
                lng: r.real("lng")?,
                vendor: r.text("vendor")?,
                enabled: r.bool("enabled")?,
                port_count: r.u32("port_count")?,
            },
            written_at: r.time("updated_at")?,
        })
    }
}

impl Record for PortStateRow {
    const TABLE: Table = Table {
        name: "port_states",
        key: &["station_id", "port"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("port", |r| Value::U32(r.state.reading.port)),
        Column::new("status", |r| Value::text(r.state.reading.status.as_str())),
        Column::new("raw_code", |r| {
            Value::Text(r.state.reading.raw_code.as_deref())
        }),
        Column::new("voltage", |r| Value::Real(r.state.reading.voltage)),
        Column::new("current", |r| Value::Real(r.state.reading.current)),
        Column::new("power", |r| Value::Real(r.state.reading.power)),
        Column::new("energy_kwh", |r| Value::Real(r.state.reading.energy_kwh)),
        Column::new("session_ends_at", |r| {
            Value::Time(r.state.reading.session_ends_at)
        }),
        Column::new("since", |r| Value::time(r.state.since)),
        Column::new("observed_at", |r| Value::time(r.observed_at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            station_id: r.id("station_id")?,
            state: PortState {
                reading: PortReading {
                    port: r.u32("port")?,
                    status: r.status("status")?,
                    raw_code: r.opt_text("raw_code")?,
                    voltage: r.real("voltage")?,
                    current: r.real("current")?,
                    power: r.real("power")?,
                    energy_kwh: r.real("energy_kwh")?,
                    session_ends_at: r.opt_time("session_ends_at")?,
                },
                since: r.time("since")?,
            },
            observed_at: r.time("observed_at")?,
        })
    }
}

/// Status changes (a row repeated by a retried batch is ignored by its unique key).
impl Record for StatusEvent {
    const TABLE: Table = Table {
        name: "status_events",
        key: &["station_id", "port", "at"],
        on_conflict: OnConflict::Ignore,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("port", |r| Value::U32(r.port)),
        Column::new("old_status", |r| Value::Text(r.old.map(PortStatus::as_str))),
        Column::new("new_status", |r| Value::text(r.new.as_str())),
        Column::new("at", |r| Value::time(r.at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            station_id: r.id("station_id")?,
            port: r.u32("port")?,
            old: r.opt_status("old_status")?,
            new: r.status("new_status")?,
            at: r.time("at")?,
        })
    }
}

impl Record for StationHealth {
    const TABLE: Table = Table {
        name: "station_health",
        key: &["station_id"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("last_ok_at", |r| Value::Time(r.last_ok_at)),
        Column::new("last_error", |r| Value::Text(r.last_error.as_deref())),
        Column::new("checked_at", |r| Value::time(r.checked_at)),
        Column::new("failures", |r| Value::U32(r.failures)),
        Column::new("counted_from", |r| Value::Time(r.counted_from)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            station_id: r.id("station_id")?,
            last_ok_at: r.opt_time("last_ok_at")?,
            last_error: r.opt_text("last_error")?,
            checked_at: r.time("checked_at")?,
            failures: r.u32("failures")?,
            counted_from: r.opt_time("counted_from")?,
        })
    }
}

/// Readings of ports, kept when they changed enough.
impl Record for ReadingRow {
    const TABLE: Table = Table {
        name: "port_readings",
        key: &["station_id", "port", "at"],
        on_conflict: OnConflict::Ignore,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("port", |r| Value::U32(r.port)),
        Column::new("at", |r| Value::time(r.at)),
        Column::new("status", |r| Value::text(r.status.as_str())),
        Column::new("voltage", |r| Value::Real(r.voltage)),
        Column::new("current", |r| Value::Real(r.current)),
        Column::new("power", |r| Value::Real(r.power)),
        Column::new("energy_kwh", |r| Value::Real(r.energy_kwh)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            station_id: r.id("station_id")?,
            port: r.u32("port")?,
            at: r.time("at")?,
            status: r.status("status")?,
            voltage: r.real("voltage")?,
            current: r.real("current")?,
            power: r.real("power")?,
            energy_kwh: r.real("energy_kwh")?,
        })
    }
}

/// Charging sessions: a session's end fills in the row its start made; its duration is
/// kept for the estimates' quick reads.
impl Record for SessionRow {
    const TABLE: Table = Table {
        name: "sessions",
        key: &["station_id", "port", "started_at"],
        on_conflict: OnConflict::Fill,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("port", |r| Value::U32(r.port)),
        Column::new("started_at", |r| Value::time(r.started_at)),
        Column::new("ended_at", |r| Value::Time(r.ended_at)),
        Column::new("duration_secs", |r| {
            Value::Int(r.duration().map(|d| d.num_seconds().max(0)))
        }),
        Column::new("energy_kwh", |r| Value::Real(r.energy_kwh)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            station_id: r.id("station_id")?,
            port: r.u32("port")?,
            started_at: r.time("started_at")?,
            ended_at: r.opt_time("ended_at")?,
            energy_kwh: r.real("energy_kwh")?,
        })
    }
}

/// A record with an hour's totals (its last eight columns, [`statements::HOUR_TOTALS`]).
pub(crate) trait Totals {
    /// The totals.
    fn totals(&self) -> &HourTotals;
}

impl Totals for HourDelta {
    fn totals(&self) -> &HourTotals {
        &self.totals
    }
}

impl Totals for (StationId, HourRow) {
    fn totals(&self) -> &HourTotals {
        &self.1.totals
    }
}

impl Totals for HourRow {
    fn totals(&self) -> &HourTotals {
        &self.totals
    }
}

/// Seconds in status `I` (in [`PortStatus::ALL`] order).
fn secs<R: Totals, const I: usize>(r: &R) -> Value<'_> {
    Value::count(r.totals().secs[I])
}

fn sessions_started<R: Totals>(r: &R) -> Value<'_> {
    Value::count(r.totals().sessions_started)
}

fn energy<R: Totals>(r: &R) -> Value<'_> {
    Value::Real(Some(r.totals().energy_kwh))
}

/// The eight totals columns of a record with totals, in [`statements::HOUR_TOTALS`] order.
macro_rules! totals_columns {
    () => {
        [
            Column::new(statements::HOUR_TOTALS[0], secs::<Self, 0>),
            Column::new(statements::HOUR_TOTALS[1], secs::<Self, 1>),
            Column::new(statements::HOUR_TOTALS[2], secs::<Self, 2>),
            Column::new(statements::HOUR_TOTALS[3], secs::<Self, 3>),
            Column::new(statements::HOUR_TOTALS[4], secs::<Self, 4>),
            Column::new(statements::HOUR_TOTALS[5], secs::<Self, 5>),
            Column::new(statements::HOUR_TOTALS[6], secs::<Self, 6>),
            Column::new(statements::HOUR_TOTALS[7], sessions_started::<Self>),
            Column::new(statements::HOUR_TOTALS[8], energy::<Self>),
        ]
    };
}

/// Hours of each port, added to as each stay closes.
impl Record for HourDelta {
    const TABLE: Table = Table {
        name: "port_hours",
        key: &["station_id", "port", "hour"],
        on_conflict: OnConflict::Add,
    };
    const COLUMNS: &'static [Column<Self>] = &{
        let [a, b, c, d, e, f, g, h, i] = totals_columns!();
        [
            Column::new("station_id", |r: &Self| Value::text(r.station_id.as_str())),
            Column::new("port", |r: &Self| Value::U32(r.port)),
            Column::new("hour", |r: &Self| Value::time(r.hour)),
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            h,
            i,
        ]
    };

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            station_id: r.id("station_id")?,
            port: r.u32("port")?,
            hour: r.time("hour")?,
            totals: totals(r)?,
        })
    }
}

/// Hours of each station (its ports summed).
impl Record for (StationId, HourRow) {
    const TABLE: Table = Table {
        name: "station_hours",
        key: &["station_id", "hour"],
        on_conflict: OnConflict::Add,
    };
    const COLUMNS: &'static [Column<Self>] = &{
        let [a, b, c, d, e, f, g, h, i] = totals_columns!();
        [
            Column::new("station_id", |r: &Self| Value::text(r.0.as_str())),
            Column::new("hour", |r: &Self| Value::time(r.1.hour)),
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            h,
            i,
        ]
    };

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok((
            r.id("station_id")?,
            HourRow {
                hour: r.time("hour")?,
                totals: totals(r)?,
            },
        ))
    }
}

/// Hours of the fleet.
impl Record for HourRow {
    const TABLE: Table = Table {
        name: "fleet_hours",
        key: &["hour"],
        on_conflict: OnConflict::Add,
    };
    const COLUMNS: &'static [Column<Self>] = &{
        let [a, b, c, d, e, f, g, h, i] = totals_columns!();
        [
            Column::new("hour", |r: &Self| Value::time(r.hour)),
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            h,
            i,
        ]
    };

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            hour: r.time("hour")?,
            totals: totals(r)?,
        })
    }
}

/// Reads the columns of one row of `table`, turning driver errors into
/// [`StoreError::Corrupt`] that name the table.
pub(crate) struct Reader<'r, DB: Sql> {
    row: &'r DB::Row,
    table: &'static str,
}

impl<'r, DB: Sql> Reader<'r, DB> {
    pub(crate) fn new(row: &'r DB::Row, table: &'static str) -> Self {
        Self { row, table }
    }

    pub(crate) fn corrupt(&self, column: &str, message: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            message: format!("{column}: {message}"),
        }
    }

    /// A column through one of [`Sql`]'s getters.
    fn get<T>(
        &self,
        column: &str,
        getter: fn(&DB::Row, &str) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        getter(self.row, column).map_err(|e| self.corrupt(column, e))
    }

    /// A column that must not be NULL.
    fn required<T>(&self, column: &str, value: Option<T>) -> Result<T, StoreError> {
        value.ok_or_else(|| self.corrupt(column, "is NULL"))
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column, DB::text)
    }

    pub(crate) fn text(&self, column: &str) -> Result<String, StoreError> {
        self.required(column, self.opt_text(column)?)
    }

    pub(crate) fn real(&self, column: &str) -> Result<Option<f64>, StoreError> {
        self.get(column, DB::real)
    }

    pub(crate) fn u32(&self, column: &str) -> Result<u32, StoreError> {
        self.get(column, DB::u32)
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.required(column, self.get(column, DB::int)?)
    }

    pub(crate) fn bool(&self, column: &str) -> Result<bool, StoreError> {
        self.get(column, DB::bool)
    }

    pub(crate) fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.get(column, DB::time)
    }

    pub(crate) fn time(&self, column: &str) -> Result<DateTime<Utc>, StoreError> {
        self.required(column, self.opt_time(column)?)
    }

    pub(crate) fn id(&self, column: &str) -> Result<StationId, StoreError> {
        StationId::parse(&self.text(column)?).map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn status(&self, column: &str) -> Result<PortStatus, StoreError> {
        self.text(column)?
            .parse()
            .map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn opt_status(&self, column: &str) -> Result<Option<PortStatus>, StoreError> {
        self.opt_text(column)?
            .map(|s| s.parse().map_err(|e| self.corrupt(column, e)))
            .transpose()
    }
}

/// A whole number a query counted (`SELECT COUNT(*) AS n …`).
pub fn count<DB: Sql>(row: &DB::Row) -> Result<u64, StoreError> {
    let n = Reader::<DB>::new(row, "count").int("n")?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// A session's length in seconds (`SELECT duration_secs …`).
pub fn duration<DB: Sql>(row: &DB::Row) -> Result<u32, StoreError> {
    let secs = Reader::<DB>::new(row, "sessions").int("duration_secs")?;
    Ok(u32::try_from(secs.max(0)).unwrap_or(u32::MAX))
}

/// Hour totals read back (summed, under the totals columns' names).
fn totals<DB: Sql>(r: &Reader<'_, DB>) -> Result<HourTotals, StoreError> {
    let whole = |column: &str| -> Result<u64, StoreError> {
        Ok(u64::try_from(r.int(column)?).unwrap_or_default())
    };
    let mut secs = [0; crate::model::PortStatus::ALL.len()];
    for (slot, column) in secs.iter_mut().zip(statements::HOUR_TOTALS) {
        *slot = whole(column)?;
    }
    Ok(HourTotals {
        secs,
        sessions_started: whole("sessions_started")?,
        energy_kwh: r.real("energy_kwh")?.unwrap_or_default(),
    })
}

/// A station's totals over a range read back.
pub fn station_totals<DB: Sql>(row: &DB::Row) -> Result<(StationId, HourTotals), StoreError> {
    let r = Reader::<DB>::new(row, "station_hours");
    Ok((r.id("station_id")?, totals(&r)?))
}

/// Station states from their port rows and health rows.
pub fn assemble_states(ports: Vec<PortStateRow>, health: Vec<StationHealth>) -> Vec<StationState> {
    let mut states: HashMap<StationId, StationState> = HashMap::new();
    for row in health {
        states.insert(
            row.station_id.clone(),
            StationState {
                station_id: row.station_id,
                observed_at: row.last_ok_at,
                checked_at: row.checked_at,
                last_error: row.last_error,
                failures: row.failures,
                ports: Vec::new(),
                counted_from: row.counted_from,
            },
        );
    }
    for row in ports {
        let state = states
            .entry(row.station_id.clone())
            .or_insert_with(|| StationState {
                station_id: row.station_id.clone(),
                observed_at: Some(row.observed_at),
                checked_at: row.observed_at,
                last_error: None,
                failures: 0,
                ports: Vec::new(),
                counted_from: None,
            });
        if state.observed_at.is_none_or(|at| at < row.observed_at) {
            state.observed_at = Some(row.observed_at);
        }
        // A port written at a time was checked then; the health row is rewritten less often.
        state.checked_at = state.checked_at.max(row.observed_at);
        state.ports.push(row.state);
    }
    let mut states: Vec<StationState> = states.into_values().collect();
    for state in &mut states {
        state.ports.sort_by_key(|p| p.reading.port);
    }
    states
}
