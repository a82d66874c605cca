//! A JSON value as the profile reads it for a code or a message, and as an error describes it.

use sonic_rs::{JsonContainerTrait, JsonNumberTrait, JsonType, JsonValueTrait, Value};

/// A status code (or flag, or message) as text: strings trimmed, whole numbers without a
/// fraction, booleans as `true`/`false`. Objects, arrays and `null` have no text.
pub fn code_text(value: &Value) -> Option<String> {
    match value.get_type() {
        JsonType::String => value.as_str().map(|s| s.trim().to_owned()),
        JsonType::Boolean => value.as_bool().map(|b| b.to_string()),
        JsonType::Number => {
            let number = value.as_number()?;
            match (number.as_u64(), number.as_i64(), number.as_f64()) {
                (Some(u), _, _) => Some(u.to_string()),
                (_, Some(i), _) => Some(i.to_string()),
                (_, _, f) => f.map(float_text),
            }
        }
        _ => None,
    }
}

/// `10.0` reads as the code `10`.
pub(super) fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Describes a JSON value briefly for an error message.
pub(super) fn describe(value: Option<&Value>) -> String {
    let shorten = |s: String| {
        if s.chars().count() > 60 {
            format!("{}…", s.chars().take(60).collect::<String>())
        } else {
            s
        }
    };
    let Some(value) = value else {
        return "nothing".into();
    };
    match value.get_type() {
        JsonType::Null => "null".into(),
        JsonType::Boolean => format!("the boolean {}", value.is_true()),
        JsonType::Number => match value.as_number() {
            Some(n) if n.is_f64() => format!("the number {}", n.as_f64().unwrap_or(f64::NAN)),
            Some(n) => format!("the number {n}"),
            None => "a number".into(),
        },
        JsonType::String => format!(
            "the string {}",
            shorten(format!("{:?}", value.as_str().unwrap_or_default()))
        ),
        JsonType::Array => format!(
            "an array of {} elements",
            value.as_array().map_or(0, |a| a.len())
        ),
        JsonType::Object => {
            let keys: Vec<&str> = value
                .as_object()
                .map(|o| o.iter().map(|(k, _)| k).take(8).collect())
                .unwrap_or_default();
            if keys.is_empty() {
                "an empty object".into()
            } else {
                shorten(format!("an object with keys {}", keys.join(", ")))
            }
        }
    }
}
