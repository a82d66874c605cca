//! The OCPP versions csm speaks, each named by its WebSocket subprotocol.

use std::fmt;
use std::str::FromStr;

/// An OCPP version a charger and csm agree on when its WebSocket opens.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Version {
    /// OCPP 1.6J (subprotocol `ocpp1.6`).
    #[serde(rename = "1.6")]
    V16,
    /// OCPP 2.0.1 (subprotocol `ocpp2.0.1`).
    #[default]
    #[serde(rename = "2.0.1")]
    V201,
}

impl Version {
    /// Every version, newest first.
    pub const ALL: [Version; 2] = [Version::V201, Version::V16];

    /// The version's number (`1.6`, `2.0.1`), as the registry and the API show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V16 => "1.6",
            Version::V201 => "2.0.1",
        }
    }

    /// The WebSocket subprotocol that names it.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::V16 => "ocpp1.6",
            Version::V201 => "ocpp2.0.1",
        }
    }

    /// The version a subprotocol names (any case: some firmware offers `OCPP1.6`).
    pub fn of_subprotocol(token: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.subprotocol().eq_ignore_ascii_case(token))
    }

    /// Of the subprotocols a charger offers, the one csm answers: `preferred` when it is
    /// offered, else the first offered that csm speaks. The token comes back as offered.
    pub fn choose(offered: &[String], preferred: Version) -> Option<(Version, &str)> {
        let known = || {
            offered
                .iter()
                .filter_map(|token| Some((Self::of_subprotocol(token)?, token.as_str())))
        };
        known()
            .find(|(version, _)| *version == preferred)
            .or_else(|| known().next())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Version {
    type Err = String;

    /// Reads `1.6` or `2.0.1` (also as the subprotocol, `ocpp1.6`, `ocpp2.0.1`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == text)
            .or_else(|| Self::of_subprotocol(text))
            .ok_or_else(|| format!("{text:?} is not an OCPP version csm speaks: 1.6 or 2.0.1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(tokens: &[&str]) -> Vec<String> {
        tokens.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn the_preferred_version_wins_when_offered_and_the_token_comes_back_as_sent() {
        let both = offered(&["ocpp1.6", "ocpp2.0.1"]);
        assert_eq!(
            Version::choose(&both, Version::V201),
            Some((Version::V201, "ocpp2.0.1"))
        );
        assert_eq!(
            Version::choose(&both, Version::V16),
            Some((Version::V16, "ocpp1.6"))
        );
        let old = offered(&["OCPP1.6"]);
        assert_eq!(
            Version::choose(&old, Version::V201),
            Some((Version::V16, "OCPP1.6"))
        );
        assert_eq!(Version::choose(&offered(&["ocpp2.0"]), Version::V201), None);
        assert_eq!("2.0.1".parse(), Ok(Version::V201));
        assert_eq!("ocpp1.6".parse(), Ok(Version::V16));
        assert!(
            "2.1"
                .parse::<Version>()
                .unwrap_err()
                .contains("1.6 or 2.0.1")
        );
    }
}
