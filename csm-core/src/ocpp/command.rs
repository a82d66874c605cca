//! The operators' commands to an OCPP charger, named once for both versions and sent as the
//! charger's version says: `Reset`, `UnlockConnector`, `ChangeAvailability`, `TriggerMessage`,
//! `ClearCache`, `RemoteStartTransaction` (2.0.1 `RequestStartTransaction`),
//! `RemoteStopTransaction` (2.0.1 `RequestStopTransaction`); 1.6's `GetConfiguration` and
//! `ChangeConfiguration`; 2.0.1's `GetVariables`, `SetVariables` and `GetBaseReport`. What an
//! operator may ask is checked before anything is sent, and a command (or a kind of reset or
//! message) the charger's version does not have is refused, naming the one it has.
//!
//! A command is checked twice: on its own ([`Command::check`]: types, lengths, the
//! configuration keys the specification fixes), then against what the charger has said
//! ([`Command::to_call`]: its version, its ports, its running transactions).

use std::sync::atomic::{AtomicI32, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Version;
use crate::error::InvalidInput;
use crate::model::MAX_PORT;

/// An operator's command, named once for every OCPP version.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "command", deny_unknown_fields)]
pub enum Command {
    /// Restart the charger. OCPP 1.6: `Soft` (stop transactions, restart the software) or
    /// `Hard`; OCPP 2.0.1: `Immediate` (stop transactions, restart now) or `OnIdle` (once no
    /// transaction runs).
    Reset {
        /// `Soft` or `Hard` (1.6), `Immediate` or `OnIdle` (2.0.1).
        #[serde(rename = "type")]
        kind: ResetKind,
    },
    /// Release the cable lock of a connector (2.0.1: of the EVSE's connector 1).
    UnlockConnector {
        /// The connector (port), from 1.
        #[serde(deserialize_with = "crate::model::whole::u32")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1024))]
        connector: u32,
    },
    /// Take a connector (or, with connector 0, the whole charger) out of service, or back.
    ChangeAvailability {
        /// The connector; 0 (the default) is the whole charger.
        #[serde(default, deserialize_with = "crate::model::whole::u32")]
        #[cfg_attr(feature = "openapi", schema(maximum = 1024))]
        connector: u32,
        /// `Operative` or `Inoperative`.
        availability: Availability,
    },
    /// OCPP 1.6: read the charger's configuration, every key or the named ones (2.0.1:
    /// `GetVariables`, `GetBaseReport`).
    GetConfiguration {
        /// The keys to read (none: all).
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(max_items = 100))]
        keys: Vec<String>,
    },
    /// OCPP 1.6: change one configuration key (2.0.1: `SetVariables`).
    ChangeConfiguration {
        /// The key (at most 50 characters).
        #[cfg_attr(
            feature = "openapi",
            schema(min_length = 1, max_length = 50, pattern = r"\S")
        )]
        key: String,
        /// Its new value, as text (at most 500 characters): `true`/`false` for a boolean
        /// key, digits for an integer key.
        #[cfg_attr(feature = "openapi", schema(max_length = 500))]
        value: String,
    },
    /// OCPP 2.0.1: read variables of the charger's components (1.6: `GetConfiguration`).
    GetVariables {
        /// The variables to read (1–100).
        #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
        variables: Vec<VariableRef>,
    },
    /// OCPP 2.0.1: set variables of the charger's components (1.6: `ChangeConfiguration`).
    SetVariables {
        /// The variables and their new values (1–100).
        #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
        variables: Vec<VariableValue>,
    },
    /// OCPP 2.0.1: ask for one of the charger's base reports; the answer carries the report,
    /// collected from the NotifyReport messages that follow (as many as arrive in the wait).
    GetBaseReport {
        /// Which report.
        report: ReportBase,
    },
    /// Ask the charger to send a message now.
    TriggerMessage {
        /// The message to send.
        message: TriggerKind,
        /// The connector it is about, from 1 (none: the charger).
        #[serde(default, deserialize_with = "crate::model::whole::opt_u32")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1024))]
        connector: Option<u32>,
    },
    /// Clear the charger's cache of authorised id tags.
    ClearCache,
    /// Start a transaction for an id tag, on a connector or one the charger chooses (2.0.1:
    /// `RequestStartTransaction`, a name this command also answers to).
    #[serde(alias = "RequestStartTransaction")]
    RemoteStartTransaction {
        /// The connector, from 1 (none: the charger chooses).
        #[serde(default, deserialize_with = "crate::model::whole::opt_u32")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1024))]
        connector: Option<u32>,
        /// The id tag to start for (at most 20 characters for 1.6, 36 for 2.0.1).
        #[cfg_attr(
            feature = "openapi",
            schema(min_length = 1, max_length = 36, pattern = r"\S")
        )]
        id_tag: String,
    },
    /// Stop a transaction: by its id, or the one running on a connector (2.0.1:
    /// `RequestStopTransaction`, a name this command also answers to).
    #[serde(alias = "RequestStopTransaction")]
    RemoteStopTransaction {
        /// The transaction's id: csm's number (1.6) or the charger's text (2.0.1).
        #[serde(default)]
        transaction_id: Option<TransactionRef>,
        /// The connector whose running transaction to stop.
        #[serde(default, deserialize_with = "crate::model::whole::opt_u32")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1024))]
        connector: Option<u32>,
    },
}

/// A transaction's id as an operator names it: a number (1.6; a whole number written `5.0`
/// too) or text (2.0.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum TransactionRef {
    /// A 1.6 transaction id.
    Number(i64),
    /// A 2.0.1 transaction id (1–36 characters).
    Text(String),
}

impl<'de> Deserialize<'de> for TransactionRef {
    fn deserialize<D: serde::Deserializer<'de>>(input: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(input)? {
            Value::String(text) => Ok(TransactionRef::Text(text)),
            Value::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() <= 2f64.powi(53))
                        .map(|f| f as i64)
                })
                .map(TransactionRef::Number)
                .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number"))),
            other => Err(D::Error::custom(format!(
                "{other} is not a transaction id: a whole number (OCPP 1.6) or text (OCPP 2.0.1)"
            ))),
        }
    }
}

impl TransactionRef {
    fn text(&self) -> String {
        match self {
            TransactionRef::Number(n) => n.to_string(),
            TransactionRef::Text(t) => t.clone(),
        }
    }
}

/// The kinds of reset: 1.6 has `Soft` and `Hard`, 2.0.1 `Immediate` and `OnIdle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ResetKind {
    /// 1.6: stop transactions, then restart the software.
    Soft,
    /// 1.6: restart the hardware.
    Hard,
    /// 2.0.1: stop transactions and restart now.
    Immediate,
    /// 2.0.1: restart once no transaction runs.
    OnIdle,
}

/// Whether a connector is in service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Availability {
    /// In service.
    Operative,
    /// Taken out of service by the operator.
    Inoperative,
}

/// The messages an operator may ask for with TriggerMessage (1.6 `MessageTrigger`, 2.0.1
/// `MessageTriggerEnumType`; a few are one version's only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(clippy::enum_variant_names)]
pub enum TriggerKind {
    /// `BootNotification`.
    BootNotification,
    /// `DiagnosticsStatusNotification` (1.6 only).
    DiagnosticsStatusNotification,
    /// `FirmwareStatusNotification`.
    FirmwareStatusNotification,
    /// `Heartbeat`.
    Heartbeat,
    /// `LogStatusNotification` (2.0.1 only).
    LogStatusNotification,
    /// `MeterValues`.
    MeterValues,
    /// `StatusNotification`.
    StatusNotification,
    /// `TransactionEvent` (2.0.1 only).
    TransactionEvent,
}

/// A 2.0.1 variable to read: a component's variable (of one EVSE, of one instance).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VariableRef {
    /// The component (`OCPPCommCtrlr`, `SampledDataCtrlr`, …; at most 50 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 50, pattern = r"\S")
    )]
    pub component: String,
    /// The variable (`HeartbeatInterval`, …; at most 50 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 50, pattern = r"\S")
    )]
    pub variable: String,
    /// The component's instance, when it has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 50, pattern = r"\S")
    )]
    pub instance: Option<String>,
    /// The EVSE (port) whose component it is (none: the station's).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::model::whole::opt_u32"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1024))]
    pub evse: Option<u32>,
}

/// A 2.0.1 variable to set and its new value.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VariableValue {
    /// The component (at most 50 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 50, pattern = r"\S")
    )]
    pub component: String,
    /// The variable (at most 50 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 50, pattern = r"\S")
    )]
    pub variable: String,
    /// The component's instance, when it has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 50, pattern = r"\S")
    )]
    pub instance: Option<String>,
    /// The EVSE (port) whose component it is (none: the station's).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::model::whole::opt_u32"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1024))]
    pub evse: Option<u32>,
    /// The new value, as text (at most 1,000 characters).
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub value: String,
}

/// The base reports of OCPP 2.0.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(clippy::enum_variant_names)]
pub enum ReportBase {
    /// The variables that can be configured.
    ConfigurationInventory,
    /// Every component and variable.
    FullInventory,
    /// The components' availability and problems.
    SummaryInventory,
}

/// What csm knows of a connected charger that a command is checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChargerFacts {
    /// The OCPP version it speaks.
    pub version: Version,
    /// The connectors (ports) it has reported, in order (empty: none yet).
    pub connectors: Vec<u32>,
    /// Its running transactions: (connector, transaction id).
    pub transactions: Vec<(u32, String)>,
}

/// A command as the charger's version sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The action.
    pub action: &'static str,
    /// The payload.
    pub payload: Value,
    /// GetBaseReport: the request id its NotifyReport messages carry.
    pub report: Option<i64>,
}

/// The type of a configuration key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyType {
    Boolean,
    Integer,
    /// A comma-separated list or free text.
    Text,
}

/// The configuration keys OCPP 1.6 (chapter 9) and its security whitepaper define: the type
/// of each, and whether a central system may change it.
const STANDARD_KEYS: &[(&str, KeyType, bool)] = {
    use KeyType::{Boolean as B, Integer as I, Text as T};
    &[
        ("AllowOfflineTxForUnknownId", B, true),
        ("AuthorizationCacheEnabled", B, true),
        ("AuthorizeRemoteTxRequests", B, true),
        ("BlinkRepeat", I, true),
        ("ClockAlignedDataInterval", I, true),
        ("ConnectionTimeOut", I, true),
        ("ConnectorPhaseRotation", T, true),
        ("ConnectorPhaseRotationMaxLength", I, false),
        ("GetConfigurationMaxKeys", I, false),
        ("HeartbeatInterval", I, true),
        ("LightIntensity", I, true),
        ("LocalAuthorizeOffline", B, true),
        ("LocalPreAuthorize", B, true),
        ("MaxEnergyOnInvalidId", I, true),
        ("MeterValuesAlignedData", T, true),
        ("MeterValuesAlignedDataMaxLength", I, false),
        ("MeterValuesSampledData", T, true),
        ("MeterValuesSampledDataMaxLength", I, false),
        ("MeterValueSampleInterval", I, true),
        ("MinimumStatusDuration", I, true),
        ("NumberOfConnectors", I, false),
        ("ResetRetries", I, true),
        ("StopTransactionOnEVSideDisconnect", B, true),
        ("StopTransactionOnInvalidId", B, true),
        ("StopTxnAlignedData", T, true),
        ("StopTxnAlignedDataMaxLength", I, false),
        ("StopTxnSampledData", T, true),
        ("StopTxnSampledDataMaxLength", I, false),
        ("SupportedFeatureProfiles", T, false),
        ("SupportedFeatureProfilesMaxLength", I, false),
        ("TransactionMessageAttempts", I, true),
        ("TransactionMessageRetryInterval", I, true),
        ("UnlockConnectorOnEVSideDisconnect", B, true),
        ("WebSocketPingInterval", I, true),
        ("LocalAuthListEnabled", B, true),
        ("LocalAuthListMaxLength", I, false),
        ("SendLocalListMaxLength", I, false),
        ("ReserveConnectorZeroSupported", B, false),
        ("ChargeProfileMaxStackLevel", I, false),
        ("ChargingScheduleAllowedChargingRateUnit", T, false),
        ("ChargingScheduleMaxPeriods", I, false),
        ("ConnectorSwitch3to1PhaseSupported", B, false),
        ("MaxChargingProfilesInstalled", I, false),
        ("AuthorizationKey", T, true),
        ("CpoName", T, true),
        ("SecurityProfile", I, true),
    ]
};

/// The configuration key 1.6 chargers keep secret: written, never read back.
pub const SECRET_KEY: &str = "AuthorizationKey";
/// The variable 2.0.1 chargers keep secret (of `SecurityCtrlr`): written, never read back.
pub const SECRET_VARIABLE: &str = "BasicAuthPassword";

/// At most this many keys in one GetConfiguration.
const MAX_KEYS: usize = 100;

/// At most this many variables in one GetVariables or SetVariables.
const MAX_VARIABLES: usize = 100;

/// Request ids of csm's GetBaseReport and RequestStartTransaction calls: increasing, from the
/// clock, so a restarted csm does not reuse a recent one.
static REQUEST_IDS: AtomicI32 = AtomicI32::new(0);

fn request_id() -> i64 {
    let seed = (chrono::Utc::now().timestamp() % 1_000_000_000) as i32;
    let _ = REQUEST_IDS.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    i64::from(REQUEST_IDS.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & i32::MAX)
}

fn invalid(field: &str, message: impl Into<String>) -> InvalidInput {
    InvalidInput::new(field, message)
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), InvalidInput> {
    if value.trim().is_empty() {
        return Err(invalid(field, "is empty"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(invalid(
            field,
            format!("has {chars} characters; OCPP allows at most {max}"),
        ));
    }
    Ok(())
}

fn check_connector(field: &str, connector: u32, zero: bool) -> Result<(), InvalidInput> {
    if connector == 0 && !zero {
        return Err(invalid(
            field,
            "0 is the charger itself; name a connector from 1",
        ));
    }
    if connector > MAX_PORT {
        return Err(invalid(
            field,
            format!("{connector} is past the last connector csm handles ({MAX_PORT})"),
        ));
    }
    Ok(())
}

fn check_variables<'a>(
    count: usize,
    names: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>, Option<u32>)>,
) -> Result<(), InvalidInput> {
    if !(1..=MAX_VARIABLES).contains(&count) {
        return Err(invalid(
            "variables",
            format!("names {count} variables; name 1 to {MAX_VARIABLES}"),
        ));
    }
    for (component, variable, instance, evse) in names {
        check_text("component", component, 50)?;
        check_text("variable", variable, 50)?;
        if let Some(instance) = instance {
            check_text("instance", instance, 50)?;
        }
        if let Some(evse) = evse {
            check_connector("evse", evse, false)?;
        }
    }
    Ok(())
}

/// A 2.0.1 `component` and `variable` pair.
fn component(name: &str, evse: Option<u32>, variable: &str, instance: Option<&str>) -> Value {
    let mut component = json!({"name": name});
    if let Some(evse) = evse {
        component["evse"] = json!({"id": evse});
    }
    let mut variable = json!({"name": variable});
    if let Some(instance) = instance {
        variable["instance"] = json!(instance);
    }
    json!({"component": component, "variable": variable})
}

impl Command {
    /// The command's name, as the API names it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Reset { .. } => "Reset",
            Command::UnlockConnector { .. } => "UnlockConnector",
            Command::ChangeAvailability { .. } => "ChangeAvailability",
            Command::GetConfiguration { .. } => "GetConfiguration",
            Command::ChangeConfiguration { .. } => "ChangeConfiguration",
            Command::GetVariables { .. } => "GetVariables",
            Command::SetVariables { .. } => "SetVariables",
            Command::GetBaseReport { .. } => "GetBaseReport",
            Command::TriggerMessage { .. } => "TriggerMessage",
            Command::ClearCache => "ClearCache",
            Command::RemoteStartTransaction { .. } => "RemoteStartTransaction",
            Command::RemoteStopTransaction { .. } => "RemoteStopTransaction",
        }
    }

    /// The action it becomes for a charger of `version`; `None` when that version has no
    /// such command.
    pub fn action(&self, version: Version) -> Option<&'static str> {
        match (self, version) {
            (
                Command::GetConfiguration { .. } | Command::ChangeConfiguration { .. },
                Version::V201,
            )
            | (
                Command::GetVariables { .. }
                | Command::SetVariables { .. }
                | Command::GetBaseReport { .. },
                Version::V16,
            ) => None,
            (Command::RemoteStartTransaction { .. }, Version::V201) => {
                Some("RequestStartTransaction")
            }
            (Command::RemoteStopTransaction { .. }, Version::V201) => {
                Some("RequestStopTransaction")
            }
            _ => Some(self.name()),
        }
    }

    /// Checks the command on its own: lengths, connector numbers, the type of a standard
    /// configuration key's value and whether it may be changed.
    pub fn check(&self) -> Result<(), InvalidInput> {
        match self {
            Command::Reset { .. } | Command::ClearCache | Command::GetBaseReport { .. } => Ok(()),
            Command::UnlockConnector { connector } => {
                check_connector("connector", *connector, false)
            }
            Command::ChangeAvailability { connector, .. } => {
                check_connector("connector", *connector, true)
            }
            Command::GetConfiguration { keys } => {
                if keys.len() > MAX_KEYS {
                    return Err(invalid(
                        "keys",
                        format!(
                            "names {} keys; ask for at most {MAX_KEYS} at once",
                            keys.len()
                        ),
                    ));
                }
                keys.iter().try_for_each(|key| check_text("keys", key, 50))
            }
            Command::ChangeConfiguration { key, value } => {
                check_text("key", key, 50)?;
                if value.chars().count() > 500 {
                    return Err(invalid(
                        "value",
                        "is longer than the 500 characters OCPP allows",
                    ));
                }
                check_value(key, value)
            }
            Command::GetVariables { variables } => check_variables(
                variables.len(),
                variables.iter().map(|v| {
                    (
                        v.component.as_str(),
                        v.variable.as_str(),
                        v.instance.as_deref(),
                        v.evse,
                    )
                }),
            ),
            Command::SetVariables { variables } => {
                check_variables(
                    variables.len(),
                    variables.iter().map(|v| {
                        (
                            v.component.as_str(),
                            v.variable.as_str(),
                            v.instance.as_deref(),
                            v.evse,
                        )
                    }),
                )?;
                match variables.iter().find(|v| v.value.chars().count() > 1_000) {
                    Some(v) => Err(invalid(
                        "value",
                        format!(
                            "{}.{}: longer than the 1,000 characters OCPP allows",
                            v.component, v.variable
                        ),
                    )),
                    None => Ok(()),
                }
            }
            Command::TriggerMessage { connector, .. } => {
                connector.map_or(Ok(()), |c| check_connector("connector", c, false))
            }
            Command::RemoteStartTransaction { connector, id_tag } => {
                check_text("id_tag", id_tag, 36)?;
                connector.map_or(Ok(()), |c| check_connector("connector", c, false))
            }
            Command::RemoteStopTransaction {
                transaction_id,
                connector,
            } => match (transaction_id, connector) {
                (Some(TransactionRef::Text(id)), None) => check_text("transaction_id", id, 36),
                (Some(TransactionRef::Number(_)), None) => Ok(()),
                (None, Some(c)) => check_connector("connector", *c, false),
                _ => Err(invalid(
                    "transaction_id",
                    "name either the transaction (transaction_id) or the connector whose transaction to stop (connector), not both or neither",
                )),
            },
        }
    }

    /// The connector the command is about, if any.
    fn connector(&self) -> Option<u32> {
        match self {
            Command::UnlockConnector { connector } => Some(*connector),
            Command::ChangeAvailability { connector, .. } => Some(*connector).filter(|c| *c > 0),
            Command::TriggerMessage { connector, .. }
            | Command::RemoteStartTransaction { connector, .. }
            | Command::RemoteStopTransaction { connector, .. } => *connector,
            _ => None,
        }
    }

    /// Where a version lacks what the command asks, what it has instead.
    fn not_in(&self, version: Version) -> Option<(&'static str, String)> {
        let other = match version {
            Version::V16 => "2.0.1",
            Version::V201 => "1.6",
        };
        let instead = match self {
            Command::GetConfiguration { .. } => "GetVariables (or GetBaseReport)",
            Command::ChangeConfiguration { .. } => "SetVariables",
            Command::GetVariables { .. } | Command::GetBaseReport { .. } => "GetConfiguration",
            Command::SetVariables { .. } => "ChangeConfiguration",
            Command::Reset { kind } => {
                let fits = matches!(
                    (kind, version),
                    (ResetKind::Soft | ResetKind::Hard, Version::V16)
                        | (ResetKind::Immediate | ResetKind::OnIdle, Version::V201)
                );
                return (!fits).then(|| {
                    let kinds = match version {
                        Version::V16 => "Soft or Hard",
                        Version::V201 => "Immediate or OnIdle",
                    };
                    (
                        "type",
                        format!(
                            "{kind:?} is a reset of OCPP {other}; OCPP {version} resets {kinds}"
                        ),
                    )
                });
            }
            Command::TriggerMessage { message, .. } => {
                let only = match message {
                    TriggerKind::DiagnosticsStatusNotification => Version::V16,
                    TriggerKind::LogStatusNotification | TriggerKind::TransactionEvent => {
                        Version::V201
                    }
                    _ => return None,
                };
                return (only != version).then(|| {
                    (
                        "message",
                        format!("{message:?} is a message of OCPP {only} only"),
                    )
                });
            }
            _ => return None,
        };
        if self.action(version).is_some() {
            return None;
        }
        Some((
            "command",
            format!(
                "{} is a command of OCPP {other}; for OCPP {version} use {instead}",
                self.name()
            ),
        ))
    }

    /// The call for a charger that has said `facts` (checked against them: its version, a
    /// connector it has not reported, a connector with no transaction to stop).
    pub fn to_call(&self, station: &str, facts: &ChargerFacts) -> Result<Call, InvalidInput> {
        self.check()?;
        let version = facts.version;
        if let Some((field, message)) = self.not_in(version) {
            return Err(invalid(
                field,
                format!("charge point {station} speaks OCPP {version}: {message}"),
            ));
        }
        if let Some(connector) = self.connector()
            && !facts.connectors.is_empty()
            && !facts.connectors.contains(&connector)
        {
            let known: Vec<String> = facts.connectors.iter().map(u32::to_string).collect();
            return Err(invalid(
                "connector",
                format!(
                    "{connector}: charge point {station} has reported connectors {} only",
                    known.join(", ")
                ),
            ));
        }
        let mut report = None;
        let payload = match version {
            Version::V16 => self.payload_16(station, facts)?,
            Version::V201 => {
                let payload = self.payload_201(station, facts)?;
                if matches!(self, Command::GetBaseReport { .. }) {
                    report = payload["requestId"].as_i64();
                }
                payload
            }
        };
        Ok(Call {
            action: self.action(version).unwrap_or_else(|| self.name()),
            payload,
            report,
        })
    }

    /// The transaction to stop: the one named, or the one running on the connector named.
    fn transaction(
        transaction_id: Option<&TransactionRef>,
        connector: Option<u32>,
        station: &str,
        facts: &ChargerFacts,
    ) -> Result<String, InvalidInput> {
        if let Some(id) = transaction_id {
            return Ok(id.text());
        }
        let connector = connector.unwrap_or_default();
        facts
            .transactions
            .iter()
            .find(|(c, _)| *c == connector)
            .map(|(_, id)| id.clone())
            .ok_or_else(|| {
                invalid(
                    "connector",
                    format!("{connector}: no transaction runs on it at charge point {station}"),
                )
            })
    }

    fn payload_16(&self, station: &str, facts: &ChargerFacts) -> Result<Value, InvalidInput> {
        Ok(match self {
            Command::Reset { kind } => json!({"type": kind}),
            Command::UnlockConnector { connector } => json!({"connectorId": connector}),
            Command::ChangeAvailability {
                connector,
                availability,
            } => json!({"connectorId": connector, "type": availability}),
            Command::GetConfiguration { keys } if keys.is_empty() => json!({}),
            Command::GetConfiguration { keys } => json!({"key": keys}),
            Command::ChangeConfiguration { key, value } => json!({"key": key, "value": value}),
            Command::TriggerMessage { message, connector } => match connector {
                Some(c) => json!({"requestedMessage": message, "connectorId": c}),
                None => json!({"requestedMessage": message}),
            },
            Command::ClearCache => json!({}),
            Command::RemoteStartTransaction { connector, id_tag } => {
                check_text("id_tag", id_tag, 20)?;
                match connector {
                    Some(c) => json!({"idTag": id_tag, "connectorId": c}),
                    None => json!({"idTag": id_tag}),
                }
            }
            Command::RemoteStopTransaction {
                transaction_id,
                connector,
            } => {
                let id = Self::transaction(transaction_id.as_ref(), *connector, station, facts)?;
                let number: i64 = id.parse().map_err(|_| {
                    invalid(
                        "transaction_id",
                        format!("{id:?}: an OCPP 1.6 transaction id is a whole number"),
                    )
                })?;
                json!({"transactionId": number})
            }
            Command::GetVariables { .. }
            | Command::SetVariables { .. }
            | Command::GetBaseReport { .. } => unreachable!("refused by not_in"),
        })
    }

    fn payload_201(&self, station: &str, facts: &ChargerFacts) -> Result<Value, InvalidInput> {
        Ok(match self {
            Command::Reset { kind } => json!({"type": kind}),
            Command::UnlockConnector { connector } => {
                json!({"evseId": connector, "connectorId": 1})
            }
            Command::ChangeAvailability {
                connector: 0,
                availability,
            } => json!({"operationalStatus": availability}),
            Command::ChangeAvailability {
                connector,
                availability,
            } => json!({"operationalStatus": availability, "evse": {"id": connector}}),
            Command::GetVariables { variables } => json!({"getVariableData": variables
                .iter()
                .map(|v| component(&v.component, v.evse, &v.variable, v.instance.as_deref()))
                .collect::<Vec<_>>()}),
            Command::SetVariables { variables } => json!({"setVariableData": variables
                .iter()
                .map(|v| {
                    let mut data =
                        component(&v.component, v.evse, &v.variable, v.instance.as_deref());
                    data["attributeValue"] = json!(v.value);
                    data
                })
                .collect::<Vec<_>>()}),
            Command::GetBaseReport { report } => {
                json!({"requestId": request_id(), "reportBase": report})
            }
            Command::TriggerMessage { message, connector } => match connector {
                Some(c) => json!({"requestedMessage": message, "evse": {"id": c}}),
                None => json!({"requestedMessage": message}),
            },
            Command::ClearCache => json!({}),
            Command::RemoteStartTransaction { connector, id_tag } => {
                let mut payload = json!({
                    "idToken": {"idToken": id_tag, "type": "Central"},
                    "remoteStartId": request_id(),
                });
                if let Some(c) = connector {
                    payload["evseId"] = json!(c);
                }
                payload
            }
            Command::RemoteStopTransaction {
                transaction_id,
                connector,
            } => json!({"transactionId":
                Self::transaction(transaction_id.as_ref(), *connector, station, facts)?}),
            Command::GetConfiguration { .. } | Command::ChangeConfiguration { .. } => {
                unreachable!("refused by not_in")
            }
        })
    }
}

/// Checks the value of a key the specification defines: its type, and whether it may be
/// changed at all. Other keys are the charger's own (csm asks it whether it has them).
fn check_value(key: &str, value: &str) -> Result<(), InvalidInput> {
    let Some((name, kind, writable)) = STANDARD_KEYS
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(key))
    else {
        return Ok(());
    };
    if !writable {
        return Err(invalid(
            "key",
            format!(
                "{name} is read-only: OCPP 1.6 lets a charger report it, not a central system change it"
            ),
        ));
    }
    let fits = match kind {
        KeyType::Boolean => {
            value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
        }
        KeyType::Integer => value.parse::<u64>().is_ok(),
        KeyType::Text => true,
    };
    if !fits {
        let wanted = match kind {
            KeyType::Boolean => "true or false",
            _ => "a whole number of 0 or more",
        };
        return Err(invalid(
            "value",
            format!("{value:?}: {name} takes {wanted}"),
        ));
    }
    Ok(())
}

/// Whether csm may ask the charger about `key` before changing it: the secret key is written
/// only, so a charger never lists it.
pub fn readable_key(key: &str) -> bool {
    !key.eq_ignore_ascii_case(SECRET_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(json: &str) -> Result<Command, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn facts(version: Version) -> ChargerFacts {
        ChargerFacts {
            version,
            connectors: vec![1, 2],
            transactions: vec![(2, "77".into())],
        }
    }

    fn call(text: &str, version: Version) -> Result<(&'static str, Value), String> {
        let command = command(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        command
            .to_call("CP", &facts(version))
            .map(|c| (c.action, c.payload))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn commands_read_as_operators_write_them_and_become_ocpp_1_6_calls() {
        let cases = [
            (
                r#"{"command":"Reset","type":"Hard"}"#,
                "Reset",
                json!({"type": "Hard"}),
            ),
            (
                r#"{"command":"UnlockConnector","connector":2}"#,
                "UnlockConnector",
                json!({"connectorId": 2}),
            ),
            (
                r#"{"command":"ChangeAvailability","availability":"Inoperative"}"#,
                "ChangeAvailability",
                json!({"connectorId": 0, "type": "Inoperative"}),
            ),
            (
                r#"{"command":"GetConfiguration"}"#,
                "GetConfiguration",
                json!({}),
            ),
            (
                r#"{"command":"GetConfiguration","keys":["HeartbeatInterval"]}"#,
                "GetConfiguration",
                json!({"key": ["HeartbeatInterval"]}),
            ),
            (
                r#"{"command":"ChangeConfiguration","key":"HeartbeatInterval","value":"60"}"#,
                "ChangeConfiguration",
                json!({"key": "HeartbeatInterval", "value": "60"}),
            ),
            (
                r#"{"command":"TriggerMessage","message":"MeterValues","connector":1}"#,
                "TriggerMessage",
                json!({"requestedMessage": "MeterValues", "connectorId": 1}),
            ),
            (r#"{"command":"ClearCache"}"#, "ClearCache", json!({})),
            (
                r#"{"command":"RemoteStartTransaction","id_tag":"OPERATOR","connector":1}"#,
                "RemoteStartTransaction",
                json!({"idTag": "OPERATOR", "connectorId": 1}),
            ),
            (
                r#"{"command":"RemoteStopTransaction","connector":2}"#,
                "RemoteStopTransaction",
                json!({"transactionId": 77}),
            ),
            (
                r#"{"command":"RemoteStopTransaction","transaction_id":5}"#,
                "RemoteStopTransaction",
                json!({"transactionId": 5}),
            ),
            (
                r#"{"command":"RemoteStopTransaction","transaction_id":-39262.0}"#,
                "RemoteStopTransaction",
                json!({"transactionId": -39262}),
            ),
        ];
        for (text, action, payload) in cases {
            assert_eq!(call(text, Version::V16), Ok((action, payload)), "{text}");
        }
    }

    #[test]
    fn the_same_commands_become_ocpp_2_0_1_calls() {
        let cases = [
            (
                r#"{"command":"Reset","type":"OnIdle"}"#,
                "Reset",
                json!({"type": "OnIdle"}),
            ),
            (
                r#"{"command":"UnlockConnector","connector":2}"#,
                "UnlockConnector",
                json!({"evseId": 2, "connectorId": 1}),
            ),
            (
                r#"{"command":"ChangeAvailability","availability":"Inoperative"}"#,
                "ChangeAvailability",
                json!({"operationalStatus": "Inoperative"}),
            ),
            (
                r#"{"command":"ChangeAvailability","connector":1,"availability":"Operative"}"#,
                "ChangeAvailability",
                json!({"operationalStatus": "Operative", "evse": {"id": 1}}),
            ),
            (
                r#"{"command":"GetVariables","variables":[{"component":"OCPPCommCtrlr","variable":"HeartbeatInterval"},{"component":"Connector","evse":1,"variable":"AvailabilityState","instance":"x"}]}"#,
                "GetVariables",
                json!({"getVariableData": [
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
                    {"component": {"name": "Connector", "evse": {"id": 1}}, "variable": {"name": "AvailabilityState", "instance": "x"}}
                ]}),
            ),
            (
                r#"{"command":"SetVariables","variables":[{"component":"OCPPCommCtrlr","variable":"HeartbeatInterval","value":"60"}]}"#,
                "SetVariables",
                json!({"setVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}, "attributeValue": "60"}]}),
            ),
            (
                r#"{"command":"TriggerMessage","message":"StatusNotification","connector":1}"#,
                "TriggerMessage",
                json!({"requestedMessage": "StatusNotification", "evse": {"id": 1}}),
            ),
            (r#"{"command":"ClearCache"}"#, "ClearCache", json!({})),
            (
                r#"{"command":"RequestStopTransaction","connector":2}"#,
                "RequestStopTransaction",
                json!({"transactionId": "77"}),
            ),
            (
                r#"{"command":"RemoteStopTransaction","transaction_id":"9f6c1d2e"}"#,
                "RequestStopTransaction",
                json!({"transactionId": "9f6c1d2e"}),
            ),
        ];
        for (text, action, payload) in cases {
            assert_eq!(call(text, Version::V201), Ok((action, payload)), "{text}");
        }
        let (action, start) = call(
            r#"{"command":"RemoteStartTransaction","id_tag":"OPERATOR","connector":1}"#,
            Version::V201,
        )
        .unwrap();
        assert_eq!(action, "RequestStartTransaction");
        assert_eq!(
            start["idToken"],
            json!({"idToken": "OPERATOR", "type": "Central"})
        );
        assert_eq!(start["evseId"], 1);
        assert!(start["remoteStartId"].as_i64().is_some(), "{start}");
        let report = command(r#"{"command":"GetBaseReport","report":"FullInventory"}"#)
            .unwrap()
            .to_call("CP", &facts(Version::V201))
            .unwrap();
        assert_eq!(report.action, "GetBaseReport");
        assert_eq!(report.payload["reportBase"], "FullInventory");
        assert_eq!(report.report, report.payload["requestId"].as_i64());
    }

    #[test]
    fn a_command_a_version_does_not_have_is_refused_naming_the_one_it_has() {
        let refused = |text: &str, version| call(text, version).unwrap_err();
        let message = refused(r#"{"command":"GetConfiguration"}"#, Version::V201);
        assert!(
            message.contains("speaks OCPP 2.0.1") && message.contains("use GetVariables"),
            "{message}"
        );
        assert!(
            refused(
                r#"{"command":"ChangeConfiguration","key":"HeartbeatInterval","value":"6"}"#,
                Version::V201
            )
            .contains("use SetVariables")
        );
        assert!(
            refused(
                r#"{"command":"GetBaseReport","report":"SummaryInventory"}"#,
                Version::V16
            )
            .contains("use GetConfiguration")
        );
        let reset = refused(r#"{"command":"Reset","type":"Soft"}"#, Version::V201);
        assert!(reset.contains("Immediate or OnIdle"), "{reset}");
        assert!(
            refused(r#"{"command":"Reset","type":"Immediate"}"#, Version::V16)
                .contains("Soft or Hard")
        );
        assert!(
            refused(
                r#"{"command":"TriggerMessage","message":"DiagnosticsStatusNotification"}"#,
                Version::V201
            )
            .contains("OCPP 1.6 only")
        );
        assert!(
            refused(
                r#"{"command":"RemoteStopTransaction","transaction_id":"abc"}"#,
                Version::V16
            )
            .contains("a whole number")
        );
        assert!(
            refused(
                r#"{"command":"RemoteStartTransaction","id_tag":"123456789012345678901"}"#,
                Version::V16
            )
            .contains("at most 20")
        );
        assert!(
            call(
                r#"{"command":"RemoteStartTransaction","id_tag":"123456789012345678901"}"#,
                Version::V201
            )
            .is_ok(),
            "2.0.1 id tokens are up to 36 characters"
        );
    }

    #[test]
    fn a_command_that_cannot_be_right_is_refused_with_the_reason() {
        let refused = |text: &str| call(text, Version::V16).unwrap_err();
        assert!(
            refused(r#"{"command":"UnlockConnector","connector":0}"#)
                .contains("0 is the charger itself")
        );
        assert!(
            refused(r#"{"command":"UnlockConnector","connector":5}"#)
                .contains("reported connectors 1, 2 only")
        );
        assert!(
            refused(
                r#"{"command":"ChangeConfiguration","key":"HeartbeatInterval","value":"soon"}"#
            )
            .contains("HeartbeatInterval takes a whole number")
        );
        assert!(
            refused(r#"{"command":"ChangeConfiguration","key":"LocalPreAuthorize","value":"yes"}"#)
                .contains("true or false")
        );
        assert!(
            refused(r#"{"command":"ChangeConfiguration","key":"NumberOfConnectors","value":"4"}"#)
                .contains("read-only")
        );
        assert!(
            refused(r#"{"command":"RemoteStopTransaction","connector":1}"#)
                .contains("no transaction runs")
        );
        assert!(
            refused(r#"{"command":"RemoteStopTransaction"}"#).contains("either the transaction")
        );
        let none = call(
            r#"{"command":"GetVariables","variables":[]}"#,
            Version::V201,
        );
        assert!(none.unwrap_err().contains("name 1 to 100"));
        // Types and names are the parser's: an unknown command, field or value.
        assert!(command(r#"{"command":"Explode"}"#).is_err());
        assert!(command(r#"{"command":"Reset","type":"Gentle"}"#).is_err());
        assert!(command(r#"{"command":"Reset","type":"Soft","force":true}"#).is_err());
        assert!(command(r#"{"command":"UnlockConnector","connector":"one"}"#).is_err());
        assert!(command(r#"{"command":"RemoteStopTransaction","transaction_id":1.5}"#).is_err());
    }

    #[test]
    fn a_charger_that_reported_no_connectors_yet_is_not_held_to_any() {
        let command = command(r#"{"command":"UnlockConnector","connector":3}"#).unwrap();
        assert!(command.to_call("CP", &ChargerFacts::default()).is_ok());
    }
}
