//! The batch writer: one task that coalesces the store writes of many refresh jobs into
//! multi-row statements, flushed when enough rows wait or after a short delay, and on request.
//!
//! While the store is healthy but slower than the jobs (the first refresh of a large fleet
//! writes every port), jobs wait for room: at most a few batches of rows are held, so memory
//! stays bounded and the fleet fills at the database's pace.
//!
//! When the store is unreachable, jobs do not wait: the rows stay buffered and are written when
//! it returns. Port state and station health are kept latest-per-key, so their buffer is bounded
//! by the fleet; status events are kept in order up to a bound, beyond which the oldest are
//! dropped, counted in a metric and logged.

use std::collections::VecDeque;

use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use chrono::{DateTime, Utc};

use crate::history::{HourDelta, HourTotals, ReadingRow, SessionRow};
use crate::model::{StationHealth, StationId, StatusEvent};
use crate::store::{PortStateRow, Store, StoreError, WriteBatch};

/// When the writer flushes and how much it holds while the store is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// Flush as soon as this many rows wait.
    pub max_rows: usize,
    /// Flush rows that have waited this long.
    pub max_delay: Duration,
    /// Status events held while the store is unreachable; older ones are dropped beyond it.
    pub max_buffered_events: usize,
    /// Readings held while the store is unreachable; older ones are dropped beyond it (they
    /// go before any status event does).
    pub max_buffered_readings: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_rows: 5_000,
            max_delay: Duration::from_millis(100),
            max_buffered_events: crate::settings::defaults::WRITE_BUFFER_EVENTS,
            max_buffered_readings: crate::settings::defaults::WRITE_BUFFER_READINGS,
        }
    }
}

/// What a flush achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Rows still waiting because the store could not be written.
    pub pending_rows: usize,
    /// Status events dropped since start because the buffer was full.
    pub dropped_events: u64,
    /// Readings dropped since start because their buffer was full.
    pub dropped_readings: u64,
}

enum Message {
    /// Rows, and the room they took.
    Write(WriteBatch, u32),
    Flush(oneshot::Sender<FlushReport>),
}

/// Handle of the batch writer task.
#[derive(Debug)]
pub struct BatchWriter {
    sender: mpsc::UnboundedSender<Message>,
    task: std::sync::Mutex<Option<JoinHandle<FlushReport>>>,
    /// Room for rows waiting to be written while the store is healthy.
    room: Arc<Semaphore>,
    capacity: u32,
}

impl BatchWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>, config: WriterConfig) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let capacity = (config.max_rows.max(1) * 4).min(Semaphore::MAX_PERMITS) as u32;
        let room = Arc::new(Semaphore::new(capacity as usize));
        let task = tokio::spawn(run(store, config, receiver, Arc::clone(&room)));
        Self {
            sender,
            task: std::sync::Mutex::new(Some(task)),
            room,
            capacity,
        }
    }

    /// Queues rows; they are written within `max_delay` when the store is reachable. Waits for
    /// room while the store is healthy but behind.
    pub async fn write(&self, batch: WriteBatch) {
        if batch.is_empty() {
            return;
        }
        let wanted = (batch.len() as u32).min(self.capacity);
        let taken = match self.room.acquire_many(wanted).await {
            Ok(permits) => {
                permits.forget();
                wanted
            }
            Err(_) => 0,
        };
        if self.sender.send(Message::Write(batch, taken)).is_err() {
            tracing::error!("the batch writer has stopped; rows written after shutdown are lost");
        }
    }

    /// Writes everything queued so far; returns what could not be written yet.
    pub async fn flush(&self) -> FlushReport {
        let (ack, done) = oneshot::channel();
        if self.sender.send(Message::Flush(ack)).is_err() {
            return FlushReport::default();
        }
        done.await.unwrap_or_default()
    }

    /// Writes everything queued (trying for up to `deadline` while the store is unreachable)
    /// and stops the task.
    pub async fn close(&self, deadline: Duration) -> FlushReport {
        let started = Instant::now();
        let mut report = self.flush().await;
        while report.pending_rows > 0 && started.elapsed() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            report = self.flush().await;
        }
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        if report.pending_rows > 0 {
            tracing::error!(
                rows = report.pending_rows,
                "the database stayed unreachable during shutdown; these rows were not written"
            );
        }
        report
    }
}

/// Rows waiting to be written.
#[derive(Default)]
struct Pending {
    ports: HashMap<(StationId, u32), PortStateRow>,
    events: VecDeque<StatusEvent>,
    health: HashMap<StationId, StationHealth>,
    sessions: HashMap<(StationId, u32, DateTime<Utc>), SessionRow>,
    hours: HashMap<(StationId, u32, DateTime<Utc>), HourTotals>,
    readings: VecDeque<ReadingRow>,
    dropped_events: u64,
    dropped_readings: u64,
}

impl Pending {
    fn rows(&self) -> usize {
        self.ports.len()
            + self.events.len()
            + self.health.len()
            + self.sessions.len()
            + self.hours.len()
            + self.readings.len()
    }

    /// Adds a batch; returns how many of its rows took no room (they merged with a waiting row
    /// of the same key, or pushed out old events and readings).
    fn add(&mut self, batch: WriteBatch, config: &WriterConfig) -> usize {
        let mut absorbed = 0;
        for row in batch.ports {
            let key = (row.station_id.clone(), row.state.reading.port);
            absorbed += usize::from(self.ports.insert(key, row).is_some());
        }
        for health in batch.health {
            absorbed += usize::from(
                self.health
                    .insert(health.station_id.clone(), health)
                    .is_some(),
            );
        }
        for session in batch.sessions {
            absorbed += usize::from(self.merge_session(session));
        }
        for delta in batch.hours {
            absorbed += usize::from(self.merge_hour(delta));
        }
        self.events.extend(batch.events);
        let excess = self.events.len().saturating_sub(config.max_buffered_events);
        if excess > 0 {
            self.events.drain(..excess);
            self.dropped_events += excess as u64;
            metrics::counter!("csm_events_dropped_total").increment(excess as u64);
            tracing::error!(
                dropped = excess,
                dropped_total = self.dropped_events,
                "the database has been unreachable too long: the oldest buffered status events were dropped (raise CSM_WRITE_BUFFER_EVENTS to hold more)"
            );
        }
        self.readings.extend(batch.readings);
        let excess_readings = self
            .readings
            .len()
            .saturating_sub(config.max_buffered_readings);
        if excess_readings > 0 {
            self.readings.drain(..excess_readings);
            if self.dropped_readings == 0 {
                tracing::warn!(
                    "the database has been unreachable too long: the oldest buffered readings are being dropped (raise CSM_WRITE_BUFFER_READINGS to hold more); status events are kept"
                );
            }
            self.dropped_readings += excess_readings as u64;
            metrics::counter!("csm_readings_dropped_total").increment(excess_readings as u64);
        }
        metrics::gauge!("csm_write_buffer_events").set(self.events.len() as f64);
        metrics::gauge!("csm_write_buffer_readings").set(self.readings.len() as f64);
        absorbed + excess + excess_readings
    }

    /// Merges a session with the waiting row of the same session (an end fills in a start);
    /// whether there was one.
    fn merge_session(&mut self, session: SessionRow) -> bool {
        let key = (session.station_id.clone(), session.port, session.started_at);
        match self.sessions.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut waiting) => {
                let waiting = waiting.get_mut();
                waiting.ended_at = session.ended_at.or(waiting.ended_at);
                waiting.energy_kwh = session.energy_kwh.or(waiting.energy_kwh);
                true
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(session);
                false
            }
        }
    }

    /// Adds an hour's totals to the waiting ones of the same port and hour; whether there were
    /// some.
    fn merge_hour(&mut self, delta: HourDelta) -> bool {
        let key = (delta.station_id, delta.port, delta.hour);
        let existed = self.hours.contains_key(&key);
        self.hours.entry(key).or_default().add(&delta.totals);
        existed
    }

    /// Takes up to `max_rows` rows for one transaction: events first, readings last.
    fn take(&mut self, max_rows: usize) -> WriteBatch {
        let mut batch = WriteBatch::default();
        let take_events = self.events.len().min(max_rows);
        batch.events = self.events.drain(..take_events).collect();
        let mut room = max_rows.saturating_sub(batch.events.len());
        fn values<K, V>(taken: Vec<(K, V)>) -> Vec<V> {
            taken.into_iter().map(|(_, value)| value).collect()
        }
        batch.ports = values(take_some(&mut self.ports, &mut room));
        batch.health = values(take_some(&mut self.health, &mut room));
        batch.sessions = values(take_some(&mut self.sessions, &mut room));
        batch.hours = take_some(&mut self.hours, &mut room)
            .into_iter()
            .map(|((station_id, port, hour), totals)| HourDelta {
                station_id,
                port,
                hour,
                totals,
            })
            .collect();
        let take_readings = self.readings.len().min(room);
        batch.readings = self.readings.drain(..take_readings).collect();
        batch
    }

    /// Puts back a batch that could not be written; rows that arrived since are newer and win
    /// (sessions and hours merge with them).
    fn put_back(&mut self, batch: WriteBatch) {
        for row in batch.ports {
            self.ports
                .entry((row.station_id.clone(), row.state.reading.port))
                .or_insert(row);
        }
        for health in batch.health {
            self.health
                .entry(health.station_id.clone())
                .or_insert(health);
        }
        for session in batch.sessions {
            let key = (session.station_id.clone(), session.port, session.started_at);
            match self.sessions.get_mut(&key) {
                // The waiting row is newer: it keeps what it has and takes the rest.
                Some(newer) => {
                    newer.ended_at = newer.ended_at.or(session.ended_at);
                    newer.energy_kwh = newer.energy_kwh.or(session.energy_kwh);
                }
                None => {
                    self.sessions.insert(key, session);
                }
            }
        }
        for delta in batch.hours {
            self.merge_hour(delta);
        }
        for event in batch.events.into_iter().rev() {
            self.events.push_front(event);
        }
        for reading in batch.readings.into_iter().rev() {
            self.readings.push_front(reading);
        }
    }
}

/// Takes up to `room` entries of a map (and counts them off `room`); for the rows kept one per
/// key.
fn take_some<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    room: &mut usize,
) -> Vec<(K, V)> {
    let keys: Vec<K> = map.keys().take(*room).cloned().collect();
    let taken: Vec<(K, V)> = keys
        .into_iter()
        .filter_map(|key| map.remove(&key).map(|value| (key, value)))
        .collect();
    *room -= taken.len();
    taken
}

/// Room held by waiting rows, given back as they are written (or as soon as the store fails,
/// so that jobs never wait on an unreachable database).
struct Room {
    semaphore: Arc<Semaphore>,
    held: usize,
}

impl Room {
    fn hold(&mut self, rows: u32, store_failing: bool) {
        if store_failing {
            self.semaphore.add_permits(rows as usize);
        } else {
            self.held += rows as usize;
        }
    }

    fn release(&mut self, rows: usize) {
        let rows = rows.min(self.held);
        self.held -= rows;
        self.semaphore.add_permits(rows);
    }

    fn release_all(&mut self) {
        self.release(self.held);
    }
}

/// The writer task's state.
struct Task {
    store: Arc<dyn Store>,
    config: WriterConfig,
    pending: Pending,
    room: Room,
    /// When the oldest waiting row must be written.
    due: Option<Instant>,
    /// After a failed write: no new attempt before this.
    retry_at: Option<Instant>,
    /// Failed writes in a row.
    failures: u32,
}

async fn run(
    store: Arc<dyn Store>,
    config: WriterConfig,
    mut receiver: mpsc::UnboundedReceiver<Message>,
    semaphore: Arc<Semaphore>,
) -> FlushReport {
    let mut task = Task {
        store,
        config,
        pending: Pending::default(),
        room: Room { semaphore, held: 0 },
        due: None,
        retry_at: None,
        failures: 0,
    };
    loop {
        let wake = match (task.due, task.retry_at) {
            (Some(due), Some(retry)) => Some(due.max(retry)),
            (due, None) => due,
            (None, Some(_)) => None,
        };
        let message = tokio::select! {
            message = receiver.recv() => message,
            () = sleep_until(wake) => {
                task.flush().await;
                continue;
            }
        };
        match message {
            Some(Message::Write(batch, taken)) => {
                task.room.hold(taken, task.failures > 0);
                let absorbed = task.pending.add(batch, &task.config);
                task.room.release(absorbed);
                task.due
                    .get_or_insert_with(|| Instant::now() + task.config.max_delay);
                let can_try = task.retry_at.is_none_or(|at| Instant::now() >= at);
                if task.pending.rows() >= task.config.max_rows && can_try {
                    task.flush().await;
                }
            }
            Some(Message::Flush(ack)) => {
                task.retry_at = None;
                task.flush().await;
                let _ = ack.send(task.report());
            }
            None => {
                task.retry_at = None;
                task.flush().await;
                return task.report();
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Task {
    fn report(&self) -> FlushReport {
        FlushReport {
            pending_rows: self.pending.rows(),
            dropped_events: self.pending.dropped_events,
            dropped_readings: self.pending.dropped_readings,
        }
    }

    /// Writes pending rows in transactions of `max_rows` until none are left or one fails,
    /// then sets when the rest is due.
    async fn flush(&mut self) {
        while self.pending.rows() > 0 {
            let batch = self.pending.take(self.config.max_rows);
            let rows = batch.len();
            let started = std::time::Instant::now();
            match self.store.apply(&batch).await {
                Ok(()) => {
                    metrics::histogram!("csm_batch_write_rows").record(rows as f64);
                    metrics::histogram!("csm_batch_write_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::counter!("csm_batch_writes_total", "outcome" => "ok").increment(1);
                    if self.failures > 0 {
                        tracing::info!(
                            after_failures = self.failures,
                            "the database is writable again"
                        );
                    }
                    self.failures = 0;
                    self.retry_at = None;
                    self.room.release(rows);
                }
                Err(error) if error.is_transient() => {
                    metrics::counter!("csm_batch_writes_total", "outcome" => "retry").increment(1);
                    self.pending.put_back(batch);
                    // Jobs must not wait on an unreachable database: give back all room.
                    self.room.release_all();
                    self.failures += 1;
                    let backoff = Duration::from_millis(200 * 2_u64.pow(self.failures.min(5)));
                    self.retry_at = Some(Instant::now() + backoff);
                    if self.failures == 1 || self.failures.is_multiple_of(20) {
                        tracing::warn!(%error, pending = self.pending.rows(), "cannot write to the database; keeping the rows and trying again");
                    }
                    break;
                }
                Err(error) => {
                    drop_batch(&error, rows);
                    self.room.release(rows);
                }
            }
        }
        metrics::gauge!("csm_write_buffer_events").set(self.pending.events.len() as f64);
        self.due = (self.pending.rows() > 0).then(|| Instant::now() + self.config.max_delay);
    }
}

fn drop_batch(error: &StoreError, rows: usize) {
    metrics::counter!("csm_batch_writes_total", "outcome" => "failed").increment(1);
    tracing::error!(%error, rows, "the database refused a batch; it cannot succeed on retry and was dropped");
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};

    use super::*;
    use crate::model::PortStatus;

    fn event(n: i64) -> StatusEvent {
        StatusEvent {
            station_id: StationId::parse("W1").unwrap(),
            port: 1,
            old: None,
            new: PortStatus::Free,
            at: Utc::now() + TimeDelta::seconds(n),
        }
    }

    fn reading(n: i64) -> ReadingRow {
        ReadingRow {
            station_id: StationId::parse("W1").unwrap(),
            port: 1,
            at: Utc::now() + TimeDelta::seconds(n),
            status: PortStatus::Free,
            voltage: Some(220.0),
            current: None,
            power: None,
            energy_kwh: None,
        }
    }

    #[test]
    fn readings_are_dropped_before_events_and_written_after_them() {
        let config = WriterConfig {
            max_buffered_events: 100,
            max_buffered_readings: 10,
            ..WriterConfig::default()
        };
        let mut pending = Pending::default();
        let readings: Vec<ReadingRow> = (0..50).map(reading).collect();
        for chunk in readings.chunks(10) {
            pending.add(
                WriteBatch {
                    events: chunk
                        .iter()
                        .map(|r| event((r.at - readings[0].at).num_seconds()))
                        .collect(),
                    readings: chunk.to_vec(),
                    ..WriteBatch::default()
                },
                &config,
            );
        }
        // The oldest readings went; every event stayed.
        assert_eq!(pending.events.len(), 50);
        assert_eq!(pending.readings.len(), 10);
        assert_eq!(pending.dropped_readings, 40);
        assert_eq!(pending.dropped_events, 0);
        assert_eq!(
            pending.readings.iter().cloned().collect::<Vec<_>>(),
            readings[40..]
        );
        // A transaction with room for 55 rows takes every event first, readings with what is
        // left.
        let batch = pending.take(55);
        assert_eq!((batch.events.len(), batch.readings.len()), (50, 5));
        pending.put_back(batch);
        assert_eq!((pending.events.len(), pending.readings.len()), (50, 10));
    }

    #[test]
    fn sessions_and_hours_merge_while_they_wait() {
        let mut pending = Pending::default();
        let id = StationId::parse("W2").unwrap();
        let started = Utc::now();
        let session = |ended_at| SessionRow {
            station_id: id.clone(),
            port: 3,
            started_at: started,
            ended_at,
            energy_kwh: ended_at.map(|_| 1.5),
        };
        let hour = |secs| HourDelta {
            station_id: id.clone(),
            port: 3,
            hour: crate::history::hour_of(started),
            totals: HourTotals {
                secs: [secs, 0, 0, 0, 0, 0, 0],
                ..HourTotals::default()
            },
        };
        let config = WriterConfig::default();
        pending.add(
            WriteBatch {
                sessions: vec![session(None)],
                hours: vec![hour(600)],
                ..WriteBatch::default()
            },
            &config,
        );
        let end = started + TimeDelta::minutes(40);
        let absorbed = pending.add(
            WriteBatch {
                sessions: vec![session(Some(end))],
                hours: vec![hour(900)],
                ..WriteBatch::default()
            },
            &config,
        );
        assert_eq!(absorbed, 2, "both merged with a waiting row");
        let batch = pending.take(100);
        assert_eq!(batch.sessions, [session(Some(end))]);
        assert_eq!(batch.hours.len(), 1);
        assert_eq!(batch.hours[0].totals.secs[0], 1_500);
    }
}
