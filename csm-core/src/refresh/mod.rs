//! The refresh engine: the job runner that keeps every station fresh.
//!
//! - At most `concurrency` jobs run at once; a station is never refreshed twice at the same
//!   time (a second request joins the running job and gets its outcome).
//! - A job ([`job`]) fetches the station from its source with retries ([`retry`]), compares the
//!   snapshot with the previous state ([`diff`], against the base of [`base`]), rewrites the
//!   cache, hands the changed rows to the batch writer ([`writer`]) and tells subscribers what
//!   changed. Snapshots pushed by a source (OCPP chargers) take the same path without the
//!   fetch.
//! - A failing station keeps its last ports, marked with the error, instead of vanishing.
//! - [`scheduler`] refreshes every enabled station every interval.

use foldhash::{HashMap, HashMapExt};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::{StreamExt, stream};
use tokio::sync::{Semaphore, broadcast};

use crate::cache::StatusCache;
use crate::charger::{ChargerError, Chargers};
use crate::history::record::Recorder;
use crate::model::{Station, StationId, StationState, StatusEvent};
use crate::settings::{EngineSettings, HistorySettings};
use crate::store::Store;

pub mod base;
pub mod breaker;
mod current;
pub mod diff;
mod job;
pub(crate) use self::job::derive;
pub mod retry;
pub mod scheduler;
pub mod writer;

pub use self::base::Base;
pub use self::breaker::BreakerConfig;
pub use self::current::Current;
pub use self::retry::RetryPolicy;
pub use self::writer::{BatchWriter, FlushReport, WriterConfig};

/// How the engine works.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Jobs at once.
    pub concurrency: usize,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// When a vendor that keeps failing is paused.
    pub breaker: BreakerConfig,
    /// Batch writer behaviour.
    pub writer: WriterConfig,
    /// Which readings are kept ([`crate::history::record`]).
    pub history: HistorySettings,
    /// How often a station's stored health is rewritten when nothing about it changed, so the
    /// database's `checked_at` stays within this of the truth (two refresh intervals).
    pub health_every: chrono::TimeDelta,
}

impl EngineConfig {
    /// The configuration the settings describe.
    pub fn from_settings(settings: &EngineSettings, history: &HistorySettings) -> Self {
        Self {
            concurrency: settings.concurrency,
            retry: RetryPolicy {
                max_retries: settings.max_retries,
                ..RetryPolicy::default()
            },
            breaker: BreakerConfig::default(),
            writer: WriterConfig {
                max_buffered_events: settings.write_buffer_events,
                max_buffered_readings: history.write_buffer_readings,
                ..WriterConfig::default()
            },
            history: history.clone(),
            health_every: chrono::TimeDelta::from_std(settings.refresh_interval() * 2)
                .unwrap_or(chrono::TimeDelta::MAX),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self::from_settings(&EngineSettings::default(), &HistorySettings::default())
    }
}

/// Why a refresh failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RefreshError {
    /// The station's source could not deliver a snapshot.
    #[error(transparent)]
    Source(#[from] ChargerError),
    /// The refresh job panicked or was cancelled: a bug in csm, not the vendor's fault.
    #[error("the refresh job of station {station} ended abnormally: {message}")]
    JobFailed {
        /// The station.
        station: StationId,
        /// What the runtime said.
        message: String,
    },
}

impl RefreshError {
    /// A short label of the kind of failure, for metrics and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            RefreshError::Source(error) => error.kind(),
            RefreshError::JobFailed { .. } => "job_failed",
        }
    }
}

/// What one refresh of one station did.
#[derive(Clone, Debug)]
pub struct RefreshOutcome {
    /// The station.
    pub station_id: StationId,
    /// Ports read and changed, or why the refresh failed.
    pub result: Result<RefreshStats, RefreshError>,
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

/// Stations whose every observation is sent to subscribers, not only their status changes
/// (what voltage alerts need).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Watched {
    /// None beyond status changes.
    #[default]
    Changes,
    /// These stations.
    Stations(std::collections::HashSet<StationId>),
    /// Every station.
    All,
}

impl Watched {
    /// Whether every observation of this station is sent.
    pub fn covers(&self, id: &StationId) -> bool {
        match self {
            Watched::Changes => false,
            Watched::Stations(ids) => ids.contains(id),
            Watched::All => true,
        }
    }
}

type JobFuture = Shared<BoxFuture<'static, RefreshOutcome>>;

struct Inner {
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    chargers: Chargers,
    config: EngineConfig,
    /// Requests to sources at once (`concurrency`).
    permits: Semaphore,
    /// The vendors not asked for a while.
    breakers: breaker::Breakers,
    running: Mutex<HashMap<StationId, JobFuture>>,
    /// What each station looked like after this engine's last job.
    base: base::DiffBase,
    /// Derives readings, sessions and hourly totals from each job.
    recorder: Recorder,
    /// Status events produced since start.
    events_produced: std::sync::atomic::AtomicU64,
    /// Updates sent to subscribers since start.
    updates_sent: std::sync::atomic::AtomicU64,
    writer: BatchWriter,
    updates: broadcast::Sender<Arc<StationUpdate>>,
    /// Stations whose every observation goes to subscribers.
    watched: std::sync::RwLock<Watched>,
}

impl Inner {
    /// Whether every observation of the station goes to subscribers.
    fn watches(&self, id: &StationId) -> bool {
        self.watched
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .covers(id)
    }
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
                breakers: breaker::Breakers::new(config.breaker),
                recorder: Recorder::new(&config.history),
                config,
                running: Mutex::new(HashMap::new()),
                base: base::DiffBase::default(),
                events_produced: std::sync::atomic::AtomicU64::new(0),
                updates_sent: std::sync::atomic::AtomicU64::new(0),
                writer,
                updates,
                watched: std::sync::RwLock::new(Watched::default()),
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

    /// Sends every observation of these stations to subscribers, not only status changes.
    pub fn watch_measurements(&self, watched: Watched) {
        *self
            .inner
            .watched
            .write()
            .unwrap_or_else(|p| p.into_inner()) = watched;
    }

    /// The last state this engine produced for a station: statuses, codes, session ends and
    /// since when, without measurements.
    pub fn last_known(&self, id: &StationId) -> Option<Arc<StationState>> {
        self.inner.base.get(id).map(Arc::new)
    }

    /// Forgets a removed station.
    pub fn forget(&self, id: &StationId) {
        self.inner.base.forget(id);
        self.inner.recorder.forget(id);
    }

    /// Updates sent to subscribers since the engine started.
    pub fn updates_sent(&self) -> u64 {
        self.inner
            .updates_sent
            .load(std::sync::atomic::Ordering::Acquire)
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
        self.job(station, None).await
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
                    let mut bases = engine.bases(&ids).await;
                    chunk
                        .into_iter()
                        .map(|station| {
                            let base = bases.remove(&station.id);
                            (station, base)
                        })
                        .collect::<Vec<_>>()
                }
            })
            .flat_map(stream::iter)
            .map(|(station, base)| self.job(station, base))
            .buffer_unordered(self.inner.config.concurrency.max(1));
        jobs.inspect(|outcome| progress(outcome)).collect().await
    }

    /// Starts a refresh of each station that is not being refreshed already (running, or
    /// waiting to retry), without waiting for them: what the scheduler does each interval. A
    /// station still busy from an earlier turn is skipped; its next turn comes after.
    pub async fn start_cycle(&self, stations: Vec<Arc<Station>>) -> Cycle {
        const CHUNK: usize = 500;
        let mut cycle = Cycle::default();
        for chunk in stations.chunks(CHUNK) {
            let idle: Vec<&Arc<Station>> = {
                let running = lock(&self.inner.running);
                chunk
                    .iter()
                    .filter(|s| !running.contains_key(&s.id))
                    .collect()
            };
            cycle.skipped += chunk.len() - idle.len();
            let ids: Vec<StationId> = idle.iter().map(|s| s.id.clone()).collect();
            let mut bases = self.bases(&ids).await;
            for station in idle {
                let base = bases.remove(&station.id);
                if let Some(job) = self.job_if_idle(Arc::clone(station), base) {
                    cycle.jobs.push(job);
                } else {
                    cycle.skipped += 1;
                }
            }
        }
        if cycle.skipped > 0 {
            metrics::counter!("csm_refresh_skipped_total").increment(cycle.skipped as u64);
        }
        cycle
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

    /// The running job of a station, or a new one. `base`: the station's diff base when the
    /// caller looked it up already.
    fn job(&self, station: Arc<Station>, base: Option<Base>) -> JobFuture {
        let running = lock(&self.inner.running);
        if let Some(job) = running.get(&station.id) {
            metrics::counter!("csm_refresh_jobs_total", "outcome" => "joined").increment(1);
            return job.clone();
        }
        self.spawn_job(running, station, base)
    }

    /// A new job of a station, unless one is running.
    fn job_if_idle(&self, station: Arc<Station>, base: Option<Base>) -> Option<JobFuture> {
        let running = lock(&self.inner.running);
        if running.contains_key(&station.id) {
            return None;
        }
        Some(self.spawn_job(running, station, base))
    }

    /// Starts a station's job and registers it as running (in `running`, locked by the caller
    /// since it checked that none runs).
    fn spawn_job(
        &self,
        mut running: std::sync::MutexGuard<'_, HashMap<StationId, JobFuture>>,
        station: Arc<Station>,
        base: Option<Base>,
    ) -> JobFuture {
        let engine = self.clone();
        let id = station.id.clone();
        let task = tokio::spawn(async move {
            let outcome = engine.run_job(&station, base).await;
            lock(&engine.inner.running).remove(&station.id);
            outcome
        });
        let station_id = id.clone();
        let job = async move {
            task.await.unwrap_or_else(|error| {
                tracing::error!(station = %station_id, %error, "a refresh job ended abnormally");
                RefreshOutcome {
                    result: Err(RefreshError::JobFailed {
                        station: station_id.clone(),
                        message: error.to_string(),
                    }),
                    station_id,
                    attempts: 0,
                    elapsed: Duration::ZERO,
                }
            })
        }
        .boxed()
        .shared();
        running.insert(id, job.clone());
        job
    }
}

/// The jobs one turn of the scheduler started, and how many stations it skipped.
#[derive(Default)]
pub struct Cycle {
    jobs: Vec<JobFuture>,
    skipped: usize,
}

impl std::fmt::Debug for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cycle")
            .field("started", &self.jobs.len())
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Cycle {
    /// Jobs started.
    pub fn started(&self) -> usize {
        self.jobs.len()
    }

    /// Stations skipped: their refresh from an earlier turn was still running.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Waits for the started jobs to end; their outcomes, in the order they end.
    pub async fn finished(self) -> Vec<RefreshOutcome> {
        self.jobs
            .into_iter()
            .collect::<stream::FuturesUnordered<_>>()
            .collect()
            .await
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
