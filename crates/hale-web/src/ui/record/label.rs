//! Who can see one of your own entries: its privacy label (issue 4 §1). A service's entry
//! shows its label and cannot be changed here.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use hale_app::AppError;
use hale_app::labels::PrivacyLabel;

use super::{Page, call, describe, person, read_entry, read_only};
use crate::State;
use crate::ui::pages::Field;
use crate::ui::{Visitor, error_page, html, see_other};

fn label_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    href: &str,
    current: &str,
) -> crate::ui::pages::FormPage {
    let l = v.lang;
    let mut page = crate::ui::account::signed_in_form(
        state,
        v,
        who,
        l.t("label-title"),
        format!("{href}/label"),
    );
    page.back = Some((href.to_owned(), l.t("label-back")));
    page.paragraphs = vec![l.t("label-intro")];
    let mut f = Field::new("label", "radios", l.t("label-title")).value(current);
    f.choices = PrivacyLabel::ALL
        .iter()
        .map(|x| {
            (
                x.code().to_owned(),
                l.t(&format!("label-choice-{}", x.code())),
            )
        })
        .collect();
    page.fields = vec![f];
    page.submit = l.t("label-submit");
    page
}

/// `GET /record/entry/{type}/{id}/label`.
pub(crate) async fn label_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path((rtype, id)): Path<(String, String)>,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let found = read_entry(&state, &v, ctx, &rtype, &id).await?;
    let Some(value) = found.value().filter(hale_app::entered_by_person) else {
        return Err(read_only(&state, &v, &who));
    };
    let href = describe(v.lang, &found).href;
    let current = hale_app::labels::label_of(&value).code();
    Ok(html(
        StatusCode::OK,
        label_page(&state, &v, &who, &href, current).render(),
    ))
}

/// `POST /record/entry/{type}/{id}/label`.
pub(crate) async fn label_change(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path((rtype, id)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let data = crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    let found = read_entry(&state, &v, ctx.clone(), &rtype, &id).await?;
    let href = describe(v.lang, &found).href;
    let Some(label) = PrivacyLabel::from_code(data.get("label")) else {
        let mut page = label_page(&state, &v, &who, &href, "");
        page.error("label", v.lang.t("label-missing"));
        return Ok(html(StatusCode::OK, page.render()));
    };
    let changed = call(&state, &v, move |app| {
        match app.change_own_label(&ctx, &rtype, &id, label) {
            Ok(_) => Ok(true),
            Err(AppError::Forbidden(_)) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await?;
    if !changed {
        return Err(read_only(&state, &v, &who));
    }
    if href.is_empty() {
        return Err(error_page(&v, StatusCode::NOT_FOUND));
    }
    Ok(see_other(&format!("{href}?labelled=1")))
}
