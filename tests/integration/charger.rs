//! Vendor profiles and the HTTP adapter against wiremock servers: every example profile with
//! its sample response, HTTP failures and what is retried, secrets kept out of errors.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use csm::core::charger::{ChargerApi, ChargerError, HttpChargerApi, VendorClient, VendorProfile};
use csm::core::model::{PortStatus, Snapshot, Station, StationId};
use csm::core::refresh::RetryPolicy;
use csm::core::refresh::retry::fetch_with_retry;
use csm::core::settings::Settings;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{station, test_settings};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new("fixtures/vendors").join(name))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn profile(name: &str) -> VendorProfile {
    VendorProfile::load_dir(Path::new("../vendors"))
        .expect("example profiles load")
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no example profile {name}"))
}

fn api(profile: VendorProfile, server: &MockServer, settings: &Settings) -> HttpChargerApi {
    HttpChargerApi::new(
        profile,
        Some(server.uri()),
        VendorClient::new(&settings.vendors, 8).unwrap(),
        &settings.vendors,
    )
}

fn statuses(snapshot: &Snapshot) -> Vec<PortStatus> {
    snapshot.ports.iter().map(|p| p.status).collect()
}

#[test]
fn every_example_profile_reads_its_sample() {
    let samples = [
        ("mamcharge", "mamcharge-like.json", 12),
        ("mamcharge", "mamcharge-like-error.json", 0),
        ("sevenmate", "sevenmate-like.json", 10),
        ("dianlvmama", "dianlvmama-like.json", 6),
    ];
    let id = StationId::parse("S1").unwrap();
    let now = chrono::Utc::now();
    for (name, sample, ports) in samples {
        let profile = profile(name);
        let body = fixture(sample);
        match profile.parse_response(&id, "http://x", body.as_bytes(), now) {
            Ok(snapshot) => assert_eq!(snapshot.ports.len(), ports, "{sample}"),
            Err(error) => assert_eq!((ports, error.kind()), (0, "vendor"), "{sample}: {error}"),
        }
    }
}

#[tokio::test]
async fn mamcharge_profile_reads_its_sample() {
    // SAFETY of the test: the variable names are unique to this test.
    unsafe_env("MAMCHARGE_TOKEN", "tok-123");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/device/port/list"))
        .and(query_param("pno", "9313600954"))
        .and(header("authorization", "Bearer tok-123"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("mamcharge-like.json")))
        .expect(1)
        .mount(&server)
        .await;
    let settings = test_settings();
    let snapshot = api(profile("mamcharge"), &server, &settings)
        .fetch(&station("9313600954", "mamcharge", 12))
        .await
        .unwrap();
    use PortStatus::{Free as F, Occupied as O};
    assert_eq!(statuses(&snapshot), [F, O, O, F, F, O, F, O, F, F, O, F]);
    assert_eq!(
        snapshot.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    assert_eq!(snapshot.ports[1].raw_code.as_deref(), Some("10"));
    for port in &snapshot.ports {
        assert_eq!(
            (port.voltage, port.current, port.power),
            (None, None, None),
            "nothing invented"
        );
    }
}

#[tokio::test]
async fn mamcharge_error_sample_is_a_permanent_vendor_error() {
    unsafe_env("MAMCHARGE_TOKEN", "tok-123");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(fixture("mamcharge-like-error.json")),
        )
        .mount(&server)
        .await;
    let settings = test_settings();
    let err = api(profile("mamcharge"), &server, &settings)
        .fetch(&station("9313600954", "mamcharge", 12))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "mamcharge refused the request: token已过期，请重新登录"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn sevenmate_profile_posts_a_body_and_reads_session_ends() {
    unsafe_env("SEVENMATE_APP_KEY", "app-key-7");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/device/channels"))
        .and(header("x-app-key", "app-key-7"))
        .and(body_json(serde_json::json!({"deviceId": "88213"})))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("sevenmate-like.json")))
        .expect(1)
        .mount(&server)
        .await;
    let settings = test_settings();
    let snapshot = api(profile("sevenmate"), &server, &settings)
        .fetch(&station("88213", "sevenmate", 10))
        .await
        .unwrap();
    use PortStatus::{Fault as X, Free as F, Occupied as O};
    assert_eq!(statuses(&snapshot), [F, O, O, X, F, F, O, F, F, F]);
    let ends: Vec<Option<i64>> = snapshot
        .ports
        .iter()
        .map(|p| p.session_ends_at.map(|t| t.timestamp()))
        .collect();
    assert_eq!(ends[1], Some(1_795_500_000));
    assert_eq!(ends[2], Some(1_795_503_600));
    assert_eq!(ends[6], Some(1_795_498_200));
    assert_eq!(
        ends.iter().filter(|e| e.is_some()).count(),
        3,
        "only running sessions have an end"
    );
    assert!(snapshot.ports.iter().all(|p| p.voltage.is_none()));
}

#[tokio::test]
async fn dianlvmama_profile_reads_measurements() {
    unsafe_env("DIANLVMAMA_TOKEN", "query-secret-42");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/charging/station/DL-20391/sockets"))
        .and(query_param("token", "query-secret-42"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("dianlvmama-like.json")))
        .expect(1)
        .mount(&server)
        .await;
    let settings = test_settings();
    let snapshot = api(profile("dianlvmama"), &server, &settings)
        .fetch(&station("DL-20391", "dianlvmama", 6))
        .await
        .unwrap();
    use PortStatus::{Fault as X, Free as F, Occupied as O};
    assert_eq!(statuses(&snapshot), [F, O, O, X, F, O]);
    let p2 = &snapshot.ports[1];
    assert_eq!(
        (p2.voltage, p2.current, p2.power),
        (Some(219.8), Some(1.82), Some(400.0))
    );
    let p1 = &snapshot.ports[0];
    assert_eq!(
        (p1.voltage, p1.current, p1.power),
        (Some(221.4), Some(0.0), Some(0.0)),
        "a sent zero stays zero"
    );
    assert_eq!(snapshot.ports[3].raw_code.as_deref(), Some("5"));
}

#[tokio::test]
async fn bare_code_profile_numbers_ports_by_position() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/status/B1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"ok": "1", "sockets": ["v2", 0, 1, "1", 3, 9]})),
        )
        .mount(&server)
        .await;
    let settings = test_settings();
    let snapshot = api(profile("bare-codes"), &server, &settings)
        .fetch(&station("B1", "bare-codes", 5))
        .await
        .unwrap();
    use PortStatus::{Fault as X, Free as F, Occupied as O, Unknown as U};
    assert_eq!(statuses(&snapshot), [F, O, O, X, U]);
    assert_eq!(snapshot.ports[4].port, 5);
}

#[tokio::test]
async fn native_profile_reads_the_simulator_over_http_and_lists_its_stations() {
    let sim = Arc::new(csm::core::charger::Simulator::with_fleet(9, 1.0, 20, 12));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(csm::cli::simulate::serve(
        listener,
        Arc::clone(&sim),
        std::future::pending(),
    ));
    let settings = test_settings();
    let api = HttpChargerApi::new(
        VendorProfile::native(),
        Some(base),
        VendorClient::new(&settings.vendors, 8).unwrap(),
        &settings.vendors,
    );
    let listed = api.list_stations().await.unwrap();
    assert_eq!(listed.len(), 20);
    assert_eq!(listed[0].vendor, "csm");
    assert_eq!(listed[0].port_count, 12);
    assert!(listed[0].lat.is_some());
    let snapshot = api.fetch(&listed[3]).await.unwrap();
    let direct = sim.snapshot_at(&sim.fleet()[3], snapshot.observed_at);
    assert_eq!(snapshot.ports.len(), 12);
    for (http, local) in snapshot.ports.iter().zip(&direct.ports) {
        assert_eq!(http.status, local.status);
        assert_eq!(http.current, local.current);
        assert_eq!(http.power.is_some(), local.power.is_some());
    }
    let err = api.fetch(&station("S9999", "csm", 12)).await.unwrap_err();
    assert!(
        matches!(err, ChargerError::Status { status: 404, .. }),
        "{err}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn http_failures_are_classified_for_retries() {
    let server = MockServer::start().await;
    let routes: [(&str, ResponseTemplate); 7] = [
        (
            "/s/E500/p",
            ResponseTemplate::new(503).set_body_string("maintenance"),
        ),
        (
            "/s/PAGE/p",
            ResponseTemplate::new(502).set_body_string(
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n",
            ),
        ),
        ("/s/E404/p", ResponseTemplate::new(404)),
        (
            "/s/E429/p",
            ResponseTemplate::new(429).insert_header("retry-after", "7"),
        ),
        (
            "/s/HTML/p",
            ResponseTemplate::new(200).set_body_string("<html>login</html>"),
        ),
        (
            "/s/BIG/p",
            ResponseTemplate::new(200)
                .set_body_string(format!("{{\"ports\": \"{}\"}}", "x".repeat(5_000))),
        ),
        (
            "/s/SLOW/p",
            ResponseTemplate::new(200)
                .set_body_string("{\"ports\": []}")
                .set_delay(Duration::from_secs(5)),
        ),
    ];
    for (route, response) in routes {
        Mock::given(path(route))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    let profile = VendorProfile::from_toml(
        "[request]\nurl = \"{base_url}/s/{station_id}/p\"\n[ports]\npointer = \"/ports\"\n[ports.fields]\nstatus = \"/s\"\n[status]\n",
        "t",
    )
    .unwrap();
    let mut settings = test_settings();
    settings.vendors.http_timeout_ms = 300;
    settings.vendors.http_max_body_bytes = 1_000;
    let api = api(profile, &server, &settings);
    let fetch = |id: &'static str| {
        let api = api.clone();
        async move { api.fetch(&station(id, "t", 1)).await.unwrap_err() }
    };
    let e500 = fetch("E500").await;
    assert!(
        e500.is_transient() && e500.to_string().contains("HTTP 503: maintenance"),
        "{e500}"
    );
    // An error page is named by its title, not by its markup.
    let page = fetch("PAGE").await;
    assert!(page.is_transient(), "{page}");
    assert!(
        page.to_string()
            .ends_with("/s/PAGE/p answered HTTP 502: 502 Bad Gateway"),
        "{page}"
    );
    let e404 = fetch("E404").await;
    assert!(!e404.is_transient(), "{e404}");
    let e429 = fetch("E429").await;
    assert!(e429.is_transient());
    assert_eq!(e429.retry_after(), Some(Duration::from_secs(7)));
    let html = fetch("HTML").await;
    assert!(
        matches!(html, ChargerError::NotJson { .. }) && !html.is_transient(),
        "{html}"
    );
    let big = fetch("BIG").await;
    assert!(
        matches!(big, ChargerError::TooLarge { limit: 1_000, .. }),
        "{big}"
    );
    let started = Instant::now();
    let slow = fetch("SLOW").await;
    assert!(
        matches!(slow, ChargerError::Timeout { after_ms: 300, .. }) && slow.is_transient(),
        "{slow}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout"
    );
    let refused = HttpChargerApi::new(
        VendorProfile::native(),
        Some("http://127.0.0.1:1".into()),
        VendorClient::new(&settings.vendors, 8).unwrap(),
        &settings.vendors,
    )
    .fetch(&station("A", "csm", 1))
    .await
    .unwrap_err();
    assert!(
        matches!(refused, ChargerError::Connect { .. }) && refused.is_transient(),
        "{refused}"
    );
    assert!(refused.to_string().contains("127.0.0.1:1"), "{refused}");
}

#[tokio::test]
async fn redirects_are_followed_and_credentials_stay_with_their_origin() {
    let server = MockServer::start().await;
    let other = MockServer::start().await;
    let redirect = |to: String| ResponseTemplate::new(302).insert_header("location", to);
    let ports = r#"{"ports": [{"s": "free"}]}"#;
    // Same origin: a relative Location, the headers kept.
    Mock::given(path("/s/MOVED/p"))
        .respond_with(redirect("/new/MOVED/p".into()))
        .mount(&server)
        .await;
    Mock::given(path("/new/MOVED/p"))
        .and(header("authorization", "Bearer t-1"))
        .and(header("x-api-key", "k-1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(ports))
        .expect(1)
        .mount(&server)
        .await;
    // Another origin: its own headers go on, credentials do not.
    Mock::given(path("/s/AWAY/p"))
        .respond_with(redirect(format!("{}/there/p", other.uri())))
        .mount(&server)
        .await;
    Mock::given(path("/there/p"))
        .and(header("x-api-key", "k-1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(ports))
        .mount(&other)
        .await;
    // A loop ends with an error naming it.
    Mock::given(path("/s/LOOP/p"))
        .respond_with(redirect("/s/LOOP/p".into()))
        .mount(&server)
        .await;
    let profile = VendorProfile::from_toml(
        "[request]\nurl = \"{base_url}/s/{station_id}/p\"\nheaders = { Authorization = \"Bearer t-1\", X-Api-Key = \"k-1\", User-Agent = \"vendor-app/2.1\" }\n[ports]\npointer = \"/ports\"\n[ports.fields]\nstatus = \"/s\"\n[status.codes]\nfree = \"free\"\n",
        "t",
    )
    .unwrap();
    let api = api(profile, &server, &test_settings());
    let moved = api.fetch(&station("MOVED", "t", 1)).await.unwrap();
    assert_eq!(statuses(&moved), [PortStatus::Free]);
    let away = api.fetch(&station("AWAY", "t", 1)).await.unwrap();
    assert_eq!(statuses(&away), [PortStatus::Free]);
    let seen = other.received_requests().await.unwrap();
    assert_eq!(seen.len(), 1);
    assert!(
        !seen[0].headers.contains_key("authorization"),
        "the credentials stayed with their origin: {:?}",
        seen[0].headers
    );
    let agents: Vec<_> = seen[0].headers.get_all("user-agent").iter().collect();
    assert_eq!(
        agents,
        ["vendor-app/2.1"],
        "the profile's own User-Agent, once"
    );
    let looped = api.fetch(&station("LOOP", "t", 1)).await.unwrap_err();
    assert!(
        looped.to_string().contains("more than 10 redirects"),
        "{looped}"
    );
}

#[tokio::test]
async fn retries_recover_from_transient_failures_but_not_from_permanent_ones() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/stations/FLAKY/ports"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/stations/FLAKY/ports"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"ports": [{"port": 1, "status": "free"}]})),
        )
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/stations/GONE/ports"))
        .respond_with(ResponseTemplate::new(403))
        .expect(1)
        .mount(&server)
        .await;
    let settings = test_settings();
    let api = api(VendorProfile::native(), &server, &settings);
    let policy = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    let flaky = fetch_with_retry(&api, &station("FLAKY", "csm", 1), &policy).await;
    assert_eq!(flaky.attempts, 3);
    assert_eq!(flaky.result.unwrap().ports[0].status, PortStatus::Free);
    let gone = fetch_with_retry(&api, &station("GONE", "csm", 1), &policy).await;
    assert_eq!(gone.attempts, 1, "4xx is not retried");
}

#[tokio::test]
async fn secrets_never_appear_in_errors_and_missing_ones_are_named() {
    unsafe_env("CSM_TEST_QUERY_SECRET", "s3cr3t-in-query");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let profile = VendorProfile::from_toml(
        "[request]\nurl = \"{base_url}/p/{station_id}?key=${CSM_TEST_QUERY_SECRET}\"\n[ports]\npointer = \"/p\"\n[ports.fields]\nstatus = \"/s\"\n[status]\n",
        "t",
    )
    .unwrap();
    let settings = test_settings();
    let err = api(profile, &server, &settings)
        .fetch(&station("A", "t", 1))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cr3t-in-query"), "{text}");
    assert!(
        text.contains("${CSM_TEST_QUERY_SECRET}"),
        "the URL is shown as configured: {text}"
    );
    let missing = VendorProfile::from_toml(
        "[request]\nurl = \"{base_url}/p/{station_id}\"\nheaders = { Authorization = \"${CSM_TEST_NEVER_SET_VAR}\" }\n[ports]\npointer = \"/p\"\n[ports.fields]\nstatus = \"/s\"\n[status]\n",
        "t",
    )
    .unwrap();
    let err = api(missing, &server, &settings)
        .fetch(&station("A", "t", 1))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t: environment variable CSM_TEST_NEVER_SET_VAR (used by request.headers.Authorization) is not set"
    );
}

/// A source that fails transiently a given number of times, recording when each attempt came.
#[derive(Debug)]
struct Flaky {
    failures: std::sync::Mutex<Vec<ChargerError>>,
    attempts: std::sync::Mutex<Vec<tokio::time::Instant>>,
}

#[async_trait]
impl ChargerApi for Flaky {
    fn vendor(&self) -> &str {
        "flaky"
    }
    fn endpoint(&self) -> Option<String> {
        None
    }
    async fn fetch(&self, station: &Station) -> Result<Snapshot, ChargerError> {
        self.attempts
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        match self.failures.lock().unwrap().pop() {
            Some(error) => Err(error),
            None => Ok(Snapshot {
                station_id: station.id.clone(),
                observed_at: chrono::Utc::now(),
                ports: Vec::new(),
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

fn status_error(status: u16, retry_after: Option<u64>) -> ChargerError {
    ChargerError::Status {
        vendor: "flaky".into(),
        url: "http://vendor".into(),
        status,
        retry_after: retry_after.map(Duration::from_secs),
        body: String::new(),
    }
}

fn gaps(attempts: &[tokio::time::Instant]) -> Vec<Duration> {
    attempts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_exponentially_with_jitter_and_honours_retry_after() {
    let policy = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(5),
        max_retry_after: Duration::from_secs(30),
    };
    let flaky = Flaky {
        failures: std::sync::Mutex::new(vec![
            status_error(503, None),
            status_error(503, None),
            status_error(500, None),
        ]),
        attempts: Default::default(),
    };
    let fetched = fetch_with_retry(&flaky, &station("A", "flaky", 1), &policy).await;
    assert!(fetched.result.is_ok());
    assert_eq!(fetched.attempts, 4);
    let waits = gaps(&flaky.attempts.lock().unwrap());
    for (retry, gap) in waits.iter().enumerate() {
        let step = Duration::from_millis(200 * 2_u64.pow(retry as u32));
        // The wait is below twice the step; tokio's timers round it up to the millisecond.
        assert!(
            *gap >= step && *gap <= step * 2,
            "retry {retry}: waited {gap:?}, step {step:?}"
        );
    }

    let limited = Flaky {
        failures: std::sync::Mutex::new(vec![status_error(429, Some(12))]),
        attempts: Default::default(),
    };
    let fetched = fetch_with_retry(&limited, &station("A", "flaky", 1), &policy).await;
    assert!(fetched.result.is_ok());
    assert_eq!(
        gaps(&limited.attempts.lock().unwrap()),
        [Duration::from_secs(12)],
        "waits exactly what Retry-After asks"
    );

    let too_long = Flaky {
        failures: std::sync::Mutex::new(vec![status_error(429, Some(3_600))]),
        attempts: Default::default(),
    };
    let fetched = fetch_with_retry(&too_long, &station("A", "flaky", 1), &policy).await;
    assert_eq!(
        fetched.attempts, 1,
        "a vendor asking for an hour is not waited for"
    );

    let always = Flaky {
        failures: std::sync::Mutex::new((0..10).map(|_| status_error(500, None)).collect()),
        attempts: Default::default(),
    };
    let fetched = fetch_with_retry(&always, &station("A", "flaky", 1), &policy).await;
    assert_eq!(fetched.attempts, 4, "one attempt and max_retries retries");
    assert!(fetched.result.is_err());
}

/// Sets an environment variable for a test. Each test uses its own variable names, so parallel
/// tests do not see each other's values.
fn unsafe_env(name: &str, value: &str) {
    // Edition 2024 marks set_var unsafe because other threads may read the environment; the
    // names here are private to one test each.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(name, value);
    }
}
