//! Checking a profile beyond what TOML parsing can: names, JSON Pointers, URL placeholders,
//! scales. A profile that fails is refused with the field at fault, before csm uses it.

use super::{ElementKind, FieldsSpec, VendorProfile, value_text};
use crate::model::validate_vendor_name;

impl VendorProfile {
    /// Checks what TOML parsing cannot: names, pointers, placeholders, scales.
    pub fn validate(&self) -> Result<(), String> {
        validate_vendor_name(&self.name).map_err(|e| format!("name: {}", e.message))?;
        self.validate_request()?;
        if let Some(base) = &self.base_url {
            check_base_url(base).map_err(|e| format!("base_url: {e}"))?;
        }
        if let Some(success) = &self.success {
            check_pointer("success.pointer", &success.pointer)?;
            if let Some(message) = &success.message_pointer {
                check_pointer("success.message_pointer", message)?;
            }
            if value_text(&success.equals).is_none() {
                return Err("success.equals must be a string, number or boolean".into());
            }
        }
        self.validate_ports()?;
        self.validate_station_list()
    }

    /// The request: its placeholders, and that it names the station somewhere.
    fn validate_request(&self) -> Result<(), String> {
        let request = &self.request;
        check_template("request.url", &request.url, true)?;
        let names_station = request.url.contains("{station_id}")
            || request
                .body
                .as_deref()
                .is_some_and(|body| body.contains("{station_id}"));
        if !names_station {
            return Err("request.url (or request.body) must contain {station_id}".into());
        }
        if let Some(body) = &request.body {
            check_template("request.body", body, true)?;
        }
        for (name, value) in &request.headers {
            check_template(&format!("request.headers.{name}"), value, false)?;
        }
        Ok(())
    }

    /// The port list and the fields of its elements.
    fn validate_ports(&self) -> Result<(), String> {
        let ports = &self.ports;
        check_pointer("ports.pointer", &ports.pointer)?;
        let fields = &ports.fields;
        if ports.element == ElementKind::Code {
            if *fields != FieldsSpec::default() {
                return Err("ports.fields must be empty when ports.element = \"code\" (the element is the status code and its position the port number)".into());
            }
            return Ok(());
        }
        let status = fields
            .status
            .as_deref()
            .ok_or("ports.fields.status is required when ports.element = \"object\"")?;
        check_pointer("ports.fields.status", status)?;
        if let Some(number) = &fields.number {
            check_pointer("ports.fields.number", number)?;
        }
        let numbers = [
            ("voltage", &fields.voltage),
            ("current", &fields.current),
            ("power", &fields.power),
            ("energy_kwh", &fields.energy_kwh),
        ];
        for (name, field) in numbers {
            if let Some(field) = field {
                check_pointer(&format!("ports.fields.{name}"), field.pointer())?;
                if !(field.scale().is_finite() && field.scale() != 0.0) {
                    return Err(format!(
                        "ports.fields.{name}.scale must be a non-zero number"
                    ));
                }
            }
        }
        if let Some(field) = &fields.session_ends_at {
            check_pointer("ports.fields.session_ends_at", field.pointer())?;
        }
        Ok(())
    }

    /// The station list, if the profile can list stations.
    fn validate_station_list(&self) -> Result<(), String> {
        let Some(list) = &self.stations else {
            return Ok(());
        };
        check_template("stations.url", &list.url, true)?;
        for (name, pointer) in [
            ("stations.pointer", Some(&list.pointer)),
            ("stations.id", Some(&list.id)),
            ("stations.name", Some(&list.name)),
            ("stations.ports", list.ports.as_ref()),
            ("stations.address", list.address.as_ref()),
            ("stations.lat", list.lat.as_ref()),
            ("stations.lng", list.lng.as_ref()),
        ] {
            if let Some(pointer) = pointer {
                check_pointer(name, pointer)?;
            }
        }
        Ok(())
    }
}

fn check_pointer(field: &str, pointer: &str) -> Result<(), String> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{field} = {pointer:?} is not a JSON Pointer; pointers start with / (e.g. \"/data/portList\")"
        ))
    }
}

fn check_base_url(base: &str) -> Result<(), String> {
    let parsed = url::Url::parse(base).map_err(|e| format!("{base:?} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{base:?} must start with http:// or https://"));
    }
    Ok(())
}

/// Checks the `{...}` placeholders and `${VAR}` references of a template.
fn check_template(field: &str, template: &str, station: bool) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let is_env = start > 0 && rest.as_bytes()[start - 1] == b'$';
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("{field}: a {{ is not closed"));
        };
        let name = &rest[start + 1..start + len];
        let known = if is_env {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        } else {
            name == "base_url" || (station && name == "station_id")
        };
        // Bodies are JSON: their own braces are not placeholders.
        let json_brace = field.ends_with("body") && !is_env;
        if !known && !json_brace {
            return Err(format!(
                "{field}: unknown placeholder {{{name}}}; use {{base_url}}, {{station_id}} or ${{ENV_VAR}} (upper-case)"
            ));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}
