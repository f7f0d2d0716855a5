//! Passwords: argon2id hashes and a strength check.
//!
//! Parameters: argon2id, 19 MiB of memory, 2 passes, 1 lane: OWASP's Password Storage Cheat
//! Sheet's first recommended configuration. It costs about 30-60 ms on one of these cores,
//! which bounds an attacker with a stolen database to a few guesses per core-second per
//! account while keeping sign-in under a tenth of a second; memory-hardness blunts GPUs.
//! Raising the cost later needs no migration: the PHC string records the parameters used,
//! and verification reads them from it.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::AuthError;

/// The shortest password accepted. NCSC and NHS login ask for at least 8; Hale asks for 10
/// because the strength check below already steers people towards passphrases.
pub const MIN_LENGTH: usize = 10;
/// The longest accepted: long enough for any passphrase or manager, short enough that
/// hashing a submitted "password" cannot be used to exhaust the server.
pub const MAX_LENGTH: usize = 256;

fn hasher() -> Argon2<'static> {
    // The values are constants within argon2's documented limits, so this cannot fail;
    // `default()` (the same numbers) is the fallback that keeps clippy's `expect` lint happy.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with a fresh random salt, as a PHC string (`$argon2id$v=19$…`).
pub fn hash(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches `phc` (constant time in the password).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        // No password (an account that signs in through an identity provider): fail after
        // the same work, so the answer's timing does not tell such accounts apart.
        Err(_) => verify_nothing(password),
    }
}

/// Spends the same time as [`verify`] against a real hash, and fails. Sign-in calls it when
/// no account has the address given, so that timing does not reveal which addresses have
/// accounts.
pub fn verify_nothing(password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("hale-timing-equaliser").unwrap_or_default());
    let _ = verify(password, phc);
    false
}

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// Shorter than [`MIN_LENGTH`] characters.
    TooShort,
    /// Longer than [`MAX_LENGTH`] characters.
    TooLong,
    /// Easy to guess: a common password, a keyboard pattern, a dictionary word with
    /// predictable changes, or built from the person's own name or email address.
    TooEasyToGuess,
}

/// Checks a new password. `user_inputs` are things an attacker would try first (the
/// person's name, email address). The strength estimate is zxcvbn's (Dropbox's estimator,
/// which knows common and breached passwords, names, keyboard patterns and l33t changes);
/// a score of 3 means more than 10^8 guesses: beyond an online attack under Hale's sign-in
/// limits, and years of one core's time offline against argon2id at these parameters.
pub fn check_strength(password: &str, user_inputs: &[&str]) -> Result<(), Weakness> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(Weakness::TooShort);
    }
    if chars > MAX_LENGTH {
        return Err(Weakness::TooLong);
    }
    // zxcvbn matches user inputs as whole dictionary words, so give it the parts too: the
    // words of a name and of an address ("alex", "example"), not just the whole string.
    let mut words: Vec<String> = Vec::new();
    for input in user_inputs {
        let lower = input.to_lowercase();
        words.extend(
            lower
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() >= 3)
                .map(str::to_owned),
        );
        words.push(lower);
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(password, &words);
    if (estimate.score() as u8) < 3 {
        return Err(Weakness::TooEasyToGuess);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_own_password_and_is_salted() {
        let a = hash("walrus lantern orchard 42").unwrap();
        let b = hash("walrus lantern orchard 42").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("walrus lantern orchard 42", &a));
        assert!(!verify("walrus lantern orchard 43", &a));
        assert!(!verify("walrus lantern orchard 42", "not a hash"));
        assert!(!verify_nothing("walrus lantern orchard 42"));
    }

    #[test]
    fn short_common_and_personal_passwords_are_refused() {
        assert_eq!(check_strength("abc123", &[]), Err(Weakness::TooShort));
        assert_eq!(
            check_strength("password123", &[]),
            Err(Weakness::TooEasyToGuess)
        );
        assert_eq!(
            check_strength("qwertyuiop", &[]),
            Err(Weakness::TooEasyToGuess)
        );
        assert_eq!(
            check_strength(
                "example.alex",
                &["alex.example@example.org", "Alex Example"]
            ),
            Err(Weakness::TooEasyToGuess)
        );
        assert_eq!(
            check_strength(&"a".repeat(300), &[]),
            Err(Weakness::TooLong)
        );
        assert_eq!(check_strength("walrus lantern orchard 42", &[]), Ok(()));
    }
}
