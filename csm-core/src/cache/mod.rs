//! The live cache: the `StatusCache` trait and its Redis and in-process adapters.
//!
//! The cache holds one [`StationState`] per station (the latest readings of every port) with a
//! lifetime of a few refresh intervals. API reads are served from it; the store is the fallback.
//!
//! Every cache csm keeps, with what makes each out of date, is listed once, in ARCHITECTURE.md
//! ("Caches").

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{StationId, StationState};

pub mod codec;
mod memory;
mod near;
mod redis;

pub use self::codec::{FORMAT_TAG, decode, encode, encode_without_measurements};
pub use self::memory::MemoryCache;
pub use self::near::NearCache;
pub use self::redis::RedisCache;

/// Why a cache operation failed.
#[derive(Clone, Debug, thiserror::Error)]
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

/// Builds the cache named by the settings: Redis when a URL is given (with a near cache of
/// `local_ttl` in front of it, unless zero), else in-process.
pub fn connect(
    redis_url: Option<&str>,
    prefix: &str,
    ttl: Duration,
    local_ttl: Duration,
) -> Result<Arc<dyn StatusCache>, CacheError> {
    match redis_url {
        Some(url) => {
            let redis: Arc<dyn StatusCache> = Arc::new(RedisCache::new(url, prefix, ttl)?);
            if local_ttl.is_zero() {
                Ok(redis)
            } else {
                // A local copy never outlives the shared entry it copies.
                Ok(Arc::new(NearCache::new(redis, local_ttl.min(ttl))))
            }
        }
        None => Ok(Arc::new(MemoryCache::new(ttl))),
    }
}
