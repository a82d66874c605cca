//! Alert endpoints (admin token on every one): channels, rules, a channel's test message and
//! the history of fired alerts. Channels answer with their URL redacted and never their
//! secret.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use csm_core::alerts::{ChannelDraft, ChannelJson, RuleDraft, RuleJson};
use csm_core::views::alerts::{AlertListJson, ChannelListJson, ChannelTestJson, RuleListJson};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use super::responses::{AdminRefusals, BodyRefusals, Unavailable};
use crate::AppState;
use crate::error::ApiError;

/// A channel's name in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ChannelPath {
    /// The channel's name.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    name: String,
}

/// A rule's id in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RulePath {
    /// The rule's id.
    #[param(minimum = 1)]
    id: u64,
}

/// Alerts answered when the query names no limit.
const DEFAULT_HISTORY: u32 = 100;

/// How many alerts of the history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// At most this many, newest first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Every alert channel, with its URL redacted (admin token required).
#[utoipa::path(
    get, path = "/api/alerts/channels", tag = "alerts",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The channels", body = ChannelListJson),
        AdminRefusals,
        Unavailable,
    )
)]
pub async fn list_channels(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<axum::Json<ChannelListJson>, ApiError> {
    let channels = state.monitor.alerts().channels().await?;
    Ok(axum::Json(ChannelListJson { channels }))
}

/// Adds an alert channel (admin token required).
#[utoipa::path(
    post, path = "/api/alerts/channels", tag = "alerts",
    request_body = ChannelDraft,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Added", body = ChannelJson),
        (status = 400, description = "A bad name, kind, URL or secret (a webhook needs a secret), or a host CSM_ALERT_HOSTS does not allow", body = crate::views::ErrorJson),
        AdminRefusals,
        (status = 409, description = "A channel of this name exists", body = crate::views::ErrorJson),
        BodyRefusals,
        Unavailable,
    )
)]
pub async fn create_channel(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(draft): ApiJson<ChannelDraft>,
) -> Result<Response, ApiError> {
    let channel = state.monitor.alerts().add_channel(draft).await?;
    tracing::info!(channel = %channel.name, kind = channel.kind.as_str(), "alert channel added");
    Ok((StatusCode::CREATED, axum::Json(channel)).into_response())
}

/// Removes an alert channel no rule sends to (admin token required).
#[utoipa::path(
    delete, path = "/api/alerts/channels/{name}", tag = "alerts",
    params(ChannelPath),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Malformed name", body = crate::views::ErrorJson),
        AdminRefusals,
        (status = 404, description = "No such channel", body = crate::views::ErrorJson),
        (status = 409, description = "Rules send to it: remove them first", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn delete_channel(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(path): ApiPath<ChannelPath>,
) -> Result<StatusCode, ApiError> {
    state.monitor.alerts().remove_channel(&path.name).await?;
    tracing::info!(channel = %path.name, "alert channel removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test message to a channel now and says what the platform answered (admin token
/// required).
#[utoipa::path(
    post, path = "/api/alerts/channels/{name}/test", tag = "alerts",
    params(ChannelPath),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Sent (or tried): what the platform answered", body = ChannelTestJson),
        (status = 400, description = "Malformed name, or a host CSM_ALERT_HOSTS does not allow", body = crate::views::ErrorJson),
        AdminRefusals,
        (status = 404, description = "No such channel", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn test_channel(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(path): ApiPath<ChannelPath>,
) -> Result<axum::Json<ChannelTestJson>, ApiError> {
    let outcome = state.monitor.alerts().test_channel(&path.name).await?;
    Ok(axum::Json(ChannelTestJson::of(&path.name, outcome)))
}

/// Every alert rule (admin token required).
#[utoipa::path(
    get, path = "/api/alerts/rules", tag = "alerts",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The rules", body = RuleListJson),
        AdminRefusals,
        Unavailable,
    )
)]
pub async fn list_rules(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<axum::Json<RuleListJson>, ApiError> {
    let rules = state.monitor.alerts().rules().await?;
    Ok(axum::Json(RuleListJson { rules }))
}

/// Adds an alert rule; its stations and its channel must exist (admin token required).
#[utoipa::path(
    post, path = "/api/alerts/rules", tag = "alerts",
    request_body = RuleDraft,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Added", body = RuleJson),
        (status = 400, description = "A bad rule: an unknown kind, station or channel, port 0, negative minutes, a field its kind does not take or lacks, a bad window or time zone", body = crate::views::ErrorJson),
        AdminRefusals,
        BodyRefusals,
        Unavailable,
    )
)]
pub async fn create_rule(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(draft): ApiJson<RuleDraft>,
) -> Result<Response, ApiError> {
    let rule = state.monitor.alerts().add_rule(draft).await?;
    tracing::info!(
        rule = rule.id,
        kind = rule.kind.as_str(),
        "alert rule added"
    );
    Ok((StatusCode::CREATED, axum::Json(rule)).into_response())
}

/// Removes an alert rule; alerts it fired are still delivered (admin token required).
#[utoipa::path(
    delete, path = "/api/alerts/rules/{id}", tag = "alerts",
    params(RulePath),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Malformed id", body = crate::views::ErrorJson),
        AdminRefusals,
        (status = 404, description = "No such rule", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn delete_rule(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(path): ApiPath<RulePath>,
) -> Result<StatusCode, ApiError> {
    state.monitor.alerts().remove_rule(path.id).await?;
    tracing::info!(rule = path.id, "alert rule removed");
    Ok(StatusCode::NO_CONTENT)
}

/// The latest fired alerts with their delivery state (admin token required).
#[utoipa::path(
    get, path = "/api/alerts/history", tag = "alerts",
    params(HistoryQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The alerts, newest first", body = AlertListJson),
        (status = 400, description = "A bad limit", body = crate::views::ErrorJson),
        AdminRefusals,
        Unavailable,
    )
)]
pub async fn alert_history(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<axum::Json<AlertListJson>, ApiError> {
    let alerts = state
        .monitor
        .alerts()
        .history(query.limit.unwrap_or(DEFAULT_HISTORY))
        .await?;
    Ok(axum::Json(AlertListJson { alerts }))
}
