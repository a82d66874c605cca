//! The JSON documents of the alert endpoints, shared by the API and `csm-cli alerts … --json`.

use serde::Serialize;

use crate::alerts::{AlertRecord, ChannelJson, RuleJson, TestOutcome};

/// Every alert channel (`GET /api/alerts/channels`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelListJson {
    /// By name.
    pub channels: Vec<ChannelJson>,
}

/// Every alert rule (`GET /api/alerts/rules`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleListJson {
    /// By id.
    pub rules: Vec<RuleJson>,
}

/// The latest alerts (`GET /api/alerts/history`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertListJson {
    /// Newest first.
    pub alerts: Vec<AlertRecord>,
}

/// What a channel answered a test message (`POST /api/alerts/channels/{name}/test`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelTestJson {
    /// The channel.
    pub channel: String,
    /// Whether the platform accepted it.
    pub accepted: bool,
    /// What it answered (or why nothing could be sent).
    pub answer: String,
}

impl ChannelTestJson {
    /// The document of a test's outcome.
    pub fn of(channel: &str, outcome: TestOutcome) -> Self {
        Self {
            channel: channel.to_owned(),
            accepted: outcome.accepted,
            answer: outcome.answer,
        }
    }
}
