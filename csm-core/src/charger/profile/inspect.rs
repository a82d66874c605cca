//! What each pointer of a profile finds in one answer, for checking a new profile by hand
//! (`csm-cli vendors check NAME STATION_ID`).
//!
//! A wrong pointer of an optional measurement is not an error when csm reads an answer: the
//! vendor may simply not send that value, and csm shows it as not sent. Checking a profile
//! against a real answer shows each pointer with what it found, and in how many ports.

use serde::Serialize;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use super::read::{Document, parse, pointer};
use super::values::describe;
use super::{ElementKind, VendorProfile};
use crate::charger::ChargerError;
use crate::model::PortReading;

/// What one pointer of a profile found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The profile's key (`success.pointer`, `ports.fields.voltage`).
    pub key: String,
    /// The JSON Pointer (relative to one port for `ports.fields.*`).
    pub pointer: String,
    /// What it found: the value, or in how many ports and the first value.
    pub found: String,
    /// Whether this pointer found nothing where the answer should have something.
    pub missing: bool,
}

/// A profile read against one answer.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// What each pointer found.
    pub findings: Vec<Finding>,
    /// The ports csm reads from the answer, or why it cannot.
    pub outcome: Result<Vec<PortReading>, ChargerError>,
}

impl VendorProfile {
    /// What each pointer of the profile finds in `bytes` (an answer of `url`), and what csm
    /// reads from it.
    pub fn inspect(&self, url: &str, bytes: &[u8]) -> Inspection {
        let body = match parse(bytes) {
            Ok(body) => body,
            Err(error) => {
                return Inspection {
                    findings: Vec::new(),
                    outcome: Err(self.not_json(url, error)),
                };
            }
        };
        let mut findings = Vec::new();
        let mut one = |key: &str, at: &str, found: Option<&Document>| {
            findings.push(Finding {
                key: key.to_owned(),
                pointer: at.to_owned(),
                found: match found {
                    Some(value) => describe(Some(value)),
                    None => "nothing".into(),
                },
                missing: found.is_none(),
            });
        };
        if let Some(check) = &self.success {
            one(
                "success.pointer",
                &check.pointer,
                pointer(&body, &check.pointer),
            );
            if let Some(message) = &check.message_pointer {
                one("success.message_pointer", message, pointer(&body, message));
            }
        }
        let list = pointer(&body, &self.ports.pointer);
        one("ports.pointer", &self.ports.pointer, list);
        let elements: Vec<&Document> = list
            .and_then(|l| l.as_array())
            .map(|a| a.iter().skip(self.ports.skip).collect())
            .unwrap_or_default();
        if self.ports.element == ElementKind::Object {
            let fields = &self.ports.fields;
            let named = [
                ("number", fields.number.as_deref()),
                ("status", fields.status.as_deref()),
                ("voltage", fields.voltage.as_ref().map(|f| f.pointer())),
                ("current", fields.current.as_ref().map(|f| f.pointer())),
                ("power", fields.power.as_ref().map(|f| f.pointer())),
                (
                    "energy_kwh",
                    fields.energy_kwh.as_ref().map(|f| f.pointer()),
                ),
                (
                    "session_ends_at",
                    fields.session_ends_at.as_ref().map(|f| f.pointer()),
                ),
            ];
            for (name, at) in named {
                let Some(at) = at else { continue };
                findings.push(field_finding(name, at, &elements));
            }
        }
        let outcome = self
            .check_success(&body)
            .and_then(|()| self.read_ports(&body));
        Inspection { findings, outcome }
    }
}

/// In how many of the ports a field's pointer finds a value, and the first it finds.
fn field_finding(name: &str, at: &str, elements: &[&Document]) -> Finding {
    let values: Vec<&Document> = elements
        .iter()
        .filter_map(|element| pointer(element, at))
        .filter(|value| !value.is_null() && value.as_str() != Some(""))
        .collect();
    let found = match values.first() {
        None if elements.is_empty() => "no ports to look in".to_owned(),
        None => format!(
            "nothing in any of the {} ports: csm shows it as not sent",
            elements.len()
        ),
        Some(first) => format!(
            "in {} of {} ports; the first is {}",
            values.len(),
            elements.len(),
            describe(Some(first))
        ),
    };
    Finding {
        key: format!("ports.fields.{name}"),
        pointer: at.to_owned(),
        found,
        missing: values.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(toml: &str) -> VendorProfile {
        let text = format!(
            "name = \"t\"\n[request]\nurl = \"http://x/{{station_id}}\"\n{toml}\n[status.codes]\n\"0\" = \"free\"\n\"1\" = \"occupied\""
        );
        VendorProfile::from_toml(&text, "t").unwrap()
    }

    #[test]
    fn each_pointer_says_what_it_found() {
        let p = profile(
            "[success]\npointer = \"/code\"\nequals = 0\nmessage_pointer = \"/msg\"\n\
             [ports]\npointer = \"/data/ports\"\n[ports.fields]\nnumber = \"/no\"\nstatus = \"/s\"\nvoltage = \"/volts\"\ncurrent = \"/amps\"",
        );
        let answer = br#"{"code":0,"msg":"ok","data":{"ports":[{"no":1,"s":0,"voltage":220.5,"amps":null},{"no":2,"s":1,"voltage":219,"amps":3.5}]}}"#;
        let inspection = p.inspect("http://x/S1", answer);
        let found = |key: &str| {
            inspection
                .findings
                .iter()
                .find(|f| f.key == key)
                .unwrap_or_else(|| panic!("{key}: {:?}", inspection.findings))
                .clone()
        };
        assert_eq!(found("success.pointer").found, "the number 0");
        assert_eq!(found("ports.pointer").found, "an array of 2 elements");
        assert_eq!(
            found("ports.fields.status").found,
            "in 2 of 2 ports; the first is the number 0"
        );
        // The vendor calls it "voltage", the profile "/volts": the one a user must see.
        let volts = found("ports.fields.voltage");
        assert!(volts.missing);
        assert_eq!(
            volts.found,
            "nothing in any of the 2 ports: csm shows it as not sent"
        );
        assert_eq!(
            found("ports.fields.current").found,
            "in 1 of 2 ports; the first is the number 3.5"
        );
        let ports = inspection.outcome.unwrap();
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].voltage, None);

        let broken = p.inspect("http://x/S1", br#"{"msg":"ok"}"#);
        assert!(broken.findings[0].missing);
        assert!(matches!(
            broken.outcome,
            Err(ChargerError::NoSuccessFlag { .. })
        ));
        let not_json = p.inspect("http://x/S1", b"<html>");
        assert!(matches!(
            not_json.outcome,
            Err(ChargerError::NotJson { .. })
        ));
    }
}
