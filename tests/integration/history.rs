//! History on SQLite and MariaDB: readings kept by deadband and heartbeat, sessions from
//! events (across a restart, and cut by an outage), hourly roll-ups equal to a recount from the
//! raw events, pruning that leaves the roll-ups, and the history endpoints with their CSV.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use csm::core::charger::{ChargerApi, ChargerError};
use csm::core::history::{
    HistoryQuery, HourDelta, HourTotals, ReadingRow, SessionRow, status_index,
};
use csm::core::model::{PortReading, PortStatus, Station, StationId, StatusEvent};
use csm::core::refresh::{Engine, EngineConfig, RetryPolicy};
use csm::core::store::{EventQuery, Store, WriteBatch};
use proptest::prelude::*;
use reqwest::StatusCode;

use crate::helpers::{
    Backend, CacheKind, SCRIPTED, ScriptedApi, TestStore, build, memory_cache, reading, station,
    test_store,
};

crate::helpers::on_each!(
    sqlite(Backend::Sqlite),
    mysql(Backend::MySql) =>

    readings_are_kept_on_changes_beyond_the_deadband_and_on_the_heartbeat,
    a_session_open_across_a_restart_ends_in_the_row_it_started,
    a_session_cut_by_an_outage_ends_when_the_port_was_last_seen,
    pruning_deletes_old_history_in_chunks_and_keeps_the_hours,
);

/// An engine over `store` with only the scripted source, no retries, and `adjust`ed history
/// settings.
fn engine(
    store: &Arc<dyn Store>,
    api: &Arc<ScriptedApi>,
    adjust: impl FnOnce(&mut csm::core::settings::HistorySettings),
) -> Engine {
    let mut history = csm::core::settings::HistorySettings::default();
    adjust(&mut history);
    let config = EngineConfig {
        retry: RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        },
        ..EngineConfig::from_settings(&Default::default(), &history)
    };
    build(store, &memory_cache())
        .only()
        .source(Arc::clone(api) as Arc<dyn ChargerApi>)
        .config(config)
        .engine()
}

fn scripted(id: &str, ports: u32) -> Arc<Station> {
    Arc::new(station(id, SCRIPTED, ports))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 21, 40, 0).unwrap()
}

fn everything(id: &str) -> HistoryQuery {
    HistoryQuery {
        station_id: StationId::parse(id).unwrap(),
        port: None,
        from: DateTime::UNIX_EPOCH,
        to: Utc::now() + TimeDelta::days(1),
        limit: 100_000,
    }
}

/// Refreshes `station` as observed at `at` with `ports`, and writes what it produced.
async fn observe(
    engine: &Engine,
    api: &ScriptedApi,
    station: &Arc<Station>,
    at: DateTime<Utc>,
    ports: Result<Vec<PortReading>, ChargerError>,
) {
    api.at(at);
    api.set(station.id.as_str(), ports);
    let _ = engine.refresh(Arc::clone(station)).await;
    assert_eq!(engine.flush().await.pending_rows, 0);
}

/// Seconds per status of a station's stored hours, summed.
async fn stored_secs(store: &dyn Store, id: &str) -> HourTotals {
    let hours = store
        .hours(
            Some(&StationId::parse(id).unwrap()),
            DateTime::UNIX_EPOCH,
            Utc::now() + TimeDelta::days(1),
        )
        .await
        .unwrap();
    let mut total = HourTotals::default();
    for hour in &hours {
        total.add(&hour.totals);
    }
    total
}

async fn readings_are_kept_on_changes_beyond_the_deadband_and_on_the_heartbeat(backend: Backend) {
    let db = test_store(backend).await;
    let api = Arc::new(ScriptedApi::default());
    let engine = engine(&db.store, &api, |h| h.heartbeat_secs = 600);
    let s = scripted("R1", 2);
    let volts = |v1: f64, v2: f64| {
        Ok(vec![
            reading(1, PortStatus::Free, Some(v1)),
            reading(2, PortStatus::Occupied, Some(v2)),
        ])
    };
    let at = |secs: i64| t0() + TimeDelta::seconds(secs);
    // Seen first: both kept. Inside the 5 V deadband: nothing. Port 1 beyond it: port 1.
    observe(&engine, &api, &s, at(0), volts(220.0, 219.0)).await;
    observe(&engine, &api, &s, at(30), volts(223.0, 216.5)).await;
    observe(&engine, &api, &s, at(60), volts(226.0, 216.5)).await;
    // A status change is kept whatever the voltage.
    observe(
        &engine,
        &api,
        &s,
        at(90),
        Ok(vec![
            reading(1, PortStatus::Free, Some(226.0)),
            reading(2, PortStatus::Free, Some(219.0)),
        ]),
    )
    .await;
    // Nothing moves for a while; the heartbeat (600 s after each one's last kept) keeps both.
    for secs in [120, 300, 599] {
        observe(
            &engine,
            &api,
            &s,
            at(secs),
            Ok(vec![
                reading(1, PortStatus::Free, Some(226.0)),
                reading(2, PortStatus::Free, Some(219.0)),
            ]),
        )
        .await;
    }
    observe(
        &engine,
        &api,
        &s,
        at(700),
        Ok(vec![
            reading(1, PortStatus::Free, Some(226.0)),
            reading(2, PortStatus::Free, Some(219.0)),
        ]),
    )
    .await;
    let kept: Vec<(i64, u32)> = db
        .store
        .readings(&everything("R1"))
        .await
        .unwrap()
        .iter()
        .map(|r| ((r.at - t0()).num_seconds(), r.port))
        .collect();
    assert_eq!(
        kept,
        [(0, 1), (0, 2), (60, 1), (90, 2), (700, 1), (700, 2)],
        "stored readings (seconds after the start, port)"
    );
    let observed = 2 * 8;
    assert!(kept.len() * 2 < observed);
}

async fn a_session_open_across_a_restart_ends_in_the_row_it_started(backend: Backend) {
    let db = test_store(backend).await;
    let api = Arc::new(ScriptedApi::default());
    let s = scripted("R2", 1);
    let started = t0() + TimeDelta::minutes(5);
    let ended = t0() + TimeDelta::minutes(95);
    let mut occupied = reading(1, PortStatus::Occupied, Some(220.0));
    occupied.energy_kwh = Some(1.25);
    {
        let before = engine(&db.store, &api, |_| {});
        observe(
            &before,
            &api,
            &s,
            t0(),
            Ok(vec![reading(1, PortStatus::Free, None)]),
        )
        .await;
        observe(&before, &api, &s, started, Ok(vec![occupied.clone()])).await;
        before.shutdown(Duration::from_secs(5)).await;
    }
    let open = db.store.sessions(&everything("R2")).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].started_at, open[0].ended_at), (started, None));

    // A new process: nothing in memory, the diff base comes from the store.
    let after = engine(&db.store, &api, |_| {});
    observe(
        &after,
        &api,
        &s,
        ended,
        Ok(vec![reading(1, PortStatus::Free, None)]),
    )
    .await;
    let sessions = db.store.sessions(&everything("R2")).await.unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].started_at, started);
    assert_eq!(sessions[0].ended_at, Some(ended));
    assert_eq!(sessions[0].duration(), Some(TimeDelta::minutes(90)));
    assert_eq!(
        sessions[0].energy_kwh,
        Some(1.25),
        "the last energy seen before the restart"
    );
    let lengths = db
        .store
        .session_lengths(Some(&s.id), DateTime::UNIX_EPOCH, 10)
        .await
        .unwrap();
    assert_eq!(lengths, [90 * 60]);
    let secs = stored_secs(&*db.store, "R2").await;
    assert_eq!(secs.secs_in(PortStatus::Free), 5 * 60);
    assert_eq!(secs.secs_in(PortStatus::Occupied), 90 * 60);
    assert_eq!(secs.sessions_started, 1);
    assert_eq!(secs.energy_kwh, 1.25);
}

async fn a_session_cut_by_an_outage_ends_when_the_port_was_last_seen(backend: Backend) {
    let db = test_store(backend).await;
    let api = Arc::new(ScriptedApi::default());
    let engine = engine(&db.store, &api, |_| {});
    let s = scripted("R3", 2);
    let both = |one, two| Ok(vec![reading(1, one, None), reading(2, two, None)]);
    let last_seen = t0() + TimeDelta::minutes(10);
    let back = t0() + TimeDelta::minutes(40);
    observe(
        &engine,
        &api,
        &s,
        t0(),
        both(PortStatus::Occupied, PortStatus::Free),
    )
    .await;
    observe(
        &engine,
        &api,
        &s,
        last_seen,
        both(PortStatus::Occupied, PortStatus::Free),
    )
    .await;
    let timeout = ChargerError::Timeout {
        vendor: SCRIPTED.into(),
        url: "http://vendor/R3".into(),
        after_ms: 2_000,
    };
    for minutes in [15, 20, 30] {
        observe(
            &engine,
            &api,
            &s,
            t0() + TimeDelta::minutes(minutes),
            Err(timeout.clone()),
        )
        .await;
    }
    observe(
        &engine,
        &api,
        &s,
        back,
        both(PortStatus::Free, PortStatus::Free),
    )
    .await;
    let sessions = db.store.sessions(&everything("R3")).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].ended_at,
        Some(last_seen),
        "not when csm got the station back"
    );
    let secs = stored_secs(&*db.store, "R3").await;
    assert_eq!(secs.secs_in(PortStatus::Occupied), 10 * 60);
    assert_eq!(
        secs.secs_in(PortStatus::Free),
        10 * 60,
        "port 2 up to the outage"
    );
    assert_eq!(
        secs.secs_in(PortStatus::Offline),
        2 * 30 * 60,
        "both ports, the 30 minutes away"
    );
    // Port 2 stayed free through the outage: its stay is counted again from the recovery.
    let later = back + TimeDelta::minutes(7);
    observe(
        &engine,
        &api,
        &s,
        later,
        both(PortStatus::Free, PortStatus::Occupied),
    )
    .await;
    let secs = stored_secs(&*db.store, "R3").await;
    assert_eq!(secs.secs_in(PortStatus::Free), 10 * 60 + 7 * 60);
    assert_eq!(secs.secs_in(PortStatus::Offline), 2 * 30 * 60);
}

async fn pruning_deletes_old_history_in_chunks_and_keeps_the_hours(backend: Backend) {
    let db = test_store(backend).await;
    let now = csm::core::model::now();
    let id = StationId::parse("R4").unwrap();
    let old_reading = |n: i64| ReadingRow {
        station_id: id.clone(),
        port: 1 + (n % 4) as u32,
        at: now - TimeDelta::days(10) + TimeDelta::seconds(n),
        status: PortStatus::Free,
        voltage: Some(220.0),
        current: None,
        power: None,
        energy_kwh: None,
    };
    let mut readings: Vec<ReadingRow> = (0..12_000).map(old_reading).collect();
    readings.push(ReadingRow {
        at: now - TimeDelta::days(1),
        ..old_reading(0)
    });
    let event = |at| StatusEvent {
        station_id: id.clone(),
        port: 1,
        old: Some(PortStatus::Free),
        new: PortStatus::Occupied,
        at,
    };
    let session = |started_at: DateTime<Utc>| SessionRow {
        station_id: id.clone(),
        port: 1,
        started_at,
        ended_at: Some(started_at + TimeDelta::minutes(30)),
        energy_kwh: None,
    };
    let long_ago = now - TimeDelta::days(400);
    let mut totals = HourTotals::default();
    totals.secs[status_index(PortStatus::Occupied)] = 1_800;
    let batch = WriteBatch {
        readings,
        events: vec![event(long_ago), event(now - TimeDelta::days(2))],
        sessions: vec![session(long_ago), session(now - TimeDelta::days(2))],
        hours: vec![HourDelta {
            station_id: id.clone(),
            port: 1,
            hour: long_ago.duration_trunc(TimeDelta::hours(1)).unwrap(),
            totals,
        }],
        ..WriteBatch::default()
    };
    db.store.apply(&batch).await.unwrap();
    let frame = |at: DateTime<Utc>| csm::core::model::ocpp::StoredFrame {
        id: 0,
        station_id: id.clone(),
        instance: "csm-a".into(),
        at,
        direction: csm::core::model::ocpp::Direction::In,
        connection: 1,
        action: Some("Heartbeat".into()),
        frame: r#"[2,"1","Heartbeat",{}]"#.into(),
    };
    let frames = [
        frame(now - TimeDelta::days(8)),
        frame(now - TimeDelta::days(6)),
    ];
    db.store.write_ocpp_messages(&frames).await.unwrap();
    let monitor = build(&db.store, &memory_cache()).monitor();
    let report = monitor.history().prune().await.unwrap();
    let deleted: Vec<(&str, u64)> = report.deleted.iter().map(|d| (d.0.table(), d.2)).collect();
    assert_eq!(
        deleted,
        [
            ("port_readings", 12_000),
            ("status_events", 1),
            ("sessions", 1),
            ("audit_log", 0),
            ("ocpp_messages", 1)
        ]
    );
    assert_eq!(db.store.readings(&everything("R4")).await.unwrap().len(), 1);
    assert_eq!(db.store.sessions(&everything("R4")).await.unwrap().len(), 1);
    let events = EventQuery {
        station_id: Some(id.clone()),
        ..EventQuery::default()
    };
    assert_eq!(db.store.events(&events).await.unwrap().len(), 1);
    let kept_frames = db.store.ocpp_messages(&id, 0, 10).await.unwrap();
    assert_eq!(kept_frames.len(), 1);
    assert_eq!(kept_frames[0].at, frames[1].at);
    let kept = stored_secs(&*db.store, "R4").await;
    assert_eq!(
        kept.secs_in(PortStatus::Occupied),
        1_800,
        "roll-ups are kept"
    );
    // Nothing left to prune: a second run deletes nothing.
    let again = monitor.history().prune().await.unwrap();
    assert!(again.deleted.iter().all(|d| d.2 == 0), "{again:?}");
}

/// One step of a random history: how long after the last one, and each port's status.
fn steps(ports: usize) -> impl Strategy<Value = Vec<(u32, Vec<PortStatus>)>> {
    let status = prop_oneof![
        Just(PortStatus::Free),
        Just(PortStatus::Occupied),
        Just(PortStatus::Fault),
        Just(PortStatus::Reserved),
    ];
    prop::collection::vec((1_u32..5_400, prop::collection::vec(status, ports)), 1..40)
}

/// Seconds in each status and sessions started per UTC hour, recounted from the raw events:
/// each port's stay from one event to its next, cut at whole hours.
fn recount(events: &[StatusEvent]) -> BTreeMap<DateTime<Utc>, ([u64; 7], u64)> {
    let mut hours: BTreeMap<DateTime<Utc>, ([u64; 7], u64)> = BTreeMap::new();
    let mut by_port: BTreeMap<u32, Vec<&StatusEvent>> = BTreeMap::new();
    for event in events {
        by_port.entry(event.port).or_default().push(event);
        if event.new == PortStatus::Occupied {
            let hour = event.at.duration_trunc(TimeDelta::hours(1)).unwrap();
            hours.entry(hour).or_default().1 += 1;
        }
    }
    for events in by_port.values_mut() {
        events.sort_by_key(|e| e.at);
        for pair in events.windows(2) {
            let (mut at, end) = (pair[0].at, pair[1].at);
            while at < end {
                let hour = at.duration_trunc(TimeDelta::hours(1)).unwrap();
                let next = (hour + TimeDelta::hours(1)).min(end);
                let secs = (next - at).num_seconds() as u64;
                hours.entry(hour).or_default().0[status_index(pair[0].new)] += secs;
                at = next;
            }
        }
    }
    hours
}

async fn roll_ups_equal_a_recount(
    backend: Backend,
    ports: usize,
    history: Vec<(u32, Vec<PortStatus>)>,
) {
    let db: TestStore = test_store(backend).await;
    let api = Arc::new(ScriptedApi::default());
    let engine = engine(&db.store, &api, |_| {});
    let s = scripted("P1", ports as u32);
    let mut at = t0() + TimeDelta::seconds(17);
    for (after, statuses) in history {
        at += TimeDelta::seconds(i64::from(after));
        let readings = statuses
            .iter()
            .enumerate()
            .map(|(i, status)| reading(i as u32 + 1, *status, None))
            .collect();
        observe(&engine, &api, &s, at, Ok(readings)).await;
    }
    let events = db
        .store
        .events(&EventQuery {
            station_id: Some(s.id.clone()),
            limit: EventQuery::MAX_LIMIT,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let expected = recount(&events);
    let stored: BTreeMap<DateTime<Utc>, ([u64; 7], u64)> = db
        .store
        .hours(Some(&s.id), DateTime::UNIX_EPOCH, at + TimeDelta::days(1))
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.hour, (h.totals.secs, h.totals.sessions_started)))
        .filter(|(_, (secs, started))| secs.iter().any(|s| *s > 0) || *started > 0)
        .collect();
    let expected: BTreeMap<_, _> = expected
        .into_iter()
        .filter(|(_, (secs, started))| secs.iter().any(|s| *s > 0) || *started > 0)
        .collect();
    assert_eq!(
        stored,
        expected,
        "stored hours against the recount from {} events",
        events.len()
    );
    // The fleet's hours hold the same (one station).
    let fleet: u64 = db
        .store
        .hours(None, DateTime::UNIX_EPOCH, at + TimeDelta::days(1))
        .await
        .unwrap()
        .iter()
        .map(|h| h.totals.total_secs())
        .sum();
    let expected_total: u64 = expected
        .values()
        .map(|(secs, _)| secs.iter().sum::<u64>())
        .sum();
    assert_eq!(fleet, expected_total);
}

fn property(backend: Backend, cases: u32) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let histories = (1_usize..4).prop_flat_map(|ports| (Just(ports), steps(ports)));
    proptest!(config, |((ports, history) in histories)| {
        runtime.block_on(roll_ups_equal_a_recount(backend, ports, history));
    });
}

#[test]
fn sqlite_roll_ups_equal_a_brute_force_recount_of_the_events() {
    property(Backend::Sqlite, 24);
}

#[test]
fn mysql_roll_ups_equal_a_brute_force_recount_of_the_events() {
    property(Backend::MySql, 8);
}

#[tokio::test]
async fn the_history_endpoints_answer_json_and_csv() {
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, CacheKind::Memory, |config| {
        // Demo stations with their simulated past.
        config.core.demo = Some(true);
    })
    .await;
    let get = |path: &str| app.client.get(app.url(path)).send();

    let stats: serde_json::Value = get("/api/stations/S0001/stats?days=7")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let occupancy = stats["occupancy"].as_array().unwrap();
    assert_eq!(occupancy.len(), 7);
    assert!(
        occupancy
            .iter()
            .all(|day| day.as_array().unwrap().len() == 24)
    );
    let utilisation = stats["utilisation"].as_f64().unwrap();
    assert!((0.05..0.95).contains(&utilisation), "{utilisation}");
    assert!(
        stats["sessions"].as_u64().unwrap() > 20,
        "{}",
        stats["sessions"]
    );
    let median = stats["median_session_minutes"].as_f64().unwrap();
    let p90 = stats["p90_session_minutes"].as_f64().unwrap();
    assert!(
        20.0 <= median && median <= p90 && p90 <= 240.0,
        "{median} {p90}"
    );
    assert_eq!(stats["timezone"], "Asia/Shanghai");

    let fleet: serde_json::Value = get("/api/stats?days=3")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fleet["stations"], 3);
    assert!(fleet["sessions"].as_u64().unwrap() >= stats["sessions"].as_u64().unwrap() / 3);
    let ranked = fleet["most_fault"].as_array().unwrap();
    let minutes: Vec<f64> = ranked
        .iter()
        .map(|r| r["minutes"].as_f64().unwrap())
        .collect();
    assert!(minutes.windows(2).all(|w| w[0] >= w[1]), "{minutes:?}");

    let history: serde_json::Value = get("/api/stations/S0001/history?points=50")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ports = history["ports"].as_array().unwrap();
    assert!(!ports.is_empty());
    for port in ports {
        let readings = port["readings"].as_array().unwrap();
        assert!(
            !readings.is_empty() && readings.len() <= 50,
            "{}",
            readings.len()
        );
        assert!(readings[0]["voltage"].is_number() || readings[0]["status"] != "free");
    }
    let one_port: serde_json::Value = get("/api/stations/S0001/history?port=2")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        one_port["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["port"] == 2)
    );

    let sessions: serde_json::Value = get("/api/stations/S0001/sessions?limit=5")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = sessions["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 5);
    let starts: Vec<&str> = sessions
        .iter()
        .map(|s| s["started_at"].as_str().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {starts:?}"
    );

    // Bad input is named.
    for (path, word) in [
        ("/api/stations/S0001/stats?days=0", "days"),
        ("/api/stations/S0001/history?points=0", "points"),
        ("/api/stations/S0001/history?port=0", "port"),
        ("/api/stations/S0001/sessions?limit=5000", "limit"),
        ("/api/stations/S0001/sessions?format=xml", "format"),
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains(word), "{path}: {body}");
    }
    assert_eq!(
        get("/api/stations/NOPE/stats").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // The estimate of every occupied port, on its basis.
    let station: serde_json::Value = get("/api/stations/S0001")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for port in station["ports"].as_array().unwrap() {
        let estimate = &port["free_estimate"];
        if port["status"] != "occupied" {
            assert!(estimate.is_null(), "{port}");
        } else if !estimate.is_null() {
            assert!(["vendor", "history"].contains(&estimate["basis"].as_str().unwrap()));
            let at: DateTime<Utc> = estimate["at"].as_str().unwrap().parse().unwrap();
            assert!(at > Utc::now() - TimeDelta::minutes(1), "{estimate}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn csv_answers_quote_chinese_names_with_commas_and_quotes() {
    let app = crate::helpers::spawn_app().await;
    let tricky = "东区 \"南门\", 3 号桩";
    let mut s = station("Q1", SCRIPTED, 2);
    s.name = tricky.into();
    app.monitor.stations().add(&s).await.unwrap();
    app.scripted.set(
        "Q1",
        Ok(vec![
            reading(1, PortStatus::Free, None),
            reading(2, PortStatus::Occupied, None),
        ]),
    );
    app.monitor
        .refresh()
        .one(Arc::new(s.clone()))
        .await
        .result
        .unwrap();
    app.scripted.set(
        "Q1",
        Ok(vec![
            reading(1, PortStatus::Occupied, None),
            reading(2, PortStatus::Free, None),
        ]),
    );
    app.monitor.refresh().one(Arc::new(s)).await.result.unwrap();
    app.monitor.flush().await;
    for (path, rows) in [
        ("/api/stations/Q1/events?format=csv", 4),
        ("/api/stations/Q1/sessions?format=csv", 2),
        // Two observations moments apart fall in one of the 500 spans of the last 24 hours:
        // one reading of each port is answered.
        ("/api/stations/Q1/history?format=csv", 2),
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/csv; charset=utf-8"
        );
        let body = response.text().await.unwrap();
        assert!(
            body.contains("\"东区 \"\"南门\"\", 3 号桩\""),
            "{path}: {body}"
        );
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        let header = reader.headers().unwrap().clone();
        assert_eq!(&header[0], "station_id");
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), rows, "{path}: {body}");
        assert!(records.iter().all(|r| &r[1] == tricky));
    }
    app.stop().await;
}

#[tokio::test]
async fn availability_counts_faults_and_outages_but_not_time_out_of_service() {
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.server.admin_token = Some("t".into());
    })
    .await;
    let added = app
        .client
        .post(app.url("/api/stations"))
        .bearer_auth("t")
        .json(&serde_json::json!({"station_id": "AV1", "name": "可用率站", "vendor": SCRIPTED, "port_count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let id = StationId::parse("AV1").unwrap();
    let hour = (Utc::now() - TimeDelta::days(1))
        .duration_trunc(TimeDelta::hours(1))
        .unwrap();
    let at = |minutes: i64| hour + TimeDelta::minutes(minutes);
    let event = |port: u32, old: PortStatus, new: PortStatus, minute: i64| StatusEvent {
        station_id: id.clone(),
        port,
        old: Some(old),
        new,
        at: at(minute),
    };
    use PortStatus::{Fault, Free, Offline, Unavailable};
    let totals = |pairs: &[(PortStatus, u64)]| {
        let mut totals = HourTotals::default();
        for (status, secs) in pairs {
            totals.secs[status_index(*status)] = *secs;
        }
        totals
    };
    let batch = WriteBatch {
        events: vec![
            event(1, Free, Fault, 10),
            event(1, Fault, Free, 30),
            event(2, Free, Offline, 20),
            event(2, Offline, Free, 50),
            // Taken out of service by the operator, and back: no outage.
            event(2, Free, Unavailable, 70),
            event(2, Unavailable, Free, 90),
        ],
        hours: vec![
            HourDelta {
                station_id: id.clone(),
                port: 1,
                hour,
                totals: totals(&[(Free, 2_400), (Fault, 1_200)]),
            },
            HourDelta {
                station_id: id.clone(),
                port: 2,
                hour,
                totals: totals(&[(Free, 1_200), (Offline, 1_800), (Unavailable, 600)]),
            },
        ],
        ..WriteBatch::default()
    };
    app.store.store.apply(&batch).await.unwrap();
    let get = |path: &str| {
        let request = app.client.get(app.url(path));
        async move { request.send().await.unwrap() }
    };

    let found: serde_json::Value = get("/api/stations/AV1/availability?days=3")
        .await
        .json()
        .await
        .unwrap();
    // Counted: 7,200 port seconds less 600 out of service; down: 1,200 fault + 1,800 offline.
    assert_eq!(found["availability"], 0.5455, "{found}");
    let day = found["daily"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| !d["availability"].is_null())
        .unwrap();
    assert_eq!(
        (
            day["availability"].as_f64(),
            day["unavailable_minutes"].as_f64()
        ),
        (Some(0.5455), Some(10.0)),
        "{day}"
    );
    let outages = found["outages"].as_array().unwrap();
    assert_eq!(outages.len(), 1, "{outages:?}");
    assert_eq!(outages[0]["ports"], serde_json::json!([1, 2]));
    assert_eq!(
        outages[0]["statuses"],
        serde_json::json!(["fault", "offline"])
    );
    let from: DateTime<Utc> = outages[0]["from"].as_str().unwrap().parse().unwrap();
    let to: DateTime<Utc> = outages[0]["to"].as_str().unwrap().parse().unwrap();
    assert_eq!((from, to), (at(10), at(50)));
    let stats: serde_json::Value = get("/api/stations/AV1/stats?days=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["availability"], 0.5455, "the statistics carry it too");
    assert_eq!(stats["minutes"]["unavailable"], 10.0);

    let csv = get("/api/stations/AV1/availability?days=3&format=csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("station_id,station_name,date,availability,fault_minutes,offline_minutes,unavailable_minutes\r\n"), "{csv}");
    assert!(csv.contains(",0.5455,20,30,10\r\n"), "{csv}");

    let report: serde_json::Value = get("/api/availability?days=7&below=0.95")
        .await
        .json()
        .await
        .unwrap();
    let listed = report["stations"].as_array().unwrap();
    let row = listed
        .iter()
        .find(|r| r["station_id"] == "AV1")
        .expect("AV1 is below 95%");
    assert_eq!(
        (
            row["availability"].as_f64(),
            row["down_minutes"].as_f64(),
            row["unavailable_minutes"].as_f64()
        ),
        (Some(0.5455), Some(50.0), Some(10.0))
    );
    let none: serde_json::Value = get("/api/availability?days=7&below=0.5")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        none["stations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["station_id"] != "AV1")
    );
    assert_eq!(
        get("/api/availability?below=2").await.status(),
        StatusCode::BAD_REQUEST
    );

    let argv = [
        "csm-cli",
        "availability",
        "AV1",
        "--days",
        "3",
        "--database-url",
        &app.store.url,
    ];
    let cli = <csm::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    let mut out = Vec::new();
    csm::cli::run(cli, &mut out).await.unwrap();
    let printed = String::from_utf8(out).unwrap();
    assert!(
        printed.contains("availability 54.5%") && printed.contains("ports 1,2  fault, offline"),
        "{printed}"
    );
    app.stop().await;
}
