//! Charge point passwords (OCPP security profile 1, HTTP Basic auth): kept only as a salted
//! PBKDF2-HMAC-SHA256 hash (`pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`), compared in
//! constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::InvalidInput;

/// PBKDF2 iterations of a new hash.
const ITERATIONS: u32 = 10_000;
/// Shortest and longest password the OCPP 1.6 security whitepaper allows (its
/// AuthorizationKey: 16 to 40 characters).
pub const LENGTHS: std::ops::RangeInclusive<usize> = 16..=40;

/// Checks a new password.
pub fn check(password: &str) -> Result<(), InvalidInput> {
    if !LENGTHS.contains(&password.chars().count()) {
        return Err(InvalidInput::new(
            "password",
            format!(
                "has {} characters; an OCPP charge point password has {} to {}",
                password.chars().count(),
                LENGTHS.start(),
                LENGTHS.end()
            ),
        ));
    }
    if password.chars().any(|c| c.is_control()) {
        return Err(InvalidInput::new("password", "has control characters"));
    }
    Ok(())
}

/// The stored form of a password, with a new random salt.
pub fn hash(password: &str) -> String {
    let salt: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    let derived = pbkdf2(password.as_bytes(), &salt, ITERATIONS);
    format!(
        "pbkdf2-sha256${ITERATIONS}${}${}",
        hex(&salt),
        hex(&derived)
    )
}

/// Whether `password` is the one `stored` was made of.
pub fn verify(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iterations), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iterations), Some(salt), Some(expected)) =
        (iterations.parse::<u32>(), unhex(salt), unhex(expected))
    else {
        return false;
    };
    if iterations == 0 || iterations > 1_000_000 {
        return false;
    }
    let derived = pbkdf2(password.as_bytes(), &salt, iterations);
    derived.len() == expected.len()
        && derived
            .iter()
            .zip(&expected)
            .fold(0_u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// PBKDF2-HMAC-SHA256, one 32-byte block (RFC 8018).
fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let prf =
        <Hmac<Sha256> as KeyInit>::new_from_slice(password).expect("HMAC accepts any key length");
    let mut first = prf.clone();
    first.update(salt);
    first.update(&1_u32.to_be_bytes());
    let mut u: [u8; 32] = first.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut next = prf.clone();
        next.update(&u);
        u = next.finalize().into_bytes().into();
        for (o, b) in out.iter_mut().zip(u) {
            *o ^= b;
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_the_published_test_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256 of "passwd" with salt "salt", 1 iteration
        // (the first 32 of its 64 bytes).
        let derived = pbkdf2(b"passwd", b"salt", 1);
        assert_eq!(
            hex(&derived),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn a_password_verifies_only_against_its_own_salted_hash() {
        let stored = hash("correct horse battery");
        assert!(stored.starts_with("pbkdf2-sha256$10000$"));
        assert!(!stored.contains("correct horse"));
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterY", &stored));
        assert_ne!(
            hash("correct horse battery"),
            stored,
            "a new salt every time"
        );
        assert!(!verify("x", "garbage"));
        assert!(check("short").is_err());
        assert!(check("sixteen chars ok").is_ok());
        assert!(check(&"x".repeat(41)).is_err());
    }
}
