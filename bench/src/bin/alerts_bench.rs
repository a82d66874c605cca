//! Alert latency: from the refresh that sees a port free to the webhook request arriving at a
//! local receiver, with RULES `port_free` rules (one station each, spread over CHANNELS
//! webhook channels) over a simulated fleet of STATIONS stations of 12 ports, refreshed
//! CYCLES times; and the refresh cycle with and without the rules, to show what evaluating
//! them costs the refresh path.
//!
//! Usage: `alerts_bench DATABASE_URL [STATIONS] [RULES] [CHANNELS] [CYCLES]` (defaults
//! 10000 1000 10 10). A MySQL database named in the URL is dropped and made again. Prints one
//! JSON object.
//!
//! Latency of an alert = when the receiver read the request carrying it − the alert's `at`
//! (the time of the observation that fired it, taken when the vendor's answer arrived).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use csm_core::Monitor;
use csm_core::alerts::{ChannelDraft, RuleDraft};
use csm_core::cache::MemoryCache;
use csm_core::charger::{Chargers, Simulator};
use csm_core::settings::Settings;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const PORTS: u32 = 12;

/// What the receiver saw: per request its arrival and the `at` of each alert it carried.
#[derive(Default)]
struct Seen {
    requests: usize,
    digests: usize,
    latencies_ms: Vec<f64>,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(url) = args.get(1).cloned() else {
        eprintln!("usage: alerts_bench DATABASE_URL [STATIONS] [RULES] [CHANNELS] [CYCLES]");
        std::process::exit(2);
    };
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (stations, rules, channels, cycles) = (
        number(2, 10_000),
        number(3, 1_000),
        number(4, 10),
        number(5, 10),
    );
    match run(&url, stations, rules, channels.max(1), cycles.max(1)).await {
        Ok(json) => println!("{json}"),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}

async fn fresh_database(url: &str) -> Result<(), String> {
    if !url.starts_with("mysql://") {
        return Ok(());
    }
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    let mut server = parsed.clone();
    server.set_path("");
    let mut connection = sqlx::MySqlConnection::connect(server.as_str())
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS `{name}`"
    )))
    .execute(&mut connection)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// A minimal HTTP/1.1 receiver on 127.0.0.1 that answers 200 and records each alert's latency.
async fn receiver(seen: Arc<Mutex<Seen>>) -> Result<u16, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0_u8; 16 * 1024];
                loop {
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buffer.len() < end + 4 + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let arrived = Utc::now();
                    let body: serde_json::Value =
                        serde_json::from_slice(&buffer[end + 4..end + 4 + length])
                            .unwrap_or_default();
                    buffer.drain(..end + 4 + length);
                    record(&seen, &body, arrived);
                    if socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

fn record(seen: &Mutex<Seen>, body: &serde_json::Value, arrived: DateTime<Utc>) {
    let mut seen = seen.lock().unwrap();
    seen.requests += 1;
    let alerts: Vec<&serde_json::Value> = match body.get("alerts").and_then(|a| a.as_array()) {
        Some(list) => {
            seen.digests += 1;
            list.iter().collect()
        }
        None => vec![body],
    };
    for alert in alerts {
        if let Some(at) = alert
            .get("at")
            .and_then(|a| a.as_str())
            .and_then(|a| a.parse::<DateTime<Utc>>().ok())
        {
            seen.latencies_ms
                .push((arrived - at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
}

async fn cycle(monitor: &Monitor) -> Result<f64, String> {
    let all = monitor
        .stations()
        .enabled()
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    monitor.refresh().many(all, |_| {}).await;
    Ok(started.elapsed().as_secs_f64())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

async fn run(
    url: &str,
    stations: usize,
    rules: usize,
    channels: usize,
    cycles: usize,
) -> Result<String, String> {
    fresh_database(url).await?;
    let mut settings = Settings::default();
    settings.database.url = Some(url.into());
    settings.vendors.dir = "/nonexistent-csm-vendors".into();
    settings.alerts.allowed_hosts = csm_core::model::alerts::AllowedHosts(vec!["127.0.0.1".into()]);
    let store = csm_core::store::connect(url, 10)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    // A simulated hour every minute: ports come and go between cycles.
    let simulator = Arc::new(Simulator::with_fleet(7, 60.0, stations, PORTS));
    let fleet = simulator.fleet();
    let mut chargers = Chargers::new();
    chargers.insert_simulator(simulator);
    let monitor = Arc::new(Monitor::from_parts(
        settings,
        store,
        Arc::new(MemoryCache::new(Duration::from_secs(600))),
        chargers,
    ));
    monitor
        .stations()
        .import(&fleet)
        .await
        .map_err(|e| e.to_string())?;
    cycle(&monitor).await?;
    monitor.flush().await;
    let mut without = Vec::new();
    for _ in 0..cycles {
        without.push(cycle(&monitor).await?);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    monitor.flush().await;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let port = receiver(Arc::clone(&seen)).await?;
    for c in 0..channels {
        monitor
            .alerts()
            .add_channel(ChannelDraft {
                name: format!("hook{c}"),
                kind: "webhook".into(),
                url: format!("http://127.0.0.1:{port}/hook/{c}"),
                secret: Some("bench".into()),
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    let step = (stations / rules.max(1)).max(1);
    for r in 0..rules.min(stations) {
        let draft: RuleDraft = serde_json::from_value(serde_json::json!({
            "kind": "port_free",
            "stations": [fleet[r * step].id.as_str()],
            "channel": format!("hook{}", r % channels),
        }))
        .map_err(|e| e.to_string())?;
        monitor
            .alerts()
            .add_rule(draft)
            .await
            .map_err(|e| e.to_string())?;
    }
    let cancel = CancellationToken::new();
    let alerts = tokio::spawn({
        let (area, token) = (monitor.alerts().clone(), cancel.clone());
        async move { area.run(token).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut with = Vec::new();
    for _ in 0..cycles {
        with.push(cycle(&monitor).await?);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Let the last alerts go out.
    let store = csm_core::store::connect(url, 2)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .alerts()
        .outbox_depth()
        .await
        .map_err(|e| e.to_string())?
        > 0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel();
    let _ = alerts.await;
    let fired = store
        .alerts()
        .alert_history(1_000_000)
        .await
        .map_err(|e| e.to_string())?
        .len();
    let seen = seen.lock().unwrap();
    let mut latencies = seen.latencies_ms.clone();
    latencies.sort_by(f64::total_cmp);
    Ok(serde_json::json!({
        "stations": stations,
        "ports": stations * PORTS as usize,
        "rules": rules.min(stations),
        "channels": channels,
        "cycles": cycles,
        "cycle_secs_without_rules": median(without),
        "cycle_secs_with_rules": median(with),
        "alerts_fired": fired,
        "alerts_received": latencies.len(),
        "requests": seen.requests,
        "digests": seen.digests,
        "latency_ms": {
            "p50": quantile(&latencies, 0.5),
            "p90": quantile(&latencies, 0.9),
            "p99": quantile(&latencies, 0.99),
            "max": latencies.last().copied().unwrap_or(0.0),
        },
    })
    .to_string())
}
