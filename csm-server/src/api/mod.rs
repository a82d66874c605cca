//! The HTTP routes, merged in one place, with the layers every request passes through.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::{AppState, assets, conditional, metrics, openapi};

pub mod access;
pub mod alerts;
pub mod cluster;
pub mod events;
pub mod extract;
pub mod health;
pub mod history;
pub mod ocpp;
pub mod responses;
pub mod stations;

/// Largest total size of a request's headers; hyper itself refuses more than about 400 KiB and
/// 100 headers before this runs.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest time a (non-streaming) request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/api/stations",
            get(stations::list_stations).post(stations::create_station),
        )
        .route(
            "/api/stations/{station_id}",
            get(stations::get_station).delete(stations::delete_station),
        )
        .route(
            "/api/stations/{station_id}/refresh",
            post(stations::refresh_station),
        )
        .route(
            "/api/stations/{station_id}/events",
            get(stations::station_events),
        )
        .route(
            "/api/stations/{station_id}/history",
            get(history::station_history),
        )
        .route(
            "/api/stations/{station_id}/sessions",
            get(history::station_sessions),
        )
        .route(
            "/api/stations/{station_id}/stats",
            get(history::station_stats),
        )
        .route("/api/stats", get(history::fleet_stats))
        .route(
            "/api/stations/{station_id}/availability",
            get(history::station_availability),
        )
        .route("/api/availability", get(history::availability_report))
        .route(
            "/api/alerts/channels",
            get(alerts::list_channels).post(alerts::create_channel),
        )
        .route(
            "/api/alerts/channels/{name}",
            delete(alerts::delete_channel),
        )
        .route(
            "/api/alerts/channels/{name}/test",
            post(alerts::test_channel),
        )
        .route(
            "/api/alerts/rules",
            get(alerts::list_rules).post(alerts::create_rule),
        )
        .route("/api/alerts/rules/{id}", delete(alerts::delete_rule))
        .route("/api/alerts/history", get(alerts::alert_history))
        .route("/api/ocpp/charge-points", get(ocpp::charge_points))
        .route(
            "/api/ocpp/charge-points/{station_id}",
            get(ocpp::charge_point),
        )
        .route(
            "/api/ocpp/charge-points/{station_id}/commands",
            post(ocpp::command),
        )
        .route(
            "/api/ocpp/charge-points/{station_id}/messages",
            get(ocpp::messages),
        )
        .route(
            "/api/ocpp/charge-points/{station_id}/security",
            put(ocpp::set_security),
        )
        .route("/api/cluster", get(cluster::cluster))
        .route(
            "/api/tokens",
            get(access::list_tokens).post(access::create_token),
        )
        .route("/api/tokens/{name}", delete(access::revoke_token))
        .route("/api/audit", get(access::audit))
        .route("/api/whoami", get(access::whoami))
        .route("/api/ports", get(stations::default_ports))
        .route("/api/refresh", post(stations::refresh_all))
        .route("/api/openapi.json", get(openapi_document(&state)))
        .route("/api/docs", get(assets::docs))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ));
    let api = match state.config.bench_ceiling_bytes {
        Some(bytes) => {
            let handler = ceiling_handler(bytes);
            api.route("/bench/ceiling", get(handler.clone()))
                .route("/bench/ceiling/{station_id}", get(handler))
        }
        None => api,
    };
    // The event stream lives as long as the client wants: no request timeout.
    let live = Router::new()
        .route("/api/events", get(events::events))
        .route("/ocpp/{charge_point_id}", get(ocpp::connect));
    let cors = cors(&state.config.cors_origins);
    api.merge(live)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::audit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::identify,
        ))
        .layer(axum::middleware::from_fn(limit_headers))
        .layer(axum::middleware::from_fn(metrics::track_requests))
        .layer(axum::middleware::from_fn(conditional::tag_answers))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn(conditional::tag_codings))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// A handler answering the OpenAPI document, made once.
fn openapi_document(
    state: &AppState,
) -> impl Fn() -> std::future::Ready<axum::response::Response> + Clone + Send + 'static {
    let body = axum::body::Bytes::from(
        serde_json::to_vec(&openapi::document(&state.monitor.vendors())).unwrap_or_default(),
    );
    move || {
        std::future::ready(
            ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        )
    }
}

/// A handler answering a fixed JSON body of `bytes` bytes: what the API endpoints would cost
/// without any work of their own (benchmarks only, `CSM_BENCH_CEILING_BYTES`).
fn ceiling_handler(
    bytes: usize,
) -> impl Fn() -> std::future::Ready<axum::response::Response> + Clone + Send + 'static {
    let mut body = String::from("{\"pad\":\"");
    body.push_str(&"x".repeat(bytes.saturating_sub(10)));
    body.push_str("\"}");
    let body = axum::body::Bytes::from(body);
    move || {
        std::future::ready(
            ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        )
    }
}

/// CORS is closed unless origins are configured.
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin.trim()).ok())
        .collect();
    if allowed.is_empty() {
        return CorsLayer::new();
    }
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

/// Refuses requests whose headers are larger than [`MAX_HEADER_BYTES`].
async fn limit_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        return ApiError::Rejected(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers take {size} bytes; the limit is {MAX_HEADER_BYTES}"),
        )
        .into_response();
    }
    next.run(request).await
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::Rejected(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    ApiError::Internal("a request handler panicked".into()).into_response()
}
