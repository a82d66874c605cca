//! Reading station lists from CSV or JSON files, all or nothing: every bad row is reported with
//! its line (or entry) number, and a file with any bad row imports nothing.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;

use crate::error::InvalidInput;
use crate::model::{Station, StationId};

/// Format of a station list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// A header line, then `id,name,address,lat,lng,vendor,enabled,port_count` in any order
    /// (`id` and `name` required).
    Csv,
    /// An array of station objects, or `{"stations": [...]}`.
    Json,
}

impl std::str::FromStr for ImportFormat {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(InvalidInput::new(
                "format",
                format!("{other:?} is not one of csv, json"),
            )),
        }
    }
}

impl ImportFormat {
    /// The format a file name suggests.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Every problem of a station list.
#[derive(Debug, thiserror::Error)]
pub struct ImportError {
    /// One entry per bad row.
    pub problems: Vec<InvalidInput>,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = 20;
        write!(
            f,
            "the station list has {} problem(s); nothing was imported:",
            self.problems.len()
        )?;
        for problem in self.problems.iter().take(shown) {
            write!(f, "\n  - {problem}")?;
        }
        if self.problems.len() > shown {
            write!(f, "\n  - … and {} more", self.problems.len() - shown)?;
        }
        Ok(())
    }
}

/// One row as written in a file, before checking.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStation {
    #[serde(alias = "station_id")]
    id: Option<String>,
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    lat: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    lng: Option<f64>,
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    enabled: Option<bool>,
    #[serde(default, alias = "ports", deserialize_with = "lenient_u32")]
    port_count: Option<u32>,
}

/// A row of a file, where it was (`line 4`, `entry 2`), and whether it parsed.
type Row = (String, Result<RawStation, String>);

/// Parses and checks a station list. Stations without a vendor get `default_vendor`.
pub fn parse_stations(
    text: &str,
    format: ImportFormat,
    default_vendor: &str,
) -> Result<Vec<Station>, ImportError> {
    let rows = match format {
        ImportFormat::Csv => csv_rows(text),
        ImportFormat::Json => json_rows(text)?,
    };
    let mut problems = Vec::new();
    let mut stations = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (location, row) in rows {
        let raw = match row {
            Ok(raw) => raw,
            Err(message) => {
                problems.push(InvalidInput::new(format!("{location}:"), message));
                continue;
            }
        };
        match build(raw, default_vendor) {
            Ok(station) => {
                if let Some(first) = seen.insert(station.id.to_string(), location.clone()) {
                    problems.push(
                        InvalidInput::new(
                            "id",
                            format!("{} was already given at {first}", station.id),
                        )
                        .at(&location),
                    );
                }
                stations.push(station);
            }
            Err(problem) => problems.push(problem.at(&location)),
        }
    }
    if problems.is_empty() {
        Ok(stations)
    } else {
        Err(ImportError { problems })
    }
}

/// The rows of a CSV file with a header line. Fields other than the id are trimmed (`id, name`
/// is usual CSV); an id with spaces around it is refused, not trimmed, so that it cannot stand
/// for another station's.
fn csv_rows(text: &str) -> Vec<Row> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .flexible(false)
        .from_reader(text.as_bytes());
    reader
        .deserialize::<RawStation>()
        .enumerate()
        .map(|(index, row)| {
            let line = row
                .as_ref()
                .err()
                .and_then(|e| e.position().map(|p| p.line()))
                .unwrap_or(index as u64 + 2);
            (format!("line {line}"), row.map_err(|e| csv_message(&e)))
        })
        .collect()
}

/// The entries of a JSON array of stations, or of `{"stations": [...]}`.
fn json_rows(text: &str) -> Result<Vec<Row>, ImportError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Document {
        List(Vec<serde_json::Value>),
        Wrapped { stations: Vec<serde_json::Value> },
    }
    match serde_json::from_str::<Document>(text) {
        Ok(Document::List(items) | Document::Wrapped { stations: items }) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                (
                    format!("entry {}", index + 1),
                    serde_json::from_value::<RawStation>(item).map_err(|e| e.to_string()),
                )
            })
            .collect()),
        Err(e) => Err(ImportError {
            problems: vec![InvalidInput::new(
                "file",
                format!("is not a JSON array of stations or {{\"stations\": [...]}} ({e})"),
            )],
        }),
    }
}

fn build(raw: RawStation, default_vendor: &str) -> Result<Station, InvalidInput> {
    let id = StationId::parse(raw.id.as_deref().unwrap_or_default())?;
    let name = raw
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| InvalidInput::new("name", "is missing"))?;
    let station = Station {
        id,
        name,
        address: raw
            .address
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty()),
        lat: raw.lat,
        lng: raw.lng,
        vendor: raw
            .vendor
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default_vendor.to_owned()),
        enabled: raw.enabled.unwrap_or(true),
        port_count: raw.port_count.unwrap_or(0),
    };
    station.validate()?;
    Ok(station)
}

fn csv_message(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(field) => format!("column {}: {}", field + 1, err.kind()),
            None => err.kind().to_string(),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} columns; the header has {expected_len}"),
        _ => error.to_string(),
    }
}

/// Numbers may be written as numbers or strings; an empty string is absent.
fn lenient_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Number(n)) => Ok(Some(n)),
        Some(Raw::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(Raw::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a number"))),
    }
}

fn lenient_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match lenient_f64(d)? {
        None => Ok(None),
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) => Ok(Some(n as u32)),
        Some(n) => Err(serde::de::Error::custom(format!(
            "{n} is not a whole number of ports"
        ))),
    }
}

fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Flag(bool),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Flag(b)) => Ok(Some(b)),
        Some(Raw::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            other => Err(serde::de::Error::custom(format!(
                "{other:?} is not true or false"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_read_with_defaults() {
        let text = "id,name,address,lat,lng,vendor,port_count\n\
                    9313600954,信阳学院充电桩 A 区,,32.1,114.0,,12\n\
                    DL-20391,东区宿舍 5 栋,东区,,,dianlvmama,6\n";
        let stations = parse_stations(text, ImportFormat::Csv, "simulator").unwrap();
        assert_eq!(stations.len(), 2);
        assert_eq!(stations[0].vendor, "simulator");
        assert_eq!(stations[0].port_count, 12);
        assert_eq!(stations[0].address, None);
        assert_eq!(stations[1].vendor, "dianlvmama");
        assert_eq!(stations[1].lat, None);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let text = "id,name,lat\n\
                    A1,好,32\n\
                    ,no id,1\n\
                    A3,bad lat,123\n\
                    A1,again,1\n\
                    A5,short\n";
        let err = parse_stations(text, ImportFormat::Csv, "simulator").unwrap_err();
        let lines: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].starts_with("line 3: station id is empty"),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with("line 4: lat 123 is outside"),
            "{lines:#?}"
        );
        assert!(
            lines[2].contains("line 5: id A1 was already given at line 2"),
            "{lines:#?}"
        );
        assert!(
            lines[3].starts_with("line 6: has 2 columns; the header has 3"),
            "{lines:#?}"
        );
        assert!(err.to_string().contains("nothing was imported"));
    }

    #[test]
    fn json_lists_and_wrapped_lists_are_accepted() {
        let list = r#"[{"id": "S1", "name": "一", "ports": "10"}]"#;
        let wrapped =
            r#"{"stations": [{"id": "S1", "name": "一", "vendor": "csm", "enabled": false}]}"#;
        assert_eq!(
            parse_stations(list, ImportFormat::Json, "simulator").unwrap()[0].port_count,
            10
        );
        let wrapped = parse_stations(wrapped, ImportFormat::Json, "simulator").unwrap();
        assert_eq!(wrapped[0].vendor, "csm");
        assert!(!wrapped[0].enabled);
        let err = parse_stations(
            r#"[{"id": "S1", "name": "x", "colour": 1}]"#,
            ImportFormat::Json,
            "s",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("entry 1: unknown field `colour`"),
            "{err}"
        );
        let err = parse_stations("{", ImportFormat::Json, "s").unwrap_err();
        assert!(
            err.to_string().contains("file is not a JSON array"),
            "{err}"
        );
    }

    #[test]
    fn ids_with_spaces_around_them_or_a_leading_dot_are_refused() {
        let text = "id, name, vendor, lat\nS1, 一 , csm , 32.1\n S2,二,,\n..,三,,\n";
        let err = parse_stations(text, ImportFormat::Csv, "simulator").unwrap_err();
        let lines: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].starts_with("line 3: station id \" S2\" starts or ends with white space"),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with("line 4: station id \"..\" starts with a dot"),
            "{lines:#?}"
        );
        let good = parse_stations(
            "id, name, vendor, lat\nS1, 一 , csm , 32.1\n",
            ImportFormat::Csv,
            "simulator",
        )
        .unwrap();
        assert_eq!(
            (good[0].name.as_str(), good[0].vendor.as_str(), good[0].lat),
            ("一", "csm", Some(32.1))
        );
        let json =
            parse_stations(r#"[{"id": "S1 ", "name": "x"}]"#, ImportFormat::Json, "s").unwrap_err();
        assert!(
            json.to_string()
                .contains("entry 1: station id \"S1 \" starts or ends"),
            "{json}"
        );
    }

    #[test]
    fn a_deeply_nested_file_is_refused_cleanly() {
        let depth = 100_000;
        let deep = format!(
            r#"[{{"id":"S1","name":"x","junk":{}{}}}]"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err = parse_stations(&deep, ImportFormat::Json, "s").unwrap_err();
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
    }
}
