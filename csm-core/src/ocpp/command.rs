//! The operators' commands to an OCPP 1.6J charger (`Reset`, `UnlockConnector`,
//! `ChangeAvailability`, `GetConfiguration`, `ChangeConfiguration`, `TriggerMessage`,
//! `ClearCache`, `RemoteStartTransaction`, `RemoteStopTransaction`): what an operator may ask,
//! checked before anything is sent, and the call each becomes.
//!
//! A command is checked twice: on its own ([`Command::check`]: types, lengths, the
//! configuration keys the specification fixes), then against what the charger has said
//! ([`Command::to_call`]: its connectors, its running transactions).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::InvalidInput;
use crate::model::MAX_PORT;

/// An operator's command, named once for every OCPP version.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "command", deny_unknown_fields)]
pub enum Command {
    /// Restart the charger: `Soft` (stop transactions, restart the software) or `Hard`.
    Reset {
        /// `Soft` or `Hard`.
        #[serde(rename = "type")]
        kind: ResetKind,
    },
    /// Release the cable lock of a connector.
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
    /// Read the charger's configuration: every key, or the named ones.
    GetConfiguration {
        /// The keys to read (none: all).
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(max_items = 100))]
        keys: Vec<String>,
    },
    /// Change one configuration key.
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
    /// Start a transaction for an id tag, on a connector or one the charger chooses.
    RemoteStartTransaction {
        /// The connector, from 1 (none: the charger chooses).
        #[serde(default, deserialize_with = "crate::model::whole::opt_u32")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1024))]
        connector: Option<u32>,
        /// The id tag to start for (at most 20 characters).
        #[cfg_attr(
            feature = "openapi",
            schema(min_length = 1, max_length = 20, pattern = r"\S")
        )]
        id_tag: String,
    },
    /// Stop a transaction: by its id, or the one running on a connector.
    RemoteStopTransaction {
        /// The transaction's id.
        #[serde(default, deserialize_with = "crate::model::whole::opt_i64")]
        transaction_id: Option<i64>,
        /// The connector whose running transaction to stop.
        #[serde(default, deserialize_with = "crate::model::whole::opt_u32")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1024))]
        connector: Option<u32>,
    },
}

/// The kinds of reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ResetKind {
    /// Stop transactions, then restart the software.
    Soft,
    /// Restart the hardware.
    Hard,
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

/// The messages an operator may ask for with TriggerMessage (OCPP 1.6 `MessageTrigger`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(clippy::enum_variant_names)]
pub enum TriggerKind {
    /// `BootNotification`.
    BootNotification,
    /// `DiagnosticsStatusNotification`.
    DiagnosticsStatusNotification,
    /// `FirmwareStatusNotification`.
    FirmwareStatusNotification,
    /// `Heartbeat`.
    Heartbeat,
    /// `MeterValues`.
    MeterValues,
    /// `StatusNotification`.
    StatusNotification,
}

/// What csm knows of a connected charger that a command is checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChargerFacts {
    /// The connectors it has reported, in order (empty: none yet).
    pub connectors: Vec<u32>,
    /// Its running transactions: (connector, transaction id).
    pub transactions: Vec<(u32, i64)>,
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

/// The configuration key chargers keep secret: written, never read back.
pub const SECRET_KEY: &str = "AuthorizationKey";

/// At most this many keys in one GetConfiguration.
const MAX_KEYS: usize = 100;

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

impl Command {
    /// The OCPP 1.6 action it becomes.
    pub fn action(&self) -> &'static str {
        match self {
            Command::Reset { .. } => "Reset",
            Command::UnlockConnector { .. } => "UnlockConnector",
            Command::ChangeAvailability { .. } => "ChangeAvailability",
            Command::GetConfiguration { .. } => "GetConfiguration",
            Command::ChangeConfiguration { .. } => "ChangeConfiguration",
            Command::TriggerMessage { .. } => "TriggerMessage",
            Command::ClearCache => "ClearCache",
            Command::RemoteStartTransaction { .. } => "RemoteStartTransaction",
            Command::RemoteStopTransaction { .. } => "RemoteStopTransaction",
        }
    }

    /// Checks the command on its own: lengths, connector numbers, the type of a standard
    /// configuration key's value and whether it may be changed.
    pub fn check(&self) -> Result<(), InvalidInput> {
        match self {
            Command::Reset { .. } | Command::ClearCache => Ok(()),
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
            Command::TriggerMessage { connector, .. } => {
                connector.map_or(Ok(()), |c| check_connector("connector", c, false))
            }
            Command::RemoteStartTransaction { connector, id_tag } => {
                check_text("id_tag", id_tag, 20)?;
                connector.map_or(Ok(()), |c| check_connector("connector", c, false))
            }
            Command::RemoteStopTransaction {
                transaction_id,
                connector,
            } => match (transaction_id, connector) {
                (Some(_), None) => Ok(()),
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

    /// The call's action and payload for a charger that has said `facts` (checked against
    /// them: a connector it has not reported, a connector with no transaction to stop).
    pub fn to_call(
        &self,
        station: &str,
        facts: &ChargerFacts,
    ) -> Result<(&'static str, Value), InvalidInput> {
        self.check()?;
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
        let payload = match self {
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
            Command::RemoteStartTransaction { connector, id_tag } => match connector {
                Some(c) => json!({"idTag": id_tag, "connectorId": c}),
                None => json!({"idTag": id_tag}),
            },
            Command::RemoteStopTransaction {
                transaction_id: Some(id),
                ..
            } => json!({"transactionId": id}),
            Command::RemoteStopTransaction { connector, .. } => {
                let connector = connector.unwrap_or_default();
                let running = facts
                    .transactions
                    .iter()
                    .find(|(c, _)| *c == connector)
                    .map(|(_, id)| *id)
                    .ok_or_else(|| {
                        invalid(
                            "connector",
                            format!(
                                "{connector}: no transaction runs on it at charge point {station}"
                            ),
                        )
                    })?;
                json!({"transactionId": running})
            }
        };
        Ok((self.action(), payload))
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

    fn facts() -> ChargerFacts {
        ChargerFacts {
            connectors: vec![1, 2],
            transactions: vec![(2, 77)],
        }
    }

    #[test]
    fn commands_read_as_operators_write_them_and_become_ocpp_calls() {
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
        ];
        for (text, action, payload) in cases {
            let command = command(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                command.to_call("CP", &facts()),
                Ok((action, payload)),
                "{text}"
            );
        }
    }

    #[test]
    fn a_command_that_cannot_be_right_is_refused_with_the_reason() {
        let refused = |text: &str| {
            let command = command(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            command.to_call("CP", &facts()).unwrap_err().to_string()
        };
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
        assert!(
            refused(r#"{"command":"RemoteStartTransaction","id_tag":"123456789012345678901"}"#)
                .contains("at most 20")
        );
        // Types and names are the parser's: an unknown command, field or value.
        assert!(command(r#"{"command":"Explode"}"#).is_err());
        assert!(command(r#"{"command":"Reset","type":"Gentle"}"#).is_err());
        assert!(command(r#"{"command":"Reset","type":"Soft","force":true}"#).is_err());
        assert!(command(r#"{"command":"UnlockConnector","connector":"one"}"#).is_err());
    }

    #[test]
    fn a_charger_that_reported_no_connectors_yet_is_not_held_to_any() {
        let command = command(r#"{"command":"UnlockConnector","connector":3}"#).unwrap();
        assert!(command.to_call("CP", &ChargerFacts::default()).is_ok());
    }
}
