//! The OAuth 2.0 / SMART endpoints (issue 3 §6): the consent screen at `/oauth/authorize`
//! (after sign-in with two factors, coming back here), and the app-facing `/oauth/token`,
//! `/oauth/revoke`, `/oauth/introspect` and `/.well-known/smart-configuration`. The decisions
//! are `hale_app::oauth`'s; this module speaks HTTP and words.
// Handlers return early with the page to show (a redirect, an error page) as `Err`.
#![allow(clippy::result_large_err)]

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hale_app::oauth::{AuthorizeError, AuthorizeRequest};
use serde_json::json;

use super::account::{call, form, signed_in, signed_in_chrome};
use super::pages::{Chrome, Field, FormError, MessagePage};
use super::sharing::KINDS;
use super::{Lang, Visitor, html, see_other};
use crate::State;

type Page = Result<Response, Response>;

/// Where to come back to after signing in: the authorisation request, base64url-encoded.
pub(crate) const RETURN_COOKIE: &str = "hale_return";

fn fhir_base(state: &State, headers: &HeaderMap) -> String {
    format!("{}/fhir", public_base(state, headers))
}

fn public_base(state: &State, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn return_cookie(state: &State, query: Option<&str>) -> HeaderValue {
    let secure = if state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
    {
        "; Secure"
    } else {
        ""
    };
    let value = match query {
        Some(q) => format!(
            "{RETURN_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=900{secure}",
            B64.encode(q)
        ),
        None => format!("{RETURN_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

/// Where a browser goes once its second factor is proven: back to the app's authorisation
/// request if it came from one, else the record.
pub(crate) fn after_sign_in(state: &State, v: &Visitor) -> Response {
    let back = v
        .return_to
        .as_deref()
        .and_then(|b| B64.decode(b).ok())
        .and_then(|q| String::from_utf8(q).ok());
    match back {
        Some(query) => {
            let mut r = see_other(&format!("/oauth/authorize?{query}"));
            r.headers_mut()
                .append(header::SET_COOKIE, return_cookie(state, None));
            r
        }
        None => see_other("/record"),
    }
}

fn parse(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn cannot_connect(v: &Visitor, why: &str) -> Response {
    let l = v.lang;
    let page = MessagePage {
        chrome: Chrome::new(l, l.t("connect-app-error-title")),
        heading: l.t("connect-app-error-title"),
        paragraphs: vec![l.t(&format!("connect-app-error-{why}"))],
        reference: None,
        links: vec![],
    };
    html(StatusCode::BAD_REQUEST, page.render())
}

/// What the app will see and do, in plain words, one line each.
fn what_it_will_do(l: Lang, request: &AuthorizeRequest) -> Vec<String> {
    let kinds = match request.scopes.resource_types() {
        None => vec![l.t("connect-app-everything")],
        Some(types) => {
            let mut named: Vec<String> = KINDS
                .iter()
                .filter(|(_, ts)| ts.iter().any(|t| types.iter().any(|x| x == t)))
                .map(|(slug, _)| l.t(&format!("sharing-kind-{slug}")).to_lowercase())
                .collect();
            let known: Vec<&str> = KINDS
                .iter()
                .flat_map(|(_, ts)| ts.iter().copied())
                .collect();
            named.extend(
                types
                    .iter()
                    .filter(|t| !known.contains(&t.as_str()) && t.as_str() != "Patient")
                    .map(|t| l.t1("connect-app-other-kind", "kind", t)),
            );
            if types.iter().any(|t| t == "Patient") {
                named.push(l.t("connect-app-details"));
            }
            named
        }
    };
    let mut lines = vec![l.t1("connect-app-see", "kinds", kinds.join(", "))];
    if request.scopes.writes() {
        lines.push(l.t("connect-app-write"));
    }
    if request
        .scope
        .split_whitespace()
        .any(|s| s == "offline_access")
    {
        lines.push(l.t("connect-app-offline"));
    }
    lines
}

#[derive(Template)]
#[template(path = "oauth_consent.html")]
struct ConsentPage {
    chrome: Chrome,
    errors: Vec<FormError>,
    intro: String,
    will: Vec<String>,
    csrf: String,
    request: String,
    labels: Field,
}

fn consent_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    request: &AuthorizeRequest,
    query: &str,
) -> ConsentPage {
    let l = v.lang;
    let labels = super::sharing::labels_field(l, "connect-app-labels", "connect-app-labels-hint");
    ConsentPage {
        chrome: signed_in_chrome(
            state,
            v,
            who,
            l.t1("connect-app-title", "app", &request.client.name),
        ),
        errors: Vec::new(),
        intro: l.t1("connect-app-intro", "app", &request.client.name),
        will: what_it_will_do(l, request),
        csrf: super::session_csrf(state, v),
        // The request travels through the form as it came, encoded so that nothing in it
        // needs escaping.
        request: B64.encode(query),
        labels,
    }
}

/// Checks the request; an error either shows a page or goes back to the app.
async fn checked(
    state: &State,
    v: &Visitor,
    query: String,
    base: String,
) -> Result<AuthorizeRequest, Response> {
    let params = parse(&query);
    let outcome = call(state, v, move |app| Ok(app.check_authorize(&params, &base))).await?;
    outcome.map_err(|e| match e.location() {
        Some(location) => see_other(&location),
        None => match e {
            AuthorizeError::NoRedirect(why) => cannot_connect(v, why),
            AuthorizeError::Redirect { .. } => cannot_connect(v, "unknown-app"),
        },
    })
}

/// `GET /oauth/authorize`: the consent screen (signing in first if need be).
pub(crate) async fn authorize_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Page {
    let query = query.unwrap_or_default();
    let request = checked(&state, &v, query.clone(), fhir_base(&state, &headers)).await?;
    let who = signed_in(&state, &v).await?;
    let Some(who) = who.filter(|w| w.strength() == hale_core::AuthStrength::TwoFactor) else {
        let mut r = see_other("/sign-in");
        r.headers_mut()
            .append(header::SET_COOKIE, return_cookie(&state, Some(&query)));
        return Ok(r);
    };
    Ok(html(
        StatusCode::OK,
        consent_page(&state, &v, &who, &request, &query).render(),
    ))
}

/// `POST /oauth/authorize`: allow or do not allow.
pub(crate) async fn authorize(
    AxumState(state): AxumState<State>,
    v: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let who = super::account::two_factor(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let query = B64
        .decode(data.get("request"))
        .ok()
        .and_then(|q| String::from_utf8(q).ok())
        .unwrap_or_default();
    let request = checked(&state, &v, query.clone(), fhir_base(&state, &headers)).await?;
    if data.get("decision") != "allow" {
        let denied = AuthorizeError::Redirect {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            error: "access_denied",
            description: "the person did not allow it",
        };
        return Ok(see_other(&denied.location().unwrap_or_default()));
    }
    let labels = super::sharing::labels_chosen(&data);
    if labels.is_empty() {
        let mut page = consent_page(&state, &v, &who, &request, &query);
        let message = v.lang.t("give-error-labels");
        page.labels.error = Some(message.clone());
        page.labels.value = String::new();
        page.errors.push(FormError {
            field: "labels".into(),
            message,
        });
        page.chrome.has_errors = true;
        return Ok(html(StatusCode::OK, page.render()));
    }
    let checked_who = who.clone();
    let location = call(&state, &v, move |app| {
        app.approve_app(&checked_who, &request, &labels)
    })
    .await?;
    Ok(see_other(&location))
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(
        (
            status,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response(),
    )
}

fn form_pairs(body: &Bytes) -> Option<Vec<(String, String)>> {
    (body.len() <= 16 * 1024).then(|| form_urlencoded::parse(body).into_owned().collect())
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    AxumState(state): AxumState<State>,
    v: Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(params) = form_pairs(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request is too large",
        );
    };
    let (app, from) = (state.app.clone(), v.client.clone());
    // The audience a client assertion must name (set --public-url behind a proxy).
    let token_url = format!("{}/oauth/token", public_base(&state, &headers));
    match tokio::task::spawn_blocking(move || app.oauth_token(&params, &from, &token_url)).await {
        Ok(Ok(Ok(answer))) => no_store(Json(answer).into_response()),
        Ok(Ok(Err(e))) => {
            let status = if e.code() == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            oauth_error(status, e.code(), e.description())
        }
        Ok(Err(hale_app::AppError::Throttled(secs))) => {
            let mut r = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "too many requests",
            );
            if let Ok(h) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, h);
            }
            r
        }
        _ => {
            tracing::error!(request_id = %v.request_id, "the token endpoint failed");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "please try again",
            )
        }
    }
}

/// `POST /oauth/revoke` (RFC 7009): always 200.
pub(crate) async fn revoke(AxumState(state): AxumState<State>, body: Bytes) -> Response {
    let Some(params) = form_pairs(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request is too large",
        );
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map_or_else(String::new, |(_, v)| v.clone())
    };
    let (token, client) = (get("token"), get("client_id"));
    let app = state.app.clone();
    let _ = tokio::task::spawn_blocking(move || app.oauth_revoke(&token, &client)).await;
    no_store(StatusCode::OK.into_response())
}

/// `POST /oauth/introspect` (RFC 7662).
pub(crate) async fn introspect(AxumState(state): AxumState<State>, body: Bytes) -> Response {
    let Some(params) = form_pairs(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request is too large",
        );
    };
    let token = params
        .iter()
        .find(|(k, _)| k == "token")
        .map_or_else(String::new, |(_, v)| v.clone());
    let app = state.app.clone();
    match tokio::task::spawn_blocking(move || app.oauth_introspect(&token)).await {
        Ok(Ok(answer)) => no_store(Json(answer).into_response()),
        _ => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "please try again",
        ),
    }
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0): for apps that
/// ask for `openid` and check the ID token Hale returns with their tokens.
pub(crate) async fn openid_configuration(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
) -> Response {
    let base = public_base(&state, &headers);
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "fhirUser", "launch/patient", "offline_access"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

/// `GET /.well-known/jwks.json`: the public keys Hale's ID tokens are signed with.
pub(crate) async fn jwks(AxumState(state): AxumState<State>) -> Response {
    Json(state.app.id_token_keys()).into_response()
}

/// `GET /.well-known/smart-configuration` (SMART App Launch 2.x §2.1).
pub(crate) async fn smart_configuration(
    AxumState(state): AxumState<State>,
    headers: HeaderMap,
) -> Response {
    let base = public_base(&state, &headers);
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384", "RS256", "ES256", "RS512", "PS256", "PS384", "PS512"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["launch/patient", "offline_access", "patient/*.cruds", "patient/*.rs", "patient/*.read", "system/*.cruds", "system/*.rs", "system/*.read"],
        "capabilities": [
            "launch-standalone", "client-public", "client-confidential-asymmetric", "context-standalone-patient", "sso-openid-connect",
            "permission-patient", "permission-v1", "permission-v2", "permission-offline"
        ],
    }))
    .into_response()
}
