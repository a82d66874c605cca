//! What csm keeps of an OCPP charge point beside its station: the record of its connection and
//! of the charger itself, written to the registry of charge points by the server holding it.

use chrono::{DateTime, Utc};

use super::StationId;
pub use super::ocpp_version::Version;

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
    /// The serial number of its last boot.
    pub serial: Option<String>,
    /// A station-level problem it reports (OCPP 2.0.1 `Problem`: its tech code and info).
    pub problem: Option<String>,
    /// The OCPP version of its last connection.
    pub ocpp_version: Option<Version>,
    /// The heartbeat interval csm gave it, seconds (liveness is two of them and a grace).
    pub heartbeat_secs: u32,
}

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the charger to csm.
    In,
    /// From csm to the charger.
    Out,
    /// Not a frame: what happened to the connection (opened, closed, replaced).
    Note,
}

impl Direction {
    /// The name (`in`, `out`, `note`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Note => "note",
        }
    }

    /// Reads a name.
    pub fn parse(text: &str) -> Option<Self> {
        [Direction::In, Direction::Out, Direction::Note]
            .into_iter()
            .find(|d| d.as_str() == text)
    }
}

/// A frame of a charger's message log as the database keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFrame {
    /// Its number in the database (0 until stored).
    pub id: u64,
    /// The charge point.
    pub station_id: StationId,
    /// The instance that held the charger.
    pub instance: String,
    /// When csm received or sent it.
    pub at: DateTime<Utc>,
    /// Which way it went.
    pub direction: Direction,
    /// The connection it went over (on that instance).
    pub connection: u64,
    /// Its action.
    pub action: Option<String>,
    /// The frame, masked as the log keeps it.
    pub frame: String,
}
