//! Who may do what: API tokens, one per person, each with a role, kept only as hashes; and
//! the audit log of every write and command.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// What a token may do; each role may do what the roles below it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads what is protected (everything, when reads need a token).
    Viewer,
    /// Sends commands to chargers and refreshes stations.
    Operator,
    /// Manages stations, alerts, tokens and settings.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The name (`viewer`, `operator`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Reads a role's name.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                InvalidInput::new(
                    "role",
                    format!("{text:?} is not one of viewer, operator, admin"),
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as kept: its name, role and the hash of its secret (never the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Who it is for (`alice`, `night-shift`): 1–64 letters, digits, `.`, `_`, `-`, `@`.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Checks a token's name.
pub fn check_token_name(name: &str) -> Result<(), InvalidInput> {
    let fits = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if fits {
        Ok(())
    } else {
        Err(InvalidInput::new(
            "token name",
            format!("{name:?} must be 1–64 letters, digits, '.', '_', '-' or '@'"),
        ))
    }
}

/// One entry of the audit log: who did what, from where, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its number (given by the database; 0 until stored).
    pub id: u64,
    /// When the request came.
    pub at: DateTime<Utc>,
    /// The token's name (`CSM_ADMIN_TOKEN` for the bootstrap token; `anonymous` without one).
    pub actor: String,
    /// The token's role (none without a token).
    pub role: Option<Role>,
    /// The client's address.
    pub address: String,
    /// `POST`, `DELETE`, …
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The request's body with its secrets masked (none without a body).
    pub request: Option<String>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// `ok`, or why not.
    pub outcome: String,
}
