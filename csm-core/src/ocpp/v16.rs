//! The calls of an OCPP 1.6J charger and csm's answers: ports are connectors 1…N, connector 0
//! is the charger itself, and csm gives the transaction ids.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::charge_point::{
    Answer, Boot, ChargePoint, Policy, TransactionIds, missing, optional_text, port_number, text,
    whole,
};
use super::frame::ErrorCode;
use super::meter;
use crate::model::PortStatus;

/// Answers 1.6 call `action` with payload `p`, received at `now`.
pub(super) fn answer(
    cp: &mut ChargePoint,
    action: &str,
    p: &Value,
    now: DateTime<Utc>,
    policy: &Policy,
    ids: &TransactionIds,
) -> Answer {
    let time = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let tag = |accepted: bool| json!({"status": if accepted { "Accepted" } else { "Invalid" }});
    match action {
        "BootNotification" => {
            cp.boot = Some(Boot {
                vendor: text(p, "chargePointVendor")?.to_owned(),
                model: text(p, "chargePointModel")?.to_owned(),
                firmware: optional_text(p, "firmwareVersion"),
                serial: optional_text(p, "chargePointSerialNumber"),
            });
            Ok((
                json!({"status": "Accepted", "currentTime": time, "interval": policy.heartbeat_secs}),
                false,
            ))
        }
        "Heartbeat" => Ok((json!({"currentTime": time}), false)),
        "StatusNotification" => {
            let connector = port_number(p, "connectorId")?;
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
            let changed = if connector == 0 {
                cp.set_charger_fault((mapped == PortStatus::Fault).then_some(raw))
            } else {
                cp.set_status(connector, mapped, raw)
            };
            Ok((json!({}), changed))
        }
        "MeterValues" => {
            let connector = port_number(p, "connectorId")?;
            let values = p.get("meterValue").ok_or_else(|| missing("meterValue"))?;
            if connector == 0 {
                return Ok((json!({}), false));
            }
            Ok((json!({}), cp.measured(connector, meter::read(values))))
        }
        "StartTransaction" => {
            let connector = port_number(p, "connectorId")?;
            text(p, "idTag")?;
            let meter_start = whole(p, "meterStart")?;
            let transaction = ids.next();
            // The port's energy is now counted from the session's start.
            let mut changed = false;
            if connector > 0 {
                cp.started(
                    connector,
                    transaction.to_string(),
                    Some(meter_start as f64 / 1000.0),
                );
                changed = cp.has_status(connector);
            }
            Ok((
                json!({"transactionId": transaction, "idTagInfo": tag(policy.accept_authorize)}),
                changed,
            ))
        }
        "StopTransaction" => {
            let transaction = whole(p, "transactionId")?;
            let meter_stop = whole(p, "meterStop")?;
            // A stop for a transaction csm never issued is accepted all the same: a
            // charger would send it again forever.
            let changed = cp.ended(&transaction.to_string(), Some(meter_stop as f64 / 1000.0));
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
            cp.firmware_status = Some(text(p, "status")?.to_owned());
            Ok((json!({}), false))
        }
        "DiagnosticsStatusNotification" => {
            text(p, "status")?;
            Ok((json!({}), false))
        }
        other => Err((
            ErrorCode::NotImplemented,
            format!("csm does not handle {other} (OCPP 1.6)"),
        )),
    }
}

/// csm's status of a 1.6 ChargePointStatus.
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::StationId;
    use crate::ocpp::Version;

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
        let mut cp = ChargePoint::new(StationId::parse("CP-1").unwrap(), Version::V16);
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
        let mut cp = ChargePoint::new(StationId::parse("CP-2").unwrap(), Version::V16);
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
