//! The JSON document of the registry of OCPP charge points, shared by
//! `GET /api/ocpp/charge-points` and `csm-cli ocpp status --json`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::monitor::ChargePointStatus;
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
