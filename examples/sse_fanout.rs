//! SSE fan-out benchmark client: opens many `/api/events` streams on a running csm-server and
//! measures, for each status change, the time from its observation by the refresh engine (the
//! change's `at`) to its arrival at the first and at the last client. Prints one JSON object.
//!
//! `cargo run --release --example sse_fanout -- URL [CLIENTS] [CHANGES] [TIMEOUT_SECS]`
//! (defaults: 1000 clients, 20 changes, 120 s).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

type Key = (String, u64, String);

#[derive(serde::Deserialize)]
struct Update<'a> {
    station_id: &'a str,
    changes: Vec<Change<'a>>,
}

#[derive(serde::Deserialize)]
struct Change<'a> {
    port: u64,
    at: &'a str,
}

#[derive(Default)]
struct Seen {
    /// Change → arrival time at each client that got it.
    arrivals: HashMap<Key, Vec<DateTime<Utc>>>,
    connected: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:5000".into());
    let clients: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let wanted: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let timeout: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(120);

    let seen = Arc::new(Mutex::new(Seen::default()));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, url, seen) = (client.clone(), url.clone(), Arc::clone(&seen));
        tasks.push(tokio::spawn(async move { listen(client, url, seen).await }));
    }
    let started = std::time::Instant::now();
    // Wait for every client to be connected, then for `wanted` changes seen by all of them.
    let deadline = started + Duration::from_secs(timeout);
    let mut connected_at = None;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = seen.lock().expect("lock");
        if seen.connected == clients && connected_at.is_none() {
            connected_at = Some(Utc::now());
        }
        let complete = complete_changes(&seen, clients, connected_at).len();
        if complete >= wanted || std::time::Instant::now() > deadline {
            break;
        }
    }
    for task in tasks {
        task.abort();
    }
    let seen = seen.lock().expect("lock");
    let mut last: Vec<f64> = Vec::new();
    let mut first: Vec<f64> = Vec::new();
    for (key, arrivals) in complete_changes(&seen, clients, connected_at) {
        let at: DateTime<Utc> = key.2.parse()?;
        let ms = |t: &DateTime<Utc>| (*t - at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        last.push(arrivals.iter().map(ms).fold(f64::MIN, f64::max));
        first.push(arrivals.iter().map(ms).fold(f64::MAX, f64::min));
    }
    last.sort_by(f64::total_cmp);
    first.sort_by(f64::total_cmp);
    let pick = |v: &[f64], p: f64| {
        if v.is_empty() {
            None
        } else {
            Some(v[((v.len() - 1) as f64 * p).round() as usize])
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "clients": clients,
            "connected": seen.connected,
            "changes_measured": last.len(),
            "last_client_ms": { "p50": pick(&last, 0.5), "max": pick(&last, 1.0) },
            "first_client_ms": { "p50": pick(&first, 0.5), "max": pick(&first, 1.0) },
        })
    );
    Ok(())
}

/// Changes observed after every client was connected that every client received.
fn complete_changes(
    seen: &Seen,
    clients: usize,
    connected_at: Option<DateTime<Utc>>,
) -> Vec<(Key, Vec<DateTime<Utc>>)> {
    let Some(connected_at) = connected_at else {
        return Vec::new();
    };
    seen.arrivals
        .iter()
        .filter(|(key, arrivals)| {
            arrivals.len() == clients
                && key
                    .2
                    .parse::<DateTime<Utc>>()
                    .is_ok_and(|at| at > connected_at)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

async fn listen(
    client: reqwest::Client,
    url: String,
    seen: Arc<Mutex<Seen>>,
) -> anyhow::Result<()> {
    let response = client
        .get(format!("{url}/api/events"))
        .send()
        .await?
        .error_for_status()?;
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut event = String::new();
    while let Some(chunk) = stream.next().await {
        let arrived = Utc::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let line = line.trim_end();
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_owned();
                if event == "hello" {
                    seen.lock().expect("lock").connected += 1;
                }
            } else if let Some(data) = line.strip_prefix("data: ") {
                if event != "station" {
                    continue;
                }
                // Only the keys of the changes are read: the client should cost the machine
                // as little as possible, so the measurement is of the server.
                let update: Update<'_> = serde_json::from_str(data)?;
                let mut seen = seen.lock().expect("lock");
                for change in update.changes {
                    let key = (
                        update.station_id.to_owned(),
                        change.port,
                        change.at.to_owned(),
                    );
                    seen.arrivals.entry(key).or_default().push(arrived);
                }
            }
        }
    }
    Ok(())
}
