//! The live cache: the `StatusCache` trait and its Redis and in-process adapters.
//!
//! The cache holds one [`StationState`] per station (the latest readings of every port) with a
//! lifetime of a few refresh intervals. API reads are served from it; the store is the fallback.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{StationId, StationState};

mod memory;
mod redis;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Redis cannot be reached or did not answer in time.
    #[error("cannot reach Redis at {target} while {doing}: {message}")]
    Unavailable {
        /// `host:port`, without credentials.
        target: String,
        /// What csm was doing.
        doing: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The Redis URL is wrong.
    #[error("{0}")]
    Config(String),
}

/// Version tag written in front of every cached value. A value written by another format
/// version reads as a miss instead of being misread.
pub const FORMAT_TAG: &[u8] = b"csm-v1\n";

/// Encodes a state for the cache: the format tag, then JSON.
pub fn encode(state: &StationState) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + state.ports.len() * 200);
    out.extend_from_slice(FORMAT_TAG);
    // Serialising these plain structs into a Vec cannot fail.
    serde_json::to_writer(&mut out, state).unwrap_or_default();
    out
}

/// Decodes a cached value; `None` when it was written by another format version or is damaged.
pub fn decode(bytes: &[u8]) -> Option<StationState> {
    let body = bytes.strip_prefix(FORMAT_TAG)?;
    serde_json::from_slice(body).ok()
}

/// The live per-station cache.
#[async_trait]
pub trait StatusCache: Send + Sync + fmt::Debug {
    /// `redis` or `memory`.
    fn kind(&self) -> &'static str;

    /// Where the cache is (Redis `host:port`, or `in-process`).
    fn target(&self) -> String;

    /// Checks that the cache answers.
    async fn ping(&self) -> Result<(), CacheError>;

    /// The state of one station, if cached and not expired.
    async fn get(&self, id: &StationId) -> Result<Option<Arc<StationState>>, CacheError>;

    /// The states of many stations in one round trip, in the order of `ids`.
    async fn get_many(
        &self,
        ids: &[StationId],
    ) -> Result<Vec<Option<Arc<StationState>>>, CacheError>;

    /// Stores the states of many stations in one round trip.
    async fn put_many(&self, states: &[Arc<StationState>]) -> Result<(), CacheError>;

    /// Forgets one station.
    async fn remove(&self, id: &StationId) -> Result<(), CacheError>;
}

/// Builds the cache named by the settings: Redis when a URL is given, else in-process.
pub fn connect(
    redis_url: Option<&str>,
    prefix: &str,
    ttl: Duration,
) -> Result<Arc<dyn StatusCache>, CacheError> {
    match redis_url {
        Some(url) => Ok(Arc::new(RedisCache::new(url, prefix, ttl)?)),
        None => Ok(Arc::new(MemoryCache::new(ttl))),
    }
}
