//! The physical range of each measurement. A value no charger can produce (`1e308` W, a
//! negative voltage, an infinity from scaling or summing phases) is a broken or hostile source,
//! not a reading: it is dropped from the reading before anything keeps it, so it is never
//! stored, never shown and never counted into a session. Every source goes through this check
//! (vendor profiles, the simulator, OCPP chargers), in the refresh job.

use std::fmt;

use crate::model::{PortReading, Snapshot};

/// A kind of measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Volts.
    Voltage,
    /// Amperes.
    Current,
    /// Watts.
    Power,
    /// kWh: a session's energy or a meter's register.
    Energy,
}

impl Measure {
    /// Every measure.
    pub const ALL: [Measure; 4] = [
        Measure::Voltage,
        Measure::Current,
        Measure::Power,
        Measure::Energy,
    ];

    /// The lowest and highest value a charger can produce: 1,500 V (the top of DC fast
    /// charging), 1,000 A, 1.5 MW and a 10 GWh energy register.
    pub const fn range(self) -> (f64, f64) {
        match self {
            Measure::Voltage => (0.0, 1_500.0),
            Measure::Current => (0.0, 1_000.0),
            Measure::Power => (0.0, 1_500_000.0),
            Measure::Energy => (0.0, 10_000_000.0),
        }
    }

    /// Whether `value` is finite and within the range.
    pub fn holds(self, value: f64) -> bool {
        let (low, high) = self.range();
        value.is_finite() && (low..=high).contains(&value)
    }

    /// The name used in messages and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Measure::Voltage => "voltage",
            Measure::Current => "current",
            Measure::Power => "power",
            Measure::Energy => "energy",
        }
    }

    /// The unit of its values.
    pub const fn unit(self) -> &'static str {
        match self {
            Measure::Voltage => "V",
            Measure::Current => "A",
            Measure::Power => "W",
            Measure::Energy => "kWh",
        }
    }

    /// The field of a reading that holds this measure.
    fn of(self, reading: &mut PortReading) -> &mut Option<f64> {
        match self {
            Measure::Voltage => &mut reading.voltage,
            Measure::Current => &mut reading.current,
            Measure::Power => &mut reading.power,
            Measure::Energy => &mut reading.energy_kwh,
        }
    }
}

/// A value dropped from a reading because no charger can produce it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impossible {
    /// The port.
    pub port: u32,
    /// What was measured.
    pub measure: Measure,
    /// The value the source sent (after the profile's scale).
    pub value: f64,
}

impl fmt::Display for Impossible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (low, high) = self.measure.range();
        let unit = self.measure.unit();
        write!(
            f,
            "port {}: {} {:e} {unit} is outside {low}–{high} {unit}, dropped",
            self.port,
            self.measure.name(),
            self.value,
        )
    }
}

impl PortReading {
    /// Drops the measurements outside their physical range; returns what was dropped.
    pub fn drop_impossible(&mut self) -> Vec<Impossible> {
        let mut dropped = Vec::new();
        for measure in Measure::ALL {
            let port = self.port;
            let field = measure.of(self);
            if let Some(value) = *field
                && !measure.holds(value)
            {
                *field = None;
                dropped.push(Impossible {
                    port,
                    measure,
                    value,
                });
            }
        }
        dropped
    }
}

impl Snapshot {
    /// Drops the measurements of every port that are outside their physical range; returns
    /// what was dropped, each counted in `csm_impossible_values_total{measure}`.
    pub fn drop_impossible(&mut self) -> Vec<Impossible> {
        let dropped: Vec<Impossible> = self
            .ports
            .iter_mut()
            .flat_map(PortReading::drop_impossible)
            .collect();
        for impossible in &dropped {
            metrics::counter!("csm_impossible_values_total", "measure" => impossible.measure.name())
                .increment(1);
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PortStatus;

    fn reading(voltage: f64, current: f64, power: f64, energy: f64) -> PortReading {
        PortReading {
            status: PortStatus::Occupied,
            voltage: Some(voltage),
            current: Some(current),
            power: Some(power),
            energy_kwh: Some(energy),
            ..PortReading::offline(2)
        }
    }

    #[test]
    fn physical_values_stay_and_the_bounds_are_inside() {
        for r in [
            reading(220.4, 1.8, 396.7, 0.42),
            reading(0.0, 0.0, 0.0, 0.0),
            reading(1_500.0, 1_000.0, 1_500_000.0, 10_000_000.0),
        ] {
            let mut kept = r.clone();
            assert!(kept.drop_impossible().is_empty());
            assert_eq!(kept, r);
        }
    }

    #[test]
    fn nan_infinities_huge_and_negative_values_are_dropped_and_named() {
        let cases = [
            (f64::NAN, Measure::Voltage),
            (f64::INFINITY, Measure::Current),
            (f64::NEG_INFINITY, Measure::Power),
            (1e308, Measure::Energy),
            (-0.5, Measure::Voltage),
            (1_500.1, Measure::Voltage),
            (1_000.5, Measure::Current),
            (1.5e6 + 1.0, Measure::Power),
            (-1.0, Measure::Energy),
        ];
        for (value, measure) in cases {
            let mut r = reading(220.0, 16.0, 3_520.0, 5.0);
            *measure.of(&mut r) = Some(value);
            let dropped = r.drop_impossible();
            assert_eq!(dropped.len(), 1, "{value} as {measure:?}");
            assert_eq!(dropped[0].measure, measure);
            assert_eq!(*measure.of(&mut r), None, "{value} is gone");
            let others = Measure::ALL.into_iter().filter(|m| *m != measure);
            assert!(
                others.clone().all(|m| measure_of(&r, m).is_some()),
                "the other measures stay"
            );
        }
    }

    #[test]
    fn overflow_after_scaling_and_sums_of_phases_are_dropped() {
        // A kW value of 1e308 scaled to W, and two phases of 1e308 summed: both infinite.
        let scaled = 1e308_f64 * 1_000.0;
        let summed = 1e308_f64 + 1e308;
        assert!(scaled.is_infinite() && summed.is_infinite());
        let mut snapshot = Snapshot {
            station_id: crate::model::StationId::parse("CP1").unwrap(),
            observed_at: crate::model::now(),
            ports: vec![
                reading(230.0, 16.0, scaled, 1.0),
                PortReading {
                    port: 3,
                    ..reading(230.0, summed, 3_000.0, 1.0)
                },
            ],
        };
        let dropped = snapshot.drop_impossible();
        assert_eq!(
            dropped
                .iter()
                .map(|d| (d.port, d.measure))
                .collect::<Vec<_>>(),
            [(2, Measure::Power), (3, Measure::Current)]
        );
        assert_eq!(
            dropped[0].to_string(),
            "port 2: power inf W is outside 0–1500000 W, dropped"
        );
        assert_eq!(snapshot.ports[0].power, None);
        assert_eq!(snapshot.ports[1].current, None);
    }

    fn measure_of(reading: &PortReading, measure: Measure) -> Option<f64> {
        let mut copy = reading.clone();
        *measure.of(&mut copy)
    }
}
