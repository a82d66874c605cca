//! The `ocpp` vendor: the charge points connected to csm. A connection feeds its charger's
//! frames in ([`OcppSource::handle`]); a refresh of the station reads what the charger last
//! said, observed now while the charger keeps to its heartbeat. A charger that disconnects, or
//! sends nothing for two heartbeat intervals and a grace (half an interval, 1–60 s), fails its
//! refreshes like an unreachable vendor: stale, with the reason, counted offline in history
//! and seen by offline alerts.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::charge_point::{ChargePoint, Handled, Policy, TransactionIds};
use crate::charger::{ChargerApi, ChargerError};
use crate::model::{Snapshot, Station, StationId};

/// The vendor name of stations that are OCPP charge points.
pub const OCPP_VENDOR: &str = "ocpp";

/// A call of csm's waiting for the charger's answer.
#[derive(Debug)]
struct Pending {
    id: String,
    answer: tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>,
}

#[derive(Debug)]
struct Live {
    point: ChargePoint,
    /// The connection now serving it (0: none).
    connection: u64,
    heard: DateTime<Utc>,
    /// Frames for the connection to send (csm's calls).
    outbox: Option<tokio::sync::mpsc::Sender<String>>,
    /// At most one call of csm's at a time.
    pending: Option<Pending>,
}

/// Why a call of csm's to a charger got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
        }
    }

    /// A charger connected: returns the connection's number and the frames it is to send
    /// (csm's calls). A newer connection of the same charger replaces an older one (which,
    /// closing later, changes nothing).
    pub fn connect(&self, id: &StationId) -> (u64, tokio::sync::mpsc::Receiver<String>) {
        let connection = self.next_number();
        let (outbox, frames) = tokio::sync::mpsc::channel(4);
        let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        let live = points.entry(id.clone()).or_insert_with(|| Live {
            point: ChargePoint::new(id.clone()),
            connection: 0,
            heard: crate::model::now(),
            outbox: None,
            pending: None,
        });
        live.connection = connection;
        live.heard = crate::model::now();
        live.outbox = Some(outbox);
        live.pending = None;
        (connection, frames)
    }

    fn next_number(&self) -> u64 {
        self.connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// Calls the charger (`TriggerMessage`, `ChangeConfiguration`, …) and waits at most
    /// `timeout` for its answer. At most one call is outstanding per charger.
    pub async fn call(
        &self,
        id: &StationId,
        action: &str,
        payload: serde_json::Value,
        timeout: std::time::Duration,
    ) -> Result<serde_json::Value, CallError> {
        let call_id = format!("csm-{}", self.next_number());
        let not_connected = || CallError::NotConnected(id.to_string());
        let answer = {
            let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
            let live = points
                .get_mut(id)
                .filter(|l| l.connection != 0)
                .ok_or_else(not_connected)?;
            if live.pending.is_some() {
                return Err(CallError::Busy(id.to_string()));
            }
            let outbox = live.outbox.as_ref().ok_or_else(not_connected)?;
            outbox
                .try_send(super::frame::call(&call_id, action, &payload))
                .map_err(|_| CallError::Busy(id.to_string()))?;
            let (answer, answered) = tokio::sync::oneshot::channel();
            live.pending = Some(Pending {
                id: call_id.clone(),
                answer,
            });
            answered
        };
        let outcome = tokio::time::timeout(timeout, answer).await;
        let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
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

    /// A connection closed; `false` when a newer one serves the charger (nothing changed).
    pub fn disconnect(&self, id: &StationId, connection: u64) -> bool {
        let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        match points.get_mut(id) {
            Some(live) if live.connection == connection => {
                live.connection = 0;
                live.outbox = None;
                live.pending = None;
                true
            }
            _ => false,
        }
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
        let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        match points.get_mut(id) {
            Some(live) if live.connection == connection => {
                live.heard = now;
                if let Some(incoming) = answer_to_csm(text) {
                    settle(live, incoming);
                    return Ok(None);
                }
                Ok(live.point.handle(text, now, policy, &self.ids))
            }
            _ => Err(Superseded),
        }
    }

    /// Forgets a removed station.
    pub fn forget(&self, id: &StationId) {
        self.points
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
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
        let points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        match points.get(&station.id) {
            Some(live) if live.connection != 0 => {
                let now = crate::model::now();
                let grace = (self.heartbeat / 2).clamp(
                    chrono::TimeDelta::seconds(1),
                    chrono::TimeDelta::seconds(60),
                );
                if now - live.heard > self.heartbeat * 2 + grace {
                    return Err(ChargerError::Silent {
                        vendor: OCPP_VENDOR.into(),
                        station: station.id.to_string(),
                        since: live.heard,
                    });
                }
                Ok(live.point.snapshot(now))
            }
            _ => Err(ChargerError::Disconnected {
                vendor: OCPP_VENDOR.into(),
                station: station.id.to_string(),
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
