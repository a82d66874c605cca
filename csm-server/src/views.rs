//! The JSON of the server's own answers: a manual refresh, readiness, errors. The documents of
//! stations, ports and events are the core's ([`csm_core::views`]), shared with the CLI.

use csm_core::views::StationDetailJson;
use serde::Serialize;
use utoipa::ToSchema;

/// The answer to a manual refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshJson {
    /// The station.
    pub station_id: String,
    /// `ok` or `failed`.
    pub result: &'static str,
    /// Why it failed.
    pub error: Option<String>,
    /// The station after the refresh.
    pub station: StationDetailJson,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessJson {
    /// `ready`, `degraded` (one dependency down; reads still served) or `unavailable`.
    pub status: &'static str,
    /// `ok` or the database error.
    pub database: String,
    /// `ok` or the cache error.
    pub cache: String,
}

/// An error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorJson {
    /// What was wrong.
    pub error: String,
    /// For 429: seconds until a retry is accepted.
    pub retry_after_secs: Option<u64>,
}
