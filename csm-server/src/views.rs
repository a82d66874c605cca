//! The JSON the API answers with. Keys of the original system are kept (`stations`, `ports`,
//! `station_id`, `name`, `port`, `status`, `voltage`, `current`, `timestamp`); the rest is
//! added beside them. A measurement the vendor did not send is `null`, never `0`.

use chrono::{DateTime, Utc};
use csm_core::model::{PortState, Station, StationState, StationSummary, StatusEvent};
use csm_core::monitor::StationView;
use serde::Serialize;
use utoipa::ToSchema;

/// A port status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PortStatusSchema {
    /// Nothing plugged in.
    Free,
    /// Charging or plugged in.
    Occupied,
    /// Broken.
    Fault,
    /// Disconnected from the vendor's cloud.
    Offline,
    /// Booked.
    Reserved,
    /// Not known.
    Unknown,
}

/// Counts of ports by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryJson {
    /// All ports.
    pub total: u32,
    /// Free ports.
    pub free: u32,
    /// Occupied ports.
    pub occupied: u32,
    /// Faulty ports.
    pub fault: u32,
    /// Offline ports.
    pub offline: u32,
    /// Reserved ports.
    pub reserved: u32,
    /// Ports of unknown state.
    pub unknown: u32,
}

impl From<StationSummary> for SummaryJson {
    fn from(s: StationSummary) -> Self {
        Self {
            total: s.total,
            free: s.free,
            occupied: s.occupied,
            fault: s.fault,
            offline: s.offline,
            reserved: s.reserved,
            unknown: s.unknown,
        }
    }
}

/// One port.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortJson {
    /// Port number, from 1.
    pub port: u32,
    /// Status.
    #[schema(value_type = PortStatusSchema)]
    pub status: &'static str,
    /// The vendor's own status code.
    pub raw_code: Option<String>,
    /// Volts, when the vendor sends it.
    pub voltage: Option<f64>,
    /// Amperes, when the vendor sends it.
    pub current: Option<f64>,
    /// Watts, when the vendor sends it.
    pub power: Option<f64>,
    /// kWh of the running session, when the vendor sends it.
    pub energy_kwh: Option<f64>,
    /// When the running session ends, when the vendor sends it.
    pub session_ends_at: Option<DateTime<Utc>>,
    /// Since when the port has had this status.
    pub since: DateTime<Utc>,
    /// When this reading was observed.
    pub timestamp: Option<DateTime<Utc>>,
    /// Whether the reading is out of date.
    pub stale: bool,
}

impl PortJson {
    /// The JSON of one port of a station state.
    pub fn of(port: &PortState, state: &StationState, stale: bool) -> Self {
        let r = &port.reading;
        Self {
            port: r.port,
            status: r.status.as_str(),
            raw_code: r.raw_code.clone(),
            voltage: r.voltage,
            current: r.current,
            power: r.power,
            energy_kwh: r.energy_kwh,
            session_ends_at: r.session_ends_at,
            since: port.since,
            timestamp: state.observed_at,
            stale,
        }
    }
}

/// A station with the summary of its ports.
#[derive(Debug, Serialize, ToSchema)]
pub struct StationJson {
    /// The vendor's station id.
    pub station_id: String,
    /// Name.
    pub name: String,
    /// Address.
    pub address: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lng: Option<f64>,
    /// Vendor profile.
    pub vendor: String,
    /// Whether the scheduler refreshes it.
    pub enabled: bool,
    /// Ports as configured.
    pub port_count: u32,
    /// Ports by status.
    pub summary: SummaryJson,
    /// When the ports were last observed; `null` if never.
    pub updated_at: Option<DateTime<Utc>>,
    /// When csm last tried to refresh the station.
    pub checked_at: Option<DateTime<Utc>>,
    /// Whether the data is out of date (old, or the last refresh failed).
    pub stale: bool,
    /// Why the last refresh failed, if it did.
    pub last_error: Option<String>,
}

impl StationJson {
    /// The JSON of a station view.
    pub fn of(view: &StationView) -> Self {
        let state = view.state.as_deref();
        Self::build(&view.station, state, view.stale)
    }

    /// The JSON of a station and a state.
    pub fn build(station: &Station, state: Option<&StationState>, stale: bool) -> Self {
        Self {
            station_id: station.id.to_string(),
            name: station.name.clone(),
            address: station.address.clone(),
            lat: station.lat,
            lng: station.lng,
            vendor: station.vendor.clone(),
            enabled: station.enabled,
            port_count: station.port_count,
            summary: state.map(StationState::summary).unwrap_or_default().into(),
            updated_at: state.and_then(|s| s.observed_at),
            checked_at: state.map(|s| s.checked_at),
            stale,
            last_error: state.and_then(|s| s.last_error.clone()),
        }
    }
}

/// `GET /api/stations`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StationListJson {
    /// The stations (one page of them with `limit` and `offset`).
    pub stations: Vec<StationJson>,
    /// How many stations match the filters, on every page together.
    pub total: usize,
    /// When this answer was made.
    pub timestamp: DateTime<Utc>,
}

/// `GET /api/stations/{station_id}` and `GET /api/ports`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StationDetailJson {
    /// The station.
    #[serde(flatten)]
    pub station: StationJson,
    /// Its ports.
    pub ports: Vec<PortJson>,
    /// When this answer was made.
    pub timestamp: DateTime<Utc>,
}

impl StationDetailJson {
    /// The JSON of a station view with its ports.
    pub fn of(view: &StationView) -> Self {
        let ports = view
            .state
            .as_deref()
            .map(|state| {
                state
                    .ports
                    .iter()
                    .map(|p| PortJson::of(p, state, view.stale))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            station: StationJson::of(view),
            ports,
            timestamp: Utc::now(),
        }
    }
}

/// The answer to a manual refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshJson {
    /// The station.
    pub station_id: String,
    /// `ok` or `failed`.
    pub result: &'static str,
    /// Why it failed.
    pub error: Option<String>,
    /// The station after the refresh.
    pub station: StationDetailJson,
}

/// One status change.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventJson {
    /// Port.
    pub port: u32,
    /// Status before; `null` the first time the port was seen.
    #[schema(value_type = Option<PortStatusSchema>)]
    pub old: Option<&'static str>,
    /// Status after.
    #[schema(value_type = PortStatusSchema)]
    pub new: &'static str,
    /// When it changed.
    pub at: DateTime<Utc>,
}

impl From<&StatusEvent> for EventJson {
    fn from(e: &StatusEvent) -> Self {
        Self {
            port: e.port,
            old: e.old.map(|s| s.as_str()),
            new: e.new.as_str(),
            at: e.at,
        }
    }
}

/// `GET /api/stations/{station_id}/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventListJson {
    /// The station.
    pub station_id: String,
    /// Status changes, newest first.
    pub events: Vec<EventJson>,
}

/// What an SSE `station` message carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct StationUpdateJson {
    /// The station.
    #[serde(flatten)]
    pub station: StationJson,
    /// Status changes in this update.
    pub changes: Vec<EventJson>,
    /// The ports that changed, in full.
    pub ports: Vec<PortJson>,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessJson {
    /// `ready`, `degraded` (one dependency down; reads still served) or `unavailable`.
    pub status: &'static str,
    /// `ok` or the database error.
    pub database: String,
    /// `ok` or the cache error.
    pub cache: String,
}

/// An error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorJson {
    /// What was wrong.
    pub error: String,
    /// For 429: seconds until a retry is accepted.
    pub retry_after_secs: Option<u64>,
}
