//! Errors shared by every layer: invalid input. Each adapter layer has its own error enum
//! (`StoreError`, `CacheError`, `ChargerError`, `SettingsError`) beside its trait.

use std::fmt;

/// A value given to csm (by a user, a file or a vendor) that csm refuses, with the field it was
/// in and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InvalidInput {
    /// What the value was (`station id`, `lat`, `line 4: vendor`, ...).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InvalidInput {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the field with where it came from (`line 4`).
    pub fn at(mut self, location: impl fmt::Display) -> Self {
        self.field = format!("{location}: {}", self.field);
        self
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.message)
    }
}

/// Removes the password of a URL (`mysql://root:secret@db/csm` → `mysql://root:***@db/csm`)
/// so it can be logged or shown in an error.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Setting a password only fails for URLs that cannot have one.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        // Not a URL: show only the part before any `@`, which is where credentials would be.
        Err(_) => match raw.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => raw.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed_from_urls() {
        assert_eq!(
            redact_url("mysql://root:hunter2@127.0.0.1:3306/csm"),
            "mysql://root:***@127.0.0.1:3306/csm"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("not a url:pw@host"), "***@host");
    }

    #[test]
    fn invalid_input_reads_as_a_sentence() {
        let err = InvalidInput::new("lat", "is outside -90..90").at("line 3");
        assert_eq!(err.to_string(), "line 3: lat is outside -90..90");
    }
}
