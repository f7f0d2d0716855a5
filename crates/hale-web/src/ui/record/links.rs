//! The emergency summary and share links (issue 4 §4, §5): the person's own emergency page,
//! making a link (to it, or to chosen kinds of entry) with a QR code, and what whoever holds
//! the link sees at `/s/TOKEN`, after the passcode if there is one.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::StatusCode;
use hale_app::AppError;
use hale_app::grants::{Grant, Role};
use hale_app::share_links::{LinkOpen, LinkProblem, NewLink};
use hale_app::{App, StoredResource};
use hale_core::RequestContext;
use serde_json::Value;

use super::{CATEGORIES, EntryView, Page, call, day, describe, pairs, person};
use crate::State;
use crate::ui::account::{
    anonymous_csrf, form, recent, signed_in_chrome, signed_in_form, with_cookie,
};
use crate::ui::pages::{Chrome, Field, FormPage, MessagePage};
use crate::ui::{Lang, Visitor, html};

/// How long a link works, as offered (days).
const LINK_DAYS: [(&str, i64); 3] = [("day", 1), ("week", 7), ("month", 31)];

#[derive(Template)]
#[template(path = "shared_summary.html")]
struct SharedSummaryPage {
    chrome: Chrome,
    back: Option<(String, String)>,
    intro: Vec<String>,
    qr_svg: Option<String>,
    address: Option<String>,
    details: Vec<(String, String)>,
    sections: Vec<(String, Vec<EntryView>)>,
    action: Option<(String, String)>,
}

/// Name, date of birth and NHS number, as a summary list.
fn person_details(l: Lang, patient: Option<&StoredResource>) -> Vec<(String, String)> {
    let p = patient
        .and_then(StoredResource::value)
        .unwrap_or(Value::Null);
    let none = || l.t("summary-none");
    let nhs = p["identifier"]
        .as_array()
        .and_then(|ids| {
            ids.iter()
                .find(|i| i["system"] == hale_fhir::nhs_number::SYSTEM)
        })
        .and_then(|i| i["value"].as_str())
        .map(str::to_owned);
    vec![
        (
            l.t("summary-name"),
            hale_app::grants::patient_name(&p).unwrap_or_else(none),
        ),
        (
            l.t("emergency-birth-date"),
            p["birthDate"]
                .as_str()
                .and_then(hale_fhir::date::parse_range)
                .map_or_else(none, |r| day(l, r.lo)),
        ),
        (l.t("summary-nhs-number"), nhs.unwrap_or_else(none)),
    ]
}

/// The emergency summary's sections, in the order a clinician reads them.
fn emergency_sections(
    l: Lang,
    summary: &hale_app::share_links::EmergencySummary,
) -> Vec<(String, Vec<EntryView>)> {
    let mut contacts: Vec<EntryView> = summary.contacts.iter().map(|r| describe(l, r)).collect();
    // The person's own contacts on their Patient (name, relationship, phone).
    if let Some(p) = summary.patient.as_ref().and_then(StoredResource::value) {
        for c in p["contact"].as_array().into_iter().flatten() {
            contacts.push(EntryView {
                notes: String::new(),
                href: String::new(),
                title: c["name"]["text"].as_str().unwrap_or_default().to_owned(),
                when: String::new(),
                value: c["telecom"][0]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                status: String::new(),
                from: String::new(),
            });
        }
    }
    for view in contacts.iter_mut() {
        view.when.clear();
    }
    let list = |items: &[StoredResource]| items.iter().map(|r| describe(l, r)).collect();
    vec![
        (l.t("emergency-allergies"), list(&summary.allergies)),
        (l.t("emergency-medicines"), list(&summary.medicines)),
        (l.t("emergency-conditions"), list(&summary.conditions)),
        (l.t("emergency-contacts"), contacts),
    ]
}

/// `GET /record/emergency`: the person's emergency summary, with the way to make a link.
pub(crate) async fn emergency(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let acting = ctx.actor.grant().is_some();
    let summary = call(&state, &v, move |app| app.emergency_summary(&ctx)).await?;
    let l = v.lang;
    let page = SharedSummaryPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("emergency-title")),
        back: Some(("/record".into(), l.t("record-back"))),
        intro: vec![l.t("emergency-intro")],
        qr_svg: None,
        address: None,
        details: person_details(l, summary.patient.as_ref()),
        sections: emergency_sections(l, &summary),
        action: (!acting).then(|| {
            (
                "/record/share-links/new?emergency=1".into(),
                l.t("emergency-make-link"),
            )
        }),
    };
    Ok(html(StatusCode::OK, page.render()))
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct LinkQuery {
    #[serde(default)]
    emergency: Option<u8>,
}

fn link_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    emergency: bool,
) -> FormPage {
    let l = v.lang;
    let mut page = signed_in_form(state, v, who, l.t("link-title"), "/record/share-links/new");
    page.back = Some(("/record/sharing".into(), l.t("sharing-title")));
    page.paragraphs = vec![l.t("link-body")];
    let mut what = Field::new("what", "radios", l.t("link-what")).value(if emergency {
        "emergency"
    } else {
        "chosen"
    });
    what.choices = vec![
        ("emergency".into(), l.t("link-what-emergency")),
        ("chosen".into(), l.t("link-what-chosen")),
    ];
    let labels = crate::ui::sharing::labels_field(l, "link-labels", "link-labels-hint");
    let kinds = crate::ui::sharing::kinds_field(l);
    let mut duration = Field::new("duration", "radios", l.t("give-duration")).value("week");
    duration.choices = LINK_DAYS
        .iter()
        .map(|(d, _)| ((*d).to_owned(), l.t(&format!("link-duration-{d}"))))
        .collect();
    page.fields = vec![
        Field::new("name", "text", l.t("link-name"))
            .hint(l.t("link-name-hint"))
            .autocomplete("off"),
        what,
        labels,
        kinds,
        duration,
        Field::new("passcode", "text", l.t("link-passcode"))
            .hint(l.t("link-passcode-hint"))
            .autocomplete("off")
            .code(false, " nhsuk-input--width-20"),
    ];
    page.submit = l.t("link-submit");
    page
}

/// `GET /record/share-links/new`: making a link is sensitive, so both factors again first.
pub(crate) async fn link_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<LinkQuery>,
) -> Page {
    let (who, _) = crate::ui::sharing::owner(&state, &v).await?;
    recent(&state, &who, "share-link")?;
    Ok(html(
        StatusCode::OK,
        link_page(&state, &v, &who, q.emergency == Some(1)).render(),
    ))
}

fn link_problem(l: Lang, p: LinkProblem) -> (&'static str, String) {
    match p {
        LinkProblem::NameMissing => ("name", l.t("link-error-name")),
        LinkProblem::NothingChosen => ("labels", l.t("give-error-labels")),
        LinkProblem::PasscodeTooShort => ("passcode", l.t("link-error-passcode")),
        LinkProblem::DaysWrong => ("duration", l.t("give-error-duration")),
    }
}

/// `POST /record/share-links/new`: makes the link and shows it, once, with its QR code.
pub(crate) async fn link_create(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let (who, ctx) = crate::ui::sharing::owner(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    recent(&state, &who, "share-link")?;
    let l = v.lang;
    let emergency = data.get("what") == "emergency";
    let chosen_kinds = data.all("kinds");
    let new = NewLink {
        name: data.get("name").to_owned(),
        types: crate::ui::sharing::types_of_kinds(&chosen_kinds),
        labels: crate::ui::sharing::labels_chosen(&data),
        days: LINK_DAYS
            .iter()
            .find(|(d, _)| *d == data.get("duration"))
            .map_or(0, |(_, n)| *n),
        passcode: Some(data.get("passcode").to_owned()),
        emergency,
    };
    let made = call(&state, &v, move |app| app.create_share_link(&ctx, &new)).await?;
    let created = match made {
        Ok(c) => c,
        Err(problems) => {
            let mut page = link_page(&state, &v, &who, emergency);
            for f in page.fields.iter_mut() {
                f.value = match f.id {
                    "name" => data.get("name").to_owned(),
                    "what" => data.get("what").to_owned(),
                    "labels" => data.all("labels").join(","),
                    "kinds" => chosen_kinds.join(","),
                    "duration" => data.get("duration").to_owned(),
                    _ => continue,
                };
            }
            for p in problems {
                let (field, message) = link_problem(l, p);
                page.error(field, message);
            }
            return Ok(html(StatusCode::OK, page.render()));
        }
    };
    let address = format!("{}/s/{}", state.link_base(), created.token);
    let until = created.grant.end.map(|e| day(l, e)).unwrap_or_default();
    let mut intro = vec![l.t1("link-made-body", "until", until)];
    if created.grant.passcode_hash.is_some() {
        intro.push(l.t("link-made-passcode"));
    }
    intro.push(l.t("link-made-revoke"));
    let page = SharedSummaryPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("link-made-title")),
        back: Some(("/record/sharing".into(), l.t("sharing-title"))),
        intro,
        qr_svg: hale_auth::totp::qr_svg(&address, &l.t("link-qr-description")).ok(),
        address: Some(address),
        details: Vec::new(),
        sections: Vec::new(),
        action: None,
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// A summary list of the person, and titled sections of entries.
type Shared = (Vec<(String, String)>, Vec<(String, Vec<EntryView>)>);

/// What a link shares, read through the link's own context (so access rules and the audit
/// log apply as to anyone).
fn shared_sections(
    app: &App,
    l: Lang,
    ctx: &RequestContext,
    grant: &Grant,
) -> Result<Shared, AppError> {
    if grant.role == Role::EmergencyLink {
        let summary = app.emergency_summary(ctx)?;
        return Ok((
            person_details(l, summary.patient.as_ref()),
            emergency_sections(l, &summary),
        ));
    }
    let record = ctx
        .actor
        .record()
        .cloned()
        .ok_or_else(|| AppError::Forbidden("no record".into()))?;
    let patient = app.read(ctx, "Patient", record.as_str())?;
    let mut sections = Vec::new();
    for c in CATEGORIES {
        let mut entries = Vec::new();
        let mut covered = false;
        for (rtype, extra) in c.searches {
            if !grant.types.is_empty() && !grant.types.iter().any(|t| t == rtype) {
                continue;
            }
            covered = true;
            let more = [("_sort", "-_lastUpdated"), ("_count", "100")];
            let (_, page) = app.search_entries(ctx, rtype, &pairs(extra, &more), false)?;
            entries.extend(page.matches.iter().map(|r| describe(l, r)));
        }
        if covered {
            sections.push((l.t(&format!("category-{}", c.slug)), entries));
        }
    }
    Ok((person_details(l, Some(&patient)), sections))
}

fn link_gone(v: &Visitor) -> Page {
    let l = v.lang;
    let page = MessagePage {
        chrome: Chrome::new(l, l.t("link-gone-title")),
        heading: l.t("link-gone-title"),
        paragraphs: vec![l.t("link-gone-body")],
        reference: None,
        links: vec![],
    };
    Ok(html(StatusCode::NOT_FOUND, page.render()))
}

fn passcode_page(v: &Visitor, token: &str, csrf: String, wrong: bool) -> FormPage {
    let l = v.lang;
    let mut page = FormPage::new(
        Chrome::new(l, l.t("link-passcode-title")),
        l.t("link-passcode-title"),
        format!("/s/{token}"),
        csrf,
    );
    page.paragraphs = vec![l.t("link-passcode-body")];
    page.fields = vec![
        Field::new("passcode", "text", l.t("link-passcode-label"))
            .autocomplete("off")
            .code(false, " nhsuk-input--width-20"),
    ];
    page.submit = l.t("link-passcode-submit");
    if wrong {
        page.error("passcode", l.t("link-passcode-wrong"));
    }
    page
}

/// Opens a link and renders what it shares (or asks for the passcode).
async fn show_link(state: &State, v: &Visitor, token: String, passcode: Option<String>) -> Page {
    let (client, request_id, lang) = (v.client.clone(), v.request_id.clone(), v.lang);
    let typed = passcode.is_some();
    let checked = token.clone();
    let opened = call(state, v, move |app| {
        match app.open_share_link(&checked, passcode.as_deref(), &client, &request_id) {
            Ok(LinkOpen::Open(ctx, grant)) => {
                let (details, sections) = shared_sections(app, lang, &ctx, &grant)?;
                Ok(Some(Ok((*grant, details, sections))))
            }
            Ok(LinkOpen::NeedsPasscode { wrong }) => Ok(Some(Err(wrong))),
            Err(AppError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await?;
    let l = v.lang;
    match opened {
        None => link_gone(v),
        Some(Err(wrong)) => {
            let (csrf, cookie) = anonymous_csrf(state, v);
            let page = passcode_page(v, &token, csrf, wrong && typed);
            Ok(with_cookie(html(StatusCode::OK, page.render()), cookie))
        }
        Some(Ok((grant, details, sections))) => {
            let title = if grant.role == Role::EmergencyLink {
                l.t("emergency-title")
            } else {
                l.t("link-view-title")
            };
            let until = grant.end.map(|e| day(l, e)).unwrap_or_default();
            let page = SharedSummaryPage {
                chrome: Chrome::new(l, title),
                back: None,
                intro: vec![l.t1("link-view-intro", "until", until)],
                qr_svg: None,
                address: None,
                details,
                sections,
                action: None,
            };
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// `GET /s/{token}`.
pub(crate) async fn open_link(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(token): Path<String>,
) -> Page {
    show_link(&state, &v, token, None).await
}

/// `POST /s/{token}`: the passcode.
pub(crate) async fn open_link_passcode(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(token): Path<String>,
    body: Bytes,
) -> Page {
    let data = form(&state, &v, v.csrf_cookie.as_deref(), &body)?;
    show_link(&state, &v, token, Some(data.get("passcode").to_owned())).await
}
