//! SSE fan-out benchmark client: opens many `/api/events` streams on a running csm-server and
//! measures, for each status change, the time from its observation by the refresh engine (the
//! change's `at`) to its arrival at the first and at the last client. Prints one JSON object.
//!
//! `cargo run --release --example sse_fanout -- URL [CLIENTS] [SECONDS]`
//! (defaults: 1000 clients, listening 12 s once all are connected).
//!
//! To disturb the server as little as possible, clients only stamp and keep what they receive
//! while listening; the frames are parsed after the measurement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

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

/// What one client received: each chunk with its arrival time.
type Received = Vec<(DateTime<Utc>, bytes::Bytes)>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:5000".into());
    let clients: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let seconds: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(12);

    let (received, connected, tasks) = connect_all(&url, clients).await?;
    let listening_from = Utc::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    for task in &tasks {
        task.abort();
    }
    let arrivals = arrivals(&received)?;
    let mut last = Vec::new();
    let mut first = Vec::new();
    for ((_, _, at), times) in &arrivals {
        let at: DateTime<Utc> = at.parse()?;
        // Only changes observed while every client listened, and received by all of them.
        if at <= listening_from || times.len() < clients {
            continue;
        }
        let ms = |t: &DateTime<Utc>| (*t - at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        last.push(times.iter().map(ms).fold(f64::MIN, f64::max));
        first.push(times.iter().map(ms).fold(f64::MAX, f64::min));
    }
    last.sort_by(f64::total_cmp);
    first.sort_by(f64::total_cmp);
    let pick =
        |v: &[f64], p: f64| (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * p).round() as usize]);
    println!(
        "{}",
        serde_json::json!({
            "clients": clients,
            "connected": connected,
            "changes_measured": last.len(),
            "last_client_ms": { "p50": pick(&last, 0.5), "p99": pick(&last, 0.99), "max": pick(&last, 1.0) },
            "first_client_ms": { "p50": pick(&first, 0.5), "max": pick(&first, 1.0) },
        })
    );
    Ok(())
}

/// What each client receives, how many connected, and the tasks that read the streams.
type Clients = (
    Vec<Arc<Mutex<Received>>>,
    usize,
    Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
);

/// Opens `clients` event streams (within a minute) and records what arrives on each.
async fn connect_all(url: &str, clients: usize) -> anyhow::Result<Clients> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let received: Vec<Arc<Mutex<Received>>> = (0..clients).map(|_| Arc::default()).collect();
    let mut tasks = Vec::with_capacity(clients);
    for store in &received {
        let (client, url, store, connected) = (
            client.clone(),
            url.to_owned(),
            Arc::clone(store),
            Arc::clone(&connected),
        );
        tasks.push(tokio::spawn(async move {
            let response = client
                .get(format!("{url}/api/events"))
                .send()
                .await?
                .error_for_status()?;
            connected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let arrived = Utc::now();
                store.lock().expect("lock").push((arrived, chunk?));
            }
            anyhow::Ok(())
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let count = connected.load(std::sync::atomic::Ordering::SeqCst);
        if count >= clients {
            return Ok((received, count, tasks));
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "only {count} of {clients} clients connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A change: station, port and when it was observed.
type ChangeKey = (String, u64, String);

/// Each change with its arrival at each client that received it.
fn arrivals(
    received: &[Arc<Mutex<Received>>],
) -> anyhow::Result<HashMap<ChangeKey, Vec<DateTime<Utc>>>> {
    let mut arrivals: HashMap<ChangeKey, Vec<DateTime<Utc>>> = HashMap::new();
    for store in received {
        let chunks = std::mem::take(&mut *store.lock().expect("lock"));
        let mut text = String::new();
        for (arrived, chunk) in chunks {
            text.push_str(&String::from_utf8_lossy(&chunk));
            // Complete frames end with a blank line; a frame split over chunks is counted when
            // its last part arrives.
            while let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                // `id: …` comes first on events that carry one.
                let Some((_, data)) = frame.split_once("event: station\ndata: ") else {
                    continue;
                };
                let update: Update<'_> = serde_json::from_str(data.trim_end())?;
                for change in update.changes {
                    arrivals
                        .entry((
                            update.station_id.to_owned(),
                            change.port,
                            change.at.to_owned(),
                        ))
                        .or_default()
                        .push(arrived);
                }
            }
        }
    }
    Ok(arrivals)
}
