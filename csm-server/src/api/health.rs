//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::AppState;
use crate::views::ReadinessJson;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = serde_json::Value)))]
pub async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Whether the database and the cache answer: `ready`; `degraded` (200) when one is down and
/// reads are still served from the other; `unavailable` (503) when both are down.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready or degraded", body = ReadinessJson),
        (status = 503, description = "Neither the database nor the cache answers", body = ReadinessJson),
    ))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = state.monitor.readiness().await;
    let describe = |result: &Result<(), String>| match result {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.clone(),
    };
    let (status, code) = match (&readiness.database, &readiness.cache) {
        (Ok(()), Ok(())) => ("ready", StatusCode::OK),
        (Err(_), Err(_)) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        _ => ("degraded", StatusCode::OK),
    };
    (
        code,
        axum::Json(ReadinessJson {
            status,
            database: describe(&readiness.database),
            cache: describe(&readiness.cache),
        }),
    )
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
