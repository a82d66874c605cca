//! The refresh engine: changed-only writes, joined jobs, bounded concurrency, failing stations,
//! batched writes, and the scheduler — on SQLite with the in-process cache and on MariaDB with
//! Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use csm::core::cache::StatusCache;
use csm::core::charger::{ChargerApi, ChargerError};
use csm::core::history::{HistoryQuery, HourRow, HourTotals, ReadingRow, SessionRow};
use csm::core::model::{PortStatus, Station, StationId, StationState, StatusEvent};
use csm::core::refresh::{Engine, EngineConfig, RetryPolicy, scheduler};
use csm::core::store::{EventQuery, Prunable, Store, StoreError, WriteBatch};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    Backend, CacheKind, SCRIPTED, ScriptedApi, TestStore, all_free, build, eventually,
    memory_cache, reading, station, test_cache, test_store,
};

/// A store that counts the batches written to it.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Store>,
    applies: AtomicUsize,
    /// How long each batch write takes on top of the database's own time.
    delay: std::sync::Mutex<Duration>,
}

#[async_trait]
impl Store for Counting {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn target(&self) -> String {
        self.inner.target()
    }
    fn alerts(&self) -> &dyn csm_core::store::AlertStore {
        self.inner.alerts()
    }
    fn access(&self) -> &dyn csm_core::store::AccessStore {
        self.inner.access()
    }
    async fn write_ocpp_messages(
        &self,
        frames: &[csm_core::model::ocpp::StoredFrame],
    ) -> Result<(), StoreError> {
        self.inner.write_ocpp_messages(frames).await
    }
    async fn ocpp_messages(
        &self,
        id: &StationId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<csm_core::model::ocpp::StoredFrame>, StoreError> {
        self.inner.ocpp_messages(id, after, limit).await
    }
    async fn charger_passwords(&self) -> Result<Vec<(StationId, String)>, StoreError> {
        self.inner.charger_passwords().await
    }
    async fn set_charger_password(
        &self,
        id: &StationId,
        hash: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.set_charger_password(id, hash).await
    }
    async fn charger_profiles(&self) -> Result<Vec<(StationId, u8)>, StoreError> {
        self.inner.charger_profiles().await
    }
    async fn set_charger_profile(&self, id: &StationId, profile: u8) -> Result<(), StoreError> {
        self.inner.set_charger_profile(id, profile).await
    }
    async fn write_charge_points(
        &self,
        records: &[csm::core::ocpp::ChargePointRecord],
    ) -> Result<(), StoreError> {
        self.inner.write_charge_points(records).await
    }
    async fn charge_points(&self) -> Result<Vec<csm::core::ocpp::ChargePointRecord>, StoreError> {
        self.inner.charge_points().await
    }
    async fn record_redis_seen(
        &self,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.inner.record_redis_seen(id, at, since).await
    }
    async fn redis_seen_elsewhere(
        &self,
        id: &str,
        since: chrono::DateTime<chrono::Utc>,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.redis_seen_elsewhere(id, since, after).await
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.migrate().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn add_station(&self, station: &Station) -> Result<(), StoreError> {
        self.inner.add_station(station).await
    }
    async fn upsert_stations(
        &self,
        stations: &[Station],
    ) -> Result<csm::core::store::UpsertCounts, StoreError> {
        self.inner.upsert_stations(stations).await
    }
    async fn remove_station(&self, id: &StationId) -> Result<bool, StoreError> {
        self.inner.remove_station(id).await
    }
    async fn list_stations(&self) -> Result<Vec<Station>, StoreError> {
        self.inner.list_stations().await
    }
    async fn catalog_version(&self) -> Result<u64, StoreError> {
        self.inner.catalog_version().await
    }
    async fn get_station(&self, id: &StationId) -> Result<Option<Station>, StoreError> {
        self.inner.get_station(id).await
    }
    async fn station_states(&self, ids: &[StationId]) -> Result<Vec<StationState>, StoreError> {
        self.inner.station_states(ids).await
    }
    async fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        self.inner.apply(batch).await
    }
    async fn events(&self, query: &EventQuery) -> Result<Vec<StatusEvent>, StoreError> {
        self.inner.events(query).await
    }
    async fn count_events(&self, station_id: Option<&StationId>) -> Result<u64, StoreError> {
        self.inner.count_events(station_id).await
    }
    async fn readings(&self, query: &HistoryQuery) -> Result<Vec<ReadingRow>, StoreError> {
        self.inner.readings(query).await
    }
    async fn sessions(&self, query: &HistoryQuery) -> Result<Vec<SessionRow>, StoreError> {
        self.inner.sessions(query).await
    }
    async fn session_lengths(
        &self,
        station_id: Option<&StationId>,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<u32>, StoreError> {
        self.inner.session_lengths(station_id, since, limit).await
    }
    async fn hours(
        &self,
        station_id: Option<&StationId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourRow>, StoreError> {
        self.inner.hours(station_id, from, to).await
    }
    async fn station_totals(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(StationId, HourTotals)>, StoreError> {
        self.inner.station_totals(from, to).await
    }
    async fn prune(
        &self,
        what: Prunable,
        before: DateTime<Utc>,
        chunk: u32,
    ) -> Result<u64, StoreError> {
        self.inner.prune(what, before, chunk).await
    }
}

struct Rig {
    engine: Engine,
    api: Arc<ScriptedApi>,
    store: Arc<Counting>,
    cache: Arc<dyn StatusCache>,
    _db: TestStore,
}

async fn rig(backend: Backend, cache: CacheKind, concurrency: usize) -> Rig {
    let db = test_store(backend).await;
    let store = Arc::new(Counting {
        inner: Arc::clone(&db.store),
        applies: AtomicUsize::new(0),
        delay: std::sync::Mutex::new(Duration::ZERO),
    });
    let cache = test_cache(cache, Duration::from_secs(60)).await;
    let api = Arc::new(ScriptedApi::default());
    let engine = build(&(Arc::clone(&store) as Arc<dyn Store>), &cache)
        .only()
        .source(Arc::clone(&api) as Arc<dyn ChargerApi>)
        .config(EngineConfig {
            concurrency,
            retry: RetryPolicy {
                max_retries: 1,
                base_delay: Duration::from_millis(5),
                ..RetryPolicy::default()
            },
            ..EngineConfig::default()
        })
        .engine();
    Rig {
        engine,
        api,
        store,
        cache,
        _db: db,
    }
}

fn scripted(id: &str, ports: u32) -> Arc<Station> {
    Arc::new(station(id, SCRIPTED, ports))
}

crate::helpers::on_each!(
    sqlite_memory(Backend::Sqlite, CacheKind::Memory),
    mysql_redis(Backend::MySql, CacheKind::Redis) =>

    only_changes_make_events_and_writes,
    a_failing_station_keeps_its_ports_marked_stale,
    refreshes_of_one_station_join,
    writes_of_many_jobs_are_batched,
);

async fn only_changes_make_events_and_writes(backend: Backend, cache: CacheKind) {
    let rig = rig(backend, cache, 8).await;
    let s = scripted("A", 3);
    rig.api.set(
        "A",
        Ok(vec![
            reading(1, PortStatus::Free, Some(220.0)),
            reading(2, PortStatus::Occupied, Some(219.0)),
            reading(3, PortStatus::Fault, None),
        ]),
    );
    let first = rig.engine.refresh(Arc::clone(&s)).await.result.unwrap();
    assert_eq!(
        (first.ports, first.status_changes, first.rows_written),
        (3, 3, 3)
    );
    // Only the voltage moves: nothing to write.
    rig.api.set(
        "A",
        Ok(vec![
            reading(1, PortStatus::Free, Some(221.7)),
            reading(2, PortStatus::Occupied, Some(218.2)),
            reading(3, PortStatus::Fault, None),
        ]),
    );
    let second = rig.engine.refresh(Arc::clone(&s)).await.result.unwrap();
    assert_eq!((second.status_changes, second.rows_written), (0, 0));
    rig.api.set(
        "A",
        Ok(vec![
            reading(1, PortStatus::Free, Some(221.0)),
            reading(2, PortStatus::Free, Some(220.1)),
            reading(3, PortStatus::Fault, None),
        ]),
    );
    let third = rig.engine.refresh(Arc::clone(&s)).await.result.unwrap();
    assert_eq!((third.status_changes, third.rows_written), (1, 1));
    assert_eq!(rig.engine.flush().await.pending_rows, 0);

    let id = StationId::parse("A").unwrap();
    let events = rig
        ._db
        .store
        .events(&EventQuery {
            station_id: Some(id.clone()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(
        (events[0].port, events[0].old, events[0].new),
        (2, Some(PortStatus::Occupied), PortStatus::Free)
    );
    let cached = rig.cache.get(&id).await.unwrap().expect("cached");
    assert_eq!(
        cached.ports[0].reading.voltage,
        Some(221.0),
        "the cache has the live reading"
    );
    let stored = rig
        ._db
        .store
        .station_states(std::slice::from_ref(&id))
        .await
        .unwrap();
    let ports = &stored[0].ports;
    assert_eq!(ports[1].reading.status, PortStatus::Free);
    assert!(
        ports[1].since > ports[0].since,
        "port 2 changed later than port 1"
    );
    assert_eq!(
        cached.ports[0].since.timestamp_micros(),
        ports[0].since.timestamp_micros()
    );
}

async fn a_failing_station_keeps_its_ports_marked_stale(backend: Backend, cache: CacheKind) {
    let rig = rig(backend, cache, 8).await;
    let (a, b) = (scripted("A", 2), scripted("B", 1));
    rig.api.set(
        "A",
        Ok(vec![
            reading(1, PortStatus::Free, None),
            reading(2, PortStatus::Occupied, None),
        ]),
    );
    rig.api
        .set("B", Ok(vec![reading(1, PortStatus::Free, None)]));
    rig.engine
        .refresh_many(vec![Arc::clone(&a), Arc::clone(&b)], |_| {})
        .await;
    let down = ChargerError::Connect {
        vendor: SCRIPTED.into(),
        url: "http://vendor/A".into(),
        message: "connection refused".into(),
    };
    rig.api.set("A", Err(down.clone()));
    let outcomes = rig
        .engine
        .refresh_many(vec![Arc::clone(&a), Arc::clone(&b)], |_| {})
        .await;
    let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].station_id.as_str(), "A");
    assert_eq!(failed[0].attempts, 2, "a connection error is retried");
    let state = rig.cache.get(&a.id).await.unwrap().expect("still cached");
    assert_eq!(state.ports.len(), 2, "the last known ports stay");
    assert_eq!(state.failures, 1);
    assert!(
        state
            .last_error
            .as_deref()
            .unwrap()
            .contains("connection refused")
    );
    assert!(state.is_stale(chrono::Utc::now(), chrono::Duration::hours(1)));
    rig.engine.flush().await;
    let stored = rig
        ._db
        .store
        .station_states(std::slice::from_ref(&a.id))
        .await
        .unwrap();
    assert!(
        stored[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("connection refused")
    );
    let b_state = rig.cache.get(&b.id).await.unwrap().unwrap();
    assert!(
        b_state.last_error.is_none(),
        "the other station is unaffected"
    );
    // Recovery clears the error.
    rig.api.set(
        "A",
        Ok(vec![
            reading(1, PortStatus::Free, None),
            reading(2, PortStatus::Free, None),
        ]),
    );
    rig.engine.refresh(Arc::clone(&a)).await.result.unwrap();
    rig.engine.flush().await;
    let stored = rig
        ._db
        .store
        .station_states(std::slice::from_ref(&a.id))
        .await
        .unwrap();
    assert_eq!(stored[0].last_error, None);
    assert_eq!(stored[0].failures, 0);
}

async fn refreshes_of_one_station_join(backend: Backend, cache: CacheKind) {
    let rig = rig(backend, cache, 8).await;
    let s = scripted("A", 1);
    rig.api
        .set("A", Ok(vec![reading(1, PortStatus::Free, None)]));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *rig.api.gate.lock().unwrap() = Some(Arc::clone(&gate));
    let first = tokio::spawn({
        let engine = rig.engine.clone();
        let s = Arc::clone(&s);
        async move { engine.refresh(s).await }
    });
    eventually(
        Duration::from_secs(5),
        || async { rig.api.calls() },
        |n| *n > 0,
    )
    .await;
    // Polled once, the second request has joined the running job (or started its own).
    let mut second = Box::pin(rig.engine.refresh(Arc::clone(&s)));
    assert!(
        futures_util::future::poll_immediate(&mut second)
            .await
            .is_none()
    );
    assert_eq!(rig.engine.running(), 1);
    gate.add_permits(10);
    let (first, second) = (first.await.unwrap(), second.await);
    assert_eq!(
        rig.api.calls(),
        1,
        "the second request joined the running job"
    );
    assert_eq!(first.result.unwrap(), second.result.unwrap());
}

async fn writes_of_many_jobs_are_batched(backend: Backend, cache: CacheKind) {
    let rig = rig(backend, cache, 32).await;
    let stations: Vec<_> = (0..300)
        .map(|i| scripted(&format!("S{i:03}"), 12))
        .collect();
    for s in &stations {
        rig.api.set(
            s.id.as_str(),
            Ok((1..=12)
                .map(|p| reading(p, PortStatus::Free, Some(220.0)))
                .collect()),
        );
    }
    let outcomes = rig.engine.refresh_many(stations, |_| {}).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    rig.engine.flush().await;
    let applies = rig.store.applies.load(Ordering::SeqCst);
    assert!(
        applies <= 20,
        "300 stations × 12 ports were written in {applies} transactions"
    );
    assert_eq!(rig._db.store.count_events(None).await.unwrap(), 3_600);
}

#[tokio::test]
async fn jobs_wait_for_a_slow_database_instead_of_piling_rows_up() {
    let db = test_store(Backend::Sqlite).await;
    let store = Arc::new(Counting {
        inner: Arc::clone(&db.store),
        applies: AtomicUsize::new(0),
        delay: std::sync::Mutex::new(Duration::from_millis(100)),
    });
    let api = Arc::new(ScriptedApi::default());
    let engine = build(&(Arc::clone(&store) as Arc<dyn Store>), &memory_cache())
        .only()
        .source(Arc::clone(&api) as Arc<dyn ChargerApi>)
        .config(EngineConfig {
            writer: csm::core::refresh::WriterConfig {
                max_rows: 100,
                max_delay: Duration::from_millis(5),
                ..Default::default()
            },
            ..EngineConfig::default()
        })
        .engine();
    // 100 stations × 12 ports: 2,400 rows, room for 400 at a time.
    let stations: Vec<_> = (0..100)
        .map(|i| scripted(&format!("S{i:03}"), 12))
        .collect();
    for s in &stations {
        api.set(s.id.as_str(), Ok(all_free(12)));
    }
    let started = Instant::now();
    let outcomes = engine.refresh_many(stations, |_| {}).await;
    let elapsed = started.elapsed();
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    assert!(
        elapsed >= Duration::from_millis(1_500),
        "2,400 rows through room for 400 at 100 ms a batch of 100 cannot take {elapsed:?}"
    );
    assert_eq!(engine.flush().await.pending_rows, 0);
    assert_eq!(db.store.count_events(None).await.unwrap(), 1_200);
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let rig = rig(Backend::Sqlite, CacheKind::Memory, 4).await;
    *rig.api.delay.lock().unwrap() = Duration::from_millis(20);
    let stations: Vec<_> = (0..40).map(|i| scripted(&format!("S{i}"), 1)).collect();
    for s in &stations {
        rig.api
            .set(s.id.as_str(), Ok(vec![reading(1, PortStatus::Free, None)]));
    }
    let progress = AtomicUsize::new(0);
    let outcomes = rig
        .engine
        .refresh_many(stations, |_| {
            progress.fetch_add(1, Ordering::SeqCst);
        })
        .await;
    assert_eq!(outcomes.len(), 40);
    assert_eq!(progress.load(Ordering::SeqCst), 40);
    let max = rig.api.max_in_flight.load(Ordering::SeqCst);
    assert!(
        (2..=4).contains(&max),
        "at most 4 at once, and more than one: {max}"
    );
}

#[tokio::test]
async fn the_scheduler_skips_ticks_it_cannot_keep() {
    let rig = rig(Backend::Sqlite, CacheKind::Memory, 8).await;
    let s = station("A", SCRIPTED, 1);
    rig._db.store.add_station(&s).await.unwrap();
    rig._db
        .store
        .add_station(&Station {
            enabled: false,
            ..station("OFF", SCRIPTED, 1)
        })
        .await
        .unwrap();
    rig.api
        .set("A", Ok(vec![reading(1, PortStatus::Free, None)]));
    rig.api
        .set("OFF", Ok(vec![reading(1, PortStatus::Free, None)]));
    // Each fetch takes 250 ms while the interval is 50 ms: cycles must not pile up.
    *rig.api.delay.lock().unwrap() = Duration::from_millis(250);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(scheduler::run(
        rig.engine.clone(),
        Arc::clone(&rig._db.store),
        scheduler::Everything,
        Duration::from_millis(50),
        cancel.clone(),
    ));
    eventually(
        Duration::from_secs(10),
        || async { rig.api.calls() },
        |n| *n >= 4,
    )
    .await;
    cancel.cancel();
    task.await.unwrap();
    let calls = rig.api.calls();
    let elapsed = started.elapsed().as_millis() as usize;
    assert!(calls >= 3, "the scheduler kept refreshing: {calls}");
    assert!(
        calls <= elapsed / 250 + 1,
        "{calls} fetches in {elapsed} ms: cycles overlapped"
    );
    assert_eq!(
        rig.api.max_in_flight.load(Ordering::SeqCst),
        1,
        "the disabled station is not refreshed"
    );
}

#[tokio::test]
async fn the_scheduler_spreads_the_stations_over_the_interval() {
    let rig = rig(Backend::Sqlite, CacheKind::Memory, 64).await;
    for n in 0..200 {
        let s = station(&format!("S{n:03}"), SCRIPTED, 1);
        rig._db.store.add_station(&s).await.unwrap();
        rig.api
            .set(s.id.as_str(), Ok(vec![reading(1, PortStatus::Free, None)]));
    }
    let interval = Duration::from_millis(1000);
    let cancel = CancellationToken::new();
    let started = std::time::Instant::now();
    let task = tokio::spawn(scheduler::run(
        rig.engine.clone(),
        Arc::clone(&rig._db.store),
        scheduler::Everything,
        interval,
        cancel.clone(),
    ));
    tokio::time::sleep(interval * 4 + Duration::from_millis(100)).await;
    cancel.cancel();
    task.await.unwrap();
    let asked = rig.api.asked.lock().unwrap().clone();
    // From the third interval on (the first sees every station at once, then at its phase):
    // each station once an interval, and the requests spread over the interval rather than
    // all at its start.
    let steady: Vec<(String, Duration)> = asked
        .into_iter()
        .map(|(id, at)| (id, at - started))
        .filter(|(_, at)| *at >= interval * 2 && *at < interval * 4)
        .collect();
    let mut per_station: std::collections::HashMap<String, Vec<Duration>> =
        std::collections::HashMap::new();
    for (id, at) in &steady {
        per_station.entry(id.clone()).or_default().push(*at);
    }
    assert_eq!(per_station.len(), 200, "every station asked");
    for (id, times) in &per_station {
        // Two, or one or three where the window's edges cut a station's turn (timers run late
        // on a busy machine), each an interval apart.
        assert!((1..=3).contains(&times.len()), "{id} asked {times:?}");
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap > interval * 3 / 4 && gap < interval * 5 / 4,
                "{id} asked {gap:?} apart: {times:?}"
            );
        }
    }
    let total: usize = per_station.values().map(Vec::len).sum();
    assert!(
        (380..=420).contains(&total),
        "{total} requests in two intervals of 200 stations"
    );
    // Tenths of the interval: each holds some of the requests, none most of them.
    let mut tenths = [0usize; 10];
    for (_, at) in &steady {
        let into = (at.as_millis() % interval.as_millis()) * 10 / interval.as_millis();
        tenths[into as usize] += 1;
    }
    assert!(
        tenths.iter().all(|n| (10..=100).contains(n)),
        "requests by tenth of the interval: {tenths:?}"
    );
}
