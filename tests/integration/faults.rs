//! Faults survived: misbehaving vendors, Redis and the database cut off mid-run and restored,
//! shutdown during a busy cycle and a restart — with nothing lost and nothing duplicated.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use csm::core::cache::{MemoryCache, RedisCache, StatusCache};
use csm::core::charger::{ChargerApi, ChargerError, HttpChargerApi, VendorClient, VendorProfile};
use csm::core::model::{PortStatus, Station, StationId};
use csm::core::refresh::{BreakerConfig, EngineConfig, RetryPolicy};
use csm::core::store::{MySqlStore, Store};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{
    Backend, Proxy, SCRIPTED, ScriptedApi, TestDb, all_free, build, memory_cache, mysql_base,
    reading, station, test_settings, test_store,
};

// ---------------------------------------------------------------------------------------------
// Vendor faults

/// A vendor that answers well while `healthy`, and otherwise misbehaves in the way each
/// station id asks for.
async fn misbehaving_vendor(healthy: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let healthy = healthy.load(Ordering::SeqCst);
            tokio::spawn(answer(socket, healthy));
        }
    });
    address
}

async fn answer(mut socket: TcpStream, healthy: bool) {
    let mut request = Vec::new();
    let mut buf = [0_u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let id = head.split('/').nth(4).unwrap_or_default().to_owned();
    let good =
        r#"{"ports":[{"port":1,"status":"occupied","voltage":220.1},{"port":2,"status":"free"}]}"#;
    let reply = |status: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    if healthy || id == "GOOD" {
        let _ = socket.write_all(reply("200 OK", "", good).as_bytes()).await;
        return;
    }
    match id.as_str() {
        "RESET" => {
            // Close with a reset instead of an answer.
            // A zero linger does not block; it makes the close a reset.
            #[allow(deprecated)]
            let _ = socket.set_linger(Some(Duration::ZERO));
            drop(socket);
        }
        "TRUNCATED" => {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"ports\":[{\"port\":1,")
                .await;
        }
        "DRIP" => {
            // One byte a second: only the total timeout ends it.
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                .await;
            for _ in 0..100 {
                if socket.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        "ENDLESS" => {
            // A chunked body that never ends, far over the size cap.
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
            while socket.write_all(chunk.as_bytes()).await.is_ok() {}
        }
        "E503" => {
            let _ = socket
                .write_all(reply("503 Service Unavailable", "", "{}").as_bytes())
                .await;
        }
        "E429" => {
            let _ = socket
                .write_all(reply("429 Too Many Requests", "retry-after: 1\r\n", "{}").as_bytes())
                .await;
        }
        "HTML" => {
            let _ = socket
                .write_all(reply("200 OK", "", "<html>502 Bad Gateway</html>").as_bytes())
                .await;
        }
        "DUPLICATE" => {
            let body = r#"{"ports":[{"port":1,"status":"free"},{"port":1,"status":"occupied"}]}"#;
            let _ = socket.write_all(reply("200 OK", "", body).as_bytes()).await;
        }
        "RANGE" => {
            let body = r#"{"ports":[{"port":5000,"status":"free"}]}"#;
            let _ = socket.write_all(reply("200 OK", "", body).as_bytes()).await;
        }
        "SHAPE" => {
            let _ = socket
                .write_all(reply("200 OK", "", r#"{"ports":{"1":"free"}}"#).as_bytes())
                .await;
        }
        _ => {
            let _ = socket
                .write_all(reply("404 Not Found", "", "{}").as_bytes())
                .await;
        }
    }
}

#[tokio::test]
async fn misbehaving_vendors_fail_alone_in_bounded_time_and_keep_the_last_good_state() {
    let healthy = Arc::new(AtomicBool::new(true));
    let address = misbehaving_vendor(Arc::clone(&healthy)).await;
    let mut settings = test_settings().vendors;
    settings.http_timeout_ms = 1_500;
    settings.http_max_body_bytes = 256 * 1024;
    let api = HttpChargerApi::new(
        VendorProfile::native(),
        Some(format!("http://{address}")),
        VendorClient::new(&settings, 16).unwrap(),
        &settings,
    );
    let db = test_store(Backend::Sqlite).await;
    let cache: Arc<dyn StatusCache> = Arc::new(MemoryCache::new(Duration::from_secs(60)));
    let engine = build(&db.store, &cache)
        .only()
        .source(Arc::new(api))
        .config(EngineConfig {
            concurrency: 16,
            retry: RetryPolicy {
                max_retries: 2,
                base_delay: Duration::from_millis(20),
                ..RetryPolicy::default()
            },
            // Every station's own failure is under test here, not the vendor's as a whole.
            breaker: BreakerConfig {
                failures: u32::MAX,
                ..BreakerConfig::default()
            },
            ..EngineConfig::default()
        })
        .engine();
    // (station, error kind, attempts, part of the message)
    let cases: [(&str, &str, u32, &str); 11] = [
        ("GOOD", "", 1, ""),
        ("RESET", "connect", 3, "cannot talk to"),
        ("TRUNCATED", "connect", 3, "the response broke off"),
        ("DRIP", "timeout", 3, "did not answer within 1500 ms"),
        ("ENDLESS", "too_large", 1, "larger than 262144 bytes"),
        ("E503", "status", 3, "answered HTTP 503"),
        ("E429", "status", 3, "answered HTTP 429"),
        ("HTML", "not_json", 1, "is not JSON"),
        (
            "DUPLICATE",
            "mismatch",
            1,
            "port 1 again (first at /ports/0)",
        ),
        ("RANGE", "mismatch", 1, "a port number from 1 to 1024"),
        (
            "SHAPE",
            "mismatch",
            1,
            "at /ports expected an array of ports, found an object",
        ),
    ];
    let stations: Vec<Arc<Station>> = cases
        .iter()
        .map(|(id, ..)| Arc::new(station(id, "csm", 2)))
        .collect();
    let first = engine.refresh_many(stations.clone(), |_| {}).await;
    assert!(
        first.iter().all(|o| o.result.is_ok()),
        "every station works while the vendor is healthy"
    );

    healthy.store(false, Ordering::SeqCst);
    let started = Instant::now();
    let outcomes = engine.refresh_many(stations, |_| {}).await;
    let elapsed = started.elapsed();
    // The slowest case is three attempts of the drip at 1.5 s each, plus backoff.
    assert!(elapsed < Duration::from_secs(8), "bounded: {elapsed:?}");
    for (id, kind, attempts, message) in cases {
        let outcome = outcomes
            .iter()
            .find(|o| o.station_id.as_str() == id)
            .unwrap();
        let state = cache
            .get(&outcome.station_id)
            .await
            .unwrap()
            .expect("still cached");
        assert_eq!(state.ports.len(), 2, "{id}: the last good ports are kept");
        assert_eq!(state.ports[0].reading.status, PortStatus::Occupied, "{id}");
        match &outcome.result {
            Ok(_) => {
                assert_eq!(kind, "", "{id} should have failed");
                assert!(state.last_error.is_none());
            }
            Err(error) => {
                assert_eq!(error.kind(), kind, "{id}: {error}");
                assert_eq!(
                    outcome.attempts, attempts,
                    "{id}: retry decision for {error}"
                );
                assert!(error.to_string().contains(message), "{id}: {error}");
                assert_eq!(
                    state.last_error.as_deref(),
                    Some(error.to_string().as_str())
                );
                assert!(
                    state.is_stale(chrono::Utc::now(), chrono::Duration::hours(1)),
                    "{id} is shown stale"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Redis cut off and restored

/// A redis-server of the test's own on a free port, stopped when dropped.
struct OwnRedis {
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child: Some(child) }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn losing_redis_keeps_the_api_answering_and_csm_uses_it_again_when_it_returns() {
    let port = free_port();
    let mut redis = OwnRedis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let cache: Arc<dyn StatusCache> =
        Arc::new(RedisCache::new(&url, "csm:", Duration::from_secs(60)).unwrap());
    let db = test_store(Backend::Sqlite).await;
    let scripted = Arc::new(ScriptedApi::default());
    let settings = test_settings();
    let monitor = Arc::new(
        build(&db.store, &cache)
            .settings(|s| *s = settings.clone())
            .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
            .monitor(),
    );
    let s = Arc::new(station("R1", SCRIPTED, 2));
    monitor.stations().add(&s).await.unwrap();
    scripted.set(
        "R1",
        Ok(vec![
            reading(1, PortStatus::Free, Some(220.0)),
            reading(2, PortStatus::Free, None),
        ]),
    );
    monitor.refresh().one(Arc::clone(&s)).await.result.unwrap();
    monitor.flush().await;
    assert!(cache.get(&s.id).await.unwrap().is_some());

    redis.stop();
    scripted.set(
        "R1",
        Ok(vec![
            reading(1, PortStatus::Occupied, Some(219.0)),
            reading(2, PortStatus::Free, None),
        ]),
    );
    let outcome = monitor.refresh().one(Arc::clone(&s)).await;
    assert!(
        outcome.result.is_ok(),
        "refreshes keep running without Redis"
    );
    // Without the cache, reads come from the store, one batch-writer delay behind.
    monitor.flush().await;
    let view = monitor
        .stations()
        .view(&s.id)
        .await
        .expect("reads keep answering");
    assert_eq!(
        view.state.unwrap().ports[0].reading.status,
        PortStatus::Occupied,
        "and are current"
    );
    let readiness = monitor.readiness().await;
    assert!(readiness.database.is_ok());
    assert!(
        readiness
            .cache
            .unwrap_err()
            .contains(&format!("127.0.0.1:{port}"))
    );

    let _redis = OwnRedis::start(port);
    let back = Instant::now();
    scripted.set(
        "R1",
        Ok(vec![
            reading(1, PortStatus::Free, Some(221.0)),
            reading(2, PortStatus::Free, None),
        ]),
    );
    loop {
        monitor.refresh().one(Arc::clone(&s)).await;
        if let Ok(Some(state)) = cache.get(&s.id).await {
            assert_eq!(state.ports[0].reading.status, PortStatus::Free);
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "csm did not use Redis again within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    monitor.flush().await;
    let events = db.store.count_events(Some(&s.id)).await.unwrap();
    assert_eq!(
        events, 4,
        "2 first sightings and 2 changes, none lost while Redis was away"
    );
}

// ---------------------------------------------------------------------------------------------
// Database cut off and restored

/// Flushes until nothing is pending, once the database is back (within 15 s).
async fn written_after_return(flush: impl AsyncFn() -> csm::core::refresh::FlushReport) {
    let back = Instant::now();
    loop {
        let report = flush().await;
        if report.pending_rows == 0 {
            return;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "rows still pending: {}",
            report.pending_rows
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fresh MariaDB database with csm's tables: a direct store to check it with, a proxy in
/// front of it, and a store of `connections` that goes through the proxy.
async fn proxied_database(connections: u32) -> (TestDb, MySqlStore, Proxy, Arc<dyn Store>) {
    let db = TestDb::new();
    let direct = MySqlStore::connect(&db.url, 2).unwrap();
    direct.migrate().await.expect("MariaDB reachable");
    let mysql: SocketAddr = {
        let url = url::Url::parse(&mysql_base()).unwrap();
        let host = url.host_str().unwrap().to_owned();
        tokio::net::lookup_host((host, url.port().unwrap_or(3306)))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = Proxy::start(mysql).await;
    let name = db.url.rsplit('/').next().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        MySqlStore::connect(
            &format!("mysql://root@{}/{name}", proxy.address),
            connections,
        )
        .unwrap(),
    );
    (db, direct, proxy, store)
}

#[tokio::test]
async fn losing_the_database_buffers_writes_and_loses_none() {
    // Create the schema directly, then point csm at it through the proxy.
    let (_db, direct, proxy, store) = proxied_database(4).await;
    let cache: Arc<dyn StatusCache> = Arc::new(MemoryCache::new(Duration::from_secs(60)));
    let scripted = Arc::new(ScriptedApi::default());
    let settings = test_settings();
    let monitor = build(&store, &cache)
        .settings(|s| *s = settings.clone())
        .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
        .monitor();
    let stations: Vec<Arc<Station>> = (0..20)
        .map(|i| Arc::new(station(&format!("D{i}"), SCRIPTED, 4)))
        .collect();
    monitor
        .stations()
        .import(&stations.iter().map(|s| (**s).clone()).collect::<Vec<_>>())
        .await
        .unwrap();
    let statuses = [
        PortStatus::Free,
        PortStatus::Occupied,
        PortStatus::Fault,
        PortStatus::Reserved,
    ];
    let set_round = |round: usize| {
        for (i, s) in stations.iter().enumerate() {
            let ports = (1..=4)
                .map(|p| {
                    reading(
                        p,
                        statuses[(round + i + p as usize) % statuses.len()],
                        Some(220.0),
                    )
                })
                .collect();
            scripted.set(s.id.as_str(), Ok(ports));
        }
    };
    let mut produced = 0;
    let refresh_round = |round: usize| {
        set_round(round);
        let monitor = &monitor;
        let stations = stations.clone();
        async move {
            let outcomes = monitor.refresh().many(stations, |_| {}).await;
            assert!(outcomes.iter().all(|o| o.result.is_ok()));
            outcomes
                .iter()
                .map(|o| o.result.as_ref().unwrap().status_changes)
                .sum::<usize>()
        }
    };
    produced += refresh_round(0).await;
    assert_eq!(monitor.flush().await.pending_rows, 0);
    // Readers were being served before the outage.
    assert_eq!(
        monitor
            .stations()
            .list(&Default::default())
            .await
            .unwrap()
            .views
            .len(),
        20
    );

    proxy.set_down(true);
    for round in 1..=3 {
        produced += refresh_round(round).await;
    }
    let report = monitor.flush().await;
    assert!(
        report.pending_rows > 0,
        "writes wait while the database is away"
    );
    assert_eq!(report.dropped_events, 0);
    // Reads keep answering from the cache.
    let view = monitor
        .stations()
        .view(&stations[0].id)
        .await
        .expect("the catalogue and cache still answer");
    assert_eq!(view.state.unwrap().ports.len(), 4);
    let readiness = monitor.readiness().await;
    assert!(readiness.cache.is_ok());
    assert!(
        readiness.database.is_err(),
        "readiness reports the database down"
    );

    proxy.set_down(false);
    written_after_return(async || monitor.flush().await).await;
    let stored = direct.count_events(None).await.unwrap();
    assert_eq!(
        stored as usize, produced,
        "every status event reached the database exactly once"
    );
    // History waited with them: every reading (each port changed status every round) and each
    // port's session (occupied in one of the four rounds).
    let (mut readings, mut sessions) = (0, 0);
    for s in &stations {
        let query = csm::core::history::HistoryQuery {
            station_id: s.id.clone(),
            port: None,
            from: chrono::DateTime::UNIX_EPOCH,
            to: chrono::Utc::now() + chrono::TimeDelta::days(1),
            limit: 1_000,
        };
        readings += direct.readings(&query).await.unwrap().len();
        sessions += direct.sessions(&query).await.unwrap().len();
    }
    assert_eq!(readings, 4 * 20 * 4);
    assert_eq!(sessions, 20 * 4);
    let states = direct
        .station_states(&stations.iter().map(|s| s.id.clone()).collect::<Vec<_>>())
        .await
        .unwrap();
    // Station D0 (i = 0), port 1, last round 3.
    let expected = statuses[(3 + 1) % statuses.len()];
    assert_eq!(
        states
            .iter()
            .find(|s| s.station_id.as_str() == "D0")
            .unwrap()
            .ports[0]
            .reading
            .status,
        expected
    );
}

#[tokio::test]
async fn a_restart_with_cache_and_database_both_down_invents_no_status_changes() {
    let (_db, direct, proxy, store) = proxied_database(4).await;
    // Redis is not there at all.
    let cache: Arc<dyn StatusCache> = Arc::new(
        RedisCache::new(
            &format!("redis://127.0.0.1:{}", free_port()),
            "csm:",
            Duration::from_secs(60),
        )
        .unwrap(),
    );
    let scripted = Arc::new(ScriptedApi::default());
    let settings = test_settings();
    let start = || {
        build(&store, &cache)
            .settings(|s| *s = settings.clone())
            .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
            .monitor()
    };
    let s = Arc::new(station("U1", SCRIPTED, 3));
    direct.add_station(&s).await.unwrap();
    let set = |statuses: [PortStatus; 3]| {
        let ports = (1..=3)
            .map(|p| reading(p, statuses[p as usize - 1], None))
            .collect();
        scripted.set("U1", Ok(ports));
    };
    use PortStatus::{Fault as X, Free as F, Occupied as O};

    // A first life: three ports seen for the first time, written.
    let first = start();
    set([F, F, F]);
    let outcome = first.refresh().one(Arc::clone(&s)).await;
    assert_eq!(outcome.result.unwrap().status_changes, 3);
    assert_eq!(first.flush().await.pending_rows, 0);
    drop(first);

    // A restart while the database is away too: port 1 changed meanwhile, but nothing can say
    // from what, so no change is recorded; the ports are kept for the database.
    proxy.set_down(true);
    let second = start();
    // The vendor fails first: that leaves nothing to compare the next answer with.
    scripted.set(
        "U1",
        Err(ChargerError::Timeout {
            vendor: SCRIPTED.into(),
            url: "http://vendor/U1".into(),
            after_ms: 1,
        }),
    );
    assert!(second.refresh().one(Arc::clone(&s)).await.result.is_err());
    set([O, F, F]);
    let outcome = second.refresh().one(Arc::clone(&s)).await;
    assert_eq!(
        outcome.result.unwrap().status_changes,
        0,
        "no status change is invented without a previous state"
    );
    assert_eq!(second.refresh().events_produced(), 0);
    // From then on this process compares with what it saw itself.
    set([O, X, F]);
    let outcome = second.refresh().one(Arc::clone(&s)).await;
    assert_eq!(outcome.result.unwrap().status_changes, 1);

    proxy.set_down(false);
    written_after_return(async || second.flush().await).await;
    assert_eq!(
        direct.count_events(None).await.unwrap(),
        4,
        "three first sightings and the one change seen, nothing invented"
    );
    let states = direct
        .station_states(std::slice::from_ref(&s.id))
        .await
        .unwrap();
    let stored: Vec<PortStatus> = states[0].ports.iter().map(|p| p.reading.status).collect();
    assert_eq!(
        stored,
        [O, X, F],
        "the stored ports caught up with the vendor"
    );
}

#[tokio::test]
async fn a_full_event_buffer_drops_the_oldest_and_counts_them() {
    let (_db, direct, proxy, store) = proxied_database(2).await;
    proxy.set_down(true);
    let scripted = Arc::new(ScriptedApi::default());
    let cache: Arc<dyn StatusCache> = Arc::new(MemoryCache::new(Duration::from_secs(60)));
    let engine = build(&store, &cache)
        .only()
        .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
        .config(EngineConfig {
            writer: csm::core::refresh::WriterConfig {
                max_buffered_events: 10,
                ..Default::default()
            },
            ..EngineConfig::default()
        })
        .engine();
    let s = Arc::new(station("B1", SCRIPTED, 6));
    // The database is down from the start, so the first refresh has nothing to compare with and
    // records no change; each of the next three records six.
    for round in 0..4 {
        let status = if round % 2 == 0 {
            PortStatus::Free
        } else {
            PortStatus::Occupied
        };
        scripted.set(
            "B1",
            Ok((1..=6).map(|p| reading(p, status, None)).collect()),
        );
        engine.refresh(Arc::clone(&s)).await.result.unwrap();
    }
    // 18 events were produced; the buffer holds 10.
    let report = engine.flush().await;
    assert_eq!(report.dropped_events, 8);
    proxy.set_down(false);
    written_after_return(async || engine.flush().await).await;
    assert_eq!(
        direct.count_events(None).await.unwrap(),
        10,
        "the newest 10 were kept and written"
    );
}

// ---------------------------------------------------------------------------------------------
// Shutdown during a busy cycle, and a restart

#[tokio::test]
async fn shutdown_during_a_busy_cycle_flushes_and_a_restart_duplicates_nothing() {
    let db = test_store(Backend::MySql).await;
    let scripted = Arc::new(ScriptedApi::default());
    *scripted.delay.lock().unwrap() = Duration::from_millis(30);
    let mut settings = test_settings();
    settings.engine.refresh_interval_secs = 1;
    settings.engine.concurrency = 8;
    let stations: Vec<Station> = (0..200)
        .map(|i| station(&format!("T{i:03}"), SCRIPTED, 6))
        .collect();
    for s in &stations {
        scripted.set(s.id.as_str(), Ok(all_free(6)));
    }
    let monitor = Arc::new(
        build(&db.store, &memory_cache())
            .settings(|s| *s = settings.clone())
            .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
            .monitor(),
    );
    monitor.stations().import(&stations).await.unwrap();
    let mut updates = monitor.refresh().subscribe();
    let server = csm::server::Server::from_monitor(Arc::clone(&monitor), Default::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    // Stop in the middle of the first cycle (200 stations × 30 ms / 8 at once ≈ 750 ms).
    crate::helpers::eventually(
        Duration::from_secs(10),
        || async { monitor.refresh().running() },
        |running| *running > 0,
    )
    .await;
    let signalled = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), serving)
        .await
        .expect("shutdown is bounded")
        .unwrap()
        .expect("clean exit");
    assert!(signalled.elapsed() < Duration::from_secs(12));
    let mut produced = 0;
    while let Ok(update) = updates.try_recv() {
        produced += update.events.len();
    }
    assert!(produced > 0);
    let stored = db.store.count_events(None).await.unwrap() as usize;
    assert_eq!(
        stored, produced,
        "everything produced before the signal was written"
    );

    // Restart on the same database with a fresh in-process cache: the known states come from
    // the store, so the same readings produce no new events.
    let restarted = build(&db.store, &memory_cache())
        .settings(|s| *s = settings.clone())
        .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
        .monitor();
    *scripted.delay.lock().unwrap() = Duration::ZERO;
    let all = restarted.stations().all().await.unwrap().to_vec();
    restarted.refresh().many(all, |_| {}).await;
    restarted.flush().await;
    let after = db.store.count_events(None).await.unwrap() as usize;
    assert_eq!(
        after,
        200 * 6,
        "each port's first sighting exactly once: {stored} before, {after} after"
    );
}

#[tokio::test]
async fn manual_refreshes_are_limited_per_station_and_globally() {
    let db = test_store(Backend::Sqlite).await;
    let scripted = Arc::new(ScriptedApi::default());
    let mut settings = test_settings();
    settings.manual_refresh.per_minute = 2;
    settings.manual_refresh.cooldown_secs = 60;
    let monitor = build(&db.store, &memory_cache())
        .settings(|s| *s = settings.clone())
        .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
        .monitor();
    for id in ["M1", "M2", "M3"] {
        monitor
            .stations()
            .add(&station(id, SCRIPTED, 1))
            .await
            .unwrap();
        scripted.set(id, Ok(vec![reading(1, PortStatus::Free, None)]));
    }
    use csm::core::monitor::ManualRefresh;
    let id = |s: &str| StationId::parse(s).unwrap();
    assert!(matches!(
        monitor.refresh().manual(&id("M1")).await.unwrap(),
        ManualRefresh::Refreshed(_)
    ));
    assert!(matches!(
        monitor.refresh().manual(&id("M1")).await.unwrap(),
        ManualRefresh::CoolingDown { .. }
    ));
    assert!(matches!(
        monitor.refresh().manual(&id("M2")).await.unwrap(),
        ManualRefresh::Refreshed(_)
    ));
    match monitor.refresh().manual(&id("M3")).await.unwrap() {
        ManualRefresh::RateLimited { retry_after } => {
            assert!(retry_after <= Duration::from_secs(30))
        }
        other => panic!("the third manual refresh in a minute should be limited: {other:?}"),
    }
    assert_eq!(
        scripted.calls(),
        2,
        "the vendor saw only the two accepted refreshes"
    );
}

#[tokio::test]
async fn reads_never_wait_on_a_database_that_is_away() {
    let (_db, direct, proxy, store) = proxied_database(4).await;
    let cache =
        crate::helpers::test_cache(crate::helpers::CacheKind::Redis, Duration::from_secs(60)).await;
    let fleet: Vec<Station> = (1..=500)
        .map(|i| station(&format!("W{i:03}"), "simulator", 6))
        .collect();
    direct.upsert_stations(&fleet).await.unwrap();
    let monitor = Arc::new(
        build(&store, &cache)
            .settings(|s| s.engine.refresh_interval_secs = 1)
            .monitor(),
    );
    let server = csm::server::Server::from_monitor(Arc::clone(&monitor), Default::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Every station refreshed once (and so in Redis) before the outage.
    let refreshed = Instant::now();
    while direct.count_events(None).await.unwrap() < 500 * 6 {
        assert!(refreshed.elapsed() < Duration::from_secs(60), "first cycle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    proxy.set_down(true);
    // Several catalogue checks (every 2 s) and refresh cycles (every 1 s) pass while the
    // station answers, a page of the list and a history read are asked for again and again.
    let mut slowest = Duration::ZERO;
    let mut reads = 0;
    let mut history = Vec::new();
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(7) {
        let n = reads % 500 + 1;
        let path = match reads % 10 {
            0 => "/api/stations?view=summary&limit=50".to_owned(),
            1 => format!("/api/stations/W{n:03}/events"),
            _ => format!("/api/stations/W{n:03}"),
        };
        let started = Instant::now();
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        let took = started.elapsed();
        slowest = slowest.max(took);
        if reads % 10 == 1 {
            history.push(response.status());
        } else {
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{path} while the database is away"
            );
        }
        reads += 1;
    }
    // A read answered from the cache does not touch the database; one that needs it (the
    // history) gives up within the bounded wait. 1 s is far above either and far below the
    // pool's 5 s wait for a connection that a read used to hang on.
    assert!(
        slowest < Duration::from_secs(1),
        "the slowest of {reads} reads took {slowest:?}"
    );
    assert!(reads > 50, "{reads} reads");
    assert!(
        history
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
        "history needs the database: {history:?}"
    );
    proxy.set_down(false);
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_ocpp_charger_is_answered_through_a_database_outage_and_nothing_it_said_is_lost() {
    use crate::ocpp::{call, connect_to};
    const PASSWORD: &str = "a-charger-password-16";
    let (_db, direct, proxy, store) = proxied_database(4).await;
    let cache: Arc<dyn StatusCache> = Arc::new(MemoryCache::new(Duration::from_secs(60)));
    let monitor = Arc::new(build(&store, &cache).monitor());
    let id = StationId::parse("CP-DB1").unwrap();
    monitor
        .ocpp()
        .add_charge_point(&station("CP-DB1", "ocpp", 2), Some(PASSWORD), 1)
        .await
        .unwrap();
    let server = csm::server::Server::from_monitor(Arc::clone(&monitor), Default::default())
        .without_scheduler();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    let status = |frame: &str, status: &str| {
        format!(
            r#"[2, "{frame}", "StatusNotification", {{"connectorId": 1, "errorCode": "NoError", "status": "{status}"}}]"#
        )
    };
    // What csm shows of port 1, once it is `wanted` (within 3 s).
    let shown_as = async |wanted: PortStatus| {
        let mut shown = None;
        for _ in 0..30 {
            shown = monitor.stations().view(&id).await.unwrap().state;
            if shown
                .as_ref()
                .is_some_and(|s| s.ports[0].reading.status == wanted)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shown.expect("a state")
    };
    let mut socket = connect_to(address, "CP-DB1", "CP-DB1", PASSWORD)
        .await
        .unwrap();
    call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
    call(&mut socket, &status("s-1", "Charging")).await;
    let before = shown_as(PortStatus::Occupied).await;
    assert_eq!(before.ports[0].reading.status, PortStatus::Occupied);

    proxy.set_down(true);
    // Every frame is answered at once while the database is away; the charger leaves and
    // comes back with its password.
    let started = Instant::now();
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/meter-three-phase.json"),
    )
    .await;
    call(&mut socket, &status("s-2", "Finishing")).await;
    drop(socket);
    let mut socket = connect_to(address, "CP-DB1", "CP-DB1", PASSWORD)
        .await
        .unwrap();
    call(&mut socket, &status("s-3", "Available")).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered in {:?}",
        started.elapsed()
    );
    // Its changes are refreshed beside the connection, the database or not.
    let state = shown_as(PortStatus::Free).await;
    assert_eq!(state.ports[0].reading.status, PortStatus::Free, "{state:?}");

    proxy.set_down(false);
    written_after_return(|| monitor.flush()).await;
    let events = direct
        .events(&csm::core::store::EventQuery {
            station_id: Some(id.clone()),
            port: Some(1),
            since: None,
            until: None,
            limit: 50,
        })
        .await
        .unwrap();
    let changes: Vec<_> = events.iter().rev().map(|e| (e.old, e.new)).collect();
    assert!(
        changes.ends_with(&[
            (Some(PortStatus::Occupied), PortStatus::Offline),
            (Some(PortStatus::Offline), PortStatus::Free),
        ]) || changes.ends_with(&[(Some(PortStatus::Occupied), PortStatus::Free)]),
        "the charger's changes during the outage were written: {changes:?}"
    );
    drop(socket);
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}
