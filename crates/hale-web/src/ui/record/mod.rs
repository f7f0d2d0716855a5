//! The person's record (issue 5 §3): by category, one entry in plain words with where it
//! came from and what may be done with it, and the printable summary. Adding to it is in
//! [`add`]; charts of readings and watch data are in [`charts`].
// Handlers return early with the page to show (a redirect, an error page) as `Err`.
#![allow(clippy::result_large_err)]

mod add;
mod charts;
mod export;
mod import;
mod label;
mod links;
mod looked;

pub(crate) use add::*;
pub(crate) use charts::*;
pub(crate) use export::*;
pub(crate) use import::*;
pub(crate) use label::*;
pub(crate) use links::*;
pub(crate) use looked::*;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hale_app::journal::{EntryProblem, JournalKind, MAX_DOCUMENT, MOODS, SEVERITIES};
use hale_app::readings::{MeasurementKind, PERSON_SOURCE, ReadingProblem};
use hale_app::{AppError, StoredResource};
use hale_core::{RequestContext, VerificationLevel};
use serde_json::Value;

use super::account::{call, signed_in_chrome, two_factor};
use super::chart;
use super::pages::{Chrome, Field, FormError};
use super::{FormData, Lang, Visitor, error_page, html, see_other};
use crate::State;

type Page = Result<Response, Response>;

/// A category of the record and the searches that fill it.
struct Category {
    slug: &'static str,
    searches: &'static [(&'static str, &'static [(&'static str, &'static str)])],
}

const CATEGORIES: &[Category] = &[
    Category {
        slug: "conditions",
        searches: &[("Condition", &[])],
    },
    Category {
        slug: "medicines",
        searches: &[("MedicationStatement", &[]), ("MedicationRequest", &[])],
    },
    Category {
        slug: "allergies",
        searches: &[("AllergyIntolerance", &[])],
    },
    Category {
        slug: "test-results",
        searches: &[
            ("Observation", &[("category", "laboratory")]),
            ("DiagnosticReport", &[]),
        ],
    },
    Category {
        slug: "immunisations",
        searches: &[("Immunization", &[])],
    },
    Category {
        slug: "documents",
        searches: &[("DocumentReference", &[])],
    },
    Category {
        slug: "care-plans",
        searches: &[("CarePlan", &[]), ("Goal", &[]), ("RelatedPerson", &[])],
    },
    Category {
        slug: "wellbeing",
        searches: &[("Observation", &[("category", "survey")])],
    },
    Category {
        slug: "measurements",
        searches: &[("Observation", &[("category", "vital-signs")])],
    },
];

fn category(slug: &str) -> Option<&'static Category> {
    CATEGORIES.iter().find(|c| c.slug == slug)
}

fn pairs(extra: &[(&str, &str)], more: &[(&str, &str)]) -> Vec<(String, String)> {
    extra
        .iter()
        .chain(more)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The context of the record being looked at: the person's own, or, after they chose one
/// on "Shared with you", someone else's under the grant they hold (checked afresh on every
/// request: access taken back ends here, with a page that says so).
async fn person(
    state: &State,
    v: &Visitor,
) -> Result<(hale_app::accounts::SignedIn, RequestContext), Response> {
    let who = two_factor(state, v).await?;
    let (checked, request_id, acting) = (who.clone(), v.request_id.clone(), v.acting.clone());
    let ctx = call(state, v, move |app| match acting {
        Some(grant) => match app.grantee_context(&checked, &grant, &request_id) {
            Ok(ctx) => Ok(Some(ctx)),
            Err(AppError::Unauthenticated(_)) => Ok(None),
            Err(e) => Err(e),
        },
        None => app.person_context(&checked, &request_id).map(Some),
    })
    .await?;
    match ctx {
        Some(ctx) => Ok((who, ctx)),
        None => Err(crate::ui::sharing::access_ended(state, v, &who)),
    }
}

/// A date as "27 November 2026", in UK time.
pub(crate) fn day(lang: Lang, ms: i64) -> String {
    let Some(t) = hale_fhir::uk_time::at(ms) else {
        return String::new();
    };
    lang.ta(
        "date-only",
        &[
            ("day", t.day().to_string()),
            ("month", lang.t(&format!("month-{}", u8::from(t.month())))),
            ("year", t.year().to_string()),
        ],
    )
}

/// An entry in plain words, for lists and its own page.
struct EntryView {
    notes: String,
    href: String,
    title: String,
    when: String,
    value: String,
    status: String,
    from: String,
}

/// The words of a CodeableConcept: its text, or its first coding's display.
fn concept(v: &Value) -> Option<String> {
    v["text"].as_str().map(str::to_owned).or_else(|| {
        v["coding"]
            .as_array()?
            .iter()
            .find_map(|c| c["display"].as_str().map(str::to_owned))
    })
}

fn quantity(q: &Value) -> Option<String> {
    let value = q["value"].as_number()?.to_string();
    let unit = q["unit"].as_str().or(q["code"].as_str()).unwrap_or("");
    Some(format!("{value} {unit}").trim().to_owned())
}

fn describe(lang: Lang, r: &StoredResource) -> EntryView {
    let v = r.value().unwrap_or(Value::Null);
    let title = ["code", "medicationCodeableConcept", "vaccineCode", "type"]
        .iter()
        .find_map(|k| concept(&v[*k]))
        .or_else(|| concept(&v["description"]))
        .or_else(|| v["name"][0]["text"].as_str().map(str::to_owned))
        .or_else(|| {
            ["title", "description"]
                .iter()
                .find_map(|k| v[*k].as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| lang.t("entry-untitled"));
    let when = [
        "effectiveDateTime",
        "onsetDateTime",
        "recordedDate",
        "occurrenceDateTime",
        "authoredOn",
        "date",
        "issued",
    ]
    .iter()
    .find_map(|k| v[*k].as_str())
    .or_else(|| v["effectivePeriod"]["start"].as_str())
    .or_else(|| v["period"]["start"].as_str())
    .and_then(hale_fhir::date::parse_range)
    .map_or_else(|| day(lang, r.last_updated), |range| day(lang, range.lo));
    let value = quantity(&v["valueQuantity"])
        .or_else(|| {
            let parts: Vec<String> = v["component"]
                .as_array()?
                .iter()
                .filter_map(|c| {
                    c["valueQuantity"]["value"]
                        .as_number()
                        .map(ToString::to_string)
                })
                .collect();
            let unit = v["component"][0]["valueQuantity"]["unit"]
                .as_str()
                .unwrap_or("");
            (!parts.is_empty()).then(|| format!("{} {unit}", parts.join("/")).trim().to_owned())
        })
        .or_else(|| concept(&v["valueCodeableConcept"]))
        .or_else(|| v["valueString"].as_str().map(str::to_owned))
        // A mood (1 to 5) in words.
        .or_else(|| {
            let n = usize::try_from(v["valueInteger"].as_i64()?).ok()?;
            let mood = MOODS.get(n.checked_sub(1)?)?;
            Some(lang.t(&format!("mood-{mood}")))
        })
        .or_else(|| v["dosage"][0]["text"].as_str().map(str::to_owned))
        .or_else(|| {
            let who = concept(&v["relationship"][0]);
            let phone = v["telecom"][0]["value"].as_str().map(str::to_owned);
            match (who, phone) {
                (Some(w), Some(p)) => Some(format!("{w}, {p}")),
                (w, p) => w.or(p),
            }
        })
        .or_else(|| concept(&v["reaction"][0]["manifestation"][0]))
        .unwrap_or_default();
    // Status codes in plain words where the catalogue has them ("active" is "Current").
    let status = v["clinicalStatus"]["coding"][0]["code"]
        .as_str()
        .or_else(|| v["status"].as_str())
        .map(|code| {
            lang.try_t(&format!("status-{code}"))
                .unwrap_or_else(|| code.to_owned())
        })
        .unwrap_or_default();
    let from = if v["meta"]["source"].as_str() == Some(PERSON_SOURCE) {
        lang.t("entry-from-you")
    } else if hale_app::entered_by_person(&v) {
        lang.t("entry-from-app")
    } else {
        ["performer", "recorder", "requester", "asserter", "author"]
            .iter()
            .find_map(|k| {
                let who = &v[*k];
                who["display"]
                    .as_str()
                    .or_else(|| who[0]["display"].as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| lang.t("entry-from-source"))
    };
    EntryView {
        // A clinical note's text is its description.
        notes: v["note"][0]["text"]
            .as_str()
            .or_else(|| {
                (r.resource_type == "DocumentReference")
                    .then(|| v["description"].as_str())
                    .flatten()
            })
            .unwrap_or_default()
            .to_owned(),
        href: format!("/record/entry/{}/{}", r.resource_type, r.id),
        title,
        when,
        value,
        status,
        from,
    }
}

struct CategoryLink {
    slug: &'static str,
    name: String,
    count: String,
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    chrome: Chrome,
    /// The newest entries.
    recent: Vec<EntryView>,
    level_text: String,
    categories: Vec<CategoryLink>,
    /// Looking at someone else's record: their log and sharing are theirs, not offered.
    acting: bool,
    /// What needs the person's attention: words, and where to go.
    attention: Vec<(String, String)>,
}

/// How recent "new from a service" is.
const NEW_FOR_MS: i64 = 14 * 24 * 3600 * 1000;
/// How soon before its end a share link or access is flagged.
const ENDING_WITHIN_MS: i64 = 2 * 24 * 3600 * 1000;

/// What needs the person's attention on their home page: entries health and care services
/// added lately, invitations not yet accepted, and access or links about to end.
fn needs_attention(
    l: Lang,
    recent: &[StoredResource],
    grants: &[hale_app::grants::Grant],
) -> Vec<(String, String)> {
    use hale_app::grants::Status;
    let now = hale_fhir::date::now_millis();
    let mut items: Vec<(String, String)> = recent
        .iter()
        .filter(|r| r.last_updated > now - NEW_FOR_MS)
        .filter(|r| r.value().is_some_and(|v| !hale_app::entered_by_person(&v)))
        .take(5)
        .map(|r| {
            let view = describe(l, r);
            // Mid-sentence, an unnamed source reads in lower case.
            let from = if view.from == l.t("entry-from-source") {
                l.t("attention-from-source")
            } else {
                view.from
            };
            (
                l.ta("attention-new", &[("what", view.title), ("from", from)]),
                view.href,
            )
        })
        .collect();
    let waiting = grants
        .iter()
        .filter(|g| g.status == Status::Invited)
        .count();
    if waiting > 0 {
        items.push((
            l.t1("attention-invited", "count", waiting),
            "/record/sharing".into(),
        ));
    }
    for g in grants
        .iter()
        .filter(|g| g.in_force(now) && g.end.is_some_and(|e| e - now < ENDING_WITHIN_MS))
    {
        items.push((
            l.ta(
                "attention-ending",
                &[
                    ("name", g.name.clone()),
                    ("date", day(l, g.end.unwrap_or(now))),
                ],
            ),
            "/record/sharing".into(),
        ));
    }
    items
}

/// `GET /record`: the record's categories with how many entries each holds.
pub(crate) async fn home(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let acting = ctx.actor.grant().is_some();
    let (counts, mut recent, name, grants) = call(&state, &v, move |app| {
        // The person's sharing, for what needs their attention (not shown to a grantee).
        let grants = if acting {
            Vec::new()
        } else {
            app.grants_of_record(&ctx)?
        };
        // Whose record it is, when it is someone else's (the heading says so).
        let name = match ctx.actor.record() {
            Some(record) if acting => app
                .read(&ctx, "Patient", record.as_str())?
                .value()
                .and_then(|p| hale_app::grants::patient_name(&p)),
            _ => None,
        };
        let mut counts = Vec::new();
        let mut recent = Vec::new();
        for c in CATEGORIES {
            let mut n = 0;
            for (rtype, extra) in c.searches {
                // The newest few of each, with the total: one query serves both.
                let more = [("_sort", "-_lastUpdated"), ("_count", "5")];
                let (_, page) = app.search_entries(&ctx, rtype, &pairs(extra, &more), false)?;
                n += page.total.unwrap_or(0);
                recent.extend(page.matches);
            }
            counts.push(n);
        }
        Ok((counts, recent, name, grants))
    })
    .await?;
    let l = v.lang;
    let attention = needs_attention(l, &recent, &grants);
    // What is new: the five most recently added or changed entries, whatever they are.
    recent.sort_by_key(|r| std::cmp::Reverse(r.last_updated));
    recent.dedup_by(|a, b| a.resource_type == b.resource_type && a.id == b.id);
    recent.truncate(5);
    let level_text = if who.account.verification_level >= VerificationLevel::P9 {
        l.t("record-level-p9")
    } else {
        l.t("record-level-p0")
    };
    let title = match name {
        Some(name) => l.t1("record-title-acting", "name", name),
        None => l.t("record-title"),
    };
    let page = RecordPage {
        attention,
        acting,
        chrome: signed_in_chrome(&state, &v, &who, title),
        level_text,
        recent: recent.iter().map(|r| describe(l, r)).collect(),
        categories: CATEGORIES
            .iter()
            .zip(counts)
            .map(|(c, n)| CategoryLink {
                slug: c.slug,
                name: l.t(&format!("category-{}", c.slug)),
                count: l.t1("record-count-entries", "count", n),
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

#[derive(Template)]
#[template(path = "category.html")]
struct CategoryPage {
    chrome: Chrome,
    banner: Option<String>,
    actions: Vec<(String, String)>,
    entries: Vec<EntryView>,
}

/// `GET /record/{category}`: its entries, newest first.
pub(crate) async fn category_page(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(slug): Path<String>,
    Query(q): Query<DeletedQuery>,
) -> Page {
    let Some(c) = category(&slug) else {
        return Err(error_page(&v, StatusCode::NOT_FOUND));
    };
    let (who, ctx) = person(&state, &v).await?;
    let (found, metrics) = call(&state, &v, move |app| {
        let mut all = Vec::new();
        for (rtype, extra) in c.searches {
            let (_, page) = app.search_entries(
                &ctx,
                rtype,
                &pairs(extra, &[("_sort", "-_lastUpdated"), ("_count", "100")]),
                false,
            )?;
            all.extend(page.matches);
        }
        all.sort_by_key(|r| std::cmp::Reverse(r.last_updated));
        // Watch and app readings have a chart each, for what the record holds.
        let metrics = match (c.slug, ctx.actor.record()) {
            ("wellbeing", Some(record)) => app.sample_metrics(&ctx, record)?,
            _ => Vec::new(),
        };
        Ok((all, metrics))
    })
    .await?;
    let l = v.lang;
    let mut actions = Vec::new();
    if c.slug == "wellbeing" {
        for metric in metrics {
            actions.push((
                format!("/record/wellbeing/{}", metric.id),
                l.t1(
                    "activity-title",
                    "metric",
                    l.t(&format!("metric-{}", metric.id)),
                ),
            ));
        }
        actions.push(("/record/import".to_owned(), l.t("import-title")));
    }
    if c.slug == "measurements" {
        actions.push((
            "/record/measurements/add".to_owned(),
            l.t("record-add-measurement"),
        ));
        for kind in MeasurementKind::ALL {
            actions.push((
                format!("/record/measurements/{}", kind.slug()),
                l.t1(
                    "chart-title",
                    "kind",
                    l.t(&format!("kind-{}", kind.slug())).to_lowercase(),
                ),
            ));
        }
    }
    let page = CategoryPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t(&format!("category-{slug}"))),
        banner: q.deleted.map(|_| l.t("entry-deleted")),
        actions,
        entries: found.iter().map(|r| describe(l, r)).collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// The category an entry is listed under: by type, and for an Observation by its category
/// code too (a blood pressure is a measurement, a blood count a test result).
fn home_category(r: &StoredResource) -> &'static str {
    let v = r.value().unwrap_or(Value::Null);
    let codes: Vec<&str> = v["category"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["coding"].as_array().into_iter().flatten())
        .filter_map(|c| c["code"].as_str())
        .collect();
    CATEGORIES
        .iter()
        .find(|c| {
            c.searches.iter().any(|(t, extra)| {
                *t == r.resource_type
                    && extra
                        .iter()
                        .all(|(k, want)| *k != "category" || codes.contains(want))
            })
        })
        .map_or("measurements", |c| c.slug)
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct DeletedQuery {
    #[serde(default)]
    deleted: Option<String>,
}

#[derive(Template)]
#[template(path = "confirm_delete.html")]
struct ConfirmDeletePage {
    chrome: Chrome,
    csrf: String,
    entry_href: String,
    entry_title: String,
}

/// Reads an entry for the person, or the page to show instead (not found, or an error).
async fn read_entry(
    state: &State,
    v: &Visitor,
    ctx: RequestContext,
    rtype: &str,
    id: &str,
) -> Result<StoredResource, Response> {
    let app = state.app.clone();
    let (t, i) = (rtype.to_owned(), id.to_owned());
    let found = tokio::task::spawn_blocking(move || app.read(&ctx, &t, &i))
        .await
        .map_err(|_| error_page(v, StatusCode::INTERNAL_SERVER_ERROR))?;
    match found {
        Ok(r) => Ok(r),
        // Missing, deleted, another record's, hidden, or not a type: all "not found".
        Err(
            AppError::NotFound { .. }
            | AppError::Gone { .. }
            | AppError::NotSupported(_)
            | AppError::BadRequest(_),
        ) => Err(error_page(v, StatusCode::NOT_FOUND)),
        Err(e) => {
            tracing::error!(request_id = %v.request_id, error = %e, "entry read failed");
            Err(error_page(v, StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

/// `GET /record/entry/{type}/{id}/delete`: are you sure?
pub(crate) async fn confirm_delete(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path((rtype, id)): Path<(String, String)>,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let found = read_entry(&state, &v, ctx, &rtype, &id).await?;
    let l = v.lang;
    if !found
        .value()
        .is_some_and(|x| hale_app::entered_by_person(&x))
    {
        return Err(read_only(&state, &v, &who));
    }
    let view = describe(l, &found);
    let page = ConfirmDeletePage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("entry-delete-title")),
        csrf: crate::ui::session_csrf(&state, &v),
        entry_href: view.href,
        entry_title: view.title,
    };
    Ok(html(StatusCode::OK, page.render()))
}

fn read_only(state: &State, v: &Visitor, who: &hale_app::accounts::SignedIn) -> Response {
    let l = v.lang;
    let page = super::pages::MessagePage {
        chrome: signed_in_chrome(state, v, who, l.t("entry-delete")),
        heading: l.t("entry-delete"),
        paragraphs: vec![l.t("entry-read-only")],
        reference: None,
        links: vec![("/record", l.t("record-back"))],
    };
    html(StatusCode::FORBIDDEN, page.render())
}

/// `POST /record/entry/{type}/{id}/delete`: deletes the person's own entry (history kept).
pub(crate) async fn delete_entry(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path((rtype, id)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    super::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    let found = read_entry(&state, &v, ctx.clone(), &rtype, &id).await?;
    let home = home_category(&found);
    let app = state.app.clone();
    let outcome = tokio::task::spawn_blocking(move || app.delete_own_entry(&ctx, &rtype, &id))
        .await
        .map_err(|_| error_page(&v, StatusCode::INTERNAL_SERVER_ERROR))?;
    match outcome {
        Ok(()) => Ok(see_other(&format!("/record/{home}?deleted=1"))),
        Err(AppError::Forbidden(_)) => Err(read_only(&state, &v, &who)),
        Err(AppError::NotFound { .. } | AppError::Gone { .. }) => {
            Err(error_page(&v, StatusCode::NOT_FOUND))
        }
        Err(e) => {
            tracing::error!(request_id = %v.request_id, error = %e, "delete failed");
            Err(error_page(&v, StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

#[derive(Template)]
#[template(path = "entry.html")]
struct EntryPage {
    chrome: Chrome,
    /// Where to download the file of a document entry.
    download: Option<String>,
    banner: Option<String>,
    /// Entered by the person (or their app): they may delete it.
    own: bool,
    /// Where the person changes it, if it is theirs to change.
    change: Option<(String, String)>,
    back: (String, String),
    entry: EntryView,
    rows: Vec<(String, String)>,
    /// The person's own notes on it: (when, text).
    notes: Vec<(String, String)>,
    /// The form to add a note (not for someone acting for the person).
    note_form: Option<NoteForm>,
    /// The error summary.
    errors: Vec<FormError>,
}

/// The "add a note" form on an entry's page.
struct NoteForm {
    csrf: String,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct EntryQuery {
    #[serde(default)]
    added: Option<String>,
    #[serde(default)]
    changed: Option<String>,
    #[serde(default)]
    labelled: Option<String>,
    #[serde(default)]
    noted: Option<String>,
}

/// `GET /record/entry/{type}/{id}`: one entry in plain words.
pub(crate) async fn entry(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path((rtype, id)): Path<(String, String)>,
    Query(q): Query<EntryQuery>,
) -> Page {
    entry_page(&state, &v, rtype, id, q, None).await
}

/// `POST /record/entry/{type}/{id}/note`: the person's own note on an entry.
pub(crate) async fn add_note(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path((rtype, id)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let (_, ctx) = person(&state, &v).await?;
    let data = crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    let (t, i, text) = (rtype.clone(), id.clone(), data.get("note").to_owned());
    let added = call(&state, &v, move |app| {
        match app.add_note_on_entry(&ctx, &t, &i, &text, hale_fhir::date::now_millis()) {
            Err(AppError::NotFound { .. } | AppError::Gone { .. }) => Ok(None),
            other => other.map(Some),
        }
    })
    .await?;
    match added {
        None => Err(error_page(&v, StatusCode::NOT_FOUND)),
        Some(Ok(_)) => Ok(see_other(&format!("/record/entry/{rtype}/{id}?noted=1"))),
        Some(Err(problems)) => {
            let message = match problems.first() {
                Some(EntryProblem::TooLong(_)) => v.lang.t("error-too-long"),
                _ => v.lang.t("note-missing"),
            };
            entry_page(&state, &v, rtype, id, EntryQuery::default(), Some(message)).await
        }
    }
}

async fn entry_page(
    state: &State,
    v: &Visitor,
    rtype: String,
    id: String,
    q: EntryQuery,
    note_error: Option<String>,
) -> Page {
    let (state, v) = (state.clone(), v.clone());
    let (who, ctx) = person(&state, &v).await?;
    let acting = ctx.actor.grant().is_some();
    let grants_ctx = ctx.clone();
    let notes_ctx = ctx.clone();
    let found = read_entry(&state, &v, ctx, &rtype, &id).await?;
    let (t, i) = (rtype.clone(), id.clone());
    let notes = call(&state, &v, move |app| {
        app.notes_on_entry(&notes_ctx, &t, &i)
    })
    .await?;
    // Who else can see it: the person's grants in force that cover it (theirs to know, not
    // shown to someone acting for them).
    let grants = if acting {
        Vec::new()
    } else {
        call(&state, &v, move |app| app.grants_of_record(&grants_ctx)).await?
    };
    let l = v.lang;
    let view = describe(l, &found);
    let home = home_category(&found);
    let mut rows = vec![
        (l.t("entry-what"), view.title.clone()),
        (l.t("entry-when"), view.when.clone()),
    ];
    if !view.value.is_empty() {
        rows.push((l.t("entry-value"), view.value.clone()));
    }
    if !view.status.is_empty() {
        rows.push((l.t("entry-status"), view.status.clone()));
    }
    if !view.notes.is_empty() {
        rows.push((l.t("entry-notes"), view.notes.clone()));
    }
    rows.push((l.t("entry-from"), view.from.clone()));
    let label = found
        .value()
        .map(|v| hale_app::labels::label_of(&v))
        .unwrap_or(hale_app::labels::PrivacyLabel::General);
    let now = hale_fhir::date::now_millis();
    let sharers: Vec<String> = grants
        .iter()
        .filter(|g| g.in_force(now) && g.covers(&found.resource_type, Some(label)))
        .map(|g| {
            l.ta(
                "entry-label-sharer",
                &[
                    ("name", g.name.clone()),
                    (
                        "role",
                        l.t(&format!("role-{}", g.role.code())).to_lowercase(),
                    ),
                ],
            )
        })
        .collect();
    let who_sees = if acting {
        l.t("entry-label-acting")
    } else if sharers.is_empty() {
        l.t("entry-label-private")
    } else {
        l.t1("entry-label-shared", "names", sharers.join(", "))
    };
    rows.push((
        l.t("entry-label"),
        l.ta(
            "entry-label-value",
            &[
                ("label", l.t(&format!("label-name-{}", label.code()))),
                ("who", who_sees),
            ],
        ),
    ));
    let has_file = found.resource_type == "DocumentReference"
        && found
            .value()
            .is_some_and(|d| d["content"][0]["attachment"]["data"].is_string());
    let page = EntryPage {
        download: has_file.then(|| format!("{}/file", view.href)),
        chrome: signed_in_chrome(&state, &v, &who, view.title.clone()),
        banner: q
            .changed
            .map(|_| {
                if found.resource_type == "Observation" && home == "measurements" {
                    l.t("reading-changed")
                } else {
                    l.t("entry-changed")
                }
            })
            .or(q.labelled.map(|_| l.t("label-changed")))
            .or(q.noted.map(|_| l.t("note-added")))
            .or(q.added.map(|_| {
                if found.resource_type == "Observation" && home == "measurements" {
                    l.t("reading-added")
                } else {
                    l.t("journal-saved")
                }
            })),
        // Someone acting for the person adds entries but does not change or remove them.
        own: !acting
            && found
                .value()
                .is_some_and(|v| hale_app::entered_by_person(&v)),
        change: change_link(l, &found, home, acting),
        back: (format!("/record/{home}"), l.t(&format!("category-{home}"))),
        entry: view,
        rows,
        notes: notes
            .iter()
            .filter_map(|n| {
                let v = n.value()?;
                Some((
                    day(l, n.last_updated),
                    v["payload"][0]["contentString"].as_str()?.to_owned(),
                ))
            })
            .collect(),
        errors: note_error
            .iter()
            .map(|m| FormError {
                field: "note".into(),
                message: m.clone(),
            })
            .collect(),
        note_form: (!acting).then(|| NoteForm {
            csrf: crate::ui::session_csrf(&state, &v),
            error: note_error.clone(),
        }),
    };
    let mut page = page;
    page.chrome.has_errors = !page.errors.is_empty();
    Ok(html(StatusCode::OK, page.render()))
}

fn unit_words(lang: Lang, ucum: &str) -> String {
    lang.t(match ucum {
        "mm[Hg]" => "unit-mm-hg",
        "kg" => "unit-kg",
        "mmol/L" => "unit-mmol-l",
        "Cel" => "unit-cel",
        _ => "unit-l-min",
    })
}

#[derive(serde::Deserialize)]
pub(crate) struct KindPath {
    kind: String,
}

#[derive(Template)]
#[template(path = "summary.html")]
struct SummaryPage {
    chrome: Chrome,
    made: String,
    details: Vec<(String, String)>,
    sections: Vec<(String, Vec<EntryView>)>,
}

/// `GET /record/summary`: one printable page with what matters most: conditions, medicines,
/// allergies, vaccinations, and the latest of each measurement.
pub(crate) async fn summary(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let l = v.lang;
    let (patient, found) = call(&state, &v, move |app| {
        let record = ctx
            .actor
            .record()
            .cloned()
            .ok_or_else(|| AppError::Forbidden("no record".into()))?;
        let patient = app.read(&ctx, "Patient", record.patient_id().as_str())?;
        let mut sections = Vec::new();
        for slug in ["conditions", "medicines", "allergies", "immunisations"] {
            let mut all = Vec::new();
            if let Some(c) = category(slug) {
                for (rtype, extra) in c.searches {
                    let more = [("_sort", "-_lastUpdated"), ("_count", "50")];
                    let (_, page) = app.search_entries(&ctx, rtype, &pairs(extra, &more), false)?;
                    all.extend(page.matches);
                }
            }
            sections.push((slug, all));
        }
        let mut latest = Vec::new();
        for kind in MeasurementKind::ALL {
            let (code, _) = kind.code();
            let query = pairs(
                &[],
                &[
                    ("code", &format!("http://loinc.org|{code}")),
                    ("_sort", "-date"),
                    ("_count", "1"),
                ],
            );
            let (_, page) = app.search_entries(&ctx, "Observation", &query, false)?;
            latest.extend(page.matches);
        }
        sections.push(("latest", latest));
        Ok((patient, sections))
    })
    .await?;
    let p = patient.value().unwrap_or(Value::Null);
    let name = p["name"][0]["text"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    let nhs = p["identifier"]
        .as_array()
        .and_then(|ids| {
            ids.iter()
                .find(|i| i["system"] == hale_fhir::nhs_number::SYSTEM)
        })
        .and_then(|i| i["value"].as_str())
        .map(|n| {
            format!(
                "{} {} {}",
                &n[..3.min(n.len())],
                n.get(3..6).unwrap_or(""),
                n.get(6..).unwrap_or("")
            )
        })
        .unwrap_or_else(|| l.t("summary-none"));
    let page = SummaryPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("summary-title")),
        made: l.t1(
            "summary-made",
            "date",
            day(l, hale_fhir::date::now_millis()),
        ),
        details: vec![
            (l.t("summary-name"), name),
            (l.t("summary-nhs-number"), nhs),
        ],
        sections: found
            .into_iter()
            .map(|(slug, items)| {
                let heading = if slug == "latest" {
                    l.t("summary-latest")
                } else {
                    l.t(&format!("category-{slug}"))
                };
                (heading, items.iter().map(|r| describe(l, r)).collect())
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// Where the person changes an entry, and the words of the link: their own readings and
/// journal entries; never a service's, never for someone acting for them.
fn change_link(
    l: Lang,
    found: &hale_app::StoredResource,
    home: &str,
    acting: bool,
) -> Option<(String, String)> {
    let v = found.value().filter(hale_app::entered_by_person)?;
    if acting {
        return None;
    }
    let href = format!("/record/entry/{}/{}", found.resource_type, found.id);
    if found.resource_type == "Observation" && home == "measurements" {
        return Some((format!("{href}/edit"), l.t("entry-change")));
    }
    let kind = hale_app::journal::journal_kind_of(&found.resource_type, &v)?;
    Some((
        format!("{href}/change"),
        l.t(&format!("change-title-{}", kind.slug())),
    ))
}
