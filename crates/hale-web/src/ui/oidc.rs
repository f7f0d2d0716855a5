//! Signing in through an OpenID Connect provider (issue 3 §3): `/sign-in/oidc` sends the
//! browser to the provider with a sealed cookie naming this sign-in; the provider sends it
//! back to `/sign-in/oidc/callback`, where `hale_app::oidc` checks everything and starts a
//! session. This module speaks HTTP and words.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hale_app::oidc::{OidcOutcome, OidcRefusal};

use super::account::call;
use super::pages::{Chrome, MessagePage};
use super::{Visitor, html, see_other};
use crate::State;

/// Carries the sealed state, nonce and PKCE verifier of one sign-in, for ten minutes.
const OIDC_COOKIE: &str = "hale_oidc";

fn callback_url(state: &State) -> String {
    let base = state.config.public_url.as_deref().unwrap_or("");
    format!("{}/sign-in/oidc/callback", base.trim_end_matches('/'))
}

fn oidc_cookie(state: &State, value: Option<&str>) -> HeaderValue {
    let secure = super::secure(state);
    let text = match value {
        Some(v) => format!(
            "{OIDC_COOKIE}={v}; Path=/sign-in/oidc; HttpOnly; SameSite=Lax; Max-Age=600{secure}"
        ),
        None => {
            format!("{OIDC_COOKIE}=; Path=/sign-in/oidc; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
        }
    };
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""))
}

/// `GET /sign-in/oidc`: off to the provider.
pub(crate) async fn start(AxumState(state): AxumState<State>, v: Visitor) -> Response {
    off_to_provider(&state, &v, None).await
}

/// `POST /account/identity-provider`: the signed-in person connects their identity at the
/// provider to their account (both factors again first, as for any change to how they sign
/// in).
pub(crate) async fn connect(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Response {
    let who = match super::account::two_factor(&state, &v).await {
        Ok(w) => w,
        Err(page) => return page,
    };
    if let Err(page) = super::account::form(&state, &v, v.session_key.as_deref(), &body) {
        return page;
    }
    if let Err(page) = super::account::recent(&state, &who, "identity-provider") {
        return page;
    }
    off_to_provider(&state, &v, Some(who)).await
}

async fn off_to_provider(
    state: &State,
    v: &Visitor,
    link: Option<hale_app::accounts::SignedIn>,
) -> Response {
    let redirect_uri = callback_url(state);
    let app = state.app.clone();
    let begun =
        tokio::task::spawn_blocking(move || app.oidc_begin(&redirect_uri, link.as_ref())).await;
    match begun {
        Ok(Ok((url, cookie))) => {
            let mut r = see_other(&url);
            r.headers_mut()
                .append(header::SET_COOKIE, oidc_cookie(state, Some(&cookie)));
            r
        }
        // The provider cannot be reached (or answers nonsense): say so, not "an error".
        Ok(Err(hale_app::AppError::Internal(_))) => {
            let mut r = refused(v, OidcRefusal::TokenExchangeFailed);
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r
        }
        Ok(Err(e)) => {
            let failed = call(state, v, move |_| Err::<(), _>(e)).await;
            failed
                .err()
                .unwrap_or_else(|| super::error_page(v, StatusCode::INTERNAL_SERVER_ERROR))
        }
        Err(_) => super::error_page(v, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// `GET /sign-in/oidc/callback?code=…&state=…`: back from the provider.
pub(crate) async fn callback(
    AxumState(state): AxumState<State>,
    v: Visitor,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let cookie = super::cookie_up_to(&headers, OIDC_COOKIE, 4096)
        .unwrap_or("")
        .to_owned();
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let (redirect_uri, agent) = (callback_url(&state), v.user_agent.clone());
    let key = v.session_key.clone();
    let finished = call(&state, &v, move |app| {
        let current = match key {
            Some(k) => app.session(&k)?,
            None => None,
        };
        app.oidc_finish(&cookie, &params, &redirect_uri, &agent, current.as_ref())
    })
    .await;
    let mut r = match finished {
        Ok(Ok(OidcOutcome::Linked)) => see_other("/account?done=linked"),
        Ok(Ok(OidcOutcome::SignedIn(key))) => {
            // On to the record (or the app that sent them), which asks for Hale's own second
            // factor if the provider's sign-in did not include one.
            let mut r = super::oauth::after_sign_in(&state, &v);
            r.headers_mut()
                .append(header::SET_COOKIE, super::session_cookie(&state, &key));
            r
        }
        Ok(Err(refusal)) => refused(&v, refusal),
        Err(page) => page,
    };
    r.headers_mut()
        .append(header::SET_COOKIE, oidc_cookie(&state, None));
    r
}

fn refused(v: &Visitor, refusal: OidcRefusal) -> Response {
    let l = v.lang;
    let page = MessagePage {
        chrome: Chrome::new(l, l.t("oidc-refused-title")),
        heading: l.t("oidc-refused-title"),
        paragraphs: vec![
            l.t(&format!("oidc-refused-{}", refusal.code())),
            l.t("oidc-refused-next"),
        ],
        reference: None,
        links: vec![("/sign-in", l.t("oidc-refused-back"))],
    };
    html(StatusCode::FORBIDDEN, page.render()).into_response()
}
