//! Extractors whose rejections are the API's own errors, so even a malformed path, query or
//! body gets a JSON answer that says what was wrong.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use csm_core::model::StationId;
use serde::de::DeserializeOwned;

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

pub use crate::access::{Admin, Operator, Viewer};

/// A path parameter whose rejection is the API's error.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|rejection: PathRejection| {
                ApiError::BadRequest(format!("path: {}", rejection.body_text()))
            })
    }
}
