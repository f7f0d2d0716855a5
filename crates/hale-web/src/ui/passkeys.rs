//! Passkeys (issue 3 §2): adding and removing them on "Your account", and signing in with
//! one after the password, instead of a code. The ceremonies run in the browser
//! (`assets/hale.js`); without JavaScript the forms say that a passkey needs it, and the
//! authenticator app's codes work as before.
// Handlers return early with the page to show (a redirect, an error page) as `Err`.
#![allow(clippy::result_large_err)]

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hale_app::accounts::SignedIn;
use hale_app::passkeys::PasskeyProblem;
use serde_json::json;

use super::account::{call, form, recent, signed_in, signed_in_chrome, signed_in_form, two_factor};
use super::pages::{Chrome, Field, FormError};
use super::{Lang, Visitor, html, see_other};
use crate::State;

type Page = Result<Response, Response>;

struct KeyRow {
    id: String,
    name: String,
    when: String,
}

#[derive(Template)]
#[template(path = "passkeys.html")]
struct PasskeysPage {
    chrome: Chrome,
    csrf: String,
    banner: Option<String>,
    errors: Vec<FormError>,
    keys: Vec<KeyRow>,
    name: Field,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct DoneQuery {
    #[serde(default)]
    done: String,
}

fn problem_text(l: Lang, p: PasskeyProblem) -> (&'static str, String) {
    match p {
        PasskeyProblem::NameMissing => ("name", l.t("passkeys-error-name")),
        PasskeyProblem::NotMade => ("name", l.t("passkeys-error-not-made")),
        PasskeyProblem::NotAccepted => ("name", l.t("passkeys-error-not-accepted")),
    }
}

async fn page(
    state: &State,
    v: &Visitor,
    who: &SignedIn,
    banner: Option<String>,
    problems: Vec<PasskeyProblem>,
    name: &str,
) -> Page {
    let checked = who.clone();
    let keys = call(state, v, move |app| app.passkeys_of(&checked)).await?;
    let l = v.lang;
    let mut field = Field::new("name", "text", l.t("passkeys-name"))
        .hint(l.t("passkeys-name-hint"))
        .value(name);
    let mut errors = Vec::new();
    for p in problems {
        let (id, message) = problem_text(l, p);
        field.error = Some(message.clone());
        errors.push(FormError {
            field: id.to_owned(),
            message,
        });
    }
    let mut chrome = signed_in_chrome(state, v, who, l.t("passkeys-title"));
    chrome.has_errors = !errors.is_empty();
    let page = PasskeysPage {
        chrome,
        csrf: super::session_csrf(state, v),
        banner,
        errors,
        keys: keys
            .into_iter()
            .map(|k| KeyRow {
                when: match k.last_used_at {
                    Some(at) => l.t1("passkeys-used", "date", super::record::day(l, at)),
                    None => l.t1(
                        "passkeys-added-on",
                        "date",
                        super::record::day(l, k.created_at),
                    ),
                },
                id: k.credential_id,
                name: k.name,
            })
            .collect(),
        name: field,
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// The person's own, with both factors proven recently (changing how one signs in).
async fn recently(state: &State, v: &Visitor) -> Result<SignedIn, Response> {
    let who = two_factor(state, v).await?;
    if !state.app.passkeys_available() {
        return Err(super::error_page(v, StatusCode::NOT_FOUND));
    }
    recent(state, &who, "passkeys")?;
    Ok(who)
}

/// `GET /account/passkeys`.
pub(crate) async fn list(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<DoneQuery>,
) -> Page {
    let who = recently(&state, &v).await?;
    let l = v.lang;
    let banner = match q.done.as_str() {
        "added" => Some(l.t("passkeys-added")),
        "removed" => Some(l.t("passkeys-removed")),
        _ => None,
    };
    page(&state, &v, &who, banner, Vec::new(), "").await
}

/// `POST /account/passkeys/options`: what the browser needs to make a passkey (JSON).
pub(crate) async fn add_options(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = recently(&state, &v).await?;
    form(&state, &v, v.session_key.as_deref(), &body)?;
    let (options, sealed) = call(&state, &v, move |app| app.passkey_register_begin(&who)).await?;
    Ok(no_store(
        Json(json!({"options": options, "state": sealed})).into_response(),
    ))
}

/// `POST /account/passkeys`: the passkey the browser made, to keep.
pub(crate) async fn add(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = recently(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (sealed, credential, name) = (
        data.get("state").to_owned(),
        data.get("credential").to_owned(),
        data.get("name").to_owned(),
    );
    let checked = who.clone();
    let n = name.clone();
    let added = call(&state, &v, move |app| {
        app.passkey_register_finish(&checked, &sealed, &credential, &n)
    })
    .await?;
    match added {
        Ok(()) => Ok(see_other("/account/passkeys?done=added")),
        Err(problems) => page(&state, &v, &who, None, problems, &name).await,
    }
}

/// `POST /account/passkeys/{id}/remove`.
pub(crate) async fn remove(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let who = recently(&state, &v).await?;
    form(&state, &v, v.session_key.as_deref(), &body)?;
    call(&state, &v, move |app| app.passkey_remove(&who, &id)).await?;
    Ok(see_other("/account/passkeys?done=removed"))
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

/// A session that has proven the password and not yet a second factor, with a passkey.
async fn after_password(state: &State, v: &Visitor) -> Result<SignedIn, Response> {
    let who = signed_in(state, v)
        .await?
        .ok_or_else(|| see_other("/sign-in"))?;
    if who.strength() == hale_core::AuthStrength::TwoFactor {
        return Err(super::oauth::after_sign_in(state, v));
    }
    if !state.app.passkeys_available() {
        return Err(see_other("/sign-in/security-code"));
    }
    Ok(who)
}

fn sign_in_page(state: &State, v: &Visitor, who: &SignedIn) -> super::pages::FormPage {
    let l = v.lang;
    let mut page = signed_in_form(
        state,
        v,
        who,
        l.t("passkey-sign-in-title"),
        "/sign-in/passkey",
    );
    page.paragraphs = vec![l.t("passkey-sign-in-body")];
    page.hidden = vec![("state", String::new()), ("credential", String::new())];
    page.passkey = Some(("get", "/sign-in/passkey/options"));
    page.submit = l.t("passkey-sign-in-submit");
    page.links = vec![(None, "/sign-in/security-code", l.t("passkey-use-code"))];
    page
}

/// `GET /sign-in/passkey`: the second factor with a passkey.
pub(crate) async fn sign_in_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = after_password(&state, &v).await?;
    Ok(html(
        StatusCode::OK,
        sign_in_page(&state, &v, &who).render(),
    ))
}

/// `POST /sign-in/passkey/options` (JSON).
pub(crate) async fn sign_in_options(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = after_password(&state, &v).await?;
    form(&state, &v, v.session_key.as_deref(), &body)?;
    let begun = call(&state, &v, move |app| app.passkey_sign_in_begin(&who)).await?;
    let Some((options, sealed)) = begun else {
        return Err(super::error_page(&v, StatusCode::NOT_FOUND));
    };
    Ok(no_store(
        Json(json!({"options": options, "state": sealed})).into_response(),
    ))
}

/// `POST /sign-in/passkey`.
pub(crate) async fn sign_in(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = after_password(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (sealed, credential, client) = (
        data.get("state").to_owned(),
        data.get("credential").to_owned(),
        v.client.clone(),
    );
    let checked = who.clone();
    let done = call(&state, &v, move |app| {
        app.passkey_sign_in_finish(&checked, &sealed, &credential, &client)
    })
    .await?;
    match done {
        Ok(()) => Ok(super::oauth::after_sign_in(&state, &v)),
        Err(problem) => {
            let mut page = sign_in_page(&state, &v, &who);
            let l = v.lang;
            let message = match problem {
                PasskeyProblem::NotMade => l.t("passkeys-error-not-made"),
                _ => l.t("passkeys-error-not-accepted"),
            };
            page.errors.push(FormError {
                field: "credential".into(),
                message,
            });
            page.chrome.has_errors = true;
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}
