//! Time-based one-time passwords (RFC 6238): SHA-1, 6 digits, 30-second steps, as every
//! authenticator app supports; one step of clock skew either way (RFC 6238 §5.2). A code is
//! accepted once: callers keep the last accepted step and pass it back.

use qrcode::QrCode;
use qrcode::render::svg;
use rand::RngCore;
use totp_rs::{Builder, Totp};

use crate::AuthError;

/// A new 160-bit secret (RFC 4226 §4 recommends 160).
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

fn totp(secret: &[u8]) -> Result<Totp, AuthError> {
    Builder::new()
        .with_secret(secret.to_vec())
        .build()
        .map_err(|e| AuthError::Totp(e.to_string()))
}

/// The secret in base32, grouped in fours, for typing into an app by hand.
pub fn secret_for_typing(secret: &[u8]) -> String {
    let plain = totp_rs::Secret::from(secret.to_vec()).to_base32();
    plain
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The secret back from its typed form (any case, spaces allowed), as an authenticator
/// app reads it.
pub fn secret_from_typing(typed: &str) -> Option<Vec<u8>> {
    let plain: String = typed
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    totp_rs::Secret::try_from_base32(plain)
        .ok()
        .map(|s| s.as_ref().to_vec())
}

/// The `otpauth://` URI that authenticator apps read from the QR code.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let b32 = totp_rs::Secret::from(secret.to_vec()).to_base32();
    let label = format!("{}:{}", percent(issuer), percent(account));
    format!(
        "otpauth://totp/{label}?secret={b32}&issuer={}&algorithm=SHA1&digits=6&period=30",
        percent(issuer)
    )
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The QR code of `uri` as an inline SVG with a text alternative for screen readers.
pub fn qr_svg(uri: &str, description: &str) -> Result<String, AuthError> {
    let code = QrCode::new(uri.as_bytes()).map_err(|e| AuthError::Totp(e.to_string()))?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Drop the XML declaration and label the image for assistive technology.
    let start = svg.find("<svg").unwrap_or(0);
    let escaped = description
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;");
    Ok(svg[start..].replacen(
        "<svg",
        &format!("<svg role=\"img\" aria-label=\"{escaped}\""),
        1,
    ))
}

/// The code an authenticator shows at `unix_secs` (for tests and tools).
pub fn code_at(secret: &[u8], unix_secs: u64) -> Result<String, AuthError> {
    Ok(totp(secret)?.generate(unix_secs).to_string())
}

/// Checks a typed code at `unix_secs`. Returns the step it matched if it is valid and
/// newer than `last_step` (a code, once used, is refused: RFC 6238 §5.2).
pub fn verify(
    secret: &[u8],
    typed: &str,
    unix_secs: u64,
    last_step: Option<u64>,
) -> Result<Option<u64>, AuthError> {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let step = totp(secret)?.check(&digits, unix_secs);
    Ok(step.filter(|s| last_step.is_none_or(|last| *s > last)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B, SHA-1 secret "12345678901234567890", truncated to 6 digits.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(RFC_SECRET, time).unwrap(), code, "at {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_within_one_step_and_only_once() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&secret, now).unwrap();
        let step = verify(&secret, &code, now, None).unwrap().unwrap();
        assert_eq!(verify(&secret, &code, now + 30, None).unwrap(), Some(step));
        assert_eq!(
            verify(&secret, &code, now + 90, None).unwrap(),
            None,
            "too late"
        );
        assert_eq!(
            verify(&secret, &code, now, Some(step)).unwrap(),
            None,
            "replayed"
        );
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify(&secret, &spaced, now, None).unwrap(), Some(step));
        assert_eq!(verify(&secret, "12345", now, None).unwrap(), None);
        assert_eq!(verify(&secret, "abcdef", now, None).unwrap(), None);
    }

    #[test]
    fn the_enrolment_uri_and_qr_code_carry_the_secret_and_a_label() {
        let secret = new_secret();
        let uri = otpauth_uri(&secret, "Hale", "alex@example.org");
        assert!(uri.starts_with("otpauth://totp/Hale:alex@example.org?secret="));
        let typed = secret_for_typing(&secret);
        assert!(uri.contains(&typed.replace(' ', "")));
        assert_eq!(
            secret_from_typing(&typed.to_lowercase()),
            Some(secret.clone())
        );
        let svg = qr_svg(&uri, "QR code for your authenticator app").unwrap();
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"QR code"));
    }
}
