//! Whole numbers read from JSON as JSON Schema counts them: also when written with a fraction
//! of zero (`12.0`). For `#[serde(deserialize_with = …)]` on the API's bodies.

use serde::{Deserialize, Deserializer, de::Error};

fn whole<E: Error>(n: f64, min: f64, max: f64) -> Result<f64, E> {
    if n.fract() == 0.0 && (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(E::custom(format!(
            "{n} is not a whole number within {min}..{max}"
        )))
    }
}

/// A `u32`.
pub fn u32<'de, D: Deserializer<'de>>(input: D) -> Result<u32, D::Error> {
    let n = f64::deserialize(input)?;
    whole(n, 0.0, f64::from(u32::MAX)).map(|n| n as u32)
}

/// An optional `u32`.
pub fn opt_u32<'de, D: Deserializer<'de>>(input: D) -> Result<Option<u32>, D::Error> {
    Option::<f64>::deserialize(input)?
        .map(|n| whole(n, 0.0, f64::from(u32::MAX)).map(|n| n as u32))
        .transpose()
}

/// An optional `i64` (exact up to 2^53, as JSON numbers are).
pub fn opt_i64<'de, D: Deserializer<'de>>(input: D) -> Result<Option<i64>, D::Error> {
    // Read as a number of either kind, so large integers keep every digit.
    match Option::<serde_json::Number>::deserialize(input)? {
        None => Ok(None),
        Some(n) => match (n.as_i64(), n.as_f64()) {
            (Some(n), _) => Ok(Some(n)),
            (None, Some(f)) => whole(f, -(2f64.powi(53)), 2f64.powi(53)).map(|n| Some(n as i64)),
            _ => Err(D::Error::custom(format!("{n} is not a whole number"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "super::u32")]
        a: u32,
        #[serde(default, deserialize_with = "super::opt_i64")]
        b: Option<i64>,
    }

    #[test]
    fn whole_numbers_may_carry_a_zero_fraction_and_nothing_else() {
        let read = |text: &str| serde_json::from_str::<Sample>(text).map(|s| (s.a, s.b));
        assert_eq!(
            read(r#"{"a": 12.0, "b": 1796625128688922}"#).unwrap(),
            (12, Some(1796625128688922))
        );
        assert_eq!(read(r#"{"a": 3, "b": -5.0}"#).unwrap(), (3, Some(-5)));
        assert_eq!(read(r#"{"a": 3, "b": null}"#).unwrap(), (3, None));
        assert!(read(r#"{"a": 1.5}"#).is_err());
        assert!(read(r#"{"a": -1}"#).is_err());
        assert!(read(r#"{"a": "1"}"#).is_err());
    }
}
