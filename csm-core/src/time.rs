//! Times in the JSON documents, written exactly as chrono's own serialisation writes them
//! (RFC 3339 in UTC with `Z`, the fraction of a second with 0, 3, 6 or 9 digits as needed), in
//! a fraction of its instructions: a station's answer carries some thirty times and is encoded
//! a few times a second for every station that is read (`cargo bench -p csm-core -- views:`).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serializer;

/// Serialises a time.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = String::with_capacity(32);
    write(at, &mut text);
    serializer.serialize_str(&text)
}

/// Serialises a time that may be absent (`null`).
pub fn optional<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Writes `at` as chrono's serialisation does.
pub fn write(at: &DateTime<Utc>, out: &mut String) {
    let nanos = at.nanosecond();
    // Years of other than four digits and leap seconds are rare enough for chrono to write.
    if !(0..=9999).contains(&at.year()) || nanos >= 1_000_000_000 {
        if let Ok(serde_json::Value::String(text)) = serde_json::to_value(at) {
            out.push_str(&text);
        }
        return;
    }
    let digits = |out: &mut String, value: u32, width: usize| {
        let mut buf = [b'0'; 9];
        let mut value = value;
        for slot in buf[..width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        out.extend(buf[..width].iter().map(|&b| char::from(b)));
    };
    digits(out, at.year() as u32, 4);
    out.push('-');
    digits(out, at.month(), 2);
    out.push('-');
    digits(out, at.day(), 2);
    out.push('T');
    digits(out, at.hour(), 2);
    out.push(':');
    digits(out, at.minute(), 2);
    out.push(':');
    digits(out, at.second(), 2);
    if nanos != 0 {
        out.push('.');
        if nanos.is_multiple_of(1_000_000) {
            digits(out, nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            digits(out, nanos / 1_000, 6);
        } else {
            digits(out, nanos, 9);
        }
    }
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// What chrono's serialisation writes, to the byte.
        #[test]
        fn times_are_written_as_chrono_writes_them(
            secs in -70_000_000_000_i64..260_000_000_000,
            nanos in prop_oneof![Just(0_u32), (0..1000_u32).prop_map(|m| m * 1_000_000), (0..1_000_000_u32).prop_map(|u| u * 1000), 0..1_000_000_000_u32],
        ) {
            let at = Utc.timestamp_opt(secs, nanos).single().unwrap();
            let mut ours = String::new();
            write(&at, &mut ours);
            let theirs = serde_json::to_value(at).unwrap();
            prop_assert_eq!(ours.as_str(), theirs.as_str().unwrap());
        }
    }
}
