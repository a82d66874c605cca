//! Extractors whose rejections are the API's own errors, so even a malformed path, query or
//! body gets a JSON answer that says what was wrong.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use csm_core::model::StationId;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A station id from the path, checked.
#[derive(Debug)]
pub struct StationPath(pub StationId);

impl utoipa::IntoParams for StationPath {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        vec![
            ParameterBuilder::new()
                .name("station_id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "The vendor's station id: ASCII letters, digits and - _ . :",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(STATION_ID_PATTERN))
                        .min_length(Some(1))
                        .max_length(Some(StationId::MAX_LEN)),
                ))
                .build(),
        ]
    }
}

/// What a station id may be, as the OpenAPI document says it.
pub const STATION_ID_PATTERN: &str = "^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}$";

impl<S: Send + Sync> FromRequestParts<S> for StationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection: PathRejection| {
                ApiError::BadRequest(format!("station id in the path: {}", rejection.body_text()))
            })?;
        Ok(Self(StationId::parse(&raw)?))
    }
}

/// A query string, with unknown parameters and bad values refused.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::BadRequest(format!("query string: {}", rejection.body_text()))
            })
    }
}

/// A JSON body; bad JSON, a wrong content type or an oversized body get our error format with
/// the fitting status (400, 415, 413, 422).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|axum::Json(value)| Self(value))
            .map_err(|rejection: JsonRejection| {
                ApiError::Rejected(rejection.status(), rejection.body_text())
            })
    }
}

/// Proof that the request carries the admin token (`Authorization: Bearer …`).
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Writes switched off on the server: 403 whatever the request carries. Otherwise a
        // missing or wrong token: 401.
        let Some(expected) = &state.config.admin_token else {
            return Err(ApiError::Forbidden(
                "write endpoints are disabled: set CSM_ADMIN_TOKEN on the server to enable them"
                    .into(),
            ));
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "this endpoint needs the admin token: send Authorization: Bearer <CSM_ADMIN_TOKEN>".into(),
                )
            })?;
        if expected.matches(given.trim()) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized("the admin token is wrong".into()))
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}
