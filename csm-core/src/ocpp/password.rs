//! Charge point passwords (OCPP security profile 1, HTTP Basic auth), kept only as salted
//! PBKDF2-HMAC-SHA256 hashes in PHC strings (`$pbkdf2-sha256$i=…,l=32$<salt>$<hash>`, made and
//! checked by the `pbkdf2` crate). A PHC string carries its own cost, so [`ITERATIONS`] can
//! rise later without a migration: old hashes keep verifying at theirs. Salts come from the
//! operating system's random source. Hashes of csm's earlier form
//! (`pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`) still verify.
//!
//! Verifying costs a few milliseconds of CPU on purpose: call [`verify`] off the async
//! executor (`spawn_blocking`), as [`crate::monitor::PasswordCache`] does.

use pbkdf2::password_hash::phc::PasswordHash;
use pbkdf2::password_hash::{CustomizedPasswordHasher, PasswordVerifier};
use pbkdf2::{Params, Pbkdf2};
use subtle::ConstantTimeEq;

use crate::error::InvalidInput;

/// PBKDF2 iterations of a new hash, chosen from a reconnect storm: 10,000 chargers with
/// passwords connecting at once to one server on a 2-core machine (`scripts/bench.sh --only
/// storm`; BENCHMARKS.md, "Ninth round"). At 25,000 a charger's connection costs the server
/// 3.1 ms of CPU (1.4 ms at 10,000) and all 10,000 chargers were in after 21 s (10,000: 10 s;
/// 50,000: 35 s; 100,000: 62 s), the API answering within 130 ms meanwhile. It is the largest
/// of those costs that brings such a fleet back within 30 s.
pub const ITERATIONS: u32 = 25_000;

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

/// The stored form of a password: a PHC string with a new random salt, at [`ITERATIONS`].
pub fn hash(password: &str) -> Result<String, InvalidInput> {
    let hashed: Result<PasswordHash, _> = match Params::new(ITERATIONS) {
        Ok(params) => {
            let salt = pbkdf2::password_hash::try_generate_salt().map_err(|e| {
                InvalidInput::new(
                    "password",
                    format!("cannot be hashed: no random salt from the system ({e})"),
                )
            })?;
            Pbkdf2::default().hash_password_with_params(password.as_bytes(), &salt, params)
        }
        Err(error) => Err(error),
    };
    hashed
        .map(|hash| hash.to_string())
        .map_err(|e| InvalidInput::new("password", format!("cannot be hashed: {e}")))
}

/// Whether `password` is the one `stored` was made of (a PHC string, or csm's earlier form).
/// Costs a few milliseconds: not on the async executor.
pub fn verify(password: &str, stored: &str) -> bool {
    if let Ok(parsed) = PasswordHash::new(stored) {
        return Pbkdf2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
    }
    verify_earlier(password, stored)
}

/// `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`: the form of hashes csm stored before
/// it wrote PHC strings.
fn verify_earlier(password: &str, stored: &str) -> bool {
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
    if iterations == 0 || iterations > 1_000_000 || expected.len() != 32 {
        return false;
    }
    let mut derived = [0_u8; 32];
    pbkdf2::pbkdf2_hmac::<pbkdf2::sha2::Sha256>(
        password.as_bytes(),
        &salt,
        iterations,
        &mut derived,
    );
    derived.ct_eq(&expected[..]).into()
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
    fn a_password_verifies_only_against_its_own_salted_hash() {
        let stored = hash("correct horse battery").unwrap();
        assert!(
            stored.starts_with(&format!("$pbkdf2-sha256$i={ITERATIONS},l=32$")),
            "{stored}"
        );
        assert!(!stored.contains("correct horse"));
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterY", &stored));
        assert_ne!(
            hash("correct horse battery").unwrap(),
            stored,
            "a new salt every time"
        );
        assert!(!verify("x", "garbage"));
        assert!(check("short").is_err());
        assert!(check("sixteen chars ok").is_ok());
        assert!(check(&"x".repeat(41)).is_err());
    }

    #[test]
    fn a_hash_keeps_its_own_cost() {
        // A PHC string made at another cost (RFC 7914's test vector: "passwd", salt "salt",
        // one block of PBKDF2-HMAC-SHA256 at 1 iteration is not allowed by the crate; 1,000 is
        // its floor) verifies at that cost, whatever csm's is now.
        let params = Params::new(1_000).unwrap();
        let cheap = Pbkdf2::default()
            .hash_password_with_params(b"sixteen chars ok", b"saltsaltsaltsalt", params)
            .unwrap()
            .to_string();
        assert!(cheap.starts_with("$pbkdf2-sha256$i=1000,l=32$"), "{cheap}");
        assert!(verify("sixteen chars ok", &cheap));
        assert!(!verify("sixteen chars ok!", &cheap));
    }

    #[test]
    fn hashes_of_the_earlier_form_still_verify() {
        // Made by csm's earlier hand-written PBKDF2 (10,000 iterations, 16-byte salt).
        let salt = b"0123456789abcdef";
        let mut derived = [0_u8; 32];
        pbkdf2::pbkdf2_hmac::<pbkdf2::sha2::Sha256>(
            b"an old password!",
            salt,
            10_000,
            &mut derived,
        );
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let earlier = format!("pbkdf2-sha256$10000${}${}", hex(salt), hex(&derived));
        assert!(verify("an old password!", &earlier));
        assert!(!verify("an old password?", &earlier));
        // RFC 7914 section 11's vector, in the earlier form: PBKDF2-HMAC-SHA256 of "passwd"
        // with salt "salt" at 1 iteration.
        let vector = format!(
            "pbkdf2-sha256$1${}$55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
            hex(b"salt")
        );
        assert!(verify("passwd", &vector));
    }
}
