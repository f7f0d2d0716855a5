//! Hale's sign-in primitives: argon2id password hashes and a strength check, TOTP
//! (RFC 6238) with its enrolment QR code, random secrets and their digests, and sealing of
//! small secrets. No storage, no HTTP, no clock of its own: callers pass the time.
//!
//! ```
//! let hash = hale_auth::password::hash("correct horse battery staple").unwrap();
//! assert!(hale_auth::password::verify("correct horse battery staple", &hash));
//! assert!(!hale_auth::password::verify("Tr0ub4dor&3", &hash));
//! ```

pub mod password;
pub mod secret;
pub mod totp;

/// What went wrong. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Hashing failed (out of memory, bad parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A sealed secret did not open: tampered with, or sealed under another key or context.
    #[error("a sealed secret could not be opened")]
    Unseal,
    /// A TOTP secret of the wrong size.
    #[error("invalid TOTP secret: {0}")]
    Totp(String),
}
