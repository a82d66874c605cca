//! The Redis cache: one multiplexed connection shared by every task (to one server or a Redis
//! Cluster, [`RedisLink`]), `MGET` for many stations, values tagged with their format version,
//! keys under a configurable prefix.
//!
//! When Redis stops answering, the cache fails fast for a short while (instead of making every
//! request wait for a timeout) and tries again after it; the connection manager reconnects on
//! its own, so csm uses Redis again within seconds of its return, without a restart.
//!
//! Writes that arrive while another is on its way are sent together as the next pipeline: the
//! jobs of a refresh cycle finish close together, and one round trip for many of them costs
//! both sides far less than one each. (On a Redis Cluster the stations' keys spread over the
//! slots, so the writes go as one command each, all on their way at once.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands;
use tokio::sync::{mpsc, oneshot};

use super::{CacheError, StatusCache, decode, encode};
use crate::model::{StationId, StationState};
use crate::redis_link::{RedisLink, Timeouts};

/// How long the cache fails fast after Redis stopped answering.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Most writes sent as one pipeline.
const MAX_COMBINED_WRITES: usize = 256;

/// A cache in Redis, shared by every csm instance that uses the same prefix.
#[derive(Clone)]
pub struct RedisCache {
    connection: RedisLink,
    prefix: String,
    ttl_secs: u64,
    health: Arc<Health>,
    /// The queue of the task that combines writes, started by the first write.
    writes: Arc<OnceLock<mpsc::UnboundedSender<PendingWrite>>>,
}

/// Where Redis is and whether it answered lately.
#[derive(Debug)]
struct Health {
    target: String,
    /// Milliseconds since `epoch` until which calls fail fast; 0 when Redis is healthy.
    paused_until_ms: AtomicU64,
    epoch: Instant,
}

/// One `put_many` waiting for its pipeline.
struct PendingWrite {
    entries: Vec<(String, Vec<u8>)>,
    done: oneshot::Sender<Result<(), CacheError>>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("target", &self.health.target)
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

impl RedisCache {
    /// Prepares a cache at `url` (`redis://host:6379`) with keys under `prefix`. Nothing is
    /// connected until the first command.
    pub fn new(url: &str, prefix: &str, ttl: Duration) -> Result<Self, CacheError> {
        let connection = RedisLink::open(url, Timeouts::SHORT).map_err(CacheError::Config)?;
        let target = connection.target().to_owned();
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            ttl_secs: ttl.as_secs().max(1),
            health: Arc::new(Health {
                target,
                paused_until_ms: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
            writes: Arc::new(OnceLock::new()),
        })
    }

    /// The key of a station's state.
    pub fn key(&self, id: &StationId) -> String {
        format!("{}station:{}", self.prefix, id)
    }

    /// The queue of the write-combining task, started on the current runtime by the first
    /// write. The task ends when the last clone of this cache is dropped.
    fn write_queue(&self) -> &mpsc::UnboundedSender<PendingWrite> {
        self.writes.get_or_init(|| {
            let (queue, pending) = mpsc::unbounded_channel();
            tokio::spawn(combine_writes(
                self.connection.clone(),
                self.ttl_secs,
                Arc::clone(&self.health),
                pending,
            ));
            queue
        })
    }
}

/// Sends the writes waiting at any moment as one pipeline, one pipeline at a time, and tells
/// each writer the pipeline's outcome.
async fn combine_writes(
    connection: RedisLink,
    ttl_secs: u64,
    health: Arc<Health>,
    mut pending: mpsc::UnboundedReceiver<PendingWrite>,
) {
    let mut batch = Vec::with_capacity(MAX_COMBINED_WRITES);
    while pending.recv_many(&mut batch, MAX_COMBINED_WRITES).await > 0 {
        let entries = batch.iter().flat_map(|write| write.entries.iter());
        let result = write_entries(&connection, ttl_secs, &health, entries).await;
        for write in batch.drain(..) {
            let _ = write.done.send(result.clone());
        }
    }
}

async fn write_entries<'a>(
    connection: &RedisLink,
    ttl_secs: u64,
    health: &Health,
    entries: impl Iterator<Item = &'a (String, Vec<u8>)>,
) -> Result<(), CacheError> {
    health.check_paused("writing stations")?;
    let result: redis::RedisResult<()> = if connection.is_cluster() {
        let writes = entries.map(|(key, value)| {
            let mut connection = connection.clone();
            async move { connection.set_ex::<_, _, ()>(key, value, ttl_secs).await }
        });
        futures_util::future::try_join_all(writes).await.map(drop)
    } else {
        let mut pipe = redis::pipe();
        for (key, value) in entries {
            pipe.set_ex(key, value, ttl_secs).ignore();
        }
        pipe.query_async(&mut connection.clone()).await
    };
    health.outcome("writing stations", result)
}

impl Health {
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
        self.health.target.clone()
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let result: redis::RedisResult<String> =
            redis::cmd("PING").query_async(&mut connection).await;
        self.health
            .outcome("checking the connection", result)
            .map(drop)
    }

    async fn get(&self, id: &StationId) -> Result<Option<Arc<StationState>>, CacheError> {
        self.health.check_paused("reading a station")?;
        let mut connection = self.connection.clone();
        let result: redis::RedisResult<Option<Vec<u8>>> = connection.get(self.key(id)).await;
        let value = self.health.outcome("reading a station", result)?;
        Ok(value.and_then(|bytes| decode(&bytes)).map(Arc::new))
    }

    async fn get_many(
        &self,
        ids: &[StationId],
    ) -> Result<Vec<Option<Arc<StationState>>>, CacheError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.health.check_paused("reading stations")?;
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        let mut connection = self.connection.clone();
        let result: redis::RedisResult<Vec<Option<Vec<u8>>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await;
        let values = self.health.outcome("reading stations", result)?;
        Ok(values
            .into_iter()
            .map(|value| value.and_then(|bytes| decode(&bytes)).map(Arc::new))
            .collect())
    }

    async fn put_many(&self, states: &[Arc<StationState>]) -> Result<(), CacheError> {
        if states.is_empty() {
            return Ok(());
        }
        self.health.check_paused("writing stations")?;
        let entries: Vec<(String, Vec<u8>)> = states
            .iter()
            .map(|state| (self.key(&state.station_id), encode(state)))
            .collect();
        let (done, outcome) = oneshot::channel();
        match self.write_queue().send(PendingWrite { entries, done }) {
            Ok(()) => outcome.await.unwrap_or_else(|_| {
                Err(CacheError::Unavailable {
                    target: self.health.target.clone(),
                    doing: "writing stations",
                    message: "the cache's writer stopped".into(),
                })
            }),
            // The runtime that ran the writer has ended: write directly.
            Err(mpsc::error::SendError(write)) => {
                write_entries(
                    &self.connection,
                    self.ttl_secs,
                    &self.health,
                    write.entries.iter(),
                )
                .await
            }
        }
    }

    async fn remove(&self, id: &StationId) -> Result<(), CacheError> {
        self.health.check_paused("removing a station")?;
        let mut connection = self.connection.clone();
        let result: redis::RedisResult<()> = connection.del(self.key(id)).await;
        self.health.outcome("removing a station", result)
    }
}
