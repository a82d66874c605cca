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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_reads_as_a_sentence() {
        let err = InvalidInput::new("lat", "is outside -90..90").at("line 3");
        assert_eq!(err.to_string(), "line 3: lat is outside -90..90");
    }
}
