//! OCPP 1.6J end to end: a charger (tokio-tungstenite, an independent client) connects to
//! `/ocpp/{id}`, boots, reports statuses and meter values, and its station shows them through
//! the API like any polled station; frames it gets wrong are answered and the socket stays.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::{Backend, CacheKind, TestApp, spawn_app_with};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn app(auto: bool) -> TestApp {
    spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(if auto {
            csm_core::settings::Registration::Auto
        } else {
            csm_core::settings::Registration::Known
        });
    })
    .await
}

pub(crate) async fn connect(
    app: &TestApp,
    id: &str,
    protocol: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}/ocpp/{id}", app.address)
        .into_client_request()
        .unwrap();
    if let Some(protocol) = protocol {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocol).unwrap(),
        );
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, response)| {
            if let Some(offered) = protocol {
                let chosen = response.headers()["sec-websocket-protocol"]
                    .to_str()
                    .unwrap();
                assert!(
                    csm_core::ocpp::Version::of_subprotocol(chosen).is_some()
                        && offered.split(',').any(|p| p.trim() == chosen),
                    "{chosen} of {offered}"
                );
            }
            socket
        })
}

pub(crate) async fn call(socket: &mut Socket, frame: &str) -> serde_json::Value {
    socket.send(Message::Text(frame.into())).await.unwrap();
    next_text(socket).await
}

pub(crate) async fn get_json(app: &TestApp, path: &str) -> serde_json::Value {
    app.client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn station(app: &TestApp, id: &str) -> serde_json::Value {
    get_json(app, &format!("/api/stations/{id}")).await
}

#[tokio::test]
async fn a_charger_boots_reports_and_shows_as_a_station() {
    let app = app(true).await;
    let mut socket = connect(&app, "CP-A1", Some("ocpp1.6")).await.unwrap();
    let boot = call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
    assert_eq!(
        (
            boot[0].as_u64(),
            boot[1].as_str(),
            boot[2]["status"].as_str()
        ),
        (Some(3), Some("b-1"), Some("Accepted"))
    );
    assert!(boot[2]["interval"].as_u64().unwrap() > 0);
    assert_eq!(
        call(
            &mut socket,
            include_str!("../fixtures/ocpp/status-charging.json")
        )
        .await,
        serde_json::json!([3, "s-1", {}])
    );
    assert_eq!(
        call(
            &mut socket,
            include_str!("../fixtures/ocpp/status-clock-1970.json")
        )
        .await,
        serde_json::json!([3, "s-3", {}])
    );
    assert_eq!(
        call(
            &mut socket,
            include_str!("../fixtures/ocpp/meter-three-phase.json")
        )
        .await,
        serde_json::json!([3, "m-1", {}])
    );
    // Refreshed beside the connection: shown a moment later.
    let shown = station_when(&app, "CP-A1", |s| {
        s["ports"].as_array().is_some_and(|p| p.len() == 2) && port(s, 1)["current"].is_number()
    })
    .await;
    let ports = shown["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "{shown}");
    assert_eq!(
        (ports[0]["status"].as_str(), ports[0]["current"].as_f64()),
        (Some("occupied"), Some(48.0))
    );
    assert_eq!(ports[1]["status"], "free");
    let since = ports[1]["since"].as_str().unwrap();
    assert!(since.starts_with("20"), "csm's clock, not 1970: {since}");
    let broken = call(
        &mut socket,
        include_str!("../fixtures/ocpp/bad-frame-truncated.txt"),
    )
    .await;
    assert_eq!(
        (broken[0].as_u64(), broken[2].as_str()),
        (Some(4), Some("FormationViolation"))
    );
    let unknown = call(
        &mut socket,
        include_str!("../fixtures/ocpp/unknown-action.json"),
    )
    .await;
    assert_eq!(
        (unknown[1].as_str(), unknown[2].as_str()),
        (Some("x-2"), Some("NotImplemented"))
    );
    let heartbeat = call(&mut socket, r#"[2, "h-1", "Heartbeat", {}]"#).await;
    assert!(
        heartbeat[2]["currentTime"].is_string(),
        "the socket stayed open: {heartbeat}"
    );
    let stop = call(
        &mut socket,
        include_str!("../fixtures/ocpp/stop-unknown-transaction.json"),
    )
    .await;
    assert_eq!(stop[2]["idTagInfo"]["status"], "Accepted");
    socket.close(None).await.unwrap();
    // Gone: its ports are offline, stale, with the reason.
    let mut gone = serde_json::Value::Null;
    for _ in 0..50 {
        gone = station(&app, "CP-A1").await;
        if gone["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        gone["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("not connected"),
        "{gone}"
    );
    assert_eq!(gone["stale"], true, "{gone}");
    let ports = gone["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "{gone}");
    for port in ports {
        assert_eq!(
            (
                &port["status"],
                &port["stale"],
                &port["power"],
                &port["raw_code"]
            ),
            (
                &serde_json::json!("offline"),
                &serde_json::json!(true),
                &serde_json::Value::Null,
                &serde_json::Value::Null
            ),
            "{gone}"
        );
    }
    assert_eq!(gone["summary"]["offline"], 2, "{gone}");
    let events = events_of(&app, "CP-A1").await;
    assert!(
        events
            .iter()
            .any(|e| e["port"] == 1 && e["old"] == "occupied" && e["new"] == "offline"),
        "{events:?}"
    );
    app.stop().await;
}

async fn events_of(app: &TestApp, id: &str) -> Vec<serde_json::Value> {
    let events = get_json(app, &format!("/api/stations/{id}/events")).await;
    events["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn chargers_without_ocpp_or_unknown_ones_are_refused_before_the_upgrade() {
    let app = app(false).await;
    let refused = |result: Result<Socket, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("upgraded"),
    };
    assert_eq!(
        refused(connect(&app, "CP-B1", None).await),
        400,
        "no subprotocol offered"
    );
    assert_eq!(
        refused(connect(&app, "CP-B1", Some("ocpp2.0, ocpp1.5")).await),
        400,
        "no version csm speaks"
    );
    assert_eq!(
        refused(connect(&app, "CP-B1", Some("ocpp2.0.1")).await),
        404,
        "registration is known-only, whatever the version"
    );
    assert_eq!(
        refused(connect(&app, "CP-B1", Some("ocpp1.6")).await),
        404,
        "registration is known-only"
    );
    assert_eq!(
        refused(connect(&app, "S0001", Some("ocpp1.6")).await),
        409,
        "a simulator station is not a charge point"
    );
    app.monitor
        .stations()
        .add(&crate::helpers::station("CP-B2", "ocpp", 1))
        .await
        .unwrap();
    for offered in ["ocpp2.0.1, ocpp1.6", "OCPP1.6"] {
        let socket = connect(&app, "CP-B2", Some(offered)).await;
        assert!(socket.is_ok(), "{offered}: {socket:?}");
    }
    let plain = app
        .client
        .get(app.url("/ocpp/CP-B1"))
        .header("Sec-WebSocket-Protocol", "ocpp1.6")
        .send()
        .await
        .unwrap();
    assert!(plain.status().is_client_error(), "{}", plain.status());
    assert_ne!(plain.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn a_newer_connection_replaces_the_old_one_which_is_closed_at_once() {
    let app = app(true).await;
    let mut first = connect(&app, "CP-C1", Some("ocpp1.6")).await.unwrap();
    call(&mut first, include_str!("../fixtures/ocpp/boot.json")).await;
    call(
        &mut first,
        include_str!("../fixtures/ocpp/status-charging.json"),
    )
    .await;
    // Its report is recorded before the new connection comes.
    station_when(&app, "CP-C1", |shown| {
        shown["ports"]
            .as_array()
            .is_some_and(|ports| ports.iter().any(|p| p["status"] == "occupied"))
    })
    .await;
    app.monitor.flush().await;
    let events_before = events_of(&app, "CP-C1").await.len();
    let mut second = connect(&app, "CP-C1", Some("ocpp1.6")).await.unwrap();
    // The old socket is closed at once, before it says anything; the new one keeps serving.
    let ended = tokio::time::timeout(Duration::from_secs(1), first.next())
        .await
        .expect("the replaced socket is closed within a second");
    assert!(
        matches!(ended, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
        "{ended:?}"
    );
    drop(first);
    // The old connection has ended on the server's side too: one socket is left.
    crate::helpers::eventually(
        Duration::from_secs(5),
        || async { app.monitor.ocpp().sockets() },
        |open| *open == 1,
    )
    .await;
    let heartbeat = call(&mut second, r#"[2, "h-1", "Heartbeat", {}]"#).await;
    assert!(heartbeat[2]["currentTime"].is_string());
    let shown = station(&app, "CP-C1").await;
    assert!(
        shown["last_error"].is_null(),
        "the old connection's end did not mark it gone: {shown}"
    );
    app.monitor.flush().await;
    assert_eq!(
        events_of(&app, "CP-C1").await.len(),
        events_before,
        "no status event (no offline) for the replaced connection"
    );
    app.stop().await;
}

async fn connect_as(
    app: &TestApp,
    id: &str,
    user: &str,
    password: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    connect_to(app.address, id, user, password).await
}

/// A charger's connection to the server at `address`, with Basic auth.
pub(crate) async fn connect_to(
    address: std::net::SocketAddr,
    id: &str,
    user: &str,
    password: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    use base64::Engine as _;
    let mut request = format!("ws://{address}/ocpp/{id}")
        .into_client_request()
        .unwrap();
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("ocpp1.6"),
    );
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

fn status_of(result: Result<Socket, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            if response.status() == 401 {
                let challenge = response.headers()["www-authenticate"].to_str().unwrap();
                assert!(challenge.starts_with("Basic"), "{challenge}");
            }
            response.status().as_u16()
        }
        Err(other) => panic!("{other}"),
        Ok(_) => 101,
    }
}

#[tokio::test]
async fn a_charger_with_a_password_must_send_it_and_a_wrong_one_gets_no_socket() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Known);
        c.server.admin_token = Some("tok".into());
    })
    .await;
    let added = app
        .client
        .post(app.url("/api/stations"))
        .bearer_auth("tok")
        .json(&serde_json::json!({"station_id": "CP-D1", "name": "地库 1 号", "vendor": "ocpp", "password": "sixteen-chars-ok!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let short = app
        .client
        .post(app.url("/api/stations"))
        .bearer_auth("tok")
        .json(&serde_json::json!({"station_id": "CP-D2", "name": "x", "vendor": "ocpp", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.client
            .get(app.url("/api/stations/CP-D2"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND,
        "a refused password stores no station"
    );
    assert_eq!(
        status_of(connect(&app, "CP-D1", Some("ocpp1.6")).await),
        401,
        "no credentials"
    );
    assert_eq!(
        status_of(connect_as(&app, "CP-D1", "CP-D1", "wrong-password-here").await),
        401
    );
    assert_eq!(
        status_of(connect_as(&app, "CP-D1", "CP-X9", "sixteen-chars-ok!").await),
        401,
        "user must be the id"
    );
    let mut socket = connect_as(&app, "CP-D1", "CP-D1", "sixteen-chars-ok!")
        .await
        .unwrap();
    let heartbeat = call(&mut socket, r#"[2, "h-1", "Heartbeat", {}]"#).await;
    assert!(heartbeat[2]["currentTime"].is_string());
    app.stop().await;

    let strict = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Auto);
        c.core.ocpp.require_password = true;
    })
    .await;
    assert_eq!(
        status_of(connect(&strict, "CP-E1", Some("ocpp1.6")).await),
        401
    );
    let none = strict
        .client
        .get(strict.url("/api/stations/CP-E1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        none.status(),
        StatusCode::NOT_FOUND,
        "a refused charger is not registered"
    );
    strict.stop().await;
}

#[tokio::test]
async fn a_charger_that_misses_its_heartbeats_goes_offline_and_pings_keep_the_socket_busy() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Auto);
        c.core.ocpp.heartbeat_secs = 1;
        c.core.ocpp.ping_secs = 1;
    })
    .await;
    let mut socket = connect(&app, "CP-F1", Some("ocpp1.6")).await.unwrap();
    let boot = call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
    assert_eq!(boot[2]["interval"], 1);
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/status-charging.json"),
    )
    .await;
    // Silent but connected: csm pings; after two intervals and a grace the charger is offline.
    let ping = tokio::time::timeout(Duration::from_secs(3), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(ping, Message::Ping(_)), "{ping:?}");
    // Nobody refreshes it: the connection notices the silence itself.
    let shown = station_when(&app, "CP-F1", |s| s["last_error"].is_string()).await;
    assert_eq!(shown["stale"], true, "{shown}");
    assert!(
        shown["last_error"]
            .as_str()
            .unwrap()
            .contains("has sent nothing since"),
        "{shown}"
    );
    assert_eq!(port(&shown, 1)["status"], "offline", "{shown}");
    // It speaks again: back at once.
    call(&mut socket, r#"[2, "h-2", "Heartbeat", {}]"#).await;
    let back = station_when(&app, "CP-F1", |s| s["last_error"].is_null()).await;
    assert_eq!(port(&back, 1)["status"], "occupied", "{back}");
    assert!(back["last_error"].is_null(), "{back}");
    app.stop().await;
}

/// The next frame from csm that is not a ping (tungstenite answers csm's pings).
pub(crate) async fn next_text(socket: &mut Socket) -> serde_json::Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn csm_configures_a_booted_charger_and_a_manual_refresh_triggers_its_status() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Auto);
        c.core.ocpp.meter_interval_secs = Some(15);
        c.core.manual_refresh.cooldown_secs = 0;
    })
    .await;
    let mut socket = connect(&app, "CP-G1", Some("ocpp1.6")).await.unwrap();
    call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
    let configure = next_text(&mut socket).await;
    assert_eq!(
        (configure[0].as_u64(), configure[2].as_str()),
        (Some(2), Some("ChangeConfiguration")),
        "{configure}"
    );
    assert_eq!(
        configure[3],
        serde_json::json!({"key": "MeterValueSampleInterval", "value": "15"})
    );
    let reply = serde_json::json!([3, configure[1], {"status": "Accepted"}]).to_string();
    socket.send(Message::Text(reply.into())).await.unwrap();
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/status-charging.json"),
    )
    .await;

    // The manual refresh waits for the charger's answer to TriggerMessage.
    let refresh = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/api/stations/CP-G1/refresh");
        async move { client.post(url).send().await.unwrap().status() }
    });
    let trigger = next_text(&mut socket).await;
    assert_eq!(
        (trigger[2].as_str(), &trigger[3]),
        (
            Some("TriggerMessage"),
            &serde_json::json!({"requestedMessage": "StatusNotification"})
        )
    );
    assert!(!refresh.is_finished(), "the refresh waits for the charger");
    let accepted = serde_json::json!([3, trigger[1], {"status": "Accepted"}]).to_string();
    socket.send(Message::Text(accepted.into())).await.unwrap();
    assert_eq!(refresh.await.unwrap(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn simulated_chargers_boot_charge_and_show_up_as_stations() {
    let app = app(true).await;
    let url = format!("ws://{}/ocpp", app.address);
    let argv = [
        "csm-cli",
        "simulate-ocpp",
        "--url",
        url.as_str(),
        "--chargers",
        "3",
        "--connectors",
        "2",
        "--session-secs",
        "1",
        "--meter-secs",
        "1",
        "--duration-secs",
        "5",
        "--prefix",
        "SIMT-",
    ];
    let cli = <csm::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    let mut out = Vec::new();
    csm::cli::run(cli, &mut out).await.unwrap();
    let printed = String::from_utf8(out).unwrap();
    let summary: serde_json::Value = serde_json::from_str(printed.lines().last().unwrap()).unwrap();
    assert_eq!(summary["connected"], 3, "{printed}");
    assert_eq!(summary["errors"], 0, "{printed}");
    assert!(summary["answers"].as_u64().unwrap() >= 9, "{printed}");
    for n in 1..=3 {
        let shown = station(&app, &format!("SIMT-{n:04}")).await;
        assert_eq!(shown["ports"].as_array().map(Vec::len), Some(2), "{shown}");
        assert_eq!(shown["vendor"], "ocpp");
    }
    let changes = events_of(&app, "SIMT-0001").await;
    assert!(
        changes.iter().any(|e| e["new"] == "occupied"),
        "a session started: {changes:?}"
    );
    app.stop().await;
}

/// A port of a station's answer (`null` while it has none of that number, so a predicate
/// waiting for it reads as not yet).
pub(crate) fn port(shown: &serde_json::Value, number: u64) -> serde_json::Value {
    shown["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["port"] == number))
        .cloned()
        .unwrap_or_default()
}

/// The station's answer once `ready` holds of it (changes are refreshed beside the
/// connection, and an answer is kept 250 ms).
pub(crate) async fn station_when(
    app: &TestApp,
    id: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut shown = serde_json::Value::Null;
    for _ in 0..100 {
        shown = station(app, id).await;
        if ready(&shown) {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the station never got there: {shown}");
}

pub(crate) fn near(value: &serde_json::Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 0.01)
}

#[tokio::test]
async fn every_message_a_charger_sends_is_answered_and_read() {
    let app = app(true).await;
    let mut socket = connect(&app, "CP-ALL", Some("ocpp1.6")).await.unwrap();
    let boot = call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
    assert_eq!(boot[2]["status"], "Accepted", "{boot}");
    let beat = call(&mut socket, r#"[2, "h-1", "Heartbeat", {}]"#).await;
    assert!(beat[2]["currentTime"].as_str().unwrap().starts_with("20"));
    for (frame, id) in [
        (include_str!("../fixtures/ocpp/status-charging.json"), "s-1"),
        (
            include_str!("../fixtures/ocpp/status-clock-1970.json"),
            "s-3",
        ),
    ] {
        assert_eq!(
            call(&mut socket, frame).await,
            serde_json::json!([3, id, {}])
        );
    }

    // Meter values, read by measurand, unit and phase.
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/meter-three-phase.json"),
    )
    .await;
    let shown = station_when(&app, "CP-ALL", |s| near(&port(s, 1)["power"], 11_040.0)).await;
    let one = port(&shown, 1);
    assert!(near(&one["voltage"], 230.47), "mean of the phases: {one}");
    assert!(near(&one["current"], 48.0), "L1+L2+L3, not N: {one}");
    assert!(near(&one["energy_kwh"], 1_523.4), "{one}");
    assert_eq!(
        (&one["status"], &one["raw_code"]),
        (&"occupied".into(), &"Charging".into())
    );
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/meter-no-unit-no-measurand.json"),
    )
    .await;
    let shown = station_when(&app, "CP-ALL", |s| near(&port(s, 1)["power"], 3_680.0)).await;
    assert!(near(&port(&shown, 1)["energy_kwh"], 20.48), "{shown}");
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/meter-celcius-and-empty.json"),
    )
    .await;
    station_when(&app, "CP-ALL", |s| near(&port(s, 1)["power"], 3_600.0)).await;
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/meter-kw-and-kwh.json"),
    )
    .await;
    let shown = station_when(&app, "CP-ALL", |s| near(&port(s, 2)["power"], 7_360.0)).await;
    let two = port(&shown, 2);
    assert!(
        near(&two["energy_kwh"], 12.5) && near(&two["current"], 32.0),
        "{two}"
    );

    // Sessions and the calls around them.
    let authorize = call(
        &mut socket,
        r#"[2, "a-1", "Authorize", {"idTag": "04A2B3C4D5E6F7"}]"#,
    )
    .await;
    assert_eq!(authorize[2]["idTagInfo"]["status"], "Accepted");
    let start = call(
        &mut socket,
        include_str!("../fixtures/ocpp/start-transaction.json"),
    )
    .await;
    let transaction = start[2]["transactionId"].as_i64().unwrap();
    assert!(transaction > i64::from(i32::MAX), "64-bit ids: {start}");
    assert_eq!(start[2]["idTagInfo"]["status"], "Accepted");
    let stop = format!(
        r#"[2, "t-3", "StopTransaction", {{"transactionId": {transaction}, "meterStop": 1530000, "timestamp": "2026-11-30T09:00:00Z"}}]"#
    );
    assert_eq!(
        call(&mut socket, &stop).await[2]["idTagInfo"]["status"],
        "Accepted"
    );
    let unknown_stop = call(
        &mut socket,
        include_str!("../fixtures/ocpp/stop-unknown-transaction.json"),
    )
    .await;
    assert_eq!(unknown_stop[2]["idTagInfo"]["status"], "Accepted");
    let data = call(
        &mut socket,
        r#"[2, "d-1", "DataTransfer", {"vendorId": "com.example", "messageId": "x", "data": "y"}]"#,
    )
    .await;
    assert_eq!(
        data,
        serde_json::json!([3, "d-1", {"status": "UnknownVendorId"}])
    );
    let firmware = call(
        &mut socket,
        r#"[2, "f-1", "FirmwareStatusNotification", {"status": "Downloaded"}]"#,
    )
    .await;
    assert_eq!(firmware, serde_json::json!([3, "f-1", {}]));
    let diagnostics = call(
        &mut socket,
        r#"[2, "g-1", "DiagnosticsStatusNotification", {"status": "Uploaded"}]"#,
    )
    .await;
    assert_eq!(diagnostics, serde_json::json!([3, "g-1", {}]));

    // Connector 0 is the charger: its fault marks every port, and no port 0 appears.
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/status-connector0-faulted.json"),
    )
    .await;
    let faulted = station_when(&app, "CP-ALL", |s| port(s, 2)["status"] == "fault").await;
    let ports = faulted["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "{faulted}");
    assert!(ports.iter().all(|p| {
        p["status"] == "fault"
            && p["raw_code"]
                .as_str()
                .is_some_and(|r| r.contains("GroundFailure") && r.contains("RCD tripped"))
    }));
    call(
        &mut socket,
        r#"[2, "s-9", "StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}]"#,
    )
    .await;
    station_when(&app, "CP-ALL", |s| port(s, 2)["status"] == "free").await;

    // What it gets wrong is answered, and the socket stays.
    let wrong = [
        (
            include_str!("../fixtures/ocpp/unknown-action.json"),
            "NotImplemented",
        ),
        (
            include_str!("../fixtures/ocpp/bad-frame-truncated.txt"),
            "FormationViolation",
        ),
        (r#"{"not": "a frame"}"#, "FormationViolation"),
        (
            r#"[2, "w-1", "StatusNotification", {"connectorId": "one", "errorCode": "NoError", "status": "Available"}]"#,
            "TypeConstraintViolation",
        ),
        (
            r#"[2, "w-2", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}]"#,
            "PropertyConstraintViolation",
        ),
    ];
    for (frame, code) in wrong {
        let answer = call(&mut socket, frame).await;
        assert_eq!(
            (answer[0].as_u64(), answer[2].as_str()),
            (Some(4), Some(code)),
            "{frame}: {answer}"
        );
    }
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut socket).await[2], "FormationViolation");
    let beat = call(&mut socket, r#"[2, "h-2", "Heartbeat", {}]"#).await;
    assert!(beat[2]["currentTime"].is_string(), "still open: {beat}");

    // The registry knows what it said of itself.
    let registry = get_json(&app, "/api/ocpp/charge-points").await;
    let point = &registry["charge_points"][0];
    assert_eq!(
        (
            &point["station_id"],
            &point["connection"],
            &point["vendor"],
            &point["firmware"],
            &point["firmware_status"],
            &point["last_action"]
        ),
        (
            &"CP-ALL".into(),
            &"connected".into(),
            &"Alfen BV".into(),
            &"5.8.1-4123".into(),
            &"Downloaded".into(),
            &"Heartbeat".into()
        ),
        "{registry}"
    );
    app.stop().await;
}

#[tokio::test]
async fn csm_cli_ocpp_status_reads_the_registry_the_server_writes() {
    let app = spawn_app_with(Backend::MySql, CacheKind::Redis, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Auto);
    })
    .await;
    let mut socket = connect(&app, "CP-R1", Some("ocpp1.6")).await.unwrap();
    call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/status-charging.json"),
    )
    .await;
    // Written within a second or so.
    let mut table = String::new();
    for _ in 0..40 {
        table = crate::cli::output_of(&app, &["ocpp", "status"]).await;
        if table.contains("StatusNotification") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for shown in [
        "CP-R1",
        "connected",
        "StatusNotification",
        "Alfen BV / NG910-60023",
        "5.8.1-4123",
        "1 of 1 connected",
    ] {
        assert!(table.contains(shown), "{shown} in:\n{table}");
    }
    let api = |path: &'static str| get_json(&app, path);
    let cli: serde_json::Value =
        serde_json::from_str(&crate::cli::output_of(&app, &["ocpp", "status", "--json"]).await)
            .unwrap();
    assert_eq!(cli, api("/api/ocpp/charge-points").await);
    assert_eq!(
        cli["charge_points"][0],
        api("/api/ocpp/charge-points/CP-R1").await
    );
    for (path, status) in [
        ("/api/ocpp/charge-points/S0001", StatusCode::NOT_FOUND),
        ("/api/ocpp/charge-points/NO-SUCH", StatusCode::NOT_FOUND),
        ("/api/ocpp/charge-points/bad%20id", StatusCode::BAD_REQUEST),
        ("/api/ocpp/charge-points?all=maybe", StatusCode::BAD_REQUEST),
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
    }

    // Gone: no longer listed, but `--all` and `?all=true` still know it.
    socket.close(None).await.unwrap();
    let mut cli = serde_json::Value::Null;
    for _ in 0..40 {
        cli = serde_json::from_str(
            &crate::cli::output_of(&app, &["ocpp", "status", "--all", "--json"]).await,
        )
        .unwrap();
        if cli["charge_points"][0]["connection"] == "disconnected" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cli["charge_points"][0]["connection"], "disconnected",
        "{cli}"
    );
    assert!(
        cli["charge_points"][0]["disconnected_at"].is_string(),
        "{cli}"
    );
    assert_eq!(cli, api("/api/ocpp/charge-points?all=true").await);
    let connected = api("/api/ocpp/charge-points").await;
    assert_eq!(
        connected["charge_points"],
        serde_json::json!([]),
        "{connected}"
    );
    let empty = crate::cli::output_of(&app, &["ocpp", "status"]).await;
    assert!(empty.contains("no charge point is connected"), "{empty}");
    app.stop().await;
}

#[tokio::test]
async fn csm_asks_a_charger_that_connects_and_says_nothing_for_its_status() {
    let app = app(false).await;
    app.monitor
        .stations()
        .add(&crate::helpers::station("CP-Q1", "ocpp", 2))
        .await
        .unwrap();
    let mut socket = connect(&app, "CP-Q1", Some("ocpp1.6")).await.unwrap();
    let waiting = station_when(&app, "CP-Q1", |s| s["last_error"].is_string()).await;
    assert!(
        waiting["last_error"]
            .as_str()
            .unwrap()
            .contains("has not reported"),
        "{waiting}"
    );
    let trigger = next_text(&mut socket).await;
    assert_eq!(
        (trigger[0].as_u64(), trigger[2].as_str(), &trigger[3]),
        (
            Some(2),
            Some("TriggerMessage"),
            &serde_json::json!({"requestedMessage": "StatusNotification"})
        ),
        "{trigger}"
    );
    let accepted = serde_json::json!([3, trigger[1], {"status": "Accepted"}]).to_string();
    socket.send(Message::Text(accepted.into())).await.unwrap();
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/status-clock-1970.json"),
    )
    .await;
    let live = station_when(&app, "CP-Q1", |s| s["last_error"].is_null()).await;
    assert_eq!(port(&live, 2)["status"], "free", "{live}");
    app.stop().await;
}

#[tokio::test]
async fn many_chargers_registering_themselves_at_once_all_get_in() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Auto);
        c.core.ocpp.auto_per_minute = 1_000;
    })
    .await;
    let boots = (0..200).map(|n| {
        let app = &app;
        async move {
            let mut socket = connect(app, &format!("CP-M{n:03}"), Some("ocpp1.6")).await?;
            let answer = call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
            Ok::<_, tokio_tungstenite::tungstenite::Error>((socket, answer))
        }
    });
    let booted: Vec<_> = futures_util::future::join_all(boots).await;
    let refused: Vec<String> = booted
        .iter()
        .filter_map(|b| match b {
            Err(error) => Some(error.to_string()),
            Ok((_, answer)) if answer[2]["status"] != "Accepted" => Some(answer.to_string()),
            Ok(_) => None,
        })
        .collect();
    assert!(refused.is_empty(), "{} refused: {refused:?}", refused.len());
    let sockets: Vec<_> = booted.into_iter().filter_map(Result::ok).collect();
    let listed: serde_json::Value = app
        .client
        .get(app.url("/api/stations?vendor=ocpp&view=summary&limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 200, "{listed}");
    drop(sockets);
    app.stop().await;
}

/// Sends an operator's command (with the admin token) in the background: its status and body.
pub(crate) fn command(
    app: &TestApp,
    id: &str,
    query: &str,
    body: serde_json::Value,
) -> tokio::task::JoinHandle<(StatusCode, serde_json::Value)> {
    let request = app
        .client
        .post(app.url(&format!("/api/ocpp/charge-points/{id}/commands{query}")))
        .bearer_auth("t")
        .json(&body);
    tokio::spawn(async move {
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    })
}

/// The charger's side of one call of csm's: the call (action and payload), answered with
/// `answer` (a result's payload, or a whole frame when it is an array).
pub(crate) async fn answer_call(
    socket: &mut Socket,
    answer: serde_json::Value,
) -> (String, serde_json::Value) {
    let call = next_text(socket).await;
    assert_eq!(call[0], 2, "a call: {call}");
    let frame = match answer {
        serde_json::Value::Array(mut frame) => {
            frame[1] = call[1].clone();
            serde_json::Value::Array(frame)
        }
        payload => serde_json::json!([3, call[1], payload]),
    };
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    (call[2].as_str().unwrap().to_owned(), call[3].clone())
}

#[tokio::test]
async fn operators_commands_reach_the_charger_are_checked_first_and_come_back_with_its_answer() {
    use serde_json::json;
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Auto);
        c.server.admin_token = Some("t".into());
    })
    .await;
    let mut socket = connect(&app, "CP-OP", Some("ocpp1.6")).await.unwrap();
    call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/status-charging.json"),
    )
    .await;
    let started = call(
        &mut socket,
        include_str!("../fixtures/ocpp/start-transaction.json"),
    )
    .await;
    let transaction = started[2]["transactionId"].as_i64().unwrap();

    // Each command becomes its OCPP call, and the charger's answer comes back.
    let reset = command(
        &app,
        "CP-OP",
        "",
        json!({"command": "Reset", "type": "Hard"}),
    );
    let (action, payload) = answer_call(&mut socket, json!({"status": "Accepted"})).await;
    assert_eq!(
        (action.as_str(), payload),
        ("Reset", json!({"type": "Hard"}))
    );
    let (status, body) = reset.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["action"].as_str(), body["status"].as_str()),
        (Some("Reset"), Some("Accepted"))
    );
    assert_eq!(body["answer"], json!({"status": "Accepted"}));

    let stop = command(
        &app,
        "CP-OP",
        "",
        json!({"command": "RemoteStopTransaction", "connector": 1}),
    );
    let (_, payload) = answer_call(&mut socket, json!({"status": "Accepted"})).await;
    assert_eq!(
        payload,
        json!({"transactionId": transaction}),
        "the transaction running on connector 1"
    );
    assert_eq!(stop.await.unwrap().0, StatusCode::OK);

    let read = command(
        &app,
        "CP-OP",
        "",
        json!({"command": "GetConfiguration", "keys": ["MeterValueSampleInterval", "Nope", "HeartbeatInterval"]}),
    );
    let answer = json!({
        "configurationKey": [
            {"key": "MeterValueSampleInterval", "readonly": false, "value": "60"},
            {"key": "HeartbeatInterval", "readonly": false, "value": "300"},
        ],
        "unknownKey": ["Nope"],
    });
    let (action, _) = answer_call(&mut socket, answer).await;
    assert_eq!(action, "GetConfiguration");
    let (status, body) = read.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["configuration"][0],
        json!({"key": "HeartbeatInterval", "value": "300", "readonly": false})
    );
    assert_eq!(body["unknown_keys"], json!(["Nope"]));

    // A key the charger does not have is refused before anything is changed.
    let change = command(
        &app,
        "CP-OP",
        "",
        json!({"command": "ChangeConfiguration", "key": "VendorThing", "value": "1"}),
    );
    let (action, payload) = answer_call(
        &mut socket,
        json!({"configurationKey": [], "unknownKey": ["VendorThing"]}),
    )
    .await;
    assert_eq!(
        (action.as_str(), payload),
        ("GetConfiguration", json!({"key": ["VendorThing"]}))
    );
    let (status, body) = change.await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("has no such configuration key"),
        "{body}"
    );

    // What cannot be right never reaches the charger: 400 with the reason, 422 for a body
    // that is not a command at all.
    for (bad, code, says) in [
        (
            json!({"command": "UnlockConnector", "connector": 4}),
            400,
            "reported connectors 1 only",
        ),
        (
            json!({"command": "ChangeConfiguration", "key": "HeartbeatInterval", "value": "soon"}),
            400,
            "takes a whole number",
        ),
        (
            json!({"command": "ChangeConfiguration", "key": "NumberOfConnectors", "value": "3"}),
            400,
            "read-only",
        ),
        (
            json!({"command": "Explode"}),
            422,
            "unknown variant `Explode`, expected one of `Reset`",
        ),
        (
            json!({"command": "Reset", "type": "Gently"}),
            422,
            "unknown variant `Gently`",
        ),
        (
            json!({"command": "UnlockConnector", "connector": "one"}),
            422,
            "invalid type",
        ),
    ] {
        let (status, body) = command(&app, "CP-OP", "", bad.clone()).await.unwrap();
        assert_eq!(status.as_u16(), code, "{bad}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{bad}: {body}"
        );
    }

    // One call at a time: the second waits for the first's answer.
    let first = command(&app, "CP-OP", "", json!({"command": "ClearCache"}));
    let second = command(
        &app,
        "CP-OP",
        "",
        json!({"command": "TriggerMessage", "message": "Heartbeat"}),
    );
    let call_one = next_text(&mut socket).await;
    let early = tokio::time::timeout(Duration::from_millis(300), socket.next()).await;
    assert!(
        early.is_err(),
        "a second call before the first was answered: {early:?}"
    );
    let error = json!([4, call_one[1], "NotImplemented", "no cache here", {}]);
    socket
        .send(Message::Text(error.to_string().into()))
        .await
        .unwrap();
    let (action, _) = answer_call(&mut socket, json!({"status": "Accepted"})).await;
    let mut answers = [first.await.unwrap(), second.await.unwrap()];
    answers.sort_by_key(|(status, _)| *status);
    let (call_two, _) = (action, ());
    assert_eq!(answers[0].0, StatusCode::OK, "{call_two}: {}", answers[0].1);
    assert_eq!(answers[1].0, StatusCode::BAD_GATEWAY, "{}", answers[1].1);
    assert!(
        answers[1].1["error"]
            .as_str()
            .unwrap()
            .contains("NotImplemented: no cache here"),
        "{}",
        answers[1].1
    );

    // A charger that does not answer: the command ends at its timeout.
    let (status, body) = command(
        &app,
        "CP-OP",
        "?timeout_secs=1",
        json!({"command": "TriggerMessage", "message": "StatusNotification", "connector": 1}),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("did not answer TriggerMessage within 1 s"),
        "{body}"
    );
    let _unanswered = next_text(&mut socket).await;

    // Who may: the admin token is needed.
    let anonymous = app
        .client
        .post(app.url("/api/ocpp/charge-points/CP-OP/commands"))
        .json(&json!({"command": "ClearCache"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The message log: both directions, the answers named by their call, id tags masked.
    let messages_of = |query: String| {
        let request = app
            .client
            .get(app.url(&format!("/api/ocpp/charge-points/CP-OP/messages{query}")))
            .bearer_auth("t");
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let log = messages_of(String::new()).await;
    let messages = log["messages"].as_array().unwrap();
    assert_eq!(log["connected"], true);
    assert_eq!(messages[0]["direction"], "note");
    assert!(
        messages[0]["frame"].as_str().unwrap().contains("opened"),
        "{}",
        messages[0]
    );
    let boot = &messages[1];
    assert_eq!(
        (boot["direction"].as_str(), boot["action"].as_str()),
        (Some("in"), Some("BootNotification"))
    );
    assert_eq!(messages[2]["direction"], "out");
    let text = log.to_string();
    assert!(
        !text.contains("04A2B3C4D5E6F7"),
        "an id tag in full: {text}"
    );
    assert!(text.contains(r#"\"idTag\":\"04…\""#), "{text}");
    let reset_answer = messages
        .iter()
        .find(|m| m["direction"] == "in" && m["action"] == "Reset")
        .expect("the answer to Reset, named");
    let seq = reset_answer["seq"].as_u64().unwrap();
    let newer = messages_of(format!("?after={seq}&limit=2")).await;
    let newer = newer["messages"].as_array().unwrap();
    assert_eq!(newer.len(), 2);
    assert!(newer.iter().all(|m| m["seq"].as_u64().unwrap() > seq));
    assert_eq!(
        newer[1]["seq"],
        messages.last().unwrap()["seq"],
        "the newest"
    );

    // A charger that is not connected.
    drop(socket);
    crate::helpers::eventually(
        Duration::from_secs(10),
        || messages_of(String::new()),
        |log| log["connected"] == false,
    )
    .await;
    let (status, body) = command(&app, "CP-OP", "", json!({"command": "ClearCache"}))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("is not connected"),
        "{body}"
    );
    let log = messages_of(String::new()).await;
    assert_eq!(log["connected"], false);
    assert!(
        log["messages"].as_array().unwrap().last().unwrap()["frame"]
            .as_str()
            .unwrap()
            .contains("closed"),
        "{log}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_message_log_kept_in_the_database_outlives_the_connection_and_reads_from_there() {
    let app = spawn_app_with(Backend::MySql, CacheKind::Redis, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Auto);
        c.core.ocpp.log_database = true;
        c.server.admin_token = Some("t".into());
    })
    .await;
    let mut socket = connect(&app, "CP-DBLOG", Some("ocpp1.6")).await.unwrap();
    call(&mut socket, include_str!("../fixtures/ocpp/boot.json")).await;
    call(
        &mut socket,
        include_str!("../fixtures/ocpp/start-transaction.json"),
    )
    .await;
    drop(socket);
    let read = |after: u64| {
        let request = app
            .client
            .get(app.url(&format!(
                "/api/ocpp/charge-points/CP-DBLOG/messages?after={after}"
            )))
            .bearer_auth("t");
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    // Written within a second or two; the closing note last.
    let log = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let log = read(0).await;
            let frames = log["messages"].as_array().cloned().unwrap_or_default();
            if frames
                .last()
                .is_some_and(|f| f["frame"].as_str().unwrap_or("").contains("closed"))
            {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the log reaches the database"));
    let frames = log["messages"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = frames
        .iter()
        .map(|f| {
            (
                f["direction"].as_str().unwrap(),
                f["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("note", ""),
            ("in", "BootNotification"),
            ("out", "BootNotification"),
            ("in", "StartTransaction"),
            ("out", "StartTransaction"),
            ("note", "")
        ],
        "{log}"
    );
    assert_eq!(log["connected"], false);
    let text = log.to_string();
    assert!(
        !text.contains("04A2B3C4D5E6F7") && text.contains(r#"\"idTag\":\"04…\""#),
        "{text}"
    );
    let ids: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let newer = read(ids[3]).await;
    assert_eq!(newer["messages"].as_array().unwrap().len(), 2);
    // The rows themselves.
    let id = csm_core::model::StationId::parse("CP-DBLOG").unwrap();
    let stored = app.store.store.ocpp_messages(&id, 0, 100).await.unwrap();
    assert_eq!(stored.len(), 6);
    app.stop().await;
}
