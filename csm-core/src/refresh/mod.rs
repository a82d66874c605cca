//! The refresh engine: the job runner that keeps every station fresh.
//!
//! - At most `concurrency` jobs run at once; a station is never refreshed twice at the same
//!   time (a second request joins the running job and gets its outcome).
//! - A job fetches the station from its source with retries ([`retry`]), compares the snapshot
//!   with the previous state ([`diff`]), rewrites the cache, hands the changed rows to the batch
//!   writer ([`writer`]) and tells subscribers what changed.
//! - A failing station keeps its last ports, marked with the error, instead of vanishing.
//! - [`scheduler`] refreshes every enabled station every interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::{StreamExt, stream};
use tokio::sync::{Semaphore, broadcast};

use crate::cache::StatusCache;
use crate::charger::{ChargerError, Chargers};
use crate::model::{PortState, Station, StationHealth, StationId, StationState, StatusEvent};
use crate::settings::Settings;
use crate::store::{Store, WriteBatch};

pub mod diff;
pub mod retry;
pub mod scheduler;
pub mod writer;

pub use self::retry::RetryPolicy;
pub use self::writer::{BatchWriter, FlushReport, WriterConfig};

/// How the engine works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Jobs at once.
    pub concurrency: usize,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Batch writer behaviour.
    pub writer: WriterConfig,
}

impl EngineConfig {
    /// The configuration the settings describe.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            concurrency: settings.concurrency,
            retry: RetryPolicy {
                max_retries: settings.max_retries,
                ..RetryPolicy::default()
            },
            writer: WriterConfig {
                max_buffered_events: settings.write_buffer_events,
                ..WriterConfig::default()
            },
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            retry: RetryPolicy::default(),
            writer: WriterConfig::default(),
        }
    }
}

/// What one refresh of one station did.
#[derive(Clone, Debug)]
pub struct RefreshOutcome {
    /// The station.
    pub station_id: StationId,
    /// Ports read and changed, or why the refresh failed.
    pub result: Result<RefreshStats, ChargerError>,
    /// Attempts made.
    pub attempts: u32,
    /// Time from start of the job to its end.
    pub elapsed: Duration,
}

/// Counts of a successful refresh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefreshStats {
    /// Ports the source reported.
    pub ports: usize,
    /// Ports whose status changed.
    pub status_changes: usize,
    /// Port rows written to the store.
    pub rows_written: usize,
}

/// A station's state changed: sent to subscribers (the server's live event stream).
#[derive(Clone, Debug)]
pub struct StationUpdate {
    /// The station's new state.
    pub state: Arc<StationState>,
    /// Status changes of its ports.
    pub events: Vec<StatusEvent>,
    /// Whether the station's health changed (failing, or recovered).
    pub health_changed: bool,
}

type JobFuture = Shared<BoxFuture<'static, RefreshOutcome>>;

struct Inner {
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    chargers: Chargers,
    config: EngineConfig,
    permits: Semaphore,
    running: Mutex<HashMap<StationId, JobFuture>>,
    /// The last state this engine produced for each station, without its measurements and in
    /// the cache's compact encoding (a couple of hundred bytes a station): the diff base when
    /// the cache is away or behind, which the store cannot be while the batch writer still
    /// holds its rows.
    known: Mutex<HashMap<StationId, Known>>,
    /// Status events produced since start.
    events_produced: std::sync::atomic::AtomicU64,
    writer: BatchWriter,
    updates: broadcast::Sender<Arc<StationUpdate>>,
}

/// The refresh engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .field("chargers", &self.inner.chargers)
            .finish()
    }
}

/// Where a job finds the state to compare its snapshot with.
enum Previous {
    /// Already looked up (by a batch lookup of many stations).
    Known(Option<Arc<StationState>>),
    /// To be looked up by the job.
    Lookup,
}

impl Engine {
    /// Starts an engine (and its batch writer) on the current runtime.
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn StatusCache>,
        chargers: Chargers,
        config: EngineConfig,
    ) -> Self {
        let writer = BatchWriter::start(Arc::clone(&store), config.writer);
        let (updates, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(Inner {
                store,
                cache,
                chargers,
                permits: Semaphore::new(config.concurrency.max(1)),
                config,
                running: Mutex::new(HashMap::new()),
                known: Mutex::new(HashMap::new()),
                events_produced: std::sync::atomic::AtomicU64::new(0),
                writer,
                updates,
            }),
        }
    }

    /// The sources this engine reads.
    pub fn chargers(&self) -> &Chargers {
        &self.inner.chargers
    }

    /// Changes as they happen. A receiver that falls behind loses the oldest updates
    /// (`RecvError::Lagged`) rather than slowing the engine.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StationUpdate>> {
        self.inner.updates.subscribe()
    }

    /// The last state this engine produced for a station: statuses, codes, session ends and
    /// since when, without measurements.
    pub fn last_known(&self, id: &StationId) -> Option<Arc<StationState>> {
        let known = lock(&self.inner.known);
        known.get(id).and_then(Known::decode).map(Arc::new)
    }

    /// Forgets a removed station.
    pub fn forget(&self, id: &StationId) {
        lock(&self.inner.known).remove(id);
    }

    /// Status events produced since the engine started.
    pub fn events_produced(&self) -> u64 {
        self.inner
            .events_produced
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        lock(&self.inner.running).len()
    }

    /// Refreshes one station, or joins its refresh if one is running.
    pub async fn refresh(&self, station: Arc<Station>) -> RefreshOutcome {
        self.job(station, Previous::Lookup).await
    }

    /// Refreshes many stations, at most `concurrency` at once, calling `progress` as each ends.
    /// Outcomes come in the order the jobs end.
    pub async fn refresh_many(
        &self,
        stations: Vec<Arc<Station>>,
        progress: impl Fn(&RefreshOutcome) + Send + Sync,
    ) -> Vec<RefreshOutcome> {
        // Previous states are looked up a chunk at a time (one cache round trip, one query),
        // not once per station.
        const CHUNK: usize = 500;
        let engine = self.clone();
        let chunks: Vec<Vec<Arc<Station>>> = stations
            .chunks(CHUNK)
            .map(<[Arc<Station>]>::to_vec)
            .collect();
        let jobs = stream::iter(chunks)
            .then(move |chunk| {
                let engine = engine.clone();
                async move {
                    let ids: Vec<StationId> = chunk.iter().map(|s| s.id.clone()).collect();
                    let mut previous = engine.previous_states(&ids).await;
                    chunk
                        .into_iter()
                        .map(|station| {
                            let known = previous.remove(&station.id);
                            (station, known)
                        })
                        .collect::<Vec<_>>()
                }
            })
            .flat_map(stream::iter)
            .map(|(station, previous)| {
                let previous = match previous {
                    Some(found) => Previous::Known(found),
                    None => Previous::Lookup,
                };
                self.job(station, previous)
            })
            .buffer_unordered(self.inner.config.concurrency.max(1));
        jobs.inspect(|outcome| progress(outcome)).collect().await
    }

    /// Writes everything the jobs so far produced; returns what could not be written.
    pub async fn flush(&self) -> FlushReport {
        self.inner.writer.flush().await
    }

    /// Waits (up to `deadline`) for running jobs to end, then writes what they produced and
    /// stops the batch writer.
    pub async fn shutdown(&self, deadline: Duration) -> FlushReport {
        let started = Instant::now();
        while self.running() > 0 && started.elapsed() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = deadline.saturating_sub(started.elapsed());
        self.inner
            .writer
            .close(left.max(Duration::from_secs(1)))
            .await
    }

    fn job(&self, station: Arc<Station>, previous: Previous) -> JobFuture {
        let mut running = lock(&self.inner.running);
        if let Some(job) = running.get(&station.id) {
            metrics::counter!("csm_refresh_jobs_total", "outcome" => "joined").increment(1);
            return job.clone();
        }
        let engine = self.clone();
        let id = station.id.clone();
        let task = tokio::spawn(async move {
            let outcome = engine.run_job(&station, previous).await;
            lock(&engine.inner.running).remove(&station.id);
            outcome
        });
        let station_id = id.clone();
        let job = async move {
            match task.await {
                Ok(outcome) => outcome,
                Err(error) => RefreshOutcome {
                    station_id,
                    result: Err(ChargerError::Unsupported {
                        vendor: "engine".into(),
                        message: format!("the refresh job ended abnormally: {error}"),
                    }),
                    attempts: 0,
                    elapsed: Duration::ZERO,
                },
            }
        }
        .boxed()
        .shared();
        running.insert(id, job.clone());
        job
    }

    async fn run_job(&self, station: &Station, previous: Previous) -> RefreshOutcome {
        let inner = &self.inner;
        let _permit = inner.permits.acquire().await;
        let started = Instant::now();
        let (fetched, attempts) = match inner.chargers.get(&station.vendor) {
            Ok(api) => {
                let fetched = retry::fetch_with_retry(&**api, station, &inner.config.retry).await;
                (fetched.result, fetched.attempts)
            }
            Err(error) => (Err(error), 1),
        };
        // `None` when neither the cache nor the store could answer (both unreachable), which is
        // not the same as a station seen for the first time.
        let previous = match previous {
            Previous::Known(found) => Some(found),
            Previous::Lookup => self.previous_state(&station.id).await,
        };
        let base_known = previous.is_some();
        let previous = previous.flatten();
        let now = crate::model::now();
        let mut batch = WriteBatch::default();
        let (state, result, health_changed) = match fetched {
            Ok(snapshot) => {
                let (ports, mut delta) = diff::diff(previous.as_deref(), &snapshot);
                if !base_known {
                    // Every port would read as new: the rows are written (so the store catches
                    // up with what the vendor says), but no status changes are invented.
                    tracing::debug!(station = %station.id, "no previous state to compare with (cache and database unreachable): ports kept, no events");
                    delta.events.clear();
                }
                let recovered = previous.as_ref().is_none_or(|p| p.last_error.is_some());
                let state = StationState {
                    station_id: station.id.clone(),
                    observed_at: Some(snapshot.observed_at),
                    checked_at: now,
                    last_error: None,
                    failures: 0,
                    ports,
                };
                if recovered {
                    batch.health.push(health_of(&state));
                }
                let stats = RefreshStats {
                    ports: state.ports.len(),
                    status_changes: delta.events.len(),
                    rows_written: delta.ports.len(),
                };
                batch.events = delta.events;
                batch.ports = delta.ports;
                (state, Ok(stats), recovered)
            }
            Err(error) => {
                let message = error.to_string();
                let (ports, observed_at, failures, changed) = match &previous {
                    Some(p) => (
                        p.ports.clone(),
                        p.observed_at,
                        p.failures + 1,
                        p.last_error.as_deref() != Some(message.as_str()),
                    ),
                    // Without a previous state to go on (`!base_known`) nothing is recorded: an
                    // empty station would read as new ports at the next success, and a health
                    // row would wipe the stored one.
                    None => (Vec::<PortState>::new(), None, 1, base_known),
                };
                let state = StationState {
                    station_id: station.id.clone(),
                    observed_at,
                    checked_at: now,
                    last_error: Some(message),
                    failures,
                    ports,
                };
                if changed {
                    batch.health.push(health_of(&state));
                }
                if changed || !base_known {
                    tracing::warn!(station = %station.id, vendor = %station.vendor, attempts, %error, "refresh failed");
                }
                (state, Err(error), changed)
            }
        };
        let state = Arc::new(state);
        // A failure with nothing to go on leaves no state behind, so the next refresh looks
        // for a previous state again.
        if base_known || result.is_ok() {
            let known = Known {
                checked_at: state.checked_at,
                encoded: crate::cache::encode_without_measurements(&state).into_boxed_slice(),
            };
            lock(&inner.known).insert(station.id.clone(), known);
            if let Err(error) = inner.cache.put_many(std::slice::from_ref(&state)).await {
                tracing::debug!(%error, "cache write failed; this process keeps the state");
            }
        }
        let events = batch.events.clone();
        if !events.is_empty() {
            inner
                .events_produced
                .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("csm_status_events_total").increment(events.len() as u64);
        }
        inner.writer.write(batch).await;
        if (!events.is_empty() || health_changed) && inner.updates.receiver_count() > 0 {
            let _ = inner.updates.send(Arc::new(StationUpdate {
                state,
                events,
                health_changed,
            }));
        }
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!("csm_refresh_jobs_total", "outcome" => outcome).increment(1);
        let elapsed = started.elapsed();
        metrics::histogram!("csm_refresh_duration_seconds").record(elapsed.as_secs_f64());
        RefreshOutcome {
            station_id: station.id.clone(),
            result,
            attempts,
            elapsed,
        }
    }

    /// The state to compare with: the newer of the cache's (shared by every instance) and the
    /// last one this engine produced, else the store's. `Some(None)`: the station has no state
    /// yet; `None`: nobody could say (the cache and the store both failed).
    async fn previous_state(&self, id: &StationId) -> Option<Option<Arc<StationState>>> {
        let mut found = self.previous_states(std::slice::from_ref(id)).await;
        found.remove(id)
    }

    /// Previous states of many stations; an id maps to `None` when it has no state yet, and is
    /// left out when the cache and the store both failed to say.
    async fn previous_states(
        &self,
        ids: &[StationId],
    ) -> HashMap<StationId, Option<Arc<StationState>>> {
        let inner = &self.inner;
        let mut found: HashMap<StationId, Option<Arc<StationState>>> =
            HashMap::with_capacity(ids.len());
        match inner.cache.get_many(ids).await {
            Ok(states) => {
                for (id, state) in ids.iter().zip(states) {
                    if let Some(state) = state {
                        found.insert(id.clone(), Some(state));
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, "cache read failed; using local and stored state")
            }
        }
        {
            let known = lock(&inner.known);
            for id in ids {
                let Some(kept) = known.get(id) else {
                    continue;
                };
                // Decoded only when it is newer than what the cache gave.
                let cached = found.get(id).and_then(Option::as_ref);
                if cached.is_none_or(|c| c.checked_at < kept.checked_at)
                    && let Some(state) = kept.decode()
                {
                    found.insert(id.clone(), Some(Arc::new(state)));
                }
            }
        }
        let missing: Vec<StationId> = ids
            .iter()
            .filter(|id| !found.contains_key(*id))
            .cloned()
            .collect();
        if !missing.is_empty() {
            match inner.store.station_states(&missing).await {
                Ok(states) => {
                    for state in states {
                        found.insert(state.station_id.clone(), Some(Arc::new(state)));
                    }
                    for id in missing {
                        found.entry(id).or_insert(None);
                    }
                }
                // Unknown: each job will try again on its own.
                Err(error) => tracing::warn!(%error, "cannot read previous port states"),
            }
        }
        found
    }
}

/// The engine's own copy of a station's last state, compact.
struct Known {
    checked_at: chrono::DateTime<chrono::Utc>,
    encoded: Box<[u8]>,
}

impl Known {
    fn decode(&self) -> Option<StationState> {
        crate::cache::decode(&self.encoded)
    }
}

fn health_of(state: &StationState) -> StationHealth {
    StationHealth {
        station_id: state.station_id.clone(),
        last_ok_at: state.observed_at,
        last_error: state.last_error.clone(),
        checked_at: state.checked_at,
        failures: state.failures,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
