//! The OAuth 2.0 authorisation server for apps (issue 3 §6): SMART App Launch 2, standalone
//! patient launch. An operator registers an app; the person, signed in with two factors,
//! approves it on a consent screen that says in plain words what it will see and do; the app
//! exchanges the code (PKCE `S256` only) for an access token bound to the person's record and
//! a refresh token, rotated on every use.
//!
//! What an app may reach is a grant (a `Consent`, role `app`) in the person's record, like a
//! carer's: every access token names it and every request checks it, so disconnecting the
//! app, revoking any of its tokens, or replaying a spent refresh token (a sign that it was
//! stolen) ends the whole connection on the next request.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hale_core::{Actor, AuthStrength, RecordId, RequestContext, ResourceId, Scopes};
use hale_store::{Expect, OAuthClient, OAuthToken, WriteBatch, WriteOp};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::accounts::SignedIn;
use crate::grants::{Grant, Holder, Role, Status};
use crate::labels::PrivacyLabel;
use crate::{App, AppError, Claims};

/// How long an authorisation code can be exchanged.
pub const CODE_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// How long an access token lives (issue 3: at most an hour).
pub const ACCESS_TOKEN_SECS: i64 = 3600;
/// How long a refresh token can be used (each use gives a new one).
pub const REFRESH_LIFETIME_MS: i64 = 90 * 24 * 3600 * 1000;

/// Scopes that are not about data and that an app may ask for.
const OTHER_SCOPES: [&str; 5] = [
    "launch/patient",
    "openid",
    "fhirUser",
    "offline_access",
    "online_access",
];

/// A checked request to `/oauth/authorize`.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The app.
    pub client: OAuthClient,
    /// Where to send the answer (exactly as registered).
    pub redirect_uri: String,
    /// The scopes asked for, as given (normalised spacing).
    pub scope: String,
    /// The data scopes among them.
    pub scopes: Scopes,
    /// Passed back unchanged.
    pub state: String,
    /// The PKCE challenge (S256).
    pub challenge: String,
    /// The app's OpenID Connect nonce (empty if none), returned in its ID token.
    pub nonce: String,
}

/// Why an authorisation request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The app or its return address cannot be trusted: say so on a page, never redirect.
    NoRedirect(&'static str),
    /// Tell the app, at its registered address (RFC 6749 §4.1.2.1).
    Redirect {
        /// The registered address.
        redirect_uri: String,
        /// The app's state.
        state: String,
        /// The OAuth error code.
        error: &'static str,
        /// Why, in words.
        description: &'static str,
    },
}

impl AuthorizeError {
    /// The address to send the browser to, for a redirecting error.
    pub fn location(&self) -> Option<String> {
        match self {
            AuthorizeError::NoRedirect(_) => None,
            AuthorizeError::Redirect {
                redirect_uri,
                state,
                error,
                description,
            } => Some(with_query(
                redirect_uri,
                &[
                    ("error", error),
                    ("error_description", description),
                    ("state", state),
                ],
            )),
        }
    }
}

/// Why a token request was refused (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// A parameter is missing or wrong.
    InvalidRequest(&'static str),
    /// The client is unknown.
    InvalidClient,
    /// The code or refresh token is wrong, spent, expired, or its connection has ended.
    InvalidGrant(&'static str),
    /// Not `authorization_code`, `refresh_token` or `client_credentials`.
    UnsupportedGrantType,
    /// The client may not use this grant (an app asking for `client_credentials`).
    UnauthorizedClient,
    /// A client assertion that does not hold: signature, issuer, audience, lifetime, or a
    /// `jti` seen before. One answer for all, so it teaches nothing to whoever forged it.
    InvalidClientAssertion,
    /// Scopes that are not `system/` scopes, or none.
    InvalidScope,
}

impl TokenError {
    /// The OAuth error code.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::UnauthorizedClient => "unauthorized_client",
            TokenError::InvalidClientAssertion => "invalid_client",
            TokenError::InvalidScope => "invalid_scope",
        }
    }

    /// Why, in words (never about the person or their data).
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(why) | TokenError::InvalidGrant(why) => why,
            TokenError::InvalidClient => "the client is not registered",
            TokenError::UnsupportedGrantType => {
                "only authorization_code, refresh_token and client_credentials are supported"
            }
            TokenError::UnauthorizedClient => {
                "this client is not registered for the client_credentials grant"
            }
            TokenError::InvalidClientAssertion => "the client assertion is not valid",
            TokenError::InvalidScope => "ask for one or more system/ scopes",
        }
    }
}

/// A token response (RFC 6749 §5.1, with SMART's `patient`).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: i64,
    /// The scopes granted.
    pub scope: String,
    /// The Patient id of the record (SMART launch context); none for an organisation's
    /// system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// A new refresh token; the one used is spent. None for an organisation's system, which
    /// signs a new assertion instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An OpenID Connect ID token, when the app asked for `openid`: who the person is
    /// (`fhirUser`: their Patient), signed with Hale's key (`/.well-known/jwks.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{query}")
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// `BASE64URL(SHA-256(verifier))` (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

fn pkce_shaped(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn now_ms() -> i64 {
    hale_fhir::date::now_millis()
}

impl App {
    /// Registers an app (operator use): returns its client id. A public app (on a phone, in
    /// a browser) has no secret and relies on PKCE; a confidential one (a server) also
    /// proves itself at the token endpoint with a JWT signed by one of its registered public
    /// keys (`jwks`, a JWK Set; SMART's `client-confidential-asymmetric`).
    pub fn register_client(
        &self,
        name: &str,
        redirect_uris: &[String],
        public: bool,
        jwks: Option<&str>,
    ) -> Result<String, AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::bad_request("name", "give the app a name"));
        }
        match (public, jwks) {
            (true, Some(_)) => {
                return Err(AppError::bad_request(
                    "public",
                    "a public app has no keys: register it with --public, or with --jwks",
                ));
            }
            (false, None) => {
                return Err(AppError::bad_request(
                    "jwks",
                    "a confidential app proves itself with a key: give its public keys with --jwks (or register it with --public)",
                ));
            }
            (false, Some(keys)) => {
                crate::backend::check_jwks(keys)?;
            }
            (true, None) => {}
        }
        if redirect_uris.is_empty() {
            return Err(AppError::bad_request(
                "redirect-uri",
                "give at least one redirect URI",
            ));
        }
        for uri in redirect_uris {
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|p| {
                    uri.strip_prefix(p)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
                });
            let ok = !uri.contains('#')
                && !uri.chars().any(char::is_whitespace)
                && (uri.starts_with("https://") && uri.len() > "https://".len() || loopback);
            if !ok {
                return Err(AppError::bad_request(
                    "redirect-uri",
                    "a redirect URI must be https (or http on this machine), without a fragment",
                ));
            }
        }
        let client_id = hale_auth::secret::random_token()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(22)
            .collect::<String>();
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutClient(OAuthClient {
                client_id: client_id.clone(),
                name: name.to_owned(),
                redirect_uris: redirect_uris.to_vec(),
                public,
                created_at: now_ms(),
                org: None,
                jwks: jwks.map(str::to_owned),
            })],
        })?;
        Ok(client_id)
    }

    /// Checks a request to `/oauth/authorize` (its query), against `fhir_base` for `aud`.
    pub fn check_authorize(
        &self,
        params: &[(String, String)],
        fhir_base: &str,
    ) -> Result<AuthorizeRequest, AuthorizeError> {
        let client = self
            .store
            .oauth_client(get(params, "client_id"))
            .ok()
            .flatten()
            .ok_or(AuthorizeError::NoRedirect("unknown-app"))?;
        let redirect_uri = get(params, "redirect_uri");
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(AuthorizeError::NoRedirect("unknown-redirect"));
        }
        let state = get(params, "state").to_owned();
        let refuse = |error, description| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_owned(),
            state: state.clone(),
            error,
            description,
        };
        if get(params, "response_type") != "code" {
            return Err(refuse(
                "unsupported_response_type",
                "only the authorization code flow is supported",
            ));
        }
        if get(params, "code_challenge_method") != "S256" {
            return Err(refuse(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required (plain is refused)",
            ));
        }
        let challenge = get(params, "code_challenge");
        if !pkce_shaped(challenge) {
            return Err(refuse(
                "invalid_request",
                "code_challenge is missing or malformed",
            ));
        }
        let aud = get(params, "aud").trim_end_matches('/');
        if !aud.is_empty() && aud != fhir_base.trim_end_matches('/') {
            return Err(refuse("invalid_request", "aud is not this FHIR server"));
        }
        let scope = get(params, "scope")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let scopes = Scopes::parse(&scope)
            .map_err(|_| refuse("invalid_scope", "a scope is not a SMART scope"))?;
        let unknown_other = scope
            .split_whitespace()
            .any(|s| !s.contains('/') && !OTHER_SCOPES.contains(&s));
        if !scopes.patient_only() || unknown_other {
            return Err(refuse(
                "invalid_scope",
                "an app a person connects may ask for patient/ scopes (and launch/patient, openid, fhirUser, offline_access)",
            ));
        }
        let nonce = get(params, "nonce");
        if nonce.len() > 255 {
            return Err(refuse("invalid_request", "nonce is too long"));
        }
        Ok(AuthorizeRequest {
            client,
            redirect_uri: redirect_uri.to_owned(),
            scope,
            scopes,
            state,
            challenge: challenge.to_owned(),
            nonce: nonce.to_owned(),
        })
    }

    /// The person approves: the app is connected to their record (replacing an earlier
    /// connection of the same app), seeing `labels` within the scopes. Returns where to send
    /// the browser, with the code.
    pub fn approve_app(
        &self,
        who: &SignedIn,
        request: &AuthorizeRequest,
        labels: &[PrivacyLabel],
    ) -> Result<String, AppError> {
        if who.strength() < AuthStrength::TwoFactor {
            return Err(AppError::Unauthenticated(
                "a second factor is needed before connecting an app".into(),
            ));
        }
        let record = self.own_record(who)?;
        if labels.is_empty() {
            return Err(AppError::bad_request("labels", "choose at least one label"));
        }
        let owner = RequestContext {
            actor: Actor::Record {
                record: record.clone(),
                scopes: Scopes::parse("patient/*.cruds")
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                subject: format!("account:{}", who.account.id),
            },
            verification: who.account.verification_level,
            strength: who.strength(),
            request_id: "connect-app".into(),
        };
        // One connection per app and person: an earlier one ends.
        for earlier in self.grants_of_record(&owner)? {
            if earlier.role == Role::App
                && earlier.status == Status::Active
                && earlier.holder
                    == (Holder::App {
                        client: request.client.client_id.clone(),
                        account: who.account.id.clone(),
                    })
            {
                self.revoke_access(&owner, &earlier.id)?;
            }
        }
        let now = now_ms();
        let mut labels = labels.to_vec();
        labels.sort();
        labels.dedup();
        let grant = Grant {
            id: ResourceId::generate().to_string(),
            record: record.clone(),
            holder: Holder::App {
                client: request.client.client_id.clone(),
                account: who.account.id.clone(),
            },
            name: request.client.name.clone(),
            person: String::new(),
            role: Role::App,
            labels,
            types: request.scopes.resource_types().unwrap_or_default(),
            write: request.scopes.writes(),
            start: now,
            end: None,
            status: Status::Active,
            given_at: now,
            passcode_hash: None,
        };
        self.write_grant(&owner, &grant, Expect::Absent, "connect-app")?;
        let code = hale_auth::secret::random_token();
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutOAuthToken(OAuthToken {
                token_hash: hale_auth::secret::digest(&code),
                kind: "code".into(),
                client_id: request.client.client_id.clone(),
                grant_id: grant.id.clone(),
                record_id: record.to_string(),
                account_id: who.account.id.clone(),
                scope: request.scope.clone(),
                redirect_uri: Some(request.redirect_uri.clone()),
                challenge: Some(request.challenge.clone()),
                expires_at: now + CODE_LIFETIME_MS,
                used_at: None,
                nonce: (!request.nonce.is_empty()).then(|| request.nonce.clone()),
            })],
        })?;
        Ok(with_query(
            &request.redirect_uri,
            &[("code", &code), ("state", &request.state)],
        ))
    }

    /// Ends an app's connection (its grant), whoever asks: a revocation, a replayed token.
    fn end_connection(&self, record: &RecordId, grant_id: &str, why: &str) -> Result<(), AppError> {
        let Some(mut grant) = self.grant_by_id(record, grant_id)? else {
            return Ok(());
        };
        if grant.status == Status::Revoked {
            return Ok(());
        }
        let now = now_ms();
        grant.status = Status::Revoked;
        grant.end = Some(now.max(grant.start));
        let server = RequestContext::operator(
            Actor::System {
                scopes: Scopes::parse("system/Consent.u")
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                subject: "oauth-server".into(),
            },
            why,
        );
        self.write_grant(&server, &grant, Expect::Any, why)
    }

    fn access_token(&self, tok: &OAuthToken, grant: &Grant) -> Result<String, AppError> {
        let level = self
            .store
            .account(&tok.account_id)?
            .map_or(hale_core::VerificationLevel::P0, |a| a.verification_level);
        let now = now_ms() / 1000;
        self.tokens.sign(&Claims {
            sub: format!("account:{}", tok.account_id),
            rec: Some(grant.record.to_string()),
            grt: Some(grant.id.clone()),
            app: Some(tok.client_id.clone()),
            org: None,
            lvl: Some(level.as_str().to_owned()),
            scope: Scopes::parse(&tok.scope)
                .map_err(|e| AppError::Internal(e.to_string()))?
                .as_str()
                .to_owned(),
            iat: now,
            exp: now + ACCESS_TOKEN_SECS,
        })
    }

    /// An ID token for a code or refresh token whose scopes include `openid` (OpenID
    /// Connect Core 2; SMART's `fhirUser` is the person's Patient): for the app, about the
    /// person's account, with the nonce the app sent when it asked for the code.
    fn id_token(&self, tok: &OAuthToken, issuer: &str) -> Result<Option<String>, AppError> {
        if !tok.scope.split_whitespace().any(|s| s == "openid") {
            return Ok(None);
        }
        let Some(key) = &self.id_token_key else {
            return Ok(None);
        };
        let record = RecordId::parse(&tok.record_id)?;
        let now = now_ms() / 1000;
        let mut claims = json!({
            "iss": issuer, "aud": tok.client_id, "sub": tok.account_id,
            "iat": now, "exp": now + ACCESS_TOKEN_SECS,
            "fhirUser": format!("{issuer}/fhir/Patient/{}", record.patient_id().as_str()),
        });
        if let Some(nonce) = &tok.nonce {
            claims["nonce"] = json!(nonce);
        }
        key.sign(&claims).map(Some)
    }

    /// `POST /oauth/token` (at `token_url`), from network address `from`. Failures count
    /// towards the same limits as sign-in, per client and per address: guessing codes,
    /// refresh tokens or assertions is slowed down and answered 429.
    pub fn oauth_token(
        &self,
        params: &[(String, String)],
        from: &str,
        token_url: &str,
    ) -> Result<Result<TokenResponse, TokenError>, AppError> {
        let client = match get(params, "client_id") {
            "" => {
                crate::backend::claimed_client(get(params, "client_assertion")).unwrap_or_default()
            }
            id => id.to_owned(),
        };
        let keys = [format!("oauth-client:{client}"), format!("addr:{from}")];
        if let Some(identity) = &self.identity {
            identity.throttle.check(&keys)?;
        }
        let answer = if get(params, "grant_type") == "client_credentials" {
            self.client_credentials(|name| get(params, name).to_owned(), token_url)?
        } else {
            let issuer = token_url.strip_suffix("/oauth/token").unwrap_or(token_url);
            self.oauth_token_unthrottled(params, issuer)?
        };
        if let Some(identity) = &self.identity {
            match &answer {
                Ok(_) => identity.throttle.succeeded(&keys[0]),
                Err(_) => identity.throttle.failed(&keys),
            }
        }
        Ok(answer)
    }

    fn oauth_token_unthrottled(
        &self,
        params: &[(String, String)],
        issuer: &str,
    ) -> Result<Result<TokenResponse, TokenError>, AppError> {
        // A confidential app proves who it is with a signed assertion; a public one names
        // itself (PKCE proves the rest).
        let named = get(params, "client_id");
        let claimed = crate::backend::claimed_client(get(params, "client_assertion"));
        let Some(client) = self
            .store
            .oauth_client(claimed.as_deref().unwrap_or(named))?
        else {
            return Ok(Err(TokenError::InvalidClient));
        };
        if !client.public {
            let token_url = format!("{issuer}/oauth/token");
            let proven =
                self.authenticate_client(&|name: &str| get(params, name).to_owned(), &token_url)?;
            match proven {
                Ok(c) if c.org.is_none() && (named.is_empty() || named == c.client_id) => {}
                // Any failure to prove itself, a missing assertion included, is the client's.
                _ => return Ok(Err(TokenError::InvalidClientAssertion)),
            }
        }
        let client_id = client.client_id.as_str();
        let (presented, kind) = match get(params, "grant_type") {
            "authorization_code" => (get(params, "code"), "code"),
            "refresh_token" => (get(params, "refresh_token"), "refresh"),
            _ => return Ok(Err(TokenError::UnsupportedGrantType)),
        };
        if presented.is_empty() {
            return Ok(Err(TokenError::InvalidRequest(
                "the code or refresh token is missing",
            )));
        }
        let hash = hale_auth::secret::digest(presented);
        let Some(tok) = self.store.oauth_token(&hash)?.filter(|t| t.kind == kind) else {
            return Ok(Err(TokenError::InvalidGrant(
                "unknown code or refresh token",
            )));
        };
        let record = RecordId::parse(&tok.record_id)?;
        if tok.client_id != client_id {
            return Ok(Err(TokenError::InvalidGrant("issued to another client")));
        }
        if tok.used_at.is_some() {
            // Spent before: someone else has it. The whole connection ends (RFC 6819 §5.2.2.3).
            self.end_connection(&record, &tok.grant_id, "token-replayed")?;
            return Ok(Err(TokenError::InvalidGrant(
                "already used; the connection has ended",
            )));
        }
        if tok.expires_at <= now_ms() {
            return Ok(Err(TokenError::InvalidGrant("expired")));
        }
        if kind == "code" {
            if tok.redirect_uri.as_deref() != Some(get(params, "redirect_uri")) {
                return Ok(Err(TokenError::InvalidGrant(
                    "redirect_uri differs from the request",
                )));
            }
            let verifier = get(params, "code_verifier");
            if !pkce_shaped(verifier) || tok.challenge.as_deref() != Some(s256(verifier).as_str()) {
                return Ok(Err(TokenError::InvalidGrant(
                    "code_verifier does not match",
                )));
            }
        }
        let Some(grant) = self
            .grant_by_id(&record, &tok.grant_id)?
            .filter(|g| g.in_force(now_ms()))
        else {
            return Ok(Err(TokenError::InvalidGrant(
                "the person has disconnected the app",
            )));
        };
        // A refresh token only for an app that asked to keep its access (SMART's
        // `offline_access` or `online_access`); one it has is rotated on every use.
        let keeps_access = tok
            .scope
            .split_whitespace()
            .any(|s| s == "offline_access" || s == "online_access");
        let refresh = keeps_access.then(hale_auth::secret::random_token);
        let mut ops = vec![WriteOp::UseOAuthToken {
            token_hash: hash.clone(),
        }];
        if let Some(refresh) = &refresh {
            ops.push(WriteOp::PutOAuthToken(OAuthToken {
                token_hash: hale_auth::secret::digest(refresh),
                kind: "refresh".into(),
                redirect_uri: None,
                challenge: None,
                expires_at: now_ms() + REFRESH_LIFETIME_MS,
                used_at: None,
                nonce: None,
                ..tok.clone()
            }));
        }
        let spent = self.store.write(WriteBatch { ops });
        match spent {
            Ok(_) => {}
            // Another request spent it first.
            Err(hale_store::StoreError::Spent(_)) => {
                self.end_connection(&record, &tok.grant_id, "token-replayed")?;
                return Ok(Err(TokenError::InvalidGrant(
                    "already used; the connection has ended",
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Ok(TokenResponse {
            access_token: self.access_token(&tok, &grant)?,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_SECS,
            scope: tok.scope.clone(),
            patient: Some(record.patient_id().as_str().to_owned()),
            refresh_token: refresh,
            id_token: self.id_token(&tok, issuer)?,
        }))
    }

    /// The connection (grant) a token belongs to, if it is one of ours: an access token's
    /// grant, or a code's or refresh token's.
    fn connection_of(&self, token: &str) -> Result<Option<(RecordId, String, String)>, AppError> {
        if let Ok((
            Actor::Grantee {
                record,
                grant,
                app: Some(app),
                ..
            },
            _,
        )) = self.tokens.verify(token, now_ms() / 1000)
        {
            return Ok(Some((record, grant, app)));
        }
        Ok(self
            .store
            .oauth_token(&hale_auth::secret::digest(token))?
            .and_then(|t| Some((RecordId::parse(&t.record_id).ok()?, t.grant_id, t.client_id))))
    }

    /// `POST /oauth/revoke` (RFC 7009): ends the connection the token belongs to, if the
    /// client asking is the one it was issued to. Always succeeds, so it reveals nothing.
    pub fn oauth_revoke(&self, token: &str, client_id: &str) -> Result<(), AppError> {
        if let Some((record, grant, app)) = self.connection_of(token.trim())?
            && app == client_id
        {
            self.end_connection(&record, &grant, "token-revoked")?;
        }
        Ok(())
    }

    /// `POST /oauth/introspect` (RFC 7662): whether a token works now, and for what.
    pub fn oauth_introspect(&self, token: &str) -> Result<Value, AppError> {
        let token = token.trim();
        let inactive = json!({"active": false});
        let Ok((actor, _)) = self.tokens.verify(token, now_ms() / 1000) else {
            // A refresh token: active while unspent, unexpired and connected.
            let Some(t) = self
                .store
                .oauth_token(&hale_auth::secret::digest(token))?
                .filter(|t| t.kind == "refresh" && t.used_at.is_none() && t.expires_at > now_ms())
            else {
                return Ok(inactive);
            };
            let record = RecordId::parse(&t.record_id)?;
            let live = self
                .grant_by_id(&record, &t.grant_id)?
                .is_some_and(|g| g.in_force(now_ms()));
            return Ok(if live {
                json!({"active": true, "token_type": "refresh_token", "client_id": t.client_id,
                    "scope": t.scope, "patient": record.patient_id().as_str(),
                    "exp": t.expires_at / 1000})
            } else {
                inactive
            });
        };
        if let Actor::Organisation {
            subject, scopes, ..
        } = &actor
        {
            // An organisation's system: active while it is still registered.
            let exp = self.tokens.verify_claims(token, now_ms() / 1000)?.exp;
            return Ok(if self.store.oauth_client(subject)?.is_some() {
                json!({"active": true, "token_type": "Bearer", "client_id": subject,
                    "scope": scopes.as_str(), "exp": exp})
            } else {
                inactive
            });
        }
        let Actor::Grantee {
            record,
            grant,
            app: Some(app),
            subject,
            scopes,
        } = actor
        else {
            return Ok(inactive);
        };
        let live = self.grant_by_id(&record, &grant)?.is_some_and(|g| {
            g.in_force(now_ms()) && g.holder_subject().as_deref() == Some(subject.as_str())
        });
        Ok(if live {
            json!({"active": true, "token_type": "Bearer", "client_id": app, "scope": scopes.as_str(),
                "patient": record.patient_id().as_str()})
        } else {
            inactive
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(pkce_shaped("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!pkce_shaped("too-short"));
        assert!(!pkce_shaped(&"a".repeat(129)));
    }

    #[test]
    fn errors_go_back_to_the_app_with_its_state() {
        let e = AuthorizeError::Redirect {
            redirect_uri: "https://app.example/cb?x=1".into(),
            state: "s 1".into(),
            error: "access_denied",
            description: "no",
        };
        assert_eq!(
            e.location().unwrap(),
            "https://app.example/cb?x=1&error=access_denied&error_description=no&state=s+1"
        );
    }
}
