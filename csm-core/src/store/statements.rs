//! The SQL text the store runs, written once for both backends: the tables and their columns,
//! multi-row statements cut into a few fixed sizes, and the few places where MySQL and SQLite
//! spell things differently ([`Dialect`]). Both backends take `?` placeholders, so a statement
//! is plain text with its values bound in order.

/// SQL differences between the backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL and MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

/// What an insert does when a row with the same key exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnConflict {
    /// Overwrite the row's other columns.
    Update,
    /// Keep the existing row (a retried batch is harmless).
    Ignore,
    /// Add the new values to the existing ones (hourly totals).
    Add,
    /// Take each new value that is not NULL, keep the old one where it is (a session's end
    /// fills in the row its start made).
    Fill,
}

/// A table the store writes rows of.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    /// Table name.
    pub name: &'static str,
    /// Every column a row binds, in binding order.
    pub columns: &'static [&'static str],
    /// The columns of the key an upsert matches on.
    pub key: &'static [&'static str],
    /// What happens to a row whose key exists.
    pub on_conflict: OnConflict,
}

impl Table {
    /// Values each row binds.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The column list, comma separated.
    pub fn column_list(&self) -> String {
        self.columns.join(", ")
    }
}

/// The stations of the catalogue.
pub const STATIONS: Table = Table {
    name: "stations",
    columns: &[
        "id",
        "name",
        "address",
        "lat",
        "lng",
        "vendor",
        "enabled",
        "port_count",
        "created_at",
        "updated_at",
    ],
    key: &["id"],
    on_conflict: OnConflict::Update,
};

/// The latest durable state of each port.
pub const PORT_STATES: Table = Table {
    name: "port_states",
    columns: &[
        "station_id",
        "port",
        "status",
        "raw_code",
        "voltage",
        "current",
        "power",
        "energy_kwh",
        "session_ends_at",
        "since",
        "observed_at",
    ],
    key: &["station_id", "port"],
    on_conflict: OnConflict::Update,
};

/// Status changes (a row repeated by a retried batch is ignored by its unique key).
pub const STATUS_EVENTS: Table = Table {
    name: "status_events",
    columns: &["station_id", "port", "old_status", "new_status", "at"],
    key: &["station_id", "port", "at"],
    on_conflict: OnConflict::Ignore,
};

/// The health of each station's source.
pub const STATION_HEALTH: Table = Table {
    name: "station_health",
    columns: &[
        "station_id",
        "last_ok_at",
        "last_error",
        "checked_at",
        "failures",
        "counted_from",
    ],
    key: &["station_id"],
    on_conflict: OnConflict::Update,
};

/// The registry of OCPP charge points, a row each.
pub const OCPP_CHARGE_POINTS: Table = Table {
    name: "ocpp_charge_points",
    columns: &[
        "station_id",
        "connected",
        "connected_at",
        "disconnected_at",
        "last_message_at",
        "last_action",
        "vendor",
        "model",
        "firmware",
        "firmware_status",
        "heartbeat_secs",
    ],
    key: &["station_id"],
    on_conflict: OnConflict::Update,
};

/// Readings of ports, kept when they changed enough.
pub const PORT_READINGS: Table = Table {
    name: "port_readings",
    columns: &[
        "station_id",
        "port",
        "at",
        "status",
        "voltage",
        "current",
        "power",
        "energy_kwh",
    ],
    key: &["station_id", "port", "at"],
    on_conflict: OnConflict::Ignore,
};

/// Charging sessions.
pub const SESSIONS: Table = Table {
    name: "sessions",
    columns: &[
        "station_id",
        "port",
        "started_at",
        "ended_at",
        "duration_secs",
        "energy_kwh",
    ],
    key: &["station_id", "port", "started_at"],
    on_conflict: OnConflict::Fill,
};

/// The totals columns of an hour, in the order of [`crate::model::history::HourTotals`].
pub const HOUR_TOTALS: [&str; 8] = [
    "free_secs",
    "occupied_secs",
    "fault_secs",
    "offline_secs",
    "reserved_secs",
    "unknown_secs",
    "sessions_started",
    "energy_kwh",
];

/// Hours of each port.
pub const PORT_HOURS: Table = Table {
    name: "port_hours",
    columns: &[
        "station_id",
        "port",
        "hour",
        HOUR_TOTALS[0],
        HOUR_TOTALS[1],
        HOUR_TOTALS[2],
        HOUR_TOTALS[3],
        HOUR_TOTALS[4],
        HOUR_TOTALS[5],
        HOUR_TOTALS[6],
        HOUR_TOTALS[7],
    ],
    key: &["station_id", "port", "hour"],
    on_conflict: OnConflict::Add,
};

/// Hours of each station (its ports summed).
pub const STATION_HOURS: Table = Table {
    name: "station_hours",
    columns: &[
        "station_id",
        "hour",
        HOUR_TOTALS[0],
        HOUR_TOTALS[1],
        HOUR_TOTALS[2],
        HOUR_TOTALS[3],
        HOUR_TOTALS[4],
        HOUR_TOTALS[5],
        HOUR_TOTALS[6],
        HOUR_TOTALS[7],
    ],
    key: &["station_id", "hour"],
    on_conflict: OnConflict::Add,
};

/// Hours of the fleet.
pub const FLEET_HOURS: Table = Table {
    name: "fleet_hours",
    columns: &[
        "hour",
        HOUR_TOTALS[0],
        HOUR_TOTALS[1],
        HOUR_TOTALS[2],
        HOUR_TOTALS[3],
        HOUR_TOTALS[4],
        HOUR_TOTALS[5],
        HOUR_TOTALS[6],
        HOUR_TOTALS[7],
    ],
    key: &["hour"],
    on_conflict: OnConflict::Add,
};

/// `SUM(...)` of every totals column, each under its own name (integers cast so that both
/// backends answer whole numbers).
pub fn summed_totals() -> String {
    HOUR_TOTALS
        .iter()
        .map(|c| {
            if *c == "energy_kwh" {
                format!("SUM({c}) AS {c}")
            } else {
                format!("CAST(SUM({c}) AS SIGNED) AS {c}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The totals columns, comma separated.
pub fn totals_columns() -> String {
    HOUR_TOTALS.join(", ")
}

/// Station ids per `IN (…)` lookup: past ~200 values MariaDB stops looking the keys up in the
/// index and may scan the whole table instead.
pub const LOOKUP_CHUNK: usize = 100;

/// Largest number of rows in one multi-row statement: small enough that a statement stays a
/// few hundred kilobytes.
const MAX_ROWS_PER_STATEMENT: usize = 1_024;

impl Dialect {
    /// `mysql` or `sqlite`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// Bind parameters one statement may carry.
    pub fn max_binds(self) -> usize {
        match self {
            Dialect::MySql => 65_535,
            Dialect::Sqlite => 32_766,
        }
    }

    /// Rows per multi-row statement for a table: under the bind limit and
    /// [`MAX_ROWS_PER_STATEMENT`].
    pub fn rows_per_statement(self, table: &Table) -> usize {
        (self.max_binds() / table.width()).min(MAX_ROWS_PER_STATEMENT)
    }

    /// `rows` in multi-row statements of a few fixed sizes (powers of four, up to
    /// [`rows_per_statement`](Self::rows_per_statement)), largest first. A table then needs at
    /// most six distinct statements, each prepared once per connection and reused; chunks of
    /// any size would make the database prepare a new statement of up to a thousand rows for
    /// nearly every batch.
    pub fn shaped_chunks<'a, T>(
        self,
        rows: &'a [T],
        table: &Table,
    ) -> impl Iterator<Item = &'a [T]> + use<'a, T> {
        let mut largest = 1;
        while largest * 4 <= self.rows_per_statement(table) {
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

    /// `INSERT INTO table (columns) VALUES (?, …), … ` for `rows` rows, with what happens on a
    /// key that exists.
    pub fn insert(self, table: &Table, rows: usize) -> String {
        let verb = match (table.on_conflict, self) {
            (OnConflict::Ignore, Dialect::MySql) => "INSERT IGNORE INTO",
            (OnConflict::Ignore, Dialect::Sqlite) => "INSERT OR IGNORE INTO",
            _ => "INSERT INTO",
        };
        let mut sql = format!(
            "{verb} {} ({}) VALUES {}",
            table.name,
            table.column_list(),
            placeholder_rows(table.width(), rows)
        );
        if table.on_conflict != OnConflict::Ignore {
            let updated: Vec<&str> = table
                .columns
                .iter()
                .copied()
                .filter(|c| !table.key.contains(c) && *c != "created_at")
                .collect();
            sql.push_str(&self.upsert(table, &updated));
        }
        sql
    }

    /// The tail of an `INSERT` that updates `columns` of the row with the same key as the
    /// table's conflict rule says.
    fn upsert(self, table: &Table, columns: &[&str]) -> String {
        let new = |c: &str| match self {
            Dialect::MySql => format!("VALUES({c})"),
            Dialect::Sqlite => format!("excluded.{c}"),
        };
        let sets: Vec<String> = columns
            .iter()
            .map(|c| match table.on_conflict {
                OnConflict::Add => format!("{c} = {c} + {}", new(c)),
                OnConflict::Fill => format!("{c} = COALESCE({}, {c})", new(c)),
                OnConflict::Update | OnConflict::Ignore => format!("{c} = {}", new(c)),
            })
            .collect();
        match self {
            Dialect::MySql => format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", ")),
            Dialect::Sqlite => format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                table.key.join(", "),
                sets.join(", ")
            ),
        }
    }

    /// A statement deleting at most `chunk` rows of `table` whose `column` is before the bound
    /// value: the pruning of history, a bounded piece at a time so that no lock is held long.
    pub fn delete_before(self, table: &Table, column: &str, chunk: u32) -> String {
        match self {
            Dialect::MySql => format!(
                "DELETE FROM {} WHERE {column} < ? ORDER BY {column} LIMIT {chunk}",
                table.name
            ),
            Dialect::Sqlite => {
                let key = table.key.join(", ");
                format!(
                    "DELETE FROM {name} WHERE ({key}) IN (SELECT {key} FROM {name} WHERE {column} < ? LIMIT {chunk})",
                    name = table.name
                )
            }
        }
    }
}

/// `(?, ?), (?, ?)`: `rows` rows of `width` placeholders.
pub fn placeholder_rows(width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    vec![row; rows].join(", ")
}

/// `(?, ?, ?)`: a list of `count` placeholders, for `IN`.
pub fn placeholder_list(count: usize) -> String {
    placeholder_rows(count, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_stay_under_the_bind_limits() {
        for dialect in [Dialect::MySql, Dialect::Sqlite] {
            for table in [
                STATIONS,
                PORT_STATES,
                STATUS_EVENTS,
                STATION_HEALTH,
                OCPP_CHARGE_POINTS,
                PORT_READINGS,
                SESSIONS,
                PORT_HOURS,
                STATION_HOURS,
                FLEET_HOURS,
            ] {
                let rows = dialect.rows_per_statement(&table);
                assert!(
                    rows * table.width() <= dialect.max_binds(),
                    "{dialect:?} {}",
                    table.name
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
                let chunks: Vec<&[usize]> = dialect.shaped_chunks(&rows, &PORT_STATES).collect();
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
            .shaped_chunks(&rows, &STATUS_EVENTS)
            .map(<[u8]>::len)
            .collect();
        assert_eq!(sizes, [256, 256, 256, 64, 64, 64, 16, 16, 4, 4]);
    }

    #[test]
    fn inserts_use_each_dialects_syntax() {
        assert_eq!(
            Dialect::MySql.insert(&STATION_HEALTH, 1),
            "INSERT INTO station_health (station_id, last_ok_at, last_error, checked_at, failures, counted_from) VALUES (?, ?, ?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE last_ok_at = VALUES(last_ok_at), last_error = VALUES(last_error), checked_at = VALUES(checked_at), failures = VALUES(failures), counted_from = VALUES(counted_from)"
        );
        assert_eq!(
            Dialect::Sqlite.insert(&STATUS_EVENTS, 2),
            "INSERT OR IGNORE INTO status_events (station_id, port, old_status, new_status, at) VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)"
        );
        let stations = Dialect::Sqlite.insert(&STATIONS, 1);
        assert!(
            stations.ends_with("ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, lat = excluded.lat, lng = excluded.lng, vendor = excluded.vendor, enabled = excluded.enabled, port_count = excluded.port_count, updated_at = excluded.updated_at"),
            "{stations}"
        );
        assert_eq!(placeholder_list(3), "(?, ?, ?)");
        assert!(
            Dialect::MySql
                .insert(&FLEET_HOURS, 1)
                .ends_with("energy_kwh = energy_kwh + VALUES(energy_kwh)")
        );
        assert!(
            Dialect::Sqlite
                .insert(&SESSIONS, 1)
                .contains("ended_at = COALESCE(excluded.ended_at, ended_at)")
        );
    }
}
