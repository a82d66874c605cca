//! The calls of an OCPP 2.0.1 charger and csm's answers. EVSE N is port N; the connectors of
//! one EVSE share it (an EVSE charges one vehicle at a time, so its connectors are one port's
//! cables). What the whole station says (its status, a `Problem` it raises) applies to every
//! port. Transactions carry the charger's own ids and their meter values.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::charge_point::{
    Answer, Boot, ChargePoint, Policy, missing, optional_text, port_number, text, whole,
};
use super::frame::ErrorCode;
use super::meter;
use crate::model::PortStatus;

/// Longest transaction id OCPP 2.0.1 allows.
const MAX_TRANSACTION_ID: usize = 36;

/// Answers 2.0.1 call `action` with payload `p`, received at `now`.
pub(super) fn answer(
    cp: &mut ChargePoint,
    action: &str,
    p: &Value,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Answer {
    let time = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    match action {
        "BootNotification" => {
            text(p, "reason")?;
            let station = object(p, "chargingStation")?;
            cp.boot = Some(Boot {
                vendor: text(station, "vendorName")?.to_owned(),
                model: text(station, "model")?.to_owned(),
                firmware: optional_text(station, "firmwareVersion"),
                serial: optional_text(station, "serialNumber"),
            });
            Ok((
                json!({"currentTime": time, "interval": policy.heartbeat_secs, "status": "Accepted"}),
                false,
            ))
        }
        "Heartbeat" => Ok((json!({"currentTime": time}), false)),
        "StatusNotification" => {
            let evse = port_number(p, "evseId")?;
            whole(p, "connectorId")?;
            let status = text(p, "connectorStatus")?;
            let mapped = connector_status(status)?;
            Ok((json!({}), status_of(cp, evse, mapped, status)))
        }
        "NotifyEvent" => {
            whole(p, "seqNo")?;
            let events = p
                .get("eventData")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("eventData"))?;
            let mut changed = false;
            for event in events {
                changed |= notified(cp, event)?;
            }
            Ok((json!({}), changed))
        }
        "TransactionEvent" => transaction_event(cp, p, policy),
        "MeterValues" => {
            let evse = port_number(p, "evseId")?;
            let values = p.get("meterValue").ok_or_else(|| missing("meterValue"))?;
            // EVSE 0 is the station's main meter, no port's.
            if evse == 0 {
                return Ok((json!({}), false));
            }
            Ok((json!({}), cp.measured(evse, meter::read(values))))
        }
        "Authorize" => {
            text(object(p, "idToken")?, "idToken")?;
            Ok((
                json!({"idTokenInfo": token_info(policy.accept_authorize)}),
                false,
            ))
        }
        "FirmwareStatusNotification" => {
            cp.firmware_status = Some(text(p, "status")?.to_owned());
            Ok((json!({}), false))
        }
        "SecurityEventNotification" => {
            text(p, "type")?;
            Ok((json!({}), false))
        }
        "LogStatusNotification" => {
            text(p, "status")?;
            Ok((json!({}), false))
        }
        "NotifyReport" => {
            let request = whole(p, "requestId")?;
            whole(p, "seqNo")?;
            let last = !p.get("tbc").and_then(Value::as_bool).unwrap_or(false);
            let data = match p.get("reportData") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(data)) => data.clone(),
                Some(_) => {
                    return Err((
                        ErrorCode::TypeConstraintViolation,
                        "reportData is not a list".into(),
                    ));
                }
            };
            cp.reported(request, data, last);
            Ok((json!({}), false))
        }
        // csm knows no vendor extension.
        "DataTransfer" => {
            text(p, "vendorId")?;
            Ok((json!({"status": "UnknownVendorId"}), false))
        }
        other => Err((
            ErrorCode::NotImplemented,
            format!("csm does not handle {other} (OCPP 2.0.1)"),
        )),
    }
}

/// csm's status of a 2.0.1 `ConnectorStatusEnumType`.
pub fn port_status(status: &str) -> Option<PortStatus> {
    Some(match status {
        "Available" => PortStatus::Free,
        "Occupied" => PortStatus::Occupied,
        "Reserved" => PortStatus::Reserved,
        "Unavailable" => PortStatus::Unavailable,
        "Faulted" => PortStatus::Fault,
        _ => return None,
    })
}

fn connector_status(status: &str) -> Result<PortStatus, (ErrorCode, String)> {
    port_status(status).ok_or_else(|| {
        (
            ErrorCode::PropertyConstraintViolation,
            format!("{status:?} is not a ConnectorStatus (Available, Occupied, Reserved, Unavailable, Faulted)"),
        )
    })
}

/// EVSE `evse` (0: the whole station) has status `status`: whether a port changed.
fn status_of(cp: &mut ChargePoint, evse: u32, status: PortStatus, raw: &str) -> bool {
    if evse == 0 {
        cp.set_charger_fault((status == PortStatus::Fault).then(|| raw.to_owned()))
    } else {
        cp.set_status(evse, status, raw.to_owned())
    }
}

/// One event of a NotifyEvent: a connector's or EVSE's `AvailabilityState` sets its port, the
/// station's sets every port; a station-level `Problem` is kept (its tech code) until it
/// clears. Other events are acknowledged and left. Whether a port changed.
fn notified(cp: &mut ChargePoint, event: &Value) -> Result<bool, (ErrorCode, String)> {
    let component = object(event, "component")?;
    let variable = text(object(event, "variable")?, "name")?;
    let value = text(event, "actualValue")?;
    let evse = match component.get("evse") {
        Some(evse) => port_number(evse, "id")?,
        None => 0,
    };
    let name = text(component, "name")?;
    Ok(match (name, variable) {
        ("Connector" | "EVSE" | "ChargingStation", "AvailabilityState") => {
            match port_status(value) {
                Some(status) => status_of(cp, evse, status, value),
                None => false,
            }
        }
        (_, "Problem") if evse == 0 => {
            let problem = value.eq_ignore_ascii_case("true").then(|| {
                let code = optional_text(event, "techCode").unwrap_or_else(|| name.to_owned());
                match optional_text(event, "techInfo") {
                    Some(info) if !info.is_empty() => format!("{code} ({info})"),
                    _ => code,
                }
            });
            let changed = problem != cp.problem && cp.has_ports();
            cp.problem = problem;
            changed
        }
        _ => false,
    })
}

/// A TransactionEvent: `Started` counts the port's energy from the register it carries (or
/// the last one known), `Updated` brings meter values and the charging state, `Ended` keeps
/// the session's energy on the port until it is free.
fn transaction_event(cp: &mut ChargePoint, p: &Value, policy: &Policy) -> Answer {
    let event = text(p, "eventType")?;
    text(p, "triggerReason")?;
    whole(p, "seqNo")?;
    let info = object(p, "transactionInfo")?;
    let id = text(info, "transactionId")?;
    if id.is_empty() || id.len() > MAX_TRANSACTION_ID {
        return Err((
            ErrorCode::PropertyConstraintViolation,
            format!(
                "transactionId has {} characters; OCPP 2.0.1 allows 1 to {MAX_TRANSACTION_ID}",
                id.len()
            ),
        ));
    }
    let charging = optional_text(info, "chargingState");
    let evse = match p.get("evse") {
        Some(evse) => Some(port_number(evse, "id")?),
        None => None,
    };
    let measures = p.get("meterValue").map(meter::read).unwrap_or_default();
    let reply = match p.get("idToken") {
        Some(token) => {
            text(token, "idToken")?;
            json!({"idTokenInfo": token_info(policy.accept_authorize)})
        }
        None => json!({}),
    };
    // The EVSE is named at least once, in the first event; later ones may leave it out.
    let port = evse.filter(|e| *e > 0).or_else(|| {
        cp.connectors
            .iter()
            .find(|(_, c)| c.transaction.as_ref().is_some_and(|t| t.id == id))
            .map(|(port, _)| *port)
    });
    let Some(port) = port else {
        // A transaction csm never saw start, on no EVSE it names: acknowledged all the same,
        // or the charger would send it again forever.
        return Ok((reply, false));
    };
    let before = cp.connectors.get(&port).cloned();
    match event {
        "Started" | "Updated" => {
            let running = cp
                .connectors
                .get(&port)
                .and_then(|c| c.transaction.as_ref());
            if running.is_none_or(|t| t.id != id) {
                let known = cp
                    .connectors
                    .get(&port)
                    .and_then(|c| c.measures.energy_register_kwh);
                cp.started(port, id.to_owned(), measures.energy_register_kwh.or(known));
            }
            cp.measured(port, measures);
            let entry = cp.connectors.entry(port).or_default();
            entry.charging = charging;
            // A session runs on it: occupied, whatever status it has not sent yet.
            if entry.status.is_none() {
                entry.status = Some(PortStatus::Occupied);
                entry.raw = Some("Occupied".into());
            }
        }
        "Ended" => {
            let stop = measures.energy_register_kwh;
            cp.measured(port, measures);
            cp.ended(id, stop);
        }
        other => {
            return Err((
                ErrorCode::PropertyConstraintViolation,
                format!("eventType {other:?} is not Started, Updated or Ended"),
            ));
        }
    }
    let after = cp.connectors.get(&port);
    let changed = after != before.as_ref() && after.is_some_and(|c| c.status.is_some());
    Ok((reply, changed))
}

fn token_info(accepted: bool) -> Value {
    json!({"status": if accepted { "Accepted" } else { "Invalid" }})
}

/// A required object field.
fn object<'a>(p: &'a Value, field: &str) -> Result<&'a Value, (ErrorCode, String)> {
    match p.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(value @ Value::Object(_)) => Ok(value),
        Some(_) => Err((
            ErrorCode::TypeConstraintViolation,
            format!("{field} is not an object"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{PortReading, StationId};
    use crate::ocpp::{TransactionIds, Version};

    fn fixture(name: &str) -> &'static str {
        match name {
            "boot" => include_str!("../../../tests/fixtures/ocpp201/boot.json"),
            "occupied" => include_str!("../../../tests/fixtures/ocpp201/status-occupied.json"),
            "faulted2" => {
                include_str!("../../../tests/fixtures/ocpp201/status-second-evse-faulted.json")
            }
            "event" => {
                include_str!("../../../tests/fixtures/ocpp201/notify-event-availability.json")
            }
            "started" => include_str!("../../../tests/fixtures/ocpp201/transaction-started.json"),
            "updated" => {
                include_str!("../../../tests/fixtures/ocpp201/transaction-updated-three-phase.json")
            }
            "ended" => include_str!("../../../tests/fixtures/ocpp201/transaction-ended.json"),
            "meter" => {
                include_str!("../../../tests/fixtures/ocpp201/meter-values-default-units.json")
            }
            "security" => include_str!("../../../tests/fixtures/ocpp201/security-event.json"),
            "unknown" => include_str!("../../../tests/fixtures/ocpp201/unknown-action.json"),
            _ => unreachable!(),
        }
    }

    fn reply(cp: &mut ChargePoint, text: &str, now: DateTime<Utc>) -> (Value, bool) {
        let handled = cp
            .handle(text, now, &Policy::default(), &TransactionIds::default())
            .unwrap();
        (
            serde_json::from_str(&handled.reply).unwrap(),
            handled.changed,
        )
    }

    fn port(cp: &ChargePoint, number: u32, now: DateTime<Utc>) -> PortReading {
        cp.snapshot(now)
            .ports
            .into_iter()
            .find(|p| p.port == number)
            .unwrap_or_else(|| panic!("port {number}"))
    }

    fn near(value: Option<f64>, expected: f64) -> bool {
        value.is_some_and(|v| (v - expected).abs() < 1e-6)
    }

    #[test]
    fn each_sample_is_answered_and_read_as_its_readme_says() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 5).unwrap();
        let mut cp = ChargePoint::new(StationId::parse("CP-201").unwrap(), Version::V201);
        let (boot, _) = reply(&mut cp, fixture("boot"), now);
        assert_eq!(
            boot,
            json!([3, "b-1", {"currentTime": "2026-12-06T08:00:05.000Z", "interval": 300, "status": "Accepted"}])
        );
        let booted = cp.boot().unwrap();
        assert_eq!(
            (booted.vendor.as_str(), booted.model.as_str()),
            ("ABB", "Terra AC W22-T-RD-M-0")
        );
        assert_eq!(
            (booted.firmware.as_deref(), booted.serial.as_deref()),
            (Some("1.6.12"), Some("TACW2241A0012"))
        );

        assert_eq!(
            reply(&mut cp, fixture("occupied"), now),
            (json!([3, "s-1", {}]), true)
        );
        let one = port(&cp, 1, now);
        assert_eq!(
            (one.status, one.raw_code.as_deref()),
            (PortStatus::Occupied, Some("Occupied"))
        );
        assert_eq!(
            reply(&mut cp, fixture("faulted2"), now),
            (json!([3, "s-2", {}]), true)
        );
        assert_eq!(port(&cp, 2, now).status, PortStatus::Fault);

        assert_eq!(
            reply(&mut cp, fixture("event"), now),
            (json!([3, "e-1", {}]), true)
        );
        let two = port(&cp, 2, now);
        assert_eq!(two.status, PortStatus::Free);
        assert_eq!(
            cp.problem(),
            Some("E-RCD (residual current device tripped)")
        );
        assert!(
            two.raw_code.as_deref().unwrap().contains("E-RCD"),
            "{two:?}"
        );

        assert_eq!(
            reply(&mut cp, fixture("started"), now),
            (json!([3, "t-1", {}]), true)
        );
        assert_eq!(port(&cp, 1, now).status, PortStatus::Occupied);
        assert_eq!(
            cp.facts().transactions,
            vec![(1, "9f6c1d2e-4b7a-4c3e-8a51-0d2f7e6b3a90".to_owned())]
        );
        let (_, changed) = reply(&mut cp, fixture("updated"), now);
        assert!(changed);
        let charging = port(&cp, 1, now);
        assert!(
            near(charging.voltage, (229.8 + 231.2 + 230.4) / 3.0),
            "{charging:?}"
        );
        assert!(near(charging.current, 48.0), "N not added: {charging:?}");
        assert!(near(charging.power, 11_040.0), "{charging:?}");
        assert!(
            near(charging.energy_kwh, 1.8),
            "from the start's register: {charging:?}"
        );
        assert!(
            charging
                .raw_code
                .as_deref()
                .unwrap()
                .starts_with("Occupied (Charging)")
        );

        assert_eq!(
            reply(&mut cp, fixture("ended"), now),
            (json!([3, "t-3", {}]), true)
        );
        let ended = port(&cp, 1, now);
        assert!(
            near(ended.energy_kwh, 9.2),
            "the session's energy: {ended:?}"
        );
        assert!(cp.facts().transactions.is_empty());
        assert_eq!(ended.status, PortStatus::Occupied, "until its next status");

        let (_, changed) = reply(&mut cp, fixture("meter"), now);
        assert!(changed);
        let two = port(&cp, 2, now);
        assert!(
            near(two.power, 3_680.0)
                && near(two.current, 16.0)
                && near(two.voltage, 230.0)
                && near(two.energy_kwh, 3.68),
            "{two:?}"
        );

        assert_eq!(
            reply(&mut cp, fixture("security"), now),
            (json!([3, "x-1", {}]), false)
        );
        let (unknown, _) = reply(&mut cp, fixture("unknown"), now);
        assert_eq!(
            (
                unknown[0].as_u64(),
                unknown[1].as_str(),
                unknown[2].as_str()
            ),
            (Some(4), Some("x-2"), Some("NotImplemented"))
        );
        assert_eq!(unknown[4], json!({}));
    }

    #[test]
    fn the_station_level_status_marks_every_port_and_reports_collect_in_parts() {
        let now = Utc::now();
        let mut cp = ChargePoint::new(StationId::parse("CP-202").unwrap(), Version::V201);
        reply(&mut cp, fixture("occupied"), now);
        reply(&mut cp, fixture("faulted2"), now);
        let station = r#"[2,"e-2","NotifyEvent",{"generatedAt":"2026-12-06T08:00:00Z","seqNo":0,"eventData":[{"eventId":1,"timestamp":"2026-12-06T08:00:00Z","trigger":"Delta","actualValue":"Faulted","eventNotificationType":"HardWiredNotification","component":{"name":"ChargingStation"},"variable":{"name":"AvailabilityState"}}]}]"#;
        let (_, changed) = reply(&mut cp, station, now);
        assert!(changed);
        assert!(
            cp.snapshot(now)
                .ports
                .iter()
                .all(|p| p.status == PortStatus::Fault)
        );
        let back = r#"[2,"s-3","StatusNotification",{"timestamp":"2026-12-06T08:00:00Z","connectorStatus":"Available","evseId":0,"connectorId":0}]"#;
        reply(&mut cp, back, now);
        assert_eq!(port(&cp, 1, now).status, PortStatus::Occupied);

        let part = |seq: u32, tbc: bool, name: &str| {
            format!(
                r#"[2,"r-{seq}","NotifyReport",{{"requestId":42,"generatedAt":"2026-12-06T08:00:00Z","seqNo":{seq},"tbc":{tbc},"reportData":[{{"component":{{"name":"{name}"}},"variable":{{"name":"Enabled"}},"variableAttribute":[{{"value":"true"}}]}}]}}]"#
            )
        };
        reply(&mut cp, &part(0, true, "OCPPCommCtrlr"), now);
        assert_eq!(
            cp.report(42).map(|(d, done)| (d.len(), done)),
            Some((1, false))
        );
        reply(&mut cp, &part(1, false, "SampledDataCtrlr"), now);
        let (data, done) = cp.report(42).unwrap();
        assert!(done);
        assert_eq!(data[1]["component"]["name"], "SampledDataCtrlr");

        // A report larger than csm keeps is acknowledged; what is kept stays within bounds.
        let big = "x".repeat(100 * 1024);
        for seq in 0..20 {
            let part = format!(
                r#"[2,"big-{seq}","NotifyReport",{{"requestId":7,"generatedAt":"2026-12-06T08:00:00Z","seqNo":{seq},"tbc":true,"reportData":[{{"component":{{"name":"{big}"}},"variable":{{"name":"V"}}}}]}}]"#
            );
            assert_eq!(reply(&mut cp, &part, now).0[0], 3);
        }
        let (kept, done) = cp.report(7).unwrap();
        assert!(
            !done && !kept.is_empty() && kept.len() < 20,
            "{} entries",
            kept.len()
        );

        let (bad, _) = reply(
            &mut cp,
            r#"[2,"b-2","StatusNotification",{"evseId":1,"connectorId":1,"connectorStatus":"Charging","timestamp":"2026-12-06T08:00:00Z"}]"#,
            now,
        );
        assert_eq!(bad[2], "PropertyConstraintViolation");
        let (broken, _) = reply(&mut cp, r#"[2,"b-3","Heartbeat""#, now);
        assert_eq!(broken[2], "FormatViolation", "2.0.1 spells it so");
    }
}
