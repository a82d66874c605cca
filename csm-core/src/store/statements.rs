//! The SQL text the store runs, written once for both backends: the tables (their columns are
//! their records', [`Record`]),
//! multi-row statements cut into a few fixed sizes, and the few places where MySQL and SQLite
//! spell things differently ([`Dialect`]). Both backends take `?` placeholders, so a statement
//! is plain text with its values bound in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::record::Record;

/// SQL differences between the backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// A table the store writes rows of (its columns are its [`Record`]'s).
#[derive(Clone, Copy, Debug)]
pub struct Table {
    /// Table name.
    pub name: &'static str,
    /// The columns of the key an upsert matches on.
    pub key: &'static [&'static str],
    /// What happens to a row whose key exists.
    pub on_conflict: OnConflict,
}

/// The totals columns of an hour, in the order of [`crate::model::history::HourTotals`].
pub const HOUR_TOTALS: [&str; 9] = [
    "free_secs",
    "occupied_secs",
    "fault_secs",
    "offline_secs",
    "reserved_secs",
    "unavailable_secs",
    "unknown_secs",
    "sessions_started",
    "energy_kwh",
];

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

/// Up to this many rows go in one statement of exactly their number (see
/// [`Dialect::shaped_chunks`]).
const EVERY_SIZE_UP_TO: usize = 8;

/// Prepared statements each connection keeps (sqlx keeps 100 unless told): every shape of
/// every table the batch writer writes (eight tables, up to 12 shapes each), and room for the
/// rest.
pub(crate) const STATEMENTS_KEPT: usize = 256;

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

    /// Rows per multi-row statement of a record's table: under the bind limit and
    /// [`MAX_ROWS_PER_STATEMENT`].
    pub(crate) fn rows_per_statement<R: Record>(self) -> usize {
        (self.max_binds() / R::COLUMNS.len()).min(MAX_ROWS_PER_STATEMENT)
    }

    /// `rows` in multi-row statements of a few fixed sizes, largest first: all of them at once
    /// up to [`EVERY_SIZE_UP_TO`] rows, else powers of four (16, 64, 256, 1,024, up to
    /// [`rows_per_statement`](Self::rows_per_statement)). A table then needs at most 12
    /// distinct statements, each prepared once per connection and reused (chunks of any size
    /// would make the database prepare a new statement of up to a thousand rows for nearly
    /// every batch, and MySQL answers a prepare with a definition of every parameter), and the
    /// few rows a turn of the refresh writes at a time take one or two statements a table, not
    /// one for each digit of their count in base four.
    pub(crate) fn shaped_chunks<R: Record>(
        self,
        rows: &[R],
    ) -> impl Iterator<Item = &[R]> + use<'_, R> {
        let most = self.rows_per_statement::<R>();
        let mut rest = rows;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let left = rest.len().min(most);
            let size = if left <= EVERY_SIZE_UP_TO {
                left
            } else {
                // The largest power of four not above `left` (an even power of two).
                (1 << (left.ilog2() & !1)).max(EVERY_SIZE_UP_TO)
            };
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            Some(chunk)
        })
    }

    /// [`Dialect::insert`], written once for each table, dialect and number of rows (a few
    /// fixed sizes, see [`Dialect::shaped_chunks`]) and shared after.
    pub(crate) fn shared_insert<R: Record>(self, rows: usize) -> Arc<str> {
        type Written = HashMap<(Dialect, &'static str, usize), Arc<str>>;
        static WRITTEN: Mutex<Option<Written>> = Mutex::new(None);
        let mut written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            written
                .get_or_insert_with(HashMap::new)
                .entry((self, R::TABLE.name, rows))
                .or_insert_with(|| Arc::from(self.insert::<R>(rows))),
        )
    }

    /// `INSERT INTO table (columns) VALUES (?, …), … ` for `rows` rows of a record's table,
    /// with what happens on a key that exists.
    pub(crate) fn insert<R: Record>(self, rows: usize) -> String {
        let table = &R::TABLE;
        let columns = R::names();
        let verb = match (table.on_conflict, self) {
            (OnConflict::Ignore, Dialect::MySql) => "INSERT IGNORE INTO",
            (OnConflict::Ignore, Dialect::Sqlite) => "INSERT OR IGNORE INTO",
            _ => "INSERT INTO",
        };
        let mut sql = format!(
            "{verb} {} ({}) VALUES {}",
            table.name,
            columns.join(", "),
            placeholder_rows(columns.len(), rows)
        );
        if table.on_conflict != OnConflict::Ignore {
            let updated: Vec<&str> = columns
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
    use crate::model::StationHealth;
    use crate::model::history::{HourDelta, HourRow, ReadingRow, SessionRow};
    use crate::model::{StationId, StatusEvent};
    use crate::store::PortStateRow;
    use crate::store::rows::StationRow;

    fn fits<R: Record>(dialect: Dialect) {
        let rows = dialect.rows_per_statement::<R>();
        assert!(
            rows * R::COLUMNS.len() <= dialect.max_binds() && rows >= 1,
            "{dialect:?} {}",
            R::TABLE.name
        );
    }

    #[test]
    fn statements_stay_under_the_bind_limits() {
        for dialect in [Dialect::MySql, Dialect::Sqlite] {
            fits::<StationRow>(dialect);
            fits::<PortStateRow>(dialect);
            fits::<StatusEvent>(dialect);
            fits::<StationHealth>(dialect);
            fits::<crate::model::ocpp::ChargePointRecord>(dialect);
            fits::<ReadingRow>(dialect);
            fits::<SessionRow>(dialect);
            fits::<HourDelta>(dialect);
            fits::<(StationId, HourRow)>(dialect);
            fits::<HourRow>(dialect);
        }
    }

    #[test]
    fn batches_are_cut_into_a_few_fixed_statement_sizes() {
        let row = |n: usize| StatusEvent {
            station_id: StationId::parse("S1").unwrap(),
            port: n as u32,
            old: None,
            new: crate::model::PortStatus::Free,
            at: crate::model::now(),
        };
        let all: Vec<StatusEvent> = (0..3_000).map(row).collect();
        for dialect in [Dialect::MySql, Dialect::Sqlite] {
            let mut sizes = std::collections::BTreeSet::new();
            for n in (0..3_000_usize).step_by(7) {
                let rows = &all[..n];
                let chunks: Vec<&[StatusEvent]> = dialect.shaped_chunks(rows).collect();
                assert_eq!(
                    chunks.concat(),
                    rows,
                    "{dialect:?}: every row once, in order"
                );
                assert!(chunks.windows(2).all(|w| w[0].len() >= w[1].len()));
                sizes.extend(chunks.iter().map(|c| c.len()));
            }
            let expected: Vec<usize> = (1..=8).chain([16, 64, 256, 1024]).collect();
            assert_eq!(
                sizes.into_iter().collect::<Vec<_>>(),
                expected,
                "{dialect:?}"
            );
        }
        let sizes = |n: usize| -> Vec<usize> {
            Dialect::MySql
                .shaped_chunks(&all[..n])
                .map(<[StatusEvent]>::len)
                .collect()
        };
        assert_eq!(sizes(1_000), [256, 256, 256, 64, 64, 64, 16, 16, 8]);
        assert_eq!(sizes(7), [7]);
        assert_eq!(sizes(11), [8, 3]);
        assert_eq!(sizes(23), [16, 7]);
        assert_eq!(sizes(2_500), [1024, 1024, 256, 64, 64, 64, 4]);
    }

    #[test]
    fn inserts_use_each_dialects_syntax() {
        assert_eq!(
            Dialect::MySql.insert::<StationHealth>(1),
            "INSERT INTO station_health (station_id, last_ok_at, last_error, checked_at, failures, counted_from) VALUES (?, ?, ?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE last_ok_at = VALUES(last_ok_at), last_error = VALUES(last_error), checked_at = VALUES(checked_at), failures = VALUES(failures), counted_from = VALUES(counted_from)"
        );
        assert_eq!(
            Dialect::Sqlite.insert::<StatusEvent>(2),
            "INSERT OR IGNORE INTO status_events (station_id, port, old_status, new_status, at) VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)"
        );
        let stations = Dialect::Sqlite.insert::<StationRow>(1);
        assert!(
            stations.ends_with("ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, lat = excluded.lat, lng = excluded.lng, vendor = excluded.vendor, enabled = excluded.enabled, port_count = excluded.port_count, updated_at = excluded.updated_at"),
            "{stations}"
        );
        assert_eq!(placeholder_list(3), "(?, ?, ?)");
        assert!(
            Dialect::MySql
                .insert::<HourRow>(1)
                .ends_with("energy_kwh = energy_kwh + VALUES(energy_kwh)")
        );
        assert!(
            Dialect::Sqlite
                .insert::<SessionRow>(1)
                .contains("ended_at = COALESCE(excluded.ended_at, ended_at)")
        );
    }
}
