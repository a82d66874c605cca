//! The JSON documents of tokens and the audit log, shared by `/api/tokens`, `/api/audit`,
//! `csm-cli tokens … --json` and `csm-cli audit --json`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::access::{AuditEntry, Role, TokenRecord};
use crate::time;

/// A token as listed (never its secret, nor its hash).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenJson {
    /// Who it is for.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was added.
    #[serde(serialize_with = "time::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it was last used (to the minute).
    #[serde(serialize_with = "time::optional")]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TokenJson {
    /// The document of a token.
    pub fn of(record: &TokenRecord) -> Self {
        Self {
            name: record.name.clone(),
            role: record.role,
            created_at: record.created_at,
            last_used_at: record.last_used_at,
        }
    }
}

/// Every token (`GET /api/tokens`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenListJson {
    /// By name.
    pub tokens: Vec<TokenJson>,
}

/// A new token, with its secret: shown this once (`POST /api/tokens`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewTokenJson {
    /// The token as listed.
    #[serde(flatten)]
    pub record: TokenJson,
    /// The token: send it as `Authorization: Bearer …`. csm keeps only its hash.
    pub token: String,
}

/// One entry of the audit log.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntryJson {
    /// Its number.
    pub id: u64,
    /// When the request came.
    #[serde(serialize_with = "time::rfc3339")]
    pub at: DateTime<Utc>,
    /// The token's name (`CSM_ADMIN_TOKEN`: the bootstrap token; `anonymous`: none; `unknown
    /// token`: one csm does not know).
    pub actor: String,
    /// The token's role.
    pub role: Option<Role>,
    /// The client's address.
    pub address: String,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The request's body, its secrets masked.
    pub request: Option<String>,
    /// The answer's HTTP status.
    pub status: u16,
    /// `ok`, or why not.
    pub outcome: String,
}

impl AuditEntryJson {
    /// The document of an entry.
    pub fn of(entry: &AuditEntry) -> Self {
        Self {
            id: entry.id,
            at: entry.at,
            actor: entry.actor.clone(),
            role: entry.role,
            address: entry.address.clone(),
            method: entry.method.clone(),
            path: entry.path.clone(),
            request: entry.request.clone(),
            status: entry.status,
            outcome: entry.outcome.clone(),
        }
    }
}

/// The audit log (`GET /api/audit`), newest first.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditListJson {
    /// From (RFC 3339).
    #[serde(serialize_with = "time::rfc3339")]
    pub from: DateTime<Utc>,
    /// To.
    #[serde(serialize_with = "time::rfc3339")]
    pub to: DateTime<Utc>,
    /// The entries, newest first.
    pub entries: Vec<AuditEntryJson>,
}
