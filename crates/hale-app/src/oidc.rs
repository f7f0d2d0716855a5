//! Signing in through an OpenID Connect provider (issue 3 §3), to the NHS login profile:
//! authorization code with PKCE (`S256`), a `nonce`, the verification level asked for with
//! `vtr` and checked in the ID token's `vot`, and Hale authenticating itself at the token
//! endpoint with a JWT it signs (`private_key_jwt`, ES256, with a key derived from the master
//! key; `hale admin oidc public-key` prints the public half to register with the provider).
//! Any standard provider the operator configures works the same way.
//!
//! The ID token's signature (against the provider's published keys), issuer, audience and
//! expiry are checked; its nonce must be the one this browser's sign-in started with, and is
//! accepted once (kept in the database until the token expires). The person's claims (email,
//! names, NHS number, `identity_proofing_level`) come from the userinfo endpoint, for the same
//! subject. The first sign-in creates an account and a record; later ones find the account by
//! the provider's subject identifier. The verification level and the NHS number are recorded
//! on the account, and a sign-in whose `vot` shows a second factor counts as two-factor.

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hale_core::{AccountKind, VerificationLevel};
use hale_store::{Account, AccountIdentity, Session, WriteBatch, WriteOp};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{App, AppError};

/// How long a started sign-in can be finished.
const LOGIN_LIFETIME_SECS: i64 = 600;
/// Clock difference tolerated between the provider and Hale.
const LEEWAY_SECS: u64 = 30;
/// The key id of Hale's client-authentication key.
const KEY_ID: &str = "hale-oidc-1";
/// Where used nonces are kept (the table of single-use assertion ids).
const NONCE_SCOPE: &str = "oidc-nonce";
/// Signature algorithms accepted on ID tokens (NHS login signs with RS512).
const ID_TOKEN_ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];
/// NHS login's authentication components that are a second factor (`Cp` is the password).
const SECOND_FACTORS: [&str; 3] = ["Cd", "Ck", "Cm"];

/// What the operator configured.
#[derive(Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL, exactly as it appears in its tokens.
    pub issuer: String,
    /// Hale's client id at the provider.
    pub client_id: String,
    /// Scopes asked for, besides `openid`.
    pub scope: String,
    /// Vectors of trust asked for (NHS login: `P9.Cp.Cd`, …); the ID token's `vot` must be
    /// one of them. Empty for a provider that does not speak vectors of trust: its sign-ins
    /// then prove nothing about identity (P0) and count as one factor.
    pub vtr: Vec<String>,
    /// The provider's name for the sign-in button ("NHS login").
    pub name: String,
    /// 32 secret bytes (from the master key) from which Hale's signing key is made.
    pub key_seed: [u8; 32],
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The provider's endpoints and keys, as it publishes them.
#[derive(Debug, Clone)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
    keys: JwkSet,
}

/// The client side of sign-in through an OpenID provider.
pub struct Oidc {
    settings: OidcSettings,
    signing: EncodingKey,
    public_jwk: Value,
    /// Always `Some` until dropped (see `Drop`).
    http: Option<reqwest::blocking::Client>,
    discovery: Mutex<Option<Discovery>>,
}

/// The blocking HTTP client owns a small runtime of its own, which must not be dropped on an
/// async thread (tokio panics), as it would be when `hale serve` ends: it is dropped on a
/// thread of its own instead.
impl Drop for Oidc {
    fn drop(&mut self) {
        if let Some(client) = self.http.take() {
            let _ = std::thread::spawn(move || drop(client));
        }
    }
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What a browser carries between starting and finishing a sign-in (sealed in a cookie).
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    exp: i64,
    /// The account connecting its identity at the provider (started from the account page),
    /// rather than someone signing in.
    #[serde(default)]
    link: Option<String>,
}

/// How a sign-in through the provider ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcOutcome {
    /// Signed in: the new session's key.
    SignedIn(String),
    /// The identity is now connected to the signed-in account.
    Linked,
}

/// Why a sign-in through the provider was refused. Each is logged for the operator, by name
/// only (no claims, no tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcRefusal {
    /// The browser's sign-in was not started here, has expired, or its `state` differs.
    NotStarted,
    /// The provider answered with an error (the person cancelled, or it refused).
    ProviderSaidNo,
    /// The provider could not be reached, or its token endpoint refused the code.
    TokenExchangeFailed,
    /// The ID token's signature does not check against the provider's keys.
    BadSignature,
    /// The ID token was issued by someone else.
    WrongIssuer,
    /// The ID token is for another client.
    WrongAudience,
    /// The ID token has expired.
    Expired,
    /// The ID token is not for this sign-in, or its nonce was used before.
    NonceReplayed,
    /// The identity was verified, or the person signed in, less strongly than asked.
    LevelTooLow,
    /// The provider gave no verified email address for a new account.
    NoVerifiedEmail,
    /// A Hale account already uses the provider's email address: sign in with it instead.
    EmailInUse,
    /// The identity at the provider is connected to another Hale account.
    IdentityInUse,
    /// The token was malformed in some other way.
    Invalid,
}

impl OidcRefusal {
    /// A stable code, for logs and the message catalogue.
    pub fn code(self) -> &'static str {
        match self {
            OidcRefusal::NotStarted => "not-started",
            OidcRefusal::ProviderSaidNo => "provider-said-no",
            OidcRefusal::TokenExchangeFailed => "token-exchange-failed",
            OidcRefusal::BadSignature => "bad-signature",
            OidcRefusal::WrongIssuer => "wrong-issuer",
            OidcRefusal::WrongAudience => "wrong-audience",
            OidcRefusal::Expired => "expired",
            OidcRefusal::NonceReplayed => "nonce-replayed",
            OidcRefusal::LevelTooLow => "level-too-low",
            OidcRefusal::NoVerifiedEmail => "no-verified-email",
            OidcRefusal::EmailInUse => "email-in-use",
            OidcRefusal::IdentityInUse => "identity-in-use",
            OidcRefusal::Invalid => "invalid",
        }
    }
}

/// The claims Hale reads from the ID token.
#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    exp: i64,
    nonce: Option<String>,
    vot: Option<String>,
    identity_proofing_level: Option<String>,
}

fn now_secs() -> i64 {
    hale_fhir::date::now_millis() / 1000
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

/// The level and whether a second factor was used, from a vector of trust (`P9.Cp.Cd`).
fn read_vot(vot: &str) -> Option<(VerificationLevel, bool)> {
    let mut parts = vot.split('.');
    let level = VerificationLevel::parse(parts.next()?)?;
    let second = parts.any(|c| SECOND_FACTORS.contains(&c));
    Some((level, second))
}

/// A P-256 key pair from a seed: the signing key, and the public key as a JWK with `kid`.
fn key_pair(seed: &[u8; 32], kid: &str) -> Result<(EncodingKey, Value), AppError> {
    let secret = p256::SecretKey::from_slice(seed).map_err(internal)?;
    let der = secret.to_pkcs8_der().map_err(internal)?;
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(internal("no public key"));
    };
    let jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
        "kid": kid, "x": B64.encode(x), "y": B64.encode(y)});
    Ok((EncodingKey::from_ec_der(der.as_bytes()), jwk))
}

/// Hale's public client-authentication key as a JWK Set, to register with a provider.
pub fn public_keys(seed: &[u8; 32]) -> Result<Value, AppError> {
    Ok(json!({"keys": [key_pair(seed, KEY_ID)?.1]}))
}

/// A key Hale signs JWTs it issues with (ID tokens for apps), ES256.
pub struct SigningKey {
    key: EncodingKey,
    public: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// The key made from 32 secret bytes, published under `kid`.
    pub fn new(seed: &[u8; 32], kid: &str) -> Result<Self, AppError> {
        let (key, public) = key_pair(seed, kid)?;
        Ok(Self { key, public })
    }

    /// Signs claims as a JWT.
    pub fn sign(&self, claims: &Value) -> Result<String, AppError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.public["kid"].as_str().map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.key).map_err(internal)
    }

    /// The public key, as a JWK.
    pub fn public_jwk(&self) -> &Value {
        &self.public
    }
}

impl Oidc {
    /// The client for these settings.
    pub fn new(settings: OidcSettings) -> Result<Self, AppError> {
        let (signing, public_jwk) = key_pair(&settings.key_seed, KEY_ID)?;
        // Built on a thread of its own: `hale serve` sets Hale up inside its async runtime,
        // where the blocking client's own runtime may not be made (tokio panics).
        let http = std::thread::spawn(|| {
            reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
        })
        .join()
        .map_err(|_| internal("the HTTP client could not be made"))?
        .map_err(internal)?;
        Ok(Self {
            signing,
            public_jwk,
            settings,
            http: Some(http),
            discovery: Mutex::new(None),
        })
    }

    fn http(&self) -> Result<&reqwest::blocking::Client, AppError> {
        self.http
            .as_ref()
            .ok_or_else(|| AppError::Internal("the HTTP client has gone".into()))
    }

    fn fetch_json(&self, url: &str) -> Result<Value, AppError> {
        let res = self.http()?.get(url).send().map_err(|e| {
            tracing::warn!(error = %e, "the OpenID provider could not be reached");
            AppError::Internal("the identity provider could not be reached".into())
        })?;
        if !res.status().is_success() {
            return Err(AppError::Internal(format!(
                "the identity provider answered {}",
                res.status()
            )));
        }
        res.json().map_err(internal)
    }

    /// The provider's configuration and keys, fetched once (and the keys again when a token
    /// names one not seen before: keys rotate).
    fn discovery(&self, refresh_keys: bool) -> Result<Discovery, AppError> {
        let mut cached = self.discovery.lock().map_err(internal)?;
        if let Some(d) = cached.as_mut() {
            if refresh_keys {
                d.keys = serde_json::from_value(self.fetch_json(&d.jwks_uri)?).map_err(internal)?;
            }
            return Ok(d.clone());
        }
        let base = self.settings.issuer.trim_end_matches('/');
        let config = self.fetch_json(&format!("{base}/.well-known/openid-configuration"))?;
        if config["issuer"].as_str() != Some(self.settings.issuer.as_str()) {
            return Err(AppError::Internal(
                "the identity provider's configuration names another issuer".into(),
            ));
        }
        let field = |name: &str| {
            config[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| AppError::Internal(format!("the provider does not publish {name}")))
        };
        let jwks_uri = field("jwks_uri")?;
        let d = Discovery {
            authorization_endpoint: field("authorization_endpoint")?,
            token_endpoint: field("token_endpoint")?,
            userinfo_endpoint: field("userinfo_endpoint").ok(),
            keys: serde_json::from_value(self.fetch_json(&jwks_uri)?).map_err(internal)?,
            jwks_uri,
        };
        *cached = Some(d.clone());
        Ok(d)
    }

    /// Hale's signed client assertion for the token endpoint (RFC 7523).
    fn client_assertion(&self, token_endpoint: &str) -> Result<String, AppError> {
        let now = now_secs();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KEY_ID.to_owned());
        let claims = json!({"iss": self.settings.client_id, "sub": self.settings.client_id,
            "aud": token_endpoint, "jti": hale_auth::secret::random_token(),
            "iat": now, "exp": now + 300});
        jsonwebtoken::encode(&header, &claims, &self.signing).map_err(internal)
    }

    /// Checks an ID token's signature, issuer, audience and expiry.
    fn verify_id_token(&self, token: &str) -> Result<IdClaims, OidcRefusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| OidcRefusal::Invalid)?;
        if !ID_TOKEN_ALGORITHMS.contains(&header.alg) {
            return Err(OidcRefusal::BadSignature);
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let mut refreshed = false;
        loop {
            let keys = self
                .discovery(refreshed)
                .map_err(|_| OidcRefusal::TokenExchangeFailed)?
                .keys;
            let candidates: Vec<_> = keys
                .keys
                .iter()
                .filter(|k| {
                    header
                        .kid
                        .as_deref()
                        .is_none_or(|kid| k.common.key_id.as_deref() == Some(kid))
                })
                .collect();
            if candidates.is_empty() && !refreshed {
                refreshed = true;
                continue;
            }
            let mut last = OidcRefusal::BadSignature;
            for key in candidates {
                let Ok(decoding) = DecodingKey::from_jwk(key) else {
                    continue;
                };
                match jsonwebtoken::decode::<IdClaims>(token, &decoding, &validation) {
                    Ok(data) => return Ok(data.claims),
                    Err(e) => {
                        use jsonwebtoken::errors::ErrorKind;
                        last = match e.kind() {
                            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                                OidcRefusal::BadSignature
                            }
                            ErrorKind::InvalidIssuer => OidcRefusal::WrongIssuer,
                            ErrorKind::InvalidAudience => OidcRefusal::WrongAudience,
                            ErrorKind::ExpiredSignature => OidcRefusal::Expired,
                            _ => OidcRefusal::Invalid,
                        };
                        // A key that does not match is not the answer; any other failure is.
                        if last != OidcRefusal::BadSignature {
                            return Err(last);
                        }
                    }
                }
            }
            return Err(last);
        }
    }
}

/// `base64url(SHA-256(verifier))`: the PKCE S256 challenge.
fn challenge_of(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

impl App {
    fn oidc(&self) -> Result<&Oidc, AppError> {
        self.oidc
            .as_ref()
            .ok_or_else(|| AppError::NotSupported("no identity provider is configured".into()))
    }

    /// The provider's name, when sign-in through one is configured.
    pub fn oidc_name(&self) -> Option<&str> {
        self.oidc.as_ref().map(|o| o.settings.name.as_str())
    }

    /// Hale's public key for client authentication, as a JWK Set, to register with the
    /// provider.
    pub fn oidc_public_keys(&self) -> Result<Value, AppError> {
        Ok(json!({"keys": [self.oidc()?.public_jwk.clone()]}))
    }

    /// Starts a sign-in: the address to send the browser to, and the sealed value of the
    /// cookie that must come back with it. `redirect_uri` is Hale's callback address.
    /// With `link`, the signed-in account (both factors, recently) connects its identity at
    /// the provider instead.
    pub fn oidc_begin(
        &self,
        redirect_uri: &str,
        link: Option<&crate::accounts::SignedIn>,
    ) -> Result<(String, String), AppError> {
        let oidc = self.oidc()?;
        if let Some(who) = link
            && !self.recently_authenticated(who)
        {
            return Err(AppError::Unauthenticated(
                "confirm your password and security code first".into(),
            ));
        }
        let discovery = oidc.discovery(false)?;
        let pending = Pending {
            state: hale_auth::secret::random_token(),
            nonce: hale_auth::secret::random_token(),
            verifier: hale_auth::secret::random_token(),
            exp: now_secs() + LOGIN_LIFETIME_SECS,
            link: link.map(|w| w.account.id.clone()),
        };
        let mut params = vec![
            ("response_type", "code".to_owned()),
            ("client_id", oidc.settings.client_id.clone()),
            ("redirect_uri", redirect_uri.to_owned()),
            (
                "scope",
                format!("openid {}", oidc.settings.scope).trim().to_owned(),
            ),
            ("state", pending.state.clone()),
            ("nonce", pending.nonce.clone()),
            ("code_challenge", challenge_of(&pending.verifier)),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if !oidc.settings.vtr.is_empty() {
            params.push((
                "vtr",
                serde_json::to_string(&oidc.settings.vtr).map_err(internal)?,
            ));
        }
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let sep = if discovery.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let seal = &self.identity()?.seal;
        let cookie = B64.encode(seal.seal(
            &serde_json::to_vec(&pending).map_err(internal)?,
            "oidc-sign-in",
        ));
        Ok((
            format!("{}{sep}{query}", discovery.authorization_endpoint),
            cookie,
        ))
    }

    /// Finishes a sign-in: checks the answer against the cookie, exchanges the code, checks
    /// the ID token, and finds or creates the account (or, when the account page started it,
    /// connects the identity to `current`, the browser's signed-in account).
    pub fn oidc_finish(
        &self,
        cookie: &str,
        params: &[(String, String)],
        redirect_uri: &str,
        user_agent: &str,
        current: Option<&crate::accounts::SignedIn>,
    ) -> Result<Result<OidcOutcome, OidcRefusal>, AppError> {
        let answer = self.oidc_finish_checked(cookie, params, redirect_uri, user_agent, current)?;
        if let Err(refusal) = &answer {
            tracing::warn!(
                refusal = refusal.code(),
                "a sign-in through the identity provider was refused"
            );
        }
        Ok(answer)
    }

    fn oidc_finish_checked(
        &self,
        cookie: &str,
        params: &[(String, String)],
        redirect_uri: &str,
        user_agent: &str,
        current: Option<&crate::accounts::SignedIn>,
    ) -> Result<Result<OidcOutcome, OidcRefusal>, AppError> {
        use OidcRefusal::*;
        let oidc = self.oidc()?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let seal = &self.identity()?.seal;
        let pending: Option<Pending> = B64
            .decode(cookie)
            .ok()
            .and_then(|b| seal.open(&b, "oidc-sign-in").ok())
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(pending) = pending.filter(|p| p.exp > now_secs()) else {
            return Ok(Err(NotStarted));
        };
        if !hale_auth::secret::equal(get("state").as_bytes(), pending.state.as_bytes()) {
            return Ok(Err(NotStarted));
        }
        // A connection comes back to the browser, and the account, that started it.
        if let Some(linking) = &pending.link
            && current.is_none_or(|w| &w.account.id != linking)
        {
            return Ok(Err(NotStarted));
        }
        if !get("error").is_empty() || get("code").is_empty() {
            return Ok(Err(ProviderSaidNo));
        }
        // The code, for tokens: Hale proves who it is with a signed assertion.
        let Ok(discovery) = oidc.discovery(false) else {
            return Ok(Err(TokenExchangeFailed));
        };
        let form = [
            ("grant_type", "authorization_code".to_owned()),
            ("code", get("code").to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_verifier", pending.verifier.clone()),
            ("client_id", oidc.settings.client_id.clone()),
            (
                "client_assertion_type",
                crate::backend::ASSERTION_TYPE.to_owned(),
            ),
            (
                "client_assertion",
                oidc.client_assertion(&discovery.token_endpoint)?,
            ),
        ];
        let tokens: Value = match oidc
            .http()?
            .post(&discovery.token_endpoint)
            .form(&form)
            .send()
        {
            Ok(res) if res.status().is_success() => res.json().unwrap_or(Value::Null),
            _ => return Ok(Err(TokenExchangeFailed)),
        };
        let Some(id_token) = tokens["id_token"].as_str() else {
            return Ok(Err(TokenExchangeFailed));
        };
        let claims = match oidc.verify_id_token(id_token) {
            Ok(c) => c,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let nonce_matches = claims
            .nonce
            .as_deref()
            .is_some_and(|n| hale_auth::secret::equal(n.as_bytes(), pending.nonce.as_bytes()));
        if !nonce_matches {
            return Ok(Err(NonceReplayed));
        }
        // A nonce works once: a second use of the same ID token (or of a captured
        // callback) is refused, on every server sharing the database.
        let once = self.store.write(WriteBatch {
            ops: vec![WriteOp::UseAssertion {
                client_id: NONCE_SCOPE.to_owned(),
                jti: hale_auth::secret::digest(&pending.nonce),
                expires_at: claims.exp.saturating_mul(1000),
            }],
        });
        match once {
            Ok(_) => {}
            Err(hale_store::StoreError::Spent(_)) => return Ok(Err(NonceReplayed)),
            Err(e) => return Err(e.into()),
        }
        // The level asked for, and how strongly they signed in.
        let (level, two_factor) = if oidc.settings.vtr.is_empty() {
            (VerificationLevel::P0, false)
        } else {
            let Some(vot) = claims
                .vot
                .as_deref()
                .filter(|v| oidc.settings.vtr.iter().any(|asked| asked == v))
            else {
                return Ok(Err(LevelTooLow));
            };
            let Some((level, second)) = read_vot(vot) else {
                return Ok(Err(LevelTooLow));
            };
            // The proofing level the provider states, if lower, is the one that holds.
            let proofed = claims
                .identity_proofing_level
                .as_deref()
                .and_then(VerificationLevel::parse)
                .unwrap_or(level);
            (level.min(proofed), second)
        };
        // Who they are, from the userinfo endpoint, for the same subject.
        let info = match (
            &discovery.userinfo_endpoint,
            tokens["access_token"].as_str(),
        ) {
            (Some(url), Some(access)) => match oidc.http()?.get(url).bearer_auth(access).send() {
                Ok(res) if res.status().is_success() => res.json().unwrap_or(Value::Null),
                _ => return Ok(Err(TokenExchangeFailed)),
            },
            _ => Value::Null,
        };
        if !info.is_null() && info["sub"].as_str() != Some(claims.sub.as_str()) {
            return Ok(Err(Invalid));
        }
        if let Some(who) = current.filter(|_| pending.link.is_some()) {
            return self.oidc_link(oidc, &claims, &info, level, &who.account);
        }
        let account = match self.oidc_account(oidc, &claims, &info, level)? {
            Ok(a) => a,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let key = hale_auth::secret::random_token();
        let now = hale_fhir::date::now_millis();
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutSession(Session {
                key_hash: hale_auth::secret::digest(&key),
                account_id: account.id,
                created_at: now,
                last_seen_at: now,
                // A provider's second factor counts as Hale's; otherwise Hale asks for its own.
                second_factor_at: two_factor.then_some(now),
                user_agent: crate::accounts::describe_browser(user_agent),
            })],
        })?;
        Ok(Ok(OidcOutcome::SignedIn(key)))
    }

    /// Connects the provider's identity to a signed-in account (raising its verification
    /// level to what the provider checked), unless another account already has it.
    fn oidc_link(
        &self,
        oidc: &Oidc,
        claims: &IdClaims,
        info: &Value,
        level: VerificationLevel,
        account: &Account,
    ) -> Result<Result<OidcOutcome, OidcRefusal>, AppError> {
        let issuer = oidc.settings.issuer.clone();
        let linked = self.store.account_identity(&issuer, &claims.sub)?;
        if linked.as_ref().is_some_and(|l| l.account_id != account.id) {
            return Ok(Err(OidcRefusal::IdentityInUse));
        }
        let nhs_number = info["nhs_number"]
            .as_str()
            .filter(|n| hale_fhir::nhs_number::is_valid(n))
            .map(str::to_owned);
        let mut ops = vec![WriteOp::PutIdentity(AccountIdentity {
            issuer,
            subject: claims.sub.clone(),
            account_id: account.id.clone(),
            nhs_number,
            proofing_level: level,
            linked_at: linked.map_or_else(hale_fhir::date::now_millis, |l| l.linked_at),
        })];
        if level > account.verification_level {
            let mut raised = account.clone();
            raised.verification_level = level;
            ops.push(WriteOp::PutAccount(raised));
            if let Some(record) = &account.record {
                ops.push(WriteOp::Audit(self.identity_raised(record, account, level)));
            }
        }
        self.store.write(WriteBatch { ops })?;
        Ok(Ok(OidcOutcome::Linked))
    }

    /// Whether the account's identity at the configured provider is connected.
    pub fn oidc_linked(&self, account_id: &str) -> Result<bool, AppError> {
        let Some(oidc) = self.oidc.as_ref() else {
            return Ok(false);
        };
        Ok(self
            .store
            .identities_of_account(account_id)?
            .iter()
            .any(|i| i.issuer == oidc.settings.issuer))
    }

    /// The account of a provider's subject: found by the link made at the first sign-in
    /// (and raised to the level now verified), or made now with a new record.
    fn oidc_account(
        &self,
        oidc: &Oidc,
        claims: &IdClaims,
        info: &Value,
        level: VerificationLevel,
    ) -> Result<Result<Account, OidcRefusal>, AppError> {
        let now = hale_fhir::date::now_millis();
        let nhs_number = info["nhs_number"]
            .as_str()
            .filter(|n| hale_fhir::nhs_number::is_valid(n))
            .map(str::to_owned);
        let issuer = oidc.settings.issuer.clone();
        if let Some(link) = self.store.account_identity(&issuer, &claims.sub)? {
            let Some(mut account) = self.store.account(&link.account_id)? else {
                return Ok(Err(OidcRefusal::Invalid));
            };
            let mut ops = vec![WriteOp::PutIdentity(AccountIdentity {
                nhs_number: nhs_number.or(link.nhs_number),
                proofing_level: level,
                ..link
            })];
            if level > account.verification_level {
                account.verification_level = level;
                ops.push(WriteOp::PutAccount(account.clone()));
                if let Some(record) = &account.record {
                    ops.push(WriteOp::Audit(
                        self.identity_raised(record, &account, level),
                    ));
                }
            }
            self.store.write(WriteBatch { ops })?;
            return Ok(Ok(account));
        }
        let email = match info["email"]
            .as_str()
            .and_then(crate::accounts::normalise_email)
        {
            Some(e) if info["email_verified"] == json!(true) => e,
            _ => return Ok(Err(OidcRefusal::NoVerifiedEmail)),
        };
        if self.store.account_by_email(&email)?.is_some() {
            return Ok(Err(OidcRefusal::EmailInUse));
        }
        let name = [info["given_name"].as_str(), info["family_name"].as_str()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let name = if name.trim().is_empty() {
            email.clone()
        } else {
            name
        };
        let record = self.create_person(&name, Some(&email), nhs_number.as_deref())?;
        let account = Account {
            id: uuid::Uuid::new_v4().to_string(),
            email,
            kind: AccountKind::Person,
            record: Some(record.clone()),
            // No password: this account signs in through the provider.
            password_hash: String::new(),
            email_verified_at: Some(now),
            verification_level: level,
            totp_sealed: None,
            totp_last_step: None,
            created_at: now,
            org: None,
        };
        let mut ops = vec![
            WriteOp::PutAccount(account.clone()),
            WriteOp::PutIdentity(AccountIdentity {
                issuer,
                subject: claims.sub.clone(),
                account_id: account.id.clone(),
                nhs_number,
                proofing_level: level,
                linked_at: now,
            }),
        ];
        if level > VerificationLevel::P0 {
            ops.push(WriteOp::Audit(
                self.identity_raised(&record, &account, level),
            ));
        }
        self.store.write(WriteBatch { ops })?;
        Ok(Ok(account))
    }

    /// The audit entry of an identity verified by the provider.
    fn identity_raised(
        &self,
        record: &hale_core::RecordId,
        account: &Account,
        level: VerificationLevel,
    ) -> hale_store::AuditEntry {
        hale_store::AuditEntry {
            at: hale_fhir::date::now_millis(),
            record: Some(record.clone()),
            actor: format!("account:{}", account.id),
            on_behalf_of: None,
            app: None,
            action: "verify-identity".into(),
            what: format!("identity level {} (identity provider)", level.as_str()),
            purpose: "personal".into(),
            outcome: "ok".into(),
            request_id: "oidc-sign-in".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_vector_of_trust_gives_the_level_and_whether_a_second_factor_was_used() {
        assert_eq!(read_vot("P9.Cp.Cd"), Some((VerificationLevel::P9, true)));
        assert_eq!(read_vot("P9.Cm"), Some((VerificationLevel::P9, true)));
        assert_eq!(read_vot("P5.Cp"), Some((VerificationLevel::P5, false)));
        assert_eq!(read_vot("P0.Cp.Ck"), Some((VerificationLevel::P0, true)));
        assert_eq!(read_vot("X9.Cp"), None);
    }

    #[test]
    fn hales_public_key_is_a_p256_signing_key_with_its_id() {
        let oidc = Oidc::new(OidcSettings {
            issuer: "https://auth.example".into(),
            client_id: "hale".into(),
            scope: "profile".into(),
            vtr: vec![],
            name: "NHS login".into(),
            key_seed: [7; 32],
        })
        .unwrap();
        assert_eq!(oidc.public_jwk["crv"], "P-256");
        assert_eq!(oidc.public_jwk["kid"], KEY_ID);
        // An assertion it signs checks against the key it publishes.
        let assertion = oidc.client_assertion("https://auth.example/token").unwrap();
        let set: JwkSet = serde_json::from_value(json!({"keys": [oidc.public_jwk]})).unwrap();
        let key = DecodingKey::from_jwk(&set.keys[0]).unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["https://auth.example/token"]);
        let claims = jsonwebtoken::decode::<Value>(&assertion, &key, &v)
            .unwrap()
            .claims;
        assert_eq!(claims["iss"], "hale");
        assert_eq!(claims["sub"], "hale");
    }
}
