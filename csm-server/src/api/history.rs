//! History endpoints: a station's readings, sessions and statistics, and the fleet's
//! statistics. Events, sessions and readings also answer CSV (`?format=csv`).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use csm_core::history::stats::DEFAULT_DAYS;
use csm_core::model::StationId;
use csm_core::monitor::{ReadingsQuery, SessionsQuery};
use csm_core::views::history::{
    AvailabilityReportJson, FleetStatsJson, HistoryJson, SessionListJson, StationAvailabilityJson,
    StationStatsJson, csv,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, StationPath};
use super::responses::{Unavailable, UnknownStation};
use crate::error::ApiError;
use crate::{AppState, conditional};

/// The form of an answer.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON (default).
    #[default]
    Json,
    /// CSV: a header row, UTF-8, RFC 4180 quoting.
    Csv,
}

/// A CSV answer.
pub fn csv_response(body: Vec<u8>, station: &StationId, what: &str) -> Response {
    let disposition = format!("attachment; filename=\"{station}-{what}.csv\"");
    (
        [
            (header::CONTENT_TYPE, csv::MEDIA_TYPE.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// Range and resolution of a station's readings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Only this port.
    #[param(minimum = 1, maximum = 1024)]
    port: Option<u32>,
    /// From this time on (RFC 3339; default: 24 hours before `to`).
    from: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339; default: now).
    to: Option<DateTime<Utc>>,
    /// At most this many readings per port (default 500): the range is cut into this many
    /// equal spans and the last reading of each is answered.
    #[param(minimum = 1, maximum = 5000)]
    points: Option<u32>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<Format>)]
    format: Option<Format>,
}

/// A station's readings over time, per port, downsampled.
#[utoipa::path(
    get, path = "/api/stations/{station_id}/history", tag = "history",
    params(StationPath, HistoryParams),
    responses(
        (status = 200, description = "Readings per port", content(
            (HistoryJson = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Bad query", body = crate::views::ErrorJson),
        UnknownStation,
        Unavailable,
    )
)]
pub async fn station_history(
    State(state): State<AppState>,
    StationPath(id): StationPath,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Response, ApiError> {
    let station = state.monitor.stations().get(&id).await?;
    let readings = state
        .monitor
        .history()
        .readings(&ReadingsQuery {
            station_id: id.clone(),
            port: params.port,
            from: params.from,
            to: params.to,
            points: params.points.unwrap_or(ReadingsQuery::DEFAULT_POINTS),
        })
        .await?;
    Ok(match params.format.unwrap_or_default() {
        Format::Json => conditional::json_without_range(&HistoryJson::of(&station, &readings)),
        Format::Csv => csv_response(csv::readings(&station, &readings.readings), &id, "history"),
    })
}

/// Range and number of a station's sessions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SessionsParams {
    /// Only this port.
    #[param(minimum = 1, maximum = 1024)]
    port: Option<u32>,
    /// Sessions that started at or after this time (RFC 3339; default: 7 days before `to`).
    from: Option<DateTime<Utc>>,
    /// … and before this time (RFC 3339; default: now).
    to: Option<DateTime<Utc>>,
    /// At most this many, newest first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<Format>)]
    format: Option<Format>,
}

/// A station's charging sessions (stays in `occupied`), newest first; a running one is open.
#[utoipa::path(
    get, path = "/api/stations/{station_id}/sessions", tag = "history",
    params(StationPath, SessionsParams),
    responses(
        (status = 200, description = "Sessions", content(
            (SessionListJson = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Bad query", body = crate::views::ErrorJson),
        UnknownStation,
        Unavailable,
    )
)]
pub async fn station_sessions(
    State(state): State<AppState>,
    StationPath(id): StationPath,
    ApiQuery(params): ApiQuery<SessionsParams>,
) -> Result<Response, ApiError> {
    let station = state.monitor.stations().get(&id).await?;
    let sessions = state
        .monitor
        .history()
        .sessions(&SessionsQuery {
            station_id: id.clone(),
            port: params.port,
            from: params.from,
            to: params.to,
            limit: params.limit.unwrap_or(SessionsQuery::DEFAULT_LIMIT),
        })
        .await?;
    Ok(match params.format.unwrap_or_default() {
        Format::Json => axum::Json(SessionListJson::of(&station, &sessions)).into_response(),
        Format::Csv => csv_response(csv::sessions(&station, &sessions), &id, "sessions"),
    })
}

/// How many days statistics cover.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// Days up to now (default 7).
    #[param(minimum = 1, maximum = 366)]
    days: Option<u32>,
}

/// A station's statistics over the last N days: utilisation, minutes per status, occupancy by
/// weekday and hour, sessions and their lengths.
#[utoipa::path(
    get, path = "/api/stations/{station_id}/stats", tag = "history",
    params(StationPath, StatsParams),
    responses(
        (status = 200, description = "Statistics", body = StationStatsJson),
        (status = 400, description = "Bad query", body = crate::views::ErrorJson),
        UnknownStation,
        Unavailable,
    )
)]
pub async fn station_stats(
    State(state): State<AppState>,
    StationPath(id): StationPath,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let station = state.monitor.stations().get(&id).await?;
    let days = params.days.unwrap_or(DEFAULT_DAYS);
    let stats = state.monitor.history().station_stats(&id, days).await?;
    Ok(conditional::json_without_range(&StationStatsJson::of(
        &station, stats,
    )))
}

/// The fleet's statistics over the last N days, with the stations longest in fault or
/// offline.
#[utoipa::path(
    get, path = "/api/stats", tag = "history",
    params(StatsParams),
    responses(
        (status = 200, description = "Statistics", body = FleetStatsJson),
        (status = 400, description = "Bad query", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn fleet_stats(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let days = params.days.unwrap_or(DEFAULT_DAYS);
    let fleet = state.monitor.history().fleet_stats(days).await?;
    Ok(conditional::json_without_range(&FleetStatsJson::of(fleet)))
}

/// Which days a station's availability covers, and its form.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityParams {
    /// Days up to now (default 30).
    #[param(minimum = 1, maximum = 366)]
    days: Option<u32>,
    /// `json` (default) or `csv` (a row a day).
    format: Option<Format>,
}

/// A station's availability over the last N days: each day's share of port time not in fault
/// or offline (time taken out of service and unknown left out), and its outages: from, to,
/// which ports, why.
#[utoipa::path(
    get, path = "/api/stations/{station_id}/availability", tag = "history",
    params(StationPath, AvailabilityParams),
    responses(
        (status = 200, description = "Availability and outages (CSV with `format=csv`: a row a day)", content(
            (StationAvailabilityJson = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Bad query", body = crate::views::ErrorJson),
        UnknownStation,
        Unavailable,
    )
)]
pub async fn station_availability(
    State(state): State<AppState>,
    StationPath(id): StationPath,
    ApiQuery(params): ApiQuery<AvailabilityParams>,
) -> Result<Response, ApiError> {
    let days = params.days.unwrap_or(30);
    let found = state
        .monitor
        .history()
        .station_availability(&id, days)
        .await?;
    let document = StationAvailabilityJson::of(found);
    Ok(match params.format.unwrap_or_default() {
        Format::Json => conditional::json_without_range(&document),
        Format::Csv => csv_response(csv::availability(&document), &id, "availability"),
    })
}

/// Which days the fleet's availability report covers, its threshold and its form.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Days up to now (default 7: last week).
    #[param(minimum = 1, maximum = 366)]
    days: Option<u32>,
    /// List the stations below this share (default 0.95: 95%).
    #[param(minimum = 0, maximum = 1)]
    below: Option<f64>,
    /// `json` (default) or `csv`.
    format: Option<Format>,
}

/// The fleet's availability over the last N days and the stations below a threshold, least
/// available first: the operators' weekly review.
#[utoipa::path(
    get, path = "/api/availability", tag = "history",
    params(ReportParams),
    responses(
        (status = 200, description = "The report (CSV with `format=csv`: a row a station)", content(
            (AvailabilityReportJson = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Bad query", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn availability_report(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> Result<Response, ApiError> {
    let days = params.days.unwrap_or(7);
    let below = params.below.unwrap_or(0.95);
    let report = state
        .monitor
        .history()
        .availability_report(days, below)
        .await?;
    let document = AvailabilityReportJson::of(&report);
    Ok(match params.format.unwrap_or_default() {
        Format::Json => conditional::json_without_range(&document),
        Format::Csv => (
            [
                (header::CONTENT_TYPE, csv::MEDIA_TYPE),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"csm-availability.csv\"",
                ),
            ],
            csv::availability_report(&document),
        )
            .into_response(),
    })
}
