//! Vendor profiles: a TOML file that says how to ask a vendor's API for a station's ports and
//! how to read the answer, so a new vendor with a plain JSON API needs no Rust code.
//! The format is documented in `docs/vendor-profiles.md`.
//!
//! - this file: what a profile is, and loading it (a file, a folder, the built-in one);
//! - [`validate`]: what TOML parsing cannot check;
//! - [`read`]: reading an answer through the profile.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::model::PortStatus;

mod inspect;
mod nesting;
pub mod read;
mod validate;
mod values;

#[cfg(test)]
mod tests;

pub use self::inspect::{Finding, Inspection};
pub use self::nesting::MAX_DEPTH;
pub use self::read::Document;
pub use self::values::code_text;

/// The built-in profile of csm's native contract (what `csm-cli simulate` serves).
const NATIVE_PROFILE: &str = include_str!("../../../vendors/csm.toml");

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

impl FieldsSpec {
    /// The fields' pointers: number, status (the element itself when unset), voltage, current,
    /// power, energy, session end.
    pub(crate) fn pointers(&self) -> [Option<&str>; 7] {
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
    pub(crate) fn pointer(&self) -> &str {
        match self {
            NumberField::Pointer(pointer) | NumberField::Scaled { pointer, .. } => pointer,
        }
    }

    pub(crate) fn scale(&self) -> f64 {
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
    pub(crate) fn pointer(&self) -> &str {
        match self {
            TimeField::Pointer(pointer) | TimeField::Formatted { pointer, .. } => pointer,
        }
    }

    pub(crate) fn format(&self) -> Option<TimeFormat> {
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
}

/// [`code_text`] of a value from a profile file (`success.equals`).
pub(crate) fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Some(u.to_string()),
            (_, Some(i), _) => Some(i.to_string()),
            (_, _, Some(f)) => Some(values::float_text(f)),
            _ => None,
        },
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
        })
    }
}
