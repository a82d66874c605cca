//! Who a request comes from, what its role lets it do, and the audit log of every write.
//!
//! [`identify`] (a middleware) reads the request's token (`Authorization: Bearer …`; for the
//! event stream, which browsers open without headers, also `?access_token=`): the server's
//! bootstrap `CSM_ADMIN_TOKEN`, or a token of `csm-cli tokens add`. It refuses nothing itself,
//! except reads when `CSM_READ_REQUIRES_TOKEN` closes them; the [`Viewer`], [`Operator`] and
//! [`Admin`] extractors of each handler say who may: 401 for no token or an unknown one, 403
//! with the role needed when the token's is too low. [`audit`] (a middleware) writes every
//! request that is not a read into the audit log with who sent it, from where, its body with
//! the secrets masked, and how it ended.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use csm_core::model::access::{AuditEntry, Role};
use csm_core::monitor::Identity;
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, Refusal};

/// What the request's token turned out to be.
#[derive(Clone, Debug)]
pub enum Caller {
    /// It sent no token.
    Anonymous,
    /// A token csm knows.
    Known(Identity),
    /// A token csm does not know (mistyped, or revoked).
    Unknown,
    /// The tokens cannot be read now (the database is away and none were read before).
    Unchecked(String),
}

impl Caller {
    /// The name the audit log gives it.
    fn actor(&self) -> (String, Option<Role>) {
        match self {
            Caller::Known(identity) => (identity.name.clone(), Some(identity.role)),
            Caller::Anonymous => ("anonymous".into(), None),
            Caller::Unknown => ("unknown token".into(), None),
            Caller::Unchecked(_) => ("unchecked token".into(), None),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The token a request carries: its `Authorization` header, or on the event stream its
/// `access_token` query parameter.
fn token_of(request: &Request) -> Option<String> {
    if let Some(token) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    {
        return Some(token.to_owned());
    }
    if request.uri().path() != "/api/events" {
        return None;
    }
    request.uri().query()?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "access_token").then(|| value.to_owned())
    })
}

/// Whether a path is a read that `CSM_READ_REQUIRES_TOKEN` closes: the API, not the page's
/// shell, its files, the API's description, health or metrics.
fn closable(request: &Request) -> bool {
    let path = request.uri().path();
    matches!(*request.method(), Method::GET | Method::HEAD)
        && path.starts_with("/api/")
        && !matches!(path, "/api/openapi.json" | "/api/docs")
}

/// Reads who the request comes from into a [`Caller`] extension.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let caller = match token_of(&request) {
        None => Caller::Anonymous,
        Some(token) => {
            let bootstrap = state.config.admin_token.as_ref();
            if bootstrap.is_some_and(|expected| expected.matches(&token)) {
                Caller::Known(Identity::bootstrap())
            } else {
                match state.monitor.access().identify(&token).await {
                    Ok(Some(identity)) => Caller::Known(identity),
                    Ok(None) => Caller::Unknown,
                    Err(error) => Caller::Unchecked(error.to_string()),
                }
            }
        }
    };
    if state.config.read_requires_token
        && closable(&request)
        && let Err(refused) = allowed(&state, &caller, Role::Viewer).await
    {
        return refused.into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Whether `caller` may do what needs `role`.
async fn allowed(state: &AppState, caller: &Caller, role: Role) -> Result<Identity, ApiError> {
    let needs = role.as_str();
    match caller {
        Caller::Known(identity) if identity.role >= role => Ok(identity.clone()),
        Caller::Known(identity) => Err(ApiError::Forbidden(format!(
            "this needs the {needs} role; token {:?} has the {} role",
            identity.name, identity.role
        ))),
        Caller::Unknown => Err(ApiError::Unauthorized(
            "the token is not known (mistyped, or revoked): send Authorization: Bearer <token>"
                .into(),
        )),
        Caller::Unchecked(error) => Err(ApiError::Unavailable(format!(
            "the token cannot be checked now: {error}"
        ))),
        Caller::Anonymous => {
            let any = state.config.admin_token.is_some()
                || state.monitor.access().has_tokens().await.unwrap_or(true);
            if any {
                Err(ApiError::Unauthorized(format!(
                    "this needs a token with the {needs} role: send Authorization: Bearer <token> (CSM_ADMIN_TOKEN, or one of `csm-cli tokens add NAME --role {needs}`)"
                )))
            } else {
                Err(ApiError::Forbidden(
                    "write endpoints are disabled: set CSM_ADMIN_TOKEN on the server to enable them, or add a token with `csm-cli tokens add NAME --role admin`".into(),
                ))
            }
        }
    }
}

async fn require(parts: &Parts, state: &AppState, role: Role) -> Result<Identity, ApiError> {
    let caller = parts
        .extensions
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Anonymous);
    allowed(state, &caller, role).await
}

macro_rules! role_extractor {
    ($name:ident, $role:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name(#[allow(dead_code)] pub Identity);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                require(parts, state, $role).await.map($name)
            }
        }
    };
}

role_extractor!(
    Viewer,
    Role::Viewer,
    "A request whose token has at least the viewer role."
);
role_extractor!(
    Operator,
    Role::Operator,
    "A request whose token has at least the operator role (commands, refreshes)."
);
role_extractor!(
    Admin,
    Role::Admin,
    "A request whose token has the admin role (stations, alerts, tokens, settings)."
);

/// Keys whose values are secrets: masked in the audit log.
const SECRET_KEYS: &[&str] = &["password", "secret", "token", "id_tag"];

/// A request's body as the audit log keeps it: secrets masked, URLs without their query, cut at
/// 4 KiB.
fn masked_body(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            mask(&mut value);
            value.to_string()
        }
        Err(_) => format!("({} bytes that are not JSON)", body.len()),
    };
    Some(text.chars().take(4_096).collect())
}

fn mask(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(mask),
        Value::Object(fields) => {
            let named = |field: &str, secret: &str| {
                fields
                    .get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.eq_ignore_ascii_case(secret))
            };
            let secret_key = named("key", csm_core::ocpp::command::SECRET_KEY)
                || named("variable", csm_core::ocpp::command::SECRET_VARIABLE);
            for (name, field) in fields.iter_mut() {
                let secret =
                    SECRET_KEYS.contains(&name.as_str()) || (secret_key && name == "value");
                match field {
                    Value::String(text) if secret => *text = "…".into(),
                    Value::String(text) if name == "url" => {
                        *text = csm_core::secret::redact_target(text);
                    }
                    _ => mask(field),
                }
            }
        }
        _ => {}
    }
}

/// Writes every request that is not a read (on the API) into the audit log, beside its answer.
pub async fn audit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        || !request.uri().path().starts_with("/api/")
    {
        return next.run(request).await;
    }
    let at = csm_core::model::now();
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let address = peer.map_or_else(
        || "unknown".to_owned(),
        |peer| {
            state
                .config
                .trusted_proxies
                .client(peer, request.headers())
                .to_string()
        },
    );
    let (actor, role) = request
        .extensions()
        .get::<Caller>()
        .map_or(("anonymous".into(), None), Caller::actor);
    let (parts, body) = request.into_parts();
    let (body, response) = match axum::body::to_bytes(body, crate::api::MAX_BODY_BYTES).await {
        Ok(bytes) => {
            let request = Request::from_parts(parts, Body::from(bytes.clone()));
            (masked_body(&bytes), next.run(request).await)
        }
        Err(_) => (
            None,
            ApiError::Rejected(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than {} KiB",
                    crate::api::MAX_BODY_BYTES / 1024
                ),
            )
            .into_response(),
        ),
    };
    let status = response.status();
    let outcome = match response.extensions().get::<Refusal>() {
        _ if status.is_success() => "ok".to_owned(),
        Some(Refusal(message)) => message.clone(),
        None => status.canonical_reason().unwrap_or("refused").to_owned(),
    };
    let entry = AuditEntry {
        id: 0,
        at,
        actor,
        role,
        address,
        method: method.to_string(),
        path,
        request: body,
        status: status.as_u16(),
        outcome,
    };
    let access = state.monitor.access().clone();
    tokio::spawn(async move { access.record(entry).await });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_log_keeps_no_secret() {
        let body = br#"{"id":"CP-1","password":"0123456789abcdef0123","channel":{"url":"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET-KEY","secret":"s3"},"command":"ChangeConfiguration","key":"AuthorizationKey","value":"deadbeef","id_tag":"RFID-1"}"#;
        let kept = masked_body(body).unwrap();
        for secret in [
            "0123456789abcdef0123",
            "SECRET-KEY",
            "s3\"",
            "deadbeef",
            "RFID-1",
        ] {
            assert!(!kept.contains(secret), "{secret} in {kept}");
        }
        assert!(
            kept.contains("CP-1") && kept.contains("qyapi.weixin.qq.com"),
            "{kept}"
        );
        assert_eq!(
            masked_body(b"not json").as_deref(),
            Some("(8 bytes that are not JSON)")
        );
        assert_eq!(masked_body(b""), None);
    }

    #[test]
    fn a_bearer_token_is_read_whatever_the_scheme_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
    }
}
