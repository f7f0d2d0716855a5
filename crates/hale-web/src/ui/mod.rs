//! The web app at `/`: server-rendered pages in the NHS.UK design system, every journey
//! working without JavaScript (scripts only enhance: show/hide password, error focus).
//!
//! Handlers parse the form, call one [`App`] method and render a template. Words come from
//! the Fluent catalogue ([`i18n`]); markup follows nhsuk-frontend's component examples.
//!
//! Security choices, each with its reason:
//! - Session cookie `hale_session`: a random 256-bit key (only its SHA-256 is stored),
//!   `HttpOnly` (scripts cannot read it), `SameSite=Lax` (not sent on cross-site posts),
//!   `Secure` when Hale is served over https, no `Max-Age` (ends with the browser; the
//!   server's idle and absolute timeouts end it anyway).
//! - Every form carries a CSRF token: an HMAC of the session key (or, before sign-in, of a
//!   random `hale_csrf` cookie) under a key derived from the master key, checked on every
//!   POST. A forged cross-site form cannot know it, and it changes at sign-in.
//! - Every response: a Content-Security-Policy allowing only Hale's own scripts, styles and
//!   images (no inline script), `frame-ancestors 'none'`, `nosniff`, `no-referrer` (emailed
//!   links carry a token in the URL), and `no-store` on pages (health data stays out of
//!   shared caches and the back-forward cache).

pub mod account;
pub mod chart;
pub mod i18n;
pub(crate) mod oauth;
pub(crate) mod oidc;
pub mod pages;
pub(crate) mod passkeys;
pub mod record;
pub(crate) mod sharing;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State as AxumState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::State;
pub use i18n::Lang;
use pages::{Chrome, MessagePage};

const SESSION_COOKIE: &str = "hale_session";
const CSRF_COOKIE: &str = "hale_csrf";
/// The grant a signed-in browser is using to look at someone else's record; checked against
/// the account and the grant on every request, so it names a choice, never grants anything.
pub(crate) const ACTING_COOKIE: &str = "hale_acting";
/// Forms are small; anything bigger is not one of ours.
const MAX_FORM: usize = 64 * 1024;

/// The page routes.
pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/", get(account::start))
        .route(
            "/sign-up",
            get(account::sign_up_form).post(account::sign_up),
        )
        .route("/sign-up/check-email", get(account::check_email))
        .route("/account/verify-email", get(account::verify_email))
        .route(
            "/sign-in",
            get(account::sign_in_form).post(account::sign_in),
        )
        .route(
            "/sign-in/forgot-password",
            get(account::forgot_form).post(account::forgot),
        )
        .route(
            "/account/reset-password",
            get(account::reset_form).post(account::reset),
        )
        .route(
            "/sign-in/security-code",
            get(account::code_form).post(account::code),
        )
        .route(
            "/sign-in/recovery-code",
            get(account::recovery_form).post(account::recovery),
        )
        .route(
            "/account/authenticator",
            get(account::totp_setup_form).post(account::totp_setup),
        )
        .route("/account", get(account::account))
        .route(
            "/account/confirm",
            get(account::confirm_form).post(account::confirm),
        )
        .route(
            "/account/password",
            get(account::password_form).post(account::change_password),
        )
        .route("/account/recovery-codes", post(account::new_recovery_codes))
        .route(
            "/account/delete",
            get(account::delete_form).post(account::delete),
        )
        .route("/account/deleted", get(account::deleted))
        .route("/account/sessions", get(account::sessions))
        .route("/account/sessions/end", post(account::end_session))
        .route("/account/sessions/end-all", post(account::end_all_sessions))
        .route("/sign-out", post(account::sign_out))
        .route("/record", get(record::home))
        .route("/record/summary", get(record::summary))
        .route(
            "/record/add",
            get(record::add_form).post(record::add_choice),
        )
        .route(
            "/record/add/clinical-note",
            get(record::clinical_note_form).post(record::clinical_note_add),
        )
        .route(
            "/record/add/document",
            get(record::document_form).post(record::document_add),
        )
        .route(
            "/record/entry/DocumentReference/{id}/file",
            get(record::document_file),
        )
        .route(
            "/record/entry/Observation/{id}/edit",
            get(record::edit_reading_form).post(record::edit_reading),
        )
        .route(
            "/record/add/{kind}",
            get(record::journal_form).post(record::journal_add),
        )
        .route(
            "/record/measurements/add",
            get(record::add_kind_form).post(record::add_kind),
        )
        .route(
            "/record/measurements/add/{kind}",
            get(record::add_reading_form).post(record::add_reading),
        )
        .route(
            "/record/import",
            get(record::import_form).post(record::import_upload),
        )
        .route("/record/import/{job}", get(record::import_status))
        .route("/record/who-has-looked", get(record::who_has_looked))
        .route(
            "/oauth/authorize",
            get(oauth::authorize_form).post(oauth::authorize),
        )
        .route("/oauth/token", post(oauth::token))
        .route("/sign-in/oidc", get(oidc::start))
        .route("/sign-in/oidc/callback", get(oidc::callback))
        .route("/account/identity-provider", post(oidc::connect))
        .route(
            "/account/email",
            get(account::email_form).post(account::email_change),
        )
        .route("/account/email/confirm", get(account::email_confirm))
        .route("/account/passkeys", get(passkeys::list).post(passkeys::add))
        .route("/account/passkeys/options", post(passkeys::add_options))
        .route("/account/passkeys/{id}/remove", post(passkeys::remove))
        .route(
            "/sign-in/passkey",
            get(passkeys::sign_in_form).post(passkeys::sign_in),
        )
        .route("/sign-in/passkey/options", post(passkeys::sign_in_options))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/oauth/introspect", post(oauth::introspect))
        .route(
            "/.well-known/smart-configuration",
            get(oauth::smart_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oauth::openid_configuration),
        )
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .route("/record/sharing", get(sharing::sharing))
        .route(
            "/record/sharing/new",
            get(sharing::give_form).post(sharing::give),
        )
        .route(
            "/record/sharing/organisation",
            get(sharing::give_org_form).post(sharing::give_org),
        )
        .route("/record/sharing/{id}/revoke", post(sharing::revoke))
        .route("/record/emergency", get(record::emergency))
        .route(
            "/record/export",
            get(record::export_form).post(record::export),
        )
        .route("/record/export/readings", post(record::export_readings))
        .route(
            "/record/share-links/new",
            get(record::link_form).post(record::link_create),
        )
        .route(
            "/s/{token}",
            get(record::open_link).post(record::open_link_passcode),
        )
        .route("/shared-with-me", get(sharing::shared_with_me))
        .route("/shared-with-me/open", post(sharing::open))
        .route("/shared-with-me/leave", post(sharing::leave))
        .route(
            "/shared-with-me/accept",
            get(sharing::accept_form).post(sharing::accept),
        )
        .route("/record/measurements/{kind}", get(record::chart))
        .route("/record/wellbeing/{metric}", get(record::activity))
        .route("/record/entry/{rtype}/{id}", get(record::entry))
        .route("/record/entry/{rtype}/{id}/note", post(record::add_note))
        .route(
            "/record/entry/{rtype}/{id}/label",
            get(record::label_form).post(record::label_change),
        )
        .route(
            "/record/entry/{rtype}/{id}/change",
            get(record::change_entry_form).post(record::change_entry),
        )
        .route(
            "/record/entry/{rtype}/{id}/delete",
            get(record::confirm_delete).post(record::delete_entry),
        )
        .route("/record/{category}", get(record::category_page))
        // The design system's stylesheet and script compress about sixfold, which is what a
        // phone on a slow connection feels (B15: at most 150 KB a page). Pages are not
        // compressed: they hold a CSRF token beside text a visitor typed, the mix that
        // compression side channels (BREACH) read secrets from.
        .route(
            "/assets/{*path}",
            get(assets).layer(tower_http::compression::CompressionLayer::new().gzip(true)),
        )
}

/// What every page handler knows about the browser asking.
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    pub lang: Lang,
    pub session_key: Option<String>,
    pub csrf_cookie: Option<String>,
    pub client: String,
    pub user_agent: String,
    pub request_id: String,
    /// The grant chosen on "Shared with you", while looking at someone else's record.
    pub acting: Option<String>,
    /// An app's authorisation request to return to once signed in.
    pub return_to: Option<String>,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_up_to(headers, name, 128)
}

pub(crate) fn cookie_up_to<'a>(headers: &'a HeaderMap, name: &str, max: usize) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= max)
}

impl FromRequestParts<State> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &State) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        let client = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(Visitor {
            lang: Lang::from_accept_language(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            ),
            session_key: cookie(headers, SESSION_COOKIE).map(str::to_owned),
            csrf_cookie: cookie(headers, CSRF_COOKIE).map(str::to_owned),
            client,
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .chars()
                .take(512)
                .collect(),
            request_id: crate::fhir::new_request_id(),
            acting: cookie(headers, ACTING_COOKIE).map(str::to_owned),
            return_to: cookie_up_to(headers, oauth::RETURN_COOKIE, 4096).map(str::to_owned),
        })
    }
}

/// The CSRF token for forms shown to a browser whose basis (session key, or the pre-sign-in
/// cookie) is `basis`.
pub(crate) fn csrf_token(state: &State, basis: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&state.config.page_secret) else {
        return String::new();
    };
    mac.update(b"hale-csrf:");
    mac.update(basis.as_bytes());
    hale_core::hex(&mac.finalize().into_bytes())
}

/// The CSRF token for a signed-in browser's forms (its basis is the session key).
pub(crate) fn session_csrf(state: &State, v: &Visitor) -> String {
    csrf_token(state, v.session_key.as_deref().unwrap_or(""))
}

/// Whether a submitted token matches (constant time).
pub(crate) fn csrf_ok(state: &State, basis: Option<&str>, submitted: Option<&str>) -> bool {
    let (Some(basis), Some(submitted)) = (basis, submitted) else {
        return false;
    };
    let expected = csrf_token(state, basis);
    expected.len() == submitted.len()
        && expected
            .bytes()
            .zip(submitted.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A submitted form's fields.
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    pub(crate) fn parse(body: &Bytes) -> Option<Self> {
        (body.len() <= MAX_FORM).then(|| {
            FormData(
                form_urlencoded::parse(body)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            )
        })
    }

    /// Every value sent under `name` (ticked checkboxes).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

pub(crate) fn secure(state: &State) -> &'static str {
    if state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
    {
        "; Secure"
    } else {
        ""
    }
}

pub(crate) fn session_cookie(state: &State, key: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={key}; Path=/; HttpOnly; SameSite=Lax{}",
        secure(state)
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

pub(crate) fn clear_session_cookie(state: &State) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        secure(state)
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// The cookie that chooses (`Some`) or forgets (`None`) the record being looked at for
/// someone else.
pub(crate) fn acting_cookie(state: &State, grant: Option<&str>) -> HeaderValue {
    let value = match grant {
        Some(g) => format!(
            "{ACTING_COOKIE}={g}; Path=/; HttpOnly; SameSite=Lax{}",
            secure(state)
        ),
        None => format!(
            "{ACTING_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            secure(state)
        ),
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

pub(crate) fn csrf_cookie(state: &State, value: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{}",
        secure(state)
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// A rendered page with its status.
pub(crate) fn html(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    match body {
        Ok(b) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            b,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// A See Other redirect (after a successful POST, so a refresh does not resubmit).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The NHS.UK-style error page for a status, with the request id for support.
pub(crate) fn error_page(v: &Visitor, status: StatusCode) -> Response {
    use askama::Template;
    let (heading, body) = match status {
        StatusCode::NOT_FOUND => ("not-found-title", "not-found-body"),
        StatusCode::FORBIDDEN => ("form-expired-title", "form-expired-body"),
        _ => ("server-error-title", "server-error-body"),
    };
    if status.is_server_error() {
        tracing::error!(request_id = %v.request_id, status = status.as_u16(), "page failed");
    }
    let page = MessagePage {
        chrome: Chrome::new(v.lang, v.lang.t(heading)),
        heading: v.lang.t(heading),
        paragraphs: vec![v.lang.t(body)],
        reference: status
            .is_server_error()
            .then(|| v.lang.t1("error-reference", "id", &v.request_id)),
        links: vec![],
    };
    html(status, page.render())
}

/// Any address no route serves: the NHS.UK "page not found" page, or an OperationOutcome
/// under `/fhir`.
pub(crate) async fn not_found(uri: axum::http::Uri, v: Visitor) -> Response {
    if uri.path().starts_with("/fhir") {
        return crate::error::ApiError {
            error: hale_app::AppError::NotSupported(format!(
                "no such FHIR endpoint: {}",
                uri.path()
            )),
            request_id: v.request_id,
        }
        .into_response();
    }
    error_page(&v, StatusCode::NOT_FOUND)
}

/// HSTS, on every response of a Hale served over https: a year, subdomains included.
pub(crate) async fn strict_transport(mut response: Response) -> Response {
    response.headers_mut().insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    response
}

/// Adds the headers every response carries (see the module documentation for why).
pub(crate) async fn security_headers(response: Response) -> Response {
    let mut response = response;
    let headers = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    // A response with its own, stricter policy (a downloaded document's sandbox) keeps it.
    if !headers.contains_key("content-security-policy") {
        set(
            headers,
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        );
    }
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(
        headers,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if is_html {
        set(headers, "cache-control", "no-store");
    }
    response
}

const NHSUK_CSS: &str = include_str!("../../assets/nhsuk/nhsuk-frontend.min.css");
const NHSUK_JS: &str = include_str!("../../assets/nhsuk/nhsuk-frontend.min.js");
const HALE_CSS: &str = include_str!("../../assets/hale.css");
const HALE_JS: &str = include_str!("../../assets/hale.js");

/// The vendored design system and Hale's own small additions, compiled in so the binary is
/// all there is to install. Cached for a day: they change only with a new release.
async fn assets(
    AxumState(_): AxumState<State>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> Response {
    let (body, kind): (&'static [u8], &str) = match path.as_str() {
        "nhsuk/nhsuk-frontend.min.css" => (NHSUK_CSS.as_bytes(), "text/css; charset=utf-8"),
        "nhsuk/nhsuk-frontend.min.js" => (NHSUK_JS.as_bytes(), "text/javascript; charset=utf-8"),
        "hale.css" => (HALE_CSS.as_bytes(), "text/css; charset=utf-8"),
        "hale.js" => (HALE_JS.as_bytes(), "text/javascript; charset=utf-8"),
        "images/nhsuk-icon-arrow-down.svg" => (
            include_bytes!("../../assets/nhsuk/images/nhsuk-icon-arrow-down.svg"),
            "image/svg+xml",
        ),
        "images/nhsuk-icon-arrow-up.svg" => (
            include_bytes!("../../assets/nhsuk/images/nhsuk-icon-arrow-up.svg"),
            "image/svg+xml",
        ),
        "images/nhsuk-icon-arrow-up-down.svg" => (
            include_bytes!("../../assets/nhsuk/images/nhsuk-icon-arrow-up-down.svg"),
            "image/svg+xml",
        ),
        "images/nhsuk-icon-cross.svg" => (
            include_bytes!("../../assets/nhsuk/images/nhsuk-icon-cross.svg"),
            "image/svg+xml",
        ),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
