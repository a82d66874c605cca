//! When each instance of a cluster last reached the cluster's Redis, for both backends: the
//! database is the witness an instance cut off from Redis asks whether the others still reach
//! it.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::record::{Column, Record, Value};
use super::rows::Reader;
use super::sql::{Sql, shared_statement, statement};
use super::sql_store::{Backend, SqlStore};
use super::statements::{OnConflict, Table};

/// An instance and when it last reached Redis.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct InstanceRow {
    pub(crate) instance_id: String,
    pub(crate) redis_seen_at: DateTime<Utc>,
    pub(crate) reaching_since: DateTime<Utc>,
}

impl Record for InstanceRow {
    const TABLE: Table = Table {
        name: "cluster_instances",
        key: &["instance_id"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("instance_id", |r| Value::text(&r.instance_id)),
        Column::new("redis_seen_at", |r| Value::time(r.redis_seen_at)),
        Column::new("reaching_since", |r| Value::time(r.reaching_since)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            instance_id: r.text("instance_id")?,
            redis_seen_at: r.time("redis_seen_at")?,
            reaching_since: r.time("reaching_since")?,
        })
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// Records that instance `id` reached Redis at `at`, without a break since `since`.
    pub(super) async fn write_redis_seen(
        &self,
        id: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let doing = "recording that this instance reaches Redis";
        let row = InstanceRow {
            instance_id: id.to_owned(),
            redis_seen_at: at,
            reaching_since: since,
        };
        // One statement, on its own and on the kept connection: every instance writes it at
        // each beat.
        let upsert = row.bind(shared_statement(
            DB::DIALECT.shared_insert::<InstanceRow>(1),
        ));
        self.execute_kept(upsert, doing).await?;
        Ok(())
    }

    /// Whether an instance other than `id` has reached Redis without a break from `since` (or
    /// earlier) to after `after`.
    pub(super) async fn read_redis_seen_elsewhere(
        &self,
        id: &str,
        since: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let select = statement(
            "SELECT instance_id FROM cluster_instances \
             WHERE instance_id <> ? AND reaching_since <= ? AND redis_seen_at > ?",
        );
        let select = DB::bind_text(select, Some(id));
        let select = DB::bind_time(DB::bind_time(select, Some(since)), Some(after));
        let rows = self
            .fetch(select, "asking whether other instances reach Redis")
            .await?;
        Ok(!rows.is_empty())
    }
}
