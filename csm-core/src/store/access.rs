//! What access control keeps in the database: [`AccessStore`] (API tokens, as hashes, and the
//! audit log), and its SQL implementation for both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use super::record::{Column, Record, Value};
use super::rows::Reader;
use super::sql::{Sql, statement};
use super::sql_store::{Backend, SqlStore};
use super::statements::{OnConflict, Table, placeholder_list};
use crate::model::access::{AuditEntry, Role, TokenRecord};

/// Tokens and the audit log.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Every token, by name.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Adds a token; [`StoreError::Duplicate`] if the name is taken.
    async fn add_token(&self, token: &TokenRecord) -> Result<(), StoreError>;

    /// Removes a token; `false` if there was none.
    async fn revoke_token(&self, name: &str) -> Result<bool, StoreError>;

    /// Notes that a token was used at `at`.
    async fn token_used(&self, name: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Appends an entry to the audit log.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// The audit log's entries from `from` to `to`, newest first, at most `limit`.
    async fn audit(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

impl Record for TokenRecord {
    const TABLE: Table = Table {
        name: "api_tokens",
        key: &["name"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("name", |r| Value::text(&r.name)),
        Column::new("role", |r| Value::text(r.role.as_str())),
        Column::new("hash", |r| Value::text(&r.hash)),
        Column::new("created_at", |r| Value::time(r.created_at)),
        Column::new("last_used_at", |r| Value::Time(r.last_used_at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            name: r.text("name")?,
            role: Role::parse(&r.text("role")?).map_err(|e| r.corrupt("role", e))?,
            hash: r.text("hash")?,
            created_at: r.time("created_at")?,
            last_used_at: r.opt_time("last_used_at")?,
        })
    }
}

/// The audit log: its id is the database's to give, read beside the columns.
impl Record for AuditEntry {
    const TABLE: Table = Table {
        name: "audit_log",
        key: &["id"],
        on_conflict: OnConflict::Ignore,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("at", |r| Value::time(r.at)),
        Column::new("actor", |r| Value::text(&r.actor)),
        Column::new("role", |r| Value::Text(r.role.map(Role::as_str))),
        Column::new("address", |r| Value::text(&r.address)),
        Column::new("method", |r| Value::text(&r.method)),
        Column::new("path", |r| Value::text(&r.path)),
        Column::new("request", |r| Value::Text(r.request.as_deref())),
        Column::new("status", |r| Value::U32(u32::from(r.status))),
        Column::new("outcome", |r| Value::text(&r.outcome)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        let role = r
            .opt_text("role")?
            .map(|role| Role::parse(&role).map_err(|e| r.corrupt("role", e)))
            .transpose()?;
        Ok(Self {
            id: u64::try_from(r.int("id")?).map_err(|e| r.corrupt("id", e))?,
            at: r.time("at")?,
            actor: r.text("actor")?,
            role,
            address: r.text("address")?,
            method: r.text("method")?,
            path: r.text("path")?,
            request: r.opt_text("request")?,
            status: u16::try_from(r.u32("status")?).map_err(|e| r.corrupt("status", e))?,
            outcome: r.text("outcome")?,
        })
    }
}

/// Cuts a text to what its column holds (1,024 characters).
fn capped(text: &str) -> String {
    text.chars().take(1_024).collect()
}

#[async_trait]
impl<DB: Backend> AccessStore for SqlStore<DB> {
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let select = statement(format!(
            "SELECT {} FROM api_tokens ORDER BY name",
            TokenRecord::column_list()
        ));
        let rows = self.fetch(select, "reading API tokens").await?;
        rows.iter().map(TokenRecord::from_row::<DB>).collect()
    }

    async fn add_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let insert = statement(format!(
            "INSERT INTO api_tokens ({}) VALUES {}",
            TokenRecord::column_list(),
            placeholder_list(TokenRecord::COLUMNS.len())
        ));
        DB::execute_on(token.bind::<DB>(insert), &self.pool)
            .await
            .map_err(|e| {
                self.unique("adding an API token", e, || StoreError::Duplicate {
                    what: "token",
                    name: token.name.clone(),
                })
            })?;
        Ok(())
    }

    async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let delete = DB::bind_text(
            statement("DELETE FROM api_tokens WHERE name = ?"),
            Some(name),
        );
        Ok(self.run(delete, "revoking an API token").await? > 0)
    }

    async fn token_used(&self, name: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let update = DB::bind_text(
            DB::bind_time(
                statement("UPDATE api_tokens SET last_used_at = ? WHERE name = ?"),
                Some(at),
            ),
            Some(name),
        );
        self.run(update, "noting an API token's use").await?;
        Ok(())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let entry = AuditEntry {
            path: capped(&entry.path),
            outcome: capped(&entry.outcome),
            ..entry.clone()
        };
        let insert = statement(format!(
            "INSERT INTO audit_log ({}) VALUES {}",
            AuditEntry::column_list(),
            placeholder_list(AuditEntry::COLUMNS.len())
        ));
        self.run(entry.bind::<DB>(insert), "writing the audit log")
            .await?;
        Ok(())
    }

    async fn audit(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let select = statement(format!(
            "SELECT id, {} FROM audit_log WHERE at >= ? AND at < ? ORDER BY id DESC LIMIT {limit}",
            AuditEntry::column_list()
        ));
        let select = DB::bind_time(DB::bind_time(select, Some(from)), Some(to));
        let rows = self.fetch(select, "reading the audit log").await?;
        rows.iter().map(AuditEntry::from_row::<DB>).collect()
    }
}
