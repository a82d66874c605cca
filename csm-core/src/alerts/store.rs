//! What alerts keep in the database ([`AlertStore`], implemented by the SQL store for both
//! backends): channels, rules, the outbox and the alerts still open.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::model::{Channel, DeliveryState, RuleId};
use crate::model::StationId;
use crate::store::StoreError;

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
    /// The rule.
    pub rule_id: RuleId,
    /// The station.
    pub station_id: StationId,
    /// The port; 0 for the station as a whole.
    pub port: u32,
    /// The alert that opened it.
    pub alert_id: String,
    /// When.
    pub opened_at: DateTime<Utc>,
}

/// How a claimed delivery ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    /// The channel accepted it.
    Delivered {
        /// When.
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
        /// Why.
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
