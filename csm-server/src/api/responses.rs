//! The refusals many endpoints share, named once for the OpenAPI document: a handler lists
//! the group instead of repeating its statuses.
//!
//! The enums are never built; each variant stands for one documented answer, whose body is
//! the error document every refusal carries.
#![allow(dead_code)]

use crate::views::ErrorJson;

/// How a write endpoint refuses a request without the admin token.
#[derive(Debug, utoipa::IntoResponses)]
pub enum AdminRefusals {
    /// The token is missing or not known.
    #[response(status = 401, description = "No token, or one csm does not know",
        headers(("WWW-Authenticate" = String, description = "Bearer")))]
    Unauthorized(ErrorJson),
    /// The token's role is too low, or writes are switched off on the server.
    #[response(
        status = 403,
        description = "The token's role is too low (the answer names the role needed), or writes are disabled (no CSM_ADMIN_TOKEN and no tokens)"
    )]
    Forbidden(ErrorJson),
}

/// How an endpoint that takes a JSON body refuses one it cannot read.
#[derive(Debug, utoipa::IntoResponses)]
pub enum BodyRefusals {
    /// Over [`super::MAX_BODY_BYTES`].
    #[response(status = 413, description = "Body larger than 64 KiB")]
    TooLarge(ErrorJson),
    /// Another content type.
    #[response(status = 415, description = "Body is not application/json")]
    NotJson(ErrorJson),
    /// Valid JSON, but not the document the endpoint takes.
    #[response(status = 422, description = "JSON of the wrong shape")]
    WrongShape(ErrorJson),
}

/// The answer of an endpoint that reads the database while it is away.
#[derive(Debug, utoipa::IntoResponses)]
pub enum Unavailable {
    /// The database did not answer.
    #[response(status = 503, description = "The database is unavailable; try again")]
    Database(ErrorJson),
}

/// The answer about a station id that names no station.
#[derive(Debug, utoipa::IntoResponses)]
pub enum UnknownStation {
    /// No station has this id.
    #[response(status = 404, description = "No such station")]
    NotFound(ErrorJson),
}
