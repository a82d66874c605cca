//! Simulated EV chargers that speak OCPP 1.6J or 2.0.1 to a central system (csm's
//! `/ocpp/{id}`, or any other), over `ws://` or `wss://`: each connects, boots, reports its
//! connectors, runs charging sessions (1.6: StartTransaction, MeterValues, StopTransaction;
//! 2.0.1: TransactionEvent Started, Updated with meter values, Ended), answers TriggerMessage
//! (sending what was asked for) and configuration changes, and connects again when dropped. `csm-cli simulate-ocpp`
//! runs them for tests and the benchmark, and the embedded default runs a few for its demo.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A simulated charger's configuration: key, value (`NumberOfConnectors`: its own), read-only.
const CONFIGURATION: [(&str, &str, bool); 5] = [
    ("HeartbeatInterval", "300", false),
    ("MeterValueSampleInterval", "10", false),
    ("NumberOfConnectors", "", true),
    ("SupportedFeatureProfiles", "Core,RemoteTrigger", true),
    ("LocalPreAuthorize", "false", false),
];

/// What the simulated chargers are.
#[derive(Clone, Debug)]
pub struct SimulatedChargers {
    /// The central system's OCPP URL; each charger appends its id. Several separated by
    /// commas stand for the instances behind a load balancer: every charger connects to the
    /// first, and after a drop (or a refused connection) to the next of them, half of the
    /// chargers one way round and half the other.
    pub url: String,
    /// Connectors of each charger.
    pub connectors: u32,
    /// Seed: the same seed gives the same sessions.
    pub seed: u64,
    /// Seconds between MeterValues of a charging connector.
    pub meter_secs: u64,
    /// Mean seconds of a charging session (and of the pause between two).
    pub session_secs: u64,
    /// Charge point ids are this prefix and a number from 1 (`SIM-0001`).
    pub prefix: String,
    /// Password sent with HTTP Basic auth (the same for every charger).
    pub password: Option<String>,
    /// Of every hundred chargers, how many speak OCPP 2.0.1 (the others 1.6J).
    pub v201_percent: u8,
    /// For `wss://` URLs: the TLS client (the CAs it trusts; none: the system's).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl SimulatedChargers {
    /// The id of charger `n` (from 0).
    pub fn id(&self, n: usize) -> String {
        format!("{}{:04}", self.prefix, n + 1)
    }

    /// The OCPP version charger `n` speaks: `v201_percent` of every hundred, spread among
    /// them (at 50, every other charger).
    pub fn version(&self, n: usize) -> Version {
        let percent = usize::from(self.v201_percent.min(100));
        if (n * percent) % 100 < percent {
            Version::V201
        } else {
            Version::V16
        }
    }
}

/// What the chargers measured: connections, calls, and the time each call took to be answered.
#[derive(Debug)]
pub struct Counters {
    /// When the chargers started.
    pub started: Instant,
    /// Answer times of calls sent from this moment on are kept.
    pub measure_from: Instant,
    /// Chargers connected now.
    pub connected: AtomicU64,
    /// Connections opened.
    pub connections: AtomicU64,
    /// Calls sent.
    pub calls: AtomicU64,
    /// Calls answered.
    pub answers: AtomicU64,
    /// Failed connections and calls answered with an error.
    pub errors: AtomicU64,
    /// Answer times in microseconds of calls sent after the warm-up.
    pub answer_micros: Mutex<Vec<u64>>,
    /// The same, of the chargers speaking 1.6J and of those speaking 2.0.1.
    pub answer_micros_by_version: [Mutex<Vec<u64>>; 2],
    /// Microseconds each connection took to open: TCP, TLS for `wss://`, the WebSocket
    /// upgrade.
    pub connect_micros: Mutex<Vec<u64>>,
    /// Answer times in microseconds of every call, the warm-up's too.
    pub all_answer_micros: Mutex<Vec<u64>>,
    /// For each charger that connected: microseconds from the start to its first connection
    /// (a reconnect storm's length as the chargers see it).
    pub first_connect_micros: Mutex<Vec<u64>>,
    /// For each time a charger was dropped and came back: microseconds from the drop to its
    /// BootNotification answered on the new connection (the storm after an instance died).
    pub back_micros: Mutex<Vec<u64>>,
    /// Answer times in microseconds of the calls sent on connections made after a drop.
    pub after_drop_answer_micros: Mutex<Vec<u64>>,
}

impl Counters {
    /// Counters that keep answer times of calls sent after `warmup`.
    pub fn new(warmup: Duration) -> Self {
        let started = Instant::now();
        Self {
            started,
            measure_from: started + warmup,
            connected: AtomicU64::default(),
            connections: AtomicU64::default(),
            calls: AtomicU64::default(),
            answers: AtomicU64::default(),
            errors: AtomicU64::default(),
            answer_micros: Mutex::default(),
            answer_micros_by_version: Default::default(),
            connect_micros: Mutex::default(),
            all_answer_micros: Mutex::default(),
            first_connect_micros: Mutex::default(),
            back_micros: Mutex::default(),
            after_drop_answer_micros: Mutex::default(),
        }
    }
}

/// Adds a time to a list of [`Counters`].
fn push(times: &Mutex<Vec<u64>>, micros: u64) {
    times.lock().unwrap_or_else(|p| p.into_inner()).push(micros);
}

use super::Version;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Charger `n`: connects, and connects again after a drop (waiting 1 s, doubling to 30 s).
/// Runs until its task is dropped.
pub async fn run_charger(n: usize, chargers: &SimulatedChargers, counters: &Counters) {
    let id = chargers.id(n);
    let mut rng = fastrand::Rng::with_seed(
        chargers
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(n as u64),
    );
    let urls: Vec<&str> = chargers.url.split(',').map(str::trim).collect();
    let mut at = 0;
    let mut wait = Duration::from_secs(1);
    let mut first = true;
    let mut dropped: Option<Instant> = None;
    let version = chargers.version(n);
    loop {
        let opening = Instant::now();
        match connect(&id, urls[at], version, chargers).await {
            Ok(socket) => {
                push(
                    &counters.connect_micros,
                    opening.elapsed().as_micros() as u64,
                );
                if std::mem::take(&mut first) {
                    let micros = counters.started.elapsed().as_micros() as u64;
                    push(&counters.first_connect_micros, micros);
                }
                counters.connections.fetch_add(1, Ordering::Relaxed);
                counters.connected.fetch_add(1, Ordering::Relaxed);
                wait = Duration::from_secs(1);
                let back = dropped.take();
                let session =
                    session_loop(socket, &id, version, chargers, counters, &mut rng, back);
                if let Err(error) = session.await {
                    tracing::debug!(charger = %id, %error, "simulated charger dropped");
                }
                counters.connected.fetch_sub(1, Ordering::Relaxed);
                dropped = Some(Instant::now());
            }
            Err(error) => {
                tracing::debug!(charger = %id, %error, "simulated charger cannot connect");
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if urls.len() > 1 {
            at = (at + 1 + n % (urls.len() - 1)) % urls.len();
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

async fn connect(
    id: &str,
    base: &str,
    version: Version,
    chargers: &SimulatedChargers,
) -> Result<Socket, Failure> {
    use base64::Engine as _;
    let url = format!("{}/{id}", base.trim_end_matches('/'));
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(version.subprotocol()),
    );
    if let Some(password) = &chargers.password {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{password}"));
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&format!("Basic {token}"))?,
        );
    }
    let connector = chargers
        .tls
        .as_ref()
        .map(|config| tokio_tungstenite::Connector::Rustls(std::sync::Arc::clone(config)));
    let (socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector).await?;
    Ok(socket)
}

/// A connector's story: idle until `next`, then charging until `next`.
struct Connector {
    /// The running transaction's id.
    charging: Option<String>,
    next: Instant,
    meter_at: Instant,
    register_wh: f64,
    power_w: f64,
}

impl Connector {
    /// Its status as `version` names it.
    fn status(&self, version: Version) -> &'static str {
        match (self.charging.is_some(), version) {
            (true, Version::V16) => "Charging",
            (true, Version::V201) => "Occupied",
            (false, _) => "Available",
        }
    }
}

/// Boots, then runs sessions on every connector until the socket fails. `dropped`: when the
/// connection before this one was lost.
async fn session_loop(
    mut socket: Socket,
    id: &str,
    version: Version,
    chargers: &SimulatedChargers,
    counters: &Counters,
    rng: &mut fastrand::Rng,
    dropped: Option<Instant>,
) -> Result<(), Failure> {
    let mut link = Link {
        socket: &mut socket,
        id,
        version,
        counters,
        next_id: 0,
        seq: 0,
        triggered: false,
        connectors: chargers.connectors,
        after_drop: dropped.is_some(),
    };
    let boot = match version {
        Version::V16 => {
            json!({"chargePointVendor": "csm", "chargePointModel": "simulated", "firmwareVersion": "sim-1"})
        }
        Version::V201 => {
            json!({"reason": "PowerUp", "chargingStation": {"vendorName": "csm", "model": "simulated", "firmwareVersion": "sim-1"}})
        }
    };
    let boot = link.call("BootNotification", boot).await?;
    if let Some(dropped) = dropped {
        push(&counters.back_micros, dropped.elapsed().as_micros() as u64);
    }
    let heartbeat = Duration::from_secs(
        boot.get("interval")
            .and_then(Value::as_u64)
            .unwrap_or(300)
            .max(1),
    );
    let mean = chargers.session_secs.max(1) as f64;
    let mut connectors: Vec<Connector> = (0..chargers.connectors)
        .map(|_| Connector {
            charging: None,
            next: Instant::now() + Duration::from_secs_f64(mean * -(1.0 - rng.f64()).ln()),
            meter_at: Instant::now(),
            register_wh: rng.f64() * 1_000_000.0,
            power_w: 0.0,
        })
        .collect();
    for c in 1..=chargers.connectors {
        link.status(c, "Available").await?;
    }
    let mut beat = tokio::time::interval(heartbeat);
    beat.reset();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        if std::mem::take(&mut link.triggered) {
            for (index, c) in connectors.iter().enumerate() {
                link.status(index as u32 + 1, c.status(version)).await?;
            }
        }
        tokio::select! {
            _ = beat.tick() => { link.call("Heartbeat", json!({})).await?; }
            _ = tick.tick() => {
                let now = Instant::now();
                for (index, c) in connectors.iter_mut().enumerate() {
                    step(&mut link, index as u32 + 1, c, now, chargers, rng).await?;
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

/// What a connector does at `now`: start a session, send its meter values, or stop.
async fn step(
    link: &mut Link<'_>,
    number: u32,
    c: &mut Connector,
    now: Instant,
    chargers: &SimulatedChargers,
    rng: &mut fastrand::Rng,
) -> Result<(), Failure> {
    let mean = chargers.session_secs.max(1) as f64;
    match &c.charging {
        None if now < c.next => {}
        None => {
            c.charging = Some(link.start(number, c.register_wh).await?);
            c.power_w = 3_000.0 + rng.f64() * 8_000.0;
            c.next = now + Duration::from_secs_f64(mean * -(1.0 - rng.f64()).ln());
            c.meter_at = now;
            let status = c.status(link.version);
            link.status(number, status).await?;
        }
        Some(transaction) if now >= c.next => {
            let transaction = transaction.clone();
            link.stop(&transaction, c.register_wh).await?;
            c.charging = None;
            c.next = now + Duration::from_secs_f64(mean * -(1.0 - rng.f64()).ln());
            link.status(number, "Available").await?;
        }
        Some(transaction) if now >= c.meter_at => {
            let transaction = transaction.clone();
            c.register_wh += c.power_w * chargers.meter_secs as f64 / 3600.0;
            let volts = 228.0 + rng.f64() * 4.0;
            link.meter(number, &transaction, volts, c.power_w, c.register_wh)
                .await?;
            c.meter_at = now + Duration::from_secs(chargers.meter_secs.max(1));
        }
        Some(_) => {}
    }
    Ok(())
}

fn stamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A charger's side of the connection.
struct Link<'a> {
    socket: &'a mut Socket,
    /// The charger's id.
    id: &'a str,
    /// The OCPP version it speaks.
    version: Version,
    counters: &'a Counters,
    next_id: u64,
    /// 2.0.1: the sequence number of its next TransactionEvent.
    seq: u64,
    /// The central system asked for the connectors' status (TriggerMessage).
    triggered: bool,
    /// How many connectors the charger has.
    connectors: u32,
    /// This connection was made after a drop.
    after_drop: bool,
}

impl Link<'_> {
    /// Sends a call and waits for its answer (answering the central system's calls meanwhile).
    async fn call(&mut self, action: &str, payload: Value) -> Result<Value, Failure> {
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
                .map_err(|_| format!("no answer to {action} within 30 s"))?
                .ok_or("the connection closed")??;
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(text.as_str())?;
            match value.get(0).and_then(Value::as_u64) {
                Some(3 | 4) if value.get(1).and_then(Value::as_str) == Some(id.as_str()) => {
                    self.counters.answers.fetch_add(1, Ordering::Relaxed);
                    let micros = sent.elapsed().as_micros() as u64;
                    push(&self.counters.all_answer_micros, micros);
                    if sent >= self.counters.measure_from {
                        push(&self.counters.answer_micros, micros);
                        let index = usize::from(self.version == Version::V201);
                        push(&self.counters.answer_micros_by_version[index], micros);
                    }
                    if self.after_drop {
                        push(&self.counters.after_drop_answer_micros, micros);
                    }
                    if value[0] == 4 {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        return Err(format!("{action} was answered with an error: {value}").into());
                    }
                    return Ok(value.get(2).cloned().unwrap_or_default());
                }
                Some(2) => self.answer_csm(text.as_str()).await?,
                _ => {}
            }
        }
    }

    async fn status(&mut self, connector: u32, status: &str) -> Result<(), Failure> {
        let payload = match self.version {
            Version::V16 => {
                json!({"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": stamp()})
            }
            Version::V201 => {
                json!({"evseId": connector, "connectorId": 1, "connectorStatus": status, "timestamp": stamp()})
            }
        };
        self.call("StatusNotification", payload).await?;
        Ok(())
    }

    /// 2.0.1: a TransactionEvent of `kind` for `transaction`, with `meter` values.
    async fn transaction_event(
        &mut self,
        kind: &str,
        trigger: &str,
        transaction: &str,
        extra: Value,
    ) -> Result<(), Failure> {
        let mut payload = json!({"eventType": kind, "timestamp": stamp(), "triggerReason": trigger,
            "seqNo": self.seq, "transactionInfo": {"transactionId": transaction,
            "chargingState": if kind == "Ended" { "Idle" } else { "Charging" }}});
        if let (Value::Object(payload), Value::Object(extra)) = (&mut payload, extra) {
            payload.extend(extra);
        }
        self.seq += 1;
        self.call("TransactionEvent", payload).await?;
        Ok(())
    }

    /// A session starts on `connector`, the register at `register_wh`: its transaction id.
    async fn start(&mut self, connector: u32, register_wh: f64) -> Result<String, Failure> {
        match self.version {
            Version::V16 => {
                let started = self.call("StartTransaction", json!({"connectorId": connector, "idTag": "SIMTAG", "meterStart": register_wh as i64, "timestamp": stamp()})).await?;
                Ok(started
                    .get("transactionId")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .to_string())
            }
            Version::V201 => {
                self.next_id += 1;
                let transaction = format!("{}-{}", self.id, self.next_id);
                let extra = json!({"evse": {"id": connector, "connectorId": 1},
                    "meterValue": [{"timestamp": stamp(), "sampledValue": [{"value": register_wh.round(),
                        "context": "Transaction.Begin", "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"}}]}]});
                self.transaction_event("Started", "CablePluggedIn", &transaction, extra)
                    .await?;
                Ok(transaction)
            }
        }
    }

    /// The session `transaction` ends, the register at `register_wh`.
    async fn stop(&mut self, transaction: &str, register_wh: f64) -> Result<(), Failure> {
        match self.version {
            Version::V16 => {
                let id: i64 = transaction.parse().unwrap_or(0);
                self.call("StopTransaction", json!({"transactionId": id, "meterStop": register_wh as i64, "timestamp": stamp(), "reason": "EVDisconnected"})).await?;
            }
            Version::V201 => {
                let extra = json!({"meterValue": [{"timestamp": stamp(), "sampledValue": [{"value": register_wh.round(),
                    "context": "Transaction.End", "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh"}}]}]});
                self.transaction_event("Ended", "EVCommunicationLost", transaction, extra)
                    .await?;
            }
        }
        Ok(())
    }

    /// Meter values of a charging connector.
    async fn meter(
        &mut self,
        connector: u32,
        transaction: &str,
        volts: f64,
        watts: f64,
        register_wh: f64,
    ) -> Result<(), Failure> {
        let amps = watts / 230.0;
        match self.version {
            Version::V16 => {
                let id: i64 = transaction.parse().unwrap_or(0);
                self.call("MeterValues", json!({"connectorId": connector, "transactionId": id, "meterValue": [{"timestamp": stamp(), "sampledValue": [
                    {"value": format!("{volts:.1}"), "measurand": "Voltage", "unit": "V"},
                    {"value": format!("{amps:.2}"), "measurand": "Current.Import", "unit": "A"},
                    {"value": format!("{watts:.0}"), "measurand": "Power.Active.Import", "unit": "W"},
                    {"value": format!("{register_wh:.0}"), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                ]}]})).await?;
            }
            Version::V201 => {
                let round =
                    |v: f64, places: i32| (v * 10f64.powi(places)).round() / 10f64.powi(places);
                let extra = json!({"meterValue": [{"timestamp": stamp(), "sampledValue": [
                    {"value": round(volts, 1), "measurand": "Voltage", "unitOfMeasure": {"unit": "V"}},
                    {"value": round(amps, 2), "measurand": "Current.Import", "unitOfMeasure": {"unit": "A"}},
                    {"value": round(watts / 1000.0, 3), "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W", "multiplier": 3}},
                    {"value": register_wh.round(), "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}},
                ]}]});
                self.transaction_event("Updated", "MeterValuePeriodic", transaction, extra)
                    .await?;
            }
        }
        Ok(())
    }

    /// Answers a call of the central system: ChangeConfiguration of a key it has, Reset,
    /// UnlockConnector, ClearCache and TriggerMessage of StatusNotification (the statuses
    /// follow) are accepted, GetConfiguration reads its few keys; anything else gets
    /// `NotImplemented`.
    async fn answer_csm(&mut self, text: &str) -> Result<(), Failure> {
        let connectors = self.connectors;
        let value: Value = serde_json::from_str(text)?;
        if value.get(0).and_then(Value::as_u64) != Some(2) {
            return Ok(());
        }
        let id = value.get(1).cloned().unwrap_or_default();
        let requested = value
            .get(3)
            .and_then(|p| p.get("requestedMessage"))
            .and_then(Value::as_str);
        let payload = value.get(3).cloned().unwrap_or_default();
        let reply = match (value.get(2).and_then(Value::as_str), requested) {
            (Some("ChangeConfiguration"), _) => {
                let key = payload.get("key").and_then(Value::as_str).unwrap_or("");
                let status = if CONFIGURATION
                    .iter()
                    .any(|(k, _, readonly)| *k == key && !readonly)
                {
                    "Accepted"
                } else if CONFIGURATION.iter().any(|(k, _, _)| *k == key) {
                    "Rejected"
                } else {
                    "NotSupported"
                };
                json!([3, id, {"status": status}])
            }
            (Some("GetConfiguration"), _) => {
                let asked: Vec<&str> = payload
                    .get("key")
                    .and_then(Value::as_array)
                    .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let wanted = |key: &str| asked.is_empty() || asked.contains(&key);
                let known: Vec<Value> = CONFIGURATION
                    .iter()
                    .filter(|(key, _, _)| wanted(key))
                    .map(|(key, value, readonly)| {
                        let value = match *key {
                            "NumberOfConnectors" => connectors.to_string(),
                            _ => (*value).to_owned(),
                        };
                        json!({"key": key, "value": value, "readonly": readonly})
                    })
                    .collect();
                let unknown: Vec<&str> = asked
                    .iter()
                    .copied()
                    .filter(|key| !CONFIGURATION.iter().any(|(k, _, _)| k == key))
                    .collect();
                json!([3, id, {"configurationKey": known, "unknownKey": unknown}])
            }
            (Some("SetVariables"), _) => {
                let results: Vec<Value> = payload
                    .get("setVariableData")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|data| json!({"attributeStatus": "Accepted", "component": data["component"], "variable": data["variable"]}))
                    .collect();
                json!([3, id, {"setVariableResult": results}])
            }
            (Some("Reset" | "ClearCache"), _) => json!([3, id, {"status": "Accepted"}]),
            (Some("UnlockConnector"), _) => json!([3, id, {"status": "Unlocked"}]),
            (Some("TriggerMessage"), Some("StatusNotification")) => {
                self.triggered = true;
                json!([3, id, {"status": "Accepted"}])
            }
            (Some("TriggerMessage"), _) => json!([3, id, {"status": "NotImplemented"}]),
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
