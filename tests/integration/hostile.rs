//! Broken and hostile peers, each attack as it was found to hurt csm: a vendor answer nested
//! thousands of levels deep, a slow or rate-limiting vendor among healthy ones, a vendor that
//! is down for good, a live state that lapsed, a flood of chargers that never boot, readings
//! no meter can make, clients that open live streams and never read, and ids that paths
//! normalise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use csm::core::charger::ChargerApi;
use csm::core::model::{PortStatus, Station, StationId};
use csm::core::refresh::{BreakerConfig, EngineConfig, RetryPolicy};
use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    Backend, CacheKind, ScriptedApi, TestApp, all_free, build, eventually, memory_cache, reading,
    spawn_app_with, station, test_store,
};
use crate::ocpp::{call, connect, next_text};

async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

fn time_of(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str().and_then(|t| t.parse().ok())
}

/// A vendor body of the native contract with two ports.
const TWO_PORTS: &str =
    r#"{"ports":[{"port":1,"status":"occupied","voltage":220.1},{"port":2,"status":"free"}]}"#;

#[tokio::test]
async fn a_deeply_nested_vendor_answer_fails_its_station_and_every_other_station_goes_on() {
    let vendor = MockServer::start().await;
    let depth = 9_000;
    let deep = format!(
        r#"{{"ok":1,"ports":[{{"port":1,"status":"free"}}],"junk":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    Mock::given(path("/api/v1/stations/DEEP/ports"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(deep, "application/json"))
        .mount(&vendor)
        .await;
    Mock::given(path("/api/v1/stations/GOOD/ports"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(TWO_PORTS, "application/json"))
        .mount(&vendor)
        .await;
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.scheduler = true;
        c.core.engine.refresh_interval_secs = 1;
        c.core.vendors.base_urls.insert("CSM".into(), vendor.uri());
    })
    .await;
    for id in ["DEEP", "GOOD"] {
        app.monitor
            .stations()
            .add(&station(id, "csm", 2))
            .await
            .unwrap();
    }
    // The scheduler reads the deep answer: a refresh error, the station stale.
    let (_, deep) = eventually(
        Duration::from_secs(10),
        || get_json(&app, "/api/stations/DEEP"),
        |(_, s)| s["last_error"].is_string(),
    )
    .await;
    assert_eq!(
        deep["last_error"],
        format!(
            "csm: the response of {}/api/v1/stations/DEEP/ports nests deeper than 128 levels at /junk/0/0/0/0/0/0/0/…; csm reads answers at most 128 levels deep",
            vendor.uri()
        ),
        "{deep}"
    );
    assert_eq!(deep["stale"], true);
    // Every other station goes on being refreshed, turn after turn.
    for id in ["GOOD", "S0001"] {
        let path = format!("/api/stations/{id}");
        let (_, first) = eventually(
            Duration::from_secs(10),
            || get_json(&app, &path),
            |(_, s)| s["updated_at"].is_string() && s["last_error"].is_null(),
        )
        .await;
        let checked = time_of(&first["checked_at"]).unwrap();
        eventually(
            Duration::from_secs(10),
            || get_json(&app, &path),
            |(_, s)| time_of(&s["checked_at"]).is_some_and(|t| t > checked),
        )
        .await;
    }
    let (health, _) = get_json(&app, "/healthz").await;
    assert_eq!(health, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn slow_and_rate_limiting_vendors_do_not_age_the_healthy_stations() {
    // One vendor answers 429 asking for 5 s, another trickles past the 2 s timeout: both are
    // retried, three times, for over ten seconds each.
    let vendor = MockServer::start().await;
    Mock::given(path("/api/v1/stations/LIMITED/ports"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "5"))
        .mount(&vendor)
        .await;
    Mock::given(path("/api/v1/stations/TRICKLE/ports"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(TWO_PORTS, "application/json")
                .set_delay(Duration::from_secs(4)),
        )
        .mount(&vendor)
        .await;
    let store = test_store(Backend::Sqlite).await;
    let scripted = Arc::new(ScriptedApi::default());
    let interval = Duration::from_secs(2);
    let monitor = Arc::new(
        build(&store.store, &memory_cache())
            .settings(|s| {
                s.engine.refresh_interval_secs = interval.as_secs();
                s.vendors.base_urls.insert("CSM".into(), vendor.uri());
            })
            .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
            .monitor(),
    );
    let healthy: Vec<Arc<Station>> = (0..100)
        .map(|n| Arc::new(station(&format!("H{n:03}"), crate::helpers::SCRIPTED, 2)))
        .collect();
    for station in &healthy {
        scripted.set(station.id.as_str(), Ok(all_free(2)));
        monitor.stations().add(station).await.unwrap();
    }
    for id in ["LIMITED", "TRICKLE"] {
        monitor
            .stations()
            .add(&station(id, "csm", 2))
            .await
            .unwrap();
    }
    let cancel = CancellationToken::new();
    let scheduler = tokio::spawn({
        let (area, token) = (monitor.refresh().clone(), cancel.clone());
        async move { area.run_scheduler(token).await }
    });
    // After the first turn, every healthy station stays within one interval of age (and a
    // second of slack) while the slow ones keep their refreshes busy.
    let ids: Vec<Arc<Station>> = healthy.clone();
    eventually(
        Duration::from_secs(10),
        || monitor.stations().views(ids.clone()),
        |views| views.iter().all(|v| v.state.is_some()),
    )
    .await;
    let started = Instant::now();
    let (mut oldest, mut busy_samples) = (Duration::ZERO, 0);
    while started.elapsed() < Duration::from_secs(14) {
        let now = Utc::now();
        for view in monitor.stations().views(ids.clone()).await {
            let observed = view.state.as_ref().and_then(|s| s.observed_at).unwrap();
            oldest = oldest.max((now - observed).to_std().unwrap_or_default());
        }
        busy_samples += usize::from(monitor.refresh().running() > 0);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    cancel.cancel();
    let _ = scheduler.await;
    assert!(
        oldest <= interval + Duration::from_secs(1),
        "a healthy station was {oldest:?} old"
    );
    assert!(
        busy_samples > 20,
        "the slow vendors were being retried meanwhile ({busy_samples} samples)"
    );
    // The rate-limited station, once its retries are spent (or its vendor paused as a whole
    // after the two stations' failures), shows why.
    let limited = StationId::parse("LIMITED").unwrap();
    eventually(
        Duration::from_secs(20),
        || async {
            let view = monitor.stations().view(&limited).await.unwrap();
            view.state.and_then(|s| s.last_error.clone())
        },
        |error| {
            error.as_deref().is_some_and(|e| {
                e.contains("answered HTTP 429") || e.contains("csm is not asking this vendor")
            })
        },
    )
    .await;
}

#[tokio::test]
async fn a_vendor_that_keeps_failing_is_paused_as_a_whole_and_asked_again_later() {
    let vendor = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&vendor)
        .await;
    let store = test_store(Backend::Sqlite).await;
    let scripted = Arc::new(ScriptedApi::default());
    let engine = build(&store.store, &memory_cache())
        .settings(|s| {
            s.vendors.base_urls.insert("CSM".into(), vendor.uri());
        })
        .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
        .config(EngineConfig {
            concurrency: 4,
            retry: RetryPolicy {
                max_retries: 1,
                base_delay: Duration::from_millis(10),
                ..RetryPolicy::default()
            },
            breaker: BreakerConfig {
                failures: 5,
                cool_down: Duration::from_millis(500),
                ..BreakerConfig::default()
            },
            ..EngineConfig::default()
        })
        .engine();
    let dead: Vec<Arc<Station>> = (0..50)
        .map(|n| Arc::new(station(&format!("D{n:02}"), "csm", 2)))
        .collect();
    let healthy: Vec<Arc<Station>> = (0..10)
        .map(|n| Arc::new(station(&format!("H{n:02}"), crate::helpers::SCRIPTED, 2)))
        .collect();
    for station in &healthy {
        scripted.set(station.id.as_str(), Ok(all_free(2)));
    }
    let everything: Vec<Arc<Station>> = dead.iter().chain(&healthy).cloned().collect();
    let outcomes = engine.refresh_many(everything.clone(), |_| {}).await;
    // Without the breaker: 50 stations × 2 attempts. With it: the failures that open it and
    // the requests already under way then.
    let asked = vendor.received_requests().await.unwrap().len();
    assert!(asked <= 12, "the dead vendor was asked {asked} times");
    let paused = outcomes
        .iter()
        .filter(|o| {
            o.result
                .as_ref()
                .is_err_and(|e| e.kind() == "vendor_paused")
        })
        .count();
    assert!(paused >= 40, "{paused} stations failed at once as paused");
    let first_paused = outcomes
        .iter()
        .find_map(|o| {
            o.result
                .as_ref()
                .err()
                .filter(|e| e.kind() == "vendor_paused")
        })
        .unwrap();
    assert!(
        first_paused
            .to_string()
            .starts_with("csm: csm is not asking this vendor for 1 s: "),
        "{first_paused}"
    );
    assert!(
        first_paused
            .to_string()
            .contains(" requests in a row failed, the last with: csm: ")
            && first_paused.to_string().contains("answered HTTP 503"),
        "{first_paused}"
    );
    assert!(
        outcomes
            .iter()
            .filter(|o| o.station_id.as_str().starts_with('H'))
            .all(|o| o.result.is_ok()),
        "the healthy vendor's stations are refreshed"
    );

    // The vendor comes back: after the cool-down one request probes it, and its stations are
    // refreshed again.
    vendor.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(TWO_PORTS, "application/json"))
        .mount(&vendor)
        .await;
    let probe = Arc::clone(&dead[0]);
    eventually(
        Duration::from_secs(5),
        || engine.refresh(Arc::clone(&probe)),
        |o| o.result.is_ok(),
    )
    .await;
    let outcomes = engine.refresh_many(dead, |_| {}).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
}

#[tokio::test]
async fn a_station_read_from_the_database_after_its_live_state_lapsed_says_so() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.cache.ttl_secs = Some(1);
    })
    .await;
    let id = StationId::parse("S0001").unwrap();
    let started = csm::core::model::now();
    let outcome = app
        .monitor
        .refresh()
        .one(app.monitor.stations().get(&id).await.unwrap())
        .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(app.monitor.flush().await.pending_rows, 0);
    // The database holds the true time of that check, not the seeded past's.
    let stored = app
        .store
        .store
        .station_states(std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(
        stored[0].checked_at >= started,
        "{:?}",
        stored[0].checked_at
    );
    // Once the cache entry lapsed, the answer comes from the database: stale, with the check.
    let (_, shown) = eventually(
        Duration::from_secs(5),
        || get_json(&app, "/api/stations/S0001"),
        |(_, s)| s["stale"] == true,
    )
    .await;
    let checked = time_of(&shown["checked_at"]).unwrap();
    assert!(checked >= started, "checked_at {checked} is the last check");
    assert!(checked <= Utc::now());
    app.stop().await;
}

/// Whether the server closes `socket` (it ends, or fails) within `wait`.
async fn ws_closed_within(socket: &mut crate::ocpp::Socket, wait: Duration) -> bool {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn ocpp_stations(app: &TestApp) -> Vec<String> {
    let (_, listed) = get_json(app, "/api/stations?vendor=ocpp&view=summary").await;
    listed["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["station_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_flood_of_chargers_that_never_boot_registers_nothing_and_boots_are_limited() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm::core::settings::Registration::Auto);
        c.core.ocpp.first_frame_secs = 1;
        c.core.ocpp.auto_per_minute = 5;
        c.core.ocpp.auto_max = 6;
    })
    .await;
    // 300 handshakes that send nothing: no station, and every socket closed after the grace.
    let mut junk = Vec::new();
    for n in 0..300 {
        junk.push(
            connect(&app, &format!("JUNK-{n}"), Some("ocpp1.6"))
                .await
                .unwrap(),
        );
    }
    for socket in &mut junk {
        assert!(ws_closed_within(socket, Duration::from_secs(5)).await);
    }
    // A charger that talks without booting is told to boot first, and is not registered.
    let mut chatty = connect(&app, "CHATTY", Some("ocpp1.6")).await.unwrap();
    let refused = call(
        &mut chatty,
        include_str!("../fixtures/ocpp/status-charging.json"),
    )
    .await;
    assert_eq!(refused[0], 4, "{refused}");
    assert_eq!(refused[2], "SecurityError");
    assert!(
        refused[3]
            .as_str()
            .unwrap()
            .contains("send BootNotification first")
    );
    assert!(ocpp_stations(&app).await.is_empty());
    drop(chatty);

    // Booting chargers are registered, five a minute; the sixth is answered Rejected with
    // when to try again, and its socket closed.
    let mut answers = Vec::new();
    for n in 0..6 {
        let mut socket = connect(&app, &format!("CP-R{n}"), Some("ocpp1.6"))
            .await
            .unwrap();
        let answer = call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
        answers.push(answer[2].clone());
        if n == 5 {
            assert!(ws_closed_within(&mut socket, Duration::from_secs(5)).await);
        }
    }
    let statuses: Vec<&str> = answers
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["Accepted"; 5]
            .iter()
            .chain(&["Rejected"])
            .copied()
            .collect::<Vec<_>>()
    );
    assert!(
        answers[5]["interval"].as_u64().unwrap() >= 1,
        "{}",
        answers[5]
    );
    let mut registered = ocpp_stations(&app).await;
    registered.sort();
    assert_eq!(registered, ["CP-R0", "CP-R1", "CP-R2", "CP-R3", "CP-R4"]);
    app.stop().await;

    // Past the cap, a boot is Rejected too.
    let capped = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm::core::settings::Registration::Auto);
        c.core.ocpp.auto_max = 2;
    })
    .await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let mut socket = connect(&capped, &format!("CP-K{n}"), Some("ocpp1.6"))
            .await
            .unwrap();
        let answer = call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
        statuses.push(answer[2]["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["Accepted", "Accepted", "Rejected"]);
    assert_eq!(ocpp_stations(&capped).await.len(), 2);
    capped.stop().await;
}

#[tokio::test]
async fn impossible_meter_values_are_dropped_counted_and_named() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm::core::settings::Registration::Auto);
    })
    .await;
    let mut socket = connect(&app, "CP-X1", Some("ocpp1.6")).await.unwrap();
    call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/status-charging.json"),
    )
    .await;
    let meter = serde_json::json!([2, "m-1", "MeterValues", {
        "connectorId": 1,
        "meterValue": [{"timestamp": "2026-12-01T08:00:00Z", "sampledValue": [
            {"value": "1e308", "measurand": "Power.Active.Import", "unit": "kW"},
            {"value": "1e308", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            {"value": "1e308", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
            {"value": "NaN", "measurand": "Voltage", "unit": "V"},
            {"value": "-5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        ]}]
    }]);
    call(&mut socket, &meter.to_string()).await;
    let (_, shown) = eventually(
        Duration::from_secs(5),
        || get_json(&app, "/api/stations/CP-X1"),
        |(_, s)| {
            s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("impossible"))
        },
    )
    .await;
    let port = &shown["ports"][0];
    for measure in ["power", "current", "voltage", "energy_kwh"] {
        assert!(port[measure].is_null(), "{measure} dropped: {port}");
    }
    let error = shown["last_error"].as_str().unwrap();
    for named in [
        "port 1: voltage NaN V is outside 0–1500 V, dropped",
        "port 1: current inf A is outside 0–1000 A, dropped",
        "port 1: power inf W is outside 0–1500000 W, dropped",
        "port 1: energy -5e-3 kWh is outside 0–10000000 kWh, dropped",
    ] {
        assert!(error.contains(named), "{named:?} in {error}");
    }
    let metrics = app.text("/metrics").await;
    assert!(
        metrics.contains(r#"csm_impossible_values_total{measure="power"}"#),
        "counted"
    );
    // Physical values again: the note goes, the values show.
    let meter = serde_json::json!([2, "m-2", "MeterValues", {
        "connectorId": 1,
        "meterValue": [{"timestamp": "2026-12-01T08:01:00Z", "sampledValue": [
            {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
            {"value": "16", "measurand": "Current.Import", "unit": "A"},
            {"value": "230", "measurand": "Voltage", "unit": "V"},
            {"value": "5000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        ]}]
    }]);
    call(&mut socket, &meter.to_string()).await;
    let (_, shown) = eventually(
        Duration::from_secs(5),
        || get_json(&app, "/api/stations/CP-X1"),
        |(_, s)| s["last_error"].is_null(),
    )
    .await;
    assert_eq!(shown["ports"][0]["power"], 7200.0, "{shown}");
    socket.close(None).await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn impossible_values_in_a_vendor_answer_are_dropped_and_the_rest_kept() {
    let vendor = MockServer::start().await;
    Mock::given(path("/api/v1/stations/ODD/ports"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"ports":[{"port":1,"status":"occupied","voltage":"1e308","current":8.5,"power":-40,"energy_kwh":"inf"},{"port":2,"status":"free","voltage":"1e400"}]}"#,
            "application/json",
        ))
        .mount(&vendor)
        .await;
    let store = test_store(Backend::Sqlite).await;
    let engine = build(&store.store, &memory_cache())
        .settings(|s| {
            s.vendors.base_urls.insert("CSM".into(), vendor.uri());
        })
        .engine();
    let odd = Arc::new(station("ODD", "csm", 2));
    let outcome = engine.refresh(Arc::clone(&odd)).await;
    assert!(
        outcome.result.is_ok(),
        "the answer is read: {:?}",
        outcome.result
    );
    let state = engine.last_known(&odd.id).unwrap();
    assert_eq!(
        state
            .ports
            .iter()
            .map(|p| p.reading.status)
            .collect::<Vec<_>>(),
        [PortStatus::Occupied, PortStatus::Free]
    );
    let error = state.last_error.clone().unwrap();
    assert!(error.starts_with("csm: impossible readings: "), "{error}");
    for named in [
        "port 1: voltage 1e308 V",
        "port 1: power -4e1 W",
        "port 1: energy inf kWh",
        "port 2: voltage inf V",
    ] {
        assert!(error.contains(named), "{named:?} in {error}");
    }
    assert_eq!(engine.flush().await.pending_rows, 0);
    let stored = store
        .store
        .station_states(std::slice::from_ref(&odd.id))
        .await
        .unwrap();
    assert_eq!(stored[0].last_error.as_deref(), Some(error.as_str()));
}

/// A connection that asks for the live stream from `local` and never reads, with a small
/// receive buffer so the server's writes block soon.
async fn hoarder(server: SocketAddr, local: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2_048).unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    stream
        .write_all(b"GET /api/events HTTP/1.1\r\nHost: csm\r\n\r\n")
        .await
        .unwrap();
    stream
}

fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn one_address_cannot_hoard_the_live_streams_and_streams_that_never_read_are_dropped() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.server.limits.max_sse_clients = 100;
        c.server.limits.max_sse_per_address = 3;
        c.server.limits.write_stall_timeout = Duration::from_secs(2);
    })
    .await;
    // Stations whose every port changes at each refresh: a steady flow of live events.
    let fleet: Vec<Arc<Station>> = (0..40)
        .map(|n| Arc::new(station(&format!("F{n:02}"), crate::helpers::SCRIPTED, 12)))
        .collect();
    for station in &fleet {
        app.monitor.stations().add(station).await.unwrap();
    }
    let flip = |round: usize| {
        let status = if round.is_multiple_of(2) {
            PortStatus::Occupied
        } else {
            PortStatus::Free
        };
        for station in &fleet {
            let ports = (1..=12).map(|p| reading(p, status, Some(220.0))).collect();
            app.scripted.set(station.id.as_str(), Ok(ports));
        }
    };

    // Another address reads its stream throughout.
    let reader = client_from("127.0.0.2");
    let mut watching = reader.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(watching.status(), StatusCode::OK);

    // One address takes its share of streams and never reads them; one more is refused.
    let mut hoarded = Vec::new();
    for _ in 0..3 {
        hoarded.push(hoarder(app.address, "127.0.0.1").await);
    }
    let own = client_from("127.0.0.1");
    let refused = eventually(
        Duration::from_secs(5),
        || async { own.get(app.url("/api/events")).send().await.unwrap() },
        |r| r.status() != StatusCode::OK,
    )
    .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("CSM_MAX_SSE_PER_ADDRESS"),
        "{body}"
    );
    // The other address still gets a stream of its own.
    let second = reader.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    drop(second);

    // Events flow until the hoarded streams' buffers fill; writes then stay blocked past the
    // stall timeout, and the server drops them: the address may open streams again.
    let mut round = 0;
    let reopened = eventually(
        Duration::from_secs(60),
        || {
            round += 1;
            flip(round);
            let (monitor, fleet, own, url) = (
                Arc::clone(&app.monitor),
                fleet.clone(),
                own.clone(),
                app.url("/api/events"),
            );
            async move {
                monitor.refresh().many(fleet, |_| {}).await;
                own.get(url).send().await.unwrap().status()
            }
        },
        |status| *status == StatusCode::OK,
    )
    .await;
    assert_eq!(reopened, StatusCode::OK);
    for stream in &mut hoarded {
        // Whatever was buffered drains, then the connection ends.
        let mut buf = vec![0_u8; 64 * 1024];
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the hoarded stream was closed by the server");
    }
    // The reading client was served all along.
    let chunk = tokio::time::timeout(Duration::from_secs(5), watching.chunk())
        .await
        .expect("the reader's stream is alive")
        .unwrap()
        .unwrap_or_default();
    assert!(!chunk.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn ids_that_paths_normalise_or_that_spaces_disguise_are_refused() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.server.admin_token = Some("hostile-admin".into());
        c.core.ocpp.registration = Some(csm::core::settings::Registration::Known);
    })
    .await;
    for (id, message) in [
        ("..", "starts with a dot"),
        (".", "starts with a dot"),
        (" SEV-0001", "starts or ends with white space"),
        ("SEV-0001 ", "starts or ends with white space"),
    ] {
        let response = app
            .client
            .post(app.url("/api/stations"))
            .bearer_auth("hostile-admin")
            .json(&serde_json::json!({"station_id": id, "name": "x", "vendor": "ocpp"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{id:?}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(message),
            "{id:?}: {body}"
        );
    }
    // A charger serving SEV-0001 is not taken over by a look-alike id with spaces.
    app.monitor
        .stations()
        .add(&station("SEV-0001", "ocpp", 1))
        .await
        .unwrap();
    let mut real = connect(&app, "SEV-0001", Some("ocpp1.6")).await.unwrap();
    call(&mut real, include_str!("../fixtures/ocpp/boot.json")).await;
    for disguised in ["%20SEV-0001%20", "SEV-0001%20", "%2E%2E"] {
        let refused = connect(&app, disguised, Some("ocpp1.6")).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{disguised}");
            }
            other => panic!("{disguised}: {other:?}"),
        }
    }
    real.send(Message::Text(r#"[2,"h-9","Heartbeat",{}]"#.into()))
        .await
        .unwrap();
    let heartbeat = next_text(&mut real).await;
    assert_eq!(heartbeat[1], "h-9", "the real charger keeps its connection");
    // The CLI refuses them too.
    let cli = <csm::cli::Cli as clap::Parser>::try_parse_from([
        "csm-cli",
        "stations",
        "add",
        "..",
        "dots",
        "--database-url",
        &app.store.url,
    ])
    .unwrap();
    let mut out = Vec::new();
    let error = csm::cli::run_with(cli, |_| {}, &mut out).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("starts with a dot"),
        "{error:#}"
    );
    app.stop().await;
}
