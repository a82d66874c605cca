//! What alerts keep in the database: [`AlertStore`] (channels, rules, the outbox — claimed with
//! an expiry, so several instances can share it — and the alerts still open), and its SQL
//! implementation for both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use super::record::{Column, Record, Value};
use super::rows::Reader;
use super::sql::{Sql, Statement, statement};
use super::sql_store::{Backend, SqlStore};
use super::statements::{Dialect, OnConflict, Table, placeholder_list, placeholder_rows};
use crate::model::StationId;
use crate::model::alerts::{Channel, ChannelKind, DeliveryState, RuleId};
use crate::secret::Secret;

/// One alert in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// The alert's id.
    pub id: String,
    /// The rule that fired it.
    pub rule_id: RuleId,
    /// The channel it goes to.
    pub channel: String,
    /// The alert's JSON ([`super::Alert`]).
    pub payload: String,
    /// Where its delivery stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: u32,
    /// What the last failed attempt got.
    pub last_error: Option<String>,
    /// When it fired.
    pub created_at: DateTime<Utc>,
    /// Not sent before this (quiet hours, the next retry).
    pub due_at: DateTime<Utc>,
    /// When the channel accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// An alert that fired and has not resolved: its rule, where, and its id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpenAlert {
    /// The rule whose condition holds.
    pub rule_id: RuleId,
    /// The station where it holds.
    pub station_id: StationId,
    /// The port; 0 for the station as a whole.
    pub port: u32,
    /// The alert that opened it.
    pub alert_id: String,
    /// When the condition began (the alert's time).
    pub opened_at: DateTime<Utc>,
}

/// How a claimed delivery ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    /// The channel accepted it.
    Delivered {
        /// When the channel accepted it.
        at: DateTime<Utc>,
    },
    /// Try again at `due_at`; the attempt counts.
    Retry {
        /// The next attempt.
        due_at: DateTime<Utc>,
        /// What went wrong.
        error: String,
    },
    /// Given up: refused, or too many attempts.
    Failed {
        /// The last refusal or failure, as shown in the alert history.
        error: String,
    },
    /// Not attempted (the channel's rate limit): let go, to be sent from `due_at`.
    Release {
        /// When it may be claimed again.
        due_at: DateTime<Utc>,
    },
}

/// The alerts' tables.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Every channel, by name.
    async fn channels(&self) -> Result<Vec<Channel>, StoreError>;

    /// Adds a channel; [`StoreError::Duplicate`] if the name is taken.
    async fn add_channel(&self, channel: &Channel) -> Result<(), StoreError>;

    /// Removes a channel; `false` if there was none.
    async fn remove_channel(&self, name: &str) -> Result<bool, StoreError>;

    /// Every rule's id and stored definition (its JSON), by id.
    async fn rules(&self) -> Result<Vec<(RuleId, String)>, StoreError>;

    /// Stores a rule's definition; returns its new id.
    async fn add_rule(&self, definition: &str) -> Result<RuleId, StoreError>;

    /// Removes a rule and its open alerts; `false` if there was none.
    async fn remove_rule(&self, id: RuleId) -> Result<bool, StoreError>;

    /// The alerts still open.
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StoreError>;

    /// In one transaction: puts fired alerts in the outbox, and opens and closes open alerts.
    async fn record_alerts(
        &self,
        fired: &[OutboxRow],
        opened: &[OpenAlert],
        closed: &[(RuleId, StationId, u32)],
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` pending alerts due at `now` that nobody holds (or whose claim
    /// expired), under `claim` until `until`; returns them, oldest first.
    async fn claim_alerts(
        &self,
        claim: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError>;

    /// Ends the claim on some alerts with an outcome (only rows this claim still holds).
    async fn finish_alerts(
        &self,
        claim: &str,
        ids: &[String],
        finish: &Finish,
    ) -> Result<(), StoreError>;

    /// The latest alerts, newest first.
    async fn alert_history(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError>;

    /// Alerts waiting to be delivered.
    async fn outbox_depth(&self) -> Result<u64, StoreError>;
}
/// An alert channel as kept, with when it was added.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChannelRow {
    /// The channel.
    pub(crate) channel: Channel,
    /// When it was added.
    pub(crate) created_at: DateTime<Utc>,
}

impl Record for ChannelRow {
    const TABLE: Table = Table {
        name: "alert_channels",
        key: &["name"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("name", |r| Value::text(&r.channel.name)),
        Column::new("kind", |r| Value::text(r.channel.kind.as_str())),
        Column::new("url", |r| Value::text(&r.channel.url)),
        Column::new("secret", |r| {
            Value::Text(r.channel.secret.as_ref().map(Secret::expose))
        }),
        Column::new("created_at", |r| Value::time(r.created_at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        let kind = r.text("kind")?;
        Ok(Self {
            channel: Channel {
                name: r.text("name")?,
                kind: ChannelKind::parse(&kind).map_err(|e| r.corrupt("kind", e))?,
                url: r.text("url")?,
                secret: r.opt_text("secret")?.map(Secret::new),
            },
            created_at: r.time("created_at")?,
        })
    }
}

/// An alert rule as kept: its id (given by the database) and its definition (the rule's JSON).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RuleRow {
    /// Its id (0 until stored).
    pub(crate) id: RuleId,
    /// Its definition.
    pub(crate) definition: String,
    /// When it was added.
    pub(crate) created_at: DateTime<Utc>,
}

impl Record for RuleRow {
    const TABLE: Table = Table {
        name: "alert_rules",
        key: &["id"],
        on_conflict: OnConflict::Update,
    };
    // The id is the database's to give: not written, read beside the columns.
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("definition", |r| Value::text(&r.definition)),
        Column::new("created_at", |r| Value::time(r.created_at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            id: u64::try_from(r.int("id")?).map_err(|e| r.corrupt("id", e))?,
            definition: r.text("definition")?,
            created_at: r.time("created_at")?,
        })
    }
}

fn rule_id(id: RuleId) -> Value<'static> {
    Value::Int(Some(i64::try_from(id).unwrap_or(i64::MAX)))
}

/// The outbox: an alert is written once (a batch written again ignores what it wrote).
impl Record for OutboxRow {
    const TABLE: Table = Table {
        name: "alert_outbox",
        key: &["id"],
        on_conflict: OnConflict::Ignore,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("id", |r| Value::text(&r.id)),
        Column::new("rule_id", |r| rule_id(r.rule_id)),
        Column::new("channel", |r| Value::text(&r.channel)),
        Column::new("payload", |r| Value::text(&r.payload)),
        Column::new("state", |r| Value::text(r.state.as_str())),
        Column::new("attempts", |r| Value::U32(r.attempts)),
        Column::new("last_error", |r| Value::Text(r.last_error.as_deref())),
        Column::new("created_at", |r| Value::time(r.created_at)),
        Column::new("due_at", |r| Value::time(r.due_at)),
        Column::new("delivered_at", |r| Value::Time(r.delivered_at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        let state = r.text("state")?;
        Ok(Self {
            id: r.text("id")?,
            rule_id: u64::try_from(r.int("rule_id")?).map_err(|e| r.corrupt("rule_id", e))?,
            channel: r.text("channel")?,
            payload: r.text("payload")?,
            state: DeliveryState::parse(&state)
                .ok_or_else(|| r.corrupt("state", format!("{state:?} is not a delivery state")))?,
            attempts: r.u32("attempts")?,
            last_error: r.opt_text("last_error")?,
            created_at: r.time("created_at")?,
            due_at: r.time("due_at")?,
            delivered_at: r.opt_time("delivered_at")?,
        })
    }
}

/// The alerts still open, one per rule and target (a target opened again replaces its row).
impl Record for OpenAlert {
    const TABLE: Table = Table {
        name: "alert_open",
        key: &["rule_id", "station_id", "port"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("rule_id", |r| rule_id(r.rule_id)),
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("port", |r| Value::U32(r.port)),
        Column::new("alert_id", |r| Value::text(&r.alert_id)),
        Column::new("opened_at", |r| Value::time(r.opened_at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            rule_id: u64::try_from(r.int("rule_id")?).map_err(|e| r.corrupt("rule_id", e))?,
            station_id: r.id("station_id")?,
            port: r.u32("port")?,
            alert_id: r.text("alert_id")?,
            opened_at: r.time("opened_at")?,
        })
    }
}

/// Rows one statement deletes (well under both backends' bind limits).
const ROWS_PER_STATEMENT: usize = 500;

fn bind_id<DB: Sql>(q: Statement<DB>, id: RuleId) -> Statement<DB> {
    rule_id(id).bind::<DB>(q)
}

/// The statement that claims due, unclaimed outbox rows (MySQL updates with `ORDER BY …
/// LIMIT`; SQLite through a sub-select of their ids). Binds: claim, until, now, now.
fn claim_statement(dialect: Dialect, limit: u32) -> String {
    let due = "state = 'pending' AND due_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)";
    match dialect {
        Dialect::MySql => format!(
            "UPDATE alert_outbox SET claim = ?, claimed_until = ? WHERE {due} ORDER BY due_at LIMIT {limit}"
        ),
        Dialect::Sqlite => format!(
            "UPDATE alert_outbox SET claim = ?, claimed_until = ? WHERE id IN (SELECT id FROM alert_outbox WHERE {due} ORDER BY due_at LIMIT {limit})"
        ),
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// Runs one statement on the pool.
    pub(super) async fn run(
        &self,
        query: Statement<DB>,
        doing: &'static str,
    ) -> Result<u64, StoreError> {
        let done = DB::execute_on(query, &self.pool)
            .await
            .map_err(|e| self.error(doing, e))?;
        Ok(DB::rows_affected(&done))
    }
}

#[async_trait]
impl<DB: Backend> AlertStore for SqlStore<DB> {
    async fn channels(&self) -> Result<Vec<Channel>, StoreError> {
        let select = statement(format!(
            "SELECT {} FROM alert_channels ORDER BY name",
            ChannelRow::column_list()
        ));
        let rows = self.fetch(select, "reading alert channels").await?;
        rows.iter()
            .map(|row| ChannelRow::from_row::<DB>(row).map(|r| r.channel))
            .collect()
    }

    async fn add_channel(&self, channel: &Channel) -> Result<(), StoreError> {
        let row = ChannelRow {
            channel: channel.clone(),
            created_at: crate::model::now(),
        };
        let insert = statement(format!(
            "INSERT INTO alert_channels ({}) VALUES {}",
            ChannelRow::column_list(),
            placeholder_list(ChannelRow::COLUMNS.len())
        ));
        DB::execute_on(row.bind::<DB>(insert), &self.pool)
            .await
            .map_err(|e| {
                self.unique("adding an alert channel", e, || StoreError::Duplicate {
                    what: "channel",
                    name: channel.name.clone(),
                })
            })?;
        Ok(())
    }

    async fn remove_channel(&self, name: &str) -> Result<bool, StoreError> {
        let delete = DB::bind_text(
            statement("DELETE FROM alert_channels WHERE name = ?"),
            Some(name),
        );
        Ok(self.run(delete, "removing an alert channel").await? > 0)
    }

    async fn rules(&self) -> Result<Vec<(RuleId, String)>, StoreError> {
        let select = statement(format!(
            "SELECT id, {} FROM alert_rules ORDER BY id",
            RuleRow::column_list()
        ));
        let rows = self.fetch(select, "reading alert rules").await?;
        rows.iter()
            .map(|row| RuleRow::from_row::<DB>(row).map(|r| (r.id, r.definition)))
            .collect()
    }

    async fn add_rule(&self, definition: &str) -> Result<RuleId, StoreError> {
        let row = RuleRow {
            id: 0,
            definition: definition.to_owned(),
            created_at: crate::model::now(),
        };
        let insert = statement(format!(
            "INSERT INTO alert_rules ({}) VALUES {}",
            RuleRow::column_list(),
            placeholder_list(RuleRow::COLUMNS.len())
        ));
        let done = DB::execute_on(row.bind::<DB>(insert), &self.pool)
            .await
            .map_err(|e| self.error("adding an alert rule", e))?;
        Ok(DB::last_insert_id(&done))
    }

    async fn remove_rule(&self, id: RuleId) -> Result<bool, StoreError> {
        let doing = "removing an alert rule";
        let mut tx = self.begin(doing).await?;
        let work = async {
            let open = bind_id(statement("DELETE FROM alert_open WHERE rule_id = ?"), id);
            DB::execute(open, &mut *tx)
                .await
                .map_err(|e| self.error(doing, e))?;
            let rule = bind_id(statement("DELETE FROM alert_rules WHERE id = ?"), id);
            let done = DB::execute(rule, &mut *tx)
                .await
                .map_err(|e| self.error(doing, e))?;
            Ok(DB::rows_affected(&done) > 0)
        }
        .await;
        self.finish(tx, work, doing).await
    }

    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StoreError> {
        let select = statement(format!(
            "SELECT {} FROM alert_open",
            OpenAlert::column_list()
        ));
        let rows = self.fetch(select, "reading open alerts").await?;
        rows.iter().map(OpenAlert::from_row::<DB>).collect()
    }

    async fn record_alerts(
        &self,
        fired: &[OutboxRow],
        opened: &[OpenAlert],
        closed: &[(RuleId, StationId, u32)],
    ) -> Result<(), StoreError> {
        let doing = "writing fired alerts to the outbox";
        let mut tx = self.begin(doing).await?;
        let work = async {
            // Many at once (a fleet coming back): one statement a chunk, keys as row values.
            for chunk in closed.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "DELETE FROM alert_open WHERE (rule_id, station_id, port) IN ({})",
                    placeholder_rows(3, chunk.len())
                );
                let delete = chunk
                    .iter()
                    .fold(statement(sql), |q, (rule_id, station_id, port)| {
                        let q = bind_id(q, *rule_id);
                        let q = DB::bind_text(q, Some(station_id.as_str()));
                        DB::bind_u32(q, *port)
                    });
                DB::execute(delete, &mut *tx)
                    .await
                    .map_err(|e| self.error(doing, e))?;
            }
            // A target already open (opened by the instance that refreshed the station before
            // it moved here) is not opened, nor its alert sent, again.
            let mut already = std::collections::HashSet::new();
            for chunk in opened.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "SELECT rule_id, station_id, port FROM alert_open WHERE (rule_id, station_id, port) IN ({})",
                    placeholder_rows(3, chunk.len())
                );
                let select = chunk.iter().fold(statement(sql), |q, open| {
                    let q = bind_id(q, open.rule_id);
                    let q = DB::bind_text(q, Some(open.station_id.as_str()));
                    DB::bind_u32(q, open.port)
                });
                for row in DB::fetch_in(select, &mut *tx)
                    .await
                    .map_err(|e| self.error(doing, e))?
                {
                    let key = Reader::<DB>::new(&row, "alert_open");
                    let rule = key.int("rule_id")?;
                    already.insert((
                        u64::try_from(rule).map_err(|e| key.corrupt("rule_id", e))?,
                        key.text("station_id")?,
                        key.u32("port")?,
                    ));
                }
            }
            let (repeated, opened): (Vec<&OpenAlert>, Vec<&OpenAlert>) =
                opened.iter().partition(|open| {
                    already.contains(&(
                        open.rule_id,
                        open.station_id.to_string(),
                        open.port,
                    ))
                });
            let repeated: std::collections::HashSet<&str> =
                repeated.iter().map(|open| open.alert_id.as_str()).collect();
            let fired: Vec<OutboxRow> = fired
                .iter()
                .filter(|row| !repeated.contains(row.id.as_str()))
                .cloned()
                .collect();
            let opened: Vec<OpenAlert> = opened.into_iter().cloned().collect();
            self.insert_rows(&mut tx, &fired, doing).await?;
            self.insert_rows(&mut tx, &opened, doing).await
        }
        .await;
        self.finish(tx, work, doing).await
    }

    async fn claim_alerts(
        &self,
        claim: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let doing = "claiming alerts to deliver";
        let update = statement(claim_statement(DB::DIALECT, limit.max(1)));
        let update = DB::bind_text(update, Some(claim));
        let update = DB::bind_time(update, Some(until));
        let update = DB::bind_time(update, Some(now));
        let update = DB::bind_time(update, Some(now));
        // Every instance looks every second: on the kept connection.
        if self.execute_kept(update, doing).await? == 0 {
            return Ok(Vec::new());
        }
        let select = statement(format!(
            "SELECT {} FROM alert_outbox WHERE claim = ? ORDER BY created_at, id",
            OutboxRow::column_list()
        ));
        let rows = self
            .fetch(DB::bind_text(select, Some(claim)), doing)
            .await?;
        rows.iter().map(OutboxRow::from_row::<DB>).collect()
    }

    async fn finish_alerts(
        &self,
        claim: &str,
        ids: &[String],
        finish: &Finish,
    ) -> Result<(), StoreError> {
        let doing = "recording deliveries";
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let set = match finish {
                Finish::Delivered { .. } => {
                    "state = 'delivered', delivered_at = ?, attempts = attempts + 1, last_error = NULL"
                }
                Finish::Retry { .. } => "due_at = ?, last_error = ?, attempts = attempts + 1",
                Finish::Failed { .. } => {
                    "state = 'failed', last_error = ?, attempts = attempts + 1"
                }
                Finish::Release { .. } => "due_at = ?",
            };
            let sql = format!(
                "UPDATE alert_outbox SET {set}, claim = NULL, claimed_until = NULL WHERE claim = ? AND id IN {}",
                placeholder_list(chunk.len())
            );
            let mut update = statement(sql);
            update = match finish {
                Finish::Delivered { at } => DB::bind_time(update, Some(*at)),
                Finish::Retry { due_at, error } => {
                    DB::bind_text(DB::bind_time(update, Some(*due_at)), Some(error))
                }
                Finish::Failed { error } => DB::bind_text(update, Some(error)),
                Finish::Release { due_at } => DB::bind_time(update, Some(*due_at)),
            };
            update = DB::bind_text(update, Some(claim));
            let update = chunk
                .iter()
                .fold(update, |q, id| DB::bind_text(q, Some(id)));
            self.run(update, doing).await?;
        }
        Ok(())
    }

    async fn alert_history(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let select = statement(format!(
            "SELECT {} FROM alert_outbox ORDER BY created_at DESC, id LIMIT ?",
            OutboxRow::column_list()
        ));
        let select = DB::bind_int(select, Some(i64::from(limit)));
        let rows = self.fetch(select, "reading the alert history").await?;
        rows.iter().map(OutboxRow::from_row::<DB>).collect()
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        let select = statement("SELECT COUNT(*) AS n FROM alert_outbox WHERE state = 'pending'");
        let rows = self.fetch(select, "counting alerts to deliver").await?;
        rows.first()
            .map(super::rows::count::<DB>)
            .transpose()
            .map(Option::unwrap_or_default)
    }
}
