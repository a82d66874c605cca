//! Alerts end to end: rules fire from real refreshes, reach wiremock receivers signed as each
//! platform documents (checked here with an HMAC computed by hand, not csm's), are retried
//! under the same id, survive a restart, come as one digest in a burst, wait out quiet hours,
//! and bad rules or channels are refused without storing anything.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{TimeDelta, Utc};
use csm_core::Monitor;
use csm_core::alerts::{ChannelDraft, DeliveryState, RuleDraft};
use csm_core::charger::{ChargerApi, ChargerError};
use csm_core::model::{PortStatus, StationId};
use csm_core::store::{Finish, OpenAlert, OutboxRow, Store};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{
    Backend, SCRIPTED, ScriptedApi, TestStore, build, memory_cache, reading, station, test_store,
};

/// HMAC-SHA256 written out from RFC 2104 over `sha2`, independent of the `hmac` crate csm
/// signs with.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0_u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A monitor over a store with the scripted source and its alert tasks running.
struct Harness {
    monitor: Arc<Monitor>,
    store: Arc<dyn Store>,
    scripted: Arc<ScriptedApi>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn start(store: &TestStore, scripted: Arc<ScriptedApi>) -> Self {
        let monitor = Arc::new(
            build(&store.store, &memory_cache())
                .settings(|s| s.alerts.retry_base_ms = 100)
                .source(Arc::clone(&scripted) as Arc<dyn ChargerApi>)
                .monitor(),
        );
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (area, token) = (monitor.alerts().clone(), cancel.clone());
            async move { area.run(token).await }
        });
        // The evaluator reads the rules and subscribes to changes first.
        monitor.alerts().settled().await;
        Self {
            monitor,
            store: Arc::clone(&store.store),
            scripted,
            cancel,
            task,
        }
    }

    /// Waits until the evaluator has taken every rule change and station change so far, and
    /// nothing due is left to deliver.
    async fn settled(&self) {
        self.monitor.alerts().settled().await;
        let store = Arc::clone(&self.store);
        eventually(10, "the outbox to have nothing due", || {
            let store = Arc::clone(&store);
            async move {
                let now = Utc::now();
                store
                    .alerts()
                    .alert_history(1_000)
                    .await
                    .unwrap()
                    .iter()
                    .all(|r| r.state != DeliveryState::Pending || r.due_at > now)
            }
        })
        .await;
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("alert tasks stop")
            .expect("alert tasks");
    }

    async fn refresh(&self, id: &str) {
        let station = self
            .monitor
            .stations()
            .get(&StationId::parse(id).unwrap())
            .await
            .unwrap();
        let _ = self.monitor.refresh().one(station).await;
    }

    async fn add_station(&self, id: &str, ports: &[PortStatus]) {
        self.monitor
            .stations()
            .add(&station(id, SCRIPTED, ports.len() as u32))
            .await
            .unwrap();
        self.set(id, ports);
    }

    fn set(&self, id: &str, ports: &[PortStatus]) {
        let readings = ports
            .iter()
            .enumerate()
            .map(|(i, s)| reading(i as u32 + 1, *s, Some(220.0)))
            .collect();
        self.scripted.set(id, Ok(readings));
    }

    async fn channel(&self, name: &str, kind: &str, url: String, secret: Option<&str>) {
        self.monitor
            .alerts()
            .add_channel(ChannelDraft {
                name: name.into(),
                kind: kind.into(),
                url,
                secret: secret.map(str::to_owned),
            })
            .await
            .unwrap();
    }

    async fn rule(&self, json: serde_json::Value) -> u64 {
        let draft: RuleDraft = serde_json::from_value(json).unwrap();
        self.monitor.alerts().add_rule(draft).await.unwrap().id
    }
}

/// Waits until `check` holds (at most `secs`).
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within {secs} s");
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

fn accept() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string("ok")
}

#[tokio::test]
async fn a_freed_port_reaches_a_signed_webhook_and_its_end_is_announced() {
    let store = test_store(Backend::Sqlite).await;
    let h = Harness::start(&store, Arc::default()).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(accept())
        .mount(&receiver)
        .await;
    h.add_station("A1", &[PortStatus::Occupied, PortStatus::Occupied])
        .await;
    h.refresh("A1").await;
    h.channel(
        "hook",
        "webhook",
        format!("{}/hook", receiver.uri()),
        Some("s3cret"),
    )
    .await;
    let rule = h
        .rule(serde_json::json!({"kind": "port_free", "stations": ["A1"], "channel": "hook", "resolved": true}))
        .await;
    h.monitor.alerts().settled().await;
    h.set("A1", &[PortStatus::Occupied, PortStatus::Free]);
    h.refresh("A1").await;
    eventually(5, "the webhook call", || async {
        received(&receiver).await.len() == 1
    })
    .await;
    let request = &received(&receiver).await[0];
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["rule"], rule);
    assert_eq!(body["kind"], "port_free");
    assert_eq!(body["station_id"], "A1");
    assert_eq!(body["port"], 2);
    assert_eq!(body["status"], "free");
    assert_eq!(body["resolved"], false);
    for key in ["id", "station_name", "since", "at", "text"] {
        assert!(body.get(key).is_some(), "{key} in {body}");
    }
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("x-csm-delivery"), body["id"].as_str().unwrap());
    let timestamp = header("x-csm-timestamp");
    let age = Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp {timestamp}");
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&request.body);
    assert_eq!(
        header("x-csm-signature"),
        format!("sha256={}", hex(&hmac_sha256(b"s3cret", &signed)))
    );

    // Still free: not sent again. Taken: the end is announced.
    h.refresh("A1").await;
    h.set("A1", &[PortStatus::Occupied, PortStatus::Occupied]);
    h.refresh("A1").await;
    eventually(5, "the resolution", || async {
        received(&receiver).await.len() == 2
    })
    .await;
    let resolved: serde_json::Value =
        serde_json::from_slice(&received(&receiver).await[1].body).unwrap();
    assert_eq!(resolved["resolved"], true);
    assert!(
        resolved["text"].as_str().unwrap().starts_with("【已恢复】"),
        "{resolved}"
    );
    // The receiver has the call before its sender has recorded the answer.
    h.settled().await;
    let history = h.monitor.alerts().history(10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(
        history
            .iter()
            .all(|r| r.state == DeliveryState::Delivered && r.attempts == 1)
    );
    h.stop().await;
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_alert_once_under_the_same_id() {
    let store = test_store(Backend::Sqlite).await;
    let h = Harness::start(&store, Arc::default()).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(accept())
        .with_priority(2)
        .mount(&receiver)
        .await;
    h.add_station("B1", &[PortStatus::Fault]).await;
    h.channel("hook", "webhook", receiver.uri(), Some("k"))
        .await;
    h.rule(
        serde_json::json!({"kind": "fault", "stations": "all", "min_secs": 0, "channel": "hook"}),
    )
    .await;
    h.refresh("B1").await;
    eventually(10, "three attempts", || async {
        received(&receiver).await.len() == 3
    })
    .await;
    h.settled().await;
    let requests = received(&receiver).await;
    assert_eq!(requests.len(), 3, "delivered once, then not again");
    let ids: Vec<_> = requests
        .iter()
        .map(|r| r.headers.get("x-csm-delivery").unwrap().clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let history = h.monitor.alerts().history(10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].state, history[0].attempts),
        (DeliveryState::Delivered, 3)
    );
    h.stop().await;
}

#[tokio::test]
async fn alerts_pending_when_csm_stops_are_delivered_after_a_restart() {
    let store = test_store(Backend::MySql).await;
    let scripted = Arc::new(ScriptedApi::default());
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&receiver)
        .await;
    let first = Harness::start(&store, Arc::clone(&scripted)).await;
    first.add_station("C1", &[PortStatus::Fault]).await;
    first
        .channel("hook", "webhook", receiver.uri(), Some("k"))
        .await;
    first
        .rule(serde_json::json!({"kind": "fault", "stations": ["C1"], "min_secs": 0, "channel": "hook"}))
        .await;
    first.refresh("C1").await;
    eventually(5, "a failed attempt", || async {
        !received(&receiver).await.is_empty()
    })
    .await;
    first.stop().await;
    let pending = store.store.alerts().alert_history(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, DeliveryState::Pending);

    receiver.reset().await;
    Mock::given(method("POST"))
        .respond_with(accept())
        .mount(&receiver)
        .await;
    let second = Harness::start(&store, scripted).await;
    eventually(10, "delivery after the restart", || async {
        !received(&receiver).await.is_empty()
    })
    .await;
    let request = &received(&receiver).await[0];
    assert_eq!(
        request
            .headers
            .get("x-csm-delivery")
            .unwrap()
            .to_str()
            .unwrap(),
        pending[0].id
    );
    // Still in fault after the restart: the open alert is not sent again.
    second.refresh("C1").await;
    second.settled().await;
    assert_eq!(received(&receiver).await.len(), 1);
    let history = second.monitor.alerts().history(10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, DeliveryState::Delivered);
    second.stop().await;
}

#[tokio::test]
async fn a_burst_of_300_alerts_reaches_a_bot_as_a_digest_within_its_rate_limit() {
    let store = test_store(Backend::Sqlite).await;
    let h = Harness::start(&store, Arc::default()).await;
    let bot = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}"#,
        ))
        .mount(&bot)
        .await;
    let ids: Vec<String> = (0..300).map(|i| format!("D{i:03}")).collect();
    let stations: Vec<_> = ids.iter().map(|id| station(id, SCRIPTED, 2)).collect();
    h.monitor.stations().import(&stations).await.unwrap();
    for id in &ids {
        h.set(id, &[PortStatus::Free, PortStatus::Free]);
    }
    let all = h.monitor.stations().enabled().await.unwrap();
    h.monitor.refresh().many(all.clone(), |_| {}).await;
    h.channel(
        "ops",
        "feishu",
        format!("{}/open-apis/bot/v2/hook/0123456789abcdef", bot.uri()),
        Some("demo"),
    )
    .await;
    h.rule(
        serde_json::json!({"kind": "offline", "stations": "all", "min_secs": 0, "channel": "ops"}),
    )
    .await;
    h.monitor.alerts().settled().await;
    for id in &ids {
        h.scripted.set(
            id,
            Err(ChargerError::UnknownStation {
                vendor: SCRIPTED.into(),
                station: id.clone(),
            }),
        );
    }
    h.monitor.refresh().many(all, |_| {}).await;
    eventually(10, "every alert delivered", || async {
        let history = h.monitor.alerts().history(1000).await.unwrap();
        history.len() == 300 && history.iter().all(|r| r.state == DeliveryState::Delivered)
    })
    .await;
    let requests = received(&bot).await;
    // Far inside the bot's 20 messages a minute: a digest or a few, never 300 messages.
    assert!(
        (1..=5).contains(&requests.len()),
        "300 alerts came as {} messages",
        requests.len()
    );
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["msg_type"], "text");
    let text = body["content"]["text"].as_str().unwrap();
    assert!(text.starts_with("【汇总】"), "{text}");
    assert!(text.contains("【离线】"), "{text}");
    // Feishu's signed-secret mode: Base64 of HMAC-SHA256 keyed with "{timestamp}\n{secret}"
    // over nothing, timestamp in seconds as text.
    let timestamp = body["timestamp"].as_str().unwrap();
    let key = format!("{timestamp}\ndemo");
    let expected =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key.as_bytes(), b""));
    assert_eq!(body["sign"], expected);
    h.stop().await;
}

#[tokio::test]
async fn quiet_hours_hold_a_free_port_but_not_a_fault() {
    let store = test_store(Backend::Sqlite).await;
    let h = Harness::start(&store, Arc::default()).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accept())
        .mount(&receiver)
        .await;
    h.add_station("E1", &[PortStatus::Occupied, PortStatus::Occupied])
        .await;
    h.refresh("E1").await;
    h.channel("hook", "webhook", receiver.uri(), Some("k"))
        .await;
    let now = Utc::now();
    let window = format!(
        "{}-{}",
        (now - TimeDelta::hours(1)).format("%H:%M"),
        (now + TimeDelta::hours(2)).format("%H:%M")
    );
    for kind in ["port_free", "fault"] {
        h.rule(
            serde_json::json!({"kind": kind, "stations": ["E1"], "min_secs": 0, "channel": "hook",
            "quiet_hours": window, "timezone": "UTC"}),
        )
        .await;
    }
    h.monitor.alerts().settled().await;
    h.set("E1", &[PortStatus::Free, PortStatus::Fault]);
    h.refresh("E1").await;
    eventually(5, "the fault alert", || async {
        !received(&receiver).await.is_empty()
    })
    .await;
    h.settled().await;
    let requests = received(&receiver).await;
    assert_eq!(
        requests.len(),
        1,
        "only the urgent alert is sent inside the window"
    );
    let sent: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(sent["kind"], "fault");
    let held = h.monitor.alerts().history(10).await.unwrap();
    let free = held
        .iter()
        .find(|r| r.alert.port == Some(1))
        .expect("the free port's alert");
    assert_eq!(free.state, DeliveryState::Pending);
    let row = store.store.alerts().alert_history(10).await.unwrap();
    let due = row.iter().find(|r| r.id == free.alert.id).unwrap().due_at;
    assert!(
        due > now + TimeDelta::minutes(100),
        "held until the window ends: {due}"
    );
    h.stop().await;
}

#[tokio::test]
async fn dingtalk_and_wecom_get_their_documented_messages_and_errors_are_reported() {
    let store = test_store(Backend::Sqlite).await;
    let h = Harness::start(&store, Arc::default()).await;
    let bot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/robot/send"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"errcode":0,"errmsg":"ok"}"#))
        .mount(&bot)
        .await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/webhook/send"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(
                r#"{"errcode":93000,"errmsg":"invalid webhook url, hint: [1733]"}"#,
            ),
        )
        .mount(&bot)
        .await;
    h.channel(
        "ding",
        "dingtalk",
        format!(
            "{}/robot/send?access_token=abcdef0123456789abcdef",
            bot.uri()
        ),
        Some("SEC-demo"),
    )
    .await;
    h.channel(
        "wx",
        "wecom",
        format!("{}/cgi-bin/webhook/send?key=0000-1111-2222-3333", bot.uri()),
        None,
    )
    .await;
    let ding = h.monitor.alerts().test_channel("ding").await.unwrap();
    assert!(ding.accepted, "{ding:?}");
    let wx = h.monitor.alerts().test_channel("wx").await.unwrap();
    assert!(!wx.accepted);
    assert!(
        wx.answer.contains("93000") && wx.answer.contains("invalid webhook url"),
        "{}",
        wx.answer
    );
    let requests = received(&bot).await;
    let ding = requests
        .iter()
        .find(|r| r.url.path() == "/robot/send")
        .unwrap();
    let query: std::collections::HashMap<_, _> = ding.url.query_pairs().into_owned().collect();
    let timestamp = &query["timestamp"];
    let age_ms = Utc::now().timestamp_millis() - timestamp.parse::<i64>().unwrap();
    assert!(
        (0..60_000).contains(&age_ms),
        "timestamp in ms: {timestamp}"
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
        b"SEC-demo",
        format!("{timestamp}\nSEC-demo").as_bytes(),
    ));
    assert_eq!(query["sign"], expected);
    assert_eq!(query["access_token"], "abcdef0123456789abcdef");
    let body: serde_json::Value = serde_json::from_slice(&ding.body).unwrap();
    assert_eq!(body["msgtype"], "text");
    assert!(body["text"]["content"].as_str().unwrap().contains("测试"));
    let wx = requests
        .iter()
        .find(|r| r.url.path() == "/cgi-bin/webhook/send")
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&wx.body).unwrap();
    assert_eq!(body["msgtype"], "text");
    assert!(body["text"]["content"].is_string());
    // Tokens never show in what csm lists.
    let listed = serde_json::to_string(&h.monitor.alerts().channels().await.unwrap()).unwrap();
    assert!(
        !listed.contains("abcdef0123456789abcdef") && !listed.contains("SEC-demo"),
        "{listed}"
    );
    h.stop().await;
}

#[tokio::test]
async fn bad_rules_and_channels_are_refused_and_store_nothing() {
    let app =
        crate::helpers::spawn_app_with(Backend::Sqlite, crate::helpers::CacheKind::Memory, |c| {
            c.server.admin_token = Some("tok".into());
        })
        .await;
    let post = |path: &str, body: serde_json::Value, token: Option<&str>| {
        let mut request = app.client.post(app.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let unauthorized = post("/api/alerts/channels", serde_json::json!({}), None)
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    let good =
        serde_json::json!({"name": "ops", "kind": "wecom", "url": "http://127.0.0.1:9/send?key=x"});
    assert_eq!(
        post("/api/alerts/channels", good.clone(), Some("tok"))
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post("/api/alerts/channels", good, Some("tok"))
            .await
            .unwrap()
            .status(),
        StatusCode::CONFLICT
    );
    for (body, says) in [
        (
            serde_json::json!({"name": "x", "kind": "webhook", "url": "not a url", "secret": "k"}),
            "url",
        ),
        (
            serde_json::json!({"name": "x", "kind": "slack", "url": "http://127.0.0.1:9/"}),
            "kind",
        ),
        (
            serde_json::json!({"name": "x", "kind": "webhook", "url": "http://127.0.0.1:9/"}),
            "secret",
        ),
        (
            serde_json::json!({"name": "a b", "kind": "wecom", "url": "http://127.0.0.1:9/"}),
            "name",
        ),
    ] {
        let response = post("/api/alerts/channels", body.clone(), Some("tok"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error = response.json::<serde_json::Value>().await.unwrap();
        assert!(error["error"].as_str().unwrap().contains(says), "{error}");
    }
    let station = "S0001";
    for (body, says) in [
        (
            serde_json::json!({"kind": "port_free", "stations": ["NOPE"], "channel": "ops"}),
            "NOPE",
        ),
        (
            serde_json::json!({"kind": "port_free", "stations": [station], "ports": [0], "channel": "ops"}),
            "ports",
        ),
        (
            serde_json::json!({"kind": "fault", "stations": "all", "min_secs": -60, "channel": "ops"}),
            "min_secs",
        ),
        (
            serde_json::json!({"kind": "sparks", "stations": "all", "channel": "ops"}),
            "kind",
        ),
        (
            serde_json::json!({"kind": "fault", "stations": "all", "channel": "nobody"}),
            "channel",
        ),
        (
            serde_json::json!({"kind": "voltage", "stations": "all", "low": 250, "high": 200, "channel": "ops"}),
            "low",
        ),
        (
            serde_json::json!({"kind": "fault", "stations": "all", "channel": "ops", "quiet_hours": "late"}),
            "quiet_hours",
        ),
    ] {
        let response = post("/api/alerts/rules", body.clone(), Some("tok"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error = response.json::<serde_json::Value>().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(says),
            "{body}: {error}"
        );
    }
    let rules = app
        .client
        .get(app.url("/api/alerts/rules"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(rules, serde_json::json!({"rules": []}));
    let channels = app.monitor.alerts().channels().await.unwrap();
    assert_eq!(channels.len(), 1);
    let used = post(
        "/api/alerts/rules",
        serde_json::json!({"kind": "offline", "stations": [station], "channel": "ops"}),
        Some("tok"),
    )
    .await
    .unwrap();
    assert_eq!(used.status(), StatusCode::CREATED);
    let removal = app
        .client
        .delete(app.url("/api/alerts/channels/ops"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(
        removal.status(),
        StatusCode::CONFLICT,
        "a channel in use stays"
    );
    app.stop().await;
}

/// A pending outbox row of rule `rule_id` on channel `c`, made at `now`, due at `due`.
fn pending(
    id: &str,
    rule_id: u64,
    now: chrono::DateTime<chrono::Utc>,
    due: chrono::DateTime<chrono::Utc>,
) -> OutboxRow {
    OutboxRow {
        id: id.into(),
        rule_id,
        channel: "c".into(),
        payload: "{}".into(),
        state: DeliveryState::Pending,
        attempts: 0,
        last_error: None,
        created_at: now,
        due_at: due,
        delivered_at: None,
    }
}

/// The outbox's contract on both backends: only due rows are claimed, a claim excludes
/// others until it expires, and only the claim that holds a row can finish it.
async fn outbox_claims(backend: Backend) {
    let store = test_store(backend).await;
    let alerts = store.store.alerts();
    let now = csm_core::model::now();
    let row = |id: &str, due| pending(id, 1, now, due);
    let open = OpenAlert {
        rule_id: 1,
        station_id: StationId::parse("S1").unwrap(),
        port: 2,
        alert_id: "a".repeat(32),
        opened_at: now,
    };
    let later = now + TimeDelta::hours(1);
    alerts
        .record_alerts(
            &[row(&"a".repeat(32), now), row(&"b".repeat(32), later)],
            std::slice::from_ref(&open),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(alerts.open_alerts().await.unwrap(), vec![open.clone()]);
    let until = now + TimeDelta::seconds(60);
    let first = alerts.claim_alerts("one", now, until, 10).await.unwrap();
    assert_eq!(first.len(), 1, "only the due row");
    assert!(
        alerts
            .claim_alerts("two", now, until, 10)
            .await
            .unwrap()
            .is_empty(),
        "held by one"
    );
    let expired = until + TimeDelta::seconds(1);
    let taken = alerts
        .claim_alerts("two", expired, expired + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "a claim that expired lets go");
    alerts
        .finish_alerts(
            "one",
            &[first[0].id.clone()],
            &Finish::Delivered { at: now },
        )
        .await
        .unwrap();
    assert_eq!(
        alerts.outbox_depth().await.unwrap(),
        2,
        "the stale claim changed nothing"
    );
    alerts
        .finish_alerts(
            "two",
            &[taken[0].id.clone()],
            &Finish::Delivered { at: expired },
        )
        .await
        .unwrap();
    assert_eq!(alerts.outbox_depth().await.unwrap(), 1);
    let due_later = alerts
        .claim_alerts("three", later, later + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(due_later.len(), 1);
    alerts
        .finish_alerts(
            "three",
            &[due_later[0].id.clone()],
            &Finish::Retry {
                due_at: later + TimeDelta::minutes(1),
                error: "HTTP 503".into(),
            },
        )
        .await
        .unwrap();
    let history = alerts.alert_history(10).await.unwrap();
    let retried = history.iter().find(|r| r.id == due_later[0].id).unwrap();
    assert_eq!(
        (retried.attempts, retried.last_error.as_deref()),
        (1, Some("HTTP 503"))
    );
    alerts
        .record_alerts(&[], &[], &[(1, open.station_id.clone(), 2)])
        .await
        .unwrap();
    assert!(alerts.open_alerts().await.unwrap().is_empty());
    let id = alerts.add_rule("{\"kind\":\"fault\"}").await.unwrap();
    assert!(id > 0);
    assert_eq!(
        alerts.rules().await.unwrap(),
        vec![(id, "{\"kind\":\"fault\"}".to_owned())]
    );
    assert!(alerts.remove_rule(id).await.unwrap());
    assert!(!alerts.remove_rule(id).await.unwrap());
}

#[tokio::test]
async fn the_outbox_is_claimed_with_an_expiry_on_sqlite() {
    outbox_claims(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_outbox_is_claimed_with_an_expiry_on_mariadb() {
    outbox_claims(Backend::MySql).await;
}

/// A second instance that opens an alert already open (it took the station over from the
/// instance that opened it) records nothing: no second open row, no second message.
async fn an_open_alert_is_recorded_once(backend: Backend) {
    let store = test_store(backend).await;
    let alerts = store.store.alerts();
    let now = csm_core::model::now();
    let fired = |id: &str| pending(id, 7, now, now);
    let open = |alert_id: &str| OpenAlert {
        rule_id: 7,
        station_id: StationId::parse("S9").unwrap(),
        port: 0,
        alert_id: alert_id.into(),
        opened_at: now,
    };
    let (first, second, other) = ("1".repeat(32), "2".repeat(32), "3".repeat(32));
    alerts
        .record_alerts(&[fired(&first)], &[open(&first)], &[])
        .await
        .unwrap();
    let elsewhere = OpenAlert {
        port: 4,
        ..open(&other)
    };
    alerts
        .record_alerts(
            &[fired(&second), fired(&other)],
            &[open(&second), elsewhere.clone()],
            &[],
        )
        .await
        .unwrap();
    let mut opened = alerts.open_alerts().await.unwrap();
    opened.sort_by_key(|open| open.port);
    assert_eq!(
        opened,
        vec![open(&first), elsewhere],
        "the first opening stays"
    );
    let mut sent: Vec<String> = alerts
        .alert_history(10)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![first, other],
        "the repeated alert is not sent again"
    );
}

#[tokio::test]
async fn an_open_alert_is_recorded_once_on_sqlite() {
    an_open_alert_is_recorded_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_open_alert_is_recorded_once_on_mariadb() {
    an_open_alert_is_recorded_once(Backend::MySql).await;
}

#[tokio::test]
async fn the_cli_prints_the_documents_of_the_api() {
    let app =
        crate::helpers::spawn_app_with(Backend::Sqlite, crate::helpers::CacheKind::Memory, |c| {
            c.server.admin_token = Some("tok".into());
        })
        .await;
    app.monitor
        .alerts()
        .add_channel(ChannelDraft {
            name: "ops".into(),
            kind: "feishu".into(),
            url: "http://127.0.0.1:9/open-apis/bot/v2/hook/0123456789abcdef0123".into(),
            secret: Some("shh".into()),
        })
        .await
        .unwrap();
    let draft: RuleDraft = serde_json::from_value(serde_json::json!({
        "kind": "free_ports", "stations": ["S0001"], "free_ports": 2, "channel": "ops", "quiet_hours": "23:00-07:00"
    }))
    .unwrap();
    app.monitor.alerts().add_rule(draft).await.unwrap();
    let url = app.monitor.settings().database.url.clone().unwrap();
    for (args, path) in [
        (
            vec!["alerts", "channels", "list", "--json"],
            "/api/alerts/channels",
        ),
        (
            vec!["alerts", "rules", "list", "--json"],
            "/api/alerts/rules",
        ),
        (
            vec!["alerts", "history", "--json", "--limit", "100"],
            "/api/alerts/history",
        ),
    ] {
        let mut argv = vec!["csm-cli"];
        argv.extend(args.iter().copied());
        argv.extend(["--database-url", url.expose()]);
        let cli = <csm::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
        let mut out = Vec::new();
        csm::cli::run(cli, &mut out).await.unwrap();
        let printed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let answered: serde_json::Value = app
            .client
            .get(app.url(path))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(printed, answered, "{args:?}");
        assert!(
            !printed.to_string().contains("0123456789abcdef0123")
                && !printed.to_string().contains("shh")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_voltage_out_of_range_fires_without_any_status_change() {
    let store = test_store(Backend::Sqlite).await;
    let h = Harness::start(&store, Arc::default()).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accept())
        .mount(&receiver)
        .await;
    h.add_station("V1", &[PortStatus::Occupied]).await;
    h.channel("hook", "webhook", receiver.uri(), Some("k"))
        .await;
    h.rule(
        serde_json::json!({"kind": "voltage", "stations": ["V1"], "low": 200, "high": 240,
        "min_secs": 0, "channel": "hook", "resolved": true}),
    )
    .await;
    h.monitor.alerts().settled().await;
    h.refresh("V1").await;
    h.settled().await;
    assert!(
        received(&receiver).await.is_empty(),
        "220 V is inside the range"
    );
    // The same status, another voltage: only the measurement changed.
    h.scripted.set(
        "V1",
        Ok(vec![reading(1, PortStatus::Occupied, Some(251.5))]),
    );
    h.refresh("V1").await;
    eventually(5, "the voltage alert", || async {
        received(&receiver).await.len() == 1
    })
    .await;
    let body: serde_json::Value =
        serde_json::from_slice(&received(&receiver).await[0].body).unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["port"].as_u64()),
        (Some("voltage"), Some(1))
    );
    assert!(body["text"].as_str().unwrap().contains("251.5 V"), "{body}");
    h.scripted.set(
        "V1",
        Ok(vec![reading(1, PortStatus::Occupied, Some(221.0))]),
    );
    h.refresh("V1").await;
    eventually(5, "the voltage back in range", || async {
        received(&receiver).await.len() == 2
    })
    .await;
    h.stop().await;
}
