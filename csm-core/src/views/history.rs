//! The documents of history: a station's readings, its sessions and its statistics, the
//! fleet's statistics, and the CSV form of events, sessions and readings (a header row,
//! UTF-8, RFC 4180 quoting; the station's name on every row).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::history::ReadingRow;
use crate::history::stats::Stats;
use crate::model::{Station, StatusEvent};
use crate::monitor::{AvailabilityReport, FleetStats, Readings, Session, StationAvailability};
use crate::time;

/// One stored reading of a port.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadingJson {
    /// When it was observed.
    #[serde(serialize_with = "time::rfc3339")]
    pub at: DateTime<Utc>,
    /// Status then.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::model::PortStatus))]
    pub status: &'static str,
    /// Volts, when the vendor sends it.
    pub voltage: Option<f64>,
    /// Amperes, when the vendor sends it.
    pub current: Option<f64>,
    /// Watts, when the vendor sends it.
    pub power: Option<f64>,
    /// kWh of the running session, when the vendor sends it.
    pub energy_kwh: Option<f64>,
}

/// One port's readings.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortReadingsJson {
    /// Port number.
    pub port: u32,
    /// Its readings, oldest first.
    pub readings: Vec<ReadingJson>,
}

/// `GET /api/stations/{station_id}/history` and `csm-cli history --json`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryJson {
    /// The station.
    pub station_id: String,
    /// Start of the range.
    #[serde(serialize_with = "time::rfc3339")]
    pub from: DateTime<Utc>,
    /// End of the range.
    #[serde(serialize_with = "time::rfc3339")]
    pub to: DateTime<Utc>,
    /// Each port with readings in the range, by number.
    pub ports: Vec<PortReadingsJson>,
    /// Whether the range held more readings than one answer reads (the newest are missing:
    /// ask for a shorter range).
    pub truncated: bool,
}

impl HistoryJson {
    /// The JSON of a station's readings.
    pub fn of(station: &Station, readings: &Readings) -> Self {
        let mut ports: Vec<PortReadingsJson> = Vec::new();
        for row in &readings.readings {
            let json = ReadingJson {
                at: row.at,
                status: row.status.as_str(),
                voltage: row.voltage,
                current: row.current,
                power: row.power,
                energy_kwh: row.energy_kwh,
            };
            match ports.last_mut() {
                Some(port) if port.port == row.port => port.readings.push(json),
                _ => ports.push(PortReadingsJson {
                    port: row.port,
                    readings: vec![json],
                }),
            }
        }
        Self {
            station_id: station.id.to_string(),
            from: readings.from,
            to: readings.to,
            ports,
            truncated: readings.truncated,
        }
    }
}

/// One charging session.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionJson {
    /// The port it ran on, from 1.
    pub port: u32,
    /// When the port became occupied.
    #[serde(serialize_with = "time::rfc3339")]
    pub started_at: DateTime<Utc>,
    /// When it stopped being occupied; `null` while it runs (or when csm did not see its end).
    #[serde(serialize_with = "time::optional")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Its length, minutes; `null` until it ends.
    pub duration_minutes: Option<f64>,
    /// Energy delivered, when the vendor sends it.
    pub energy_kwh: Option<f64>,
    /// Whether it is still running.
    pub open: bool,
}

impl From<&Session> for SessionJson {
    fn from(session: &Session) -> Self {
        let row = &session.row;
        Self {
            port: row.port,
            started_at: row.started_at,
            ended_at: row.ended_at,
            duration_minutes: row
                .duration()
                .map(|d| (d.num_seconds() as f64 / 6.0).round() / 10.0),
            energy_kwh: row.energy_kwh,
            open: session.open,
        }
    }
}

/// `GET /api/stations/{station_id}/sessions` and `csm-cli sessions --json`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionListJson {
    /// The station.
    pub station_id: String,
    /// Sessions, newest first.
    pub sessions: Vec<SessionJson>,
}

impl SessionListJson {
    /// The JSON of a station's sessions.
    pub fn of(station: &Station, sessions: &[Session]) -> Self {
        Self {
            station_id: station.id.to_string(),
            sessions: sessions.iter().map(SessionJson::from).collect(),
        }
    }
}

/// `GET /api/stations/{station_id}/stats` and `csm-cli stats STATION --json`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationStatsJson {
    /// The station.
    pub station_id: String,
    /// Its name.
    pub name: String,
    /// Its statistics.
    #[serde(flatten)]
    pub stats: Stats,
}

impl StationStatsJson {
    /// The JSON of a station's statistics.
    pub fn of(station: &Station, stats: Stats) -> Self {
        Self {
            station_id: station.id.to_string(),
            name: station.name.clone(),
            stats,
        }
    }
}

/// A station of a ranking.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RankedStationJson {
    /// The station.
    pub station_id: String,
    /// Its name.
    pub name: String,
    /// Port minutes in the status ranked.
    pub minutes: f64,
}

/// `GET /api/stats` and `csm-cli stats --json`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FleetStatsJson {
    /// Stations in the catalogue.
    pub stations: usize,
    /// The fleet's statistics.
    #[serde(flatten)]
    pub stats: Stats,
    /// The stations with the most port minutes in fault, most first (at most 10).
    pub most_fault: Vec<RankedStationJson>,
    /// The stations with the most port minutes offline or unreachable.
    pub most_offline: Vec<RankedStationJson>,
}

impl FleetStatsJson {
    /// The JSON of the fleet's statistics.
    pub fn of(fleet: FleetStats) -> Self {
        let ranked = |list: Vec<(std::sync::Arc<Station>, f64)>| {
            list.into_iter()
                .map(|(station, minutes)| RankedStationJson {
                    station_id: station.id.to_string(),
                    name: station.name.clone(),
                    minutes,
                })
                .collect()
        };
        Self {
            stations: fleet.stations,
            stats: fleet.stats,
            most_fault: ranked(fleet.most_fault),
            most_offline: ranked(fleet.most_offline),
        }
    }
}

/// One day of a station's availability.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AvailabilityDayJson {
    /// The day (the statistics' time zone), `YYYY-MM-DD`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date: chrono::NaiveDate,
    /// Up time over counted time; `null` with none counted.
    pub availability: Option<f64>,
    /// Port minutes in fault.
    pub fault_minutes: f64,
    /// Port minutes offline or unreachable.
    pub offline_minutes: f64,
    /// Port minutes taken out of service by the operator (not counted).
    pub unavailable_minutes: f64,
}

/// `GET /api/stations/{station_id}/availability` and `csm-cli availability STATION --json`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationAvailabilityJson {
    /// The station.
    pub station_id: String,
    /// Its name.
    pub name: String,
    /// Days covered.
    pub days: u32,
    /// Start of the range.
    #[serde(serialize_with = "time::rfc3339")]
    pub from: DateTime<Utc>,
    /// Its end (now).
    #[serde(serialize_with = "time::rfc3339")]
    pub to: DateTime<Utc>,
    /// Time zone of the days.
    pub timezone: String,
    /// Up time over counted port time: not in fault or offline, with time out of service and
    /// unknown left out; `null` with none counted.
    pub availability: Option<f64>,
    /// Each day, oldest first.
    pub daily: Vec<AvailabilityDayJson>,
    /// The outages: from, to (`null`: it lasts), which ports, why; oldest first.
    pub outages: Vec<crate::history::availability::Outage>,
    /// Whether the range held more status changes than were read (the outages are those of
    /// the latest 50,000).
    pub outages_cut: bool,
}

impl StationAvailabilityJson {
    /// The JSON of a station's availability.
    pub fn of(found: StationAvailability) -> Self {
        let stats = found.stats;
        Self {
            station_id: found.station.id.to_string(),
            name: found.station.name.clone(),
            days: stats.days,
            from: stats.from,
            to: stats.to,
            timezone: stats.timezone,
            availability: stats.availability,
            daily: stats
                .daily
                .into_iter()
                .map(|d| AvailabilityDayJson {
                    date: d.date,
                    availability: d.availability,
                    fault_minutes: d.fault_minutes,
                    offline_minutes: d.offline_minutes,
                    unavailable_minutes: d.unavailable_minutes,
                })
                .collect(),
            outages: found.outages,
            outages_cut: found.events_cut,
        }
    }
}

/// A station of the availability report.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AvailabilityRowJson {
    /// The station.
    pub station_id: String,
    /// Its name.
    pub name: String,
    /// Its availability over the range.
    pub availability: f64,
    /// Port minutes in fault or offline.
    pub down_minutes: f64,
    /// Port minutes taken out of service.
    pub unavailable_minutes: f64,
}

/// `GET /api/availability` and `csm-cli availability --json`: the stations below a threshold.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AvailabilityReportJson {
    /// Days covered.
    pub days: u32,
    /// Start of the range.
    #[serde(serialize_with = "time::rfc3339")]
    pub from: DateTime<Utc>,
    /// Its end (now).
    #[serde(serialize_with = "time::rfc3339")]
    pub to: DateTime<Utc>,
    /// The threshold: stations below it are listed.
    pub below: f64,
    /// The fleet's availability over the range.
    pub availability: Option<f64>,
    /// The stations below the threshold, least available first.
    pub stations: Vec<AvailabilityRowJson>,
}

impl AvailabilityReportJson {
    /// The JSON of a report.
    pub fn of(report: &AvailabilityReport) -> Self {
        Self {
            days: report.days,
            from: report.from,
            to: report.to,
            below: report.below,
            availability: report.availability,
            stations: report
                .stations
                .iter()
                .map(|r| AvailabilityRowJson {
                    station_id: r.station.id.to_string(),
                    name: r.station.name.clone(),
                    availability: r.availability,
                    down_minutes: r.down_minutes,
                    unavailable_minutes: r.unavailable_minutes,
                })
                .collect(),
        }
    }
}

/// CSV documents: the same rows as the JSON, flat.
pub mod csv {
    use super::*;

    /// The CSV media type.
    pub const MEDIA_TYPE: &str = "text/csv; charset=utf-8";

    fn text(at: &DateTime<Utc>) -> String {
        let mut out = String::new();
        time::write(at, &mut out);
        out
    }

    fn number(value: Option<f64>) -> String {
        value.map(|v| v.to_string()).unwrap_or_default()
    }

    fn finish(writer: ::csv::Writer<Vec<u8>>) -> Vec<u8> {
        // Writing into memory cannot fail; a failure here is a bug in the csv crate.
        writer
            .into_inner()
            .unwrap_or_else(|e| panic!("writing CSV into memory failed: {e}"))
    }

    fn writer(header: &[&str]) -> ::csv::Writer<Vec<u8>> {
        let mut writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(Vec::new());
        write(&mut writer, header.iter().copied());
        writer
    }

    fn write<'a>(writer: &mut ::csv::Writer<Vec<u8>>, fields: impl IntoIterator<Item = &'a str>) {
        writer
            .write_record(fields)
            .unwrap_or_else(|e| panic!("writing CSV into memory failed: {e}"));
    }

    fn share(value: Option<f64>) -> String {
        value.map(|v| format!("{v:.4}")).unwrap_or_default()
    }

    /// A station's availability, a row a day.
    pub fn availability(found: &super::StationAvailabilityJson) -> Vec<u8> {
        let mut out = writer(&[
            "station_id",
            "station_name",
            "date",
            "availability",
            "fault_minutes",
            "offline_minutes",
            "unavailable_minutes",
        ]);
        for d in &found.daily {
            let date = d.date.to_string();
            let (fault, offline, unavailable) = (
                d.fault_minutes.to_string(),
                d.offline_minutes.to_string(),
                d.unavailable_minutes.to_string(),
            );
            let availability = share(d.availability);
            let row = [
                found.station_id.as_str(),
                &found.name,
                &date,
                &availability,
                &fault,
                &offline,
                &unavailable,
            ];
            write(&mut out, row);
        }
        finish(out)
    }

    /// The stations below a threshold, least available first.
    pub fn availability_report(report: &super::AvailabilityReportJson) -> Vec<u8> {
        let mut out = writer(&[
            "station_id",
            "station_name",
            "availability",
            "down_minutes",
            "unavailable_minutes",
        ]);
        for r in &report.stations {
            let availability = share(Some(r.availability));
            let (down, unavailable) = (
                r.down_minutes.to_string(),
                r.unavailable_minutes.to_string(),
            );
            write(
                &mut out,
                [
                    r.station_id.as_str(),
                    &r.name,
                    &availability,
                    &down,
                    &unavailable,
                ],
            );
        }
        finish(out)
    }

    /// The audit log, newest first.
    pub fn audit(entries: &[crate::model::access::AuditEntry]) -> Vec<u8> {
        let mut out = writer(&[
            "id", "at", "actor", "role", "address", "method", "path", "request", "status",
            "outcome",
        ]);
        for e in entries {
            let (id, at, status) = (e.id.to_string(), text(&e.at), e.status.to_string());
            let row = [
                id.as_str(),
                &at,
                &e.actor,
                e.role.map(|r| r.as_str()).unwrap_or_default(),
                &e.address,
                &e.method,
                &e.path,
                e.request.as_deref().unwrap_or_default(),
                &status,
                &e.outcome,
            ];
            write(&mut out, row);
        }
        finish(out)
    }

    /// A station's status events.
    pub fn events(station: &Station, events: &[StatusEvent]) -> Vec<u8> {
        let mut out = writer(&["station_id", "station_name", "port", "old", "new", "at"]);
        for e in events {
            let port = e.port.to_string();
            let at = text(&e.at);
            let old = e.old.map(|s| s.as_str()).unwrap_or_default();
            let row = [
                station.id.as_str(),
                &station.name,
                &port,
                old,
                e.new.as_str(),
                &at,
            ];
            write(&mut out, row);
        }
        finish(out)
    }

    /// A station's sessions.
    pub fn sessions(station: &Station, sessions: &[Session]) -> Vec<u8> {
        let mut out = writer(&[
            "station_id",
            "station_name",
            "port",
            "started_at",
            "ended_at",
            "duration_minutes",
            "energy_kwh",
            "open",
        ]);
        for session in sessions {
            let json = SessionJson::from(session);
            let port = json.port.to_string();
            let started = text(&json.started_at);
            let ended = json.ended_at.as_ref().map(text).unwrap_or_default();
            let minutes = number(json.duration_minutes);
            let energy = number(json.energy_kwh);
            let open = json.open.to_string();
            let row = [
                station.id.as_str(),
                &station.name,
                &port,
                &started,
                &ended,
                &minutes,
                &energy,
                &open,
            ];
            write(&mut out, row);
        }
        finish(out)
    }

    /// A station's readings.
    pub fn readings(station: &Station, readings: &[ReadingRow]) -> Vec<u8> {
        let mut out = writer(&[
            "station_id",
            "station_name",
            "port",
            "at",
            "status",
            "voltage",
            "current",
            "power",
            "energy_kwh",
        ]);
        for r in readings {
            let port = r.port.to_string();
            let at = text(&r.at);
            let values = [r.voltage, r.current, r.power, r.energy_kwh].map(number);
            let row = [
                station.id.as_str(),
                &station.name,
                &port,
                &at,
                r.status.as_str(),
                &values[0],
                &values[1],
                &values[2],
                &values[3],
            ];
            write(&mut out, row);
        }
        finish(out)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{PortStatus, StationId};

    #[test]
    fn csv_quotes_names_with_commas_quotes_and_line_breaks() {
        let station = Station {
            id: StationId::parse("H-1").unwrap(),
            name: "信阳学院 \"东区\", 3 号桩\n北侧".into(),
            address: None,
            lat: None,
            lng: None,
            vendor: "simulator".into(),
            enabled: true,
            port_count: 2,
        };
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        let event = StatusEvent {
            station_id: station.id.clone(),
            port: 2,
            old: None,
            new: PortStatus::Occupied,
            at,
        };
        let text = String::from_utf8(csv::events(&station, &[event])).unwrap();
        assert_eq!(
            text,
            "station_id,station_name,port,old,new,at\r\n\
             H-1,\"信阳学院 \"\"东区\"\", 3 号桩\n北侧\",2,,occupied,2026-12-01T08:00:00Z\r\n"
        );
        // An independent reader gets the fields back.
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[1], station.name);
        assert_eq!(&row[3], "");
    }
}
