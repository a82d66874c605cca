//! Vendor profiles: a TOML file that says how to ask a vendor's API for a station's ports and
//! how to read the answer, so a new vendor with a plain JSON API needs no Rust code.
//! The format is documented in `docs/vendor-profiles.md`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::ChargerError;
use super::json::Json;
use crate::model::{MAX_PORT, PortReading, PortStatus, Station, StationId, validate_vendor_name};

/// The built-in profile of csm's native contract (what `csm-cli simulate` serves).
const NATIVE_PROFILE: &str = include_str!("../../vendors/csm.toml");

/// A profile that cannot be loaded: which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("vendor profile {source_name}: {message}")]
pub struct ProfileError {
    /// File (or built-in name) of the profile.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

/// How to ask a vendor for a station's ports and how to read the answer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorProfile {
    /// Profile name, used by stations' `vendor` (default: the file name without `.toml`).
    #[serde(default)]
    pub name: String,
    /// What the profile is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Base URL put in place of `{base_url}`; `CSM_VENDOR_<NAME>_BASE_URL` overrides it.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The request for one station's ports.
    pub request: RequestSpec,
    /// How the vendor says whether the request succeeded.
    #[serde(default)]
    pub success: Option<SuccessCheck>,
    /// Where the ports are and how to read each one.
    pub ports: PortsSpec,
    /// Vendor status code → port status.
    pub status: StatusMap,
    /// How to list the vendor's stations (for `stations sync`), if it can.
    #[serde(default)]
    pub stations: Option<StationListSpec>,
}

/// An HTTP request, with `{base_url}` and `{station_id}` placeholders and `${ENV_VAR}`
/// references for secrets (resolved at request time, never logged).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// `GET` or `POST`.
    #[serde(default)]
    pub method: Method,
    /// URL template.
    pub url: String,
    /// Header templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body template (JSON), for `POST`.
    #[serde(default)]
    pub body: Option<String>,
    /// Timeout of this vendor's requests in milliseconds (default: `CSM_HTTP_TIMEOUT_MS`).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// HTTP method of a profile's request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`.
    #[default]
    Get,
    /// `POST`.
    Post,
}

/// The vendor's own success flag: the value at `pointer` must equal `equals` (compared as text,
/// so `0` and `"0"` match); otherwise the message at `message_pointer` is the error.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuccessCheck {
    /// JSON Pointer of the flag.
    pub pointer: String,
    /// Value meaning success.
    pub equals: Value,
    /// JSON Pointer of the vendor's error message.
    #[serde(default)]
    pub message_pointer: Option<String>,
}

/// Where the port list is and how to read its elements.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortsSpec {
    /// JSON Pointer of the array of ports.
    pub pointer: String,
    /// Whether elements are objects or bare status codes.
    #[serde(default)]
    pub element: ElementKind,
    /// Elements to skip at the start of the array.
    #[serde(default)]
    pub skip: usize,
    /// Added to every port number (1 for a vendor that counts from 0).
    #[serde(default)]
    pub number_offset: i64,
    /// Fields of object elements, as pointers relative to the element.
    #[serde(default)]
    pub fields: FieldsSpec,
}

/// The shape of one element of the port list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementKind {
    /// `{"portId": 1, "status": 0, ...}`.
    #[default]
    Object,
    /// A bare status code; the port number is the position (from 1, after `skip`).
    Code,
}

/// Pointers of the fields of an object element.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsSpec {
    /// Port number (default: the position in the list).
    #[serde(default)]
    pub number: Option<String>,
    /// Status code (required for object elements).
    #[serde(default)]
    pub status: Option<String>,
    /// Volts.
    #[serde(default)]
    pub voltage: Option<NumberField>,
    /// Amperes.
    #[serde(default)]
    pub current: Option<NumberField>,
    /// Watts (use `scale = 1000` for kW).
    #[serde(default)]
    pub power: Option<NumberField>,
    /// kWh of the running session.
    #[serde(default)]
    pub energy_kwh: Option<NumberField>,
    /// End of the running session.
    #[serde(default)]
    pub session_ends_at: Option<TimeField>,
}

/// How many fields an object element has: see [`FieldsSpec::pointers`].
pub(crate) const FIELDS: usize = 7;

impl FieldsSpec {
    /// The fields' pointers: number, status (the element itself when unset), voltage, current,
    /// power, energy, session end.
    pub(crate) fn pointers(&self) -> [Option<&str>; FIELDS] {
        [
            self.number.as_deref(),
            Some(self.status.as_deref().unwrap_or_default()),
            self.voltage.as_ref().map(NumberField::pointer),
            self.current.as_ref().map(NumberField::pointer),
            self.power.as_ref().map(NumberField::pointer),
            self.energy_kwh.as_ref().map(NumberField::pointer),
            self.session_ends_at.as_ref().map(TimeField::pointer),
        ]
    }
}

/// A numeric field: a pointer, optionally with a scale factor.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum NumberField {
    /// Just the pointer.
    Pointer(String),
    /// Pointer and scale.
    Scaled {
        /// JSON Pointer relative to the element.
        pointer: String,
        /// Factor applied to the value.
        #[serde(default = "one")]
        scale: f64,
    },
}

fn one() -> f64 {
    1.0
}

impl NumberField {
    fn pointer(&self) -> &str {
        match self {
            NumberField::Pointer(pointer) | NumberField::Scaled { pointer, .. } => pointer,
        }
    }

    fn scale(&self) -> f64 {
        match self {
            NumberField::Pointer(_) => 1.0,
            NumberField::Scaled { scale, .. } => *scale,
        }
    }
}

/// A time field: a pointer, optionally with its format.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TimeField {
    /// Just the pointer; numbers are Unix seconds, strings RFC 3339.
    Pointer(String),
    /// Pointer and format.
    Formatted {
        /// JSON Pointer relative to the element.
        pointer: String,
        /// How the value is written.
        format: TimeFormat,
    },
}

/// How a vendor writes times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Seconds since 1970.
    UnixSeconds,
    /// Milliseconds since 1970.
    UnixMillis,
    /// `2026-11-23T08:00:00Z`.
    Rfc3339,
}

impl TimeField {
    fn pointer(&self) -> &str {
        match self {
            TimeField::Pointer(pointer) | TimeField::Formatted { pointer, .. } => pointer,
        }
    }

    fn format(&self) -> Option<TimeFormat> {
        match self {
            TimeField::Pointer(_) => None,
            TimeField::Formatted { format, .. } => Some(*format),
        }
    }
}

/// Vendor status codes → port statuses.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusMap {
    /// Code (as text) → status.
    #[serde(default)]
    pub codes: BTreeMap<String, PortStatus>,
    /// Status of a code not listed.
    #[serde(default = "unknown_status")]
    pub default: PortStatus,
}

fn unknown_status() -> PortStatus {
    PortStatus::Unknown
}

/// How to list a vendor's stations.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationListSpec {
    /// URL template (`{base_url}` only).
    pub url: String,
    /// `GET` or `POST`.
    #[serde(default)]
    pub method: Method,
    /// Body template, for `POST`.
    #[serde(default)]
    pub body: Option<String>,
    /// JSON Pointer of the array of stations.
    pub pointer: String,
    /// Pointer of the id in an element.
    pub id: String,
    /// Pointer of the name.
    pub name: String,
    /// Pointer of the number of ports.
    #[serde(default)]
    pub ports: Option<String>,
    /// Pointer of the address.
    #[serde(default)]
    pub address: Option<String>,
    /// Pointer of the latitude.
    #[serde(default)]
    pub lat: Option<String>,
    /// Pointer of the longitude.
    #[serde(default)]
    pub lng: Option<String>,
}

impl VendorProfile {
    /// Parses and checks a profile. `default_name` is used when the file sets no `name`.
    pub fn from_toml(text: &str, default_name: &str) -> Result<Self, ProfileError> {
        let mut profile: VendorProfile = toml::from_str(text).map_err(|e| ProfileError {
            source_name: default_name.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        if profile.name.is_empty() {
            profile.name = default_name.to_owned();
        }
        profile.validate().map_err(|message| ProfileError {
            source_name: default_name.to_owned(),
            message,
        })?;
        Ok(profile)
    }

    /// The built-in `csm` profile.
    pub fn native() -> Self {
        // The built-in file is checked by a unit test, so this cannot fail in a release.
        Self::from_toml(NATIVE_PROFILE, super::NATIVE_VENDOR).unwrap_or_else(|e| {
            panic!("the built-in csm profile is broken: {e}");
        })
    }

    /// Every `*.toml` profile in `dir`, sorted by file name. A missing folder holds none.
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>, ProfileError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(ProfileError {
                    source_name: dir.display().to_string(),
                    message: format!("cannot read the folder: {e}"),
                });
            }
        };
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        paths.sort();
        let mut seen = HashSet::new();
        let mut profiles = Vec::with_capacity(paths.len());
        for path in paths {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| ProfileError {
                source_name: shown.clone(),
                message: format!("cannot read the file: {e}"),
            })?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let profile = Self::from_toml(&text, &stem).map_err(|e| ProfileError {
                source_name: shown.clone(),
                message: e.message,
            })?;
            if profile.name == super::SIMULATOR_VENDOR || profile.name == super::NATIVE_VENDOR {
                return Err(ProfileError {
                    source_name: shown,
                    message: format!(
                        "the name {:?} is reserved for a built-in vendor",
                        profile.name
                    ),
                });
            }
            if !seen.insert(profile.name.clone()) {
                return Err(ProfileError {
                    source_name: shown,
                    message: format!("another profile is already named {:?}", profile.name),
                });
            }
            profiles.push(profile);
        }
        Ok(profiles)
    }

    /// Checks what TOML parsing cannot: names, pointers, placeholders, scales.
    pub fn validate(&self) -> Result<(), String> {
        validate_vendor_name(&self.name).map_err(|e| format!("name: {}", e.message))?;
        check_template("request.url", &self.request.url, true)?;
        if !self.request.url.contains("{station_id}")
            && !self
                .request
                .body
                .as_deref()
                .is_some_and(|body| body.contains("{station_id}"))
        {
            return Err("request.url (or request.body) must contain {station_id}".into());
        }
        if let Some(body) = &self.request.body {
            check_template("request.body", body, true)?;
        }
        for (name, value) in &self.request.headers {
            check_template(&format!("request.headers.{name}"), value, false)?;
        }
        if let Some(base) = &self.base_url {
            check_base_url(base).map_err(|e| format!("base_url: {e}"))?;
        }
        if let Some(success) = &self.success {
            check_pointer("success.pointer", &success.pointer)?;
            if let Some(message) = &success.message_pointer {
                check_pointer("success.message_pointer", message)?;
            }
            if value_text(&success.equals).is_none() {
                return Err("success.equals must be a string, number or boolean".into());
            }
        }
        let ports = &self.ports;
        check_pointer("ports.pointer", &ports.pointer)?;
        let fields = &ports.fields;
        match ports.element {
            ElementKind::Object => {
                let status = fields
                    .status
                    .as_deref()
                    .ok_or("ports.fields.status is required when ports.element = \"object\"")?;
                check_pointer("ports.fields.status", status)?;
                if let Some(number) = &fields.number {
                    check_pointer("ports.fields.number", number)?;
                }
                let numbers = [
                    ("voltage", &fields.voltage),
                    ("current", &fields.current),
                    ("power", &fields.power),
                    ("energy_kwh", &fields.energy_kwh),
                ];
                for (name, field) in numbers {
                    if let Some(field) = field {
                        check_pointer(&format!("ports.fields.{name}"), field.pointer())?;
                        if !(field.scale().is_finite() && field.scale() != 0.0) {
                            return Err(format!(
                                "ports.fields.{name}.scale must be a non-zero number"
                            ));
                        }
                    }
                }
                if let Some(field) = &fields.session_ends_at {
                    check_pointer("ports.fields.session_ends_at", field.pointer())?;
                }
            }
            ElementKind::Code => {
                if *fields != FieldsSpec::default() {
                    return Err("ports.fields must be empty when ports.element = \"code\" (the element is the status code and its position the port number)".into());
                }
            }
        }
        if let Some(list) = &self.stations {
            check_template("stations.url", &list.url, true)?;
            for (name, pointer) in [
                ("stations.pointer", Some(&list.pointer)),
                ("stations.id", Some(&list.id)),
                ("stations.name", Some(&list.name)),
                ("stations.ports", list.ports.as_ref()),
                ("stations.address", list.address.as_ref()),
                ("stations.lat", list.lat.as_ref()),
                ("stations.lng", list.lng.as_ref()),
            ] {
                if let Some(pointer) = pointer {
                    check_pointer(name, pointer)?;
                }
            }
        }
        Ok(())
    }

    /// The status of a vendor code.
    pub fn map_status(&self, code: Option<&str>) -> PortStatus {
        code.and_then(|code| self.status.codes.get(code).copied())
            .unwrap_or(self.status.default)
    }

    /// Whether `found`, the value at the success flag's pointer, says the request succeeded
    /// (always, for a profile without a flag).
    pub(crate) fn succeeded(&self, found: Option<&Json<'_>>) -> bool {
        self.success
            .as_ref()
            .is_none_or(|check| found.and_then(code_text) == value_text(&check.equals))
    }

    /// Checks the vendor's success flag.
    pub fn check_success(&self, body: &Json<'_>) -> Result<(), ChargerError> {
        let Some(check) = &self.success else {
            return Ok(());
        };
        let found = body.pointer(&check.pointer);
        if self.succeeded(found) {
            return Ok(());
        }
        let message = check
            .message_pointer
            .as_deref()
            .and_then(|pointer| body.pointer(pointer))
            .and_then(code_text)
            .filter(|m| !m.is_empty());
        Err(ChargerError::Vendor {
            vendor: self.name.clone(),
            message: match message {
                Some(message) => message,
                None => format!(
                    "{} is {} instead of {}",
                    check.pointer,
                    describe(found),
                    check.equals
                ),
            },
        })
    }

    /// Reads the ports of a response body (already checked for success).
    pub fn read_ports(&self, body: &Json<'_>) -> Result<Vec<PortReading>, ChargerError> {
        let spec = &self.ports;
        let list = self.list_at(body, &spec.pointer, "an array of ports")?;
        let mut ports = PortList::with_capacity(list.len().saturating_sub(spec.skip));
        for (index, element) in list.iter().enumerate().skip(spec.skip) {
            let at = At {
                list: &spec.pointer,
                index,
            };
            let reading = match spec.element {
                ElementKind::Code => self.code_reading(element, &at)?,
                ElementKind::Object => self.read_object(element, &at)?,
            };
            ports.push(self, &at, reading)?;
        }
        Ok(ports.finish())
    }

    /// The reading of a bare status code element.
    pub(crate) fn code_reading(
        &self,
        element: &Json<'_>,
        at: &At<'_>,
    ) -> Result<PortReading, ChargerError> {
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

    /// Parses a whole response body: JSON, success flag, ports.
    pub fn parse_response(
        &self,
        station_id: &StationId,
        url: &str,
        bytes: &[u8],
        observed_at: DateTime<Utc>,
    ) -> Result<crate::model::Snapshot, ChargerError> {
        let body = Json::parse(bytes).map_err(|e| ChargerError::NotJson {
            vendor: self.name.clone(),
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        self.check_success(&body)?;
        Ok(crate::model::Snapshot {
            station_id: station_id.clone(),
            observed_at,
            ports: self.read_ports(&body)?,
        })
    }

    /// Reads a vendor's station list.
    pub fn read_stations(&self, body: &Json<'_>) -> Result<Vec<Station>, ChargerError> {
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
            let text = |pointer: &str| element.pointer(pointer).and_then(code_text);
            let id_text = text(&spec.id).ok_or_else(|| {
                self.mismatch(
                    &format!("{at}{}", spec.id),
                    "a station id",
                    element.pointer(&spec.id),
                )
            })?;
            let id = StationId::parse(&id_text).map_err(|e| {
                self.mismatch_text(&format!("{at}{}", spec.id), "a station id", e.to_string())
            })?;
            let name = text(&spec.name).unwrap_or_else(|| id_text.clone());
            let number =
                |pointer: &Option<String>, what: &str| -> Result<Option<f64>, ChargerError> {
                    match pointer {
                        Some(pointer) => self.number(element, pointer, &at, what),
                        None => Ok(None),
                    }
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

    /// The array at `pointer`, or a mismatch saying what was there instead.
    fn list_at<'b, 'a>(
        &self,
        body: &'b Json<'a>,
        pointer: &str,
        expected: &str,
    ) -> Result<&'b [Json<'a>], ChargerError> {
        body.pointer(pointer)
            .and_then(Json::as_array)
            .ok_or_else(|| self.mismatch(pointer, expected, body.pointer(pointer)))
    }

    fn read_object(&self, element: &Json<'_>, at: &At<'_>) -> Result<PortReading, ChargerError> {
        if !element.is_object() {
            return Err(self.mismatch(&at.to_string(), "a port object", Some(element)));
        }
        let values = self
            .ports
            .fields
            .pointers()
            .map(|pointer| pointer.and_then(|pointer| element.pointer(pointer)));
        self.object_reading(&values, at)
    }

    /// The reading of an object element from the values of its fields, in the order of
    /// [`FieldsSpec::pointers`] (`None`: the field is absent or not read).
    pub(crate) fn object_reading(
        &self,
        values: &[Option<&Json<'_>>; FIELDS],
        at: &At<'_>,
    ) -> Result<PortReading, ChargerError> {
        let fields = &self.ports.fields;
        let [
            number,
            status,
            voltage,
            current,
            power,
            energy_kwh,
            session_ends_at,
        ] = *values;
        let raw_number = match &fields.number {
            Some(pointer) => {
                let value = self
                    .number_value(number, pointer, at, "a port number")?
                    .ok_or_else(|| {
                        self.mismatch(&format!("{at}{pointer}"), "a port number", None)
                    })?;
                if value.fract() != 0.0 {
                    return Err(self.mismatch(
                        &format!("{at}{pointer}"),
                        "a whole port number",
                        number,
                    ));
                }
                value as i64
            }
            None => self.position(at),
        };
        let port = self.port_number(at, raw_number + self.ports.number_offset)?;
        let status_pointer = fields.status.as_deref().unwrap_or_default();
        let code = match status {
            None | Some(Json::Null) => None,
            Some(value) => Some(code_text(value).ok_or_else(|| {
                self.mismatch(
                    &format!("{at}{status_pointer}"),
                    "a status code",
                    Some(value),
                )
            })?),
        };
        if code.is_none() {
            return Err(self.mismatch(&format!("{at}{status_pointer}"), "a status code", status));
        }
        let measure = |field: &Option<NumberField>,
                       value: Option<&Json<'_>>,
                       what: &str|
         -> Result<Option<f64>, ChargerError> {
            match field {
                Some(field) => Ok(self
                    .number_value(value, field.pointer(), at, what)?
                    .map(|v| v * field.scale())),
                None => Ok(None),
            }
        };
        Ok(PortReading {
            port,
            status: self.map_status(code.as_deref()),
            raw_code: code,
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

    /// A number at `pointer` in `element`: JSON numbers and numeric strings; absent, `null` or
    /// an empty string is `None`.
    fn number(
        &self,
        element: &Json<'_>,
        pointer: &str,
        at: &At<'_>,
        what: &str,
    ) -> Result<Option<f64>, ChargerError> {
        self.number_value(element.pointer(pointer), pointer, at, what)
    }

    /// [`Self::number`] of the value found at `pointer`.
    fn number_value(
        &self,
        value: Option<&Json<'_>>,
        pointer: &str,
        at: &At<'_>,
        what: &str,
    ) -> Result<Option<f64>, ChargerError> {
        let parsed = match value {
            None | Some(Json::Null) => return Ok(None),
            Some(Json::Str(s)) if s.trim().is_empty() => return Ok(None),
            Some(Json::Str(s)) => s.trim().parse::<f64>().ok(),
            Some(other) => other.as_f64(),
        };
        match parsed {
            Some(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(self.mismatch(&format!("{at}{pointer}"), what, value)),
        }
    }

    /// The time in `value`, found at the field's pointer.
    fn time(
        &self,
        value: Option<&Json<'_>>,
        field: &TimeField,
        at: &At<'_>,
    ) -> Result<Option<DateTime<Utc>>, ChargerError> {
        let pointer = field.pointer();
        let bad = || self.mismatch(&format!("{at}{pointer}"), "a time", value);
        let as_number = |v: &Json<'_>| match v {
            Json::Str(s) => s.trim().parse::<f64>().ok(),
            other => other.as_f64(),
        };
        let from_unix = |n: f64, millis: bool| {
            let ms = if millis { n } else { n * 1000.0 };
            Utc.timestamp_millis_opt(ms as i64).single()
        };
        match (value, field.format()) {
            (None | Some(Json::Null), _) => Ok(None),
            (Some(Json::Str(s)), _) if s.trim().is_empty() => Ok(None),
            (Some(v), Some(TimeFormat::Rfc3339)) => v
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
                .map(|t| Some(t.with_timezone(&Utc)))
                .ok_or_else(bad),
            (Some(v), format) => match as_number(v) {
                // Vendors write 0 for "no running session".
                Some(0.0) => Ok(None),
                Some(n) => from_unix(n, format == Some(TimeFormat::UnixMillis))
                    .map(Some)
                    .ok_or_else(bad),
                None if format.is_none() => v
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
                    .map(|t| Some(t.with_timezone(&Utc)))
                    .ok_or_else(bad),
                None => Err(bad()),
            },
        }
    }

    fn mismatch(&self, pointer: &str, expected: &str, found: Option<&Json<'_>>) -> ChargerError {
        self.mismatch_text(pointer, expected, describe(found))
    }

    fn mismatch_text(&self, pointer: &str, expected: &str, found: String) -> ChargerError {
        ChargerError::Mismatch {
            vendor: self.name.clone(),
            pointer: if pointer.is_empty() {
                "/".into()
            } else {
                pointer.to_owned()
            },
            expected: expected.to_owned(),
            found,
        }
    }
}

/// Where an element of a list is (`/data/portList/3`), written out only for an error.
pub(crate) struct At<'a> {
    pub(crate) list: &'a str,
    pub(crate) index: usize,
}

/// The ports read so far from one response: each port number once, in order at the end.
pub(crate) struct PortList {
    readings: Vec<PortReading>,
    /// Index in the list where each port number was first seen.
    seen: Vec<Option<usize>>,
}

impl PortList {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            readings: Vec::with_capacity(capacity),
            seen: Vec::new(),
        }
    }

    /// Adds the reading of the element `at`; a port number seen before is a mismatch.
    pub(crate) fn push(
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

    pub(crate) fn finish(mut self) -> Vec<PortReading> {
        self.readings.sort_by_key(|r| r.port);
        self.readings
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.list, self.index)
    }
}

/// A status code (or flag, or message) as text: strings trimmed, whole numbers without a
/// fraction, booleans as `true`/`false`. Objects, arrays and `null` have no text.
pub fn code_text(value: &Json<'_>) -> Option<String> {
    match value {
        Json::Str(s) => Some(s.trim().to_owned()),
        Json::UInt(n) => Some(n.to_string()),
        Json::Int(n) => Some(n.to_string()),
        Json::Float(f) => Some(float_text(*f)),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// [`code_text`] of a value from a profile file (`success.equals`).
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Some(u.to_string()),
            (_, Some(i), _) => Some(i.to_string()),
            (_, _, Some(f)) => Some(float_text(f)),
            _ => None,
        },
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `10.0` reads as the code `10`.
fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Describes a JSON value briefly for an error message.
fn describe(value: Option<&Json<'_>>) -> String {
    let shorten = |s: String| {
        if s.chars().count() > 60 {
            format!("{}…", s.chars().take(60).collect::<String>())
        } else {
            s
        }
    };
    match value {
        None => "nothing".into(),
        Some(Json::Null) => "null".into(),
        Some(Json::Bool(b)) => format!("the boolean {b}"),
        Some(Json::UInt(n)) => format!("the number {n}"),
        Some(Json::Int(n)) => format!("the number {n}"),
        Some(Json::Float(n)) => format!("the number {n}"),
        Some(Json::Str(s)) => format!("the string {}", shorten(format!("{s:?}"))),
        Some(Json::Array(a)) => format!("an array of {} elements", a.len()),
        Some(Json::Object(o)) => {
            let keys: Vec<&str> = o.iter().map(|(k, _)| k.as_ref()).take(8).collect();
            if keys.is_empty() {
                "an empty object".into()
            } else {
                shorten(format!("an object with keys {}", keys.join(", ")))
            }
        }
    }
}

fn check_pointer(field: &str, pointer: &str) -> Result<(), String> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{field} = {pointer:?} is not a JSON Pointer; pointers start with / (e.g. \"/data/portList\")"
        ))
    }
}

fn check_base_url(base: &str) -> Result<(), String> {
    let parsed = url::Url::parse(base).map_err(|e| format!("{base:?} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{base:?} must start with http:// or https://"));
    }
    Ok(())
}

/// Checks the `{...}` placeholders and `${VAR}` references of a template.
fn check_template(field: &str, template: &str, station: bool) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let is_env = start > 0 && rest.as_bytes()[start - 1] == b'$';
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("{field}: a {{ is not closed"));
        };
        let name = &rest[start + 1..start + len];
        let known = if is_env {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        } else {
            name == "base_url" || (station && name == "station_id")
        };
        // Bodies are JSON: their own braces are not placeholders.
        let json_brace = field.ends_with("body") && !is_env;
        if !known && !json_brace {
            return Err(format!(
                "{field}: unknown placeholder {{{name}}}; use {{base_url}}, {{station_id}} or ${{ENV_VAR}} (upper-case)"
            ));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The reading methods, fed with `serde_json::Value`s written with `json!`.
    trait FromValues {
        fn ports_of(&self, body: &Value) -> Result<Vec<PortReading>, ChargerError>;
        fn success_of(&self, body: &Value) -> Result<(), ChargerError>;
        fn stations_of(&self, body: &Value) -> Result<Vec<Station>, ChargerError>;
    }

    impl FromValues for VendorProfile {
        fn ports_of(&self, body: &Value) -> Result<Vec<PortReading>, ChargerError> {
            self.read_ports(&Json::from(body))
        }
        fn success_of(&self, body: &Value) -> Result<(), ChargerError> {
            self.check_success(&Json::from(body))
        }
        fn stations_of(&self, body: &Value) -> Result<Vec<Station>, ChargerError> {
            self.read_stations(&Json::from(body))
        }
    }

    fn profile(extra: &str) -> VendorProfile {
        VendorProfile::from_toml(
            &format!(
                r#"
name = "t"
[request]
url = "{{base_url}}/ports?id={{station_id}}"
[ports]
pointer = "/data"
[ports.fields]
number = "/n"
status = "/s"
voltage = "/v"
power = {{ pointer = "/kw", scale = 1000 }}
session_ends_at = "/end"
[status]
default = "unknown"
[status.codes]
"0" = "free"
"1" = "occupied"
{extra}
"#
            ),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn the_native_profile_loads() {
        let native = VendorProfile::native();
        assert_eq!(native.name, "csm");
        assert!(native.stations.is_some());
    }

    #[test]
    fn codes_are_compared_as_text() {
        let p = profile("");
        let body = json!({"data": [
            {"n": 1, "s": 0}, {"n": "2", "s": "1"}, {"n": 3, "s": 1.0}, {"n": 4, "s": 7}
        ]});
        let ports = p.ports_of(&body).unwrap();
        let statuses: Vec<_> = ports.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                PortStatus::Free,
                PortStatus::Occupied,
                PortStatus::Occupied,
                PortStatus::Unknown
            ]
        );
        assert_eq!(ports[3].raw_code.as_deref(), Some("7"));
    }

    #[test]
    fn absent_readings_stay_absent_and_scales_apply() {
        let p = profile("");
        let body = json!({"data": [{"n": 1, "s": 1, "kw": 0.4, "end": 1795500000}, {"n": 2, "s": 0, "v": null}]});
        let ports = p.ports_of(&body).unwrap();
        assert_eq!(ports[0].power, Some(400.0));
        assert_eq!(ports[0].voltage, None);
        assert_eq!(ports[0].session_ends_at.unwrap().timestamp(), 1_795_500_000);
        assert_eq!(ports[1].voltage, None);
        assert_eq!(ports[1].power, None);
    }

    #[test]
    fn mismatches_name_the_pointer_and_what_was_found() {
        let p = profile("");
        let err = p.ports_of(&json!({"data": null})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t: the response does not fit the profile: at /data expected an array of ports, found null"
        );
        let err = p
            .ports_of(&json!({"data": [{"n": 1, "s": 0, "v": "high"}]}))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("at /data/0/v expected a voltage, found the string \"high\""),
            "{err}"
        );
        let err = p
            .ports_of(&json!({"data": [{"n": 1, "s": 0}, {"n": 1, "s": 1}]}))
            .unwrap_err();
        assert!(
            err.to_string().contains("port 1 again (first at /data/0)"),
            "{err}"
        );
        let err = p
            .ports_of(&json!({"data": [{"n": 0, "s": 0}]}))
            .unwrap_err();
        assert!(
            err.to_string().contains("a port number from 1 to 1024"),
            "{err}"
        );
        let err = p.ports_of(&json!({"data": [{"n": 1}]})).unwrap_err();
        assert!(
            err.to_string()
                .contains("at /data/0/s expected a status code, found nothing"),
            "{err}"
        );
    }

    #[test]
    fn bare_codes_are_numbered_by_position_after_skip_and_offset() {
        let p = VendorProfile::from_toml(
            r#"
[request]
url = "{base_url}/x/{station_id}"
[ports]
pointer = "/codes"
element = "code"
skip = 1
number_offset = 0
[status]
default = "fault"
codes = { "0" = "free", "1" = "occupied" }
"#,
            "bare",
        )
        .unwrap();
        let ports = p.ports_of(&json!({"codes": ["header", 0, 1, 9]})).unwrap();
        assert_eq!(ports.len(), 3);
        assert_eq!(ports[0].port, 1);
        assert_eq!(ports[2].status, PortStatus::Fault);
        assert_eq!(ports[2].raw_code.as_deref(), Some("9"));
    }

    #[test]
    fn success_flag_failures_carry_the_vendor_message() {
        let p = profile("[success]\npointer = \"/ok\"\nequals = true\nmessage_pointer = \"/msg\"");
        let err = p
            .success_of(&json!({"ok": false, "msg": "token已过期"}))
            .unwrap_err();
        assert_eq!(err.to_string(), "t refused the request: token已过期");
        assert!(!err.is_transient());
        let err = p.success_of(&json!({"ok": "maybe"})).unwrap_err();
        assert!(
            err.to_string()
                .contains("/ok is the string \"maybe\" instead of true"),
            "{err}"
        );
        assert!(p.success_of(&json!({"ok": true})).is_ok());
    }

    #[test]
    fn broken_profiles_are_refused_with_the_reason() {
        let err = VendorProfile::from_toml("[request]\nurl = \"x\"", "p").unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
        let err = VendorProfile::from_toml(
            "[request]\nurl = \"{base_url}/a\"\n[ports]\npointer = \"/p\"\n[ports.fields]\nstatus = \"/s\"\n[status]\n",
            "p",
        )
        .unwrap_err();
        assert!(err.message.contains("{station_id}"), "{err}");
        let err = VendorProfile::from_toml(
            "[request]\nurl = \"{base_url}/{station}\"\n[ports]\npointer = \"/p\"\n[status]\n",
            "p",
        )
        .unwrap_err();
        assert!(
            err.message.contains("unknown placeholder {station}"),
            "{err}"
        );
        let err = VendorProfile::from_toml(
            "[request]\nurl = \"{base_url}/{station_id}\"\n[ports]\npointer = \"data\"\n[ports.fields]\nstatus = \"/s\"\n[status]\n",
            "p",
        )
        .unwrap_err();
        assert!(err.message.contains("not a JSON Pointer"), "{err}");
    }

    mod arbitrary {
        //! Property tests: profile parsing and response mapping never panic, whatever the JSON
        //! and whatever the profile, and what they accept is well-formed.

        use super::*;
        use proptest::prelude::*;

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                (-1e6..1e6f64).prop_map(|f| json!(f)),
                "[a-z0-9 .-]{0,6}".prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map("(data|ports|n|s|v|p|[a-z]{1,3})", inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn pointer() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(String::new()),
                Just("/data".to_owned()),
                Just("/ports".to_owned()),
                Just("/n".to_owned()),
                Just("/s".to_owned()),
                Just("/0".to_owned()),
                Just("/data/ports".to_owned()),
                "(/[a-z0-9~]{0,3}){1,3}",
            ]
        }

        fn number_field() -> impl Strategy<Value = Option<NumberField>> {
            prop::option::of(prop_oneof![
                pointer().prop_map(NumberField::Pointer),
                (pointer(), -1e3..1e3f64)
                    .prop_map(|(pointer, scale)| NumberField::Scaled { pointer, scale }),
            ])
        }

        fn status() -> impl Strategy<Value = PortStatus> {
            prop::sample::select(PortStatus::ALL.to_vec())
        }

        prop_compose! {
            fn profile()(
                ports_pointer in pointer(),
                code in any::<bool>(),
                skip in 0usize..4,
                number_offset in -3i64..4,
                number in prop::option::of(pointer()),
                status_pointer in pointer(),
                voltage in number_field(),
                power in number_field(),
                end in prop::option::of(pointer()),
                codes in prop::collection::btree_map("[0-9a-z]{1,3}", status(), 0..5),
                default in status(),
                success in prop::option::of((pointer(), json(), prop::option::of(pointer()))),
            ) -> VendorProfile {
                let fields = if code {
                    FieldsSpec::default()
                } else {
                    FieldsSpec {
                        number,
                        status: Some(status_pointer),
                        voltage,
                        power,
                        session_ends_at: end.map(TimeField::Pointer),
                        ..FieldsSpec::default()
                    }
                };
                VendorProfile {
                    name: "arb".into(),
                    description: None,
                    base_url: None,
                    request: RequestSpec {
                        method: Method::Get,
                        url: "{base_url}/{station_id}".into(),
                        headers: BTreeMap::new(),
                        body: None,
                        timeout_ms: None,
                    },
                    success: success.map(|(pointer, equals, message_pointer)| SuccessCheck { pointer, equals, message_pointer }),
                    ports: PortsSpec {
                        pointer: ports_pointer,
                        element: if code { ElementKind::Code } else { ElementKind::Object },
                        skip,
                        number_offset,
                        fields,
                    },
                    status: StatusMap { codes, default },
                    stations: Some(StationListSpec {
                        url: "{base_url}/stations".into(),
                        method: Method::Get,
                        body: None,
                        pointer: "/data".into(),
                        id: "/n".into(),
                        name: "/s".into(),
                        ports: Some("/p".into()),
                        address: None,
                        lat: Some("/v".into()),
                        lng: None,
                    }),
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn mapping_any_json_through_any_profile_never_panics(profile in profile(), body in json()) {
                let _ = profile.validate();
                let _ = profile.success_of(&body);
                if let Ok(ports) = profile.ports_of(&body) {
                    prop_assert!(ports.windows(2).all(|w| w[0].port < w[1].port), "sorted, each port once");
                    prop_assert!(ports.iter().all(|p| (1..=MAX_PORT).contains(&p.port)));
                    prop_assert!(ports.iter().all(|p| p.voltage.is_none_or(f64::is_finite)));
                }
                let _ = profile.stations_of(&body);
                let id = StationId::parse("S1").unwrap();
                let bytes = serde_json::to_vec(&body).unwrap();
                let _ = profile.parse_response(&id, "http://x", &bytes, Utc::now());
            }

            #[test]
            fn shaped_responses_map_or_fail_with_a_pointer(profile in profile(), elements in prop::collection::vec(json(), 0..20)) {
                let body = json!({ "data": elements.clone(), "ports": elements });
                match profile.ports_of(&body) {
                    Ok(_) => {}
                    Err(ChargerError::Mismatch { pointer, .. }) => prop_assert!(pointer.starts_with('/')),
                    Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
                }
            }

            #[test]
            fn any_bytes_and_any_toml_are_refused_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256), text in "\\PC{0,300}") {
                let id = StationId::parse("S1").unwrap();
                let _ = VendorProfile::native().parse_response(&id, "http://x", &bytes, Utc::now());
                let _ = VendorProfile::from_toml(&text, "arb");
            }
        }
    }
}
