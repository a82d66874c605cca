//! OCPP-J frames: `[2, uniqueId, action, payload]` (a call), `[3, uniqueId, payload]` (its
//! result), `[4, uniqueId, errorCode, errorDescription, errorDetails]` (its error). Lenient on
//! input — a frame that cannot be read still gets an answer naming what was wrong — and exact
//! on output.

use serde_json::Value;

use super::Version;

/// The error codes of OCPP-J (1.6 section 4.2.3; 2.0.1 part 4, 4.3, which corrects two
/// spellings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The action is not known to the receiver.
    NotImplemented,
    /// The action is known but not supported.
    NotSupported,
    /// Something went wrong inside the receiver.
    InternalError,
    /// The payload is incomplete.
    ProtocolError,
    /// The payload is syntactically right but breaks a security rule.
    SecurityError,
    /// The payload is syntactically incorrect or not the PDU's structure.
    FormationViolation,
    /// A field holds a value it may not.
    PropertyConstraintViolation,
    /// A field breaks its occurrence constraints.
    OccurenceConstraintViolation,
    /// A field has the wrong data type.
    TypeConstraintViolation,
    /// Any other error.
    GenericError,
}

impl ErrorCode {
    /// The code as OCPP-J of `version` spells it: 1.6's `FormationViolation` and
    /// `OccurenceConstraintViolation` are 2.0.1's `FormatViolation` and
    /// `OccurrenceConstraintViolation`.
    pub fn name(self, version: Version) -> &'static str {
        match (self, version) {
            (ErrorCode::FormationViolation, Version::V201) => return "FormatViolation",
            (ErrorCode::OccurenceConstraintViolation, Version::V201) => {
                return "OccurrenceConstraintViolation";
            }
            _ => {}
        }
        match self {
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotSupported => "NotSupported",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::ProtocolError => "ProtocolError",
            ErrorCode::SecurityError => "SecurityError",
            ErrorCode::FormationViolation => "FormationViolation",
            ErrorCode::PropertyConstraintViolation => "PropertyConstraintViolation",
            ErrorCode::OccurenceConstraintViolation => "OccurenceConstraintViolation",
            ErrorCode::TypeConstraintViolation => "TypeConstraintViolation",
            ErrorCode::GenericError => "GenericError",
        }
    }
}

/// A frame from a charger.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// A call csm must answer.
    Call {
        /// Its unique id.
        id: String,
        /// The action (`BootNotification`, …).
        action: String,
        /// The payload (an object).
        payload: Value,
    },
    /// The result of a call csm made.
    Result {
        /// The id of csm's call.
        id: String,
        /// The payload.
        payload: Value,
    },
    /// The error of a call csm made.
    Error {
        /// The id of csm's call.
        id: String,
        /// The code.
        code: String,
        /// The description.
        description: String,
    },
}

/// A frame that cannot be read: what to answer.
#[derive(Clone, Debug, PartialEq)]
pub struct BadFrame {
    /// The unique id, when one could be read (`"-1"` otherwise, as OCPP-J implementations
    /// answer).
    pub id: String,
    /// The code.
    pub code: ErrorCode,
    /// What was wrong.
    pub description: String,
}

/// Longest unique id OCPP-J allows.
pub const MAX_ID_LEN: usize = 36;

/// Reads a frame.
pub fn parse(text: &str) -> Result<Incoming, BadFrame> {
    let value: Value = serde_json::from_str(text).map_err(|e| BadFrame {
        id: guess_id(text),
        code: ErrorCode::FormationViolation,
        description: format!("not JSON: {e}"),
    })?;
    let Value::Array(items) = value else {
        return Err(bad(
            "-1",
            ErrorCode::FormationViolation,
            "a frame is a JSON array",
        ));
    };
    let id = match items.get(1) {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID_LEN => id.clone(),
        Some(Value::String(id)) if id.len() > MAX_ID_LEN => {
            return Err(bad(
                &id[..MAX_ID_LEN],
                ErrorCode::FormationViolation,
                "the unique id is longer than 36 characters",
            ));
        }
        // Some firmware sends a number.
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(bad(
                "-1",
                ErrorCode::FormationViolation,
                "the second element, the unique id, is not a string",
            ));
        }
    };
    match (items.first().and_then(Value::as_u64), items.len()) {
        (Some(2), 4) => {
            let Some(action) = items[2].as_str() else {
                return Err(bad(
                    &id,
                    ErrorCode::FormationViolation,
                    "the action is not a string",
                ));
            };
            let payload = items[3].clone();
            if !payload.is_object() {
                return Err(bad(
                    &id,
                    ErrorCode::FormationViolation,
                    "the payload is not a JSON object",
                ));
            }
            Ok(Incoming::Call {
                id,
                action: action.to_owned(),
                payload,
            })
        }
        (Some(3), 3) => Ok(Incoming::Result {
            id,
            payload: items[2].clone(),
        }),
        (Some(4), 4 | 5) => Ok(Incoming::Error {
            id,
            code: items[2].as_str().unwrap_or_default().to_owned(),
            description: items[3].as_str().unwrap_or_default().to_owned(),
        }),
        (Some(2..=4), n) => Err(bad(
            &id,
            ErrorCode::FormationViolation,
            &format!("a frame of this type does not have {n} elements"),
        )),
        _ => Err(bad(
            &id,
            ErrorCode::FormationViolation,
            "the first element is not 2, 3 or 4",
        )),
    }
}

fn bad(id: &str, code: ErrorCode, description: &str) -> BadFrame {
    BadFrame {
        id: id.to_owned(),
        code,
        description: description.to_owned(),
    }
}

/// The unique id of a frame too broken to parse (`[2, "x-1", "Heartbeat"` → `x-1`), else `-1`.
fn guess_id(text: &str) -> String {
    let after = text
        .trim_start()
        .strip_prefix('[')
        .and_then(|t| t.split_once(','))
        .map(|(_, rest)| rest);
    after
        .and_then(|rest| {
            let rest = rest.trim_start().strip_prefix('"')?;
            let (id, _) = rest.split_once('"')?;
            (!id.is_empty() && id.len() <= MAX_ID_LEN).then(|| id.to_owned())
        })
        .unwrap_or_else(|| "-1".into())
}

/// `[2, id, action, payload]`: a call of csm's.
pub fn call(id: &str, action: &str, payload: &Value) -> String {
    Value::Array(vec![2.into(), id.into(), action.into(), payload.clone()]).to_string()
}

/// `[3, id, payload]`.
pub fn result(id: &str, payload: &Value) -> String {
    Value::Array(vec![3.into(), id.into(), payload.clone()]).to_string()
}

/// `[4, id, code, description, {}]`, the code as `version` spells it.
pub fn error(version: Version, id: &str, code: ErrorCode, description: &str) -> String {
    Value::Array(vec![
        4.into(),
        id.into(),
        code.name(version).into(),
        description.into(),
        Value::Object(Default::default()),
    ])
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_and_broken_ones_answered() {
        let call = parse(include_str!("../../../tests/fixtures/ocpp/boot.json")).unwrap();
        assert!(
            matches!(call, Incoming::Call { ref id, ref action, .. } if id == "b-1" && action == "BootNotification")
        );
        let broken = parse(include_str!(
            "../../../tests/fixtures/ocpp/bad-frame-truncated.txt"
        ))
        .unwrap_err();
        assert_eq!(
            (broken.id.as_str(), broken.code),
            ("x-1", ErrorCode::FormationViolation)
        );
        assert_eq!(parse("{}").unwrap_err().id, "-1");
        assert_eq!(parse("[2, \"a\", \"Heartbeat\", []]").unwrap_err().id, "a");
        assert!(matches!(
            parse("[3, \"c\", {}]"),
            Ok(Incoming::Result { .. })
        ));
        assert!(matches!(
            parse("[4, \"c\", \"GenericError\", \"no\", {}]"),
            Ok(Incoming::Error { .. })
        ));
        assert_eq!(
            error(Version::V16, "x-2", ErrorCode::NotImplemented, "no"),
            r#"[4,"x-2","NotImplemented","no",{}]"#
        );
        assert_eq!(
            error(Version::V201, "x-3", ErrorCode::FormationViolation, "no"),
            r#"[4,"x-3","FormatViolation","no",{}]"#
        );
        assert_eq!(result("t", &serde_json::json!({})), r#"[3,"t",{}]"#);
    }
}
