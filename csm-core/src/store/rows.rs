//! Rows of the store's tables to and from csm's model: what a row binds (in the column order
//! of its [`Table`](super::statements::Table)) and what a row read back becomes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::sql::{Sql, Statement};
use super::{PortStateRow, StoreError, statements};
use crate::model::history::{HourDelta, HourRow, HourTotals, ReadingRow, SessionRow};
use crate::model::{
    PortReading, PortState, PortStatus, Station, StationHealth, StationId, StationState,
    StatusEvent,
};

/// Binds a station as a row of `STATIONS` (`created_at` and `updated_at` both `now`; an
/// upsert keeps the first `created_at`).
pub fn bind_station<DB: Sql>(
    statement: Statement<DB>,
    station: &Station,
    now: DateTime<Utc>,
) -> Statement<DB> {
    let statement = DB::bind_text(statement, Some(station.id.as_str()));
    let statement = DB::bind_text(statement, Some(station.name.trim()));
    let statement = DB::bind_text(statement, station.address.as_deref());
    let statement = DB::bind_real(statement, station.lat);
    let statement = DB::bind_real(statement, station.lng);
    let statement = DB::bind_text(statement, Some(&station.vendor));
    let statement = DB::bind_bool(statement, station.enabled);
    let statement = DB::bind_u32(statement, station.port_count);
    let statement = DB::bind_time(statement, Some(now));
    DB::bind_time(statement, Some(now))
}

/// Binds a port's state as a row of `PORT_STATES`.
pub fn bind_port_state<DB: Sql>(statement: Statement<DB>, row: &PortStateRow) -> Statement<DB> {
    let reading = &row.state.reading;
    let statement = DB::bind_text(statement, Some(row.station_id.as_str()));
    let statement = DB::bind_u32(statement, reading.port);
    let statement = DB::bind_text(statement, Some(reading.status.as_str()));
    let statement = DB::bind_text(statement, reading.raw_code.as_deref());
    let statement = DB::bind_real(statement, reading.voltage);
    let statement = DB::bind_real(statement, reading.current);
    let statement = DB::bind_real(statement, reading.power);
    let statement = DB::bind_real(statement, reading.energy_kwh);
    let statement = DB::bind_time(statement, reading.session_ends_at);
    let statement = DB::bind_time(statement, Some(row.state.since));
    DB::bind_time(statement, Some(row.observed_at))
}

/// Binds a status event as a row of `STATUS_EVENTS`.
pub fn bind_event<DB: Sql>(statement: Statement<DB>, event: &StatusEvent) -> Statement<DB> {
    let statement = DB::bind_text(statement, Some(event.station_id.as_str()));
    let statement = DB::bind_u32(statement, event.port);
    let statement = DB::bind_text(statement, event.old.map(PortStatus::as_str));
    let statement = DB::bind_text(statement, Some(event.new.as_str()));
    DB::bind_time(statement, Some(event.at))
}

/// Binds a station's health as a row of `STATION_HEALTH`.
pub fn bind_health<DB: Sql>(statement: Statement<DB>, health: &StationHealth) -> Statement<DB> {
    let statement = DB::bind_text(statement, Some(health.station_id.as_str()));
    let statement = DB::bind_time(statement, health.last_ok_at);
    let statement = DB::bind_text(statement, health.last_error.as_deref());
    let statement = DB::bind_time(statement, Some(health.checked_at));
    let statement = DB::bind_u32(statement, health.failures);
    DB::bind_time(statement, health.counted_from)
}

/// Binds a reading as a row of `PORT_READINGS`.
pub fn bind_reading<DB: Sql>(statement: Statement<DB>, row: &ReadingRow) -> Statement<DB> {
    let statement = DB::bind_text(statement, Some(row.station_id.as_str()));
    let statement = DB::bind_u32(statement, row.port);
    let statement = DB::bind_time(statement, Some(row.at));
    let statement = DB::bind_text(statement, Some(row.status.as_str()));
    let statement = DB::bind_real(statement, row.voltage);
    let statement = DB::bind_real(statement, row.current);
    let statement = DB::bind_real(statement, row.power);
    DB::bind_real(statement, row.energy_kwh)
}

/// Binds a session as a row of `SESSIONS` (its duration from its start and end).
pub fn bind_session<DB: Sql>(statement: Statement<DB>, row: &SessionRow) -> Statement<DB> {
    let duration = row.duration().map(|d| d.num_seconds().max(0));
    let statement = DB::bind_text(statement, Some(row.station_id.as_str()));
    let statement = DB::bind_u32(statement, row.port);
    let statement = DB::bind_time(statement, Some(row.started_at));
    let statement = DB::bind_time(statement, row.ended_at);
    let statement = DB::bind_int(statement, duration);
    DB::bind_real(statement, row.energy_kwh)
}

/// Binds an hour's totals, in the order of the totals columns.
fn bind_totals<DB: Sql>(statement: Statement<DB>, totals: &HourTotals) -> Statement<DB> {
    let statement = totals.secs.iter().fold(statement, |statement, secs| {
        DB::bind_int(statement, Some(i64::try_from(*secs).unwrap_or(i64::MAX)))
    });
    let sessions = i64::try_from(totals.sessions_started).unwrap_or(i64::MAX);
    let statement = DB::bind_int(statement, Some(sessions));
    DB::bind_real(statement, Some(totals.energy_kwh))
}

/// Binds a port's hour as a row of `PORT_HOURS`.
pub fn bind_port_hour<DB: Sql>(statement: Statement<DB>, row: &HourDelta) -> Statement<DB> {
    let statement = DB::bind_text(statement, Some(row.station_id.as_str()));
    let statement = DB::bind_u32(statement, row.port);
    let statement = DB::bind_time(statement, Some(row.hour));
    bind_totals(statement, &row.totals)
}

/// Binds a station's hour as a row of `STATION_HOURS`.
pub fn bind_station_hour<DB: Sql>(
    statement: Statement<DB>,
    (station_id, row): &(StationId, HourRow),
) -> Statement<DB> {
    let statement = DB::bind_text(statement, Some(station_id.as_str()));
    let statement = DB::bind_time(statement, Some(row.hour));
    bind_totals(statement, &row.totals)
}

/// Binds the fleet's hour as a row of `FLEET_HOURS`.
pub fn bind_fleet_hour<DB: Sql>(statement: Statement<DB>, row: &HourRow) -> Statement<DB> {
    let statement = DB::bind_time(statement, Some(row.hour));
    bind_totals(statement, &row.totals)
}

/// Reads the columns of one row of `table`, turning driver errors into
/// [`StoreError::Corrupt`] that name the table.
pub(super) struct Reader<'r, DB: Sql> {
    row: &'r DB::Row,
    table: &'static str,
}

impl<'r, DB: Sql> Reader<'r, DB> {
    pub(super) fn new(row: &'r DB::Row, table: &'static str) -> Self {
        Self { row, table }
    }

    pub(super) fn corrupt(&self, column: &str, message: impl std::fmt::Display) -> StoreError {
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

    pub(super) fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column, DB::text)
    }

    pub(super) fn text(&self, column: &str) -> Result<String, StoreError> {
        self.required(column, self.opt_text(column)?)
    }

    pub(super) fn real(&self, column: &str) -> Result<Option<f64>, StoreError> {
        self.get(column, DB::real)
    }

    pub(super) fn u32(&self, column: &str) -> Result<u32, StoreError> {
        self.get(column, DB::u32)
    }

    pub(super) fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.required(column, self.get(column, DB::int)?)
    }

    pub(super) fn bool(&self, column: &str) -> Result<bool, StoreError> {
        self.get(column, DB::bool)
    }

    pub(super) fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.get(column, DB::time)
    }

    pub(super) fn time(&self, column: &str) -> Result<DateTime<Utc>, StoreError> {
        self.required(column, self.opt_time(column)?)
    }

    pub(super) fn id(&self, column: &str) -> Result<StationId, StoreError> {
        StationId::parse(&self.text(column)?).map_err(|e| self.corrupt(column, e))
    }

    fn status(&self, column: &str) -> Result<PortStatus, StoreError> {
        self.text(column)?
            .parse()
            .map_err(|e| self.corrupt(column, e))
    }

    fn opt_status(&self, column: &str) -> Result<Option<PortStatus>, StoreError> {
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

/// A station read back.
pub fn station<DB: Sql>(row: &DB::Row) -> Result<Station, StoreError> {
    let r = Reader::<DB>::new(row, "stations");
    Ok(Station {
        id: r.id("id")?,
        name: r.text("name")?,
        address: r.opt_text("address")?,
        lat: r.real("lat")?,
        lng: r.real("lng")?,
        vendor: r.text("vendor")?,
        enabled: r.bool("enabled")?,
        port_count: r.u32("port_count")?,
    })
}

/// A port state read back.
pub fn port_state<DB: Sql>(row: &DB::Row) -> Result<PortStateRow, StoreError> {
    let r = Reader::<DB>::new(row, "port_states");
    Ok(PortStateRow {
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

/// A station's health read back.
pub fn health<DB: Sql>(row: &DB::Row) -> Result<StationHealth, StoreError> {
    let r = Reader::<DB>::new(row, "station_health");
    Ok(StationHealth {
        station_id: r.id("station_id")?,
        last_ok_at: r.opt_time("last_ok_at")?,
        last_error: r.opt_text("last_error")?,
        checked_at: r.time("checked_at")?,
        failures: r.u32("failures")?,
        counted_from: r.opt_time("counted_from")?,
    })
}

/// A reading read back.
pub fn reading<DB: Sql>(row: &DB::Row) -> Result<ReadingRow, StoreError> {
    let r = Reader::<DB>::new(row, "port_readings");
    Ok(ReadingRow {
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

/// A session read back.
pub fn session<DB: Sql>(row: &DB::Row) -> Result<SessionRow, StoreError> {
    let r = Reader::<DB>::new(row, "sessions");
    Ok(SessionRow {
        station_id: r.id("station_id")?,
        port: r.u32("port")?,
        started_at: r.time("started_at")?,
        ended_at: r.opt_time("ended_at")?,
        energy_kwh: r.real("energy_kwh")?,
    })
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
    let mut secs = [0; 6];
    for (slot, column) in secs.iter_mut().zip(statements::HOUR_TOTALS) {
        *slot = whole(column)?;
    }
    Ok(HourTotals {
        secs,
        sessions_started: whole("sessions_started")?,
        energy_kwh: r.real("energy_kwh")?.unwrap_or_default(),
    })
}

/// An hour of a station or of the fleet read back.
pub fn hour<DB: Sql>(row: &DB::Row) -> Result<HourRow, StoreError> {
    let r = Reader::<DB>::new(row, "hours");
    Ok(HourRow {
        hour: r.time("hour")?,
        totals: totals(&r)?,
    })
}

/// A station's totals over a range read back.
pub fn station_totals<DB: Sql>(row: &DB::Row) -> Result<(StationId, HourTotals), StoreError> {
    let r = Reader::<DB>::new(row, "station_hours");
    Ok((r.id("station_id")?, totals(&r)?))
}

/// A status event read back.
pub fn event<DB: Sql>(row: &DB::Row) -> Result<StatusEvent, StoreError> {
    let r = Reader::<DB>::new(row, "status_events");
    Ok(StatusEvent {
        station_id: r.id("station_id")?,
        port: r.u32("port")?,
        old: r.opt_status("old_status")?,
        new: r.status("new_status")?,
        at: r.time("at")?,
    })
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
