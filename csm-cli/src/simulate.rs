//! `csm-cli simulate`: the simulated fleet served over HTTP with csm's native contract, so the
//! whole HTTP path (profile, client, retries) can be exercised and benchmarked without a vendor.
//!
//! It also keeps a log of the port requests it answered (`GET /api/v1/requests`: station and
//! time, the last [`REQUEST_LOG`]), so a test can count how often each station was asked.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use csm_core::charger::Simulator;
use serde::Serialize;
use tokio::net::TcpListener;

/// Arguments of `simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Stations in the fleet (S0001, S0002, ...).
    #[arg(long, default_value_t = 100)]
    pub stations: usize,
    /// Ports of each station.
    #[arg(long, default_value_t = 12)]
    pub ports: u32,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Seed of the fleet: the same seed gives the same fleet and story.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Speed of the simulated clock (60 = an hour a minute).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

/// Port requests the log keeps.
pub const REQUEST_LOG: usize = 200_000;

/// The fleet served, and the requests it answered.
#[derive(Debug)]
struct Served {
    sim: Arc<Simulator>,
    /// Station and milliseconds since the Unix epoch of each port request answered.
    requests: Mutex<VecDeque<(String, i64)>>,
}

/// The routes of the native contract over `sim`.
pub fn router(sim: Arc<Simulator>) -> Router {
    let served = Arc::new(Served {
        sim,
        requests: Mutex::new(VecDeque::new()),
    });
    Router::new()
        .route("/api/v1/stations", get(list))
        .route("/api/v1/stations/{id}/ports", get(ports))
        .route("/api/v1/requests", get(requests))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(served)
}

/// Serves `sim` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    sim: Arc<Simulator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `simulate`: serves until Ctrl-C.
pub async fn run(args: SimulateArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitCode> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(crate::UsageError("--speed must be a positive number".into()).into());
    }
    let sim = Arc::new(Simulator::with_fleet(
        args.seed,
        args.speed,
        args.stations,
        args.ports,
    ));
    let listener = TcpListener::bind(args.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.bind))?;
    let address = listener.local_addr()?;
    writeln!(
        out,
        "simulating {} stations of {} ports at http://{address} (seed {}, speed {}×); Ctrl-C stops",
        args.stations, args.ports, args.seed, args.speed
    )?;
    out.flush()?;
    serve(listener, sim, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct ListedStation {
    id: String,
    name: String,
    ports: u32,
    address: Option<String>,
    lat: Option<f64>,
    lng: Option<f64>,
}

async fn list(State(served): State<Arc<Served>>) -> Response {
    let stations: Vec<ListedStation> = served
        .sim
        .fleet()
        .into_iter()
        .map(|s| ListedStation {
            id: s.id.to_string(),
            name: s.name,
            ports: s.port_count,
            address: s.address,
            lat: s.lat,
            lng: s.lng,
        })
        .collect();
    json(&serde_json::json!({ "stations": stations }))
}

#[derive(Serialize)]
struct NativePorts<'a> {
    station_id: &'a str,
    observed_at: String,
    ports: Vec<NativePort>,
}

#[derive(Serialize)]
struct NativePort {
    port: u32,
    status: &'static str,
    voltage: Option<f64>,
    current: Option<f64>,
    power: Option<f64>,
    energy_kwh: Option<f64>,
    session_ends_at: Option<String>,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn ports(State(served): State<Arc<Served>>, Path(id): Path<String>) -> Response {
    let sim = &served.sim;
    let Some(station) = sim.fleet_member(&id) else {
        return json_error(
            StatusCode::NOT_FOUND,
            &format!("station {id} is not in the simulated fleet"),
        );
    };
    let now = Utc::now();
    {
        let mut log = served.requests.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == REQUEST_LOG {
            log.pop_front();
        }
        log.push_back((id.clone(), now.timestamp_millis()));
    }
    let snapshot = sim.snapshot_at(&station, now);
    json(&NativePorts {
        station_id: station.id.as_str(),
        observed_at: rfc3339(snapshot.observed_at),
        ports: snapshot
            .ports
            .into_iter()
            .map(|r| NativePort {
                port: r.port,
                status: r.status.as_str(),
                voltage: r.voltage,
                current: r.current,
                power: r.power,
                energy_kwh: r.energy_kwh,
                session_ends_at: r.session_ends_at.map(rfc3339),
            })
            .collect(),
    })
}

/// Which requests to list.
#[derive(Debug, serde::Deserialize)]
struct Since {
    /// Only those answered at or after this many milliseconds since the Unix epoch.
    since_ms: Option<i64>,
}

/// `GET /api/v1/requests[?since_ms=]`: the port requests answered, oldest first.
async fn requests(State(served): State<Arc<Served>>, Query(since): Query<Since>) -> Response {
    let from = since.since_ms.unwrap_or(i64::MIN);
    let log = served.requests.lock().unwrap_or_else(|p| p.into_inner());
    let requests: Vec<serde_json::Value> = log
        .iter()
        .filter(|(_, at)| *at >= from)
        .map(|(station, at)| serde_json::json!({ "station": station, "at_ms": at }))
        .collect();
    json(&serde_json::json!({ "requests": requests }))
}

fn json(body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}
