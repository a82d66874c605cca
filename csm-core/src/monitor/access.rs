//! The access area: API tokens, one per person with a role, kept only as SHA-256 hashes; who a
//! request's token names; and the audit log of every write and command.
//!
//! Tokens are read from the database into memory and read again when older than
//! [`TOKENS_FRESH`], so a token added or revoked on any instance (or with `csm-cli tokens`)
//! counts everywhere within that time. When the database is away, the tokens last read keep
//! working.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use super::{MonitorError, Parts};
use crate::model::access::{AuditEntry, Role, TokenRecord, check_token_name};
use crate::store::{self, Store};

/// How long the tokens read from the database are trusted before they are read again.
pub const TOKENS_FRESH: Duration = Duration::from_secs(2);
/// A token's last use is written at most this often.
const USE_NOTED_EVERY: TimeDelta = TimeDelta::minutes(1);
/// The most audit entries one read answers.
pub const MAX_AUDIT: u32 = 10_000;

/// Who a request's token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The token's name (`CSM_ADMIN_TOKEN` for the server's bootstrap token).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl Identity {
    /// The server's bootstrap admin token (`CSM_ADMIN_TOKEN`).
    pub fn bootstrap() -> Self {
        Self {
            name: "CSM_ADMIN_TOKEN".into(),
            role: Role::Admin,
        }
    }
}

/// The tokens as last read, by hash.
#[derive(Default)]
struct Known {
    by_hash: HashMap<String, Identity>,
    read_at: Option<Instant>,
}

/// The access area of the [`Monitor`](super::Monitor).
#[derive(Clone)]
pub struct Access {
    store: Arc<dyn Store>,
    known: Arc<tokio::sync::Mutex<Known>>,
    /// When each token's use was last written.
    noted: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").finish_non_exhaustive()
    }
}

/// SHA-256 of a token, hex: what is kept of it.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new token: `csm_` and 64 hex digits of 32 random bytes.
fn new_token() -> Result<String, MonitorError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        MonitorError::Invalid(crate::error::InvalidInput::new(
            "token",
            format!("cannot be made: no randomness from the system ({e})"),
        ))
    })?;
    Ok(format!(
        "csm_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

impl Access {
    pub(in crate::monitor) fn new(parts: &Parts) -> Self {
        Self {
            store: Arc::clone(&parts.store),
            known: Arc::default(),
            noted: Arc::default(),
        }
    }

    /// Adds a token named `name` with `role`: its record, and the token itself (shown once,
    /// never kept).
    pub async fn add_token(
        &self,
        name: &str,
        role: Role,
    ) -> Result<(TokenRecord, String), MonitorError> {
        check_token_name(name)?;
        let token = new_token()?;
        let record = TokenRecord {
            name: name.to_owned(),
            role,
            hash: token_hash(&token),
            created_at: crate::model::now(),
            last_used_at: None,
        };
        self.store.access().add_token(&record).await?;
        self.known.lock().await.read_at = None;
        Ok((record, token))
    }

    /// Every token, by name.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, MonitorError> {
        Ok(self.store.access().tokens().await?)
    }

    /// Revokes token `name` at once (on the other instances within [`TOKENS_FRESH`]).
    pub async fn revoke(&self, name: &str) -> Result<(), MonitorError> {
        if !self.store.access().revoke_token(name).await? {
            return Err(MonitorError::Missing(format!("no token is named {name:?}")));
        }
        self.known.lock().await.read_at = None;
        Ok(())
    }

    /// Whether any token exists (from the tokens held, read again when not fresh).
    pub async fn has_tokens(&self) -> Result<bool, MonitorError> {
        self.identify("").await?;
        Ok(!self.known.lock().await.by_hash.is_empty())
    }

    /// Who `token` is (`None`: no token has it). The database is read when the tokens held
    /// are older than [`TOKENS_FRESH`]; while it is away, the tokens last read answer.
    pub async fn identify(&self, token: &str) -> Result<Option<Identity>, MonitorError> {
        let hash = token_hash(token);
        let mut known = self.known.lock().await;
        let fresh = known.read_at.is_some_and(|at| at.elapsed() < TOKENS_FRESH);
        if !fresh {
            let read = self.store.access().tokens();
            match store::within(store::READ_WAIT, "reading API tokens", &*self.store, read).await {
                Ok(tokens) => {
                    known.by_hash = tokens
                        .into_iter()
                        .map(|t| {
                            let identity = Identity {
                                name: t.name,
                                role: t.role,
                            };
                            (t.hash, identity)
                        })
                        .collect();
                    known.read_at = Some(Instant::now());
                }
                Err(error) if known.read_at.is_some() => {
                    tracing::warn!(%error, "cannot read the API tokens; the ones read before answer");
                }
                Err(error) => return Err(error.into()),
            }
        }
        let identity = known.by_hash.get(&hash).cloned();
        drop(known);
        if let Some(identity) = &identity {
            self.note_use(&identity.name);
        }
        Ok(identity)
    }

    /// Writes a token's last use, at most once a minute, beside the request.
    fn note_use(&self, name: &str) {
        let now = crate::model::now();
        {
            let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
            if noted
                .get(name)
                .is_some_and(|at| now - *at < USE_NOTED_EVERY)
            {
                return;
            }
            noted.insert(name.to_owned(), now);
        }
        let (store, name) = (Arc::clone(&self.store), name.to_owned());
        tokio::spawn(async move {
            if let Err(error) = store.access().token_used(&name, now).await {
                tracing::debug!(%error, token = %name, "cannot note a token's use");
            }
        });
    }

    /// Appends an entry to the audit log. A database that is away is tried again for a minute;
    /// an entry that still cannot be written is logged in full (never dropped silently).
    pub async fn record(&self, entry: AuditEntry) {
        let mut wait = Duration::from_millis(200);
        let started = Instant::now();
        loop {
            match self.store.access().append_audit(&entry).await {
                Ok(()) => return,
                Err(error)
                    if error.is_transient() && started.elapsed() < Duration::from_secs(60) =>
                {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                Err(error) => {
                    metrics::counter!("csm_audit_unwritten_total").increment(1);
                    tracing::error!(%error, ?entry, "cannot write an entry of the audit log");
                    return;
                }
            }
        }
    }

    /// The audit log from `from` to `to`, newest first, at most `limit` (up to [`MAX_AUDIT`]).
    pub async fn audit(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, MonitorError> {
        let read = self.store.access().audit(from, to, limit.min(MAX_AUDIT));
        Ok(store::within(
            store::READ_WAIT,
            "reading the audit log",
            &*self.store,
            read,
        )
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_kept_as_their_hash() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert!(a.starts_with("csm_"));
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
