//! Alert rules: what fires an alert (a kind whose variants carry their own fields), where and
//! for how long; a rule as a user gives it, checked into one, and as it is answered and kept.

use std::fmt;

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::channel::check_name;
use super::{MAX_MIN_SECS, MAX_RULE_STATIONS, RuleId};
use crate::error::InvalidInput;
use crate::model::{MAX_PORT, StationId};

/// What a rule watches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RuleKind {
    /// A port becomes free.
    PortFree,
    /// At least so many ports of the station are free.
    FreePorts,
    /// A port is in `fault`.
    Fault,
    /// The station cannot be reached, or all its ports are offline.
    Offline,
    /// A port's voltage is outside a range.
    Voltage,
}

impl RuleKind {
    /// Every kind.
    pub const ALL: [RuleKind; 5] = [
        RuleKind::PortFree,
        RuleKind::FreePorts,
        RuleKind::Fault,
        RuleKind::Offline,
        RuleKind::Voltage,
    ];

    /// The name used in JSON, the CLI and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::PortFree => "port_free",
            RuleKind::FreePorts => "free_ports",
            RuleKind::Fault => "fault",
            RuleKind::Offline => "offline",
            RuleKind::Voltage => "voltage",
        }
    }

    /// The kind named `name`, or what is wrong with it.
    pub fn parse(name: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                InvalidInput::new(
                    "kind",
                    format!(
                        "{name:?} is not a rule kind; use port_free, free_ports, fault, offline or voltage"
                    ),
                )
            })
    }

    /// How long the condition holds before it fires when the rule does not say: at once for
    /// a rider's "tell me when a port is free", five minutes for a fault, an outage or a bad
    /// voltage (a charger rebooting is not an alarm).
    pub fn default_min_secs(self) -> u32 {
        match self {
            RuleKind::PortFree | RuleKind::FreePorts => 0,
            RuleKind::Fault | RuleKind::Offline | RuleKind::Voltage => 300,
        }
    }

    /// Whether its firing is sent during quiet hours (equipment trouble is; a free port and
    /// every "resolved" notice wait for the window's end).
    pub fn urgent(self) -> bool {
        matches!(
            self,
            RuleKind::Fault | RuleKind::Offline | RuleKind::Voltage
        )
    }

    /// Whether it watches single ports (else the station as a whole).
    pub fn per_port(self) -> bool {
        matches!(
            self,
            RuleKind::PortFree | RuleKind::Fault | RuleKind::Voltage
        )
    }
}

/// What a rule watches for, with what that needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Condition {
    /// A port becomes free.
    PortFree,
    /// At least `count` ports of the station are free.
    FreePorts {
        /// How many (1 to [`MAX_PORT`]).
        count: u32,
    },
    /// A port is in `fault`.
    Fault,
    /// The station cannot be reached, or all its ports are offline.
    Offline,
    /// A port's voltage is outside `[low, high]`.
    Voltage {
        /// The lowest acceptable voltage.
        low: f64,
        /// The highest acceptable voltage.
        high: f64,
    },
}

impl Condition {
    /// Its kind.
    pub fn kind(self) -> RuleKind {
        match self {
            Condition::PortFree => RuleKind::PortFree,
            Condition::FreePorts { .. } => RuleKind::FreePorts,
            Condition::Fault => RuleKind::Fault,
            Condition::Offline => RuleKind::Offline,
            Condition::Voltage { .. } => RuleKind::Voltage,
        }
    }
}

/// Which stations a rule watches: `"all"` or a list of ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every station, including ones added later.
    All,
    /// These stations.
    Stations(Vec<StationId>),
}

impl Scope {
    /// Whether the rule watches this station.
    pub fn covers(&self, id: &StationId) -> bool {
        match self {
            Scope::All => true,
            Scope::Stations(ids) => ids.contains(id),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scope::All => serializer.serialize_str("all"),
            Scope::Stations(ids) => ids.serialize(serializer),
        }
    }
}

/// A daily window (`23:00-07:00`, may cross midnight) in the rule's time zone during which
/// non-urgent alerts wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    /// When the window opens.
    pub start: NaiveTime,
    /// When it closes.
    pub end: NaiveTime,
}

impl QuietHours {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let wrong = || {
            InvalidInput::new(
                "quiet_hours",
                format!(
                    "{text:?} is not a window like \"23:00-07:00\" (HH:MM-HH:MM, 24-hour clock)"
                ),
            )
        };
        let (start, end) = text.split_once('-').ok_or_else(wrong)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| wrong());
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(InvalidInput::new(
                "quiet_hours",
                format!("{text:?} opens and closes at the same minute"),
            ));
        }
        Ok(Self { start, end })
    }

    /// When the window that holds `at` ends, or `None` when `at` is outside it.
    pub fn release(&self, at: DateTime<Utc>, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&zone);
        let time = local.time();
        let inside = if self.start < self.end {
            time >= self.start && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if !inside {
            return None;
        }
        let mut day = local.date_naive();
        if time >= self.end {
            day = day.succ_opt()?;
        }
        let end = day.and_time(self.end);
        // A window ending inside a DST gap ends at the first valid moment after it.
        let local_end = end.and_local_timezone(zone).earliest().or_else(|| {
            (end + chrono::TimeDelta::hours(1))
                .and_local_timezone(zone)
                .earliest()
        })?;
        Some(local_end.with_timezone(&Utc))
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

/// An alert rule, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Its id (0 until stored).
    pub id: RuleId,
    /// What it watches for.
    pub condition: Condition,
    /// The stations it watches: all, or those named.
    pub stations: Scope,
    /// Only these ports (`None`: all).
    pub ports: Option<Vec<u32>>,
    /// How long the condition must hold before the rule fires.
    pub min_secs: u32,
    /// The channel it sends to.
    pub channel: String,
    /// Removes itself after firing once.
    pub once: bool,
    /// Also announces when the condition ends.
    pub resolved: bool,
    /// When non-urgent alerts wait.
    pub quiet_hours: Option<QuietHours>,
    /// The time zone of the quiet hours.
    pub timezone: chrono_tz::Tz,
}

impl Rule {
    /// What it watches for.
    pub fn kind(&self) -> RuleKind {
        self.condition.kind()
    }

    /// Whether the rule watches this port (`ports` unset: every port).
    pub fn watches_port(&self, port: u32) -> bool {
        self.ports
            .as_ref()
            .is_none_or(|ports| ports.contains(&port))
    }

    /// When an alert of this rule fired at `at` may be sent: `at`, or the end of the quiet
    /// hours for a non-urgent one.
    pub fn due(&self, at: DateTime<Utc>, urgent: bool) -> DateTime<Utc> {
        if urgent {
            return at;
        }
        self.quiet_hours
            .and_then(|q| q.release(at, self.timezone))
            .unwrap_or(at)
    }

    /// The rule's JSON document (what the API answers and the store keeps).
    pub fn to_json(&self) -> RuleJson {
        let (free_ports, low, high) = match self.condition {
            Condition::FreePorts { count } => (Some(count), None, None),
            Condition::Voltage { low, high } => (None, Some(low), Some(high)),
            Condition::PortFree | Condition::Fault | Condition::Offline => (None, None, None),
        };
        RuleJson {
            id: self.id,
            kind: self.kind(),
            stations: self.stations.clone(),
            ports: self.ports.clone(),
            min_secs: self.min_secs,
            free_ports,
            low,
            high,
            channel: self.channel.clone(),
            once: self.once,
            resolved: self.resolved,
            quiet_hours: self.quiet_hours.map(|q| q.to_string()),
            timezone: self.timezone.name().to_owned(),
        }
    }
}

/// A rule as answered and stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleJson {
    /// Its id.
    pub id: RuleId,
    /// What it watches for.
    pub kind: RuleKind,
    /// `"all"` or a list of station ids.
    #[cfg_attr(feature = "openapi", schema(value_type = StationsSchema))]
    pub stations: Scope,
    /// Only these ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u32>>,
    /// Seconds the condition holds before it fires.
    pub min_secs: u32,
    /// `free_ports`: how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_ports: Option<u32>,
    /// `voltage`: lowest acceptable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// `voltage`: highest acceptable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// The channel's name.
    pub channel: String,
    /// Removes itself after firing once.
    pub once: bool,
    /// Also announces when the condition ends.
    pub resolved: bool,
    /// `HH:MM-HH:MM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<String>,
    /// IANA time zone of the quiet hours.
    pub timezone: String,
}

/// A rule as given by a user (JSON of the API, the CLI's flags, a stored definition), before
/// it is checked: numbers are taken wide so that a negative or huge one gets its own message.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleDraft {
    /// Ignored: csm gives the id.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>, minimum = 0))]
    pub id: Option<serde_json::Number>,
    /// `port_free`, `free_ports`, `fault`, `offline` or `voltage`.
    #[cfg_attr(feature = "openapi", schema(value_type = RuleKind))]
    pub kind: String,
    /// `"all"` or a list of station ids.
    #[cfg_attr(feature = "openapi", schema(value_type = StationsSchema))]
    pub stations: serde_json::Value,
    /// Only these ports.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<u32>>))]
    pub ports: Option<Vec<serde_json::Number>>,
    /// Seconds the condition holds before it fires (default: at once for free ports, 300 for
    /// the others).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 0, maximum = 604800))]
    pub min_secs: Option<serde_json::Number>,
    /// `free_ports`: how many ports must be free.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 1, maximum = 1024))]
    pub free_ports: Option<serde_json::Number>,
    /// `voltage`: lowest acceptable.
    #[serde(default)]
    pub low: Option<f64>,
    /// `voltage`: highest acceptable.
    #[serde(default)]
    pub high: Option<f64>,
    /// The channel's name.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$"))]
    pub channel: String,
    /// Remove the rule after it fires once.
    #[serde(default)]
    pub once: bool,
    /// Also announce when the condition ends.
    #[serde(default)]
    pub resolved: bool,
    /// `HH:MM-HH:MM` in `timezone`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$")
    )]
    pub quiet_hours: Option<String>,
    /// IANA time zone (default: `CSM_TIMEZONE`).
    #[serde(default)]
    pub timezone: Option<String>,
}

impl RuleDraft {
    /// The rule, or what is wrong with the draft. Stations and the channel are checked to
    /// exist by the caller, which knows them.
    pub fn validate(self, default_zone: chrono_tz::Tz) -> Result<Rule, InvalidInput> {
        if let Some(id) = &self.id
            && whole("id", id)? < 0
        {
            return Err(InvalidInput::new(
                "id",
                format!("{id} is negative; leave it out (csm gives the id)"),
            ));
        }
        let kind = RuleKind::parse(&self.kind)?;
        let condition = self.condition(kind)?;
        let min_secs = match self.min_secs.as_ref().map(|n| whole("min_secs", n)) {
            None => kind.default_min_secs(),
            Some(secs) => {
                let secs = secs?;
                u32::try_from(secs)
                    .ok()
                    .filter(|s| i64::from(*s) <= MAX_MIN_SECS)
                    .ok_or_else(|| {
                        InvalidInput::new(
                            "min_secs",
                            format!(
                                "{secs} is outside 0..={MAX_MIN_SECS}: give the seconds the condition must hold before the rule fires"
                            ),
                        )
                    })?
            }
        };
        check_name(&self.channel).map_err(|e| InvalidInput::new("channel", e.message))?;
        let timezone = match self.timezone.as_deref() {
            None => default_zone,
            Some(name) => name.parse().map_err(|_| {
                InvalidInput::new(
                    "timezone",
                    format!("{name:?} is not an IANA time zone (for example Asia/Shanghai)"),
                )
            })?,
        };
        Ok(Rule {
            id: 0,
            condition,
            stations: parse_scope(&self.stations)?,
            ports: self.ports(kind)?,
            min_secs,
            quiet_hours: self
                .quiet_hours
                .as_deref()
                .map(QuietHours::parse)
                .transpose()?,
            channel: self.channel,
            once: self.once,
            resolved: self.resolved,
            timezone,
        })
    }

    /// The condition of a rule of `kind`: its own fields given, the others' left out.
    fn condition(&self, kind: RuleKind) -> Result<Condition, InvalidInput> {
        let free_ports = self
            .free_ports
            .as_ref()
            .map(|n| whole("free_ports", n))
            .transpose()?;
        if kind != RuleKind::FreePorts && free_ports.is_some() {
            return Err(InvalidInput::new(
                "free_ports",
                format!("applies only to free_ports rules, not {}", kind.as_str()),
            ));
        }
        if kind != RuleKind::Voltage && (self.low.is_some() || self.high.is_some()) {
            return Err(InvalidInput::new(
                "low",
                format!(
                    "and high apply only to voltage rules, not {}",
                    kind.as_str()
                ),
            ));
        }
        Ok(match kind {
            RuleKind::PortFree => Condition::PortFree,
            RuleKind::Fault => Condition::Fault,
            RuleKind::Offline => Condition::Offline,
            RuleKind::FreePorts => {
                let count = free_ports.ok_or_else(|| {
                    InvalidInput::new(
                        "free_ports",
                        "is required for a free_ports rule: how many ports must be free",
                    )
                })?;
                let count = u32::try_from(count)
                    .ok()
                    .filter(|k| (1..=MAX_PORT).contains(k))
                    .ok_or_else(|| {
                        InvalidInput::new(
                            "free_ports",
                            format!("{count} is outside 1..={MAX_PORT}"),
                        )
                    })?;
                Condition::FreePorts { count }
            }
            RuleKind::Voltage => {
                let (Some(low), Some(high)) = (self.low, self.high) else {
                    return Err(InvalidInput::new(
                        "low",
                        "and high are both required for a voltage rule (volts, for example 198 and 242)",
                    ));
                };
                if !low.is_finite() || !high.is_finite() || low >= high || low < 0.0 {
                    return Err(InvalidInput::new(
                        "low",
                        format!("{low}..{high} is not a voltage range: give 0 ≤ low < high"),
                    ));
                }
                Condition::Voltage { low, high }
            }
        })
    }

    /// The ports a rule of `kind` watches (`None`: all).
    fn ports(&self, kind: RuleKind) -> Result<Option<Vec<u32>>, InvalidInput> {
        let Some(ports) = &self.ports else {
            return Ok(None);
        };
        if !kind.per_port() && kind != RuleKind::FreePorts {
            return Err(InvalidInput::new(
                "ports",
                format!(
                    "do not apply to {} rules, which watch a station as a whole",
                    kind.as_str()
                ),
            ));
        }
        if ports.is_empty() {
            return Err(InvalidInput::new(
                "ports",
                "is empty; leave it out to watch every port",
            ));
        }
        ports
            .iter()
            .map(|p| {
                let p = whole("ports", p)?;
                u32::try_from(p)
                    .ok()
                    .filter(|p| (1..=MAX_PORT).contains(p))
                    .ok_or_else(|| {
                        InvalidInput::new(
                            "ports",
                            format!("{p} is not a port number (1..={MAX_PORT})"),
                        )
                    })
            })
            .collect::<Result<Vec<u32>, _>>()
            .map(Some)
    }
}

/// `"all"` or a list of station ids (the OpenAPI schema of a rule's `stations`).
#[cfg(feature = "openapi")]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum StationsSchema {
    /// Every station.
    All(AllStations),
    /// These stations (1 to 1,000).
    Stations(Vec<String>),
}

/// The word `all`.
#[cfg(feature = "openapi")]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AllStations {
    /// Every station.
    All,
}

/// A JSON number that must be whole (`3` or `3.0`, not `2.5`).
fn whole(field: &str, number: &serde_json::Number) -> Result<i64, InvalidInput> {
    if let Some(n) = number.as_i64() {
        return Ok(n);
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(InvalidInput::new(
            field,
            format!("{number} is not a whole number in range"),
        )),
    }
}

fn parse_scope(value: &serde_json::Value) -> Result<Scope, InvalidInput> {
    let wrong = || {
        InvalidInput::new(
            "stations",
            "must be \"all\" or a list of station ids such as [\"S0001\"]",
        )
    };
    match value {
        serde_json::Value::String(word) if word == "all" => Ok(Scope::All),
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                return Err(InvalidInput::new(
                    "stations",
                    "is an empty list; name at least one station, or \"all\"",
                ));
            }
            if items.len() > MAX_RULE_STATIONS {
                return Err(InvalidInput::new(
                    "stations",
                    format!("names more than {MAX_RULE_STATIONS} stations; watch \"all\" instead"),
                ));
            }
            let mut ids = Vec::with_capacity(items.len());
            for item in items {
                let text = item.as_str().ok_or_else(wrong)?;
                let id = StationId::parse(text).map_err(|e| e.at("stations"))?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Ok(Scope::Stations(ids))
        }
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn draft(json: serde_json::Value) -> Result<Rule, InvalidInput> {
        serde_json::from_value::<RuleDraft>(json)
            .unwrap()
            .validate(chrono_tz::Asia::Shanghai)
    }

    #[test]
    fn a_rule_is_checked_field_by_field() {
        let rule = draft(serde_json::json!({
            "kind": "fault", "stations": ["S0001", "S0001"], "channel": "ops",
        }))
        .unwrap();
        assert_eq!(rule.min_secs, 300, "the kind's default");
        let voltage = draft(serde_json::json!({
            "kind": "voltage", "stations": "all", "low": 198, "high": 242, "channel": "ops",
        }))
        .unwrap();
        assert_eq!(
            voltage.condition,
            Condition::Voltage {
                low: 198.0,
                high: 242.0
            }
        );
        assert_eq!(voltage.to_json().low, Some(198.0));
        assert_eq!(
            rule.stations,
            Scope::Stations(vec![StationId::parse("S0001").unwrap()])
        );
        let refused = |json, field: &str| {
            let err = draft(json).unwrap_err();
            assert!(err.field.starts_with(field), "{err}");
        };
        refused(
            serde_json::json!({"kind": "nope", "stations": "all", "channel": "c"}),
            "kind",
        );
        refused(
            serde_json::json!({"kind": "fault", "stations": [], "channel": "c"}),
            "stations",
        );
        refused(
            serde_json::json!({"kind": "fault", "stations": "some", "channel": "c"}),
            "stations",
        );
        refused(
            serde_json::json!({"kind": "fault", "stations": ["a b"], "channel": "c"}),
            "stations",
        );
        refused(
            serde_json::json!({"kind": "port_free", "stations": "all", "ports": [0], "channel": "c"}),
            "ports",
        );
        refused(
            serde_json::json!({"kind": "fault", "stations": "all", "min_secs": -60, "channel": "c"}),
            "min_secs",
        );
        refused(
            serde_json::json!({"kind": "free_ports", "stations": "all", "channel": "c"}),
            "free_ports",
        );
        refused(
            serde_json::json!({"kind": "voltage", "stations": "all", "low": 250, "high": 200, "channel": "c"}),
            "low",
        );
        refused(
            serde_json::json!({"kind": "offline", "stations": "all", "ports": [1], "channel": "c"}),
            "ports",
        );
        refused(
            serde_json::json!({"kind": "fault", "stations": "all", "channel": "c", "quiet_hours": "25:00-07:00"}),
            "quiet_hours",
        );
        refused(
            serde_json::json!({"kind": "fault", "stations": "all", "channel": "c", "timezone": "Mars/Base"}),
            "timezone",
        );
    }

    #[test]
    fn quiet_hours_across_midnight_release_at_their_end() {
        let quiet = QuietHours::parse("23:00-07:00").unwrap();
        let zone = chrono_tz::Asia::Shanghai;
        let local = |d, h, m| {
            zone.with_ymd_and_hms(2026, 12, d, h, m, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        assert_eq!(quiet.release(local(1, 23, 30), zone), Some(local(2, 7, 0)));
        assert_eq!(quiet.release(local(2, 3, 0), zone), Some(local(2, 7, 0)));
        assert_eq!(quiet.release(local(2, 7, 0), zone), None);
        assert_eq!(quiet.release(local(2, 12, 0), zone), None);
        let day = QuietHours::parse("12:00-14:00").unwrap();
        assert_eq!(day.release(local(2, 13, 59), zone), Some(local(2, 14, 0)));
        assert_eq!(day.release(local(2, 11, 59), zone), None);
    }
}
