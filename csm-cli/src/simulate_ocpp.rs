//! `csm-cli simulate-ocpp`: simulated EV chargers that connect to a central system over OCPP
//! 1.6J (csm's `/ocpp/{id}`, or any other), boot, report their connectors, run charging
//! sessions with MeterValues, answer TriggerMessage and ChangeConfiguration, and reconnect
//! when dropped. For the demo, tests and the benchmark; with `--duration-secs` it stops and
//! prints what it measured (answer times as the chargers saw them).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Arguments of `simulate-ocpp`.
#[derive(Debug, Args)]
pub struct SimulateOcppArgs {
    /// The central system's OCPP URL; each charger appends its id
    /// (`ws://127.0.0.1:5000/ocpp` → `ws://127.0.0.1:5000/ocpp/SIM-0001`).
    #[arg(long)]
    pub url: String,
    /// Chargers to simulate.
    #[arg(long, default_value_t = 10)]
    pub chargers: usize,
    /// Connectors of each charger.
    #[arg(long, default_value_t = 2)]
    pub connectors: u32,
    /// Seed: the same seed gives the same sessions.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seconds between MeterValues of a charging connector.
    #[arg(long, default_value_t = 10)]
    pub meter_secs: u64,
    /// Mean seconds of a charging session (and of the pause between two).
    #[arg(long, default_value_t = 120)]
    pub session_secs: u64,
    /// Charge point ids are this prefix and a number.
    #[arg(long, default_value = "SIM-")]
    pub prefix: String,
    /// Password sent with HTTP Basic auth (the same for every charger).
    #[arg(long, env = "CSM_OCPP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Stop after this many seconds and print a summary (default: run until interrupted).
    #[arg(long)]
    pub duration_secs: Option<u64>,
    /// Answer times of the first this many seconds (the chargers connecting and booting) are
    /// left out of the summary.
    #[arg(long, default_value_t = 0)]
    pub warmup_secs: u64,
}

/// What the chargers measured.
#[derive(Debug)]
struct Counters {
    /// Answer times are kept from this moment.
    measure_from: Instant,
    connected: AtomicU64,
    connections: AtomicU64,
    calls: AtomicU64,
    answers: AtomicU64,
    errors: AtomicU64,
    /// Answer times in microseconds.
    answer_micros: std::sync::Mutex<Vec<u64>>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `simulate-ocpp`.
pub async fn run(args: SimulateOcppArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitCode> {
    let args = Arc::new(args);
    let counters = Arc::new(Counters {
        measure_from: Instant::now() + Duration::from_secs(args.warmup_secs),
        connected: AtomicU64::default(),
        connections: AtomicU64::default(),
        calls: AtomicU64::default(),
        answers: AtomicU64::default(),
        errors: AtomicU64::default(),
        answer_micros: std::sync::Mutex::default(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    writeln!(
        out,
        "{} simulated chargers of {} connectors connecting to {}",
        args.chargers, args.connectors, args.url
    )?;
    for n in 0..args.chargers {
        let (args, counters) = (Arc::clone(&args), Arc::clone(&counters));
        tasks.spawn(async move { charger(n, &args, &counters).await });
        if n % 100 == 99 {
            // Not all at once: a real car park does not boot in the same millisecond.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let stop = async {
        match args.duration_secs {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    stop.await;
    tasks.abort_all();
    let mut micros = counters
        .answer_micros
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    micros.sort_unstable();
    let at = |q: f64| {
        micros
            .get(((micros.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let summary = json!({
        "chargers": args.chargers,
        "connected": counters.connected.load(Ordering::Relaxed),
        "connections": counters.connections.load(Ordering::Relaxed),
        "calls": counters.calls.load(Ordering::Relaxed),
        "answers": counters.answers.load(Ordering::Relaxed),
        "errors": counters.errors.load(Ordering::Relaxed),
        "answer_ms": {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0)},
    });
    writeln!(out, "{summary}")?;
    Ok(ExitCode::SUCCESS)
}

/// One charger: connects, and connects again after a drop (waiting 1 s, doubling to 30 s).
async fn charger(n: usize, args: &SimulateOcppArgs, counters: &Counters) {
    let id = format!("{}{:04}", args.prefix, n + 1);
    let mut rng = fastrand::Rng::with_seed(
        args.seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(n as u64),
    );
    let mut wait = Duration::from_secs(1);
    loop {
        match connect(&id, args).await {
            Ok(socket) => {
                counters.connections.fetch_add(1, Ordering::Relaxed);
                counters.connected.fetch_add(1, Ordering::Relaxed);
                wait = Duration::from_secs(1);
                let _ = session_loop(socket, args, counters, &mut rng).await;
                counters.connected.fetch_sub(1, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::debug!(charger = %id, %error, "cannot connect");
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

async fn connect(id: &str, args: &SimulateOcppArgs) -> anyhow::Result<Socket> {
    use base64::Engine as _;
    let url = format!("{}/{id}", args.url.trim_end_matches('/'));
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("ocpp1.6"),
    );
    if let Some(password) = &args.password {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{password}"));
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&format!("Basic {token}"))?,
        );
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

/// A connector's story: idle until `next`, then charging until `next`.
struct Connector {
    charging: Option<i64>,
    next: Instant,
    meter_at: Instant,
    register_wh: f64,
    power_w: f64,
}

/// Boots, then runs sessions on every connector until the socket fails.
async fn session_loop(
    mut socket: Socket,
    args: &SimulateOcppArgs,
    counters: &Counters,
    rng: &mut fastrand::Rng,
) -> anyhow::Result<()> {
    let mut link = Link {
        socket: &mut socket,
        counters,
        next_id: 0,
    };
    let boot = link
        .call("BootNotification", json!({"chargePointVendor": "csm", "chargePointModel": "simulated", "firmwareVersion": "sim-1"}))
        .await?;
    let heartbeat = Duration::from_secs(
        boot.get("interval")
            .and_then(Value::as_u64)
            .unwrap_or(300)
            .max(1),
    );
    let mean = args.session_secs.max(1) as f64;
    let mut connectors: Vec<Connector> = (0..args.connectors)
        .map(|_| Connector {
            charging: None,
            next: Instant::now() + Duration::from_secs_f64(mean * -(1.0 - rng.f64()).ln()),
            meter_at: Instant::now(),
            register_wh: rng.f64() * 1_000_000.0,
            power_w: 0.0,
        })
        .collect();
    for c in 1..=args.connectors {
        link.status(c, "Available").await?;
    }
    let mut beat = tokio::time::interval(heartbeat);
    beat.reset();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = beat.tick() => { link.call("Heartbeat", json!({})).await?; }
            _ = tick.tick() => {
                let now = Instant::now();
                for (index, c) in connectors.iter_mut().enumerate() {
                    let number = index as u32 + 1;
                    if now < c.next && c.charging.is_none() {
                        continue;
                    }
                    match c.charging {
                        None => {
                            let started = link.call("StartTransaction", json!({"connectorId": number, "idTag": "SIMTAG", "meterStart": c.register_wh as i64, "timestamp": stamp()})).await?;
                            c.charging = started.get("transactionId").and_then(Value::as_i64).or(Some(0));
                            c.power_w = 3_000.0 + rng.f64() * 8_000.0;
                            c.next = now + Duration::from_secs_f64(mean * -(1.0 - rng.f64()).ln());
                            c.meter_at = now;
                            link.status(number, "Charging").await?;
                        }
                        Some(transaction) if now >= c.next => {
                            link.call("StopTransaction", json!({"transactionId": transaction, "meterStop": c.register_wh as i64, "timestamp": stamp(), "reason": "EVDisconnected"})).await?;
                            c.charging = None;
                            c.next = now + Duration::from_secs_f64(mean * -(1.0 - rng.f64()).ln());
                            link.status(number, "Available").await?;
                        }
                        Some(transaction) if now >= c.meter_at => {
                            c.register_wh += c.power_w * args.meter_secs as f64 / 3600.0;
                            let amps = c.power_w / 230.0;
                            link.call("MeterValues", json!({"connectorId": number, "transactionId": transaction, "meterValue": [{"timestamp": stamp(), "sampledValue": [
                                {"value": format!("{:.1}", 228.0 + rng.f64() * 4.0), "measurand": "Voltage", "unit": "V"},
                                {"value": format!("{amps:.2}"), "measurand": "Current.Import", "unit": "A"},
                                {"value": format!("{:.0}", c.power_w), "measurand": "Power.Active.Import", "unit": "W"},
                                {"value": format!("{:.0}", c.register_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                            ]}]})).await?;
                            c.meter_at = now + Duration::from_secs(args.meter_secs.max(1));
                        }
                        Some(_) => {}
                    }
                }
            }
            frame = link.socket.next() => {
                let Some(frame) = frame else { return Ok(()) };
                if let Message::Text(text) = frame? {
                    link.answer_csm(text.as_str()).await?;
                }
            }
        }
    }
}

fn stamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A charger's side of the connection.
struct Link<'a> {
    socket: &'a mut Socket,
    counters: &'a Counters,
    next_id: u64,
}

impl Link<'_> {
    /// Sends a call and waits for its answer (answering csm's calls meanwhile).
    async fn call(&mut self, action: &str, payload: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let sent = Instant::now();
        self.socket
            .send(Message::Text(
                json!([2, id, action, payload]).to_string().into(),
            ))
            .await?;
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .map_err(|_| anyhow::anyhow!("no answer to {action} within 30 s"))?
                .ok_or_else(|| anyhow::anyhow!("the connection closed"))??;
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(text.as_str())?;
            match value.get(0).and_then(Value::as_u64) {
                Some(3 | 4) if value.get(1).and_then(Value::as_str) == Some(id.as_str()) => {
                    let micros = sent.elapsed().as_micros() as u64;
                    let measured = sent >= self.counters.measure_from;
                    self.counters.answers.fetch_add(1, Ordering::Relaxed);
                    if measured {
                        self.counters
                            .answer_micros
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(micros);
                    }
                    if value[0] == 4 {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        anyhow::bail!("{action} was answered with an error: {value}");
                    }
                    return Ok(value.get(2).cloned().unwrap_or_default());
                }
                Some(2) => self.answer_csm(text.as_str()).await?,
                _ => {}
            }
        }
    }

    async fn status(&mut self, connector: u32, status: &str) -> anyhow::Result<()> {
        self.call("StatusNotification", json!({"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": stamp()})).await?;
        Ok(())
    }

    /// Answers a call of csm's: TriggerMessage and ChangeConfiguration are accepted.
    async fn answer_csm(&mut self, text: &str) -> anyhow::Result<()> {
        let value: Value = serde_json::from_str(text)?;
        if value.get(0).and_then(Value::as_u64) != Some(2) {
            return Ok(());
        }
        let id = value.get(1).cloned().unwrap_or_default();
        let reply = match value.get(2).and_then(Value::as_str) {
            Some("TriggerMessage" | "ChangeConfiguration") => {
                json!([3, id, {"status": "Accepted"}])
            }
            _ => json!([
                4,
                id,
                "NotImplemented",
                "the simulated charger does not handle this",
                {}
            ]),
        };
        self.socket
            .send(Message::Text(reply.to_string().into()))
            .await?;
        Ok(())
    }
}
