//! The JSON documents csm answers with, the same for the HTTP API and the CLI's `--json`: both
//! build them here from the same values, so a client can read either.
//!
//! Keys of the system csm replaces are kept (`stations`, `ports`, `station_id`, `name`,
//! `port`, `status`, `voltage`, `current`, `timestamp`); the rest is added beside them. A
//! measurement the vendor did not send is `null`, never `0`. With the `openapi` feature each
//! document also describes itself for the server's OpenAPI document.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub mod access;
pub mod alerts;
pub mod cluster;
pub mod history;
pub mod ocpp;
use crate::time;

use crate::history::estimate::FreeEstimate;
use crate::model::{PortState, Station, StationId, StationState, StationSummary, StatusEvent};
use crate::monitor::{StationPage, StationView};

/// One port.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortJson {
    /// Port number, from 1.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub port: u32,
    /// What the port is doing now: free, occupied, fault, offline, reserved or unknown.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::PortStatus))]
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
    #[serde(serialize_with = "time::optional")]
    pub session_ends_at: Option<DateTime<Utc>>,
    /// Since when the port has had this status.
    #[serde(serialize_with = "time::rfc3339")]
    pub since: DateTime<Utc>,
    /// When this reading was observed.
    #[serde(serialize_with = "time::optional")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Whether the reading is out of date.
    pub stale: bool,
    /// When an occupied port will likely be free; `null` when it is not occupied or there is
    /// nothing to go on.
    pub free_estimate: Option<FreeEstimate>,
}

impl PortJson {
    /// The JSON of one port of a station state.
    pub fn of(
        port: &PortState,
        state: &StationState,
        stale: bool,
        free_estimate: Option<FreeEstimate>,
    ) -> Self {
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
            free_estimate,
        }
    }

    /// The JSON of every port of a view.
    pub fn all_of(view: &StationView) -> Vec<Self> {
        view.state
            .as_deref()
            .map(|state| {
                state
                    .ports
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let estimate = view.estimates.get(i).copied().flatten();
                        Self::of(p, state, view.stale, estimate)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A station with the summary of its ports.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationJson {
    /// The vendor's station id.
    pub station_id: String,
    /// The name riders know it by.
    pub name: String,
    /// Where it stands, as written by whoever added it.
    pub address: Option<String>,
    /// Latitude in degrees (WGS 84), when known.
    pub lat: Option<f64>,
    /// Longitude in degrees (WGS 84), when known.
    pub lng: Option<f64>,
    /// The vendor profile it is read with (`simulator`, `ocpp`, a profile's name).
    pub vendor: String,
    /// Whether the scheduler refreshes it.
    pub enabled: bool,
    /// Ports as configured.
    pub port_count: u32,
    /// Ports by status.
    pub summary: StationSummary,
    /// When the ports were last observed; `null` if never.
    #[serde(serialize_with = "time::optional")]
    pub updated_at: Option<DateTime<Utc>>,
    /// When csm last tried to refresh the station.
    #[serde(serialize_with = "time::optional")]
    pub checked_at: Option<DateTime<Utc>>,
    /// Whether the data is out of date (old, or the last refresh failed).
    pub stale: bool,
    /// Why the last refresh failed, if it did.
    pub last_error: Option<String>,
}

impl StationJson {
    /// The JSON of a station view.
    pub fn of(view: &StationView) -> Self {
        Self::build(&view.station, view.state.as_deref(), view.stale)
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
            summary: state.map(StationState::summary).unwrap_or_default(),
            updated_at: state.and_then(|s| s.observed_at),
            checked_at: state.map(|s| s.checked_at),
            stale,
            last_error: state.and_then(|s| s.last_error.clone()),
        }
    }
}

/// How much of each station a list carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListView {
    /// Every station with its ports, as the system csm replaces answered.
    #[default]
    Full,
    /// Stations with the counts of their ports by status, without the ports.
    Summary,
}

impl std::str::FromStr for ListView {
    type Err = crate::error::InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Self::Full),
            "summary" => Ok(Self::Summary),
            other => Err(crate::error::InvalidInput::new(
                "view",
                format!("{other:?} is not one of full, summary"),
            )),
        }
    }
}

/// A station of a list.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListedStationJson {
    /// The station.
    #[serde(flatten)]
    pub station: StationJson,
    /// Its ports, as in `GET /api/stations/{station_id}`; absent with `view=summary`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortJson>>,
}

/// `GET /api/stations` and `csm-cli stations list --json`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationListJson {
    /// The stations (one page of them with `limit` and `offset`).
    pub stations: Vec<ListedStationJson>,
    /// How many stations match the filters, on every page together.
    pub total: usize,
    /// When this answer was made.
    #[serde(serialize_with = "time::rfc3339")]
    pub timestamp: DateTime<Utc>,
}

impl StationListJson {
    /// The JSON of a page of stations.
    pub fn of(page: &StationPage, view: ListView) -> Self {
        let stations = page
            .views
            .iter()
            .map(|v| ListedStationJson {
                station: StationJson::of(v),
                ports: (view == ListView::Full).then(|| PortJson::all_of(v)),
            })
            .collect();
        Self {
            stations,
            total: page.total,
            timestamp: Utc::now(),
        }
    }
}

/// `GET /api/stations/{station_id}`, `GET /api/ports` and `csm-cli ports --json`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationDetailJson {
    /// The station.
    #[serde(flatten)]
    pub station: StationJson,
    /// Its ports.
    pub ports: Vec<PortJson>,
    /// When this answer was made.
    #[serde(serialize_with = "time::rfc3339")]
    pub timestamp: DateTime<Utc>,
}

impl StationDetailJson {
    /// The JSON of a station view with its ports.
    pub fn of(view: &StationView) -> Self {
        Self {
            station: StationJson::of(view),
            ports: PortJson::all_of(view),
            timestamp: Utc::now(),
        }
    }
}

/// One status change.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventJson {
    /// The port that changed, from 1.
    pub port: u32,
    /// Status before; `null` the first time the port was seen.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::model::PortStatus>))]
    pub old: Option<&'static str>,
    /// Status after.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::PortStatus))]
    pub new: &'static str,
    /// When it changed.
    #[serde(serialize_with = "time::rfc3339")]
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

/// `GET /api/stations/{station_id}/events` and `csm-cli events --json`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventListJson {
    /// The station.
    pub station_id: String,
    /// Status changes, newest first.
    pub events: Vec<EventJson>,
}

impl EventListJson {
    /// The JSON of a station's events.
    pub fn of(station_id: &StationId, events: &[StatusEvent]) -> Self {
        Self {
            station_id: station_id.to_string(),
            events: events.iter().map(EventJson::from).collect(),
        }
    }
}

/// What a live `station` message carries (the server's event stream).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationUpdateJson {
    /// The station.
    #[serde(flatten)]
    pub station: StationJson,
    /// Status changes in this update.
    pub changes: Vec<EventJson>,
    /// The ports that changed, in full.
    pub ports: Vec<PortJson>,
}
