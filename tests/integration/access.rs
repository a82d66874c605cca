//! Per-person access: tokens with roles (added with the CLI and the API), the 401/403 matrix of
//! roles × endpoints, revocation, the audit log (API, CSV, CLI) and reads closed by
//! `CSM_READ_REQUIRES_TOKEN` — on SQLite with the in-process cache and on MariaDB with Redis.

use std::time::Duration;

use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, CacheKind, SCRIPTED, TestApp, spawn_app_with};

crate::helpers::on_each!(
    sqlite_memory(Backend::Sqlite, CacheKind::Memory),
    mysql_redis(Backend::MySql, CacheKind::Redis) =>

    roles_decide_who_may_do_what_and_the_audit_log_says_who_did
);

/// `csm-cli ARGS --database-url URL` (as the binary runs it): what it printed.
async fn cli(args: &[&str], url: &str) -> String {
    let argv = std::iter::once("csm-cli")
        .chain(args.iter().copied())
        .chain(["--database-url", url]);
    let cli = csm::cli::Cli::try_parse_from(argv).expect("arguments parse");
    let mut out = Vec::new();
    let result = csm::cli::run(cli, &mut out).await;
    let printed = String::from_utf8(out).unwrap();
    assert!(result.is_ok(), "csm-cli {args:?}: {result:?}\n{printed}");
    printed
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn roles_decide_who_may_do_what_and_the_audit_log_says_who_did(
    backend: Backend,
    cache: CacheKind,
) {
    let app = spawn_app_with(backend, cache, |s| {
        s.server.admin_token = Some("boot-token".into())
    })
    .await;
    let url = app.store.url.clone();

    // A viewer's token made with the CLI (before or beside any server), the others through the
    // API by the bootstrap admin.
    let added: Value = serde_json::from_str(
        &cli(
            &["tokens", "add", "vera", "--role", "viewer", "--json"],
            &url,
        )
        .await,
    )
    .unwrap();
    let viewer = added["token"].as_str().unwrap().to_owned();
    assert_eq!(added["role"], "viewer");
    let mut tokens = vec![];
    for (name, role) in [("otto", "operator"), ("ada", "admin")] {
        let (status, body) = send(
            &app,
            Method::POST,
            "/api/tokens",
            Some("boot-token"),
            Some(json!({"name": name, "role": role})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(
            body["token"].as_str().unwrap().starts_with("csm_"),
            "{body}"
        );
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    let (operator, admin) = (tokens[0].clone(), tokens[1].clone());
    let (status, body) = send(
        &app,
        Method::POST,
        "/api/tokens",
        Some(&admin),
        Some(json!({"name": "otto", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = send(
        &app,
        Method::POST,
        "/api/stations",
        Some(&admin),
        Some(json!({"station_id": "CP-R", "name": "充电桩", "vendor": "ocpp"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // The matrix: each caller against each endpoint's role.
    let callers: [(&str, Option<&str>, u8); 6] = [
        ("no token", None, 0),
        ("an unknown token", Some("csm_nope"), 0),
        ("vera (viewer)", Some(&viewer), 1),
        ("otto (operator)", Some(&operator), 2),
        ("ada (admin)", Some(&admin), 3),
        ("CSM_ADMIN_TOKEN", Some("boot-token"), 3),
    ];
    let mut n = 0;
    let endpoints: Vec<(Method, &str, Option<Value>, u8)> = vec![
        (Method::GET, "/api/stations", None, 0),
        (
            Method::GET,
            "/api/ocpp/charge-points/CP-R/messages",
            None,
            1,
        ),
        (
            Method::POST,
            "/api/ocpp/charge-points/CP-R/commands",
            Some(json!({"command": "ClearCache"})),
            2,
        ),
        (Method::POST, "/api/refresh", None, 2),
        (
            Method::POST,
            "/api/stations",
            Some(json!({"station_id": "NEW", "name": "x", "vendor": SCRIPTED})),
            3,
        ),
        (Method::GET, "/api/tokens", None, 3),
        (Method::GET, "/api/audit", None, 3),
        (Method::GET, "/api/alerts/rules", None, 3),
        (Method::GET, "/api/cluster", None, 3),
    ];
    for (method, path, body, needs) in &endpoints {
        for (who, token, rank) in &callers {
            let body = body.clone().map(|mut b| {
                if b.get("station_id").is_some() {
                    n += 1;
                    b["station_id"] = json!(format!("NEW-{n}"));
                }
                b
            });
            let (status, answer) = send(&app, method.clone(), path, *token, body).await;
            let expected = match (*needs, *rank, *token) {
                (0, _, _) => None,
                (_, 0, _) => Some(StatusCode::UNAUTHORIZED),
                (needs, rank, _) if rank < needs => Some(StatusCode::FORBIDDEN),
                _ => None,
            };
            match expected {
                Some(code) => {
                    assert_eq!(status, code, "{who} {method} {path}: {answer}");
                    if code == StatusCode::FORBIDDEN {
                        let role = ["", "viewer", "operator", "admin"][*needs as usize];
                        assert!(
                            answer["error"]
                                .as_str()
                                .unwrap()
                                .contains(&format!("needs the {role} role")),
                            "{answer}"
                        );
                    }
                }
                None => assert!(
                    status != StatusCode::UNAUTHORIZED
                        && status != StatusCode::FORBIDDEN
                        && status.as_u16() < 500
                        || (*path == "/api/cluster" && status == StatusCode::OK),
                    "{who} {method} {path}: {status} {answer}"
                ),
            }
        }
    }

    // A revoked token stops working at once.
    let (status, _) = send(&app, Method::DELETE, "/api/tokens/otto", Some(&admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(&app, Method::POST, "/api/refresh", Some(&operator), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = send(&app, Method::DELETE, "/api/tokens/otto", Some(&admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The audit log: who, from where, the request without its secrets, the outcome.
    let audit = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (_, log) = send(
                &app,
                Method::GET,
                "/api/audit?limit=1000",
                Some(&admin),
                None,
            )
            .await;
            let entries = log["entries"].as_array().cloned().unwrap_or_default();
            if entries
                .iter()
                .any(|e| e["path"] == "/api/tokens/otto" && e["status"] == 404)
            {
                return entries;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the audit log holds the last request within 10 s");
    let entry = |check: &dyn Fn(&Value) -> bool| audit.iter().find(|e| check(e)).cloned();
    let added = entry(&|e| {
        e["path"] == "/api/tokens"
            && e["status"] == 201
            && e["request"].as_str().is_some_and(|r| r.contains("otto"))
    })
    .expect("the token added");
    assert_eq!(
        (added["actor"].as_str(), added["role"].as_str()),
        (Some("CSM_ADMIN_TOKEN"), Some("admin"))
    );
    assert_eq!(added["address"], "127.0.0.1");
    let refused =
        entry(&|e| e["actor"] == "vera" && e["path"] == "/api/ocpp/charge-points/CP-R/commands")
            .expect("vera's command");
    assert_eq!(refused["status"], 403);
    assert!(
        refused["outcome"]
            .as_str()
            .unwrap()
            .contains("needs the operator role"),
        "{refused}"
    );
    let command =
        entry(&|e| e["actor"] == "otto" && e["path"] == "/api/ocpp/charge-points/CP-R/commands")
            .expect("otto's command");
    assert_eq!(command["status"], 409);
    assert!(
        command["outcome"]
            .as_str()
            .unwrap()
            .contains("is not connected"),
        "{command}"
    );
    assert!(entry(&|e| e["actor"] == "anonymous" && e["status"] == 401).is_some());
    let text = serde_json::to_string(&audit).unwrap();
    for secret in [viewer.as_str(), &operator, &admin, "boot-token"] {
        assert!(!text.contains(secret), "a token in the audit log");
    }
    assert!(
        audit
            .windows(2)
            .all(|w| w[0]["id"].as_u64() > w[1]["id"].as_u64()),
        "newest first"
    );
    let csv = app
        .client
        .get(app.url("/api/audit?format=csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("id,at,actor,role,address,method,path,request,status,outcome\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains(",vera,viewer,127.0.0.1,POST,/api/ocpp/charge-points/CP-R/commands,"),
        "{csv}"
    );

    // The CLI reads the same: the tokens with their last use, the audit log.
    // A token's last use is noted after its request is answered.
    crate::helpers::eventually(
        Duration::from_secs(10),
        || app.monitor.access().tokens(),
        |tokens| {
            tokens.as_ref().is_ok_and(|tokens| {
                tokens
                    .iter()
                    .any(|t| t.name == "vera" && t.last_used_at.is_some())
            })
        },
    )
    .await
    .unwrap();
    let listed = cli(&["tokens", "list"], &url).await;
    assert!(
        listed.contains("vera") && listed.contains("viewer") && listed.contains("ada"),
        "{listed}"
    );
    assert!(!listed.contains("otto"), "a revoked token listed: {listed}");
    let vera = app
        .monitor
        .access()
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "vera")
        .unwrap();
    assert!(vera.last_used_at.is_some(), "vera's use is noted");
    let logged: Value =
        serde_json::from_str(&cli(&["audit", "--json", "--limit", "5"], &url).await).unwrap();
    assert_eq!(logged["entries"].as_array().unwrap().len(), 5);
    assert_eq!(logged["entries"][0]["id"], audit[0]["id"]);
    app.stop().await;
}

#[tokio::test]
async fn reads_closed_by_the_setting_need_a_token_of_any_role() {
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |s| {
        s.server.admin_token = Some("boot-token".into());
        s.server.read_requires_token = true;
    })
    .await;
    let (status, body) = send(
        &app,
        Method::POST,
        "/api/tokens",
        Some("boot-token"),
        Some(json!({"name": "rider-desk", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let viewer = body["token"].as_str().unwrap().to_owned();
    let (status, body) = send(&app, Method::GET, "/api/stations", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("needs a token with the viewer role"),
        "{body}"
    );
    assert_eq!(
        send(&app, Method::GET, "/api/stations", Some(&viewer), None)
            .await
            .0,
        StatusCode::OK
    );
    for open in ["/healthz", "/api/openapi.json", "/"] {
        let status = app.client.get(app.url(open)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "{open}");
    }
    // The event stream, which a browser opens without headers, takes the token in its query.
    let refused = app
        .client
        .get(app.url("/api/events"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(refused, StatusCode::UNAUTHORIZED);
    let stream = app
        .client
        .get(app.url(&format!("/api/events?access_token={viewer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    drop(stream);
    app.stop().await;
}
