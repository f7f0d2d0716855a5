//! Hale's own bearer tokens, until the OAuth server arrives: HMAC-SHA256-signed claims.
//!
//! `hale.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, "hale." + claims))>`. The key
//! is derived from the master key, so the CLI and every server sharing the data can issue
//! and check tokens without a shared database row. Tokens are short-lived (an hour by
//! default) because they cannot be revoked one by one; rotating the master key revokes all.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hale_core::{Actor, RecordId, Scopes};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::AppError;

/// The claims a token carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Who it was issued to (an account or client id).
    pub sub: String,
    /// The one record it reaches; `None` for a system token.
    pub rec: Option<String>,
    /// The grant its holder acts under, when it was issued to someone the person gave access
    /// to rather than to the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grt: Option<String>,
    /// The app (OAuth client) it was issued to, acting for the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The organisation whose system holds it (SMART Backend Services): it reaches the
    /// records whose person gave that organisation access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// How sure Hale is of the person's identity (`P0`…`P9`) when it was issued; absent for
    /// tokens an operator issues, who vouches for whoever holds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvl: Option<String>,
    /// SMART scopes.
    pub scope: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// Signs and verifies tokens with one key.
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

const PREFIX: &str = "hale.";

impl TokenKey {
    /// A key from 32 secret bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn mac(&self) -> Result<Hmac<Sha256>, AppError> {
        Hmac::<Sha256>::new_from_slice(&self.0)
            .map_err(|_| AppError::Internal("bad token key".into()))
    }

    /// Signs claims into a token.
    pub fn sign(&self, claims: &Claims) -> Result<String, AppError> {
        let body = serde_json::to_vec(claims).map_err(|e| AppError::Internal(e.to_string()))?;
        let signed = format!("{PREFIX}{}", B64.encode(body));
        let mut mac = self.mac()?;
        mac.update(signed.as_bytes());
        Ok(format!(
            "{signed}.{}",
            B64.encode(mac.finalize().into_bytes())
        ))
    }

    /// Verifies a token's signature and expiry and returns its claims as signed.
    pub fn verify_claims(&self, token: &str, now_secs: i64) -> Result<Claims, AppError> {
        let bad = || AppError::Unauthenticated("the bearer token is not valid".into());
        let (signed, sig) = token.rsplit_once('.').ok_or_else(bad)?;
        let body = signed.strip_prefix(PREFIX).ok_or_else(bad)?;
        let mut mac = self.mac()?;
        mac.update(signed.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&B64.decode(sig).map_err(|_| bad())?)
            .map_err(|_| bad())?;
        let claims: Claims =
            serde_json::from_slice(&B64.decode(body).map_err(|_| bad())?).map_err(|_| bad())?;
        if claims.exp <= now_secs {
            return Err(AppError::Unauthenticated(
                "the bearer token has expired".into(),
            ));
        }
        Ok(claims)
    }

    /// Verifies a token's signature and expiry, and turns it into an actor (with the
    /// verification level it carries, if any).
    pub fn verify(
        &self,
        token: &str,
        now_secs: i64,
    ) -> Result<(Actor, Option<hale_core::VerificationLevel>), AppError> {
        let claims = self.verify_claims(token, now_secs)?;
        let bad = || AppError::Unauthenticated("the bearer token is not valid".into());
        let scopes = Scopes::parse(&claims.scope).map_err(|_| bad())?;
        let level = match &claims.lvl {
            Some(l) => Some(hale_core::VerificationLevel::parse(l).ok_or_else(bad)?),
            None => None,
        };
        if let Some(org) = claims.org {
            if claims.rec.is_some() || !scopes.has_system_level() {
                return Err(bad());
            }
            return Ok((
                Actor::Organisation {
                    org,
                    scopes,
                    subject: claims.sub,
                },
                None,
            ));
        }
        let actor = match (claims.rec, claims.grt) {
            (Some(r), Some(grant)) => Ok(Actor::Grantee {
                record: RecordId::parse(&r).map_err(|_| bad())?,
                grant,
                scopes,
                subject: claims.sub,
                app: claims.app,
            }),
            (Some(r), None) => Ok(Actor::Record {
                record: RecordId::parse(&r).map_err(|_| bad())?,
                scopes,
                subject: claims.sub,
            }),
            // A token without a record context must be a system token: never widened.
            (None, None) if scopes.has_system_level() => Ok(Actor::System {
                scopes,
                subject: claims.sub,
            }),
            (None, _) => Err(AppError::Unauthenticated(
                "the token has no record context".into(),
            )),
        };
        actor.map(|a| (a, level))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(rec: Option<&str>, scope: &str, exp: i64) -> Claims {
        Claims {
            sub: "t".into(),
            rec: rec.map(str::to_owned),
            grt: None,
            app: None,
            org: None,
            lvl: None,
            scope: scope.into(),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn a_signed_record_token_verifies_to_that_record_only() {
        let key = TokenKey::new([7; 32]);
        let token = key
            .sign(&claims(Some("rec-a"), "patient/*.cruds", 100))
            .unwrap();
        let (actor, level) = key.verify(&token, 50).unwrap();
        assert_eq!(level, None, "an operator's token carries no level");
        assert_eq!(actor.record().map(RecordId::as_str), Some("rec-a"));
    }

    #[test]
    fn tampered_expired_or_foreign_tokens_are_refused() {
        let key = TokenKey::new([7; 32]);
        let token = key
            .sign(&claims(Some("rec-a"), "patient/*.cruds", 100))
            .unwrap();
        assert!(key.verify(&token, 100).is_err(), "expired");
        assert!(
            TokenKey::new([8; 32]).verify(&token, 50).is_err(),
            "other key"
        );
        let forged = key
            .sign(&claims(Some("rec-b"), "patient/*.cruds", 100))
            .unwrap();
        let (forged_body, _) = forged.rsplit_once('.').unwrap();
        let (_, sig) = token.rsplit_once('.').unwrap();
        assert!(
            key.verify(&format!("{forged_body}.{sig}"), 50).is_err(),
            "swapped body"
        );
    }

    #[test]
    fn a_token_without_a_record_needs_system_scopes() {
        let key = TokenKey::new([7; 32]);
        let token = key.sign(&claims(None, "patient/*.read", 100)).unwrap();
        assert!(key.verify(&token, 50).is_err());
        let token = key.sign(&claims(None, "system/*.cruds", 100)).unwrap();
        assert!(matches!(
            key.verify(&token, 50).unwrap().0,
            Actor::System { .. }
        ));
    }
}
