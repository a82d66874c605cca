//! Station endpoints: list, detail, the default station's ports, manual refresh, history, and
//! (with the admin token) add, remove and refresh-all. Each handler maps its request onto the
//! monitor and the monitor's answer onto the core's JSON documents.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use csm_core::model::{PortStatus, Station, StationId};
use csm_core::monitor::{ManualRefresh, StationQuery};
use csm_core::store::EventQuery;
use csm_core::views::{EventListJson, ListView, StationDetailJson, StationJson, StationListJson};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Admin, ApiJson, ApiQuery, Operator, StationPath};
use super::responses::{AdminRefusals, BodyRefusals, Unavailable, UnknownStation};
use crate::AppState;
use crate::error::ApiError;
use crate::views::RefreshJson;

/// Filters and page of the station list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only stations whose id, name or address contains this text (case-insensitive).
    #[param(max_length = 200)]
    q: Option<String>,
    /// Only stations with at least one port in this status.
    #[param(value_type = Option<csm_core::model::PortStatus>)]
    status: Option<PortStatus>,
    /// Only stations of this vendor profile.
    #[param(max_length = 64)]
    vendor: Option<String>,
    /// Only these stations: ids separated by commas (at most 1,000), e.g. a user's favourites.
    #[param(
        pattern = "^ *([A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63})? *(, *([A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63})? *){0,999}$"
    )]
    ids: Option<String>,
    /// At most this many stations, for reading a large fleet a page at a time; `total` tells
    /// how many match.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// Stations to skip first (with `limit`: the page's start).
    #[param(minimum = 0, maximum = 4294967295_u64)]
    offset: Option<u64>,
    /// `full` (default): each station with its ports, as in `GET /api/stations/{station_id}`;
    /// `summary`: without the ports (the counts by status are in `summary` either way).
    #[param(value_type = Option<ViewParam>)]
    view: Option<String>,
}

/// How much of each station the list carries.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ViewParam {
    /// Every station with its ports.
    Full,
    /// Without the ports.
    Summary,
}

/// Every station with the counts of its ports by status, and (unless `view=summary`) its ports.
#[utoipa::path(
    get, path = "/api/stations", tag = "stations",
    params(ListQuery),
    responses(
        (status = 200, description = "The stations", body = StationListJson),
        (status = 400, description = "Unknown query parameter or a bad value", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn list_stations(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let view: ListView = query
        .view
        .as_deref()
        .map(str::parse)
        .transpose()?
        .unwrap_or_default();
    for (name, value, most) in [("q", &query.q, 200), ("vendor", &query.vendor, 64)] {
        if let Some(value) = value
            && value.chars().count() > most
        {
            return Err(ApiError::BadRequest(format!(
                "{name} is longer than {most} characters"
            )));
        }
    }
    let offset = query.offset.unwrap_or(0);
    if offset > u64::from(u32::MAX) {
        return Err(ApiError::BadRequest(format!(
            "offset {offset} is beyond {}",
            u32::MAX
        )));
    }
    let wanted = StationQuery {
        search: query.q,
        status: query.status,
        vendor: query.vendor,
        ids: query
            .ids
            .as_deref()
            .map(StationQuery::parse_ids)
            .transpose()?,
        limit: query.limit,
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        estimates: view == ListView::Full,
    };
    state
        .lists
        .answer(&state.monitor, wanted, view, &headers)
        .await
}

/// One station with all its ports.
#[utoipa::path(
    get, path = "/api/stations/{station_id}", tag = "stations",
    params(StationPath),
    responses(
        (status = 200, description = "The station and its ports", body = StationDetailJson),
        (status = 400, description = "Malformed station id", body = crate::views::ErrorJson),
        UnknownStation,
        Unavailable,
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
        (status = 404, description = "No station is configured", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn default_ports(State(state): State<AppState>) -> Result<Response, ApiError> {
    let station = state.monitor.stations().default().await?;
    station_answer(&state, &station.id).await
}

/// A station's answer: one made less than a quarter second ago, else a new one.
async fn station_answer(state: &AppState, id: &StationId) -> Result<Response, ApiError> {
    if let Some(answer) = state.details.fresh(id) {
        return Ok(answer);
    }
    let changes = state.changes.now();
    let view = state.monitor.stations().view(id).await?;
    Ok(state.details.answer(&view, changes))
}

/// Refreshes a station now, unless its data is younger than the cool-down.
#[utoipa::path(
    post, path = "/api/stations/{station_id}/refresh", tag = "stations",
    params(StationPath),
    responses(
        (status = 200, description = "The refresh ran (result ok or failed)", body = RefreshJson),
        (status = 400, description = "Malformed station id", body = crate::views::ErrorJson),
        UnknownStation,
        (status = 429, description = "Refreshed too recently, or too many manual refreshes; see Retry-After", body = crate::views::ErrorJson,
            headers(("Retry-After" = u64, description = "Seconds until a refresh is accepted"))),
        Unavailable,
    )
)]
pub async fn refresh_station(
    State(state): State<AppState>,
    StationPath(id): StationPath,
) -> Result<axum::Json<RefreshJson>, ApiError> {
    match state.monitor.refresh().manual(&id).await? {
        ManualRefresh::Refreshed(outcome) => {
            let view = state.monitor.stations().view(&id).await?;
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
                state.monitor.settings().manual_refresh.cooldown_secs
            ),
            retry_after,
        }),
        ManualRefresh::RateLimited { retry_after } => Err(ApiError::TooManyRequests {
            message: "too many manual refreshes across all stations; try again shortly".into(),
            retry_after,
        }),
        ManualRefresh::Forwarded { holder, result } => {
            let view = state.monitor.stations().view(&id).await?;
            let error = result.err().map(|error| match holder {
                Some(holder) => format!("{error} (refreshed through instance {holder})"),
                None => error,
            });
            Ok(axum::Json(RefreshJson {
                station_id: id.to_string(),
                result: if error.is_none() { "ok" } else { "failed" },
                error,
                station: StationDetailJson::of(&view),
            }))
        }
    }
}

/// Filters of a station's history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this port.
    #[param(minimum = 1, maximum = 1024)]
    port: Option<u32>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only changes at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Only changes before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<super::history::Format>)]
    format: Option<super::history::Format>,
}

/// A station's status changes, newest first.
#[utoipa::path(
    get, path = "/api/stations/{station_id}/events", tag = "stations",
    params(StationPath, EventsQuery),
    responses(
        (status = 200, description = "Status changes", content(
            (EventListJson = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Bad query", body = crate::views::ErrorJson),
        UnknownStation,
        Unavailable,
    )
)]
pub async fn station_events(
    State(state): State<AppState>,
    StationPath(id): StationPath,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let events = state
        .monitor
        .history()
        .events(&EventQuery {
            station_id: Some(id.clone()),
            port: query.port,
            since: query.since,
            until: query.until,
            limit: query.limit.unwrap_or(EventQuery::DEFAULT_LIMIT),
        })
        .await?;
    Ok(match query.format.unwrap_or_default() {
        super::history::Format::Json => axum::Json(EventListJson::of(&id, &events)).into_response(),
        super::history::Format::Csv => {
            let station = state.monitor.stations().get(&id).await?;
            let body = csm_core::views::history::csv::events(&station, &events);
            super::history::csv_response(body, &id, "events")
        }
    })
}

/// A station to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStation {
    /// The vendor's station id.
    #[serde(alias = "id")]
    #[schema(pattern = "^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}$")]
    pub station_id: String,
    /// Name shown to users.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Address.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub address: Option<String>,
    /// Latitude.
    #[serde(default)]
    #[schema(minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// Longitude.
    #[serde(default)]
    #[schema(minimum = -180, maximum = 180)]
    pub lng: Option<f64>,
    /// Vendor profile (default `simulator`): one of the profiles this server has.
    #[serde(default)]
    pub vendor: Option<String>,
    /// Refreshed by the scheduler (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Number of ports.
    #[serde(default, deserialize_with = "csm_core::model::whole::opt_u32")]
    #[schema(minimum = 0, maximum = 1024)]
    pub port_count: Option<u32>,
    /// OCPP charge points (vendor `ocpp`) only: the password the charger sends with HTTP Basic
    /// auth (16 to 40 characters), stored only as a salted hash.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 40)]
    pub password: Option<String>,
    /// OCPP charge points only: the security profile it must connect with — 1 (the default:
    /// its password, if any), 2 (TLS, `wss://`) or 3 (TLS with its client certificate).
    #[serde(default, deserialize_with = "csm_core::model::whole::opt_u32")]
    #[schema(minimum = 1, maximum = 3)]
    pub security_profile: Option<u32>,
}

/// Adds a station (admin token required).
#[utoipa::path(
    post, path = "/api/stations", tag = "admin",
    request_body = NewStation,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Added", body = StationJson),
        (status = 400, description = "Invalid station", body = crate::views::ErrorJson),
        AdminRefusals,
        (status = 409, description = "A station with this id exists", body = crate::views::ErrorJson),
        BodyRefusals,
        Unavailable,
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
    let profile = match body.security_profile {
        None => 1,
        Some(profile @ 1..=3) => profile as u8,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "security_profile {other}: OCPP's security profiles are 1, 2 and 3"
            )));
        }
    };
    match (body.password.as_deref(), profile) {
        (None, 1) => state.monitor.stations().add(&station).await?,
        (password, profile) => {
            state
                .monitor
                .ocpp()
                .add_charge_point(&station, password, profile)
                .await?
        }
    }
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
    params(StationPath),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Malformed station id", body = crate::views::ErrorJson),
        AdminRefusals,
        UnknownStation,
        Unavailable,
    )
)]
pub async fn delete_station(
    State(state): State<AppState>,
    _admin: Admin,
    StationPath(id): StationPath,
) -> Result<StatusCode, ApiError> {
    state.monitor.stations().remove(&id).await?;
    state.details.forget(&id);
    tracing::info!(station = %id, "station removed");
    Ok(StatusCode::NO_CONTENT)
}

/// How many stations a refresh-all started.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct RefreshAllJson {
    /// Enabled stations being refreshed.
    pub stations: usize,
}

/// Starts a refresh of every enabled station now (admin token required).
#[utoipa::path(
    post, path = "/api/refresh", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "Started", body = RefreshAllJson),
        AdminRefusals,
        Unavailable,
    )
)]
pub async fn refresh_all(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Response, ApiError> {
    let stations = state.monitor.refresh().all_in_background().await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(RefreshAllJson { stations }),
    )
        .into_response())
}
