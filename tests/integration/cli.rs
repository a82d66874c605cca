//! The CLI commands, run as the binary runs them (parsed from arguments, output captured).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use csm::cli::{Cli, exit_code_for, render_error};
use csm::core::settings::Settings;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Backend, CacheKind, TestApp, TestDb, redis_url, spawn_app_with};

/// Runs `csm-cli <args>` with no vendor profiles; returns the outcome and what it printed.
async fn run(args: &[&str]) -> (anyhow::Result<ExitCode>, String) {
    run_adjusted(args, |_| {}).await
}

/// [`run`], with the settings the flags describe adjusted first.
async fn run_adjusted(
    args: &[&str],
    adjust: impl FnOnce(&mut Settings),
) -> (anyhow::Result<ExitCode>, String) {
    let argv = std::iter::once("csm-cli").chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv).expect("arguments parse");
    let mut out = Vec::new();
    let result = csm::cli::run_with(
        cli,
        |settings| {
            settings.vendors.dir = "/nonexistent-csm-vendors".into();
            adjust(settings);
        },
        &mut out,
    )
    .await;
    (result, String::from_utf8(out).expect("UTF-8 output"))
}

fn ok(outcome: &(anyhow::Result<ExitCode>, String)) -> &str {
    match &outcome.0 {
        Ok(code) => assert_eq!(*code, ExitCode::SUCCESS, "output: {}", outcome.1),
        Err(error) => panic!("failed: {error:#}\noutput: {}", outcome.1),
    }
    &outcome.1
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("cli.db").display())
}

#[tokio::test]
async fn init_db_is_idempotent_on_sqlite_and_mysql() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    for _ in 0..2 {
        let outcome = run(&["init-db", "--database-url", &url]).await;
        assert!(
            ok(&outcome).starts_with("database ready: sqlite"),
            "{}",
            outcome.1
        );
    }
    let db = TestDb::new();
    for _ in 0..2 {
        let outcome = run(&["init-db", "--database-url", &db.url]).await;
        assert!(
            ok(&outcome).contains("database ready: mysql 127.0.0.1:3306/csm_t_"),
            "{}",
            outcome.1
        );
    }
}

#[tokio::test]
async fn stations_are_added_imported_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let db = ["--database-url", url.as_str()];
    let with = |rest: &[&'static str]| [rest, &db[..]].concat();
    ok(&run(&with(&[
        "stations",
        "add",
        "S1",
        "信阳学院 A 区",
        "--ports",
        "12",
        "--lat",
        "32.1",
        "--lng",
        "114.0",
    ]))
    .await);
    let duplicate = run(&with(&["stations", "add", "S1", "again"])).await;
    let err = duplicate.0.unwrap_err();
    assert_eq!(render_error(&err), "station S1 already exists");
    assert_eq!(exit_code_for(&err), 1);

    let csv = dir.path().join("stations.csv");
    std::fs::write(
        &csv,
        "id,name,address,port_count\nS2,东区宿舍,东区,10\nS3,图书馆,,6\n",
    )
    .unwrap();
    let csv_path = csv.to_str().unwrap().to_owned();
    let outcome = run(&[&["stations", "import", csv_path.as_str()][..], &db[..]].concat()).await;
    assert!(
        ok(&outcome).contains("imported 2 stations") && outcome.1.contains("2 added"),
        "{}",
        outcome.1
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,name,lat\nS4,好,32\nS5,坏,999\n../x,路径,1\n").unwrap();
    let bad_path = bad.to_str().unwrap().to_owned();
    let outcome = run(&[&["stations", "import", bad_path.as_str()][..], &db[..]].concat()).await;
    let message = render_error(&outcome.0.unwrap_err());
    assert!(
        message.contains("line 3: lat 999 is outside -90..90"),
        "{message}"
    );
    assert!(
        message.contains("line 4: station id contains '/'"),
        "{message}"
    );
    assert!(message.contains("nothing was imported"), "{message}");

    let outcome = run(&with(&["stations", "list", "--json"])).await;
    let listed: serde_json::Value = serde_json::from_str(ok(&outcome)).unwrap();
    let ids: Vec<&str> = listed["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["station_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["S1", "S2", "S3"],
        "S4 of the bad file was not written"
    );
    assert_eq!(listed["stations"][0]["name"], "信阳学院 A 区");

    ok(&run(&with(&["stations", "remove", "S3"])).await);
    let missing = run(&with(&["stations", "remove", "S3"])).await;
    assert_eq!(
        render_error(&missing.0.unwrap_err()),
        "station S3 not found"
    );
    let table = run(&with(&["stations", "list"])).await;
    assert!(ok(&table).contains("2 stations"), "{}", table.1);
}

#[tokio::test]
async fn refresh_and_ports_over_http_with_the_native_profile() {
    let sim = Arc::new(csm::core::charger::Simulator::with_fleet(5, 1.0, 30, 12));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(csm::cli::simulate::serve(
        listener,
        sim,
        std::future::pending(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    // The base URL override as the environment would give it (CSM_VENDOR_CSM_BASE_URL).
    let refresh = |extra: &'static [&'static str]| {
        let url = url.clone();
        let base = base.clone();
        async move {
            run_adjusted(extra, |settings| {
                settings.database.url = Some(url.into());
                settings.vendors.base_urls.insert("CSM".into(), base);
            })
            .await
        }
    };
    let synced = refresh(&["stations", "sync", "--vendor", "csm"]).await;
    assert!(ok(&synced).contains("30 added"), "{}", synced.1);
    let first = refresh(&["refresh", "--all", "--json"]).await;
    let summary: serde_json::Value = serde_json::from_str(ok(&first)).unwrap();
    assert_eq!(summary["stations"], 30);
    assert_eq!(summary["ok"], 30);
    assert_eq!(summary["ports"], 360);
    assert_eq!(summary["status_changes"], 360, "every port is new");
    let second = refresh(&["refresh", "--all", "--json"]).await;
    let summary: serde_json::Value = serde_json::from_str(ok(&second)).unwrap();
    assert!(
        summary["rows_written"].as_u64().unwrap() < 36,
        "a second cycle right after writes only changes: {summary}"
    );
    // Rounds in one process: a summary each, the later ones writing only changes.
    let rounds = refresh(&[
        "refresh", "--all", "--rounds", "2", "--every", "1", "--json",
    ])
    .await;
    let rounds: Vec<serde_json::Value> = serde_json::from_str(ok(&rounds)).unwrap();
    assert_eq!(rounds.len(), 2);
    for round in &rounds {
        assert_eq!(
            (round["stations"].as_u64(), round["ok"].as_u64()),
            (Some(30), Some(30))
        );
        assert!(round["rows_written"].as_u64().unwrap() < 36, "{round}");
    }
    let text = refresh(&["refresh", "S0001", "S0002", "--rounds", "3"]).await;
    let lines: Vec<&str> = ok(&text).lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[2].starts_with("round 3/3: refreshed 2 stations"),
        "{lines:?}"
    );
    let ports = refresh(&["ports", "S0007"]).await;
    let text = ok(&ports);
    assert!(
        text.contains("S0007") && text.contains("voltage") && text.lines().count() > 12,
        "{text}"
    );
    let unknown = refresh(&["refresh", "NOPE"]).await;
    assert_eq!(
        render_error(&unknown.0.unwrap_err()),
        "station NOPE not found"
    );
    let usage = refresh(&["refresh"]).await;
    assert_eq!(exit_code_for(&usage.0.unwrap_err()), 2);
}

#[tokio::test]
async fn test_connection_reports_each_target_without_secrets() {
    let vendor = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(404))
        .mount(&vendor)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let redis = redis_url();
    let args = [
        "test-connection",
        "--database-url",
        url.as_str(),
        "--redis-url",
        redis.as_str(),
    ];
    let (code, text) = run_adjusted(&args, |settings| {
        settings
            .vendors
            .base_urls
            .insert("CSM".into(), vendor.uri());
    })
    .await;
    let code = code.unwrap();
    assert_eq!(code, ExitCode::SUCCESS, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("database") && l.contains(" OK ")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("cache")
            && l.contains("redis 127.0.0.1:6379")
            && l.contains(" OK ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("vendor") && l.contains(&vendor.uri()) && l.contains(" OK ")),
        "{text}"
    );

    let args = [
        "test-connection",
        "--database-url",
        "mysql://root:hunter2-db@127.0.0.1:1/csm",
        "--redis-url",
        "redis://:hunter2-redis@127.0.0.1:2",
    ];
    let (code, text) = run_adjusted(&args, |settings| {
        settings
            .vendors
            .base_urls
            .insert("CSM".into(), "http://127.0.0.1:3".into());
    })
    .await;
    let code = code.unwrap();
    assert_eq!(code, ExitCode::FAILURE);
    assert!(text.contains("3 of 3 checks failed"), "{text}");
    for (kind, place) in [
        ("database", "127.0.0.1:1"),
        ("cache", "127.0.0.1:2"),
        ("vendor", "127.0.0.1:3"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(kind) && l.contains("FAIL") && l.contains(place)),
            "{kind} at {place}: {text}"
        );
    }
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn bad_settings_are_usage_errors() {
    let (result, _) = run(&["init-db", "--database-url", "postgres://x/y"]).await;
    let err = result.unwrap_err();
    assert_eq!(exit_code_for(&err), 2);
    assert!(
        render_error(&err)
            .starts_with("CSM_DATABASE_URL: \"postgres://x/y\" is not a database URL")
    );
    let (result, _) = run(&["ports", "S1", "--redis-url", "http://cache"]).await;
    assert_eq!(exit_code_for(&result.unwrap_err()), 2);
    assert!(Cli::try_parse_from(["csm-cli", "refresh", "--bogus"]).is_err());
}

/// The CLI's `--json` of a command run against the database and cache of `app`.
async fn json_of(app: &TestApp, args: &[&str]) -> serde_json::Value {
    let output = output_of(app, args).await;
    serde_json::from_str(&output).unwrap_or_else(|e| panic!("{args:?}: {e}: {output}"))
}

/// What a command prints, run against the app's database and cache.
pub(crate) async fn output_of(app: &TestApp, args: &[&str]) -> String {
    let settings = app.monitor.settings().clone();
    let outcome = run_adjusted(args, move |s| {
        s.database = settings.database;
        s.cache = settings.cache;
    })
    .await;
    ok(&outcome).to_owned()
}

/// The API's answer, without the moment it was made.
async fn api_json(app: &TestApp, path: &str) -> serde_json::Value {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    let mut document: serde_json::Value = response.json().await.unwrap();
    document.as_object_mut().unwrap().remove("timestamp");
    document
}

#[tokio::test]
async fn the_clis_json_is_the_apis_document() {
    let app = spawn_app_with(Backend::MySql, CacheKind::Redis, |config| {
        // Demo stations with a simulated past, so that history has something to show.
        config.core.demo = Some(true);
    })
    .await;
    let stations = app.monitor.stations().all().await.unwrap().to_vec();
    app.monitor.refresh().many(stations.clone(), |_| {}).await;
    app.monitor.refresh().many(stations, |_| {}).await;
    app.monitor.flush().await;
    let undated = |mut document: serde_json::Value| {
        document.as_object_mut().unwrap().remove("timestamp");
        document
    };
    let (since, until) = ("2026-11-25T00:00:00Z", "2030-01-01T00:00:00Z");
    let history_path = format!("/api/stations/S0001/history?from={since}&to={until}&points=100");
    let sessions_path = format!("/api/stations/S0001/sessions?from={since}&to={until}&limit=50");
    let pairs: [(&[&str], &str); 7] = [
        (&["ports", "S0002", "--json"], "/api/stations/S0002"),
        (&["stations", "list", "--json"], "/api/stations"),
        (
            &[
                "stations", "list", "--json", "--view", "summary", "--limit", "2", "--offset", "1",
            ],
            "/api/stations?view=summary&limit=2&offset=1",
        ),
        (
            &["stations", "list", "--json", "--q", "s0003"],
            "/api/stations?q=s0003",
        ),
        (
            &["events", "S0001", "--json", "--limit", "5"],
            "/api/stations/S0001/events?limit=5",
        ),
        (
            &[
                "history", "S0001", "--json", "--since", since, "--until", until, "--points", "100",
            ],
            &history_path,
        ),
        (
            &[
                "sessions", "S0001", "--json", "--since", since, "--until", until, "--limit", "50",
            ],
            &sessions_path,
        ),
    ];
    for (args, path) in pairs {
        // A port's free estimate counts the past sessions at least as long as its own, which
        // grows by the moment: taken across a whole second of a session's length, the two
        // documents differ there. Taken again, they agree.
        let mut documents = Vec::new();
        for _ in 0..3 {
            let cli = undated(json_of(&app, args).await);
            let api = api_json(&app, path).await;
            let same = cli == api;
            documents.push((cli, api));
            if same {
                break;
            }
        }
        let (cli, api) = documents.pop().unwrap();
        assert_eq!(cli, api, "csm-cli {args:?} against GET {path}");
        assert!(cli.as_object().is_some_and(|o| o.len() >= 2), "{cli}");
    }
    let ports = json_of(&app, &["ports", "S0002", "--json"]).await;
    assert!(
        ports["ports"].as_array().is_some_and(|p| !p.is_empty()),
        "{ports}"
    );
    // Statistics count the stays running now up to the moment they are asked: what was
    // stored is equal, what runs on differs by the moments between the two questions.
    for (args, path) in [
        (
            &["stats", "S0001", "--json", "--days", "3"][..],
            "/api/stations/S0001/stats?days=3",
        ),
        (&["stats", "--json", "--days", "3"][..], "/api/stats?days=3"),
    ] {
        let cli = json_of(&app, args).await;
        let api = api_json(&app, path).await;
        let keys =
            |d: &serde_json::Value| d.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&cli),
            keys(&api),
            "csm-cli {args:?} against GET {path}"
        );
        for stored in [
            "days",
            "from",
            "timezone",
            "sessions",
            "median_session_minutes",
            "p90_session_minutes",
            "session_sample",
            "energy_kwh",
        ] {
            assert_eq!(
                cli[stored], api[stored],
                "{stored} of csm-cli {args:?} against GET {path}"
            );
        }
        let (a, b) = (
            cli["utilisation"].as_f64().unwrap(),
            api["utilisation"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 0.01, "{a} against {b}");
    }
    for (args, path) in [
        (
            &["events", "S0001", "--csv", "--limit", "20"][..],
            "/api/stations/S0001/events?limit=20&format=csv".to_owned(),
        ),
        (
            &[
                "sessions", "S0001", "--csv", "--since", since, "--until", until, "--limit", "50",
            ][..],
            format!("{sessions_path}&format=csv"),
        ),
    ] {
        let cli = output_of(&app, args).await;
        let api = app.text(&path).await;
        assert_eq!(cli, api, "csm-cli {args:?} against GET {path}");
        assert!(cli.lines().count() > 2, "{cli}");
    }
    app.stop().await;
}

#[tokio::test]
async fn vendors_check_shows_what_each_pointer_of_a_profile_found() {
    let vendor = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/ports/V1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"code":0,"msg":"ok","data":[{"id":1,"st":0,"voltage":221.5},{"id":2,"st":1,"voltage":219.0}]}"#,
        ))
        .mount(&vendor)
        .await;
    Mock::given(wiremock::matchers::path("/ports/GONE"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"msg":"ok","data":[]}"#))
        .mount(&vendor)
        .await;
    let dir = tempfile::tempdir().unwrap();
    // The vendor sends "voltage"; the profile looks for "volts".
    std::fs::write(
        dir.path().join("probe.toml"),
        format!(
            "base_url = \"{}\"\n[request]\nurl = \"{{base_url}}/ports/{{station_id}}\"\n\
             [success]\npointer = \"/code\"\nequals = 0\nmessage_pointer = \"/msg\"\n\
             [ports]\npointer = \"/data\"\n[ports.fields]\nnumber = \"/id\"\nstatus = \"/st\"\nvoltage = \"/volts\"\n\
             [status.codes]\n\"0\" = \"free\"\n\"1\" = \"occupied\"\n",
            vendor.uri()
        ),
    )
    .unwrap();
    let vendors = dir.path().to_path_buf();
    let check = |station: &'static str, json: bool| {
        let vendors = vendors.clone();
        async move {
            let mut args = vec!["vendors", "check", "probe", station];
            if json {
                args.push("--json");
            }
            run_adjusted(&args, move |settings| settings.vendors.dir = vendors).await
        }
    };
    let outcome = check("V1", false).await;
    let text = ok(&outcome);
    assert!(text.contains("/ports/V1 answered"), "{text}");
    assert!(text.contains("the number 0"), "the flag: {text}");
    assert!(
        text.contains("✗ nothing in any of the 2 ports: csm shows it as not sent"),
        "the wrong pointer stands out: {text}"
    );
    assert!(text.contains("2 ports read"), "{text}");
    assert!(text.contains("not sent"), "{text}");

    let outcome = check("V1", true).await;
    let document: serde_json::Value = serde_json::from_str(ok(&outcome)).unwrap();
    let voltage = document["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "ports.fields.voltage")
        .unwrap();
    assert_eq!(voltage["missing"], true);
    assert_eq!(document["ports"].as_array().unwrap().len(), 2);
    assert_eq!(document["ports"][0]["voltage"], serde_json::Value::Null);

    // No success flag where the profile looks: exit 1, the profile blamed, not the vendor.
    let (result, text) = check("GONE", false).await;
    assert_eq!(result.unwrap(), ExitCode::FAILURE, "{text}");
    assert!(
        text.contains(
            "probe: /code is missing: the profile's success.pointer does not match this answer"
        ),
        "{text}"
    );
    let unknown = run_adjusted(&["vendors", "check", "nope", "V1"], move |settings| {
        settings.vendors.dir = vendors
    })
    .await;
    let error = unknown.0.unwrap_err();
    assert!(
        format!("{error:#}").contains("no vendor profile named \"nope\""),
        "{error:#}"
    );
}
