//! Tokens (`/api/tokens`) and the audit log (`/api/audit`), for admins: the same as
//! `csm-cli tokens …` and `csm-cli audit`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use csm_core::model::access::Role;
use csm_core::views::access::{
    AuditEntryJson, AuditListJson, NewTokenJson, TokenJson, TokenListJson,
};
use csm_core::views::history::csv;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Viewer};
use super::history::Format;
use super::responses::{AdminRefusals, BodyRefusals, Unavailable};
use crate::AppState;
use crate::error::ApiError;

/// A new token: who it is for and its role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Who it is for: 1–64 letters, digits, `.`, `_`, `-`, `@`.
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    name: String,
    /// `viewer`, `operator` or `admin`.
    role: Role,
}

/// A token's name in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// The token's name.
    #[param(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    name: String,
}

/// Every token: name, role, when added, when last used (never the token).
#[utoipa::path(
    get, path = "/api/tokens", tag = "access",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The tokens, by name", body = TokenListJson),
        AdminRefusals,
        Unavailable,
    )
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<axum::Json<TokenListJson>, ApiError> {
    let tokens = state.monitor.access().tokens().await?;
    Ok(axum::Json(TokenListJson {
        tokens: tokens.iter().map(TokenJson::of).collect(),
    }))
}

/// Adds a token for a person: the answer holds the token itself, shown this once (csm keeps
/// only its hash).
#[utoipa::path(
    post, path = "/api/tokens", tag = "access",
    request_body = NewToken,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Added: the token, shown once", body = NewTokenJson),
        (status = 400, description = "A bad name", body = crate::views::ErrorJson),
        AdminRefusals,
        (status = 409, description = "A token of this name exists: revoke it first", body = crate::views::ErrorJson),
        BodyRefusals,
        Unavailable,
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(new): ApiJson<NewToken>,
) -> Result<Response, ApiError> {
    let (record, token) = state
        .monitor
        .access()
        .add_token(&new.name, new.role)
        .await?;
    tracing::info!(token = %record.name, role = %record.role, "API token added");
    let body = NewTokenJson {
        record: TokenJson::of(&record),
        token,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Revokes a token: it stops working at once on this instance, within 2 s on the others.
#[utoipa::path(
    delete, path = "/api/tokens/{name}", tag = "access",
    params(TokenPath),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Malformed name", body = crate::views::ErrorJson),
        AdminRefusals,
        (status = 404, description = "No such token", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(path): ApiPath<TokenPath>,
) -> Result<StatusCode, ApiError> {
    state.monitor.access().revoke(&path.name).await?;
    tracing::info!(token = %path.name, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Who a token is: its name and role (the page asks this to show what the role allows).
#[utoipa::path(
    get, path = "/api/whoami", tag = "access",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The token's name and role", body = WhoAmIJson),
        (status = 401, description = "No token, or one csm does not know", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn whoami(Viewer(identity): Viewer) -> axum::Json<WhoAmIJson> {
    axum::Json(WhoAmIJson {
        name: identity.name,
        role: identity.role,
    })
}

/// A token's name and role.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct WhoAmIJson {
    /// The token's name (`CSM_ADMIN_TOKEN` for the bootstrap token).
    name: String,
    /// Its role.
    role: Role,
}

/// Which part of the audit log to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// From this time on (RFC 3339; default: 7 days before `to`).
    from: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339; default: now).
    to: Option<DateTime<Utc>>,
    /// At most this many entries, the newest (default 1,000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
    /// `json` (default) or `csv`.
    format: Option<Format>,
}

/// The audit log: every write and command, newest first: who (the token's name), when, from
/// which address, the request with its secrets masked, and how it ended.
#[utoipa::path(
    get, path = "/api/audit", tag = "access",
    params(AuditQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The entries, newest first (CSV with `format=csv`)", content(
            (AuditListJson = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A bad query", body = crate::views::ErrorJson),
        AdminRefusals,
        Unavailable,
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let to = query.to.unwrap_or_else(csm_core::model::now);
    let from = query.from.unwrap_or(to - TimeDelta::days(7));
    let limit = query.limit.unwrap_or(1_000);
    if !(1..=csm_core::monitor::MAX_AUDIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is outside 1..10000"
        )));
    }
    // An empty range has no entries (as history's).
    let entries = if from < to {
        state.monitor.access().audit(from, to, limit).await?
    } else {
        Vec::new()
    };
    Ok(match query.format.unwrap_or_default() {
        Format::Json => axum::Json(AuditListJson {
            from,
            to,
            entries: entries.iter().map(AuditEntryJson::of).collect(),
        })
        .into_response(),
        Format::Csv => (
            [
                (header::CONTENT_TYPE, csv::MEDIA_TYPE),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"csm-audit.csv\"",
                ),
            ],
            csv::audit(&entries),
        )
            .into_response(),
    })
}
