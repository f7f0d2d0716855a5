//! SMART Backend Services (issue 3 §6): health and care organisations' systems reading from
//! and adding to the records of people who gave the organisation access.
//!
//! An operator registers the organisation and each of its systems (a client) with the
//! system's public keys. The system asks `/oauth/token` for an access token with the
//! `client_credentials` grant, proving who it is with a JWT it signed (`private_key_jwt`,
//! RFC 7523): issued by and about itself, for this token endpoint, living at most five
//! minutes and used once. The token lives five minutes and carries `system/` scopes; what it
//! reaches is decided on every request by the grants people gave the organisation
//! ([`crate::access`]), so a grant taken back holds from the very next request.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hale_core::Scopes;
pub use hale_store::Organisation;
use hale_store::{OAuthClient, WriteBatch, WriteOp};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::oauth::{TokenError, TokenResponse};
use crate::{App, AppError, Claims};

/// How long a backend services access token lives (issue 3: at most five minutes).
pub const SYSTEM_TOKEN_SECS: i64 = 300;
/// The only client assertion type (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest a client assertion may live (SMART: no more than five minutes ahead).
const ASSERTION_MAX_SECS: i64 = 300;
/// Clock difference tolerated between a client and Hale.
const LEEWAY_SECS: u64 = 30;
/// The signature algorithms accepted: SMART asks for RS384 and ES384; the others of their
/// families are as sound. Never `none`, never a shared-secret (HS) algorithm.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS384,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The claims of a client assertion that Hale reads (the library checks `aud`, `iss`, `sub`
/// and `exp`).
#[derive(Debug, Deserialize)]
struct Assertion {
    exp: i64,
    jti: String,
}

fn now_secs() -> i64 {
    hale_fhir::date::now_millis() / 1000
}

fn new_id() -> String {
    hale_auth::secret::random_token()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(22)
        .collect()
}

/// The `iss` of an assertion, unchecked: only to find the client (and its keys), and to
/// count failures against it.
pub(crate) fn claimed_client(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
    claims["iss"].as_str().map(str::to_owned)
}

/// Whether a key may sign assertions: public, asymmetric, and for signing if it says.
fn usable(key: &Jwk) -> bool {
    !matches!(key.algorithm, AlgorithmParameters::OctetKey(_))
}

/// Checks a registered key set: a JWK Set of public signing keys, each with a `kid`.
pub(crate) fn check_jwks(text: &str) -> Result<JwkSet, AppError> {
    let bad = |why: &str| AppError::bad_request("jwks", why.to_owned());
    let raw: serde_json::Value =
        serde_json::from_str(text).map_err(|_| bad("the key set is not JSON"))?;
    let keys = raw["keys"]
        .as_array()
        .ok_or_else(|| bad("a JWK Set has a \"keys\" array"))?;
    if keys.is_empty() {
        return Err(bad("the key set has no keys"));
    }
    // A private key sent by mistake must not be stored: the client's secret would then be
    // in Hale's database.
    if keys.iter().any(|k| k.get("d").is_some()) {
        return Err(bad(
            "the key set holds a private key: register only the public keys",
        ));
    }
    let set: JwkSet =
        serde_json::from_value(raw.clone()).map_err(|_| bad("the key set cannot be read"))?;
    for key in &set.keys {
        if !usable(key) {
            return Err(bad(
                "shared-secret (oct) keys are not accepted: use RSA or elliptic-curve keys",
            ));
        }
        if key.common.key_id.as_deref().is_none_or(str::is_empty) {
            return Err(bad("every key needs a \"kid\""));
        }
        DecodingKey::from_jwk(key).map_err(|_| bad("a key cannot be used"))?;
    }
    Ok(set)
}

impl App {
    /// Registers an organisation (operator use): returns its id.
    pub fn register_organisation(&self, name: &str) -> Result<String, AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::bad_request(
                "name",
                "give the organisation a name",
            ));
        }
        let org_id = new_id();
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutOrganisation(Organisation {
                org_id: org_id.clone(),
                name: name.to_owned(),
                created_at: hale_fhir::date::now_millis(),
            })],
        })?;
        Ok(org_id)
    }

    /// Every registered organisation, by name (people choose among them when sharing).
    pub fn organisations(&self) -> Result<Vec<Organisation>, AppError> {
        Ok(self.store.organisations()?)
    }

    /// Registers one of an organisation's systems (operator use) with its public keys (a
    /// JWK Set): returns its client id.
    pub fn register_system_client(
        &self,
        org_id: &str,
        name: &str,
        jwks: &str,
    ) -> Result<String, AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::bad_request("name", "give the system a name"));
        }
        if !self.organisations()?.iter().any(|o| o.org_id == org_id) {
            return Err(AppError::bad_request(
                "org",
                "no organisation has that id: create it first with hale admin org create",
            ));
        }
        check_jwks(jwks)?;
        let client_id = new_id();
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutClient(OAuthClient {
                client_id: client_id.clone(),
                name: name.to_owned(),
                redirect_uris: Vec::new(),
                public: false,
                created_at: hale_fhir::date::now_millis(),
                org: Some(org_id.to_owned()),
                jwks: Some(jwks.to_owned()),
            })],
        })?;
        Ok(client_id)
    }

    /// The `client_credentials` grant: checks the client assertion and the scopes, and
    /// issues a five-minute token for the client's organisation. `token_url` is this
    /// endpoint's address, which the assertion must name as its audience.
    /// Authenticates a client by its signed assertion (`private_key_jwt`, RFC 7523): issued
    /// by and about a registered client with keys, for this token endpoint (`token_url`),
    /// at most five minutes ahead, and its `jti` used once.
    pub(crate) fn authenticate_client(
        &self,
        get: &impl Fn(&str) -> String,
        token_url: &str,
    ) -> Result<Result<OAuthClient, TokenError>, AppError> {
        if get("client_assertion_type") != ASSERTION_TYPE {
            return Ok(Err(TokenError::InvalidRequest(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )));
        }
        let assertion = get("client_assertion");
        let Some(client_id) = claimed_client(&assertion) else {
            return Ok(Err(TokenError::InvalidRequest(
                "client_assertion is not a signed JWT with an issuer",
            )));
        };
        let Some(client) = self.store.oauth_client(&client_id)? else {
            return Ok(Err(TokenError::InvalidClient));
        };
        let Some(jwks) = &client.jwks else {
            return Ok(Err(TokenError::UnauthorizedClient));
        };
        let Ok(claims) = verify_assertion(&assertion, jwks, &client_id, token_url) else {
            return Ok(Err(TokenError::InvalidClientAssertion));
        };
        if claims.exp > now_secs() + ASSERTION_MAX_SECS + LEEWAY_SECS as i64 {
            return Ok(Err(TokenError::InvalidClientAssertion));
        }
        // Used once: the store refuses a jti it has seen from this client.
        let once = self.store.write(WriteBatch {
            ops: vec![WriteOp::UseAssertion {
                client_id: client_id.clone(),
                jti: claims.jti,
                expires_at: claims.exp.saturating_mul(1000),
            }],
        });
        match once {
            Ok(_) => Ok(Ok(client)),
            Err(hale_store::StoreError::Spent(_)) => Ok(Err(TokenError::InvalidClientAssertion)),
            Err(e) => Err(e.into()),
        }
    }

    /// The `client_credentials` grant: checks the client assertion and the scopes, and
    /// issues a five-minute token for the client's organisation. `token_url` is this
    /// endpoint's address, which the assertion must name as its audience.
    pub(crate) fn client_credentials(
        &self,
        get: impl Fn(&str) -> String,
        token_url: &str,
    ) -> Result<Result<TokenResponse, TokenError>, AppError> {
        let client = match self.authenticate_client(&get, token_url)? {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let Some(org) = &client.org else {
            return Ok(Err(TokenError::UnauthorizedClient));
        };
        let client_id = client.client_id.clone();
        let now = now_secs();
        let scope = get("scope");
        let scopes = match Scopes::parse(&scope) {
            Ok(s)
                if !scope.trim().is_empty()
                    && scope.split_whitespace().all(|s| s.starts_with("system/")) =>
            {
                s
            }
            _ => return Ok(Err(TokenError::InvalidScope)),
        };
        let access_token = self.tokens.sign(&Claims {
            sub: client_id,
            rec: None,
            grt: None,
            app: None,
            org: Some(org.clone()),
            lvl: None,
            scope: scopes.as_str().to_owned(),
            iat: now,
            exp: now + SYSTEM_TOKEN_SECS,
        })?;
        Ok(Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: SYSTEM_TOKEN_SECS,
            scope: scopes.as_str().to_owned(),
            patient: None,
            refresh_token: None,
            id_token: None,
        }))
    }
}

/// Verifies a client assertion's signature against the client's keys (by `kid`, or every
/// key when it names none) and its claims: `iss` and `sub` the client, `aud` this token
/// endpoint, unexpired, with a `jti`.
fn verify_assertion(
    assertion: &str,
    jwks: &str,
    client_id: &str,
    token_url: &str,
) -> Result<Assertion, ()> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| ())?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(());
    }
    let set: JwkSet = serde_json::from_str(jwks).map_err(|_| ())?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[token_url]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = LEEWAY_SECS;
    let candidates = set.keys.iter().filter(|k| {
        usable(k)
            && header
                .kid
                .as_deref()
                .is_none_or(|kid| k.common.key_id.as_deref() == Some(kid))
            && k.common
                .key_algorithm
                .is_none_or(|a| format!("{a:?}") == format!("{:?}", header.alg))
    });
    for key in candidates {
        let Ok(decoding) = DecodingKey::from_jwk(key) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<Assertion>(assertion, &decoding, &validation) {
            return Ok(data.claims);
        }
    }
    Err(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_key_set_must_hold_public_asymmetric_keys_with_ids() {
        let ec = r#"{"kty":"EC","crv":"P-384","kid":"k1","x":"DpOGQg_M3di1EvqqrAz1IzLGGq-4djEVKp9-ZKZImI_xq6bYd0tDE35QdZC-WQMA","y":"UKgVoQ6OKDn1Hp0WCdxkR969mIG8AkI4707HkTG1M49IvEwnNVvRH6QiO6djanI-"}"#;
        assert!(check_jwks(&format!(r#"{{"keys":[{ec}]}}"#)).is_ok());
        let without_kid = ec.replace(r#""kid":"k1","#, "");
        let private = ec.replace(r#""kid":"k1","#, r#""kid":"k1","d":"AAAA","#);
        for bad in [
            "not json".to_owned(),
            r#"{"keys":[]}"#.to_owned(),
            format!(r#"{{"keys":[{without_kid}]}}"#),
            format!(r#"{{"keys":[{private}]}}"#),
            r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#.to_owned(),
        ] {
            assert!(check_jwks(&bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn the_claimed_client_is_read_from_the_payload() {
        let payload = B64.encode(br#"{"iss":"abc","sub":"abc"}"#);
        assert_eq!(
            claimed_client(&format!("e30.{payload}.sig")).as_deref(),
            Some("abc")
        );
        assert_eq!(claimed_client("nonsense"), None);
    }
}
