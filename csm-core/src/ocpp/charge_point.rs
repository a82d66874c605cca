//! One OCPP charge point as csm sees it, whichever version it speaks: its ports (1.6's
//! connectors, 2.0.1's EVSEs), what the charger as a whole says (1.6's connector 0, 2.0.1's
//! station-level status and problems), its boot details and its transactions; and the answer
//! to each call it makes ([`super::v16`], [`super::v201`]). Whatever changes a port turns into
//! the same [`Snapshot`] a poll produces, observed at csm's receive time, never the charger's
//! clock.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::frame::{self, ErrorCode, Incoming};
use super::meter::Measures;
use super::{Version, v16, v201};
use crate::model::{MAX_PORT, PortReading, PortStatus, Snapshot, StationId};

/// How csm answers a charger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The heartbeat interval given in BootNotification's answer, seconds.
    pub heartbeat_secs: u32,
    /// Whether Authorize (and the id tags of 1.6's StartTransaction) are accepted.
    pub accept_authorize: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            heartbeat_secs: 300,
            accept_authorize: true,
        }
    }
}

/// csm's transaction ids for OCPP 1.6 (2.0.1 chargers choose their own): 64-bit,
/// increasing, unique across restarts (they start from the clock in microseconds).
#[derive(Debug)]
pub struct TransactionIds(AtomicI64);

impl Default for TransactionIds {
    fn default() -> Self {
        Self(AtomicI64::new(Utc::now().timestamp_micros()))
    }
}

impl TransactionIds {
    pub(super) fn next(&self) -> i64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// What the charger said of itself at boot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Boot {
    /// 1.6 `chargePointVendor`, 2.0.1 `vendorName`.
    pub vendor: String,
    /// 1.6 `chargePointModel`, 2.0.1 `model`.
    pub model: String,
    /// `firmwareVersion`, when sent.
    pub firmware: Option<String>,
    /// 1.6 `chargePointSerialNumber`, 2.0.1 `serialNumber`, when sent.
    pub serial: Option<String>,
}

/// A running transaction on a port.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Transaction {
    /// Its id: csm's number (1.6) or the charger's text (2.0.1).
    pub(super) id: String,
    /// The energy register at its start, kWh (`None` when unknown or impossible, so the
    /// session's energy is unknown).
    pub(super) start_kwh: Option<f64>,
}

/// One port: a 1.6 connector, a 2.0.1 EVSE.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Connector {
    pub(super) status: Option<PortStatus>,
    /// The charger's status and error code (`Charging`, `Faulted GroundFailure`, `Occupied`).
    pub(super) raw: Option<String>,
    pub(super) measures: Measures,
    pub(super) transaction: Option<Transaction>,
    /// The energy of the session that ended on it, kWh: shown until the port is free again
    /// or another session starts (a session's energy is what its port showed last).
    pub(super) ended_kwh: Option<f64>,
    /// 2.0.1: its transaction's `chargingState` (`Charging`, `SuspendedEV`, …).
    pub(super) charging: Option<String>,
}

/// A report (2.0.1 NotifyReport) a charger sends in parts for one request.
#[derive(Clone, Debug, PartialEq)]
struct Report {
    request_id: i64,
    data: Vec<Value>,
    /// The bytes of its entries as JSON.
    bytes: usize,
    complete: bool,
}

/// At most this many reports are kept (the newest).
const REPORTS: usize = 4;
/// At most this many bytes (as JSON) of one report's entries are kept; the rest of a larger
/// report is acknowledged and left (a full inventory of a large station is a few hundred KiB).
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// One answered call.
#[derive(Clone, Debug, PartialEq)]
pub struct Handled {
    /// The frame to send back.
    pub reply: String,
    /// Whether a port changed (a new snapshot is due).
    pub changed: bool,
    /// Whether it was an accepted BootNotification (csm then configures the charger).
    pub booted: bool,
    /// The call's action (`None` when the frame could not be read).
    pub action: Option<String>,
}

/// A call's answer, or the error code and description to answer with.
pub(super) type Answer = Result<(Value, bool), (ErrorCode, String)>;

/// A charge point's state.
#[derive(Debug)]
pub struct ChargePoint {
    station_id: StationId,
    version: Version,
    pub(super) connectors: BTreeMap<u32, Connector>,
    /// The whole charger faulted (1.6 connector 0, 2.0.1 the station's status): its
    /// status and error, applying to every port.
    pub(super) charger_fault: Option<String>,
    /// 2.0.1: a station-level `Problem` the charger raised (its tech code and info), until it
    /// clears it.
    pub(super) problem: Option<String>,
    pub(super) boot: Option<Boot>,
    /// The last FirmwareStatusNotification's status.
    pub(super) firmware_status: Option<String>,
    reports: VecDeque<Report>,
}

impl ChargePoint {
    /// A charge point speaking `version` that has said nothing yet.
    pub fn new(station_id: StationId, version: Version) -> Self {
        Self {
            station_id,
            version,
            connectors: BTreeMap::new(),
            charger_fault: None,
            problem: None,
            boot: None,
            firmware_status: None,
            reports: VecDeque::new(),
        }
    }

    /// The OCPP version it speaks.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The charger reconnected speaking `version` (a firmware update can change it).
    pub fn speaks(&mut self, version: Version) {
        self.version = version;
    }

    /// What it said at boot.
    pub fn boot(&self) -> Option<&Boot> {
        self.boot.as_ref()
    }

    /// The status of its last FirmwareStatusNotification (`Downloading`, `Installed`, …).
    pub fn firmware_status(&self) -> Option<&str> {
        self.firmware_status.as_deref()
    }

    /// The station-level problem it reports (2.0.1), if any.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// The report for request `request_id` as received so far, and whether it is complete.
    pub fn report(&self, request_id: i64) -> Option<(&[Value], bool)> {
        self.reports
            .iter()
            .find(|r| r.request_id == request_id)
            .map(|r| (r.data.as_slice(), r.complete))
    }

    /// What an operator's command is checked against: the version, the ports it has
    /// reported and its running transactions.
    pub fn facts(&self) -> super::command::ChargerFacts {
        super::command::ChargerFacts {
            version: self.version,
            connectors: self.connectors.keys().copied().filter(|c| *c > 0).collect(),
            transactions: self
                .connectors
                .iter()
                .filter_map(|(c, connector)| Some((*c, connector.transaction.as_ref()?.id.clone())))
                .collect(),
        }
    }

    /// Whether port `port` has reported its status (it is shown).
    pub(super) fn has_status(&self, port: u32) -> bool {
        self.connectors
            .get(&port)
            .is_some_and(|c| c.status.is_some())
    }

    /// Whether any port has reported its status (there are ports to show).
    pub fn has_ports(&self) -> bool {
        self.connectors.values().any(|c| c.status.is_some())
    }

    /// Answers one frame received at `now`. Results and errors of csm's own calls need no
    /// answer (`None`).
    pub fn handle(
        &mut self,
        text: &str,
        now: DateTime<Utc>,
        policy: &Policy,
        ids: &TransactionIds,
    ) -> Option<Handled> {
        let (id, action, payload) = match frame::parse(text) {
            Ok(Incoming::Call {
                id,
                action,
                payload,
            }) => (id, action, payload),
            Ok(Incoming::Result { .. } | Incoming::Error { .. }) => return None,
            Err(bad) => {
                return Some(Handled {
                    reply: frame::error(self.version, &bad.id, bad.code, &bad.description),
                    changed: false,
                    booted: false,
                    action: None,
                });
            }
        };
        let answered = match self.version {
            Version::V16 => v16::answer(self, &action, &payload, now, policy, ids),
            Version::V201 => v201::answer(self, &action, &payload, now, policy),
        };
        Some(match answered {
            Ok((payload, changed)) => Handled {
                reply: frame::result(&id, &payload),
                changed,
                booted: action == "BootNotification",
                action: Some(action),
            },
            Err((code, description)) => Handled {
                reply: frame::error(self.version, &id, code, &description),
                changed: false,
                booted: false,
                action: Some(action),
            },
        })
    }

    /// Port `port`'s status is now `status`, as the charger named it (`raw`): whether that
    /// changed it. A free port no longer shows its last session's energy.
    pub(super) fn set_status(&mut self, port: u32, status: PortStatus, raw: String) -> bool {
        let entry = self.connectors.entry(port).or_default();
        let changed = entry.status != Some(status) || entry.raw.as_deref() != Some(raw.as_str());
        entry.status = Some(status);
        entry.raw = Some(raw);
        if status == PortStatus::Free {
            entry.ended_kwh = None;
        }
        changed
    }

    /// The whole charger is faulted (`Some`: its status and error) or no longer: whether that
    /// changed a port.
    pub(super) fn set_charger_fault(&mut self, fault: Option<String>) -> bool {
        let changed = fault != self.charger_fault && !self.connectors.is_empty();
        self.charger_fault = fault;
        changed
    }

    /// New meter values of port `port`: whether they changed a port shown.
    pub(super) fn measured(&mut self, port: u32, measures: Measures) -> bool {
        let entry = self.connectors.entry(port).or_default();
        let merged = merge(entry.measures, measures);
        let changed = merged != entry.measures;
        entry.measures = merged;
        changed && entry.status.is_some()
    }

    /// A transaction `id` started on port `port`, the energy register then at `start_kwh`
    /// (an impossible one is not kept: the session's energy is then unknown).
    pub(super) fn started(&mut self, port: u32, id: String, start_kwh: Option<f64>) {
        let entry = self.connectors.entry(port).or_default();
        let start_kwh = start_kwh.filter(|kwh| crate::measure::Measure::Energy.holds(*kwh));
        entry.transaction = Some(Transaction { id, start_kwh });
        entry.ended_kwh = None;
    }

    /// Transaction `id` ended, the register then at `stop_kwh` (when said): the port shows the
    /// session's energy until it is free. Whether a port shown changed.
    pub(super) fn ended(&mut self, id: &str, stop_kwh: Option<f64>) -> bool {
        let mut changed = false;
        for entry in self.connectors.values_mut() {
            let Some(transaction) = entry.transaction.take_if(|t| t.id == id) else {
                continue;
            };
            if let Some(stop) = stop_kwh.filter(|kwh| crate::measure::Measure::Energy.holds(*kwh)) {
                entry.measures.energy_register_kwh = Some(stop);
            }
            entry.ended_kwh = transaction
                .start_kwh
                .zip(entry.measures.energy_register_kwh)
                .map(|(start, stop)| (stop - start).max(0.0));
            entry.charging = None;
            changed |= entry.status.is_some();
        }
        changed
    }

    /// Keeps a part of the report for request `request_id` (within [`MAX_REPORT_BYTES`]);
    /// `last` when the charger says no part follows.
    pub(super) fn reported(&mut self, request_id: i64, data: Vec<Value>, last: bool) {
        let index = match self.reports.iter().position(|r| r.request_id == request_id) {
            Some(index) => index,
            None => {
                if self.reports.len() == REPORTS {
                    self.reports.pop_front();
                }
                self.reports.push_back(Report {
                    request_id,
                    data: Vec::new(),
                    bytes: 0,
                    complete: false,
                });
                self.reports.len() - 1
            }
        };
        let report = &mut self.reports[index];
        for entry in data {
            let bytes = entry.to_string().len();
            if report.bytes + bytes > MAX_REPORT_BYTES {
                break;
            }
            report.bytes += bytes;
            report.data.push(entry);
        }
        report.complete |= last;
    }

    /// The ports as a snapshot observed at `now` (ports that have reported a status).
    pub fn snapshot(&self, now: DateTime<Utc>) -> Snapshot {
        let ports = self
            .connectors
            .iter()
            .filter_map(|(number, c)| {
                let mut status = c.status?;
                let mut raw = match (&c.raw, &c.charging) {
                    (Some(raw), Some(charging)) => Some(format!("{raw} ({charging})")),
                    (raw, _) => raw.clone(),
                };
                if let Some(fault) = &self.charger_fault {
                    status = PortStatus::Fault;
                    raw = Some(format!("charger {fault}"));
                }
                if let Some(problem) = &self.problem {
                    raw = Some(match raw {
                        Some(raw) => format!("{raw}; charger problem {problem}"),
                        None => format!("charger problem {problem}"),
                    });
                }
                let register = c.measures.energy_register_kwh;
                let energy = match &c.transaction {
                    Some(Transaction {
                        start_kwh: Some(start),
                        ..
                    }) => register.map(|now| (now - start).max(0.0)),
                    // The session's start is not known: neither is its energy.
                    Some(_) => None,
                    None => c.ended_kwh.or(register),
                };
                Some(PortReading {
                    port: *number,
                    status,
                    raw_code: raw,
                    voltage: c.measures.voltage,
                    current: c.measures.current,
                    power: c.measures.power,
                    energy_kwh: energy,
                    session_ends_at: None,
                })
            })
            .collect();
        Snapshot {
            station_id: self.station_id.clone(),
            observed_at: crate::model::stored_precision(now),
            ports,
        }
    }
}

/// Meter values that name only some measurands keep the others.
fn merge(old: Measures, new: Measures) -> Measures {
    Measures {
        voltage: new.voltage.or(old.voltage),
        current: new.current.or(old.current),
        power: new.power.or(old.power),
        energy_register_kwh: new.energy_register_kwh.or(old.energy_register_kwh),
    }
}

pub(super) fn missing(field: &str) -> (ErrorCode, String) {
    (
        ErrorCode::ProtocolError,
        format!("the payload has no {field}"),
    )
}

/// A required text field.
pub(super) fn text<'a>(p: &'a Value, field: &str) -> Result<&'a str, (ErrorCode, String)> {
    match p.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err((
            ErrorCode::TypeConstraintViolation,
            format!("{field} is not a string"),
        )),
    }
}

/// An optional text field (one of another type counts as absent).
pub(super) fn optional_text(p: &Value, field: &str) -> Option<String> {
    p.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// A required whole number (some firmware sends numbers as text).
pub(super) fn whole(p: &Value, field: &str) -> Result<i64, (ErrorCode, String)> {
    let not_whole = || {
        (
            ErrorCode::TypeConstraintViolation,
            format!("{field} is not a whole number"),
        )
    };
    match p.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(not_whole),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| not_whole()),
        Some(_) => Err(not_whole()),
    }
}

/// A port number field (1.6 `connectorId`, 2.0.1 `evseId`): 0 (the charger) to
/// [`MAX_PORT`].
pub(super) fn port_number(p: &Value, field: &str) -> Result<u32, (ErrorCode, String)> {
    let id = whole(p, field)?;
    u32::try_from(id)
        .ok()
        .filter(|id| *id <= MAX_PORT)
        .ok_or_else(|| {
            (
                ErrorCode::PropertyConstraintViolation,
                format!("{field} {id} is outside 0..={MAX_PORT}"),
            )
        })
}
