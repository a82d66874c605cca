//! The few sqlx calls the store makes, for any backend: bind a value of one of the types csm
//! stores, read one back from a row, run a statement. [`Sql`] is implemented once, for every
//! sqlx database that supports those types (MySQL and SQLite), so the store's code is written
//! once over `DB: Sql` without repeating sqlx's type bounds at every use.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

/// A statement with its values bound, ready to run.
pub type Statement<DB> = Query<'static, DB, <DB as Database>::Arguments>;

/// A statement from text built of csm's own constants (never user input; values are bound).
pub fn statement<DB: Database>(sql: impl Into<String>) -> Statement<DB> {
    sqlx::query(sqlx::AssertSqlSafe(sql.into()))
}

/// [`statement`] of a text written once and shared (not copied).
pub fn shared_statement<DB: Database>(sql: std::sync::Arc<str>) -> Statement<DB> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
}

/// What the store needs of a sqlx database.
pub trait Sql: Database + Sized {
    /// Binds text (`None`: NULL).
    fn bind_text(statement: Statement<Self>, value: Option<&str>) -> Statement<Self>;
    /// Binds a number.
    fn bind_real(statement: Statement<Self>, value: Option<f64>) -> Statement<Self>;
    /// Binds a whole number.
    fn bind_int(statement: Statement<Self>, value: Option<i64>) -> Statement<Self>;
    /// Binds an unsigned whole number.
    fn bind_u32(statement: Statement<Self>, value: u32) -> Statement<Self>;
    /// Binds a boolean.
    fn bind_bool(statement: Statement<Self>, value: bool) -> Statement<Self>;
    /// Binds a time.
    fn bind_time(statement: Statement<Self>, value: Option<DateTime<Utc>>) -> Statement<Self>;

    /// Text of a column (`None`: NULL).
    fn text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error>;
    /// A number.
    fn real(row: &Self::Row, column: &str) -> Result<Option<f64>, sqlx::Error>;
    /// A whole number.
    fn int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error>;
    /// An unsigned whole number.
    fn u32(row: &Self::Row, column: &str) -> Result<u32, sqlx::Error>;
    /// A boolean.
    fn bool(row: &Self::Row, column: &str) -> Result<bool, sqlx::Error>;
    /// A time.
    fn time(row: &Self::Row, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;

    /// Runs a statement on a connection (in a transaction).
    fn execute(
        statement: Statement<Self>,
        connection: &mut Self::Connection,
    ) -> BoxFuture<'_, Result<Self::QueryResult, sqlx::Error>>;
    /// Runs a statement on a connection of the pool.
    fn execute_on(
        statement: Statement<Self>,
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, Result<Self::QueryResult, sqlx::Error>>;
    /// The rows of a query, on a connection.
    fn fetch_in(
        statement: Statement<Self>,
        connection: &mut Self::Connection,
    ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>>;
    /// The rows of a query, on a connection of the pool.
    fn fetch(
        statement: Statement<Self>,
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>>;
}

impl<DB> Sql for DB
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> &'r str: ColumnIndex<DB::Row>,
    for<'r> Option<&'r str>: Encode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<f64>: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Option<i64>: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> u32: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> bool: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
    for<'r> Option<DateTime<Utc>>: Encode<'r, DB> + Decode<'r, DB> + Type<DB>,
{
    fn bind_text(statement: Statement<Self>, value: Option<&str>) -> Statement<Self> {
        statement.bind(value)
    }
    fn bind_real(statement: Statement<Self>, value: Option<f64>) -> Statement<Self> {
        statement.bind(value)
    }
    fn bind_int(statement: Statement<Self>, value: Option<i64>) -> Statement<Self> {
        statement.bind(value)
    }
    fn bind_u32(statement: Statement<Self>, value: u32) -> Statement<Self> {
        statement.bind(value)
    }
    fn bind_bool(statement: Statement<Self>, value: bool) -> Statement<Self> {
        statement.bind(value)
    }
    fn bind_time(statement: Statement<Self>, value: Option<DateTime<Utc>>) -> Statement<Self> {
        statement.bind(value)
    }

    fn text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error> {
        row.try_get(column)
    }
    fn real(row: &Self::Row, column: &str) -> Result<Option<f64>, sqlx::Error> {
        row.try_get(column)
    }
    fn int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(column)
    }
    fn u32(row: &Self::Row, column: &str) -> Result<u32, sqlx::Error> {
        row.try_get(column)
    }
    fn bool(row: &Self::Row, column: &str) -> Result<bool, sqlx::Error> {
        row.try_get(column)
    }
    fn time(row: &Self::Row, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        row.try_get(column)
    }

    fn execute(
        statement: Statement<Self>,
        connection: &mut Self::Connection,
    ) -> BoxFuture<'_, Result<Self::QueryResult, sqlx::Error>> {
        Box::pin(connection.execute(statement))
    }
    fn execute_on(
        statement: Statement<Self>,
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, Result<Self::QueryResult, sqlx::Error>> {
        Box::pin(pool.execute(statement))
    }
    fn fetch_in(
        statement: Statement<Self>,
        connection: &mut Self::Connection,
    ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>> {
        Box::pin(connection.fetch_all(statement))
    }
    fn fetch(
        statement: Statement<Self>,
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, Result<Vec<Self::Row>, sqlx::Error>> {
        Box::pin(pool.fetch_all(statement))
    }
}
