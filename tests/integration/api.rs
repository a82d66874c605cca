//! The HTTP API through `spawn_app()`: reads, errors, the admin token, manual refresh and its
//! cool-down, compression, OpenAPI, metrics and live events — on SQLite with the in-process
//! cache and on MariaDB with Redis.

use std::time::Duration;

use csm::core::model::PortStatus;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, CacheKind, SCRIPTED, TestApp, reading, spawn_app, spawn_app_with};

async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn refresh_all_now(app: &TestApp) {
    let stations = app.monitor.stations().all().await.unwrap().to_vec();
    app.monitor.refresh().many(stations, |_| {}).await;
    app.monitor.flush().await;
}

/// An app (SQLite, in-process cache, admin token `t`) holding one station of the scripted vendor.
async fn app_with_scripted_station(id: &str, name: &str) -> TestApp {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |s| {
        s.server.admin_token = Some("t".into())
    })
    .await;
    let add = app
        .client
        .post(app.url("/api/stations"))
        .bearer_auth("t")
        .json(&serde_json::json!({"station_id": id, "name": name, "vendor": SCRIPTED}))
        .send()
        .await
        .unwrap();
    assert_eq!(add.status(), StatusCode::CREATED);
    app
}

crate::helpers::on_each!(
    sqlite_memory(Backend::Sqlite, CacheKind::Memory),
    mysql_redis(Backend::MySql, CacheKind::Redis) =>

    reads_use_the_original_keys,
    manual_refresh_has_a_cool_down,
    a_client_that_has_the_answer_gets_304_until_it_changes,
    the_list_carries_each_stations_ports_unless_asked_for_the_summary
);

/// A document without the moment it was made (`timestamp` of the answer itself).
fn undated(mut document: Value) -> Value {
    if let Some(object) = document.as_object_mut() {
        object.remove("timestamp");
    }
    document
}

async fn the_list_carries_each_stations_ports_unless_asked_for_the_summary(
    backend: Backend,
    cache: CacheKind,
) {
    let app = spawn_app_with(backend, cache, |_| {}).await;
    refresh_all_now(&app).await;
    let (status, full) = get_json(&app, "/api/stations").await;
    assert_eq!(status, StatusCode::OK);
    let stations = full["stations"].as_array().unwrap();
    assert_eq!(stations.len(), 3);
    for listed in stations {
        // The migrating client's read: stations[i].ports, each with the original keys.
        let id = listed["station_id"].as_str().unwrap();
        let ports = listed["ports"]
            .as_array()
            .unwrap_or_else(|| panic!("no ports: {listed}"));
        assert_eq!(
            ports.len() as u64,
            listed["summary"]["total"].as_u64().unwrap()
        );
        for key in ["port", "status", "voltage", "current", "timestamp"] {
            assert!(ports[0].get(key).is_some(), "{key} missing: {}", ports[0]);
        }
        let (_, detail) = get_json(&app, &format!("/api/stations/{id}")).await;
        assert_eq!(
            undated(listed.clone()),
            undated(detail),
            "the list's {id} is its detail"
        );
    }
    let (status, summary) = get_json(&app, "/api/stations?view=summary").await;
    assert_eq!(status, StatusCode::OK);
    for listed in summary["stations"].as_array().unwrap() {
        assert!(
            listed.get("ports").is_none(),
            "no ports in the summary view: {listed}"
        );
        assert!(listed["summary"]["total"].as_u64().unwrap() > 0);
    }
    // Paging, search and filters pick the same stations in both views.
    let ids = |list: &Value| -> Vec<String> {
        list["stations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["station_id"].as_str().unwrap().to_owned())
            .collect()
    };
    for query in [
        "",
        "q=S0002",
        "limit=2&offset=1",
        "status=free",
        "ids=S0003,S0001",
        "vendor=simulator&limit=1",
    ] {
        let (_, full) = get_json(&app, &format!("/api/stations?{query}")).await;
        let (_, light) = get_json(&app, &format!("/api/stations?{query}&view=summary")).await;
        assert_eq!(ids(&full), ids(&light), "{query}");
        assert_eq!(full["total"], light["total"], "{query}");
    }
    let (status, bad) = get_json(&app, "/api/stations?view=everything").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"].as_str().unwrap().contains("full, summary"),
        "{bad}"
    );
    app.stop().await;
}

async fn reads_use_the_original_keys(backend: Backend, cache: CacheKind) {
    let app = spawn_app_with(backend, cache, |_| {}).await;
    refresh_all_now(&app).await;
    let (status, list) = get_json(&app, "/api/stations").await;
    assert_eq!(status, StatusCode::OK);
    let stations = list["stations"].as_array().unwrap();
    assert_eq!(stations.len(), 3);
    let first = &stations[0];
    for key in [
        "station_id",
        "name",
        "summary",
        "updated_at",
        "stale",
        "last_error",
    ] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    assert_eq!(first["stale"], false);
    let id = first["station_id"].as_str().unwrap();
    let (status, detail) = get_json(&app, &format!("/api/stations/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let ports = detail["ports"].as_array().unwrap();
    assert_eq!(
        ports.len() as u64,
        first["summary"]["total"].as_u64().unwrap()
    );
    for port in ports {
        for key in [
            "port",
            "status",
            "voltage",
            "current",
            "power",
            "timestamp",
            "since",
        ] {
            assert!(port.get(key).is_some(), "{key} missing: {port}");
        }
        if port["status"] == "fault" {
            assert!(
                port["voltage"].is_null(),
                "no reading is invented for a faulty port: {port}"
            );
        }
    }
    let (status, default) = get_json(&app, "/api/ports").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(default["station_id"], stations[0]["station_id"]);
    let (status, filtered) = get_json(&app, "/api/stations?q=S0002").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(filtered["stations"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["total"], 1);
    let (_, past_the_end) = get_json(&app, "/api/stations?q=S0002&offset=5&limit=2").await;
    assert_eq!(
        past_the_end["total"], 1,
        "total counts the matches, not the offset"
    );
    assert!(past_the_end["stations"].as_array().unwrap().is_empty());
    // Paging: the pages together are the whole list, in the same order.
    let (_, all) = get_json(&app, "/api/stations").await;
    let ids = |list: &Value| -> Vec<String> {
        list["stations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["station_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let everyone = ids(&all);
    assert_eq!(all["total"], everyone.len());
    let mut paged = Vec::new();
    for offset in (0..everyone.len() + 2).step_by(2) {
        let (status, page) =
            get_json(&app, &format!("/api/stations?limit=2&offset={offset}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total"], everyone.len(), "total counts every page");
        paged.extend(ids(&page));
    }
    assert_eq!(paged, everyone);
    // By port status, paged: the stations whose summary counts a free port, in order.
    let with_free: Vec<String> = all["stations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["summary"]["free"].as_u64().unwrap() > 0)
        .map(|s| s["station_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!with_free.is_empty(), "the fleet has free ports: {all}");
    let (status, free) = get_json(&app, "/api/stations?status=free").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&free), with_free);
    assert_eq!(free["total"], with_free.len());
    let (_, second) = get_json(&app, "/api/stations?status=free&limit=1&offset=1").await;
    assert_eq!(
        ids(&second),
        with_free[1..].iter().take(1).cloned().collect::<Vec<_>>()
    );
    assert_eq!(second["total"], with_free.len(), "total counts every match");
    // A chosen few (a user's favourites), in the list's order, unknown ids ignored.
    let (status, chosen) = get_json(
        &app,
        &format!("/api/stations?ids={},nope,{}", everyone[1], everyone[0]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&chosen), [everyone[0].clone(), everyone[1].clone()]);
    assert_eq!(chosen["total"], 2);
    let (_, none) = get_json(&app, "/api/stations?ids=").await;
    assert_eq!(none["total"], 0);
    app.stop().await;
}

async fn manual_refresh_has_a_cool_down(backend: Backend, cache: CacheKind) {
    let app = spawn_app_with(backend, cache, |s| s.core.manual_refresh.cooldown_secs = 30).await;
    let first = app
        .client
        .post(app.url("/api/stations/S0001/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["result"], "ok");
    assert!(!body["station"]["ports"].as_array().unwrap().is_empty());
    let second = app
        .client
        .post(app.url("/api/stations/S0001/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body: Value = second.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("refreshed moments ago")
    );
    assert_eq!(body["retry_after_secs"], retry_after);
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let long = "9".repeat(300);
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "GET",
            "/api/stations/NOPE".into(),
            StatusCode::NOT_FOUND,
            "station NOPE not found",
        ),
        (
            "GET",
            "/api/stations/..%2F..%2Fetc%2Fpasswd".into(),
            StatusCode::BAD_REQUEST,
            "station id contains '/'",
        ),
        (
            "GET",
            "/api/stations/x'%20OR%201=1--".into(),
            StatusCode::BAD_REQUEST,
            "station id contains",
        ),
        (
            "GET",
            format!("/api/stations/{long}"),
            StatusCode::BAD_REQUEST,
            "the limit is 64",
        ),
        (
            "GET",
            "/api/stations/%FF%FE".into(),
            StatusCode::BAD_REQUEST,
            "station id in the path",
        ),
        (
            "GET",
            "/api/stations?status=busy".into(),
            StatusCode::BAD_REQUEST,
            "unknown variant `busy`",
        ),
        (
            "GET",
            "/api/stations?colour=red".into(),
            StatusCode::BAD_REQUEST,
            "unknown field `colour`",
        ),
        (
            "GET",
            "/api/stations?limit=0".into(),
            StatusCode::BAD_REQUEST,
            "limit 0 is outside 1..=10000",
        ),
        (
            "GET",
            "/api/stations?ids=S1,bad%20id".into(),
            StatusCode::BAD_REQUEST,
            "ids: ",
        ),
        (
            "GET",
            format!("/api/stations?ids={}", vec!["S1"; 1001].join(",")),
            StatusCode::BAD_REQUEST,
            "ids names 1001 stations; the limit is 1000",
        ),
        (
            "GET",
            "/api/stations?offset=-1".into(),
            StatusCode::BAD_REQUEST,
            "query string",
        ),
        (
            "GET",
            "/api/stations/S0001/events?limit=0".into(),
            StatusCode::BAD_REQUEST,
            "limit 0 is outside",
        ),
        (
            "GET",
            "/api/stations/S0001/events?since=yesterday".into(),
            StatusCode::BAD_REQUEST,
            "query string",
        ),
        (
            "GET",
            "/api/nothing-here".into(),
            StatusCode::NOT_FOUND,
            "no endpoint at /api/nothing-here",
        ),
        (
            "PUT",
            "/api/stations".into(),
            StatusCode::METHOD_NOT_ALLOWED,
            "PUT is not allowed",
        ),
        (
            "POST",
            "/api/stations/NOPE/refresh".into(),
            StatusCode::NOT_FOUND,
            "station NOPE not found",
        ),
    ];
    for (method, path, expected, message) in cases {
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{method} {path}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{method} {path}: {error}");
    }
    let (status, _) = get_json(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "still serving");
    app.stop().await;
}

#[tokio::test]
async fn write_endpoints_need_the_admin_token() {
    let closed = spawn_app().await;
    let response = closed
        .client
        .post(closed.url("/api/stations"))
        .json(&serde_json::json!({"station_id": "N1", "name": "新站"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("set CSM_ADMIN_TOKEN")
    );
    closed.stop().await;

    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |s| {
        s.server.admin_token = Some("t0ken-value".into())
    })
    .await;
    let add = |token: Option<&str>, body: Value| {
        let mut request = app.client.post(app.url("/api/stations")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let station = serde_json::json!({"station_id": "N1", "name": "新站", "port_count": 8, "vendor": SCRIPTED});
    let missing = add(None, station.clone()).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        add(Some("wrong"), station.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let created = add(Some("t0ken-value"), station.clone()).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        add(Some("t0ken-value"), station.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::CONFLICT
    );
    let invalid = add(
        Some("t0ken-value"),
        serde_json::json!({"station_id": "N2", "name": "x", "lat": 500}),
    )
    .await
    .unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let unknown_vendor = add(
        Some("t0ken-value"),
        serde_json::json!({"station_id": "N3", "name": "x", "vendor": "nobody"}),
    )
    .await
    .unwrap();
    assert_eq!(unknown_vendor.status(), StatusCode::BAD_REQUEST);
    let body: Value = unknown_vendor.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no vendor profile named \"nobody\""),
        "{body}"
    );

    let post_raw = |content_type: &'static str, body: &'static str| {
        app.client
            .post(app.url("/api/stations"))
            .bearer_auth("t0ken-value")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let bad_json = post_raw("application/json", "{\"station_id\": ")
        .await
        .unwrap();
    assert_eq!(bad_json.status(), StatusCode::BAD_REQUEST);
    assert!(bad_json.json::<Value>().await.unwrap()["error"].is_string());
    let wrong_type = post_raw("text/plain", "hello").await.unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(wrong_type.json::<Value>().await.unwrap()["error"].is_string());
    let huge = format!(
        "{{\"station_id\": \"N9\", \"name\": \"{}\"}}",
        "x".repeat(200_000)
    );
    let too_big = app
        .client
        .post(app.url("/api/stations"))
        .bearer_auth("t0ken-value")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(too_big.json::<Value>().await.unwrap()["error"].is_string());

    app.scripted
        .set("N1", Ok(vec![reading(1, PortStatus::Free, None)]));
    let refreshed = app
        .client
        .post(app.url("/api/refresh"))
        .bearer_auth("t0ken-value")
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::ACCEPTED);
    let delete = app
        .client
        .delete(app.url("/api/stations/N1"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::UNAUTHORIZED);
    let delete = app
        .client
        .delete(app.url("/api/stations/N1"))
        .bearer_auth("t0ken-value")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let (status, _) = get_json(&app, "/api/stations/N1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn a_failing_vendor_is_shown_stale_with_its_error() {
    let app = app_with_scripted_station("V1", "供应商站").await;
    app.scripted.set(
        "V1",
        Ok(vec![
            reading(1, PortStatus::Occupied, Some(220.0)),
            reading(2, PortStatus::Free, None),
        ]),
    );
    refresh_all_now(&app).await;
    app.scripted.set(
        "V1",
        Err(csm::core::charger::ChargerError::Vendor {
            vendor: SCRIPTED.into(),
            message: "token已过期".into(),
        }),
    );
    refresh_all_now(&app).await;
    let (_, detail) = get_json(&app, "/api/stations/V1").await;
    assert_eq!(detail["stale"], true);
    assert_eq!(
        detail["last_error"],
        "scripted refused the request: token已过期"
    );
    assert_eq!(
        detail["ports"].as_array().unwrap().len(),
        2,
        "the last known ports are still shown"
    );
    assert_eq!(detail["ports"][0]["stale"], true);
    assert_eq!(detail["ports"][0]["status"], "occupied");
    let (_, events) = get_json(&app, "/api/stations/V1/events?port=1").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn responses_are_compressed_and_documented_and_counted() {
    let app = spawn_app().await;
    refresh_all_now(&app).await;
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = raw
        .get(app.url("/api/stations"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");

    let (status, doc) = get_json(&app, "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/stations",
        "/api/stations/{station_id}",
        "/api/ports",
        "/api/stations/{station_id}/refresh",
        "/api/stations/{station_id}/events",
        "/api/events",
        "/api/refresh",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert!(
        paths["/api/stations"]["post"].is_object()
            && paths["/api/stations/{station_id}"]["delete"].is_object()
    );
    for schema in [
        "StationListJson",
        "StationDetailJson",
        "PortJson",
        "ErrorJson",
        "PortStatusSchema",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
    let docs = app.client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("openapi.json"));
    let index = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    let (status, ready) = get_json(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["status"], "ready");
    let metrics = app.text("/metrics").await;
    for name in [
        "csm_http_requests_total",
        "csm_refresh_jobs_total",
        "csm_vendor_request_duration_seconds",
        "csm_batch_write_rows",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    app.stop().await;
}

#[tokio::test]
async fn live_events_carry_port_changes_and_end_on_shutdown() {
    let app = app_with_scripted_station("L1", "直播站").await;
    app.scripted.set(
        "L1",
        Ok(vec![
            reading(1, PortStatus::Free, None),
            reading(2, PortStatus::Free, None),
        ]),
    );
    refresh_all_now(&app).await;

    let response = app
        .client
        .get(app.url("/api/events?station=L1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    // The greeting proves the subscription is live before the change happens.
    while !seen.contains("event: hello") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("hello")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    app.scripted.set(
        "L1",
        Ok(vec![
            reading(1, PortStatus::Occupied, Some(219.5)),
            reading(2, PortStatus::Free, None),
        ]),
    );
    let station = std::sync::Arc::new(csm::core::model::Station {
        id: csm::core::model::StationId::parse("L1").unwrap(),
        ..crate::helpers::station("L1", SCRIPTED, 2)
    });
    app.monitor.refresh().many(vec![station], |_| {}).await;
    let data = tokio::time::timeout(Duration::from_secs(5), async {
        // Updates of the moments before the subscription may come first; wait for this one.
        loop {
            let found = seen
                .split("event: station\ndata: ")
                .skip(1)
                .filter_map(|rest| rest.split_once('\n').map(|(data, _)| data))
                .find(|data| data.contains("\"new\":\"occupied\""))
                .map(str::to_owned);
            if let Some(data) = found {
                return data;
            }
            let chunk = stream.next().await.unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the change arrives within 5 s");
    let update: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(update["station_id"], "L1");
    assert_eq!(update["changes"][0]["port"], 1);
    assert_eq!(update["changes"][0]["old"], "free");
    assert_eq!(update["changes"][0]["new"], "occupied");
    assert_eq!(update["ports"][0]["voltage"], 219.5);
    assert_eq!(update["summary"]["occupied"], 1);

    // Shutdown ends the stream instead of hanging.
    let drained = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    app.stop().await;
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("stream ended")
        .unwrap();
}

/// Reads an event stream until `done` holds for what was read (within 5 s).
async fn read_until(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    seen: &mut String,
    done: impl Fn(&str) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !done(seen) {
            let chunk = stream.next().await.unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the stream did not say it within 5 s: {seen}"));
}

/// The ids and data of the `station` events in `text`, in order.
fn station_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|frame| {
            let id = frame.lines().find_map(|l| l.strip_prefix("id: "))?;
            frame.lines().any(|l| l == "event: station").then_some(())?;
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((id.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn a_client_that_reconnects_with_the_last_event_id_gets_what_it_missed() {
    let app = app_with_scripted_station("R1", "续传站").await;
    let station = std::sync::Arc::new(crate::helpers::station("R1", SCRIPTED, 2));
    let set = |one: PortStatus, two: PortStatus| {
        app.scripted
            .set("R1", Ok(vec![reading(1, one, None), reading(2, two, None)]));
    };
    set(PortStatus::Free, PortStatus::Free);
    refresh_all_now(&app).await;
    let open = |last: Option<&str>| {
        let mut request = app.client.get(app.url("/api/events?station=R1"));
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last);
        }
        request.send()
    };
    let mut stream = open(None).await.unwrap().bytes_stream();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, |s| s.contains("event: hello")).await;
    set(PortStatus::Occupied, PortStatus::Free);
    app.monitor
        .refresh()
        .many(vec![station.clone()], |_| {})
        .await;
    read_until(&mut stream, &mut seen, |s| {
        station_events(s)
            .iter()
            .any(|(_, d)| d["changes"][0]["new"] == "occupied")
    })
    .await;
    let (last_seen, _) = station_events(&seen).pop().unwrap();
    drop(stream);

    // Two changes while the client is away.
    set(PortStatus::Occupied, PortStatus::Occupied);
    app.monitor
        .refresh()
        .many(vec![station.clone()], |_| {})
        .await;
    set(PortStatus::Free, PortStatus::Occupied);
    app.monitor
        .refresh()
        .many(vec![station.clone()], |_| {})
        .await;

    let mut stream = open(Some(&last_seen)).await.unwrap().bytes_stream();
    let mut again = String::new();
    read_until(&mut stream, &mut again, |s| station_events(s).len() >= 2).await;
    let missed = station_events(&again);
    let changes: Vec<(u64, &str)> = missed
        .iter()
        .map(|(_, d)| {
            (
                d["changes"][0]["port"].as_u64().unwrap(),
                d["changes"][0]["new"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(changes, [(2, "occupied"), (1, "free")], "{again}");
    let ids: Vec<csm::core::feed::EventId> =
        missed.iter().map(|(id, _)| id.parse().unwrap()).collect();
    let before: csm::core::feed::EventId = last_seen.parse().unwrap();
    assert!(before < ids[0] && ids[0] < ids[1]);
    drop(stream);

    // Outside the window: told to reload.
    let mut stream = open(Some("1-0")).await.unwrap().bytes_stream();
    let mut reset = String::new();
    read_until(&mut stream, &mut reset, |s| s.contains("event: reset")).await;
    drop(stream);
    let (status, body) = {
        let response = app
            .client
            .get(app.url("/api/events"))
            .header("Last-Event-ID", "yesterday")
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Last-Event-ID"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn station_answers_are_reused_for_a_quarter_second_at_most() {
    let app = app_with_scripted_station("Q1", "快站").await;
    app.scripted
        .set("Q1", Ok(vec![reading(1, PortStatus::Free, None)]));
    refresh_all_now(&app).await;
    let (_, first) = get_json(&app, "/api/stations/Q1").await;
    assert_eq!(first["ports"][0]["status"], "free");
    app.scripted
        .set("Q1", Ok(vec![reading(1, PortStatus::Occupied, None)]));
    refresh_all_now(&app).await;
    let changed = std::time::Instant::now();
    let (_, later) = crate::helpers::eventually(
        Duration::from_secs(5),
        || get_json(&app, "/api/stations/Q1"),
        |(_, answer)| answer["ports"][0]["status"] == "occupied",
    )
    .await;
    assert!(
        changed.elapsed() < Duration::from_millis(250) + Duration::from_secs(1),
        "an answer older than 250 ms is not reused"
    );
    assert_ne!(first["timestamp"], later["timestamp"]);
    app.stop().await;
}

/// A `GET` with `If-None-Match: tag` (when given) and `Accept-Encoding` (when given), without
/// decoding: the status, the headers and the raw body.
async fn conditional_get(
    app: &TestApp,
    path: &str,
    tag: Option<&str>,
    coding: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, bytes::Bytes) {
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let mut request = raw.get(app.url(path));
    if let Some(tag) = tag {
        request = request.header("if-none-match", tag);
    }
    if let Some(coding) = coding {
        request = request.header("accept-encoding", coding);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.bytes().await.unwrap())
}

fn tag(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("etag")
        .unwrap_or_else(|| panic!("no ETag in {headers:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn a_client_that_has_the_answer_gets_304_until_it_changes(
    backend: Backend,
    cache: CacheKind,
) {
    let app = spawn_app_with(backend, cache, |s| s.server.admin_token = Some("t".into())).await;
    let add = app
        .client
        .post(app.url("/api/stations"))
        .bearer_auth("t")
        .json(&serde_json::json!({"station_id": "E1", "name": "标签站", "vendor": SCRIPTED}))
        .send()
        .await
        .unwrap();
    assert_eq!(add.status(), StatusCode::CREATED);
    let ports = |first| {
        Ok(vec![
            reading(1, first, Some(220.0)),
            reading(2, PortStatus::Free, None),
        ])
    };
    app.scripted.set("E1", ports(PortStatus::Free));
    refresh_all_now(&app).await;

    for path in ["/api/stations", "/api/stations/E1"] {
        let (status, headers, body) = conditional_get(&app, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert!(headers.contains_key("last-modified"), "{path}: {headers:?}");
        let first = tag(&headers);
        assert!(
            first.starts_with('"') && first.len() > 10,
            "a strong tag: {first}"
        );
        let document: Value = serde_json::from_slice(&body).unwrap();
        assert!(document["timestamp"].is_string(), "{path}");

        // Same data: 304 without a body, also once the answer was made again (its own time
        // moved on, its content did not).
        for wait in [Duration::ZERO, Duration::from_millis(1_200)] {
            tokio::time::sleep(wait).await;
            let (status, again, body) = conditional_get(&app, path, Some(&first), None).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{path} after {wait:?}");
            assert!(body.is_empty(), "{path}: a 304 has no body");
            assert_eq!(tag(&again), first, "{path}");
            assert_eq!(again["cache-control"], "no-cache", "{path}");
        }
        // Another tag, or none: the whole answer.
        let (status, _, body) = conditional_get(&app, path, Some("\"other\""), None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.is_empty());

        // Compressed: a tag of its own, the same content once decoded, and 304 for it too.
        let (status, zipped, body) = conditional_get(&app, path, None, Some("gzip")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(zipped["content-encoding"], "gzip", "{path}");
        assert_eq!(
            tag(&zipped),
            format!("{}-gzip\"", first.trim_end_matches('"'))
        );
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
            .unwrap();
        let decoded: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(undated(decoded), undated(document), "{path}");
        let (status, _, _) = conditional_get(&app, path, Some(&tag(&zipped)), Some("gzip")).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
    }

    // A filter asks another question: another tag.
    let (_, all, _) = conditional_get(&app, "/api/stations", None, None).await;
    let (_, filtered, _) = conditional_get(&app, "/api/stations?q=E1", None, None).await;
    let (_, summary, _) = conditional_get(&app, "/api/stations?view=summary", None, None).await;
    assert_ne!(tag(&all), tag(&filtered));
    assert_ne!(tag(&all), tag(&summary));
    let (status, _, _) = conditional_get(&app, "/api/stations?q=E1", Some(&tag(&all)), None).await;
    assert_eq!(status, StatusCode::OK);

    // A port changes: the whole answer with a new tag, at once.
    let before: Vec<(String, String)> = ["/api/stations", "/api/stations/E1", "/api/stations?q=E1"]
        .iter()
        .map(|p| (p.to_string(), String::new()))
        .collect();
    let mut tags = Vec::new();
    for (path, _) in &before {
        let (_, headers, _) = conditional_get(&app, path, None, None).await;
        tags.push((path.clone(), tag(&headers)));
    }
    app.scripted.set("E1", ports(PortStatus::Occupied));
    refresh_all_now(&app).await;
    for (path, old) in &tags {
        let (status, headers, body) = conditional_get(&app, path, Some(old), None).await;
        assert_eq!(status, StatusCode::OK, "{path} after a port changed");
        assert_ne!(&tag(&headers), old, "{path}");
        assert!(
            String::from_utf8_lossy(&body).contains("\"status\":\"occupied\""),
            "{path} shows the change"
        );
    }

    // Every other answer of the API is tagged and answered 304 the same way.
    for path in [
        "/api/ports",
        "/api/stations/E1/events",
        "/api/stations/E1/events?format=csv",
        "/api/stations/E1/history",
        "/api/stations/E1/sessions",
        "/api/stations/E1/stats",
        "/api/stats",
        "/api/openapi.json",
        "/",
    ] {
        let (status, headers, _) = conditional_get(&app, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let (status, _, body) = conditional_get(&app, path, Some(&tag(&headers)), None).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty(), "{path}");
    }
    app.stop().await;
}
