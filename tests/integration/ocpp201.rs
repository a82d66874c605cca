//! OCPP 2.0.1 end to end on the same endpoint as 1.6: a charger offering `ocpp2.0.1` (and
//! 1.6) gets the version csm prefers, every sample of `tests/fixtures/ocpp201` is answered and
//! read as its README says, the registry and the station show what it said, and the operators'
//! commands reach it as 2.0.1 messages (or are refused when 2.0.1 has no such command).

use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, CacheKind, TestApp, spawn_app_with};
use crate::ocpp::{answer_call, app, call, command, get_json, near, next_text, port, station_when};

/// A charger's socket offering `offered`, and the subprotocol csm answered with.
async fn open(app: &TestApp, id: &str, offered: &str) -> (crate::ocpp::Socket, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ocpp/{id}", app.address)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", offered.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let chosen = response.headers()["sec-websocket-protocol"]
        .to_str()
        .unwrap()
        .to_owned();
    (socket, chosen)
}

fn fixture(name: &str) -> &'static str {
    match name {
        "boot" => include_str!("../fixtures/ocpp201/boot.json"),
        "occupied" => include_str!("../fixtures/ocpp201/status-occupied.json"),
        "faulted2" => include_str!("../fixtures/ocpp201/status-second-evse-faulted.json"),
        "event" => include_str!("../fixtures/ocpp201/notify-event-availability.json"),
        "started" => include_str!("../fixtures/ocpp201/transaction-started.json"),
        "updated" => include_str!("../fixtures/ocpp201/transaction-updated-three-phase.json"),
        "ended" => include_str!("../fixtures/ocpp201/transaction-ended.json"),
        "meter" => include_str!("../fixtures/ocpp201/meter-values-default-units.json"),
        "security" => include_str!("../fixtures/ocpp201/security-event.json"),
        "unknown" => include_str!("../fixtures/ocpp201/unknown-action.json"),
        _ => unreachable!("no fixture {name}"),
    }
}

#[tokio::test]
async fn a_charger_offering_both_versions_speaks_2_0_1_unless_csm_prefers_1_6() {
    let app = app(true).await;
    let (_socket, chosen) = open(&app, "CP-V1", "ocpp1.6, ocpp2.0.1").await;
    assert_eq!(chosen, "ocpp2.0.1", "2.0.1 is preferred by default");
    let (_socket, chosen) = open(&app, "CP-V2", "ocpp1.6").await;
    assert_eq!(chosen, "ocpp1.6");
    app.stop().await;

    let older = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Auto);
        c.core.ocpp.preferred_version = csm_core::ocpp::Version::V16;
    })
    .await;
    let (mut socket, chosen) = open(&older, "CP-V3", "ocpp2.0.1, ocpp1.6").await;
    assert_eq!(chosen, "ocpp1.6", "CSM_OCPP_PREFERRED_VERSION=1.6");
    // Spoken to in 1.6: a 2.0.1 boot lacks 1.6's fields.
    let boot = call(&mut socket, fixture("boot")).await;
    assert_eq!(boot[0], 4, "{boot}");
    older.stop().await;
}

#[tokio::test]
async fn every_2_0_1_sample_is_answered_and_read_over_a_real_socket() {
    let app = app(true).await;
    let (mut socket, chosen) = open(&app, "CP-201", "ocpp2.0.1").await;
    assert_eq!(chosen, "ocpp2.0.1");

    let boot = call(&mut socket, fixture("boot")).await;
    assert_eq!((boot[0].as_u64(), boot[1].as_str()), (Some(3), Some("b-1")));
    assert_eq!(boot[2]["status"], "Accepted");
    assert!(
        boot[2]["currentTime"].is_string() && boot[2]["interval"].is_u64(),
        "{boot}"
    );
    for (name, id) in [("occupied", "s-1"), ("faulted2", "s-2")] {
        assert_eq!(call(&mut socket, fixture(name)).await, json!([3, id, {}]));
    }
    let shown = station_when(&app, "CP-201", |s| {
        port(s, 1)["status"] == "occupied" && port(s, 2)["status"] == "fault"
    })
    .await;
    assert_eq!(port(&shown, 1)["raw_code"], "Occupied");

    assert_eq!(
        call(&mut socket, fixture("event")).await,
        json!([3, "e-1", {}])
    );
    let shown = station_when(&app, "CP-201", |s| port(s, 2)["status"] == "free").await;
    assert!(
        port(&shown, 2)["raw_code"]
            .as_str()
            .is_some_and(|raw| raw.contains("E-RCD")),
        "the station's problem: {shown}"
    );

    assert_eq!(
        call(&mut socket, fixture("started")).await,
        json!([3, "t-1", {}])
    );
    let updated = call(&mut socket, fixture("updated")).await;
    assert_eq!(updated, json!([3, "t-2", {}]));
    let shown = station_when(&app, "CP-201", |s| near(&port(s, 1)["power"], 11_040.0)).await;
    let one = port(&shown, 1);
    assert!(near(&one["voltage"], 230.47), "{one}");
    assert!(
        near(&one["current"], 48.0),
        "the neutral is not added: {one}"
    );
    assert!(
        near(&one["energy_kwh"], 1.8),
        "counted from the start's register: {one}"
    );

    assert_eq!(
        call(&mut socket, fixture("ended")).await,
        json!([3, "t-3", {}])
    );
    let shown = station_when(&app, "CP-201", |s| near(&port(s, 1)["energy_kwh"], 9.2)).await;
    assert_eq!(
        port(&shown, 1)["status"],
        "occupied",
        "until its next status"
    );
    // The cable comes out: the session closes with the energy it delivered.
    let free = r#"[2,"s-9","StatusNotification",{"timestamp":"2026-12-06T09:03:00.000Z","connectorStatus":"Available","evseId":1,"connectorId":1}]"#;
    call(&mut socket, free).await;
    station_when(&app, "CP-201", |s| port(s, 1)["status"] == "free").await;
    app.monitor.flush().await;
    let sessions = get_json(&app, "/api/stations/CP-201/sessions").await;
    let session = sessions["sessions"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["port"] == 1))
        .unwrap_or_else(|| panic!("a session on port 1: {sessions}"));
    assert!(near(&session["energy_kwh"], 9.2), "{session}");

    assert_eq!(
        call(&mut socket, fixture("meter")).await,
        json!([3, "m-1", {}])
    );
    let shown = station_when(&app, "CP-201", |s| near(&port(s, 2)["power"], 3_680.0)).await;
    let two = port(&shown, 2);
    assert!(
        near(&two["current"], 16.0) && near(&two["voltage"], 230.0),
        "{two}"
    );
    assert!(
        near(&two["energy_kwh"], 3.68),
        "a bare value is the register in Wh: {two}"
    );

    assert_eq!(
        call(&mut socket, fixture("security")).await,
        json!([3, "x-1", {}])
    );
    let unknown = call(&mut socket, fixture("unknown")).await;
    assert_eq!(
        (
            unknown[0].as_u64(),
            unknown[1].as_str(),
            unknown[2].as_str()
        ),
        (Some(4), Some("x-2"), Some("NotImplemented"))
    );
    socket
        .send(Message::Text(r#"[2,"b-9","Heartbeat""#.into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut socket).await[2], "FormatViolation");

    // The registry shows the version and what the charger said of itself.
    let registry = get_json(&app, "/api/ocpp/charge-points/CP-201").await;
    assert_eq!(registry["ocpp_version"], "2.0.1", "{registry}");
    assert_eq!(registry["vendor"], "ABB");
    assert_eq!(registry["serial"], "TACW2241A0012");
    assert_eq!(registry["firmware"], "1.6.12");
    assert_eq!(
        registry["problem"],
        "E-RCD (residual current device tripped)"
    );
    // The message log names the version of the connection, and keeps the frames.
    let id = csm_core::model::StationId::parse("CP-201").unwrap();
    let log = app.monitor.ocpp().messages(&id, 0, 200).await.unwrap();
    assert!(
        log.messages[0].frame.contains("(OCPP 2.0.1)"),
        "{:?}",
        log.messages[0]
    );
    assert!(
        log.messages
            .iter()
            .any(|m| m.action.as_deref() == Some("TransactionEvent"))
    );
    app.stop().await;
}

#[tokio::test]
async fn operators_commands_reach_a_2_0_1_charger_as_2_0_1_messages() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Auto);
        c.server.admin_token = Some("t".into());
    })
    .await;
    let (mut socket, _) = open(&app, "CP-OP2", "ocpp2.0.1").await;
    call(&mut socket, fixture("boot")).await;
    call(&mut socket, fixture("occupied")).await;
    call(&mut socket, fixture("faulted2")).await;
    call(&mut socket, fixture("started")).await;

    let reset = command(
        &app,
        "CP-OP2",
        "",
        json!({"command": "Reset", "type": "OnIdle"}),
    );
    let (action, payload) = answer_call(&mut socket, json!({"status": "Scheduled"})).await;
    assert_eq!(
        (action.as_str(), payload),
        ("Reset", json!({"type": "OnIdle"}))
    );
    let (status, body) = reset.await.unwrap();
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("Scheduled")),
        "{body}"
    );

    let unlock = command(
        &app,
        "CP-OP2",
        "",
        json!({"command": "UnlockConnector", "connector": 2}),
    );
    let (action, payload) = answer_call(&mut socket, json!({"status": "Unlocked"})).await;
    assert_eq!(
        (action.as_str(), payload),
        ("UnlockConnector", json!({"evseId": 2, "connectorId": 1}))
    );
    assert_eq!(unlock.await.unwrap().0, StatusCode::OK);

    let get = command(
        &app,
        "CP-OP2",
        "",
        json!({"command": "GetVariables", "variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"}]}),
    );
    let (action, payload) = answer_call(
        &mut socket,
        json!({"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "300",
            "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}),
    )
    .await;
    assert_eq!(action, "GetVariables");
    assert_eq!(
        payload,
        json!({"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
    );
    let (status, body) = get.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["variables"],
        json!([{"component": "OCPPCommCtrlr", "evse": null, "variable": "HeartbeatInterval",
            "instance": null, "value": "300", "status": "Accepted"}])
    );

    // GetBaseReport: accepted, then the report comes in two NotifyReports.
    let report = command(
        &app,
        "CP-OP2",
        "?timeout_secs=5",
        json!({"command": "GetBaseReport", "report": "ConfigurationInventory"}),
    );
    let (action, payload) = answer_call(&mut socket, json!({"status": "Accepted"})).await;
    assert_eq!(action, "GetBaseReport");
    let request = payload["requestId"].as_i64().unwrap();
    for (seq, tbc, name) in [(0, true, "OCPPCommCtrlr"), (1, false, "SampledDataCtrlr")] {
        let part = json!([2, format!("r-{seq}"), "NotifyReport", {"requestId": request,
            "generatedAt": "2026-12-06T08:00:00.000Z", "seqNo": seq, "tbc": tbc,
            "reportData": [{"component": {"name": name}, "variable": {"name": "Enabled"},
                "variableAttribute": [{"value": "true", "mutability": "ReadWrite"}]}]}]);
        assert_eq!(
            call(&mut socket, &part.to_string()).await,
            json!([3, format!("r-{seq}"), {}])
        );
    }
    let (status, body) = report.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["report"]["complete"], true, "{body}");
    let names: Vec<_> = body["report"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["component"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["OCPPCommCtrlr", "SampledDataCtrlr"]);

    let stop = command(
        &app,
        "CP-OP2",
        "",
        json!({"command": "RemoteStopTransaction", "connector": 1}),
    );
    let (action, payload) = answer_call(&mut socket, json!({"status": "Accepted"})).await;
    assert_eq!(
        (action.as_str(), payload),
        (
            "RequestStopTransaction",
            json!({"transactionId": "9f6c1d2e-4b7a-4c3e-8a51-0d2f7e6b3a90"})
        )
    );
    assert_eq!(stop.await.unwrap().0, StatusCode::OK);

    // What 2.0.1 does not have is refused before anything is sent, naming what it has.
    for (body, says) in [
        (json!({"command": "GetConfiguration"}), "use GetVariables"),
        (
            json!({"command": "ChangeConfiguration", "key": "HeartbeatInterval", "value": "60"}),
            "use SetVariables",
        ),
        (
            json!({"command": "Reset", "type": "Soft"}),
            "Immediate or OnIdle",
        ),
        (
            json!({"command": "TriggerMessage", "message": "DiagnosticsStatusNotification"}),
            "OCPP 1.6 only",
        ),
    ] {
        let (status, answer) = command(&app, "CP-OP2", "", body.clone()).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("speaks OCPP 2.0.1") && error.contains(says),
            "{error}"
        );
    }
    app.stop().await;
}
