//! Fired alerts: what a rule sends (the webhook's JSON body, what the bots' messages are
//! written from) and where its delivery stands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RuleId, RuleKind};

/// A fired alert: the webhook's JSON body, and what the bots' messages are written from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// Unique id (32 hex digits), the same on every delivery attempt.
    pub id: String,
    /// The rule that fired.
    pub rule: RuleId,
    /// The rule's kind.
    pub kind: RuleKind,
    /// `false` when the condition began, `true` when it ended.
    pub resolved: bool,
    /// The station.
    pub station_id: String,
    /// Its name.
    pub station_name: String,
    /// The port (`null` for a station as a whole).
    pub port: Option<u32>,
    /// The port's (or station's) status when it fired (`free`, `fault`, `offline`, …).
    pub status: String,
    /// Since when the condition held (or, resolved, when it began).
    pub since: DateTime<Utc>,
    /// When csm fired it.
    pub at: DateTime<Utc>,
    /// The message, in Chinese.
    pub text: String,
}

/// Where an alert's delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryState {
    /// Waiting to be sent (or for its next attempt).
    Pending,
    /// The channel accepted it.
    Delivered,
    /// The channel refused it, or every attempt failed.
    Failed,
}

impl DeliveryState {
    /// The name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// An alert in the history: the webhook's payload with its channel and delivery state.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRecord {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// The channel it goes to.
    pub channel: String,
    /// `pending`, `delivered` or `failed`.
    pub state: DeliveryState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// What the last failed attempt got.
    pub last_error: Option<String>,
    /// When the channel accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A new 32-hex-digit id.
pub fn new_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}
