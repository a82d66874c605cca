//! Reading a vendor's answer through its profile: the text becomes a document (sonic-rs), the
//! success flag is checked, and the port list's elements become readings. Every value that
//! does not fit is a [`ChargerError::Mismatch`] naming its JSON Pointer, what the profile
//! expected there and what was found.
//!
//! sonic-rs was measured against the other readers csm could use (BENCHMARKS.md, "One way to
//! read a vendor answer"): it reads a 12-port answer in about the instructions of the
//! hand-written reader csm had, a third of serde_json's `Value`.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use sonic_rs::{JsonContainerTrait, JsonType, JsonValueTrait, Value};

use super::nesting::{self, MAX_DEPTH, TooDeep};
use super::values::{code_text, describe};
use super::{ElementKind, NumberField, TimeField, TimeFormat, VendorProfile};
use crate::charger::ChargerError;
use crate::model::{MAX_PORT, PortReading, PortStatus, Snapshot, Station, StationId};

/// A vendor's answer, parsed.
pub type Document = Value;

/// Why an answer's text is not a document csm reads.
#[derive(Debug)]
pub enum ParseError {
    /// It nests deeper than [`MAX_DEPTH`] levels.
    TooDeep(TooDeep),
    /// It is not JSON.
    NotJson(sonic_rs::Error),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooDeep(error) => error.fmt(f),
            ParseError::NotJson(error) => error.fmt(f),
        }
    }
}

/// Parses an answer's text, at most [`MAX_DEPTH`] levels deep.
pub fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
    nesting::check(bytes, MAX_DEPTH).map_err(ParseError::TooDeep)?;
    sonic_rs::from_slice(bytes).map_err(ParseError::NotJson)
}

/// Whether `value` can be a flag like `equals`: a boolean (or `"true"`/`"false"`) where a
/// boolean is expected, a number (or a number in a string) where a number is, any single value
/// where text is.
fn is_flag_like(value: &Value, equals: &serde_json::Value) -> bool {
    let text = code_text(value);
    match equals {
        serde_json::Value::Bool(_) => {
            value.get_type() == JsonType::Boolean
                || text.is_some_and(|t| {
                    t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false")
                })
        }
        serde_json::Value::Number(_) => text.is_some_and(|t| t.parse::<f64>().is_ok()),
        _ => text.is_some(),
    }
}

/// The value at a JSON Pointer (RFC 6901) in `value`; `""` is the whole document.
pub fn pointer<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    let mut current = value;
    for raw in pointer.strip_prefix('/')?.split('/') {
        let token: Cow<'_, str> = if raw.contains('~') {
            Cow::Owned(raw.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(raw)
        };
        current = match current.get_type() {
            JsonType::Object => current.as_object()?.get(&token)?,
            JsonType::Array => {
                // An index is digits without a leading zero.
                if token.len() > 1 && token.starts_with('0') {
                    return None;
                }
                current.as_array()?.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(current)
}

/// The fields of an object element that a profile reads, in this order.
const FIELDS: usize = 7;

impl VendorProfile {
    /// The status of a vendor code.
    pub fn map_status(&self, code: Option<&str>) -> PortStatus {
        code.and_then(|code| self.status.codes.get(code).copied())
            .unwrap_or(self.status.default)
    }

    /// Parses a whole response body: JSON, success flag, ports.
    pub fn parse_response(
        &self,
        station_id: &StationId,
        url: &str,
        bytes: &[u8],
        observed_at: DateTime<Utc>,
    ) -> Result<Snapshot, ChargerError> {
        let body = parse(bytes).map_err(|e| self.not_json(url, e))?;
        self.check_success(&body)?;
        Ok(Snapshot {
            station_id: station_id.clone(),
            observed_at,
            ports: self.read_ports(&body)?,
        })
    }

    /// The error of an answer that is not a document csm reads.
    pub(crate) fn not_json(&self, url: &str, error: ParseError) -> ChargerError {
        match error {
            ParseError::TooDeep(TooDeep { limit, pointer }) => ChargerError::TooDeep {
                vendor: self.name.clone(),
                url: url.to_owned(),
                limit,
                pointer,
            },
            ParseError::NotJson(error) => ChargerError::NotJson {
                vendor: self.name.clone(),
                url: url.to_owned(),
                message: error.to_string(),
            },
        }
    }

    /// Checks the vendor's success flag. Only a flag that is there, of the kind the profile
    /// expects, and says something else is the vendor refusing; a missing flag, or a value that
    /// cannot be one, is the profile not matching the answer.
    pub fn check_success(&self, body: &Value) -> Result<(), ChargerError> {
        let Some(check) = &self.success else {
            return Ok(());
        };
        let found = pointer(body, &check.pointer);
        if found.and_then(code_text) == super::value_text(&check.equals) {
            return Ok(());
        }
        if !found.is_some_and(|flag| is_flag_like(flag, &check.equals)) {
            return Err(ChargerError::NoSuccessFlag {
                vendor: self.name.clone(),
                pointer: check.pointer.clone(),
                found: match found {
                    None => "missing".into(),
                    Some(value) => describe(Some(value)),
                },
                equals: check.equals.to_string(),
            });
        }
        let message = check
            .message_pointer
            .as_deref()
            .and_then(|p| pointer(body, p))
            .and_then(code_text)
            .filter(|m| !m.is_empty());
        Err(ChargerError::Vendor {
            vendor: self.name.clone(),
            message: message.unwrap_or_else(|| {
                format!(
                    "{} is {} instead of {}",
                    check.pointer,
                    describe(found),
                    check.equals
                )
            }),
        })
    }

    /// Reads the ports of a response body (already checked for success).
    pub fn read_ports(&self, body: &Value) -> Result<Vec<PortReading>, ChargerError> {
        let spec = &self.ports;
        let list = self.list_at(body, &spec.pointer, "an array of ports")?;
        let mut ports = PortList::with_capacity(list.len().saturating_sub(spec.skip));
        let lookup = FieldLookup::new(spec.fields.pointers());
        for (index, element) in list.iter().enumerate().skip(spec.skip) {
            let at = At {
                list: &spec.pointer,
                index,
            };
            let reading = match spec.element {
                ElementKind::Code => self.code_reading(element, &at)?,
                ElementKind::Object => self.object_reading(element, &lookup, &at)?,
            };
            ports.push(self, &at, reading)?;
        }
        Ok(ports.finish())
    }

    /// Reads a vendor's station list.
    pub fn read_stations(&self, body: &Value) -> Result<Vec<Station>, ChargerError> {
        let Some(spec) = &self.stations else {
            return Err(ChargerError::Unsupported {
                vendor: self.name.clone(),
                message: "the profile has no [stations] section, so it cannot list stations".into(),
            });
        };
        self.check_success(body)?;
        let list = self.list_at(body, &spec.pointer, "an array of stations")?;
        let mut stations = Vec::with_capacity(list.len());
        for (index, element) in list.iter().enumerate() {
            let at = At {
                list: &spec.pointer,
                index,
            };
            let text = |p: &str| pointer(element, p).and_then(code_text);
            let id_text = text(&spec.id).ok_or_else(|| {
                self.mismatch(
                    &format!("{at}{}", spec.id),
                    "a station id",
                    pointer(element, &spec.id),
                )
            })?;
            let id = StationId::parse(&id_text).map_err(|e| {
                self.mismatch_text(&format!("{at}{}", spec.id), "a station id", e.to_string())
            })?;
            let name = text(&spec.name).unwrap_or_else(|| id_text.clone());
            let number = |p: &Option<String>, what: &str| match p {
                Some(p) => self.number_value(pointer(element, p), p, &at, what),
                None => Ok(None),
            };
            let ports = number(&spec.ports, "a number of ports")?;
            stations.push(Station {
                id,
                name,
                address: spec.address.as_deref().and_then(text),
                lat: number(&spec.lat, "a latitude")?,
                lng: number(&spec.lng, "a longitude")?,
                vendor: self.name.clone(),
                enabled: true,
                port_count: ports
                    .map(|p| p.clamp(0.0, f64::from(MAX_PORT)) as u32)
                    .unwrap_or(0),
            });
        }
        Ok(stations)
    }

    /// The array at `at`, or a mismatch saying what was there instead.
    fn list_at<'b>(
        &self,
        body: &'b Value,
        at: &str,
        expected: &str,
    ) -> Result<&'b [Value], ChargerError> {
        let found = pointer(body, at);
        found
            .and_then(|v| v.as_array())
            .map(|array| &array[..])
            .ok_or_else(|| self.mismatch(at, expected, found))
    }

    /// The reading of a bare status code element.
    fn code_reading(&self, element: &Value, at: &At<'_>) -> Result<PortReading, ChargerError> {
        let code = code_text(element);
        Ok(PortReading {
            port: self.port_number(at, self.position(at) + self.ports.number_offset)?,
            status: self.map_status(code.as_deref()),
            raw_code: code,
            voltage: None,
            current: None,
            power: None,
            energy_kwh: None,
            session_ends_at: None,
        })
    }

    /// An element's position in the list, counted from 1 after the skipped ones.
    fn position(&self, at: &At<'_>) -> i64 {
        (at.index - self.ports.skip + 1) as i64
    }

    /// The reading of an object element.
    fn object_reading(
        &self,
        element: &Value,
        lookup: &FieldLookup<'_>,
        at: &At<'_>,
    ) -> Result<PortReading, ChargerError> {
        if !element.is_object() {
            return Err(self.mismatch(&at.to_string(), "a port object", Some(element)));
        }
        let fields = &self.ports.fields;
        let [
            number,
            status,
            voltage,
            current,
            power,
            energy_kwh,
            session_ends_at,
        ] = lookup.values(element);
        let raw_number = match &fields.number {
            Some(p) => self.whole_number(number, p, at)?,
            None => self.position(at),
        };
        let port = self.port_number(at, raw_number + self.ports.number_offset)?;
        let status_pointer = fields.status.as_deref().unwrap_or_default();
        let code = status.filter(|v| !v.is_null()).map(code_text);
        let Some(Some(code)) = code else {
            return Err(self.mismatch(&format!("{at}{status_pointer}"), "a status code", status));
        };
        // An infinity or NaN is left for the refresh to drop as impossible, with the other
        // readings of the answer kept ([`crate::measure`]).
        let measure = |field: &Option<NumberField>, value: Option<&Value>, what: &str| match field {
            Some(field) => Ok(self
                .any_number(value, field.pointer(), at, what)?
                .map(|v| v * field.scale())),
            None => Ok(None),
        };
        Ok(PortReading {
            port,
            status: self.map_status(Some(&code)),
            raw_code: Some(code),
            voltage: measure(&fields.voltage, voltage, "a voltage")?,
            current: measure(&fields.current, current, "a current")?,
            power: measure(&fields.power, power, "a power")?,
            energy_kwh: measure(&fields.energy_kwh, energy_kwh, "an energy")?,
            session_ends_at: match &fields.session_ends_at {
                Some(field) => self.time(session_ends_at, field, at)?,
                None => None,
            },
        })
    }

    /// The port number at `p`: a whole number.
    fn whole_number(
        &self,
        value: Option<&Value>,
        p: &str,
        at: &At<'_>,
    ) -> Result<i64, ChargerError> {
        let number = self
            .number_value(value, p, at, "a port number")?
            .ok_or_else(|| self.mismatch(&format!("{at}{p}"), "a port number", None))?;
        if number.fract() != 0.0 {
            return Err(self.mismatch(&format!("{at}{p}"), "a whole port number", value));
        }
        Ok(number as i64)
    }

    fn port_number(&self, at: &At<'_>, number: i64) -> Result<u32, ChargerError> {
        if (1..=i64::from(MAX_PORT)).contains(&number) {
            Ok(number as u32)
        } else {
            Err(self.mismatch_text(
                &at.to_string(),
                &format!(
                    "a port number from 1 to {MAX_PORT} (after adding ports.number_offset = {})",
                    self.ports.number_offset
                ),
                number.to_string(),
            ))
        }
    }

    /// A finite number found at `p`: JSON numbers and numeric strings; absent, `null` or an
    /// empty string is `None`.
    fn number_value(
        &self,
        value: Option<&Value>,
        p: &str,
        at: &At<'_>,
        what: &str,
    ) -> Result<Option<f64>, ChargerError> {
        match self.any_number(value, p, at, what)? {
            Some(n) if !n.is_finite() => Err(self.mismatch(&format!("{at}{p}"), what, value)),
            number => Ok(number),
        }
    }

    /// [`Self::number_value`], infinities and NaN (`"inf"`, `"NaN"`, `1e400`) included.
    fn any_number(
        &self,
        value: Option<&Value>,
        p: &str,
        at: &At<'_>,
        what: &str,
    ) -> Result<Option<f64>, ChargerError> {
        let Some(found) = value else {
            return Ok(None);
        };
        // One look at the type: each of sonic-rs's accessors looks again.
        let parsed = match found.get_type() {
            JsonType::Null => return Ok(None),
            JsonType::Number => found.as_f64(),
            JsonType::String => match found.as_str().map(str::trim) {
                Some("") => return Ok(None),
                text => text.and_then(|s| s.parse::<f64>().ok()),
            },
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| self.mismatch(&format!("{at}{p}"), what, value))
    }

    /// The time in `value`, found at the field's pointer.
    fn time(
        &self,
        value: Option<&Value>,
        field: &TimeField,
        at: &At<'_>,
    ) -> Result<Option<DateTime<Utc>>, ChargerError> {
        let p = field.pointer();
        let bad = || self.mismatch(&format!("{at}{p}"), "a time", value);
        let Some(found) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let text = found.as_str().map(str::trim);
        if text == Some("") {
            return Ok(None);
        }
        let rfc3339 = || {
            text.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| Some(t.with_timezone(&Utc)))
                .ok_or_else(bad)
        };
        if field.format() == Some(TimeFormat::Rfc3339) {
            return rfc3339();
        }
        let number = match text {
            Some(s) => s.parse::<f64>().ok(),
            None => found.as_f64(),
        };
        match number {
            // Vendors write 0 for "no running session".
            Some(0.0) => Ok(None),
            Some(n) => {
                let millis = if field.format() == Some(TimeFormat::UnixMillis) {
                    n
                } else {
                    n * 1000.0
                };
                Utc.timestamp_millis_opt(millis as i64)
                    .single()
                    .map(Some)
                    .ok_or_else(bad)
            }
            None if field.format().is_none() => rfc3339(),
            None => Err(bad()),
        }
    }

    fn mismatch(&self, at: &str, expected: &str, found: Option<&Value>) -> ChargerError {
        self.mismatch_text(at, expected, describe(found))
    }

    fn mismatch_text(&self, at: &str, expected: &str, found: String) -> ChargerError {
        ChargerError::Mismatch {
            vendor: self.name.clone(),
            pointer: if at.is_empty() {
                "/".into()
            } else {
                at.to_owned()
            },
            expected: expected.to_owned(),
            found,
        }
    }
}

/// How the fields of an object element are found (in the order of
/// [`FieldsSpec::pointers`](super::FieldsSpec::pointers)): fields one key deep, the usual
/// case, in one pass over the element's members (looking each up on its own cost several
/// times as much); deeper ones by their pointer.
pub(super) struct FieldLookup<'p> {
    pointers: [Option<&'p str>; FIELDS],
    /// The key of each field that is one key deep.
    keys: [Option<&'p str>; FIELDS],
}

impl<'p> FieldLookup<'p> {
    pub(super) fn new(pointers: [Option<&'p str>; FIELDS]) -> Self {
        let key = |p: &'p str| {
            let key = p.strip_prefix('/')?;
            (!key.contains(['/', '~'])).then_some(key)
        };
        Self {
            pointers,
            keys: pointers.map(|p| p.and_then(key)),
        }
    }

    /// The value of each field in `element` (the first member of a repeated key).
    pub(super) fn values<'v>(&self, element: &'v Value) -> [Option<&'v Value>; FIELDS] {
        let mut values = [None; FIELDS];
        if let Some(object) = element.as_object() {
            for (key, value) in object.iter() {
                for (slot, wanted) in values.iter_mut().zip(&self.keys) {
                    if slot.is_none() && *wanted == Some(key) {
                        *slot = Some(value);
                    }
                }
            }
        }
        for ((slot, p), key) in values.iter_mut().zip(self.pointers).zip(self.keys) {
            if let (Some(p), None) = (p, key) {
                *slot = pointer(element, p);
            }
        }
        values
    }
}

/// Where an element of a list is (`/data/portList/3`), written out only for an error.
struct At<'a> {
    list: &'a str,
    index: usize,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.list, self.index)
    }
}

/// The ports read so far from one response: each port number once, in order at the end.
struct PortList {
    readings: Vec<PortReading>,
    /// Index in the list where each port number was first seen.
    seen: Vec<Option<usize>>,
}

impl PortList {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            readings: Vec::with_capacity(capacity),
            seen: Vec::new(),
        }
    }

    /// Adds the reading of the element `at`; a port number seen before is a mismatch.
    fn push(
        &mut self,
        profile: &VendorProfile,
        at: &At<'_>,
        reading: PortReading,
    ) -> Result<(), ChargerError> {
        let slot = reading.port as usize;
        if self.seen.len() <= slot {
            self.seen.resize(slot + 1, None);
        }
        if let Some(first) = self.seen[slot] {
            return Err(profile.mismatch_text(
                &at.to_string(),
                "each port number once",
                format!("port {} again (first at {}/{first})", reading.port, at.list),
            ));
        }
        self.seen[slot] = Some(at.index);
        self.readings.push(reading);
        Ok(())
    }

    fn finish(mut self) -> Vec<PortReading> {
        self.readings.sort_by_key(|r| r.port);
        self.readings
    }
}
