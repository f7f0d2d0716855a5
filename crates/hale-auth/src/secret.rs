//! Random secrets, their digests, and sealing small secrets at rest.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

use crate::AuthError;

/// A new random token for a cookie or an emailed link: 256 bits, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether two byte strings are equal, in time that depends only on their lengths (for
/// comparing a secret someone sent with the one expected).
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of a token, hex: what is stored, so a copy of the database cannot be used to
/// sign in or follow a link. A fast hash is right here: the token has 256 bits of entropy.
pub fn digest(token: &str) -> String {
    hale_core::hex(&Sha256::digest(token.as_bytes()))
}

/// Letters and digits that cannot be mistaken for each other when read aloud or typed
/// from paper (no 0/o, 1/l/i).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Ten one-time recovery codes, `xxxxx-xxxxx` (about 49 bits each).
pub fn recovery_codes() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..10)
        .map(|_| {
            let mut code = String::with_capacity(11);
            for i in 0..10 {
                if i == 5 {
                    code.push('-');
                }
                let pick = rng.gen_range(0..RECOVERY_ALPHABET.len());
                code.push(char::from(RECOVERY_ALPHABET[pick]));
            }
            code
        })
        .collect()
}

/// A recovery code as typed (any case, spaces or dashes) in its canonical form.
pub fn normalise_recovery_code(typed: &str) -> String {
    let plain: String = typed
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if plain.len() == 10 {
        format!("{}-{}", &plain[..5], &plain[5..])
    } else {
        plain
    }
}

/// Seals small secrets (TOTP secrets) with XChaCha20-Poly1305 under a key derived from the
/// master key, bound to a context (the account id), so a sealed value copied onto another
/// account does not open.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// A key from 32 bytes (derived from the master key by the caller).
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// A keyed digest of `data` for `purpose` (HMAC-SHA256 under a key of its own derived
    /// from this one, hex): a stable name for something that must not be stored in clear,
    /// which nobody without the key can compute, even for guessable data (addresses).
    pub fn keyed_digest(&self, purpose: &str, data: &str) -> String {
        use hmac::{Hmac, Mac};
        use sha2::{Digest, Sha256};
        let mut derive = Sha256::new();
        derive.update(b"hale-keyed-digest-v1\0");
        derive.update(self.0);
        derive.update(purpose.as_bytes());
        let key = derive.finalize();
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key) else {
            return String::new();
        };
        mac.update(data.as_bytes());
        hale_core::hex(&mac.finalize().into_bytes())
    }

    /// Seals `plain` for `context`: a random 24-byte nonce followed by the ciphertext.
    pub fn seal(&self, plain: &[u8], context: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        [nonce.as_slice(), &sealed].concat()
    }

    /// Opens what [`seal`](Self::seal) made for the same context.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, AuthError> {
        if sealed.len() < 24 {
            return Err(AuthError::Unseal);
        }
        let (nonce, body) = sealed.split_at(24);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| AuthError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_only_as_digests() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        let d = digest(&a);
        assert_eq!(d.len(), 64);
        assert!(!d.contains(&a));
        assert_eq!(d, digest(&a));
    }

    #[test]
    fn recovery_codes_are_distinct_readable_and_forgive_typing() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert!(!code.contains(['0', 'o', '1', 'l', 'i']), "{code}");
            let typed = code.to_uppercase().replace('-', " ");
            assert_eq!(&normalise_recovery_code(&typed), code);
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let key = SealKey::new([7; 32]);
        let sealed = key.seal(b"secret bytes", "account-1");
        assert!(!sealed.windows(12).any(|w| w == b"secret bytes"));
        assert_eq!(key.open(&sealed, "account-1").unwrap(), b"secret bytes");
        assert!(key.open(&sealed, "account-2").is_err());
        assert!(SealKey::new([8; 32]).open(&sealed, "account-1").is_err());
        let mut tampered = sealed.clone();
        tampered[30] ^= 1;
        assert!(key.open(&tampered, "account-1").is_err());
    }
}
