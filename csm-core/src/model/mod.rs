//! The domain model: stations, ports, readings, snapshots, port state and status events.
//!
//! These types are shared by every adapter (store, cache, charger) and by the binaries, so their
//! JSON forms are part of the API: field names follow the original system where it had them
//! (`station_id`, `port`, `status`, `voltage`, `current`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

pub mod access;
pub mod alerts;
pub mod history;
pub mod ocpp;
mod ocpp_version;
pub mod whole;

/// The vendor name of stations that are OCPP charge points.
pub const OCPP_VENDOR: &str = "ocpp";

/// Highest port number csm accepts from any source; real piles have at most a few dozen sockets.
pub const MAX_PORT: u32 = 1024;

/// The current time at the precision csm stores (microseconds), so a time read back from the
/// database or the cache compares equal to the one written.
pub fn now() -> DateTime<Utc> {
    stored_precision(Utc::now())
}

/// `at` cut to the precision csm stores (microseconds).
pub fn stored_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// The vendor's identifier of one station (for example `9313600954`).
///
/// Ids are 1–64 characters of ASCII letters, digits and `-_.:`, not starting with a dot, so
/// they are safe in URLs, cache keys and log lines without escaping, and no path reads one as
/// a folder (`.`, `..`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StationId(String);

impl StationId {
    /// Longest accepted id.
    pub const MAX_LEN: usize = 64;

    /// Checks `raw` and wraps it. Nothing is trimmed: `" S1"` is refused rather than read as
    /// `S1`, so one id never stands for another.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        if raw.is_empty() {
            return Err(InvalidInput::new("station id", "is empty"));
        }
        if raw.trim() != raw {
            return Err(InvalidInput::new(
                "station id",
                format!("{raw:?} starts or ends with white space; give the id without it"),
            ));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(InvalidInput::new(
                "station id",
                format!(
                    "is {} characters long; the limit is {}",
                    raw.len(),
                    Self::MAX_LEN
                ),
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        {
            return Err(InvalidInput::new(
                "station id",
                format!("contains {bad:?}; only ASCII letters, digits and - _ . : are allowed"),
            ));
        }
        if raw.starts_with('.') {
            return Err(InvalidInput::new(
                "station id",
                format!(
                    "{raw:?} starts with a dot; an id begins with a letter, a digit or one of - _ : (URLs and paths read `.` and `..` as folders)"
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StationId {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<StationId> for String {
    fn from(value: StationId) -> Self {
        value.0
    }
}

impl FromStr for StationId {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for StationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// What a port is doing, normalised from the vendor's own codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = PortStatusSchema))]
#[serde(rename_all = "lowercase")]
pub enum PortStatus {
    /// Nothing plugged in; a rider can use it.
    Free,
    /// A vehicle is plugged in or charging.
    Occupied,
    /// The vendor reports the port broken.
    Fault,
    /// The vendor reports the port (or the whole pile) disconnected from its cloud.
    Offline,
    /// Booked for someone.
    Reserved,
    /// Taken out of service by the operator (OCPP `Unavailable`, after ChangeAvailability
    /// `Inoperative`): not a fault, and not counted against the station's availability.
    Unavailable,
    /// A code the profile does not map, or no information.
    Unknown,
}

impl PortStatus {
    /// Every status, in display order.
    pub const ALL: [PortStatus; 7] = [
        PortStatus::Free,
        PortStatus::Occupied,
        PortStatus::Fault,
        PortStatus::Offline,
        PortStatus::Reserved,
        PortStatus::Unavailable,
        PortStatus::Unknown,
    ];

    /// The wire name (`free`, `occupied`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PortStatus::Free => "free",
            PortStatus::Occupied => "occupied",
            PortStatus::Fault => "fault",
            PortStatus::Offline => "offline",
            PortStatus::Reserved => "reserved",
            PortStatus::Unavailable => "unavailable",
            PortStatus::Unknown => "unknown",
        }
    }
}

impl FromStr for PortStatus {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PortStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                InvalidInput::new(
                    "port status",
                    format!(
                        "{s:?} is not one of free, occupied, fault, offline, reserved, unavailable, unknown"
                    ),
                )
            })
    }
}

impl fmt::Display for PortStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One charging station as configured in csm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Station {
    /// The vendor's id of the station.
    pub id: StationId,
    /// Human name, often Chinese (`信阳学院充电桩 A 区`).
    pub name: String,
    /// Street address or location note.
    #[serde(default)]
    pub address: Option<String>,
    /// Latitude in degrees, when known.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude in degrees, when known.
    #[serde(default)]
    pub lng: Option<f64>,
    /// Name of the vendor profile that reads this station (`simulator`, `csm`, ...).
    pub vendor: String,
    /// Disabled stations are kept but not refreshed by the scheduler.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Number of ports as configured; the vendor's answer is authoritative for the live view.
    #[serde(default)]
    pub port_count: u32,
}

fn default_true() -> bool {
    true
}

impl Station {
    /// Longest accepted station name.
    pub const MAX_NAME_LEN: usize = 200;

    /// An OCPP charge point (vendor `ocpp`), enabled, its ports as its connectors report.
    pub fn charge_point(id: StationId, name: String) -> Self {
        Self {
            id,
            name,
            address: None,
            lat: None,
            lng: None,
            vendor: OCPP_VENDOR.into(),
            enabled: true,
            port_count: 0,
        }
    }
    /// Longest accepted address.
    pub const MAX_ADDRESS_LEN: usize = 500;

    /// Checks every field; the error names the field and what is wrong with it.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(InvalidInput::new("name", "is empty"));
        }
        if name.chars().count() > Self::MAX_NAME_LEN {
            return Err(InvalidInput::new(
                "name",
                format!("is longer than {} characters", Self::MAX_NAME_LEN),
            ));
        }
        if let Some(address) = &self.address
            && address.chars().count() > Self::MAX_ADDRESS_LEN
        {
            return Err(InvalidInput::new(
                "address",
                format!("is longer than {} characters", Self::MAX_ADDRESS_LEN),
            ));
        }
        validate_vendor_name(&self.vendor)?;
        if let Some(lat) = self.lat
            && !(-90.0..=90.0).contains(&lat)
        {
            return Err(InvalidInput::new(
                "lat",
                format!("{lat} is outside -90..90"),
            ));
        }
        if let Some(lng) = self.lng
            && !(-180.0..=180.0).contains(&lng)
        {
            return Err(InvalidInput::new(
                "lng",
                format!("{lng} is outside -180..180"),
            ));
        }
        if self.port_count > MAX_PORT {
            return Err(InvalidInput::new(
                "port_count",
                format!("{} is more than {MAX_PORT}", self.port_count),
            ));
        }
        Ok(())
    }
}

/// Vendor profile names are lower-case ASCII letters, digits, `-` and `_`, so they map onto
/// environment variable names (`CSM_VENDOR_<NAME>_BASE_URL`).
pub fn validate_vendor_name(name: &str) -> Result<(), InvalidInput> {
    if name.is_empty() || name.len() > 64 {
        return Err(InvalidInput::new("vendor", "must be 1-64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(InvalidInput::new(
            "vendor",
            format!("{name:?} may only contain lower-case letters, digits, - and _"),
        ));
    }
    Ok(())
}

/// What one fetch saw of one port. Every measurement is optional: a value the vendor did not
/// send stays `None` and is never replaced by zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortReading {
    /// Port number, from 1.
    pub port: u32,
    /// Normalised status.
    pub status: PortStatus,
    /// The vendor's own status code, as text.
    #[serde(default)]
    pub raw_code: Option<String>,
    /// Volts.
    #[serde(default)]
    pub voltage: Option<f64>,
    /// Amperes.
    #[serde(default)]
    pub current: Option<f64>,
    /// Watts.
    #[serde(default)]
    pub power: Option<f64>,
    /// Energy delivered in the running session, kWh.
    #[serde(default)]
    pub energy_kwh: Option<f64>,
    /// When the running session is expected to end.
    #[serde(default)]
    pub session_ends_at: Option<DateTime<Utc>>,
}

impl PortReading {
    /// A port whose status is all that is known: no vendor code, nothing measured.
    pub fn status_only(port: u32, status: PortStatus) -> Self {
        Self {
            port,
            status,
            raw_code: None,
            voltage: None,
            current: None,
            power: None,
            energy_kwh: None,
            session_ends_at: None,
        }
    }

    /// A port of a station that csm knows to be offline: no vendor code, nothing measured.
    pub fn offline(port: u32) -> Self {
        Self::status_only(port, PortStatus::Offline)
    }
}

/// The readings of all ports of one station from one fetch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Station the snapshot belongs to.
    pub station_id: StationId,
    /// When the source observed it.
    pub observed_at: DateTime<Utc>,
    /// Ports ordered by number, each number once.
    pub ports: Vec<PortReading>,
}

/// The current state of one port: its latest reading and since when it has had its status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortState {
    /// The latest reading.
    pub reading: PortReading,
    /// Since when the port has had `reading.status` (first observation of that status).
    pub since: DateTime<Utc>,
}

impl PortState {
    /// Whether `self` and `other` differ in what the store keeps (status, vendor code, session
    /// end). Live measurements alone do not cause a database write; they live in the cache.
    pub fn durable_change(&self, other: &PortState) -> bool {
        self.reading.status != other.reading.status
            || self.reading.raw_code != other.reading.raw_code
            || self.reading.session_ends_at != other.reading.session_ends_at
            || self.since != other.since
    }
}

/// Everything csm knows about one station right now; the value kept in the cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StationState {
    /// The station.
    pub station_id: StationId,
    /// When the last successful fetch observed the ports; `None` if none has succeeded yet.
    pub observed_at: Option<DateTime<Utc>>,
    /// When csm last tried to fetch the station.
    pub checked_at: DateTime<Utc>,
    /// The error of the last attempt, if it failed.
    pub last_error: Option<String>,
    /// Attempts that failed in a row.
    pub failures: u32,
    /// Ports ordered by number.
    pub ports: Vec<PortState>,
    /// When csm got the station back after it could not reach it: the hourly statistics have
    /// counted the time before (the outage as offline), so a stay is counted from here even
    /// where its `since` is older. `None` when the station never went dark.
    #[serde(default)]
    pub counted_from: Option<DateTime<Utc>>,
}

impl StationState {
    /// Counts of ports by status.
    pub fn summary(&self) -> StationSummary {
        StationSummary::of(self.ports.iter().map(|p| p.reading.status))
    }

    /// Whether the ports shown are older than `max_age` or the last attempt failed.
    pub fn is_stale(&self, now: DateTime<Utc>, max_age: chrono::Duration) -> bool {
        self.last_error.is_some()
            || self
                .observed_at
                .is_none_or(|observed| now - observed > max_age)
    }
}

/// Health of one station's source, as kept by the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StationHealth {
    /// The station.
    pub station_id: StationId,
    /// Last successful fetch.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Last error, `None` once a fetch succeeds again.
    pub last_error: Option<String>,
    /// When the last attempt ran.
    pub checked_at: DateTime<Utc>,
    /// Failed attempts in a row.
    pub failures: u32,
    /// See [`StationState::counted_from`].
    pub counted_from: Option<DateTime<Utc>>,
}

/// Counts of ports by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationSummary {
    /// Ports in total.
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
    /// Ports taken out of service by the operator.
    #[serde(default)]
    pub unavailable: u32,
    /// Ports in an unknown state.
    pub unknown: u32,
}

impl StationSummary {
    /// Counts the given statuses.
    pub fn of(statuses: impl IntoIterator<Item = PortStatus>) -> Self {
        let mut summary = StationSummary::default();
        for status in statuses {
            summary.total += 1;
            *match status {
                PortStatus::Free => &mut summary.free,
                PortStatus::Occupied => &mut summary.occupied,
                PortStatus::Fault => &mut summary.fault,
                PortStatus::Offline => &mut summary.offline,
                PortStatus::Reserved => &mut summary.reserved,
                PortStatus::Unavailable => &mut summary.unavailable,
                PortStatus::Unknown => &mut summary.unknown,
            } += 1;
        }
        summary
    }
}

/// A port changed status. `old` is `None` the first time csm sees the port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// The station.
    pub station_id: StationId,
    /// The port.
    pub port: u32,
    /// Status before; `None` when the port was first seen.
    pub old: Option<PortStatus>,
    /// Status after.
    pub new: PortStatus,
    /// When the new status was first observed.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_ids_are_checked() {
        assert!(StationId::parse("DL-20391").is_ok());
        assert!(StationId::parse("S.1").is_ok() && StationId::parse("1.").is_ok());
        for bad in [
            "",
            "   ",
            " 9313600954 ",
            " SEV-0001",
            "SEV-0001\t",
            ".",
            "..",
            "...",
            ".S1",
            "../etc/passwd",
            "a b",
            "x'; DROP TABLE stations;--",
            "站",
        ] {
            let err = StationId::parse(bad).unwrap_err();
            assert_eq!(err.field, "station id", "{bad:?}");
        }
        assert!(StationId::parse(&"9".repeat(65)).is_err());
        assert!(StationId::parse(&"9".repeat(64)).is_ok());
    }

    #[test]
    fn statuses_round_trip_through_text_and_json() {
        for status in PortStatus::ALL {
            assert_eq!(status.as_str().parse::<PortStatus>().unwrap(), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        let err = "busy".parse::<PortStatus>().unwrap_err();
        assert!(err.to_string().contains("\"busy\""), "{err}");
    }

    #[test]
    fn summary_counts_each_status() {
        let summary = StationSummary::of([
            PortStatus::Free,
            PortStatus::Free,
            PortStatus::Occupied,
            PortStatus::Fault,
        ]);
        assert_eq!(summary.total, 4);
        assert_eq!(summary.free, 2);
        assert_eq!(summary.occupied, 1);
        assert_eq!(summary.fault, 1);
        assert_eq!(summary.offline, 0);
    }

    #[test]
    fn station_validation_names_the_field() {
        let mut station = Station {
            id: StationId::parse("S1").unwrap(),
            name: "东区".into(),
            address: None,
            lat: Some(32.1),
            lng: Some(114.0),
            vendor: "simulator".into(),
            enabled: true,
            port_count: 10,
        };
        assert!(station.validate().is_ok());
        station.lat = Some(123.0);
        assert_eq!(station.validate().unwrap_err().field, "lat");
        station.lat = None;
        station.vendor = "Bad Vendor".into();
        assert_eq!(station.validate().unwrap_err().field, "vendor");
        station.vendor = "csm".into();
        station.name = " ".into();
        assert_eq!(station.validate().unwrap_err().field, "name");
    }
}
