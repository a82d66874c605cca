//! The `Store` contract, run on SQLite and on a fresh MariaDB database per test.

use chrono::{Duration, Utc};
use csm::core::model::{PortState, PortStatus, StationHealth, StationId, StatusEvent};
use csm::core::store::{EventQuery, PortStateRow, Store, StoreError, WriteBatch};

use crate::helpers::{Backend, reading, station, test_store};

crate::helpers::on_each!(
    sqlite(Backend::Sqlite),
    mysql(Backend::MySql) =>

    migrations_can_run_again,
    stations_round_trip_with_chinese_text,
    adding_an_existing_station_is_a_conflict,
    imports_are_all_or_nothing_and_counted,
    batches_write_ports_events_and_health,
    large_batches_are_chunked_under_the_bind_limits,
    repeated_event_batches_are_harmless,
    events_are_filtered_and_newest_first,
    removing_a_station_keeps_its_history,
    the_catalogue_version_moves_with_every_change,
    station_ids_that_differ_in_case_are_different_stations,
    every_table_reads_back_what_was_written,
);

async fn migrations_can_run_again(backend: Backend) {
    let t = test_store(backend).await;
    t.store.migrate().await.expect("second migration run");
    t.store.ping().await.expect("ping");
    assert!(t.store.list_stations().await.unwrap().is_empty());
}

async fn stations_round_trip_with_chinese_text(backend: Backend) {
    let t = test_store(backend).await;
    let mut s = station("9313600954", "simulator", 12);
    s.name = "信阳学院充电桩 A 区 ⚡".into();
    s.address = Some("河南省信阳市浉河区 𠀋 路".into());
    t.store.add_station(&s).await.unwrap();
    let mut other = station("DL-20391", "csm", 6);
    other.lat = None;
    other.enabled = false;
    t.store.add_station(&other).await.unwrap();
    let listed = t.store.list_stations().await.unwrap();
    assert_eq!(listed, vec![s.clone(), other.clone()], "ordered by id");
    assert_eq!(t.store.get_station(&s.id).await.unwrap(), Some(s));
    assert_eq!(
        t.store
            .get_station(&StationId::parse("nope").unwrap())
            .await
            .unwrap(),
        None
    );
}

async fn station_ids_that_differ_in_case_are_different_stations(backend: Backend) {
    let t = test_store(backend).await;
    let lower = station("ab-1", "simulator", 2);
    let upper = station("AB-1", "simulator", 2);
    t.store.add_station(&lower).await.unwrap();
    t.store.add_station(&upper).await.unwrap();
    let listed = t.store.list_stations().await.unwrap();
    assert_eq!(listed, vec![upper.clone(), lower.clone()], "byte order");
    let now = Utc::now();
    let batch = WriteBatch {
        ports: vec![
            port_row("ab-1", 1, PortStatus::Free, now),
            port_row("AB-1", 1, PortStatus::Fault, now),
        ],
        ..WriteBatch::default()
    };
    t.store.apply(&batch).await.unwrap();
    let states = t
        .store
        .station_states(&[lower.id.clone(), upper.id.clone()])
        .await
        .unwrap();
    let status_of = |id: &StationId| {
        let state = states
            .iter()
            .find(|s| &s.station_id == id)
            .expect("a state");
        state
            .ports
            .iter()
            .map(|p| p.reading.status)
            .collect::<Vec<_>>()
    };
    assert_eq!(status_of(&lower.id), [PortStatus::Free]);
    assert_eq!(status_of(&upper.id), [PortStatus::Fault]);
}

async fn adding_an_existing_station_is_a_conflict(backend: Backend) {
    let t = test_store(backend).await;
    let s = station("S1", "simulator", 4);
    t.store.add_station(&s).await.unwrap();
    let err = t.store.add_station(&s).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref id) if id.as_str() == "S1"),
        "{err}"
    );
    let mut bad = station("S2", "simulator", 4);
    bad.lat = Some(95.0);
    let err = t.store.add_station(&bad).await.unwrap_err();
    assert!(err.to_string().contains("lat"), "{err}");
    assert_eq!(t.store.list_stations().await.unwrap().len(), 1);
}

async fn imports_are_all_or_nothing_and_counted(backend: Backend) {
    let t = test_store(backend).await;
    // More rows than one statement carries, so the import spans several statements.
    let many: Vec<_> = (0..2_500)
        .map(|i| station(&format!("S{i:05}"), "simulator", 10))
        .collect();
    let counts = t.store.upsert_stations(&many).await.unwrap();
    assert_eq!((counts.added, counts.updated), (2_500, 0));
    let mut again = many[..10].to_vec();
    again[0].name = "改名".into();
    again.push(station("NEW1", "simulator", 2));
    let counts = t.store.upsert_stations(&again).await.unwrap();
    assert_eq!((counts.added, counts.updated), (1, 10));
    assert_eq!(
        t.store
            .get_station(&many[0].id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "改名"
    );

    let mut bad = vec![station("X1", "simulator", 2), station("X2", "simulator", 2)];
    bad[1].name = String::new();
    let err = t.store.upsert_stations(&bad).await.unwrap_err();
    assert!(
        err.to_string().contains("station 2 (X2): name is empty"),
        "{err}"
    );
    let dupes = vec![station("Y1", "simulator", 2), station("Y1", "simulator", 3)];
    let err = t.store.upsert_stations(&dupes).await.unwrap_err();
    assert!(err.to_string().contains("Y1 appears twice"), "{err}");
    assert_eq!(
        t.store.list_stations().await.unwrap().len(),
        2_501,
        "nothing of the bad imports was written"
    );
}

fn port_row(
    station_id: &str,
    port: u32,
    status: PortStatus,
    since: chrono::DateTime<Utc>,
) -> PortStateRow {
    PortStateRow {
        station_id: StationId::parse(station_id).unwrap(),
        state: PortState {
            reading: reading(
                port,
                status,
                if status == PortStatus::Free {
                    Some(221.5)
                } else {
                    None
                },
            ),
            since,
        },
        observed_at: since + Duration::seconds(5),
    }
}

fn event(
    station_id: &str,
    port: u32,
    old: Option<PortStatus>,
    new: PortStatus,
    at: chrono::DateTime<Utc>,
) -> StatusEvent {
    StatusEvent {
        station_id: StationId::parse(station_id).unwrap(),
        port,
        old,
        new,
        at,
    }
}

async fn batches_write_ports_events_and_health(backend: Backend) {
    let t = test_store(backend).await;
    let now = Utc::now();
    let batch = WriteBatch {
        ports: vec![
            port_row("A", 1, PortStatus::Free, now),
            port_row("A", 2, PortStatus::Occupied, now),
        ],
        events: vec![event("A", 1, None, PortStatus::Free, now)],
        health: vec![StationHealth {
            station_id: StationId::parse("A").unwrap(),
            last_ok_at: Some(now),
            last_error: Some("csm: timeout 超时".into()),
            checked_at: now,
            failures: 2,
            counted_from: None,
        }],
        ..WriteBatch::default()
    };
    t.store.apply(&batch).await.unwrap();
    // Overwrite port 2 with a new status.
    let later = now + Duration::seconds(30);
    t.store
        .apply(&WriteBatch {
            ports: vec![port_row("A", 2, PortStatus::Fault, later)],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    let states = t
        .store
        .station_states(&[
            StationId::parse("A").unwrap(),
            StationId::parse("B").unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(states.len(), 1);
    let state = &states[0];
    assert_eq!(state.failures, 2);
    assert_eq!(state.last_error.as_deref(), Some("csm: timeout 超时"));
    assert_eq!(state.ports.len(), 2);
    assert_eq!(state.ports[0].reading.voltage, Some(221.5));
    assert_eq!(
        state.ports[0].reading.current, None,
        "absent readings stay absent"
    );
    assert_eq!(state.ports[1].reading.status, PortStatus::Fault);
    assert_eq!(state.ports[1].reading.voltage, None);
    let micros = |t: chrono::DateTime<Utc>| t.timestamp_micros();
    assert_eq!(micros(state.ports[1].since), micros(later));
    assert_eq!(micros(state.ports[0].since), micros(now));
}

async fn large_batches_are_chunked_under_the_bind_limits(backend: Backend) {
    let t = test_store(backend).await;
    let now = Utc::now();
    // 40,000 ports × 11 columns is over both backends' bind limits for one statement.
    let ports: Vec<_> = (0..4_000)
        .flat_map(|s| (1..=10).map(move |p| (s, p)))
        .map(|(s, p)| port_row(&format!("S{s}"), p, PortStatus::Free, now))
        .collect();
    let events: Vec<_> = (0..4_000)
        .flat_map(|s| (1..=10).map(move |p| (s, p)))
        .map(|(s, p)| event(&format!("S{s}"), p, None, PortStatus::Free, now))
        .collect();
    t.store
        .apply(&WriteBatch {
            ports,
            events,
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(t.store.count_events(None).await.unwrap(), 40_000);
    let ids: Vec<_> = (0..4_000)
        .map(|s| StationId::parse(&format!("S{s}")).unwrap())
        .collect();
    let states = t.store.station_states(&ids).await.unwrap();
    assert_eq!(states.len(), 4_000);
    assert!(states.iter().all(|s| s.ports.len() == 10));
}

async fn repeated_event_batches_are_harmless(backend: Backend) {
    let t = test_store(backend).await;
    let now = Utc::now();
    let batch = WriteBatch {
        events: vec![
            event("A", 1, None, PortStatus::Free, now),
            event("A", 2, None, PortStatus::Occupied, now),
        ],
        ..WriteBatch::default()
    };
    t.store.apply(&batch).await.unwrap();
    t.store.apply(&batch).await.unwrap();
    assert_eq!(t.store.count_events(None).await.unwrap(), 2);
}

async fn events_are_filtered_and_newest_first(backend: Backend) {
    let t = test_store(backend).await;
    let t0 = Utc::now() - Duration::hours(1);
    let mut events = Vec::new();
    for minute in 0..10 {
        let at = t0 + Duration::minutes(minute);
        events.push(event(
            "A",
            1 + (minute as u32 % 2),
            Some(PortStatus::Free),
            PortStatus::Occupied,
            at,
        ));
        events.push(event(
            "B",
            1,
            Some(PortStatus::Occupied),
            PortStatus::Free,
            at,
        ));
    }
    t.store
        .apply(&WriteBatch {
            events,
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    let a = StationId::parse("A").unwrap();
    let all_a = t
        .store
        .events(&EventQuery {
            station_id: Some(a.clone()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all_a.len(), 10);
    assert!(all_a.windows(2).all(|w| w[0].at >= w[1].at), "newest first");
    let port2 = t
        .store
        .events(&EventQuery {
            station_id: Some(a.clone()),
            port: Some(2),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(port2.len(), 5);
    let window = t
        .store
        .events(&EventQuery {
            station_id: Some(a.clone()),
            since: Some(t0 + Duration::minutes(3)),
            until: Some(t0 + Duration::minutes(6)),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(window.len(), 3);
    let limited = t
        .store
        .events(&EventQuery {
            limit: 4,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 4);
    assert_eq!(t.store.count_events(Some(&a)).await.unwrap(), 10);
    assert_eq!(t.store.count_events(None).await.unwrap(), 20);
}

async fn the_catalogue_version_moves_with_every_change(backend: Backend) {
    let t = test_store(backend).await;
    let v0 = t.store.catalog_version().await.unwrap();
    t.store
        .add_station(&station("A", "simulator", 2))
        .await
        .unwrap();
    let v1 = t.store.catalog_version().await.unwrap();
    t.store
        .upsert_stations(&[station("A", "simulator", 3)])
        .await
        .unwrap();
    let v2 = t.store.catalog_version().await.unwrap();
    t.store
        .remove_station(&StationId::parse("A").unwrap())
        .await
        .unwrap();
    let v3 = t.store.catalog_version().await.unwrap();
    assert!(v0 < v1 && v1 < v2 && v2 < v3, "{v0} {v1} {v2} {v3}");
    let _ = t.store.add_station(&station("B", "simulator", 2)).await;
    assert!(
        t.store
            .add_station(&station("B", "simulator", 2))
            .await
            .is_err()
    );
    let v4 = t.store.catalog_version().await.unwrap();
    assert_eq!(v4, v3 + 1, "a refused addition changes nothing");
}

async fn removing_a_station_keeps_its_history(backend: Backend) {
    let t = test_store(backend).await;
    let s = station("A", "simulator", 2);
    t.store.add_station(&s).await.unwrap();
    let now = Utc::now();
    t.store
        .apply(&WriteBatch {
            ports: vec![port_row("A", 1, PortStatus::Free, now)],
            events: vec![event("A", 1, None, PortStatus::Free, now)],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert!(t.store.remove_station(&s.id).await.unwrap());
    assert!(
        !t.store.remove_station(&s.id).await.unwrap(),
        "a second removal finds nothing"
    );
    assert!(
        t.store
            .station_states(std::slice::from_ref(&s.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(t.store.count_events(Some(&s.id)).await.unwrap(), 1);
}

#[tokio::test]
async fn mysql_database_is_created_when_missing_and_errors_name_the_host() {
    let db = crate::helpers::TestDb::new();
    let store = csm::core::store::MySqlStore::connect(&db.url, 2).unwrap();
    store
        .migrate()
        .await
        .expect("creates the database and its tables");
    store.ping().await.unwrap();
    let unreachable =
        csm::core::store::MySqlStore::connect("mysql://root:pa55word@127.0.0.1:1/csm", 1).unwrap();
    let err = unreachable.migrate().await.unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("pa55word"), "{err}");
    let err = csm::core::store::connect("postgres://u:p@h/db", 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("mysql://") && !err.contains(":p@"), "{err}");
}

/// A value that differs in every field from its neighbours' (so a swapped column shows).
fn at(minutes: i64) -> chrono::DateTime<Utc> {
    csm::core::model::stored_precision(Utc::now() - Duration::minutes(minutes))
}

/// Every table, written through its record and read back field for field: a column whose
/// name and value parted (or a reader that reads another column) shows as a difference.
async fn every_table_reads_back_what_was_written(backend: Backend) {
    use csm::core::model::PortReading;
    use csm::core::model::alerts::{Channel, ChannelKind, DeliveryState};
    use csm::core::model::history::{HistoryQuery, HourDelta, HourTotals, ReadingRow, SessionRow};
    use csm::core::model::ocpp::ChargePointRecord;
    use csm::core::secret::Secret;
    use csm::core::store::{OpenAlert, OutboxRow};

    let t = test_store(backend).await;
    let store = &t.store;
    let id = StationId::parse("RT-1").unwrap();
    // stations
    let mut s = station("RT-1", "simulator", 7);
    s.lat = Some(31.5);
    s.lng = Some(117.25);
    s.enabled = false;
    store.add_station(&s).await.unwrap();
    assert_eq!(
        store.get_station(&id).await.unwrap(),
        Some(s.clone()),
        "stations"
    );

    // port_states, station_health, status_events, port_readings, sessions, the hours
    let port = PortStateRow {
        station_id: id.clone(),
        state: PortState {
            reading: PortReading {
                port: 3,
                status: PortStatus::Occupied,
                raw_code: Some("charging".into()),
                voltage: Some(221.5),
                current: Some(3.25),
                power: Some(719.875),
                energy_kwh: Some(1.125),
                session_ends_at: Some(at(-30)),
            },
            since: at(40),
        },
        observed_at: at(1),
    };
    let health = StationHealth {
        station_id: id.clone(),
        last_ok_at: Some(at(2)),
        last_error: Some("vendor: slow".into()),
        checked_at: at(0),
        failures: 4,
        counted_from: Some(at(50)),
    };
    let event = StatusEvent {
        station_id: id.clone(),
        port: 3,
        old: Some(PortStatus::Free),
        new: PortStatus::Occupied,
        at: at(40),
    };
    let reading = ReadingRow {
        station_id: id.clone(),
        port: 3,
        at: at(39),
        status: PortStatus::Occupied,
        voltage: Some(220.25),
        current: Some(2.5),
        power: Some(550.5),
        energy_kwh: Some(0.75),
    };
    let session = SessionRow {
        station_id: id.clone(),
        port: 3,
        started_at: at(90),
        ended_at: Some(at(45)),
        energy_kwh: Some(2.375),
    };
    let hour = csm::core::model::history::hour_of(at(120));
    let totals = HourTotals {
        secs: [11, 22, 33, 44, 55, 66, 77],
        sessions_started: 7,
        energy_kwh: 8.5,
    };
    let delta = HourDelta {
        station_id: id.clone(),
        port: 3,
        hour,
        totals,
    };
    store
        .apply(&WriteBatch {
            ports: vec![port.clone()],
            events: vec![event.clone()],
            health: vec![health.clone()],
            readings: vec![reading.clone()],
            sessions: vec![session.clone()],
            hours: vec![delta.clone()],
        })
        .await
        .unwrap();
    let states = store
        .station_states(std::slice::from_ref(&id))
        .await
        .unwrap();
    let state = &states[0];
    assert_eq!(state.ports, vec![port.state.clone()], "port_states");
    assert_eq!(
        (
            state.last_error.clone(),
            state.failures,
            state.counted_from,
            state.checked_at
        ),
        (
            health.last_error.clone(),
            health.failures,
            health.counted_from,
            health.checked_at
        ),
        "station_health"
    );
    let events = store
        .events(&EventQuery {
            station_id: Some(id.clone()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events, vec![event], "status_events");
    let everything = HistoryQuery {
        station_id: id.clone(),
        port: None,
        from: at(1_000),
        to: at(-1_000),
        limit: 100,
    };
    assert_eq!(
        store.readings(&everything).await.unwrap(),
        vec![reading],
        "port_readings"
    );
    assert_eq!(
        store.sessions(&everything).await.unwrap(),
        vec![session],
        "sessions"
    );
    let station_hours = store.hours(Some(&id), at(1_000), at(-1_000)).await.unwrap();
    assert_eq!(
        station_hours
            .iter()
            .map(|h| (h.hour, h.totals))
            .collect::<Vec<_>>(),
        [(hour, totals)],
        "station_hours"
    );
    let fleet_hours = store.hours(None, at(1_000), at(-1_000)).await.unwrap();
    assert_eq!(
        fleet_hours
            .iter()
            .map(|h| (h.hour, h.totals))
            .collect::<Vec<_>>(),
        [(hour, totals)],
        "fleet_hours"
    );
    // port_hours has no reader of its own yet: its columns, read as the database holds them.
    let port_hours = port_hour_columns(&t.url, backend).await;
    assert_eq!(port_hours, [11, 22, 33, 44, 55, 66, 77, 7], "port_hours");

    // ocpp_passwords, ocpp_charge_points
    store
        .set_charger_password(&id, Some("$pbkdf2-sha256$i=25000,l=32$c2FsdA$aGFzaA"))
        .await
        .unwrap();
    assert_eq!(
        store.charger_passwords().await.unwrap(),
        [(
            id.clone(),
            "$pbkdf2-sha256$i=25000,l=32$c2FsdA$aGFzaA".to_owned()
        )],
        "ocpp_passwords"
    );
    let record = ChargePointRecord {
        station_id: id.clone(),
        connected: true,
        connected_at: Some(at(30)),
        disconnected_at: Some(at(31)),
        last_message_at: Some(at(3)),
        last_action: Some("MeterValues".into()),
        vendor: Some("Alfen BV".into()),
        model: Some("NG910".into()),
        firmware: Some("5.8.1".into()),
        firmware_status: Some("Installed".into()),
        serial: Some("TACW2241A0012".into()),
        problem: Some("E-RCD (residual current device tripped)".into()),
        ocpp_version: Some(csm_core::ocpp::Version::V201),
        heartbeat_secs: 299,
    };
    store
        .write_charge_points(std::slice::from_ref(&record))
        .await
        .unwrap();
    assert_eq!(
        store.charge_points().await.unwrap(),
        [record],
        "ocpp_charge_points"
    );

    // alert_channels, alert_rules, alert_outbox, alert_open
    let alerts = store.alerts();
    let channel = Channel {
        name: "ops".into(),
        kind: ChannelKind::Feishu,
        url: "https://open.feishu.cn/open-apis/bot/v2/hook/x".into(),
        secret: Some(Secret::new("signing-secret")),
    };
    alerts.add_channel(&channel).await.unwrap();
    assert_eq!(
        alerts.channels().await.unwrap(),
        [channel],
        "alert_channels"
    );
    let rule = alerts.add_rule(r#"{"kind":"fault"}"#).await.unwrap();
    assert_eq!(
        alerts.rules().await.unwrap(),
        [(rule, r#"{"kind":"fault"}"#.to_owned())],
        "alert_rules"
    );
    let outbox = OutboxRow {
        id: "0123456789abcdef0123456789abcdef".into(),
        rule_id: rule,
        channel: "ops".into(),
        payload: r#"{"text":"故障"}"#.into(),
        state: DeliveryState::Failed,
        attempts: 3,
        last_error: Some("HTTP 500".into()),
        created_at: at(10),
        due_at: at(9),
        delivered_at: Some(at(8)),
    };
    let open = OpenAlert {
        rule_id: rule,
        station_id: id.clone(),
        port: 3,
        alert_id: outbox.id.clone(),
        opened_at: at(10),
    };
    alerts
        .record_alerts(
            std::slice::from_ref(&outbox),
            std::slice::from_ref(&open),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        alerts.alert_history(10).await.unwrap(),
        [outbox],
        "alert_outbox"
    );
    assert_eq!(alerts.open_alerts().await.unwrap(), [open], "alert_open");

    // api_tokens, audit_log
    let access = store.access();
    let (created, used, audited) = (at(20), at(2), at(1));
    let token = csm::core::model::access::TokenRecord {
        name: "alice@ops".into(),
        role: csm::core::model::access::Role::Operator,
        hash: "ab".repeat(32),
        created_at: created,
        last_used_at: None,
    };
    access.add_token(&token).await.unwrap();
    access.token_used("alice@ops", used).await.unwrap();
    assert_eq!(
        access.tokens().await.unwrap(),
        [csm::core::model::access::TokenRecord {
            last_used_at: Some(used),
            ..token
        }],
        "api_tokens"
    );
    let entry = csm::core::model::access::AuditEntry {
        id: 0,
        at: audited,
        actor: "alice@ops".into(),
        role: Some(csm::core::model::access::Role::Operator),
        address: "10.0.0.7".into(),
        method: "POST".into(),
        path: "/api/ocpp/charge-points/CP/commands?timeout_secs=5".into(),
        request: Some(r#"{"command":"Reset","type":"Hard"}"#.into()),
        status: 504,
        outcome: "charge point CP did not answer Reset within 5 s".into(),
    };
    access.append_audit(&entry).await.unwrap();
    let read = access.audit(at(100), at(-100), 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        csm::core::model::access::AuditEntry {
            id: 0,
            ..read[0].clone()
        },
        entry,
        "audit_log"
    );

    // ocpp_messages
    let frame = csm::core::model::ocpp::StoredFrame {
        id: 0,
        station_id: id.clone(),
        instance: "csm-a".into(),
        at: audited,
        direction: csm::core::model::ocpp::Direction::Out,
        connection: 1_796_625_128,
        action: Some("Reset".into()),
        frame: r#"[2,"csm-1","Reset",{"type":"Hard"}]"#.into(),
    };
    store
        .write_ocpp_messages(std::slice::from_ref(&frame))
        .await
        .unwrap();
    let read = store.ocpp_messages(&id, 0, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        csm::core::model::ocpp::StoredFrame {
            id: 0,
            ..read[0].clone()
        },
        frame,
        "ocpp_messages"
    );
}

/// The seconds per status and sessions started of the one row of `port_hours`, read with
/// plain SQL.
async fn port_hour_columns(url: &str, backend: Backend) -> Vec<i64> {
    let sql = "SELECT CAST(free_secs AS SIGNED) AS a, CAST(occupied_secs AS SIGNED) AS b, \
               CAST(fault_secs AS SIGNED) AS c, CAST(offline_secs AS SIGNED) AS d, \
               CAST(reserved_secs AS SIGNED) AS e, CAST(unavailable_secs AS SIGNED) AS f, \
               CAST(unknown_secs AS SIGNED) AS g, CAST(sessions_started AS SIGNED) AS h \
               FROM port_hours";
    let columns = ["a", "b", "c", "d", "e", "f", "g", "h"];
    match backend {
        Backend::Sqlite => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
            columns.iter().map(|c| row.get::<i64, _>(*c)).collect()
        }
        Backend::MySql => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::MySqlConnection::connect(url).await.unwrap();
            let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
            columns.iter().map(|c| row.get::<i64, _>(*c)).collect()
        }
    }
}
