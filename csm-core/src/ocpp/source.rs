//! The `ocpp` vendor: the charge points connected to csm. A connection feeds its charger's
//! frames in ([`OcppSource::handle`]); a refresh of the station reads what the charger last
//! said, observed now while the charger keeps to its heartbeat.
//!
//! A charger is offline when its socket closed, or when it has sent nothing for two heartbeat
//! intervals and a grace (half an interval, 1–60 s; [`OcppSource::liveness`]); a refresh then
//! fails with an error that says so ([`ChargerError::station_offline`]) and its ports turn
//! offline, stale, with the reason. A charger not heard since csm started gets the same window
//! from the start before it counts as offline, so a restart of csm is not an outage of every
//! charger.
//!
//! Held here, in memory, for each charge point heard since the process started: its
//! [`ChargePoint`] state, its connection, and what the registry of charge points shows of it
//! ([`ChargePointRecord`], written to the database by [`crate::Monitor::run_ocpp_registry`];
//! each change bumps a version, and a record is written until its latest version is).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Version;
use super::charge_point::{ChargePoint, Handled, Policy, TransactionIds};
use super::command::ChargerFacts;
use super::log::{Direction, Logged, MessageLog};
use crate::charger::{ChargerApi, ChargerError};
use crate::model::{Snapshot, Station, StationId};

pub use crate::model::OCPP_VENDOR;
pub use crate::model::ocpp::ChargePointRecord;

/// A call of csm's waiting for the charger's answer.
#[derive(Debug)]
struct Pending {
    id: String,
    /// Its action, named in the log beside the answer.
    action: String,
    answer: tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>,
}

#[derive(Debug)]
struct Live {
    point: ChargePoint,
    /// The OCPP version of its last connection to this process (`None`: it connected to
    /// another instance only).
    protocol: Option<Version>,
    /// The connection now serving it (0: none).
    connection: u64,
    connected_at: DateTime<Utc>,
    disconnected_at: Option<DateTime<Utc>>,
    heard: DateTime<Utc>,
    last_action: Option<String>,
    /// Whether the charger booted or reported a status on its current connection (otherwise
    /// csm asks it for its status).
    reported_here: bool,
    /// Frames for the connection to send (csm's calls).
    outbox: Option<tokio::sync::mpsc::Sender<String>>,
    /// The call of csm's waiting for its answer.
    pending: Option<Pending>,
    /// One call of csm's at a time: a call waits here for the one before to be answered.
    turn: std::sync::Arc<tokio::sync::Semaphore>,
    /// The last frames in both directions, over every connection of this process.
    log: MessageLog,
    /// Bumped at every change of its record; `written` is the version the registry stored.
    version: u64,
    written: u64,
}

impl Live {
    fn record(&self, id: &StationId, heartbeat: chrono::TimeDelta) -> ChargePointRecord {
        let boot = self.point.boot();
        ChargePointRecord {
            station_id: id.clone(),
            connected: self.connection != 0,
            connected_at: Some(self.connected_at),
            disconnected_at: self.disconnected_at,
            last_message_at: Some(self.heard),
            last_action: self.last_action.as_deref().map(|a| capped(a, 64)),
            vendor: boot.map(|b| capped(&b.vendor, 255)),
            model: boot.map(|b| capped(&b.model, 255)),
            firmware: boot
                .and_then(|b| b.firmware.as_deref())
                .map(|f| capped(f, 255)),
            firmware_status: self.point.firmware_status().map(|s| capped(s, 64)),
            serial: boot
                .and_then(|b| b.serial.as_deref())
                .map(|s| capped(s, 255)),
            problem: self.point.problem().map(|p| capped(p, 255)),
            ocpp_version: self.protocol,
            heartbeat_secs: u32::try_from(heartbeat.num_seconds()).unwrap_or(u32::MAX),
        }
    }
}

/// Why a call of csm's to a charger got no answer (also as one instance tells another).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum CallError {
    /// The charger is not connected.
    #[error("charge point {0} is not connected")]
    NotConnected(String),
    /// Another call of csm's is waiting for its answer.
    #[error("charge point {0} has not answered csm's previous call yet")]
    Busy(String),
    /// No answer in time.
    #[error("charge point {station} did not answer {action} within {secs} s")]
    TimedOut {
        /// The station.
        station: String,
        /// The action.
        action: String,
        /// The wait.
        secs: u64,
    },
    /// The charger answered with a CallError.
    #[error("charge point {station} answered {action} with an error: {message}")]
    Refused {
        /// The station.
        station: String,
        /// The action.
        action: String,
        /// Its code and description.
        message: String,
    },
    /// The instance holding the charger's connection could not be asked.
    #[error("the call to charge point {station} could not go through its instance: {message}")]
    Relayed {
        /// The station.
        station: String,
        /// What went wrong between the instances.
        message: String,
    },
}

/// A newer connection of the same charger took over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superseded;

/// The charge points csm knows, and which are connected.
#[derive(Debug)]
pub struct OcppSource {
    points: Mutex<HashMap<StationId, Live>>,
    connections: std::sync::atomic::AtomicU64,
    ids: TransactionIds,
    /// The heartbeat interval chargers are given.
    heartbeat: chrono::TimeDelta,
    /// When this source (the process) started.
    started: DateTime<Utc>,
    /// Whether the chargers' message logs are also written to the database.
    store_log: std::sync::atomic::AtomicBool,
}

impl Default for OcppSource {
    fn default() -> Self {
        Self::new(crate::settings::defaults::OCPP_HEARTBEAT_SECS)
    }
}

impl OcppSource {
    /// A source whose chargers are given a heartbeat of `heartbeat_secs`.
    pub fn new(heartbeat_secs: u32) -> Self {
        Self {
            points: Mutex::default(),
            connections: Default::default(),
            ids: TransactionIds::default(),
            heartbeat: chrono::TimeDelta::seconds(i64::from(heartbeat_secs.max(1))),
            started: crate::model::now(),
            store_log: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Keeps the message logs' frames for the database from now on (chargers heard from now).
    pub fn store_log(&self, on: bool) {
        self.store_log
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    fn stores_log(&self) -> bool {
        self.store_log.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The frames of every charger not written to the database yet, taken.
    pub fn take_unsaved(&self) -> Vec<(StationId, Vec<Logged>)> {
        self.lock()
            .iter_mut()
            .map(|(id, live)| (id.clone(), live.log.take_unsaved()))
            .filter(|(_, frames)| !frames.is_empty())
            .collect()
    }

    /// Puts back frames of a charger the database did not take.
    pub fn put_back(&self, id: &StationId, frames: Vec<Logged>) {
        if let Some(live) = self.lock().get_mut(id) {
            live.log.put_back(frames);
        }
    }

    /// How long a charger may stay silent before it counts as offline: two heartbeat
    /// intervals and a grace of half an interval (at least 1 s, at most 60 s).
    pub fn liveness(&self) -> chrono::TimeDelta {
        liveness(self.heartbeat)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StationId, Live>> {
        self.points.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A charger connected speaking `version`: returns the connection's number and the frames
    /// it is to send (csm's calls). A newer connection of the same charger replaces an older
    /// one (which, closing later, changes nothing).
    pub fn connect(
        &self,
        id: &StationId,
        version: Version,
    ) -> (u64, tokio::sync::mpsc::Receiver<String>) {
        let connection = self.next_number();
        let (outbox, frames) = tokio::sync::mpsc::channel(4);
        let now = crate::model::now();
        let mut points = self.lock();
        let live = points.entry(id.clone()).or_insert_with(|| Live {
            point: ChargePoint::new(id.clone(), version),
            protocol: None,
            connection: 0,
            connected_at: now,
            disconnected_at: None,
            heard: now,
            last_action: None,
            reported_here: false,
            outbox: None,
            pending: None,
            turn: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
            log: MessageLog::new(self.stores_log()),
            version: 0,
            written: 0,
        });
        let note = match live.connection {
            0 => format!("connection {connection} opened (OCPP {version})"),
            before => format!(
                "connection {connection} opened (OCPP {version}), replacing connection {before}"
            ),
        };
        live.log.push(now, Direction::Note, connection, None, &note);
        live.point.speaks(version);
        live.protocol = Some(version);
        live.connection = connection;
        live.connected_at = now;
        live.disconnected_at = None;
        live.heard = now;
        live.reported_here = false;
        live.outbox = Some(outbox);
        live.pending = None;
        live.turn = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        live.version += 1;
        (connection, frames)
    }

    fn next_number(&self) -> u64 {
        self.connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// Calls the charger (`TriggerMessage`, `ChangeConfiguration`, …) and waits at most
    /// `timeout` for its answer. One call is outstanding per charger, as OCPP-J asks: a call
    /// waits (within the same `timeout`) for the one before it to be answered.
    pub async fn call(
        &self,
        id: &StationId,
        action: &str,
        payload: serde_json::Value,
        timeout: std::time::Duration,
    ) -> Result<serde_json::Value, CallError> {
        let not_connected = || CallError::NotConnected(id.to_string());
        let started = tokio::time::Instant::now();
        let turn = {
            let points = self.lock();
            let live = points
                .get(id)
                .filter(|l| l.connection != 0)
                .ok_or_else(not_connected)?;
            std::sync::Arc::clone(&live.turn)
        };
        let _turn = tokio::time::timeout(timeout, turn.acquire_owned())
            .await
            .map_err(|_| CallError::Busy(id.to_string()))?
            .map_err(|_| not_connected())?;
        let call_id = format!("csm-{}", self.next_number());
        let answer = {
            let mut points = self.lock();
            let live = points
                .get_mut(id)
                .filter(|l| l.connection != 0)
                .ok_or_else(not_connected)?;
            let outbox = live.outbox.as_ref().ok_or_else(not_connected)?;
            let frame = super::frame::call(&call_id, action, &payload);
            live.log.push(
                crate::model::now(),
                Direction::Out,
                live.connection,
                Some(action),
                &frame,
            );
            outbox
                .try_send(frame)
                .map_err(|_| CallError::Busy(id.to_string()))?;
            let (answer, answered) = tokio::sync::oneshot::channel();
            live.pending = Some(Pending {
                id: call_id.clone(),
                action: action.to_owned(),
                answer,
            });
            answered
        };
        let left = timeout.saturating_sub(started.elapsed());
        let outcome = tokio::time::timeout(left, answer).await;
        let mut points = self.lock();
        if let Some(live) = points.get_mut(id)
            && live.pending.as_ref().is_some_and(|p| p.id == call_id)
        {
            live.pending = None;
        }
        match outcome {
            Ok(Ok(Ok(payload))) => Ok(payload),
            Ok(Ok(Err(message))) => Err(CallError::Refused {
                station: id.to_string(),
                action: action.to_owned(),
                message,
            }),
            Ok(Err(_)) => Err(not_connected()),
            Err(_) => Err(CallError::TimedOut {
                station: id.to_string(),
                action: action.to_owned(),
                secs: timeout.as_secs(),
            }),
        }
    }

    /// What a connected charger has said that a command is checked against; `None` when no
    /// connection to this process serves it.
    pub fn facts(&self, id: &StationId) -> Option<ChargerFacts> {
        self.lock()
            .get(id)
            .filter(|live| live.connection != 0)
            .map(|live| live.point.facts())
    }

    /// The OCPP version of a charger connected to this process.
    pub fn version(&self, id: &StationId) -> Option<Version> {
        self.lock()
            .get(id)
            .filter(|live| live.connection != 0)
            .map(|live| live.point.version())
    }

    /// The report of request `request_id` a connected charger has sent so far (2.0.1
    /// NotifyReport), and whether it is complete.
    pub fn report(
        &self,
        id: &StationId,
        request_id: i64,
    ) -> Option<(Vec<serde_json::Value>, bool)> {
        self.lock()
            .get(id)
            .and_then(|live| live.point.report(request_id))
            .map(|(data, complete)| (data.to_vec(), complete))
    }

    /// The charger's logged frames after number `after`, at most `limit` (the newest);
    /// `None` when this process has heard nothing of it.
    pub fn messages(&self, id: &StationId, after: u64, limit: usize) -> Option<Vec<Logged>> {
        self.lock().get(id).map(|live| live.log.after(after, limit))
    }

    /// A connection closed; `false` when a newer one serves the charger (nothing changed).
    pub fn disconnect(&self, id: &StationId, connection: u64) -> bool {
        let mut points = self.lock();
        match points.get_mut(id) {
            Some(live) if live.connection == connection => {
                close(live, crate::model::now());
                true
            }
            _ => false,
        }
    }

    /// Every connection is closing (the server stops): the chargers are recorded as
    /// disconnected now.
    pub fn disconnect_all(&self) {
        let now = crate::model::now();
        for live in self.lock().values_mut() {
            if live.connection != 0 {
                close(live, now);
            }
        }
    }

    /// Whether the charger, still on connection `connection`, has neither booted nor reported
    /// a status on it.
    pub fn quiet_since_connected(&self, id: &StationId, connection: u64) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|live| live.connection == connection && !live.reported_here)
    }

    /// Answers a frame of connection `connection`, received now (`Ok(None)`: nothing to
    /// answer). `Err(Superseded)`: a newer connection serves the charger; close this one.
    pub fn handle(
        &self,
        id: &StationId,
        connection: u64,
        text: &str,
        policy: &Policy,
    ) -> Result<Option<Handled>, Superseded> {
        let now = crate::model::now();
        let mut points = self.lock();
        match points.get_mut(id) {
            Some(live) if live.connection == connection => {
                // A charger that counted as offline for its silence is back: refresh it now.
                let was_silent = now - live.heard > liveness(self.heartbeat);
                live.heard = now;
                live.version += 1;
                if let Some(incoming) = answer_to_csm(text) {
                    let action = live.pending.as_ref().map(|p| p.action.clone());
                    live.log
                        .push(now, Direction::In, connection, action.as_deref(), text);
                    settle(live, incoming);
                    return Ok(None);
                }
                let mut handled = live.point.handle(text, now, policy, &self.ids);
                let action = handled.as_ref().and_then(|h| h.action.as_deref());
                live.log.push(now, Direction::In, connection, action, text);
                if let Some(handled) = &handled {
                    live.log
                        .push(now, Direction::Out, connection, action, &handled.reply);
                }
                if let Some(action) = action {
                    live.reported_here |= action == "BootNotification"
                        || (action == "StatusNotification" && live.point.has_ports());
                    if live.last_action.as_deref() != Some(action) {
                        live.last_action = Some(action.to_owned());
                    }
                }
                if let Some(handled) = &mut handled {
                    handled.changed |= was_silent;
                }
                Ok(handled)
            }
            _ => Err(Superseded),
        }
    }

    /// Charger `id`, whose connection was on an instance that is gone, was last heard at
    /// `heard`: unless a connection serves it here, it counts as disconnected from then on
    /// (its refresh reads it offline). Nothing new for the registry to write.
    pub fn orphaned(&self, id: &StationId, heard: DateTime<Utc>) {
        let mut points = self.lock();
        let live = points.entry(id.clone()).or_insert_with(|| Live {
            point: ChargePoint::new(id.clone(), Version::default()),
            protocol: None,
            connection: 0,
            connected_at: heard,
            disconnected_at: Some(heard),
            heard,
            last_action: None,
            reported_here: false,
            outbox: None,
            pending: None,
            turn: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
            log: MessageLog::new(self.stores_log()),
            version: 0,
            written: 0,
        });
        if live.connection == 0 {
            live.heard = live.heard.max(heard);
            live.disconnected_at.get_or_insert(heard);
        }
    }

    /// When this source (the process) started.
    pub fn started(&self) -> DateTime<Utc> {
        self.started
    }

    /// Forgets a removed station.
    pub fn forget(&self, id: &StationId) {
        self.lock().remove(id);
    }

    /// The records of the charge points heard since the process started; with `changed_only`,
    /// only those whose latest version is not stored yet. Each comes with its version (for
    /// [`OcppSource::stored`]).
    pub fn records(&self, changed_only: bool) -> Vec<(ChargePointRecord, u64)> {
        self.lock()
            .iter()
            .filter(|(_, live)| !changed_only || live.version != live.written)
            .map(|(id, live)| (live.record(id, self.heartbeat), live.version))
            .collect()
    }

    /// Whether a connection to this process serves the charger now.
    pub fn holds(&self, id: &StationId) -> bool {
        self.lock().get(id).is_some_and(|live| live.connection != 0)
    }

    /// The record of one charge point heard since the process started.
    pub fn record(&self, id: &StationId) -> Option<ChargePointRecord> {
        self.lock()
            .get(id)
            .map(|live| live.record(id, self.heartbeat))
    }

    /// The registry stored these versions of these records.
    pub fn stored(&self, written: &[(StationId, u64)]) {
        let mut points = self.lock();
        for (id, version) in written {
            if let Some(live) = points.get_mut(id) {
                live.written = live.written.max(*version);
            }
        }
    }
}

/// Two heartbeat intervals and a grace of half an interval (1–60 s).
pub(crate) fn liveness(heartbeat: chrono::TimeDelta) -> chrono::TimeDelta {
    let grace = (heartbeat / 2).clamp(
        chrono::TimeDelta::seconds(1),
        chrono::TimeDelta::seconds(60),
    );
    heartbeat * 2 + grace
}

/// At most `chars` characters of a text a charger sent (the registry's columns are bounded).
fn capped(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// Ends the connection serving a charger.
fn close(live: &mut Live, now: DateTime<Utc>) {
    let note = format!("connection {} closed", live.connection);
    live.log
        .push(now, Direction::Note, live.connection, None, &note);
    live.connection = 0;
    live.disconnected_at = Some(now);
    live.outbox = None;
    live.pending = None;
    live.version += 1;
}

/// A result or error frame (an answer to a call of csm's), read; `None` for anything else.
fn answer_to_csm(text: &str) -> Option<super::frame::Incoming> {
    let start = text.trim_start();
    if !(start.starts_with("[3") || start.starts_with("[4")) {
        return None;
    }
    super::frame::parse(text).ok()
}

/// Hands the charger's answer to the call waiting for it.
fn settle(live: &mut Live, incoming: super::frame::Incoming) {
    let (id, outcome) = match incoming {
        super::frame::Incoming::Result { id, payload } => (id, Ok(payload)),
        super::frame::Incoming::Error {
            id,
            code,
            description,
        } => (id, Err(format!("{code}: {description}"))),
        super::frame::Incoming::Call { .. } => return,
    };
    if live.pending.as_ref().is_some_and(|p| p.id == id)
        && let Some(pending) = live.pending.take()
    {
        let _ = pending.answer.send(outcome);
    }
}

#[async_trait]
impl ChargerApi for OcppSource {
    fn vendor(&self) -> &str {
        OCPP_VENDOR
    }

    fn endpoint(&self) -> Option<String> {
        None
    }

    async fn fetch(&self, station: &Station) -> Result<Snapshot, ChargerError> {
        let now = crate::model::now();
        let vendor = || OCPP_VENDOR.to_owned();
        let name = || station.id.to_string();
        let points = self.lock();
        match points.get(&station.id) {
            Some(live) if live.connection != 0 => {
                if now - live.heard > self.liveness() {
                    Err(ChargerError::Silent {
                        vendor: vendor(),
                        station: name(),
                        since: live.heard,
                    })
                } else if !live.point.has_ports() {
                    Err(ChargerError::NotReported {
                        vendor: vendor(),
                        station: name(),
                    })
                } else {
                    Ok(live.point.snapshot(now))
                }
            }
            None if now - self.started <= self.liveness() => Err(ChargerError::NotConnectedYet {
                vendor: vendor(),
                station: name(),
                since: self.started,
            }),
            _ => Err(ChargerError::Disconnected {
                vendor: vendor(),
                station: name(),
            }),
        }
    }

    async fn list_stations(&self) -> Result<Vec<Station>, ChargerError> {
        Err(ChargerError::Unsupported {
            vendor: OCPP_VENDOR.into(),
            message:
                "charge points register themselves when they connect; there is no list to import"
                    .into(),
        })
    }

    async fn probe(&self) -> Result<(), ChargerError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn station(id: &str) -> Station {
        Station::charge_point(StationId::parse(id).unwrap(), id.into())
    }

    const STATUS: &str = r#"[2,"s1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Charging"}]"#;

    #[tokio::test]
    async fn a_charger_waits_then_reports_then_goes_offline() {
        let source = OcppSource::new(60);
        let cp = station("CP1");
        let error = source.fetch(&cp).await.unwrap_err();
        assert!(
            matches!(error, ChargerError::NotConnectedYet { .. }),
            "{error}"
        );
        assert!(error.is_waiting() && !error.station_offline());

        let (connection, _calls) = source.connect(&cp.id, Version::V16);
        assert!(source.quiet_since_connected(&cp.id, connection));
        let error = source.fetch(&cp).await.unwrap_err();
        assert!(matches!(error, ChargerError::NotReported { .. }), "{error}");

        let handled = source
            .handle(&cp.id, connection, STATUS, &Policy::default())
            .unwrap()
            .unwrap();
        assert!(handled.changed);
        assert!(!source.quiet_since_connected(&cp.id, connection));
        let snapshot = source.fetch(&cp).await.unwrap();
        assert_eq!(snapshot.ports.len(), 1);

        assert!(source.disconnect(&cp.id, connection));
        let error = source.fetch(&cp).await.unwrap_err();
        assert!(
            matches!(error, ChargerError::Disconnected { .. }),
            "{error}"
        );
        assert!(error.station_offline());
    }

    #[tokio::test]
    async fn a_charger_never_heard_counts_offline_once_its_window_from_start_passed() {
        let mut source = OcppSource::new(60);
        source.started -= source.liveness() + chrono::TimeDelta::seconds(1);
        let error = source.fetch(&station("CP2")).await.unwrap_err();
        assert!(
            matches!(error, ChargerError::Disconnected { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_silent_charger_is_offline_and_refreshed_when_it_speaks_again() {
        let source = OcppSource::new(60);
        let cp = station("CP3");
        let (connection, _calls) = source.connect(&cp.id, Version::V16);
        source
            .handle(&cp.id, connection, STATUS, &Policy::default())
            .unwrap();
        source.lock().get_mut(&cp.id).unwrap().heard -= source.liveness() * 2;
        let error = source.fetch(&cp).await.unwrap_err();
        assert!(matches!(error, ChargerError::Silent { .. }), "{error}");
        let heartbeat = r#"[2,"h1","Heartbeat",{}]"#;
        let handled = source
            .handle(&cp.id, connection, heartbeat, &Policy::default())
            .unwrap()
            .unwrap();
        assert!(handled.changed, "back from silence: a refresh is due");
        assert!(source.fetch(&cp).await.is_ok());
    }

    #[test]
    fn records_are_written_until_their_latest_version_is_stored() {
        let source = OcppSource::new(60);
        let id = StationId::parse("CP4").unwrap();
        let (connection, _calls) = source.connect(&id, Version::V16);
        let boot = r#"[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M","firmwareVersion":"1.2.3"}]"#;
        source
            .handle(&id, connection, boot, &Policy::default())
            .unwrap();
        let changed = source.records(true);
        assert_eq!(changed.len(), 1);
        let (record, version) = &changed[0];
        assert!(record.connected);
        assert_eq!(
            (record.last_action.as_deref(), record.firmware.as_deref()),
            (Some("BootNotification"), Some("1.2.3"))
        );
        // A frame arrives while the record is being written: that version is still due.
        source
            .handle(&id, connection, STATUS, &Policy::default())
            .unwrap();
        source.stored(&[(id.clone(), *version)]);
        let due = source.records(true);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0.last_action.as_deref(), Some("StatusNotification"));
        source.stored(&[(id.clone(), due[0].1)]);
        assert!(source.records(true).is_empty());
        source.disconnect_all();
        let gone = source.records(true);
        assert!(!gone[0].0.connected && gone[0].0.disconnected_at.is_some());
        assert_eq!(source.records(false).len(), 1);
    }
}
