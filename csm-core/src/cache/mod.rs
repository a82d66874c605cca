//! The live cache: the `StatusCache` trait and its Redis and in-process adapters.
//!
//! The cache holds one [`StationState`] per station (the latest readings of every port) with a
//! lifetime of a few refresh intervals. API reads are served from it; the store is the fallback.
//!
//! # Every cache csm keeps
//!
//! | cache | holds | lives | made out of date by | with several instances on one Redis |
//! |---|---|---|---|---|
//! | the live cache ([`MemoryCache`] or [`RedisCache`]) | each station's latest state, in the compact encoding of [`codec`] | `CSM_CACHE_TTL_SECS` (three refresh intervals) | every refresh of the station rewrites it; removing the station deletes it | shared: every instance reads and writes the same keys (under `CSM_CACHE_PREFIX`) |
//! | the near cache ([`NearCache`], in front of Redis) | this process's copy of states it read or wrote | `CSM_CACHE_LOCAL_TTL_MS` (1 s), never longer than the live cache's entry | this process's writes go through it; removals delete from both | another instance's write is seen here at most one local lifetime later |
//! | the station catalogue ([`crate::monitor::catalog`]) | every station, an index by id | until the store's catalogue version changes, checked every 2 s in the background | this instance's add, import and remove reload it at once | another instance's change is seen within the 2 s check |
//! | the search text (in the catalogue) | id, name and address of each station, lower-cased | as long as its catalogue version | a new catalogue version | as the catalogue |
//! | the diff base ([`crate::refresh::base`]) | the last state this engine produced for each station, without measurements | until the station is removed | each refresh job replaces its station's entry | per process; used only when the live cache has nothing newer |
//! | the station answers (csm-server, `detail.rs`) | the encoded JSON of `GET /api/stations/{id}` | 250 ms, at most 10,000 stations | expiry; removing the station drops it | per process: at most 250 ms behind the live cache |
//! | the session lengths ([`crate::history::estimate`]) | each station's recent session lengths, and the fleet's, for free estimates | read again in the background after 5 minutes | expiry; removing the station drops it | per process: at most 5 minutes behind |
//! | the history recorder ([`crate::history::record`]) | each port's last stored reading (for the deadbands) and last energy | until the station is removed | each refresh | per process; a new process starts from the previous observation |
//! | the fleet's statistics ([`crate::monitor::FLEET_STATS_FRESH`]) | `GET /api/stats?days=N` by N | 30 s | expiry | per process |
//! | the charge point passwords ([`crate::monitor::PASSWORDS_FRESH`]) | every OCPP charge point's password hash, read at once; the last read also kept for while the database is away | 60 s (the last read: until the next) | expiry; this process's changes at once | per process: another instance's change is seen within 60 s |
//! | the OCPP connections ([`crate::ocpp::OcppSource`]) | each charger heard since start: connectors, boot details, connection, last message, csm's outstanding call | until the station is removed | the charger's frames; its connection's end | per process: a charger is connected to one server; its record is written to the database within 1 s ([`crate::monitor::REGISTRY_EVERY`]) |
//! | the alert evaluator ([`crate::alerts::evaluate`]) | the rules and each condition's state | while the server runs | rule changes: at once through the API, within 10 s from elsewhere; open alerts are also stored | per process: one evaluating server per fleet |

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
