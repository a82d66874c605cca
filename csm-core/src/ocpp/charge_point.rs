//! One OCPP 1.6J charge point as csm sees it: its connectors (ports 1…N), what connector 0 —
//! the charger itself — says, its boot details and its transactions; and the answer to each
//! call it makes. Whatever changes a port turns into the same [`Snapshot`] a poll produces,
//! observed at csm's receive time, never the charger's clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::frame::{self, ErrorCode, Incoming};
use super::meter::{self, Measures};
use crate::model::{MAX_PORT, PortReading, PortStatus, Snapshot, StationId};

/// How csm answers a charger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The heartbeat interval given in BootNotification's answer, seconds.
    pub heartbeat_secs: u32,
    /// Whether Authorize (and the id tags of StartTransaction) are accepted.
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

/// csm's transaction ids: 64-bit, increasing, unique across restarts (they start from the
/// clock in microseconds).
#[derive(Debug)]
pub struct TransactionIds(AtomicI64);

impl Default for TransactionIds {
    fn default() -> Self {
        Self(AtomicI64::new(Utc::now().timestamp_micros()))
    }
}

impl TransactionIds {
    fn next(&self) -> i64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// What the charger said of itself at boot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Boot {
    /// `chargePointVendor`.
    pub vendor: String,
    /// `chargePointModel`.
    pub model: String,
    /// `firmwareVersion`, when sent.
    pub firmware: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct Connector {
    status: Option<PortStatus>,
    /// The charger's status and error code (`Charging`, `Faulted GroundFailure`).
    raw: Option<String>,
    measures: Measures,
    /// The running transaction and its meter at start (kWh; `None` when the charger sent an
    /// impossible one, so the session's energy is unknown).
    transaction: Option<(i64, Option<f64>)>,
}

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

/// A charge point's state.
#[derive(Debug)]
pub struct ChargePoint {
    station_id: StationId,
    connectors: BTreeMap<u32, Connector>,
    /// Connector 0 `Faulted`: the error code and info, applying to every port.
    charger_fault: Option<String>,
    boot: Option<Boot>,
    /// The last FirmwareStatusNotification's status.
    firmware_status: Option<String>,
}

impl ChargePoint {
    /// A charge point that has said nothing yet.
    pub fn new(station_id: StationId) -> Self {
        Self {
            station_id,
            connectors: BTreeMap::new(),
            charger_fault: None,
            boot: None,
            firmware_status: None,
        }
    }

    /// What it said at boot.
    pub fn boot(&self) -> Option<&Boot> {
        self.boot.as_ref()
    }

    /// The status of its last FirmwareStatusNotification (`Downloading`, `Installed`, …).
    pub fn firmware_status(&self) -> Option<&str> {
        self.firmware_status.as_deref()
    }

    /// What an operator's command is checked against: the connectors it has reported and
    /// its running transactions.
    pub fn facts(&self) -> super::command::ChargerFacts {
        super::command::ChargerFacts {
            connectors: self.connectors.keys().copied().filter(|c| *c > 0).collect(),
            transactions: self
                .connectors
                .iter()
                .filter_map(|(c, connector)| Some((*c, connector.transaction?.0)))
                .collect(),
        }
    }

    /// Whether any connector has reported its status (there are ports to show).
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
                    reply: frame::error(&bad.id, bad.code, &bad.description),
                    changed: false,
                    booted: false,
                    action: None,
                });
            }
        };
        let answered = self.call(&action, &payload, now, policy, ids);
        Some(match answered {
            Ok((payload, changed)) => Handled {
                reply: frame::result(&id, &payload),
                changed,
                booted: action == "BootNotification",
                action: Some(action),
            },
            Err((code, description)) => Handled {
                reply: frame::error(&id, code, &description),
                changed: false,
                booted: false,
                action: Some(action),
            },
        })
    }

    fn call(
        &mut self,
        action: &str,
        p: &Value,
        now: DateTime<Utc>,
        policy: &Policy,
        ids: &TransactionIds,
    ) -> Result<(Value, bool), (ErrorCode, String)> {
        let time = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let tag = |accepted: bool| json!({"status": if accepted { "Accepted" } else { "Invalid" }});
        match action {
            "BootNotification" => {
                self.boot = Some(Boot {
                    vendor: text(p, "chargePointVendor")?.to_owned(),
                    model: text(p, "chargePointModel")?.to_owned(),
                    firmware: p
                        .get("firmwareVersion")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
                Ok((
                    json!({"status": "Accepted", "currentTime": time, "interval": policy.heartbeat_secs}),
                    false,
                ))
            }
            "Heartbeat" => Ok((json!({"currentTime": time}), false)),
            "StatusNotification" => {
                let connector = connector_id(p)?;
                let status = text(p, "status")?;
                let error_code = text(p, "errorCode")?;
                let mapped = port_status(status).ok_or_else(|| {
                    (
                        ErrorCode::PropertyConstraintViolation,
                        format!("{status:?} is not a ChargePointStatus"),
                    )
                })?;
                let mut raw = status.to_owned();
                if error_code != "NoError" {
                    raw.push(' ');
                    raw.push_str(error_code);
                }
                if let Some(info) = p
                    .get("info")
                    .and_then(Value::as_str)
                    .filter(|i| !i.is_empty())
                {
                    raw.push_str(&format!(" ({info})"));
                }
                if connector == 0 {
                    let before = self.charger_fault.clone();
                    self.charger_fault = (mapped == PortStatus::Fault).then_some(raw);
                    return Ok((
                        json!({}),
                        before != self.charger_fault && !self.connectors.is_empty(),
                    ));
                }
                let entry = self.connectors.entry(connector).or_default();
                let changed =
                    entry.status != Some(mapped) || entry.raw.as_deref() != Some(raw.as_str());
                entry.status = Some(mapped);
                entry.raw = Some(raw);
                Ok((json!({}), changed))
            }
            "MeterValues" => {
                let connector = connector_id(p)?;
                let values = p.get("meterValue").ok_or_else(|| missing("meterValue"))?;
                if connector == 0 {
                    return Ok((json!({}), false));
                }
                let measures = meter::read(values);
                let entry = self.connectors.entry(connector).or_default();
                let merged = merge(entry.measures, measures);
                let changed = merged != entry.measures;
                entry.measures = merged;
                Ok((json!({}), changed && entry.status.is_some()))
            }
            "StartTransaction" => {
                let connector = connector_id(p)?;
                text(p, "idTag")?;
                let meter_start = whole(p, "meterStart")?;
                let transaction = ids.next();
                // The port's energy is now counted from the session's start.
                let mut changed = false;
                if connector > 0 {
                    let entry = self.connectors.entry(connector).or_default();
                    let start = meter_start as f64 / 1000.0;
                    let start = crate::measure::Measure::Energy
                        .holds(start)
                        .then_some(start);
                    entry.transaction = Some((transaction, start));
                    changed = entry.status.is_some();
                }
                Ok((
                    json!({"transactionId": transaction, "idTagInfo": tag(policy.accept_authorize)}),
                    changed,
                ))
            }
            "StopTransaction" => {
                let transaction = whole(p, "transactionId")?;
                whole(p, "meterStop")?;
                // A stop for a transaction csm never issued is accepted all the same: a
                // charger would send it again forever.
                let mut changed = false;
                for entry in self.connectors.values_mut() {
                    if entry.transaction.is_some_and(|(t, _)| t == transaction) {
                        entry.transaction = None;
                        changed |= entry.status.is_some();
                    }
                }
                Ok((json!({"idTagInfo": tag(true)}), changed))
            }
            "Authorize" => {
                text(p, "idTag")?;
                Ok((json!({"idTagInfo": tag(policy.accept_authorize)}), false))
            }
            // csm knows no vendor extension.
            "DataTransfer" => {
                text(p, "vendorId")?;
                Ok((json!({"status": "UnknownVendorId"}), false))
            }
            "FirmwareStatusNotification" => {
                self.firmware_status = Some(text(p, "status")?.to_owned());
                Ok((json!({}), false))
            }
            "DiagnosticsStatusNotification" => {
                text(p, "status")?;
                Ok((json!({}), false))
            }
            other => Err((
                ErrorCode::NotImplemented,
                format!("csm does not handle {other}"),
            )),
        }
    }

    /// The ports as a snapshot observed at `now` (connectors that have reported a status).
    pub fn snapshot(&self, now: DateTime<Utc>) -> Snapshot {
        let ports = self
            .connectors
            .iter()
            .filter_map(|(number, c)| {
                let mut status = c.status?;
                let mut raw = c.raw.clone();
                if let Some(fault) = &self.charger_fault {
                    status = PortStatus::Fault;
                    raw = Some(format!("charger {fault}"));
                }
                let register = c.measures.energy_register_kwh;
                let energy = match c.transaction {
                    Some((_, Some(start))) => register.map(|now| (now - start).max(0.0)),
                    // The session's start is not known: neither is its energy.
                    Some((_, None)) => None,
                    None => register,
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

/// A MeterValues that names only some measurands keeps the others.
fn merge(old: Measures, new: Measures) -> Measures {
    Measures {
        voltage: new.voltage.or(old.voltage),
        current: new.current.or(old.current),
        power: new.power.or(old.power),
        energy_register_kwh: new.energy_register_kwh.or(old.energy_register_kwh),
    }
}

/// csm's status of a ChargePointStatus.
pub fn port_status(status: &str) -> Option<PortStatus> {
    Some(match status {
        "Available" => PortStatus::Free,
        "Preparing" | "Charging" | "SuspendedEV" | "SuspendedEVSE" | "Finishing" => {
            PortStatus::Occupied
        }
        "Reserved" => PortStatus::Reserved,
        "Unavailable" => PortStatus::Unavailable,
        "Faulted" => PortStatus::Fault,
        _ => return None,
    })
}

fn missing(field: &str) -> (ErrorCode, String) {
    (
        ErrorCode::ProtocolError,
        format!("the payload has no {field}"),
    )
}

fn text<'a>(p: &'a Value, field: &str) -> Result<&'a str, (ErrorCode, String)> {
    match p.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err((
            ErrorCode::TypeConstraintViolation,
            format!("{field} is not a string"),
        )),
    }
}

fn whole(p: &Value, field: &str) -> Result<i64, (ErrorCode, String)> {
    match p.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| {
                (
                    ErrorCode::TypeConstraintViolation,
                    format!("{field} is not a whole number"),
                )
            }),
        // Some firmware sends numbers as text.
        Some(Value::String(s)) => s.trim().parse().map_err(|_| {
            (
                ErrorCode::TypeConstraintViolation,
                format!("{field} is not a whole number"),
            )
        }),
        Some(_) => Err((
            ErrorCode::TypeConstraintViolation,
            format!("{field} is not a whole number"),
        )),
    }
}

fn connector_id(p: &Value) -> Result<u32, (ErrorCode, String)> {
    let id = whole(p, "connectorId")?;
    u32::try_from(id)
        .ok()
        .filter(|id| *id <= MAX_PORT)
        .ok_or_else(|| {
            (
                ErrorCode::PropertyConstraintViolation,
                format!("connectorId {id} is outside 0..={MAX_PORT}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn fixture(name: &str) -> &'static str {
        match name {
            "boot" => include_str!("../../../tests/fixtures/ocpp/boot.json"),
            "charging" => include_str!("../../../tests/fixtures/ocpp/status-charging.json"),
            "faulted0" => {
                include_str!("../../../tests/fixtures/ocpp/status-connector0-faulted.json")
            }
            "clock1970" => include_str!("../../../tests/fixtures/ocpp/status-clock-1970.json"),
            "three" => include_str!("../../../tests/fixtures/ocpp/meter-three-phase.json"),
            "start" => include_str!("../../../tests/fixtures/ocpp/start-transaction.json"),
            "stop" => include_str!("../../../tests/fixtures/ocpp/stop-unknown-transaction.json"),
            "unknown" => include_str!("../../../tests/fixtures/ocpp/unknown-action.json"),
            "broken" => include_str!("../../../tests/fixtures/ocpp/bad-frame-truncated.txt"),
            _ => unreachable!(),
        }
    }

    fn reply(cp: &mut ChargePoint, name: &str, now: DateTime<Utc>) -> (Value, bool) {
        let handled = cp
            .handle(
                fixture(name),
                now,
                &Policy::default(),
                &TransactionIds::default(),
            )
            .unwrap();
        (
            serde_json::from_str(&handled.reply).unwrap(),
            handled.changed,
        )
    }

    #[test]
    fn each_sample_is_answered_as_the_specification_says() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 5).unwrap();
        let mut cp = ChargePoint::new(StationId::parse("CP-1").unwrap());
        let (boot, _) = reply(&mut cp, "boot", now);
        assert_eq!((boot[0].as_u64(), boot[1].as_str()), (Some(3), Some("b-1")));
        assert_eq!(boot[2]["status"], "Accepted");
        assert_eq!(boot[2]["interval"], 300);
        assert_eq!(boot[2]["currentTime"], "2026-11-30T08:00:05.000Z");
        assert_eq!(cp.boot().unwrap().vendor, "Alfen BV");

        let (status, changed) = reply(&mut cp, "charging", now);
        assert_eq!(status, json!([3, "s-1", {}]));
        assert!(changed);
        let (_, changed) = reply(&mut cp, "clock1970", now);
        assert!(changed);
        let snapshot = cp.snapshot(now);
        assert_eq!(
            snapshot.observed_at, now,
            "csm's clock, not the charger's 1970"
        );
        assert_eq!(snapshot.ports.len(), 2);
        assert_eq!(
            (
                snapshot.ports[0].status,
                snapshot.ports[0].raw_code.as_deref()
            ),
            (PortStatus::Occupied, Some("Charging"))
        );
        assert_eq!(snapshot.ports[1].status, PortStatus::Free);

        let (_, changed) = reply(&mut cp, "faulted0", now);
        assert!(changed);
        let snapshot = cp.snapshot(now);
        assert_eq!(snapshot.ports.len(), 2, "no phantom port 0");
        assert!(snapshot.ports.iter().all(|p| p.status == PortStatus::Fault));
        assert_eq!(
            snapshot.ports[0].raw_code.as_deref(),
            Some("charger Faulted GroundFailure (RCD tripped)")
        );

        let (_, changed) = reply(&mut cp, "three", now);
        assert!(changed);
        let port = &cp.snapshot(now).ports[0];
        assert!(
            (port.current.unwrap() - 48.0).abs() < 1e-9 && port.power == Some(11_040.0),
            "{port:?}"
        );

        let ids = TransactionIds::default();
        let started: Value = serde_json::from_str(
            &cp.handle(fixture("start"), now, &Policy::default(), &ids)
                .unwrap()
                .reply,
        )
        .unwrap();
        let transaction = started[2]["transactionId"].as_i64().unwrap();
        assert!(
            transaction > i64::from(i32::MAX),
            "64-bit ids: {transaction}"
        );
        assert_eq!(started[2]["idTagInfo"]["status"], "Accepted");
        let (stopped, _) = reply(&mut cp, "stop", now);
        assert_eq!(
            stopped,
            json!([3, "t-1", {"idTagInfo": {"status": "Accepted"}}])
        );
        let (unknown, _) = reply(&mut cp, "unknown", now);
        assert_eq!(
            (
                unknown[0].as_u64(),
                unknown[1].as_str(),
                unknown[2].as_str()
            ),
            (Some(4), Some("x-2"), Some("NotImplemented"))
        );
        let (broken, _) = reply(&mut cp, "broken", now);
        assert_eq!(
            (broken[0].as_u64(), broken[2].as_str()),
            (Some(4), Some("FormationViolation"))
        );
    }

    #[test]
    fn incomplete_and_ill_typed_payloads_get_their_error_codes() {
        let now = Utc::now();
        let mut cp = ChargePoint::new(StationId::parse("CP-2").unwrap());
        let answer = |cp: &mut ChargePoint, text: &str| -> Value {
            serde_json::from_str(
                &cp.handle(text, now, &Policy::default(), &TransactionIds::default())
                    .unwrap()
                    .reply,
            )
            .unwrap()
        };
        let incomplete = answer(
            &mut cp,
            r#"[2, "1", "StatusNotification", {"connectorId": 1, "errorCode": "NoError"}]"#,
        );
        assert_eq!(incomplete[2], "ProtocolError");
        let typed = answer(
            &mut cp,
            r#"[2, "2", "StatusNotification", {"connectorId": "one", "errorCode": "NoError", "status": "Available"}]"#,
        );
        assert_eq!(typed[2], "TypeConstraintViolation");
        let odd = answer(
            &mut cp,
            r#"[2, "3", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}]"#,
        );
        assert_eq!(odd[2], "PropertyConstraintViolation");
        let heartbeat = answer(&mut cp, r#"[2, "4", "Heartbeat", {}]"#);
        assert!(heartbeat[2]["currentTime"].is_string());
        assert_eq!(port_status("SuspendedEVSE"), Some(PortStatus::Occupied));
        assert_eq!(port_status("Unavailable"), Some(PortStatus::Unavailable));
        assert!(
            cp.handle(
                r#"[3, "csm-1", {}]"#,
                now,
                &Policy::default(),
                &TransactionIds::default()
            )
            .is_none()
        );
    }
}
