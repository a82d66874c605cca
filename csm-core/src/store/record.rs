//! What a table's rows are, written once per table: a [`Record`] type names its table, lists
//! its columns each with the value a record gives it (so a column's name and what is bound to
//! it cannot part), and reads a row back by those names. The statements (`statements.rs`) take
//! their column lists from it, and a round-trip test writes and reads every table on both
//! backends.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::rows::Reader;
use super::sql::{Sql, Statement};
use super::statements::Table;

/// A value bound into a statement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Value<'a> {
    /// Text (`None`: NULL).
    Text(Option<&'a str>),
    /// A number.
    Real(Option<f64>),
    /// A whole number.
    Int(Option<i64>),
    /// An unsigned whole number.
    U32(u32),
    /// A boolean.
    Bool(bool),
    /// A time.
    Time(Option<DateTime<Utc>>),
}

impl<'a> Value<'a> {
    /// Text that is there.
    pub(crate) fn text(text: &'a str) -> Self {
        Value::Text(Some(text))
    }

    /// A time that is there.
    pub(crate) fn time(at: DateTime<Utc>) -> Self {
        Value::Time(Some(at))
    }

    /// A count kept as a signed whole number.
    pub(crate) fn count(n: u64) -> Self {
        Value::Int(Some(i64::try_from(n).unwrap_or(i64::MAX)))
    }

    /// Binds the value as the statement's next parameter.
    pub(crate) fn bind<DB: Sql>(self, statement: Statement<DB>) -> Statement<DB> {
        match self {
            Value::Text(text) => DB::bind_text(statement, text),
            Value::Real(n) => DB::bind_real(statement, n),
            Value::Int(n) => DB::bind_int(statement, n),
            Value::U32(n) => DB::bind_u32(statement, n),
            Value::Bool(b) => DB::bind_bool(statement, b),
            Value::Time(at) => DB::bind_time(statement, at),
        }
    }
}

/// One column of a record's table: its name, and the value a record gives it.
pub(crate) struct Column<R> {
    /// The column's name.
    pub(crate) name: &'static str,
    /// The value of a record in it.
    pub(crate) value: for<'a> fn(&'a R) -> Value<'a>,
}

impl<R> Column<R> {
    /// The column `name`, whose value a record gives through `value`.
    pub(crate) const fn new(name: &'static str, value: for<'a> fn(&'a R) -> Value<'a>) -> Self {
        Self { name, value }
    }
}

/// A record type kept as the rows of one table.
pub(crate) trait Record: Sized + 'static {
    /// The table: its name, its key, what writing a row with an existing key does.
    const TABLE: Table;
    /// Every column a row writes, in binding order, each with its value.
    const COLUMNS: &'static [Column<Self>];

    /// A record from a row read back (a `SELECT` of [`Record::column_list`]).
    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError>;

    /// The names of the columns, comma separated.
    fn column_list() -> String {
        Self::names().join(", ")
    }

    /// The names of the columns, in binding order.
    fn names() -> Vec<&'static str> {
        Self::COLUMNS.iter().map(|c| c.name).collect()
    }

    /// Binds the record's values, in the order of its columns.
    fn bind<DB: Sql>(&self, statement: Statement<DB>) -> Statement<DB> {
        Self::COLUMNS.iter().fold(statement, |statement, column| {
            (column.value)(self).bind::<DB>(statement)
        })
    }

    /// A record from a row read back.
    fn from_row<DB: Sql>(row: &DB::Row) -> Result<Self, StoreError> {
        Self::read(&Reader::<DB>::new(row, Self::TABLE.name))
    }
}
