//! The API's error type: one status code per variant, a JSON body `{"error": "…"}` that says
//! what was wrong, and the details of server-side failures logged, not shown.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use csm_core::MonitorError;
use csm_core::error::InvalidInput;
use csm_core::ocpp::CallError;
use serde::Serialize;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input: path, query or body.
    #[error("{0}")]
    BadRequest(String),
    /// No credentials, or the wrong ones.
    #[error("{0}")]
    Unauthorized(String),
    /// The action is switched off.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing here.
    #[error("{0}")]
    NotFound(String),
    /// The resource exists already.
    #[error("{0}")]
    Conflict(String),
    /// Too soon; try again after the duration.
    #[error("{message}")]
    TooManyRequests {
        /// What to tell the client.
        message: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// A dependency (database, cache) cannot answer now.
    #[error("{0}")]
    Unavailable(String),
    /// A request the framework refused (bad JSON, wrong content type, body too large), with
    /// the framework's status and message.
    #[error("{1}")]
    Rejected(StatusCode, String),
    /// A bug or an unexpected failure; the details are logged.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// The HTTP status of the error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Rejected(status, _) => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if let ApiError::Internal(details) = &self {
            tracing::error!(%details, "request failed");
        }
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. } => {
                Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
            }
            _ => None,
        };
        let message = self.to_string();
        let mut response = (
            status,
            axum::Json(Body {
                error: &message,
                retry_after_secs: retry_after,
            }),
        )
            .into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(Refusal(message));
        response
    }
}

/// Why a request was refused, kept on its answer for the audit log.
#[derive(Clone, Debug)]
pub struct Refusal(pub String);

impl From<InvalidInput> for ApiError {
    fn from(error: InvalidInput) -> Self {
        ApiError::BadRequest(error.to_string())
    }
}

impl From<MonitorError> for ApiError {
    fn from(error: MonitorError) -> Self {
        match error {
            MonitorError::NotFound(id) => ApiError::NotFound(format!("station {id} not found")),
            MonitorError::NoStations | MonitorError::Missing(_) => {
                ApiError::NotFound(error.to_string())
            }
            MonitorError::Conflict(message) => ApiError::Conflict(message),
            MonitorError::Call(call) => match call {
                CallError::NotConnected(_) | CallError::Busy(_) => {
                    ApiError::Conflict(call.to_string())
                }
                CallError::TimedOut { .. } => {
                    ApiError::Rejected(StatusCode::GATEWAY_TIMEOUT, call.to_string())
                }
                CallError::Refused { .. } => {
                    ApiError::Rejected(StatusCode::BAD_GATEWAY, call.to_string())
                }
                CallError::Relayed { .. } => ApiError::Unavailable(call.to_string()),
            },
            MonitorError::Unauthorized(message) => ApiError::Unauthorized(message),
            MonitorError::Store(store @ csm_core::store::StoreError::Duplicate { .. }) => {
                ApiError::Conflict(store.to_string())
            }
            MonitorError::Invalid(invalid) => invalid.into(),
            MonitorError::Store(csm_core::store::StoreError::Conflict(id)) => {
                ApiError::Conflict(format!("station {id} already exists"))
            }
            MonitorError::Store(csm_core::store::StoreError::Invalid(invalid)) => invalid.into(),
            MonitorError::Charger(
                charger @ csm_core::charger::ChargerError::UnknownVendor { .. },
            ) => ApiError::BadRequest(charger.to_string()),
            MonitorError::Store(store) if store.is_transient() => {
                tracing::warn!(error = %store, "database unavailable");
                ApiError::Unavailable(
                    "the database is unavailable and the cache has no answer; try again shortly"
                        .into(),
                )
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
