//! The Redis cache: one multiplexed `ConnectionManager` shared by every task, `MGET` for many
//! stations, values tagged with their format version, keys under a configurable prefix.
//!
//! When Redis stops answering, the cache fails fast for a short while (instead of making every
//! request wait for a timeout) and tries again after it; the connection manager reconnects on
//! its own, so csm uses Redis again within seconds of its return, without a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{CacheError, StatusCache, decode, encode};
use crate::error::redact_url;
use crate::model::{StationId, StationState};

/// How long the cache fails fast after Redis stopped answering.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// A cache in Redis, shared by every csm instance that uses the same prefix.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    prefix: String,
    ttl_secs: u64,
    target: String,
    /// Milliseconds since `epoch` until which calls fail fast; 0 when Redis is healthy.
    paused_until_ms: Arc<AtomicU64>,
    epoch: Instant,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

impl RedisCache {
    /// Prepares a cache at `url` (`redis://host:6379`) with keys under `prefix`. Nothing is
    /// connected until the first command.
    pub fn new(url: &str, prefix: &str, ttl: Duration) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(|e| {
            CacheError::Config(format!(
                "{:?} is not a Redis URL csm can use ({e}); write redis://host:6379",
                redact_url(url)
            ))
        })?;
        let target = match &client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port}"),
            other => other.to_string(),
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            CacheError::Config(format!("cannot set up the Redis client for {target}: {e}"))
        })?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            ttl_secs: ttl.as_secs().max(1),
            target,
            paused_until_ms: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        })
    }

    /// The key of a station's state.
    pub fn key(&self, id: &StationId) -> String {
        format!("{}station:{}", self.prefix, id)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn check_paused(&self, doing: &'static str) -> Result<(), CacheError> {
        let until = self.paused_until_ms.load(Ordering::Relaxed);
        if until != 0 && self.now_ms() < until {
            return Err(CacheError::Unavailable {
                target: self.target.clone(),
                doing,
                message: "Redis did not answer a moment ago; trying again shortly".into(),
            });
        }
        Ok(())
    }

    fn outcome<T>(
        &self,
        doing: &'static str,
        result: redis::RedisResult<T>,
    ) -> Result<T, CacheError> {
        match result {
            Ok(value) => {
                self.paused_until_ms.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Err(error) => {
                let until = self.now_ms() + PAUSE_AFTER_FAILURE.as_millis() as u64;
                self.paused_until_ms.store(until, Ordering::Relaxed);
                metrics::counter!("csm_cache_errors_total").increment(1);
                Err(CacheError::Unavailable {
                    target: self.target.clone(),
                    doing,
                    message: error.to_string(),
                })
            }
        }
    }
}

#[async_trait]
impl StatusCache for RedisCache {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let result: redis::RedisResult<String> =
            redis::cmd("PING").query_async(&mut connection).await;
        self.outcome("checking the connection", result).map(drop)
    }

    async fn get(&self, id: &StationId) -> Result<Option<Arc<StationState>>, CacheError> {
        self.check_paused("reading a station")?;
        let mut connection = self.connection.clone();
        let result: redis::RedisResult<Option<Vec<u8>>> = connection.get(self.key(id)).await;
        let value = self.outcome("reading a station", result)?;
        Ok(value.and_then(|bytes| decode(&bytes)).map(Arc::new))
    }

    async fn get_many(
        &self,
        ids: &[StationId],
    ) -> Result<Vec<Option<Arc<StationState>>>, CacheError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.check_paused("reading stations")?;
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        let mut connection = self.connection.clone();
        let result: redis::RedisResult<Vec<Option<Vec<u8>>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await;
        let values = self.outcome("reading stations", result)?;
        Ok(values
            .into_iter()
            .map(|value| value.and_then(|bytes| decode(&bytes)).map(Arc::new))
            .collect())
    }

    async fn put_many(&self, states: &[Arc<StationState>]) -> Result<(), CacheError> {
        if states.is_empty() {
            return Ok(());
        }
        self.check_paused("writing stations")?;
        let mut pipe = redis::pipe();
        for state in states {
            pipe.set_ex(self.key(&state.station_id), encode(state), self.ttl_secs)
                .ignore();
        }
        let mut connection = self.connection.clone();
        let result: redis::RedisResult<()> = pipe.query_async(&mut connection).await;
        self.outcome("writing stations", result)
    }

    async fn remove(&self, id: &StationId) -> Result<(), CacheError> {
        self.check_paused("removing a station")?;
        let mut connection = self.connection.clone();
        let result: redis::RedisResult<()> = connection.del(self.key(id)).await;
        self.outcome("removing a station", result)
    }
}
