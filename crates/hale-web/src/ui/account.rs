//! Sign-up, email verification, sign-in with a second factor, authenticator set-up,
//! sessions and sign-out, and the signed-in home (issue 3 §1, §2, §5; issue 5 §1).
// Handlers return early with the page to show (a redirect, an error page) as `Err`; a
// Response is large, but boxing it on this path buys nothing.
#![allow(clippy::result_large_err)]

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hale_app::accounts::{FormProblem, SignedIn, TotpEnrolment};
use hale_app::{App, AppError};
use hale_core::AuthStrength;

use super::pages::{
    Chrome, Field, FormPage, MessagePage, RecoveryCodesPage, SessionRow, SessionsPage, StartPage,
};
use super::{FormData, Visitor, csrf_ok, csrf_token, error_page, html, see_other};
use crate::State;

type Page = Result<Response, Response>;

/// Runs an App call on a blocking thread; a failure becomes the error page.
pub(crate) async fn call<T: Send + 'static>(
    state: &State,
    v: &Visitor,
    f: impl FnOnce(&App) -> Result<T, AppError> + Send + 'static,
) -> Result<T, Response> {
    let app = state.app.clone();
    match tokio::task::spawn_blocking(move || f(&app)).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(app_error_page(v, e)),
        Err(_) => Err(error_page(v, StatusCode::INTERNAL_SERVER_ERROR)),
    }
}

/// The page for an application error: what the person may do about it, never the detail.
pub(crate) fn app_error_page(v: &Visitor, e: AppError) -> Response {
    match e {
        AppError::Throttled(secs) => too_many(v, secs),
        AppError::Forbidden(_) => not_allowed(v),
        AppError::NotFound { .. } => super::error_page(v, StatusCode::NOT_FOUND),
        e => {
            tracing::error!(request_id = %v.request_id, error = %e, "page call failed");
            error_page(v, StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// What an action the actor may not take gets: the words say why in general, never what
/// is stored.
fn not_allowed(v: &Visitor) -> Response {
    let page = MessagePage {
        chrome: Chrome::new(v.lang, v.lang.t("not-allowed-title")),
        heading: v.lang.t("not-allowed-title"),
        paragraphs: vec![v.lang.t("not-allowed-body")],
        reference: None,
        links: vec![("/record", v.lang.t("record-back"))],
    };
    html(StatusCode::FORBIDDEN, page.render())
}

fn too_many(v: &Visitor, secs: u64) -> Response {
    let minutes = secs.div_ceil(60).max(1);
    let page = MessagePage {
        chrome: Chrome::new(v.lang, v.lang.t("too-many-title")),
        heading: v.lang.t("too-many-title"),
        paragraphs: vec![v.lang.t1("too-many-body", "minutes", minutes)],
        reference: None,
        links: vec![],
    };
    let mut r = html(StatusCode::TOO_MANY_REQUESTS, page.render());
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, value);
    }
    r
}

/// The session behind the browser's cookie, if live.
pub(crate) async fn signed_in(state: &State, v: &Visitor) -> Result<Option<SignedIn>, Response> {
    let Some(key) = v.session_key.clone() else {
        return Ok(None);
    };
    call(state, v, move |app| app.session(&key)).await
}

/// Requires a session that has completed the second factor; otherwise sends the browser to
/// where it can get one.
pub(crate) async fn two_factor(state: &State, v: &Visitor) -> Result<SignedIn, Response> {
    match signed_in(state, v).await? {
        Some(who) if who.strength() == AuthStrength::TwoFactor => Ok(who),
        Some(who) if who.has_totp() => Err(see_other("/sign-in/security-code")),
        Some(_) => Err(see_other("/account/authenticator")),
        None => Err(see_other("/sign-in")),
    }
}

/// The CSRF token for an anonymous form, and the cookie to set if the browser has none.
pub(crate) fn anonymous_csrf(state: &State, v: &Visitor) -> (String, Option<HeaderValue>) {
    match &v.csrf_cookie {
        Some(basis) => (csrf_token(state, basis), None),
        None => {
            let basis = hale_auth::secret::random_token();
            (
                csrf_token(state, &basis),
                Some(super::csrf_cookie(state, &basis)),
            )
        }
    }
}

pub(crate) fn with_cookie(mut r: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

pub(crate) fn signed_in_chrome(
    state: &State,
    v: &Visitor,
    who: &SignedIn,
    title: String,
) -> Chrome {
    let csrf = csrf_token(
        state,
        v.session_key.as_deref().unwrap_or(&who.session.key_hash),
    );
    let mut chrome = Chrome::new(v.lang, title).signed_in(csrf);
    chrome.acting = v.acting.is_some();
    chrome
}

/// A form page before sign-in: its title (a message id) is its heading.
fn open_form(v: &Visitor, title: &str, action: &'static str, csrf: String) -> FormPage {
    let title = v.lang.t(title);
    FormPage::new(Chrome::new(v.lang, title.clone()), title, action, csrf)
}

/// A form page for a signed-in browser: its title is its heading.
pub(crate) fn signed_in_form(
    state: &State,
    v: &Visitor,
    who: &SignedIn,
    title: String,
    action: impl Into<String>,
) -> FormPage {
    FormPage::new(
        signed_in_chrome(state, v, who, title.clone()),
        title,
        action,
        super::session_csrf(state, v),
    )
}

/// Parses a POSTed form and checks its CSRF token against `basis`.
pub(crate) fn form(
    state: &State,
    v: &Visitor,
    basis: Option<&str>,
    body: &Bytes,
) -> Result<FormData, Response> {
    let data = FormData::parse(body).ok_or_else(|| error_page(v, StatusCode::PAYLOAD_TOO_LARGE))?;
    if csrf_ok(state, basis, Some(data.get("csrf"))) {
        Ok(data)
    } else {
        Err(error_page(v, StatusCode::FORBIDDEN))
    }
}

fn problem_text(v: &Visitor, p: FormProblem) -> String {
    v.lang.t(p.id())
}

/// `GET /`: the start page, or the record for someone already signed in.
pub(crate) async fn start(AxumState(state): AxumState<State>, v: Visitor) -> Response {
    if let Ok(Some(who)) = signed_in(&state, &v).await
        && who.strength() == AuthStrength::TwoFactor
    {
        return see_other("/record");
    }
    let page = StartPage {
        chrome: Chrome::new(v.lang, v.lang.t("start-title")),
    };
    html(StatusCode::OK, page.render())
}

fn sign_up_page(v: &Visitor, csrf: String, data: Option<&FormData>) -> FormPage {
    let l = v.lang;
    let mut page = open_form(v, "sign-up-title", "/sign-up", csrf);
    let value = |name: &str| data.map_or("", |d| d.get(name)).to_owned();
    page.fields = vec![
        Field::new("name", "text", l.t("sign-up-name"))
            .autocomplete("name")
            .value(&value("name")),
        Field::new("email", "email", l.t("sign-up-email"))
            .hint(l.t("sign-up-email-hint"))
            .autocomplete("email")
            .value(&value("email"))
            .code(false, ""),
        Field::new("password", "password", l.t("sign-up-password"))
            .hint(l.t("sign-up-password-hint"))
            .autocomplete("new-password"),
        Field::new("confirm", "password", l.t("sign-up-confirm")).autocomplete("new-password"),
    ];
    page.submit = l.t("sign-up-submit");
    page.links = vec![(
        Some(l.t("start-have-account")),
        "/sign-in",
        l.t("start-sign-in"),
    )];
    page
}

/// `GET /sign-up`.
pub(crate) async fn sign_up_form(AxumState(state): AxumState<State>, v: Visitor) -> Response {
    let (csrf, cookie) = anonymous_csrf(&state, &v);
    with_cookie(
        html(StatusCode::OK, sign_up_page(&v, csrf, None).render()),
        cookie,
    )
}

/// `POST /sign-up`: refuses with field errors, or sends the link and says so. The answer
/// is the same whether or not the address already had an account.
pub(crate) async fn sign_up(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let data = form(&state, &v, v.csrf_cookie.as_deref(), &body)?;
    let (name, email) = (data.get("name").to_owned(), data.get("email").to_owned());
    let (password, confirm) = (
        data.get("password").to_owned(),
        data.get("confirm").to_owned(),
    );
    let link_base = state.link_base();
    let outcome = call(&state, &v, move |app| {
        Ok(app.sign_up(&name, &email, &password, &confirm, &link_base))
    })
    .await?;
    match outcome {
        Ok(()) => Ok(see_other("/sign-up/check-email")),
        Err(problems) => {
            let mut page = sign_up_page(
                &v,
                csrf_token(&state, v.csrf_cookie.as_deref().unwrap_or("")),
                Some(&data),
            );
            for p in problems {
                page.error(p.field(), problem_text(&v, p));
            }
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// `GET /sign-up/check-email`.
pub(crate) async fn check_email(v: Visitor) -> Response {
    let l = v.lang;
    let page = MessagePage {
        chrome: Chrome::new(l, l.t("check-email-title")),
        heading: l.t("check-email-title"),
        paragraphs: vec![l.t("check-email-body"), l.t("check-email-spam")],
        reference: None,
        links: vec![],
    };
    html(StatusCode::OK, page.render())
}

#[derive(serde::Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// `GET /account/verify-email?token=…`: the emailed link.
pub(crate) async fn verify_email(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<TokenQuery>,
) -> Page {
    let token = q.token;
    let ok = call(&state, &v, move |app| Ok(app.verify_email(&token).is_ok())).await?;
    Ok(followed_link(&v, ok, "verified"))
}

fn email_page(state: &State, v: &Visitor, who: &SignedIn) -> FormPage {
    let l = v.lang;
    let mut page = signed_in_form(state, v, who, l.t("email-change-title"), "/account/email");
    page.back = Some(("/account".into(), l.t("account-title")));
    page.paragraphs = vec![l.t1("email-change-body", "email", &who.account.email)];
    page.fields = vec![
        Field::new("email", "email", l.t("email-change-new"))
            .autocomplete("email")
            .code(false, ""),
    ];
    page.submit = l.t("email-change-submit");
    page
}

/// `GET /account/email`: a new address (both factors again first).
pub(crate) async fn email_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = two_factor(&state, &v).await?;
    recent(&state, &who, "email")?;
    Ok(html(StatusCode::OK, email_page(&state, &v, &who).render()))
}

/// `POST /account/email`: a link goes to the new address; the same page either way.
pub(crate) async fn email_change(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = two_factor(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    recent(&state, &who, "email")?;
    let (typed, base, checked) = (data.get("email").to_owned(), state.link_base(), who.clone());
    let asked = call(&state, &v, move |app| {
        app.request_email_change(&checked, &typed, &base)
    })
    .await?;
    let l = v.lang;
    if let Err(problem) = asked {
        let mut page = email_page(&state, &v, &who);
        page.fields[0].value = data.get("email").to_owned();
        page.error("email", problem_text(&v, problem));
        return Ok(html(StatusCode::OK, page.render()));
    }
    let page = MessagePage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("check-email-title")),
        heading: l.t("check-email-title"),
        paragraphs: vec![l.t("email-change-sent"), l.t("check-email-spam")],
        reference: None,
        links: vec![("/account", l.t("account-title"))],
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// `GET /account/email/confirm?token=…`: the link sent to the new address.
pub(crate) async fn email_confirm(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<TokenQuery>,
) -> Page {
    let token = q.token;
    let ok = call(&state, &v, move |app| {
        Ok(app.confirm_email_change(&token).is_ok())
    })
    .await?;
    Ok(followed_link(&v, ok, "email-changed"))
}

/// The page after following an emailed link: `{done}-title` and `{done}-body` if it worked,
/// else that the link does not work; both lead to signing in.
fn followed_link(v: &Visitor, ok: bool, done: &str) -> Response {
    let l = v.lang;
    let (heading, body, status) = if ok {
        (
            l.t(&format!("{done}-title")),
            vec![l.t(&format!("{done}-body"))],
            StatusCode::OK,
        )
    } else {
        (
            l.t("link-invalid-title"),
            vec![l.t("link-invalid-body"), l.t("link-invalid-next")],
            StatusCode::BAD_REQUEST,
        )
    };
    let page = MessagePage {
        chrome: Chrome::new(l, heading.clone()),
        heading,
        paragraphs: body,
        reference: None,
        links: vec![("/sign-in", l.t("start-sign-in"))],
    };
    html(status, page.render())
}

fn sign_in_page(state: &State, v: &Visitor, csrf: String, email: &str) -> FormPage {
    let l = v.lang;
    let mut page = open_form(v, "sign-in-title", "/sign-in", csrf);
    page.fields = vec![
        Field::new("email", "email", l.t("sign-in-email"))
            .autocomplete("username")
            .value(email)
            .code(false, ""),
        Field::new("password", "password", l.t("sign-in-password"))
            .autocomplete("current-password"),
    ];
    page.submit = l.t("sign-in-submit");
    page.links = vec![(None, "/sign-in/forgot-password", l.t("sign-in-forgot"))];
    // Signing in through the operator's identity provider (NHS login), when there is one.
    if let Some(name) = state.app.oidc_name() {
        page.links.push((
            Some(l.t("sign-in-oidc-lead")),
            "/sign-in/oidc",
            l.t1("sign-in-oidc", "name", name),
        ));
    }
    page.links.extend([(
        Some(l.t("sign-in-no-account")),
        "/sign-up",
        l.t("start-create"),
    )]);
    page
}

/// `GET /sign-in`.
pub(crate) async fn sign_in_form(AxumState(state): AxumState<State>, v: Visitor) -> Response {
    let (csrf, cookie) = anonymous_csrf(&state, &v);
    with_cookie(
        html(StatusCode::OK, sign_in_page(&state, &v, csrf, "").render()),
        cookie,
    )
}

/// `POST /sign-in`: the password step. A session starts that can do nothing but finish
/// the second factor.
pub(crate) async fn sign_in(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let data = form(&state, &v, v.csrf_cookie.as_deref(), &body)?;
    let (email, password) = (
        data.get("email").to_owned(),
        data.get("password").to_owned(),
    );
    let (client, agent) = (v.client.clone(), v.user_agent.clone());
    let result = call(&state, &v, move |app| {
        match app.sign_in(&email, &password, &client, &agent) {
            Ok(key) => Ok(Ok(key)),
            Err(AppError::Rejected(p)) => Ok(Err(p)),
            Err(e) => Err(e),
        }
    })
    .await?;
    match result {
        Ok(key) => {
            let mut r = see_other("/sign-in/security-code");
            r.headers_mut()
                .append(header::SET_COOKIE, super::session_cookie(&state, &key));
            Ok(r)
        }
        Err(problem) => {
            let csrf = csrf_token(&state, v.csrf_cookie.as_deref().unwrap_or(""));
            let mut page = sign_in_page(&state, &v, csrf, data.get("email"));
            page.error(problem.field(), problem_text(&v, problem));
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// A session that has proven the password (any strength), or the way back to sign-in.
async fn password_proven(state: &State, v: &Visitor) -> Result<SignedIn, Response> {
    signed_in(state, v)
        .await?
        .ok_or_else(|| see_other("/sign-in"))
}

fn code_page(state: &State, v: &Visitor, who: &SignedIn) -> FormPage {
    let l = v.lang;
    let mut page = signed_in_form(state, v, who, l.t("code-title"), "/sign-in/security-code");
    page.paragraphs = vec![l.t("code-body")];
    page.fields = vec![
        Field::new("code", "text", l.t("code-label"))
            .hint(l.t("code-hint"))
            .autocomplete("one-time-code")
            .code(true, " nhsuk-input--width-10"),
    ];
    page.submit = l.t("code-submit");
    page.links = vec![(None, "/sign-in/recovery-code", l.t("code-use-recovery"))];
    if state.app.passkeys_available() {
        page.links
            .insert(0, (None, "/sign-in/passkey", l.t("code-use-passkey")));
    }
    page
}

/// `GET /sign-in/security-code`.
pub(crate) async fn code_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = password_proven(&state, &v).await?;
    if who.strength() == AuthStrength::TwoFactor {
        return Ok(super::oauth::after_sign_in(&state, &v));
    }
    if !who.has_totp() {
        return Ok(see_other("/account/authenticator"));
    }
    Ok(html(StatusCode::OK, code_page(&state, &v, &who).render()))
}

/// `POST /sign-in/security-code`: the second factor.
pub(crate) async fn code(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = password_proven(&state, &v).await?;
    if !who.has_totp() {
        return Ok(see_other("/account/authenticator"));
    }
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (code, client, checked) = (data.get("code").to_owned(), v.client.clone(), who.clone());
    let outcome = call(&state, &v, move |app| {
        match app.totp_verify(&checked, &code, &client) {
            Ok(()) => Ok(true),
            Err(AppError::Rejected(_)) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await?;
    if outcome {
        return Ok(super::oauth::after_sign_in(&state, &v));
    }
    let mut page = code_page(&state, &v, &who);
    page.error("code", problem_text(&v, FormProblem::CodeWrong));
    Ok(html(StatusCode::OK, page.render()))
}

fn recovery_page(state: &State, v: &Visitor, who: &SignedIn) -> FormPage {
    let l = v.lang;
    let mut page = signed_in_form(
        state,
        v,
        who,
        l.t("recovery-title"),
        "/sign-in/recovery-code",
    );
    page.paragraphs = vec![l.t("recovery-body")];
    page.fields = vec![
        Field::new("code", "text", l.t("recovery-label"))
            .hint(l.t("recovery-hint"))
            .autocomplete("off")
            .code(false, " nhsuk-input--width-10"),
    ];
    page.submit = l.t("recovery-submit");
    page
}

/// `GET /sign-in/recovery-code`.
pub(crate) async fn recovery_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = password_proven(&state, &v).await?;
    Ok(html(
        StatusCode::OK,
        recovery_page(&state, &v, &who).render(),
    ))
}

/// `POST /sign-in/recovery-code`.
pub(crate) async fn recovery(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = password_proven(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (code, client, checked) = (data.get("code").to_owned(), v.client.clone(), who.clone());
    let ok = call(&state, &v, move |app| {
        match app.recovery_code_sign_in(&checked, &code, &client) {
            Ok(()) => Ok(true),
            Err(AppError::Rejected(_)) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await?;
    if ok {
        return Ok(super::oauth::after_sign_in(&state, &v));
    }
    let mut page = recovery_page(&state, &v, &who);
    page.error("code", problem_text(&v, FormProblem::RecoveryCodeWrong));
    Ok(html(StatusCode::OK, page.render()))
}

fn totp_page(state: &State, v: &Visitor, who: &SignedIn, e: TotpEnrolment) -> FormPage {
    let l = v.lang;
    let mut page = signed_in_form(
        state,
        v,
        who,
        l.t("totp-setup-title"),
        "/account/authenticator",
    );
    page.paragraphs = vec![
        l.t("totp-setup-why"),
        l.t("totp-setup-step-app"),
        l.t("totp-setup-step-scan"),
    ];
    page.qr_svg = Some(e.qr_svg);
    page.details = Some((
        l.t("totp-setup-cannot-scan"),
        l.t("totp-setup-key"),
        e.secret_for_typing,
    ));
    page.hidden = vec![("enrolment", e.sealed)];
    page.fields = vec![
        Field::new("code", "text", l.t("totp-setup-step-code"))
            .hint(l.t("code-hint"))
            .autocomplete("one-time-code")
            .code(true, " nhsuk-input--width-10"),
    ];
    page.submit = l.t("totp-setup-submit");
    page
}

/// An account with an authenticator already must prove it, recently, before replacing it.
fn may_set_up(state: &State, who: &SignedIn) -> Result<(), Response> {
    if !who.has_totp() {
        Ok(())
    } else if who.strength() < AuthStrength::TwoFactor {
        Err(see_other("/sign-in/security-code"))
    } else {
        recent(state, who, "authenticator")
    }
}

/// `GET /account/authenticator`: scan a QR code, type the code it gives.
pub(crate) async fn totp_setup_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = password_proven(&state, &v).await?;
    may_set_up(&state, &who)?;
    let (checked, label) = (who.clone(), v.lang.t("totp-setup-qr-label"));
    let enrolment = call(&state, &v, move |app| {
        app.totp_begin(&checked, None, &label)
    })
    .await?;
    Ok(html(
        StatusCode::OK,
        totp_page(&state, &v, &who, enrolment).render(),
    ))
}

/// `POST /account/authenticator`: checks the code; shows the recovery codes once.
pub(crate) async fn totp_setup(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = password_proven(&state, &v).await?;
    may_set_up(&state, &who)?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (sealed, code, checked) = (
        data.get("enrolment").to_owned(),
        data.get("code").to_owned(),
        who.clone(),
    );
    let label = v.lang.t("totp-setup-qr-label");
    let outcome = call(&state, &v, move |app| {
        match app.totp_confirm(&checked, &sealed, &code) {
            Ok(codes) => Ok(Ok(codes)),
            Err(AppError::Rejected(_) | AppError::BadRequest(_)) => {
                app.totp_begin(&checked, Some(&sealed), &label).map(Err)
            }
            Err(e) => Err(e),
        }
    })
    .await?;
    match outcome {
        Ok(codes) => {
            let page = RecoveryCodesPage {
                chrome: signed_in_chrome(&state, &v, &who, v.lang.t("recovery-codes-title")),
                codes,
            };
            Ok(html(StatusCode::OK, page.render()))
        }
        Err(enrolment) => {
            let mut page = totp_page(&state, &v, &who, enrolment);
            page.error("code", problem_text(&v, FormProblem::CodeWrong));
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// A time as "30 November 2026 at 13:05", in UK time.
fn when(v: &Visitor, ms: i64) -> String {
    let Some(t) = hale_fhir::uk_time::at(ms) else {
        return String::new();
    };
    let l = v.lang;
    l.ta(
        "date-time",
        &[
            ("day", t.day().to_string()),
            ("month", l.t(&format!("month-{}", u8::from(t.month())))),
            ("year", t.year().to_string()),
            ("time", format!("{:02}:{:02}", t.hour(), t.minute())),
        ],
    )
}

/// "Firefox on Linux", from the stored `Browser;System`.
fn device(v: &Visitor, stored: &str) -> String {
    let (browser, system) = stored.split_once(';').unwrap_or(("", ""));
    let browser = if browser.is_empty() {
        v.lang.t("sessions-unknown-browser")
    } else {
        browser.to_owned()
    };
    let system = if system.is_empty() {
        v.lang.t("sessions-unknown-system")
    } else {
        system.to_owned()
    };
    v.lang.ta(
        "sessions-device-desc",
        &[("browser", browser), ("system", system)],
    )
}

/// `GET /account/sessions`.
pub(crate) async fn sessions(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = two_factor(&state, &v).await?;
    let checked = who.clone();
    let list = call(&state, &v, move |app| app.sessions(&checked)).await?;
    let page = SessionsPage {
        chrome: signed_in_chrome(&state, &v, &who, v.lang.t("sessions-title")),
        csrf: crate::ui::session_csrf(&state, &v),
        sessions: list
            .into_iter()
            .map(|s| SessionRow {
                current: s.key_hash == who.session.key_hash,
                device: device(&v, &s.user_agent),
                signed_in: when(&v, s.created_at),
                last_used: when(&v, s.last_seen_at),
                id: s.key_hash,
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /account/sessions/end`: signs out one device.
pub(crate) async fn end_session(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = two_factor(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (target, checked) = (data.get("session").to_owned(), who.clone());
    let ended_own = target == who.session.key_hash;
    call(&state, &v, move |app| {
        app.end_sessions(&checked, Some(&target))
    })
    .await?;
    if ended_own {
        let mut r = see_other("/sign-in");
        r.headers_mut()
            .append(header::SET_COOKIE, super::clear_session_cookie(&state));
        return Ok(r);
    }
    Ok(see_other("/account/sessions"))
}

/// `POST /account/sessions/end-all`: "sign out everywhere", this device included.
pub(crate) async fn end_all_sessions(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = two_factor(&state, &v).await?;
    form(&state, &v, v.session_key.as_deref(), &body)?;
    call(&state, &v, move |app| app.end_sessions(&who, None)).await?;
    let mut r = see_other("/sign-in");
    r.headers_mut()
        .append(header::SET_COOKIE, super::clear_session_cookie(&state));
    Ok(r)
}

/// `POST /sign-out`: ends this session (at any strength).
pub(crate) async fn sign_out(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = password_proven(&state, &v).await?;
    form(&state, &v, v.session_key.as_deref(), &body)?;
    let hash = who.session.key_hash.clone();
    call(&state, &v, move |app| app.end_sessions(&who, Some(&hash))).await?;
    let mut r = see_other("/");
    r.headers_mut()
        .append(header::SET_COOKIE, super::clear_session_cookie(&state));
    Ok(r.into_response())
}

fn forgot_page(v: &Visitor, csrf: String) -> FormPage {
    let l = v.lang;
    let mut page = open_form(v, "forgot-title", "/sign-in/forgot-password", csrf);
    page.paragraphs = vec![l.t("forgot-body")];
    page.fields = vec![
        Field::new("email", "email", l.t("sign-in-email"))
            .autocomplete("email")
            .code(false, ""),
    ];
    page.submit = l.t("forgot-submit");
    page
}

/// `GET /sign-in/forgot-password`.
pub(crate) async fn forgot_form(AxumState(state): AxumState<State>, v: Visitor) -> Response {
    let (csrf, cookie) = anonymous_csrf(&state, &v);
    with_cookie(html(StatusCode::OK, forgot_page(&v, csrf).render()), cookie)
}

/// `POST /sign-in/forgot-password`: the same answer whether or not the address has an
/// account.
pub(crate) async fn forgot(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let data = form(&state, &v, v.csrf_cookie.as_deref(), &body)?;
    let (email, client, link_base) = (
        data.get("email").to_owned(),
        v.client.clone(),
        state.link_base(),
    );
    call(&state, &v, move |app| {
        app.request_password_reset(&email, &client, &link_base)
    })
    .await?;
    let l = v.lang;
    let page = MessagePage {
        chrome: Chrome::new(l, l.t("forgot-sent-title")),
        heading: l.t("forgot-sent-title"),
        paragraphs: vec![l.t("forgot-sent-body"), l.t("check-email-spam")],
        reference: None,
        links: vec![],
    };
    Ok(html(StatusCode::OK, page.render()))
}

fn reset_page(v: &Visitor, csrf: String, token: &str) -> FormPage {
    let l = v.lang;
    let mut page = open_form(v, "reset-title", "/account/reset-password", csrf);
    page.paragraphs = vec![l.t("reset-body")];
    page.hidden = vec![("token", token.to_owned())];
    page.fields = vec![
        Field::new("password", "password", l.t("reset-password"))
            .hint(l.t("sign-up-password-hint"))
            .autocomplete("new-password"),
        Field::new("confirm", "password", l.t("reset-confirm")).autocomplete("new-password"),
    ];
    page.submit = l.t("reset-submit");
    page
}

fn link_invalid(v: &Visitor) -> Response {
    let l = v.lang;
    let page = MessagePage {
        chrome: Chrome::new(l, l.t("link-invalid-title")),
        heading: l.t("link-invalid-title"),
        paragraphs: vec![l.t("link-invalid-body")],
        reference: None,
        links: vec![("/sign-in/forgot-password", l.t("sign-in-forgot"))],
    };
    html(StatusCode::BAD_REQUEST, page.render())
}

/// `GET /account/reset-password?token=…`: the emailed link.
pub(crate) async fn reset_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<TokenQuery>,
) -> Page {
    let token = q.token.clone();
    let valid = call(&state, &v, move |app| Ok(app.reset_link_valid(&token))).await?;
    if !valid {
        return Ok(link_invalid(&v));
    }
    let (csrf, cookie) = anonymous_csrf(&state, &v);
    Ok(with_cookie(
        html(StatusCode::OK, reset_page(&v, csrf, &q.token).render()),
        cookie,
    ))
}

/// `POST /account/reset-password`.
pub(crate) async fn reset(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let data = form(&state, &v, v.csrf_cookie.as_deref(), &body)?;
    let (token, password, confirm) = (
        data.get("token").to_owned(),
        data.get("password").to_owned(),
        data.get("confirm").to_owned(),
    );
    let outcome = call(&state, &v, move |app| {
        Ok(app.reset_password(&token, &password, &confirm))
    })
    .await?;
    match outcome {
        Ok(()) => {
            let l = v.lang;
            let page = MessagePage {
                chrome: Chrome::new(l, l.t("reset-done-title")),
                heading: l.t("reset-done-title"),
                paragraphs: vec![l.t("reset-done-body")],
                reference: None,
                links: vec![("/sign-in", l.t("start-sign-in"))],
            };
            let mut r = html(StatusCode::OK, page.render());
            r.headers_mut()
                .append(header::SET_COOKIE, super::clear_session_cookie(&state));
            Ok(r)
        }
        Err(problems) if problems.contains(&FormProblem::LinkInvalid) => Ok(link_invalid(&v)),
        Err(problems) => {
            let csrf = csrf_token(&state, v.csrf_cookie.as_deref().unwrap_or(""));
            let mut page = reset_page(&v, csrf, data.get("token"));
            for p in problems {
                page.error(p.field(), problem_text(&v, p));
            }
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// One row of the account page.
pub(crate) struct AccountRow {
    key: String,
    value: String,
    link: Option<(&'static str, String)>,
    post: Option<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    banner: Option<String>,
    csrf: String,
    rows: Vec<AccountRow>,
    /// Whether the account has a record of its own (deleting the account deletes it too).
    has_record: bool,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /account`: how they sign in, and the ways to change it.
pub(crate) async fn account(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<DoneQuery>,
) -> Page {
    let who = two_factor(&state, &v).await?;
    let checked = who.clone();
    let (left, linked, passkeys) = call(&state, &v, move |app| {
        Ok((
            app.recovery_codes_left(&checked)?,
            app.oidc_linked(&checked.account.id)?,
            app.passkeys_of(&checked)?.len(),
        ))
    })
    .await?;
    let l = v.lang;
    let level = format!(
        "account-identity-{}",
        who.account.verification_level.as_str().to_lowercase()
    );
    let mut page = AccountPage {
        has_record: who.account.record.is_some(),
        chrome: signed_in_chrome(&state, &v, &who, l.t("account-title")),
        banner: q.done.map(|d| {
            l.t(if d == "linked" {
                "account-oidc-linked"
            } else {
                "change-password-done"
            })
        }),
        csrf: crate::ui::session_csrf(&state, &v),
        rows: vec![
            AccountRow {
                key: l.t("account-email"),
                value: who.account.email.clone(),
                link: Some(("/account/email", l.t("account-email-change"))),
                post: None,
            },
            AccountRow {
                key: l.t("account-identity"),
                value: l.t(&level),
                link: None,
                post: None,
            },
            AccountRow {
                key: l.t("account-password"),
                value: String::new(),
                link: Some(("/account/password", l.t("account-password-change"))),
                post: None,
            },
            AccountRow {
                key: l.t("account-authenticator"),
                value: l.t("account-authenticator-set"),
                link: Some((
                    "/account/authenticator",
                    l.t("account-authenticator-replace"),
                )),
                post: None,
            },
            AccountRow {
                key: l.t("account-recovery"),
                value: l.t1("account-recovery-left", "count", left),
                link: None,
                post: Some(("/account/recovery-codes", l.t("account-recovery-new"))),
            },
            // Signing in through the operator's identity provider (NHS login), if there is one.
            AccountRow {
                key: state.app.oidc_name().unwrap_or_default().to_owned(),
                value: l.t(if linked {
                    "account-oidc-connected"
                } else {
                    "account-oidc-not-connected"
                }),
                link: None,
                post: (!linked)
                    .then(|| ("/account/identity-provider", l.t("account-oidc-connect"))),
            },
            AccountRow {
                key: if state.app.passkeys_available() {
                    l.t("account-passkeys")
                } else {
                    String::new()
                },
                value: l.t1("account-passkeys-count", "count", passkeys),
                link: Some(("/account/passkeys", l.t("account-passkeys-manage"))),
                post: None,
            },
            AccountRow {
                key: l.t("account-sessions"),
                value: String::new(),
                link: Some(("/account/sessions", l.t("account-sessions-see"))),
                post: None,
            },
        ],
    };
    // (No identity provider, no row for one.)
    page.rows.retain(|r| !r.key.is_empty());
    Ok(html(StatusCode::OK, page.render()))
}

/// Where a confirmation may send the browser next: a fixed list, never an address from
/// the request (no open redirect).
fn next_page(next: &str) -> &'static str {
    match next {
        "password" => "/account/password",
        "authenticator" => "/account/authenticator",
        "sharing" => "/record/sharing/new",
        "sharing-organisation" => "/record/sharing/organisation",
        "identity-provider" => "/account",
        "passkeys" => "/account/passkeys",
        "email" => "/account/email",
        "export" => "/record/export",
        "delete" => "/account/delete",
        "share-link" => "/record/share-links/new",
        _ => "/account",
    }
}

/// Sends a session that has not proved both factors recently to confirm first.
pub(crate) fn recent(state: &State, who: &SignedIn, next: &str) -> Result<(), Response> {
    if state.app.recently_authenticated(who) {
        Ok(())
    } else {
        Err(see_other(&format!("/account/confirm?next={next}")))
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct NextQuery {
    #[serde(default)]
    next: String,
}

fn confirm_page(state: &State, v: &Visitor, who: &SignedIn, next: &str) -> FormPage {
    let l = v.lang;
    let mut page = signed_in_form(state, v, who, l.t("confirm-title"), "/account/confirm");
    page.back = Some(("/account".into(), l.t("account-title")));
    page.paragraphs = vec![l.t("confirm-body")];
    page.hidden = vec![("next", next.to_owned())];
    page.fields = vec![
        Field::new("password", "password", l.t("sign-in-password"))
            .autocomplete("current-password"),
        Field::new("code", "text", l.t("confirm-code"))
            .autocomplete("one-time-code")
            .code(false, " nhsuk-input--width-10"),
    ];
    page.submit = l.t("confirm-submit");
    page
}

/// `GET /account/confirm?next=…`: password and a code again, before a sensitive change.
pub(crate) async fn confirm_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<NextQuery>,
) -> Page {
    let who = two_factor(&state, &v).await?;
    Ok(html(
        StatusCode::OK,
        confirm_page(&state, &v, &who, &q.next).render(),
    ))
}

/// `POST /account/confirm`.
pub(crate) async fn confirm(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = two_factor(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (password, code, client, checked) = (
        data.get("password").to_owned(),
        data.get("code").to_owned(),
        v.client.clone(),
        who.clone(),
    );
    let ok = call(&state, &v, move |app| {
        match app.reauthenticate(&checked, &password, &code, &client) {
            Ok(()) => Ok(true),
            Err(AppError::Rejected(_)) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await?;
    if ok {
        return Ok(see_other(next_page(data.get("next"))));
    }
    let mut page = confirm_page(&state, &v, &who, data.get("next"));
    page.error("password", problem_text(&v, FormProblem::SignInFailed));
    page.error("code", problem_text(&v, FormProblem::CodeWrong));
    Ok(html(StatusCode::OK, page.render()))
}

fn password_page(state: &State, v: &Visitor, who: &SignedIn) -> FormPage {
    let l = v.lang;
    let mut page = signed_in_form(
        state,
        v,
        who,
        l.t("change-password-title"),
        "/account/password",
    );
    page.back = Some(("/account".into(), l.t("account-title")));
    page.paragraphs = vec![l.t("change-password-body")];
    page.fields = vec![
        Field::new("password", "password", l.t("reset-password"))
            .hint(l.t("sign-up-password-hint"))
            .autocomplete("new-password"),
        Field::new("confirm", "password", l.t("reset-confirm")).autocomplete("new-password"),
    ];
    page.submit = l.t("reset-submit");
    page
}

/// `GET /account/password`.
pub(crate) async fn password_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = two_factor(&state, &v).await?;
    recent(&state, &who, "password")?;
    Ok(html(
        StatusCode::OK,
        password_page(&state, &v, &who).render(),
    ))
}

/// `POST /account/password`.
pub(crate) async fn change_password(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = two_factor(&state, &v).await?;
    recent(&state, &who, "password")?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (password, confirm, checked) = (
        data.get("password").to_owned(),
        data.get("confirm").to_owned(),
        who.clone(),
    );
    let outcome = call(&state, &v, move |app| {
        app.change_password(&checked, &password, &confirm)
    })
    .await?;
    match outcome {
        Ok(()) => Ok(see_other("/account?done=password")),
        Err(problems) => {
            let mut page = password_page(&state, &v, &who);
            for p in problems {
                page.error(p.field(), problem_text(&v, p));
            }
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// `POST /account/recovery-codes`: ten new codes, shown once; the old ones stop working.
pub(crate) async fn new_recovery_codes(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = two_factor(&state, &v).await?;
    form(&state, &v, v.session_key.as_deref(), &body)?;
    recent(&state, &who, "account")?;
    let checked = who.clone();
    let codes = call(&state, &v, move |app| app.new_recovery_codes(&checked)).await?;
    let page = RecoveryCodesPage {
        chrome: signed_in_chrome(&state, &v, &who, v.lang.t("recovery-codes-title")),
        codes,
    };
    Ok(html(StatusCode::OK, page.render()))
}

#[derive(Template)]
#[template(path = "delete_account.html")]
struct DeleteAccountPage {
    chrome: Chrome,
    csrf: String,
    has_record: bool,
}

/// `GET /account/delete`: what deleting the account takes away, once both factors have been
/// proved again.
pub(crate) async fn delete_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = two_factor(&state, &v).await?;
    recent(&state, &who, "delete")?;
    let page = DeleteAccountPage {
        chrome: signed_in_chrome(
            &state,
            &v,
            &who,
            v.lang.t(if who.account.record.is_some() {
                "delete-account-title"
            } else {
                "delete-account-heading"
            }),
        ),
        csrf: super::session_csrf(&state, &v),
        has_record: who.account.record.is_some(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /account/delete`: deletes the account and its record, and signs out.
pub(crate) async fn delete(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = two_factor(&state, &v).await?;
    form(&state, &v, v.session_key.as_deref(), &body)?;
    recent(&state, &who, "delete")?;
    let request_id = v.request_id.clone();
    call(&state, &v, move |app| app.erase_account(&who, &request_id)).await?;
    let mut r = see_other("/account/deleted");
    r.headers_mut()
        .append(header::SET_COOKIE, super::clear_session_cookie(&state));
    Ok(r.into_response())
}

/// `GET /account/deleted`: said once the account is gone (nobody is signed in by then).
pub(crate) async fn deleted(v: Visitor) -> Response {
    let l = v.lang;
    let page = MessagePage {
        chrome: Chrome::new(l, l.t("account-deleted-title")),
        heading: l.t("account-deleted-title"),
        paragraphs: vec![l.t("account-deleted-body")],
        reference: None,
        links: vec![("/", l.t("account-deleted-home"))],
    };
    html(StatusCode::OK, page.render())
}
