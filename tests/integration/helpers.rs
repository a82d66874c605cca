//! Shared test helpers: fresh databases, cache prefixes, stations, scripted sources and
//! `spawn_app()`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use csm::core::Monitor;
use csm::core::cache::{MemoryCache, NearCache, RedisCache, StatusCache};
use csm::core::charger::{ChargerApi, ChargerError, Chargers};
use csm::core::model::{PortReading, PortStatus, Snapshot, Station, StationId};
use csm::core::refresh::{Engine, EngineConfig};
use csm::core::settings::Settings;
use csm::core::store::{MySqlStore, SqliteStore, Store};
use csm::server::ServerConfig;
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// Base URL of the test MariaDB server (no database).
pub fn mysql_base() -> String {
    std::env::var("CSM_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// URL of the test Redis.
pub fn redis_url() -> String {
    std::env::var("CSM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Seed URLs of the test Redis Cluster (three masters; `scripts/test.sh` starts it).
pub fn redis_cluster_url() -> String {
    std::env::var("CSM_TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| {
        "redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003".into()
    })
}

/// Runs each named test function once for each set of arguments, in a module of its own:
/// `on_each!(sqlite(Backend::Sqlite), mysql(Backend::MySql) => test_a, test_b);` makes
/// `sqlite::test_a`, `mysql::test_a`, … calling `test_a(Backend::Sqlite)` and so on.
macro_rules! on_each {
    ($module:ident $args:tt $(, $more:ident $more_args:tt)* => $($name:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $( #[tokio::test] async fn $name() { super::$name $args .await } )*
        }
        $crate::helpers::on_each!($($more $more_args),* => $($name),*);
    };
    ( => $($name:ident),* $(,)?) => {};
}
pub(crate) use on_each;

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        fastrand_suffix()
    )
}

fn fastrand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    nanos % 100_000
}

/// A MariaDB database of its own, dropped when the value is dropped.
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    /// A name for a database that does not exist yet (the store's migration creates it).
    pub fn new() -> Self {
        let name = unique("csm_t_");
        Self {
            url: format!("{}/{name}", mysql_base()),
            name,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let base = mysql_base();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::MySqlConnection::connect(&base).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS `{name}`"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Which store a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

/// A migrated store with what keeps it alive.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _db: Option<TestDb>,
}

/// A fresh, migrated store of the given backend.
pub async fn test_store(backend: Backend) -> TestStore {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("csm.db").display());
            let store = SqliteStore::connect(&url, 4).await.expect("open SQLite");
            Store::migrate(&store).await.expect("migrate SQLite");
            TestStore {
                store: Arc::new(store),
                url,
                _dir: Some(dir),
                _db: None,
            }
        }
        Backend::MySql => {
            let db = TestDb::new();
            let store = MySqlStore::connect(&db.url, 8).expect("MySQL URL");
            if let Err(error) = Store::migrate(&store).await {
                panic!(
                    "MariaDB at {} is not usable ({error}); start it (scripts/test.sh does) or set CSM_TEST_MYSQL_URL",
                    mysql_base()
                );
            }
            TestStore {
                store: Arc::new(store),
                url: db.url.clone(),
                _dir: None,
                _db: Some(db),
            }
        }
    }
}

/// Which cache a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheKind {
    Memory,
    Redis,
    /// Redis with a local copy in front (what the server runs with Redis).
    NearRedis,
    /// A Redis Cluster of three masters.
    RedisCluster,
}

/// A cache with a key prefix of its own.
pub async fn test_cache(kind: CacheKind, ttl: Duration) -> Arc<dyn StatusCache> {
    match kind {
        CacheKind::Memory => Arc::new(MemoryCache::new(ttl)),
        CacheKind::Redis | CacheKind::RedisCluster => {
            let (url, variable) = if kind == CacheKind::Redis {
                (redis_url(), "CSM_TEST_REDIS_URL")
            } else {
                (redis_cluster_url(), "CSM_TEST_REDIS_CLUSTER_URL")
            };
            let cache =
                RedisCache::new(&url, &format!("{}:", unique("csmtest")), ttl).expect("Redis URL");
            if let Err(error) = cache.ping().await {
                panic!(
                    "Redis at {url} is not reachable ({error}); start it (scripts/test.sh does) or set {variable}"
                );
            }
            Arc::new(cache)
        }
        CacheKind::NearRedis => {
            let shared = Box::pin(test_cache(CacheKind::Redis, ttl)).await;
            Arc::new(NearCache::new(shared, Duration::from_millis(500).min(ttl)))
        }
    }
}

/// An in-process cache whose entries live a minute.
pub fn memory_cache() -> Arc<dyn StatusCache> {
    Arc::new(MemoryCache::new(Duration::from_secs(60)))
}

/// A station on `vendor` with `ports` ports.
pub fn station(id: &str, vendor: &str, ports: u32) -> Station {
    Station {
        id: StationId::parse(id).expect("test id"),
        name: format!("测试站 {id}"),
        address: Some("信阳学院".into()),
        lat: Some(32.1),
        lng: Some(114.07),
        vendor: vendor.into(),
        enabled: true,
        port_count: ports,
    }
}

/// A reading with a status and a voltage.
pub fn reading(port: u32, status: PortStatus, voltage: Option<f64>) -> PortReading {
    PortReading {
        port,
        status,
        raw_code: Some(status.as_str().into()),
        voltage,
        current: None,
        power: None,
        energy_kwh: None,
        session_ends_at: None,
    }
}

/// Readings of `ports` free ports.
pub fn all_free(ports: u32) -> Vec<PortReading> {
    (1..=ports)
        .map(|p| reading(p, PortStatus::Free, None))
        .collect()
}

/// A source whose answers the test sets: per station, a list of readings or an error; it
/// counts calls and the most fetches it saw at once, and can hold fetches until released.
#[derive(Debug, Default)]
pub struct ScriptedApi {
    pub answers: Mutex<HashMap<String, Result<Vec<PortReading>, ChargerError>>>,
    pub calls: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub delay: Mutex<Duration>,
    pub gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    /// When set, the time snapshots are observed at (a test's own clock).
    pub clock: Mutex<Option<DateTime<Utc>>>,
    /// Each fetch: the station and when it was asked.
    pub asked: Mutex<Vec<(String, std::time::Instant)>>,
}

impl ScriptedApi {
    /// Snapshots are observed at `at` from now on.
    pub fn at(&self, at: DateTime<Utc>) {
        *self.clock.lock().unwrap() = Some(at);
    }

    pub fn set(&self, station: &str, answer: Result<Vec<PortReading>, ChargerError>) {
        self.answers.lock().unwrap().insert(station.into(), answer);
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

pub const SCRIPTED: &str = "scripted";

#[async_trait]
impl ChargerApi for ScriptedApi {
    fn vendor(&self) -> &str {
        SCRIPTED
    }

    fn endpoint(&self) -> Option<String> {
        None
    }

    async fn fetch(&self, station: &Station) -> Result<Snapshot, ChargerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.asked
            .lock()
            .unwrap()
            .push((station.id.to_string(), std::time::Instant::now()));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            let _ = gate.acquire().await.map(|p| p.forget());
        }
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let answer = self
            .answers
            .lock()
            .unwrap()
            .get(station.id.as_str())
            .cloned();
        match answer {
            Some(Ok(ports)) => Ok(Snapshot {
                station_id: station.id.clone(),
                observed_at: self.clock.lock().unwrap().unwrap_or_else(Utc::now),
                ports,
            }),
            Some(Err(error)) => Err(error),
            None => Err(ChargerError::UnknownStation {
                vendor: SCRIPTED.into(),
                station: station.id.to_string(),
            }),
        }
    }

    async fn list_stations(&self) -> Result<Vec<Station>, ChargerError> {
        Ok(Vec::new())
    }

    async fn probe(&self) -> Result<(), ChargerError> {
        Ok(())
    }
}

/// Settings for tests: quick timeouts, no vendor folder.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.vendors.dir = "/nonexistent-csm-vendors".into();
    settings.vendors.http_timeout_ms = 2_000;
    settings.vendors.http_connect_timeout_ms = 500;
    settings
}

/// Builds the engines and monitors of tests: over a store and a cache, with the built-in
/// sources (unless [`Build::only`]) and the sources the test adds.
pub struct Build {
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    settings: Settings,
    sources: Vec<Arc<dyn ChargerApi>>,
    builtins: bool,
    config: Option<EngineConfig>,
}

/// An engine or a monitor over `store` and `cache`, with [`test_settings`].
pub fn build(store: &Arc<dyn Store>, cache: &Arc<dyn StatusCache>) -> Build {
    Build {
        store: Arc::clone(store),
        cache: Arc::clone(cache),
        settings: test_settings(),
        sources: Vec::new(),
        builtins: true,
        config: None,
    }
}

impl Build {
    /// Adjusts the settings.
    pub fn settings(mut self, adjust: impl FnOnce(&mut Settings)) -> Self {
        adjust(&mut self.settings);
        self
    }

    /// Adds a source.
    pub fn source(mut self, api: Arc<dyn ChargerApi>) -> Self {
        self.sources.push(api);
        self
    }

    /// Only the added sources, not the built-in ones.
    pub fn only(mut self) -> Self {
        self.builtins = false;
        self
    }

    /// The engine's configuration (default: from the settings).
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = Some(config);
        self
    }

    fn chargers(&self) -> Chargers {
        let mut chargers = if self.builtins {
            Chargers::from_settings(&self.settings).expect("built-in sources")
        } else {
            Chargers::new()
        };
        for source in &self.sources {
            chargers.insert(Arc::clone(source));
        }
        chargers
    }

    /// The engine.
    pub fn engine(self) -> Engine {
        let settings = &self.settings;
        let config = self
            .config
            .clone()
            .unwrap_or_else(|| EngineConfig::from_settings(&settings.engine, &settings.history));
        Engine::new(
            self.store.clone(),
            self.cache.clone(),
            self.chargers(),
            config,
        )
    }

    /// The monitor.
    pub fn monitor(self) -> Monitor {
        let chargers = self.chargers();
        Monitor::from_parts(self.settings, self.store, self.cache, chargers)
    }
}

/// What a test server is configured with: the core's settings and the server's.
#[derive(Debug)]
pub struct AppConfig {
    pub core: Settings,
    pub server: ServerConfig,
    /// Whether the scheduler refreshes every station each interval (default: off; tests
    /// refresh on request).
    pub scheduler: bool,
}

/// A running server on port 0.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub monitor: Arc<Monitor>,
    pub scripted: Arc<ScriptedApi>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub store: TestStore,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The body of `GET path`, whatever its status.
    pub async fn text(&self, path: &str) -> String {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// Stops the server and waits for its shutdown (live streams end, writes flushed).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("server stops within 20 s")
                .expect("server task")
                .expect("server result");
        }
    }
}

/// Starts a server (no scheduler) on SQLite or MariaDB, the memory cache or Redis, with the
/// scripted source and demo stations on the simulator. `tweak` adjusts the settings.
pub async fn spawn_app_with(
    backend: Backend,
    cache: CacheKind,
    tweak: impl FnOnce(&mut AppConfig),
) -> TestApp {
    let mut config = AppConfig {
        core: test_settings(),
        server: ServerConfig::default(),
        scheduler: false,
    };
    tweak(&mut config);
    let store = test_store(backend).await;
    config.core.database.url = Some(store.url.as_str().into());
    let cache = match cache {
        CacheKind::Redis => {
            // The settings name the very cache, so a CLI run against the app reads it too.
            config.core.cache.redis_url = Some(redis_url());
            config.core.cache.prefix = format!("{}:", unique("csmtest"));
            let cache = RedisCache::new(
                &redis_url(),
                &config.core.cache.prefix,
                config.core.cache_ttl(),
            )
            .expect("Redis URL");
            Arc::new(cache) as Arc<dyn StatusCache>
        }
        CacheKind::Memory | CacheKind::NearRedis | CacheKind::RedisCluster => {
            test_cache(cache, config.core.cache_ttl()).await
        }
    };
    let scripted = Arc::new(ScriptedApi::default());
    let core = config.core;
    let monitor = Arc::new(
        build(&store.store, &cache)
            .settings(|s| *s = core)
            .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
            .monitor(),
    );
    monitor
        .stations()
        .seed_demo(3)
        .await
        .expect("seed demo stations");
    let mut server = csm::server::Server::from_monitor(Arc::clone(&monitor), config.server);
    if !config.scheduler {
        server = server.without_scheduler();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client"),
        monitor,
        scripted,
        stop: Some(stop),
        task: Some(task),
        store,
    }
}

/// `spawn_app_with` on the embedded default: SQLite and the in-process cache.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Backend::Sqlite, CacheKind::Memory, |_| {}).await
}

/// Polls `read` until `ready` holds of what it returns, for at most `within`.
pub async fn eventually<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    within: Duration,
    mut read: impl FnMut() -> F,
    ready: impl Fn(&T) -> bool,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        let value = read().await;
        if ready(&value) {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {within:?}: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy the test can cut: while down it drops every connection and refuses new ones
/// (its port is closed, as a stopped database's is).
pub struct Proxy {
    pub address: SocketAddr,
    down: watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (down, mut watcher) = watch::channel(false);
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let Some(open) = listener.as_ref() else {
                    // Closed: wait to come up, then listen on the same port again.
                    if watcher.wait_for(|down| !*down).await.is_err() {
                        return;
                    }
                    listener = TcpListener::bind(address).await.ok();
                    continue;
                };
                let client = tokio::select! {
                    accepted = open.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => continue,
                    },
                    going_down = watcher.wait_for(|down| *down) => {
                        if going_down.is_err() {
                            return;
                        }
                        listener = None;
                        continue;
                    }
                };
                let mut watcher = watcher.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watcher.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Self { address, down }
    }

    pub fn set_down(&self, down: bool) {
        let _ = self.down.send(down);
    }
}
