//! Security: secrets (admin token, vendor secrets, cache and database passwords) never reach
//! logs, errors or answers; CORS is closed unless configured; every endpoint refuses bad input
//! with a JSON error and keeps serving.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use csm::core::cache::{RedisCache, StatusCache};
use reqwest::StatusCode;
use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    Backend, CacheKind, build, spawn_app, spawn_app_with, test_settings, test_store,
};

/// Log lines captured by a test's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const ADMIN_TOKEN: &str = "adm1n-T0ken-4f9c2b";
const VENDOR_SECRET: &str = "v3ndor-S3cret-77aa";
const REDIS_PASSWORD: &str = "r3dis-Passw0rd-19";

// Everything runs on this test's thread, so the subscriber set for it sees every log line.
#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_logs_errors_or_answers() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // While only one dispatcher has ever been made, tracing decides whether anyone listens to
    // a log call site from the default of the thread that reaches it first: a call site first
    // reached by another test's thread would be muted for good. With a second dispatcher alive
    // every thread asks all of them, this test's subscriber included; asking every call site
    // again covers those reached before.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();

    // A vendor whose profile uses a secret in its URL and a header, and that fails.
    #[allow(unsafe_code)]
    // SAFETY: no other test reads this variable; it is set before anything uses it.
    unsafe {
        std::env::set_var("CSM_TEST_SECURITY_SECRET", VENDOR_SECRET);
    }
    let vendor = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream broke"))
        .mount(&vendor)
        .await;
    let vendors = tempfile::tempdir().unwrap();
    std::fs::write(
        vendors.path().join("secretive.toml"),
        format!(
            "base_url = \"{}\"\n[request]\nurl = \"{{base_url}}/p/{{station_id}}?key=${{CSM_TEST_SECURITY_SECRET}}\"\nheaders = {{ Authorization = \"Bearer ${{CSM_TEST_SECURITY_SECRET}}\" }}\n[ports]\npointer = \"/p\"\n[ports.fields]\nstatus = \"/s\"\n[status]\n",
            vendor.uri()
        ),
    )
    .unwrap();
    let mut settings = test_settings();
    settings.vendors.dir = vendors.path().to_path_buf();
    settings.engine.max_retries = 0;
    let redis_url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:6379");
    settings.cache.redis_url = Some(redis_url.clone());
    let config = csm::server::ServerConfig {
        admin_token: Some(ADMIN_TOKEN.into()),
        ..Default::default()
    };
    let store = test_store(Backend::Sqlite).await;
    // The local Redis has no password: every command fails with an authentication error.
    let cache: Arc<dyn StatusCache> =
        Arc::new(RedisCache::new(&redis_url, "csmsec:", Duration::from_secs(60)).unwrap());
    let monitor = Arc::new(
        build(&store.store, &cache)
            .settings(|s| *s = settings.clone())
            .monitor(),
    );
    tracing::debug!(?settings, ?config, "settings of the test server");
    let server =
        csm::server::Server::from_monitor(Arc::clone(&monitor), config).without_scheduler();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let mut answers = String::new();
    let mut record = |status: StatusCode, body: String| {
        answers.push_str(&format!("{status} {body}\n"));
    };

    let add = |token: &str| {
        client
            .post(format!("{base}/api/stations"))
            .bearer_auth(token)
            .json(&serde_json::json!({"station_id": "SEC1", "name": "秘密", "vendor": "secretive"}))
            .send()
    };
    let wrong = add("guess").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    record(wrong.status(), wrong.text().await.unwrap());
    let added = add(ADMIN_TOKEN).await.unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    record(added.status(), added.text().await.unwrap());
    let refreshed = client
        .post(format!("{base}/api/stations/SEC1/refresh"))
        .send()
        .await
        .unwrap();
    let status = refreshed.status();
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["result"], "failed", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("HTTP 500"),
        "{body}"
    );
    record(status, body.to_string());
    for path in [
        "/api/stations/SEC1",
        "/api/stations",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
    ] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        record(response.status(), response.text().await.unwrap());
    }
    assert!(
        answers.contains("127.0.0.1:6379"),
        "readiness names the cache's address: {answers}"
    );
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("refresh failed"),
        "the failure was logged: {logs}"
    );
    assert!(
        logs.contains("${CSM_TEST_SECURITY_SECRET}"),
        "URLs are logged as configured"
    );
    for secret in [ADMIN_TOKEN, VENDOR_SECRET, REDIS_PASSWORD] {
        assert!(!logs.contains(secret), "{secret} is in the logs:\n{logs}");
        assert!(
            !answers.contains(secret),
            "{secret} is in an answer:\n{answers}"
        );
    }
}

#[tokio::test]
async fn cors_is_closed_unless_configured() {
    let preflight = |app: &crate::helpers::TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/stations"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let closed = spawn_app().await;
    let answer = preflight(&closed, "https://elsewhere.example")
        .await
        .unwrap();
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let plain = closed
        .client
        .get(closed.url("/api/stations"))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("access-control-allow-origin").is_none());
    closed.stop().await;

    let open = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |s| {
        s.server.cors_origins = vec!["https://ops.example.com".into()];
    })
    .await;
    let allowed = preflight(&open, "https://ops.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://ops.example.com"
    );
    let other = preflight(&open, "https://elsewhere.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    open.stop().await;
}

#[tokio::test]
async fn every_endpoint_refuses_bad_input_with_a_json_error() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |s| {
        s.server.admin_token = Some("t".into())
    })
    .await;
    let long = "x".repeat(5_000);
    let bad_ids = [
        "%20",
        "..%2F..%2Fetc%2Fpasswd",
        "a%27%3B%20DROP%20TABLE%20stations%3B--",
        "%FF%FE%FD",
        long.as_str(),
        "%E7%AB%99",
    ];
    let mut checked = 0;
    for id in bad_ids {
        for (method, path) in [
            ("GET", format!("/api/stations/{id}")),
            ("GET", format!("/api/stations/{id}/events")),
            ("POST", format!("/api/stations/{id}/refresh")),
            ("DELETE", format!("/api/stations/{id}")),
        ] {
            let response = app
                .client
                .request(method.parse().unwrap(), app.url(&path))
                .bearer_auth("t")
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(status.is_client_error(), "{method} {path}: {status}");
            let body: Value = response
                .json()
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert!(body["error"].is_string(), "{method} {path}: {body}");
            checked += 1;
        }
    }
    let bad_queries = [
        "/api/stations?status=",
        "/api/stations?status=free&status=busy",
        "/api/stations/S0001/events?port=-1",
        "/api/stations/S0001/events?limit=1001",
        "/api/stations/S0001/events?until=2026-13-40",
        "/api/events?station=../x",
        "/api/events?stations=S0001",
    ];
    for path in bad_queries {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
        checked += 1;
    }
    let bad_bodies: [(&str, &str); 5] = [
        ("application/json", "[]"),
        ("application/json", "{\"station_id\": 5, \"name\": \"x\"}"),
        (
            "application/json",
            "{\"station_id\": \"S9\", \"name\": \"x\", \"port_count\": -3}",
        ),
        ("application/json", "\u{0}\u{1}binary"),
        ("application/x-www-form-urlencoded", "station_id=S9&name=x"),
    ];
    for (content_type, body) in bad_bodies {
        let response = app
            .client
            .post(app.url("/api/stations"))
            .bearer_auth("t")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{content_type} {body:?}: {}",
            response.status()
        );
        let answer: Value = response.json().await.unwrap();
        assert!(answer["error"].is_string());
        checked += 1;
    }
    let oversized = app
        .client
        .get(app.url("/api/stations"))
        .header("x-padding", "y".repeat(100_000))
        .send()
        .await
        .unwrap();
    assert_eq!(
        oversized.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert!(
        oversized.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("limit is 32768")
    );
    let (status, _) = (
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        (),
    );
    assert_eq!(
        status,
        StatusCode::OK,
        "still serving after {checked} bad requests"
    );
    app.stop().await;
}

/// A connection that sent half a request header and then nothing.
async fn slow_client(address: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: csm\r\nX-Slow: ")
        .await
        .unwrap();
    stream
}

/// Whether the server closed the connection (a read ends or fails) within `wait`.
async fn closed_within(stream: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0_u8; 1024];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {} // a response (an error page) before the close
        }
    }
}

#[tokio::test]
async fn one_client_with_many_slow_connections_cannot_take_the_server_down() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.server.limits = csm::server::Limits {
            header_timeout: Duration::from_secs(1),
            keepalive_timeout: Duration::from_secs(2),
            max_connections: 300,
            max_sse_clients: 2,
            ..csm::server::Limits::default()
        };
    })
    .await;
    // Far more half-sent requests than the server takes at once.
    let mut slow = Vec::new();
    for _ in 0..1_000 {
        slow.push(slow_client(app.address).await);
    }
    // A normal client is answered while they hang: the longest-idle ones make room.
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..5 {
        let health = fresh.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
    // Every half-sent request is closed by the server: the ones that made room at once, the
    // others when their header time is up.
    let mut closed = 0;
    for stream in &mut slow {
        closed += usize::from(closed_within(stream, Duration::from_secs(5)).await);
    }
    assert_eq!(closed, slow.len(), "slow connections closed by the server");

    // An idle keep-alive connection is closed after its idle time, not kept forever.
    let mut idle = tokio::net::TcpStream::connect(app.address).await.unwrap();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: csm\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0_u8; 1024];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
    assert!(
        !closed_within(&mut idle, Duration::from_millis(500)).await,
        "kept open between requests for a while"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "closed once idle too long"
    );

    // Live event streams have a cap of their own, answered with a JSON 503 beyond it.
    let first = fresh.get(app.url("/api/events")).send().await.unwrap();
    let second = fresh.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = fresh.get(app.url("/api/events")).send().await.unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = third.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("CSM_MAX_SSE_CLIENTS"),
        "{body}"
    );
    drop(first);
    // A closed stream gives its place back.
    let mut reopened = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        reopened = fresh
            .get(app.url("/api/events"))
            .send()
            .await
            .unwrap()
            .status();
        if reopened == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reopened, StatusCode::OK);
    drop(second);
    app.stop().await;
}
