//! What csm keeps of an OCPP charge point beside its station: the record of its connection and
//! of the charger itself, written to the registry of charge points by the server holding it.

use chrono::{DateTime, Utc};

use super::StationId;

/// What csm knows of one charge point's connection and of the charger itself, as the registry
/// of charge points keeps it (`csm-cli ocpp status`, `GET /api/ocpp/charge-points`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChargePointRecord {
    /// The charge point (its station).
    pub station_id: StationId,
    /// Whether a connection serves it.
    pub connected: bool,
    /// When its last connection opened.
    pub connected_at: Option<DateTime<Utc>>,
    /// When its last connection closed (while it is not connected).
    pub disconnected_at: Option<DateTime<Utc>>,
    /// When csm last received a frame from it (csm's clock).
    pub last_message_at: Option<DateTime<Utc>>,
    /// The action of its last call (`Heartbeat`, `MeterValues`, …).
    pub last_action: Option<String>,
    /// `chargePointVendor` of its last BootNotification.
    pub vendor: Option<String>,
    /// `chargePointModel` of its last BootNotification.
    pub model: Option<String>,
    /// `firmwareVersion` of its last BootNotification.
    pub firmware: Option<String>,
    /// The status of its last FirmwareStatusNotification.
    pub firmware_status: Option<String>,
    /// The heartbeat interval csm gave it, seconds (liveness is two of them and a grace).
    pub heartbeat_secs: u32,
}
