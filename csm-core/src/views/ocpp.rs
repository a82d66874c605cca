//! The JSON document of the registry of OCPP charge points, shared by
//! `GET /api/ocpp/charge-points` and `csm-cli ocpp status --json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::StationId;
use crate::monitor::{ChargePointStatus, CommandOutcome, MessageLogRead};
use crate::ocpp::Direction;
use crate::time;

/// One charge point.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChargePointJson {
    /// The charge point id (its station).
    pub station_id: String,
    /// Its station's name.
    pub name: String,
    /// `connected`, `silent` (open but quiet past two heartbeat intervals and a grace: counted
    /// offline), `disconnected` or `never`.
    #[cfg_attr(feature = "openapi", schema(example = "connected"))]
    pub connection: &'static str,
    /// When its last connection opened.
    #[serde(serialize_with = "time::optional")]
    pub connected_at: Option<DateTime<Utc>>,
    /// When its last connection closed.
    #[serde(serialize_with = "time::optional")]
    pub disconnected_at: Option<DateTime<Utc>>,
    /// When csm last received a frame from it (csm's clock).
    #[serde(serialize_with = "time::optional")]
    pub last_message_at: Option<DateTime<Utc>>,
    /// The action of its last call.
    pub last_action: Option<String>,
    /// `chargePointVendor` from its boot.
    pub vendor: Option<String>,
    /// `chargePointModel` from its boot.
    pub model: Option<String>,
    /// `firmwareVersion` from its boot.
    pub firmware: Option<String>,
    /// The status of its last FirmwareStatusNotification.
    pub firmware_status: Option<String>,
    /// The serial number from its boot.
    pub serial: Option<String>,
    /// The OCPP version of its last connection (`1.6`, `2.0.1`; none: never connected).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "2.0.1"))]
    pub ocpp_version: Option<crate::ocpp::Version>,
    /// A station-level problem it reports (OCPP 2.0.1 `Problem`: its tech code and info).
    pub problem: Option<String>,
    /// The heartbeat interval csm gave it, seconds.
    pub heartbeat_secs: u32,
}

impl ChargePointJson {
    /// The document of one charge point.
    pub fn of(status: &ChargePointStatus) -> Self {
        let r = &status.record;
        Self {
            station_id: status.station.id.to_string(),
            name: status.station.name.clone(),
            connection: status.connection.as_str(),
            connected_at: r.connected_at,
            disconnected_at: r.disconnected_at,
            last_message_at: r.last_message_at,
            last_action: r.last_action.clone(),
            vendor: r.vendor.clone(),
            model: r.model.clone(),
            firmware: r.firmware.clone(),
            firmware_status: r.firmware_status.clone(),
            serial: r.serial.clone(),
            ocpp_version: r.ocpp_version,
            problem: r.problem.clone(),
            heartbeat_secs: r.heartbeat_secs,
        }
    }
}

/// The charge points (`GET /api/ocpp/charge-points`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChargePointListJson {
    /// By id.
    pub charge_points: Vec<ChargePointJson>,
    /// How many of them are connected (not silent).
    pub connected: usize,
}

impl ChargePointListJson {
    /// The document of a list.
    pub fn of(list: &[ChargePointStatus]) -> Self {
        Self {
            charge_points: list.iter().map(ChargePointJson::of).collect(),
            connected: list
                .iter()
                .filter(|s| s.connection == crate::monitor::Connection::Connected)
                .count(),
        }
    }
}

/// A charger's answer to an operator's command (`POST /api/ocpp/charge-points/{id}/commands`,
/// `csm-cli ocpp command … --json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandAnswerJson {
    /// The charge point.
    pub station_id: String,
    /// The OCPP action sent (`Reset`, `GetConfiguration`, …).
    pub action: String,
    /// The charger's status: `Accepted`, `Rejected`, `NotSupported`, `RebootRequired`,
    /// `Scheduled`, `Unlocked`, `UnlockFailed`, … (none for GetConfiguration).
    pub status: Option<String>,
    /// The charger's answer as it sent it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub answer: serde_json::Value,
    /// GetConfiguration: the keys it reported, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Vec<ConfigurationKeyJson>>,
    /// GetConfiguration: the keys asked for that it does not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_keys: Option<Vec<String>>,
    /// GetVariables and SetVariables (OCPP 2.0.1): each variable's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<VariableJson>>,
    /// GetBaseReport (OCPP 2.0.1): the report the charger sent after accepting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportJson>,
    /// From sending the command to the charger's answer, milliseconds.
    pub took_ms: u64,
    /// The csm instance holding the charger, which sent the command (none alone).
    pub instance: Option<String>,
}

/// One configuration key as a charger reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigurationKeyJson {
    /// The key.
    pub key: String,
    /// Its value (none: the charger did not say).
    pub value: Option<String>,
    /// Whether csm may change it.
    pub readonly: bool,
}

/// One variable's result as a 2.0.1 charger reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariableJson {
    /// The component.
    pub component: String,
    /// The EVSE whose component it is (none: the station's).
    pub evse: Option<u64>,
    /// The variable.
    pub variable: String,
    /// The component's instance, when named.
    pub instance: Option<String>,
    /// Its value (GetVariables, when the charger has it).
    pub value: Option<String>,
    /// The charger's status: `Accepted`, `Rejected`, `UnknownComponent`, `UnknownVariable`,
    /// `NotSupportedAttributeType`, `RebootRequired`.
    pub status: Option<String>,
}

/// A report a 2.0.1 charger sent in answer to GetBaseReport.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportJson {
    /// Its entries as sent (`component`, `variable`, `variableAttribute`, …).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub data: Vec<Value>,
    /// Whether every part came within the wait.
    pub complete: bool,
}

impl CommandAnswerJson {
    /// The document of an answer.
    pub fn of(station_id: &StationId, outcome: CommandOutcome) -> Self {
        let (configuration, unknown_keys) = if outcome.action == "GetConfiguration" {
            let keys = outcome
                .answer
                .get("configurationKey")
                .and_then(Value::as_array)
                .map(|keys| {
                    let mut keys: Vec<ConfigurationKeyJson> =
                        keys.iter().filter_map(configuration_key).collect();
                    keys.sort_by(|a, b| a.key.cmp(&b.key));
                    keys
                })
                .unwrap_or_default();
            let unknown = outcome
                .answer
                .get("unknownKey")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (Some(keys), Some(unknown))
        } else {
            (None, None)
        };
        let results = match outcome.action.as_str() {
            "GetVariables" => outcome.answer.get("getVariableResult"),
            "SetVariables" => outcome.answer.get("setVariableResult"),
            _ => None,
        };
        let variables = results.map(|results| {
            results
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(variable)
                .collect()
        });
        Self {
            station_id: station_id.to_string(),
            action: outcome.action,
            status: outcome.status,
            answer: outcome.answer,
            configuration,
            unknown_keys,
            variables,
            report: outcome.report.map(|r| ReportJson {
                data: r.data,
                complete: r.complete,
            }),
            took_ms: outcome.took_ms,
            instance: outcome.instance,
        }
    }
}

fn variable(entry: &Value) -> Option<VariableJson> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    Some(VariableJson {
        component: text(entry.pointer("/component/name"))?,
        evse: entry.pointer("/component/evse/id").and_then(Value::as_u64),
        variable: text(entry.pointer("/variable/name"))?,
        instance: text(entry.pointer("/variable/instance")),
        value: text(entry.get("attributeValue")),
        status: text(entry.get("attributeStatus")),
    })
}

fn configuration_key(entry: &Value) -> Option<ConfigurationKeyJson> {
    Some(ConfigurationKeyJson {
        key: entry.get("key")?.as_str()?.to_owned(),
        value: entry
            .get("value")
            .and_then(Value::as_str)
            .map(str::to_owned),
        readonly: entry
            .get("readonly")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// A charger's message log (`GET /api/ocpp/charge-points/{id}/messages`,
/// `csm-cli ocpp messages ID --json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageLogJson {
    /// The charge point.
    pub station_id: String,
    /// Whether the instance that answered holds its connection now.
    pub connected: bool,
    /// The instance that answered (none alone).
    pub instance: Option<String>,
    /// The frames, oldest first.
    pub messages: Vec<MessageJson>,
}

/// One frame of a message log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageJson {
    /// Its number in the log: ask for those after it with `?after=`.
    pub seq: u64,
    /// When csm received or sent it (csm's clock).
    #[serde(serialize_with = "time::rfc3339")]
    pub at: DateTime<Utc>,
    /// `in` (from the charger), `out` (from csm) or `note` (the connection opened or closed).
    pub direction: Direction,
    /// The connection it went over.
    pub connection: u64,
    /// Its action; for an answer, the action of the call it answers.
    pub action: Option<String>,
    /// The frame as it went (id tags and secrets masked, cut at 16 KiB); for a note, what
    /// happened.
    pub frame: String,
}

impl MessageLogJson {
    /// The document of a log.
    pub fn of(station_id: &StationId, read: MessageLogRead) -> Self {
        Self {
            station_id: station_id.to_string(),
            connected: read.connected,
            instance: read.instance,
            messages: read
                .messages
                .into_iter()
                .map(|m| MessageJson {
                    seq: m.seq,
                    at: m.at,
                    direction: m.direction,
                    connection: m.connection,
                    action: m.action,
                    frame: m.frame,
                })
                .collect(),
        }
    }
}
