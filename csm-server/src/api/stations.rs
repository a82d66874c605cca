//! Station endpoints: list, detail, the default station's ports, manual refresh, history, and
//! (with the admin token) add, remove and refresh-all.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use csm_core::model::{PortStatus, Station, StationId};
use csm_core::monitor::ManualRefresh;
use csm_core::store::EventQuery;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Admin, ApiJson, ApiQuery, StationPath};
use crate::AppState;
use crate::error::ApiError;
use crate::views::{
    ErrorJson, EventJson, EventListJson, RefreshJson, StationDetailJson, StationJson,
    StationListJson,
};

/// Filters of the station list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only stations whose id, name or address contains this text (case-insensitive).
    q: Option<String>,
    /// Only stations with at least one port in this status.
    #[param(value_type = Option<crate::views::PortStatusSchema>)]
    status: Option<PortStatus>,
    /// Only stations of this vendor profile.
    vendor: Option<String>,
    /// Only these stations: ids separated by commas (at most 1,000), e.g. a user's favourites.
    ids: Option<String>,
    /// At most this many stations (1–10,000), for reading a large fleet a page at a time;
    /// `total` tells how many match.
    limit: Option<usize>,
    /// Stations to skip first (with `limit`: the page's start).
    offset: Option<usize>,
}

/// Most stations one page may hold.
const MAX_PAGE: usize = 10_000;

/// Most ids `ids` may name.
const MAX_IDS: usize = 1_000;

/// The stations `ids` names, or why it names none.
fn parse_ids(ids: &str) -> Result<HashSet<StationId>, ApiError> {
    let names: Vec<&str> = ids
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if names.len() > MAX_IDS {
        return Err(ApiError::BadRequest(format!(
            "ids names {} stations; the limit is {MAX_IDS}",
            names.len()
        )));
    }
    names
        .into_iter()
        .map(|id| StationId::parse(id).map_err(|e| ApiError::BadRequest(format!("ids: {e}"))))
        .collect()
}

/// Every station with the counts of its ports by status.
#[utoipa::path(
    get, path = "/api/stations", tag = "stations",
    params(ListQuery),
    responses(
        (status = 200, description = "The stations", body = StationListJson),
        (status = 400, description = "Unknown query parameter or value", body = ErrorJson),
    )
)]
pub async fn list_stations(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<axum::Json<StationListJson>, ApiError> {
    if let Some(limit) = query.limit
        && !(1..=MAX_PAGE).contains(&limit)
    {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is outside 1..={MAX_PAGE}; read a larger fleet a page at a time with offset"
        )));
    }
    let needle = query
        .q
        .as_deref()
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty());
    let wanted = query.ids.as_deref().map(parse_ids).transpose()?;
    // Filters on the catalogue first; states are read only for the stations answered (all the
    // matches when filtering by port status, else just the page).
    let catalogue = state.monitor.stations().await?;
    let search = needle
        .as_deref()
        .map(|needle| (state.search.text_of(&catalogue), needle));
    let mut matching = catalogue
        .iter()
        .enumerate()
        .filter(|(index, station)| {
            let text_ok = search
                .as_ref()
                .is_none_or(|(text, needle)| text.matches(*index, needle));
            let vendor_ok = query.vendor.as_deref().is_none_or(|v| station.vendor == v);
            let id_ok = wanted.as_ref().is_none_or(|ids| ids.contains(&station.id));
            text_ok && vendor_ok && id_ok
        })
        .map(|(_, station)| station);
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(usize::MAX);
    let (total, views) = match query.status {
        Some(wanted) => {
            let views: Vec<_> = state
                .monitor
                .views_of(matching.cloned().collect())
                .await
                .into_iter()
                .filter(|view| {
                    view.state
                        .as_deref()
                        .is_some_and(|s| s.ports.iter().any(|p| p.reading.status == wanted))
                })
                .collect();
            let total = views.len();
            (total, views.into_iter().skip(offset).take(limit).collect())
        }
        None => {
            // Only the page is kept; the matches before and after it are counted.
            let before = matching.by_ref().take(offset).count();
            let page: Vec<Arc<Station>> = matching.by_ref().take(limit).cloned().collect();
            let total = before + page.len() + matching.count();
            (total, state.monitor.views_of(page).await)
        }
    };
    let stations = views.iter().map(StationJson::of).collect();
    Ok(axum::Json(StationListJson {
        stations,
        total,
        timestamp: Utc::now(),
    }))
}

/// One station with all its ports.
#[utoipa::path(
    get, path = "/api/stations/{station_id}", tag = "stations",
    params(("station_id" = String, Path, description = "The vendor's station id")),
    responses(
        (status = 200, description = "The station and its ports", body = StationDetailJson),
        (status = 400, description = "Malformed station id", body = ErrorJson),
        (status = 404, description = "No such station", body = ErrorJson),
    )
)]
pub async fn get_station(
    State(state): State<AppState>,
    StationPath(id): StationPath,
) -> Result<Response, ApiError> {
    station_answer(&state, &id).await
}

/// The ports of the default station (`CSM_DEFAULT_STATION`, else the first station).
#[utoipa::path(
    get, path = "/api/ports", tag = "stations",
    responses(
        (status = 200, description = "The default station and its ports", body = StationDetailJson),
        (status = 404, description = "No station is configured", body = ErrorJson),
    )
)]
pub async fn default_ports(State(state): State<AppState>) -> Result<Response, ApiError> {
    let station = state.monitor.default_station().await?;
    station_answer(&state, &station.id).await
}

/// A station's answer: the one encoded less than a quarter second ago, else from its view.
async fn station_answer(state: &AppState, id: &StationId) -> Result<Response, ApiError> {
    if let Some(answer) = state.details.fresh(id) {
        return Ok(answer);
    }
    let view = state.monitor.view(id).await?;
    Ok(state.details.response(&view))
}

/// Refreshes a station now, unless its data is younger than the cool-down.
#[utoipa::path(
    post, path = "/api/stations/{station_id}/refresh", tag = "stations",
    params(("station_id" = String, Path, description = "The vendor's station id")),
    responses(
        (status = 200, description = "The refresh ran (result ok or failed)", body = RefreshJson),
        (status = 404, description = "No such station", body = ErrorJson),
        (status = 429, description = "Refreshed too recently, or too many manual refreshes; see Retry-After", body = ErrorJson),
    )
)]
pub async fn refresh_station(
    State(state): State<AppState>,
    StationPath(id): StationPath,
) -> Result<axum::Json<RefreshJson>, ApiError> {
    match state.monitor.manual_refresh(&id).await? {
        ManualRefresh::Refreshed(outcome) => {
            let view = state.monitor.view(&id).await?;
            let (result, error) = match &outcome.result {
                Ok(_) => ("ok", None),
                Err(error) => ("failed", Some(error.to_string())),
            };
            Ok(axum::Json(RefreshJson {
                station_id: id.to_string(),
                result,
                error,
                station: StationDetailJson::of(&view),
            }))
        }
        ManualRefresh::CoolingDown { retry_after } => Err(ApiError::TooManyRequests {
            message: format!(
                "station {id} was refreshed moments ago; its data is fresh (cool-down {} s)",
                state.monitor.settings().manual_refresh_cooldown_secs
            ),
            retry_after,
        }),
        ManualRefresh::RateLimited { retry_after } => Err(ApiError::TooManyRequests {
            message: "too many manual refreshes across all stations; try again shortly".into(),
            retry_after,
        }),
    }
}

/// Filters of a station's history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this port.
    port: Option<u32>,
    /// At most this many (1–1000, default 100).
    limit: Option<u32>,
    /// Only changes at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Only changes before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
}

/// A station's status changes, newest first.
#[utoipa::path(
    get, path = "/api/stations/{station_id}/events", tag = "stations",
    params(("station_id" = String, Path, description = "The vendor's station id"), EventsQuery),
    responses(
        (status = 200, description = "Status changes", body = EventListJson),
        (status = 400, description = "Bad query", body = ErrorJson),
        (status = 404, description = "No such station", body = ErrorJson),
    )
)]
pub async fn station_events(
    State(state): State<AppState>,
    StationPath(id): StationPath,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<axum::Json<EventListJson>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is outside 1..=1000"
        )));
    }
    state.monitor.station(&id).await?;
    let events = state
        .monitor
        .store()
        .events(&EventQuery {
            station_id: Some(id.clone()),
            port: query.port,
            since: query.since,
            until: query.until,
            limit,
        })
        .await
        .map_err(csm_core::MonitorError::from)?;
    Ok(axum::Json(EventListJson {
        station_id: id.to_string(),
        events: events.iter().map(EventJson::from).collect(),
    }))
}

/// A station to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStation {
    /// The vendor's station id.
    #[serde(alias = "id")]
    pub station_id: String,
    /// Name shown to users.
    pub name: String,
    /// Address.
    #[serde(default)]
    pub address: Option<String>,
    /// Latitude.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude.
    #[serde(default)]
    pub lng: Option<f64>,
    /// Vendor profile (default `simulator`).
    #[serde(default)]
    pub vendor: Option<String>,
    /// Refreshed by the scheduler (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Number of ports.
    #[serde(default)]
    pub port_count: Option<u32>,
}

/// Adds a station (admin token required).
#[utoipa::path(
    post, path = "/api/stations", tag = "admin",
    request_body = NewStation,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Added", body = StationJson),
        (status = 400, description = "Invalid station", body = ErrorJson),
        (status = 401, description = "Missing or wrong token", body = ErrorJson),
        (status = 403, description = "Write endpoints disabled (no CSM_ADMIN_TOKEN)", body = ErrorJson),
        (status = 409, description = "A station with this id exists", body = ErrorJson),
    )
)]
pub async fn create_station(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(body): ApiJson<NewStation>,
) -> Result<Response, ApiError> {
    let station = Station {
        id: StationId::parse(&body.station_id)?,
        name: body.name,
        address: body.address,
        lat: body.lat,
        lng: body.lng,
        vendor: body
            .vendor
            .unwrap_or_else(|| csm_core::charger::SIMULATOR_VENDOR.into()),
        enabled: body.enabled.unwrap_or(true),
        port_count: body.port_count.unwrap_or(0),
    };
    station.validate()?;
    state.monitor.add_station(&station).await?;
    tracing::info!(station = %station.id, "station added");
    Ok((
        StatusCode::CREATED,
        axum::Json(StationJson::build(&station, None, true)),
    )
        .into_response())
}

/// Removes a station; its history stays (admin token required).
#[utoipa::path(
    delete, path = "/api/stations/{station_id}", tag = "admin",
    params(("station_id" = String, Path, description = "The vendor's station id")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or wrong token", body = ErrorJson),
        (status = 403, description = "Write endpoints disabled (no CSM_ADMIN_TOKEN)", body = ErrorJson),
        (status = 404, description = "No such station", body = ErrorJson),
    )
)]
pub async fn delete_station(
    State(state): State<AppState>,
    _admin: Admin,
    StationPath(id): StationPath,
) -> Result<StatusCode, ApiError> {
    state.monitor.remove_station(&id).await?;
    state.details.forget(&id);
    tracing::info!(station = %id, "station removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a refresh of every enabled station now (admin token required).
#[utoipa::path(
    post, path = "/api/refresh", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "Started; the number of stations", body = serde_json::Value),
        (status = 401, description = "Missing or wrong token", body = ErrorJson),
        (status = 403, description = "Write endpoints disabled (no CSM_ADMIN_TOKEN)", body = ErrorJson),
    )
)]
pub async fn refresh_all(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Response, ApiError> {
    let stations: Vec<Arc<Station>> = state
        .monitor
        .stations()
        .await?
        .iter()
        .filter(|s| s.enabled)
        .cloned()
        .collect();
    let count = stations.len();
    let engine = state.monitor.engine().clone();
    tokio::spawn(async move {
        engine.refresh_many(stations, |_| {}).await;
    });
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "stations": count })),
    )
        .into_response())
}
