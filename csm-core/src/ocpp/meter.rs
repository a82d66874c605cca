//! MeterValues, read as real chargers send them: by measurand (absent: the energy register),
//! in the unit given (1.6's `unit`, 2.0.1's `unitOfMeasure` with its power-of-ten
//! `multiplier`) or the measurand's default (W, Wh, A, V), kW and kWh scaled, values sent
//! as text or as numbers, per-phase samples combined (current and power summed over the
//! phases present, voltage averaged; the neutral never counts), `Celcius` as well as
//! `Celsius`, and an empty `sampledValue` changing nothing.

use serde_json::Value;

/// What one MeterValues message says of a connector (each `None` when it says nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measures {
    /// Volts.
    pub voltage: Option<f64>,
    /// Amperes.
    pub current: Option<f64>,
    /// Watts.
    pub power: Option<f64>,
    /// The meter's active energy import register, kWh.
    pub energy_register_kwh: Option<f64>,
}

/// Totals and per-phase values of one measurand.
#[derive(Default)]
struct Collected {
    total: Option<f64>,
    phases: Vec<f64>,
}

impl Collected {
    fn add(&mut self, phase: Option<&str>, value: f64) {
        match phase {
            None => self.total = Some(value),
            // The neutral's current is not a phase's load.
            Some("N") => {}
            Some(_) => self.phases.push(value),
        }
    }

    /// The total when sent, else the phases summed.
    fn summed(&self) -> Option<f64> {
        self.total
            .or_else(|| (!self.phases.is_empty()).then(|| self.phases.iter().sum()))
    }

    /// The total when sent, else the mean of the phases.
    fn averaged(&self) -> Option<f64> {
        self.total.or_else(|| {
            (!self.phases.is_empty())
                .then(|| self.phases.iter().sum::<f64>() / self.phases.len() as f64)
        })
    }
}

/// Reads the `meterValue` list of a MeterValues (or the `transactionData` of a
/// StopTransaction). Of several timestamps, the last sample of each measurand counts.
pub fn read(meter_values: &Value) -> Measures {
    let mut voltage = Collected::default();
    let mut current = Collected::default();
    let mut power = Collected::default();
    let mut energy = Collected::default();
    for entry in meter_values.as_array().into_iter().flatten() {
        let samples = entry.get("sampledValue").and_then(Value::as_array);
        if samples.is_none_or(|s| s.is_empty()) {
            continue;
        }
        // A later timestamp replaces what an earlier one said.
        let (mut v, mut c, mut p, mut e) = Default::default();
        for sample in samples.into_iter().flatten() {
            let Some(value) = number(sample.get("value")) else {
                continue;
            };
            let measurand = sample
                .get("measurand")
                .and_then(Value::as_str)
                .unwrap_or("Energy.Active.Import.Register");
            let Some((unit, factor)) = unit_of(sample) else {
                continue;
            };
            let value = value * factor;
            let phase = sample.get("phase").and_then(Value::as_str);
            let (target, scale): (&mut Collected, Option<f64>) = match measurand {
                "Voltage" => (&mut v, scale(unit, "V", None)),
                "Current.Import" => (&mut c, scale(unit, "A", None)),
                "Power.Active.Import" => (&mut p, scale(unit, "W", Some("kW"))),
                "Energy.Active.Import.Register" => {
                    (&mut e, scale(unit, "Wh", Some("kWh")).map(|s| s / 1000.0))
                }
                // Temperature (in Celsius or the specification's Celcius), SoC, frequency, …
                _ => continue,
            };
            if let Some(scale) = scale {
                target.add(phase, value * scale);
            }
        }
        for (kept, new) in [
            (&mut voltage, v),
            (&mut current, c),
            (&mut power, p),
            (&mut energy, e),
        ] {
            if new.total.is_some() || !new.phases.is_empty() {
                *kept = new;
            }
        }
    }
    Measures {
        voltage: voltage.averaged(),
        current: current.summed(),
        power: power.summed(),
        energy_register_kwh: energy.summed(),
    }
}

/// A sample's unit and the factor its value is sent in: 1.6's `unit`, or 2.0.1's
/// `unitOfMeasure` `{unit, multiplier}` (the value × 10^multiplier). `None` for a multiplier
/// no meter uses (beyond ±18).
fn unit_of(sample: &Value) -> Option<(Option<&str>, f64)> {
    let Some(measure) = sample.get("unitOfMeasure") else {
        return Some((sample.get("unit").and_then(Value::as_str), 1.0));
    };
    let multiplier = match measure.get("multiplier") {
        None | Some(Value::Null) => 0,
        Some(m) => m.as_i64().filter(|m| m.abs() <= 18)?,
    };
    let unit = measure.get("unit").and_then(Value::as_str);
    Some((unit, 10f64.powi(multiplier as i32)))
}

/// The factor to the base unit: 1 for `base` (or no unit), 1,000 for `kilo`, `None` for a
/// unit csm does not read for this measurand.
fn scale(unit: Option<&str>, base: &str, kilo: Option<&str>) -> Option<f64> {
    match unit {
        None => Some(1.0),
        Some(u) if u == base => Some(1.0),
        Some(u) if Some(u) == kilo => Some(1000.0),
        Some(_) => None,
    }
}

/// A sampled value, sent as text (as the specification says) or as a number. A value no
/// meter can produce (`NaN`, `inf`, `1e308` kW) is read as sent: the refresh drops it as
/// impossible and says so ([`crate::measure`]).
fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::String(text) => text.trim().parse::<f64>().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(fixture: &str) -> Measures {
        let frame: Value = serde_json::from_str(fixture).unwrap();
        read(&frame[3]["meterValue"])
    }

    fn near(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    #[test]
    fn meter_values_are_read_as_real_chargers_send_them() {
        let three = of(include_str!(
            "../../../tests/fixtures/ocpp/meter-three-phase.json"
        ));
        assert!(
            near(three.voltage, (229.8 + 231.2 + 230.4) / 3.0),
            "{three:?}"
        );
        assert!(
            near(three.current, 48.0),
            "the neutral is not added: {three:?}"
        );
        assert!(near(three.power, 11_040.0));
        assert!(near(three.energy_register_kwh, 1_523.4));
        let kilo = of(include_str!(
            "../../../tests/fixtures/ocpp/meter-kw-and-kwh.json"
        ));
        assert!(
            near(kilo.power, 7_360.0)
                && near(kilo.energy_register_kwh, 12.5)
                && near(kilo.current, 32.0),
            "{kilo:?}"
        );
        let bare = of(include_str!(
            "../../../tests/fixtures/ocpp/meter-no-unit-no-measurand.json"
        ));
        assert!(
            near(bare.power, 3_680.0) && near(bare.energy_register_kwh, 20.48),
            "{bare:?}"
        );
        let odd = of(include_str!(
            "../../../tests/fixtures/ocpp/meter-celcius-and-empty.json"
        ));
        assert!(near(odd.power, 3_600.0), "{odd:?}");
        assert_eq!((odd.voltage, odd.current), (None, None));
        let numbers = read(
            &serde_json::json!([{"sampledValue": [{"value": 12, "measurand": "Current.Import"}]}]),
        );
        assert!(near(numbers.current, 12.0));
        let nothing = read(
            &serde_json::json!([{"sampledValue": [{"value": "x", "measurand": "Voltage"}]}, {}]),
        );
        assert_eq!(nothing, Measures::default());
    }

    #[test]
    fn units_of_measure_with_multipliers_are_read_as_ocpp_2_0_1_sends_them() {
        let frame: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/ocpp201/transaction-updated-three-phase.json"
        ))
        .unwrap();
        let three = read(&frame[3]["meterValue"]);
        assert!(near(three.voltage, (229.8 + 231.2 + 230.4) / 3.0));
        assert!(near(three.current, 48.0), "{three:?}");
        assert!(near(three.power, 11_040.0), "multiplier 3: {three:?}");
        assert!(near(three.energy_register_kwh, 1_525.2));
        let plain = of(include_str!(
            "../../../tests/fixtures/ocpp201/meter-values-default-units.json"
        ));
        assert!(
            near(plain.power, 3_680.0)
                && near(plain.current, 16.0)
                && near(plain.voltage, 230.0)
                && near(plain.energy_register_kwh, 3.68),
            "{plain:?}"
        );
        let milli = read(&serde_json::json!([{"sampledValue": [
            {"value": 16000, "measurand": "Current.Import", "unitOfMeasure": {"unit": "A", "multiplier": -3}},
            {"value": 1, "measurand": "Voltage", "unitOfMeasure": {"unit": "V", "multiplier": 400}}
        ]}]));
        assert!(near(milli.current, 16.0), "{milli:?}");
        assert_eq!(milli.voltage, None, "a multiplier no meter uses");
    }
}
