//! The person's record (issue 5 §3): by category, one entry in plain words with where it
//! came from, adding a measurement, and a chart of a measurement over time with a table and
//! a sentence that say the same.
// Handlers return early with the page to show (a redirect, an error page) as `Err`.
#![allow(clippy::result_large_err)]

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
use super::{FormData, Lang, Visitor, csrf_token, error_page, html, see_other};
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

/// The person's own context, or the way to sign in.
async fn person(
    state: &State,
    v: &Visitor,
) -> Result<(hale_app::accounts::SignedIn, RequestContext), Response> {
    let who = two_factor(state, v).await?;
    let (checked, request_id) = (who.clone(), v.request_id.clone());
    let ctx = call(state, v, move |app| {
        app.person_context(&checked, &request_id)
    })
    .await?;
    Ok((who, ctx))
}

/// A date as "27 November 2026" (UTC).
pub(crate) fn day(lang: Lang, ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
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
        notes: v["note"][0]["text"].as_str().unwrap_or_default().to_owned(),
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
    level_text: String,
    categories: Vec<CategoryLink>,
}

/// `GET /record`: the record's categories with how many entries each holds.
pub(crate) async fn home(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let counts = call(&state, &v, move |app| {
        let mut counts = Vec::new();
        for c in CATEGORIES {
            let mut n = 0;
            for (rtype, extra) in c.searches {
                let (_, page) =
                    app.search(&ctx, rtype, &pairs(extra, &[("_summary", "count")]), false)?;
                n += page.total.unwrap_or(0);
            }
            counts.push(n);
        }
        Ok(counts)
    })
    .await?;
    let l = v.lang;
    let level_text = if who.account.verification_level >= VerificationLevel::P9 {
        l.t("record-level-p9")
    } else {
        l.t("record-level-p0")
    };
    let page = RecordPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("record-title")),
        level_text,
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
    let found = call(&state, &v, move |app| {
        let mut all = Vec::new();
        for (rtype, extra) in c.searches {
            let (_, page) = app.search(
                &ctx,
                rtype,
                &pairs(extra, &[("_sort", "-_lastUpdated"), ("_count", "100")]),
                false,
            )?;
            all.extend(page.matches);
        }
        all.sort_by_key(|r| std::cmp::Reverse(r.last_updated));
        Ok(all)
    })
    .await?;
    let l = v.lang;
    let mut actions = Vec::new();
    if c.slug == "wellbeing" {
        for metric in ACTIVITY_METRICS {
            actions.push((
                format!("/record/wellbeing/{metric}"),
                l.t1("activity-title", "metric", l.t(&format!("metric-{metric}"))),
            ));
        }
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
        csrf: csrf_token(&state, v.session_key.as_deref().unwrap_or("")),
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
    /// A reading they may change.
    changeable: bool,
    back: (String, String),
    entry: EntryView,
    rows: Vec<(String, String)>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct EntryQuery {
    #[serde(default)]
    added: Option<String>,
    #[serde(default)]
    changed: Option<String>,
}

/// `GET /record/entry/{type}/{id}`: one entry in plain words.
pub(crate) async fn entry(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path((rtype, id)): Path<(String, String)>,
    Query(q): Query<EntryQuery>,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let found = read_entry(&state, &v, ctx, &rtype, &id).await?;
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
    rows.push((l.t("entry-label"), l.t("entry-label-private")));
    let has_file = found.resource_type == "DocumentReference"
        && found
            .value()
            .is_some_and(|d| d["content"][0]["attachment"]["data"].is_string());
    let page = EntryPage {
        download: has_file.then(|| format!("{}/file", view.href)),
        chrome: signed_in_chrome(&state, &v, &who, view.title.clone()),
        banner: q
            .changed
            .map(|_| l.t("reading-changed"))
            .or(q.added.map(|_| {
                if found.resource_type == "Observation" && home == "measurements" {
                    l.t("reading-added")
                } else {
                    l.t("journal-saved")
                }
            })),
        own: found
            .value()
            .is_some_and(|v| hale_app::entered_by_person(&v)),
        changeable: found.resource_type == "Observation" && home == "measurements",
        back: (format!("/record/{home}"), l.t(&format!("category-{home}"))),
        entry: view,
        rows,
    };
    Ok(html(StatusCode::OK, page.render()))
}

#[derive(Template)]
#[template(path = "add_kind.html")]
struct AddKindPage {
    chrome: Chrome,
    csrf: String,
    errors: Vec<FormError>,
    kinds: Vec<(&'static str, String)>,
}

fn add_kind_page(state: &State, v: &Visitor, who: &hale_app::accounts::SignedIn) -> AddKindPage {
    let l = v.lang;
    AddKindPage {
        chrome: signed_in_chrome(state, v, who, l.t("add-kind-title")),
        csrf: csrf_token(state, v.session_key.as_deref().unwrap_or("")),
        errors: Vec::new(),
        kinds: MeasurementKind::ALL
            .iter()
            .map(|k| (k.slug(), l.t(&format!("kind-{}", k.slug()))))
            .collect(),
    }
}

/// `GET /record/measurements/add`: which kind of measurement.
pub(crate) async fn add_kind_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = two_factor(&state, &v).await?;
    Ok(html(
        StatusCode::OK,
        add_kind_page(&state, &v, &who).render(),
    ))
}

/// `POST /record/measurements/add`.
pub(crate) async fn add_kind(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = two_factor(&state, &v).await?;
    let data = super::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    if let Some(kind) = MeasurementKind::from_slug(data.get("kind")) {
        return Ok(see_other(&format!(
            "/record/measurements/add/{}",
            kind.slug()
        )));
    }
    let mut page = add_kind_page(&state, &v, &who);
    page.errors.push(FormError {
        field: "kind".into(),
        message: v.lang.t("add-kind-missing"),
    });
    page.chrome.has_errors = true;
    Ok(html(StatusCode::OK, page.render()))
}

#[derive(Template)]
#[template(path = "add_reading.html")]
struct AddReadingPage {
    chrome: Chrome,
    csrf: String,
    action: String,
    hint: String,
    errors: Vec<FormError>,
    fields: Vec<Field>,
    date: (String, String, String),
    date_error: Option<String>,
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

fn reading_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    kind: MeasurementKind,
    data: Option<&FormData>,
) -> AddReadingPage {
    let l = v.lang;
    let name = l.t(&format!("kind-{}", kind.slug()));
    let today = time::OffsetDateTime::now_utc();
    let keep = |field: &str, default: String| data.map_or(default, |d| d.get(field).to_owned());
    AddReadingPage {
        chrome: signed_in_chrome(
            state,
            v,
            who,
            l.t1("add-reading-title", "kind", name.to_lowercase()),
        ),
        csrf: csrf_token(state, v.session_key.as_deref().unwrap_or("")),
        action: format!("/record/measurements/add/{}", kind.slug()),
        hint: l.t(&format!("hint-{}", kind.slug())),
        errors: Vec::new(),
        fields: kind
            .parts()
            .iter()
            .map(|p| {
                let mut f = Field::new(p.name, "text", l.t(&format!("part-{}", p.name)))
                    .hint(unit_words(l, p.unit));
                f.value = keep(p.name, String::new());
                f
            })
            .collect(),
        date: (
            keep("day", today.day().to_string()),
            keep("month", u8::from(today.month()).to_string()),
            keep("year", today.year().to_string()),
        ),
        date_error: None,
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct KindPath {
    kind: String,
}

/// `GET /record/measurements/add/{kind}`.
pub(crate) async fn add_reading_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(p): Path<KindPath>,
) -> Page {
    let kind =
        MeasurementKind::from_slug(&p.kind).ok_or_else(|| error_page(&v, StatusCode::NOT_FOUND))?;
    let who = two_factor(&state, &v).await?;
    Ok(html(
        StatusCode::OK,
        reading_page(&state, &v, &who, kind, None).render(),
    ))
}

/// When a reading dated `day/month/year` was taken: now if that is today, otherwise midday
/// (UTC) that day. `None` if it is not a real date.
fn taken_at(day: &str, month: &str, year: &str) -> Option<i64> {
    let (d, m, y) = (
        day.trim().parse::<u8>().ok()?,
        month.trim().parse::<u8>().ok()?,
        year.trim().parse::<i32>().ok()?,
    );
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()?;
    let now = time::OffsetDateTime::now_utc();
    if date == now.date() {
        return Some(hale_fhir::date::now_millis());
    }
    let noon = date.with_hms(12, 0, 0).ok()?.assume_utc();
    i64::try_from(noon.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `POST /record/measurements/add/{kind}`: saves it, or says what to fix.
pub(crate) async fn add_reading(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(p): Path<KindPath>,
    body: Bytes,
) -> Page {
    let kind =
        MeasurementKind::from_slug(&p.kind).ok_or_else(|| error_page(&v, StatusCode::NOT_FOUND))?;
    let (who, ctx) = person(&state, &v).await?;
    let data = super::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    let values: Vec<String> = kind
        .parts()
        .iter()
        .map(|p| data.get(p.name).to_owned())
        .collect();
    let at = taken_at(data.get("day"), data.get("month"), data.get("year")).unwrap_or(-1);
    let outcome = call(&state, &v, move |app| {
        let typed: Vec<&str> = values.iter().map(String::as_str).collect();
        app.add_reading(&ctx, kind, &typed, at)
    })
    .await?;
    match outcome {
        Ok(saved) => Ok(see_other(&format!(
            "/record/entry/Observation/{}?added=1",
            saved.id
        ))),
        Err(problems) => {
            let mut page = reading_page(&state, &v, &who, kind, Some(&data));
            reading_errors(v.lang, kind, &mut page, problems);
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

#[derive(Template)]
#[template(path = "chart.html")]
struct ChartPage {
    chrome: Chrome,
    action: String,
    back: (String, String),
    /// Where to add a reading, and the link's words.
    add: Option<(String, String)>,
    periods: Vec<(u32, String, bool)>,
    summary: String,
    svg: String,
    /// Link (if the row is one entry), date, value.
    rows: Vec<(Option<String>, String, String)>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct PeriodQuery {
    #[serde(default)]
    period: Option<u32>,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// `GET /record/measurements/{kind}?period=30`: the chart, its table and a summary.
pub(crate) async fn chart(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(p): Path<KindPath>,
    Query(q): Query<PeriodQuery>,
) -> Page {
    let kind =
        MeasurementKind::from_slug(&p.kind).ok_or_else(|| error_page(&v, StatusCode::NOT_FOUND))?;
    let (who, ctx) = person(&state, &v).await?;
    let days = q.period.filter(|d| [30, 90, 365].contains(d)).unwrap_or(30);
    let now = hale_fhir::date::now_millis();
    let from = now - i64::from(days) * DAY_MS;
    let previous_from = from - i64::from(days) * DAY_MS;
    let all = call(&state, &v, move |app| {
        app.readings(&ctx, kind, previous_from)
    })
    .await?;
    let (before, during): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| r.at < from);
    let l = v.lang;
    let name = l.t(&format!("kind-{}", kind.slug())).to_lowercase();
    let unit = unit_words(l, kind.parts()[0].unit);
    let values = |rs: &[hale_app::readings::Reading], i: usize| -> Vec<f64> {
        rs.iter()
            .filter_map(|r| r.values.get(i)?.parse::<f64>().ok())
            .collect()
    };
    let series: Vec<Vec<f64>> = (0..kind.parts().len())
        .map(|i| values(&during, i))
        .collect();
    let averages: Vec<String> = series
        .iter()
        .filter_map(|s| mean(s.iter().copied()))
        .map(chart::round)
        .collect();
    let previous: Vec<String> = (0..kind.parts().len())
        .filter_map(|i| mean(values(&before, i).into_iter()))
        .map(chart::round)
        .collect();
    let mut summary = String::new();
    if !during.is_empty() {
        let joined = averages.join("/");
        let count = during.len().to_string();
        summary = if kind == MeasurementKind::BloodPressure {
            l.ta(
                "chart-summary-bp",
                &[
                    ("average", joined.clone()),
                    ("unit", unit.clone()),
                    ("count", count),
                ],
            )
        } else {
            l.ta(
                "chart-summary",
                &[
                    ("kind", name.clone()),
                    ("average", joined.clone()),
                    ("unit", unit.clone()),
                    ("count", count),
                ],
            )
        };
        if previous.len() == averages.len() && !previous.is_empty() {
            let now_first = mean(series[0].iter().copied()).unwrap_or(0.0);
            let before_first = mean(values(&before, 0).into_iter()).unwrap_or(0.0);
            // Compared as shown, so "72.4, down from 72.4" cannot happen.
            let key = if chart::round(now_first) == chart::round(before_first) {
                "chart-compare-same"
            } else if now_first > before_first {
                "chart-compare-up"
            } else {
                "chart-compare-down"
            };
            summary.push(' ');
            summary.push_str(&l.t1(key, "previous", previous.join("/")));
        }
    }
    let lines: Vec<chart::Series> = kind
        .parts()
        .iter()
        .enumerate()
        .map(|(i, part)| chart::Series {
            name: l.t(&format!("part-{}", part.name)),
            points: during
                .iter()
                .filter_map(|r| Some((r.at, r.values.get(i)?.parse::<f64>().ok()?)))
                .collect(),
        })
        .collect();
    let svg = chart::svg(l, &lines, from, now, &l.t1("chart-image", "kind", &name));
    let page = ChartPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t1("chart-title", "kind", &name)),
        action: format!("/record/measurements/{}", kind.slug()),
        back: (
            "/record/measurements".to_owned(),
            l.t("category-measurements"),
        ),
        add: Some((
            format!("/record/measurements/add/{}", kind.slug()),
            l.t("chart-add"),
        )),
        periods: [30, 90, 365]
            .into_iter()
            .map(|d| (d, l.t(&format!("chart-period-{d}")), d == days))
            .collect(),
        summary,
        svg,
        rows: during
            .iter()
            .rev()
            .map(|r| {
                (
                    Some(format!("/record/entry/Observation/{}", r.id)),
                    day(l, r.at),
                    format!("{} {unit}", r.values.join("/")),
                )
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_dated_today_now_or_midday_otherwise_and_nonsense_is_refused() {
        let now = time::OffsetDateTime::now_utc();
        let today = taken_at(
            &now.day().to_string(),
            &u8::from(now.month()).to_string(),
            &now.year().to_string(),
        )
        .unwrap();
        assert!((today - hale_fhir::date::now_millis()).abs() < 5_000);
        let past = taken_at("27", "11", "2025").unwrap();
        assert_eq!(
            hale_fhir::date::format_instant(past),
            "2025-11-27T12:00:00.000Z"
        );
        for (d, m, y) in [
            ("31", "2", "2025"),
            ("", "1", "2025"),
            ("1", "13", "2025"),
            ("x", "1", "2025"),
        ] {
            assert_eq!(taken_at(d, m, y), None, "{d}/{m}/{y}");
        }
    }
}

/// The wearable metrics with a chart of their own (from the time-series store).
const ACTIVITY_METRICS: [&str; 3] = ["steps", "resting_heart_rate", "heart_rate"];

#[derive(serde::Deserialize)]
pub(crate) struct MetricPath {
    metric: String,
}

/// `GET /record/wellbeing/{metric}?period=30`: a watch's or phone's readings, as daily
/// (or, over a year, weekly) figures: a chart, a table and a summary.
pub(crate) async fn activity(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(p): Path<MetricPath>,
    Query(q): Query<PeriodQuery>,
) -> Page {
    let Some(metric) = ACTIVITY_METRICS.iter().copied().find(|m| *m == p.metric) else {
        return Err(error_page(&v, StatusCode::NOT_FOUND));
    };
    let (who, ctx) = person(&state, &v).await?;
    let days = q.period.filter(|d| [30, 90, 365].contains(d)).unwrap_or(30);
    let bucket = if days == 365 { 7 * DAY_MS } else { DAY_MS };
    let now = hale_fhir::date::now_millis();
    // Whole buckets, ending with the one that holds today.
    let end = (now / DAY_MS + 1) * DAY_MS;
    let from = end - i64::from(days) * DAY_MS;
    let buckets = call(&state, &v, move |app| {
        let record = ctx
            .actor
            .record()
            .cloned()
            .ok_or_else(|| AppError::Forbidden("no record".into()))?;
        app.sample_buckets(&ctx, &record, metric, from, end, bucket)
    })
    .await?;
    // Steps add up over a day; rates are averaged. Over a week, steps are a daily average.
    let per_bucket_days = (bucket / DAY_MS) as f64;
    let points: Vec<(i64, f64)> = buckets
        .iter()
        .map(|b| {
            let value = if metric == "steps" {
                b.mean * b.count as f64 / per_bucket_days
            } else {
                b.mean
            };
            (b.start, value)
        })
        .collect();
    let l = v.lang;
    let metric_name = l.t(&format!("metric-{metric}"));
    let unit = l.t(&format!("metric-unit-{metric}"));
    let summary = mean(points.iter().map(|p| p.1))
        .map(|avg| {
            l.ta(
                "activity-summary",
                &[("average", chart::round(avg)), ("unit", unit.clone())],
            )
        })
        .unwrap_or_default();
    let lines = [chart::Series {
        name: metric_name.clone(),
        points: points.clone(),
    }];
    let svg = chart::svg(
        l,
        &lines,
        from,
        end,
        &l.t1("activity-image", "metric", metric_name.to_lowercase()),
    );
    let page = ChartPage {
        chrome: signed_in_chrome(
            &state,
            &v,
            &who,
            l.t1("activity-title", "metric", &metric_name),
        ),
        action: format!("/record/wellbeing/{metric}"),
        back: ("/record/wellbeing".to_owned(), l.t("category-wellbeing")),
        add: None,
        periods: [30, 90, 365]
            .into_iter()
            .map(|d| (d, l.t(&format!("chart-period-{d}")), d == days))
            .collect(),
        summary,
        svg,
        rows: points
            .iter()
            .rev()
            .map(|(at, value)| {
                let when = if bucket > DAY_MS {
                    l.t1("activity-week-of", "date", day(l, *at))
                } else {
                    day(l, *at)
                };
                (None, when, format!("{} {unit}", chart::round(*value)))
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// What `/record/add` offers: a measurement, or one of the journal kinds.
fn add_choices(l: Lang) -> Vec<(String, String)> {
    let mut choices = vec![("measurement".to_owned(), l.t("add-kind-measurement"))];
    for kind in JournalKind::ALL {
        choices.push((
            kind.slug().to_owned(),
            l.t(&format!("add-kind-{}", kind.slug())),
        ));
    }
    choices
}

fn add_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
) -> super::pages::FormPage {
    let l = v.lang;
    let mut page = super::pages::FormPage::new(
        signed_in_chrome(state, v, who, l.t("add-title")),
        l.t("add-title"),
        "/record/add",
        csrf_token(state, v.session_key.as_deref().unwrap_or("")),
    );
    page.back = Some(("/record".into(), l.t("record-back")));
    let mut f = Field::new("kind", "radios", l.t("add-title"));
    f.choices = add_choices(l);
    page.fields = vec![f];
    page.submit = l.t("add-kind-submit");
    page
}

/// `GET /record/add`: what do you want to add?
pub(crate) async fn add_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = two_factor(&state, &v).await?;
    Ok(html(StatusCode::OK, add_page(&state, &v, &who).render()))
}

/// `POST /record/add`.
pub(crate) async fn add_choice(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = two_factor(&state, &v).await?;
    let data = super::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    match data.get("kind") {
        "measurement" => return Ok(see_other("/record/measurements/add")),
        "document" => return Ok(see_other("/record/add/document")),
        other => {
            if let Some(kind) = JournalKind::from_slug(other) {
                return Ok(see_other(&format!("/record/add/{}", kind.slug())));
            }
        }
    }
    let mut page = add_page(&state, &v, &who);
    page.error("kind", v.lang.t("add-kind-missing"));
    Ok(html(StatusCode::OK, page.render()))
}

fn journal_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    kind: JournalKind,
    data: Option<&FormData>,
) -> super::pages::FormPage {
    let l = v.lang;
    let slug = kind.slug();
    let title = l.t(&format!("journal-title-{slug}"));
    let mut page = super::pages::FormPage::new(
        signed_in_chrome(state, v, who, title.clone()),
        title,
        format!("/record/add/{slug}"),
        csrf_token(state, v.session_key.as_deref().unwrap_or("")),
    );
    page.back = Some(("/record/add".into(), l.t("add-title")));
    page.fields = kind
        .fields()
        .iter()
        .map(|(name, _)| {
            let label = l.t(&format!("field-{slug}-{name}"));
            let mut f = match *name {
                "notes" | "reaction" => Field::new(name, "textarea", label),
                "what" if kind == JournalKind::Matters => Field::new(name, "textarea", label),
                "severity" => {
                    let mut f = Field::new(name, "radios", label);
                    f.choices = SEVERITIES
                        .iter()
                        .map(|(value, _, _)| {
                            ((*value).to_owned(), l.t(&format!("severity-{value}")))
                        })
                        .collect();
                    f
                }
                "mood" => {
                    let mut f = Field::new(name, "radios", label);
                    f.choices = MOODS
                        .iter()
                        .rev()
                        .map(|m| ((*m).to_owned(), l.t(&format!("mood-{m}"))))
                        .collect();
                    f
                }
                _ => Field::new(name, "text", label),
            };
            if let Some(hint) = l.try_t(&format!("field-{slug}-{name}-hint")) {
                f = f.hint(hint);
            }
            if let Some(d) = data {
                f.value = d.get(name).to_owned();
            }
            f
        })
        .collect();
    page.submit = l.t("journal-submit");
    page
}

/// `GET /record/add/{kind}`: the form for a symptom, diary entry, medicine or allergy.
pub(crate) async fn journal_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(p): Path<KindPath>,
) -> Page {
    let kind =
        JournalKind::from_slug(&p.kind).ok_or_else(|| error_page(&v, StatusCode::NOT_FOUND))?;
    let who = two_factor(&state, &v).await?;
    Ok(html(
        StatusCode::OK,
        journal_page(&state, &v, &who, kind, None).render(),
    ))
}

/// `POST /record/add/{kind}`: saves it and shows it, or says what to fix.
pub(crate) async fn journal_add(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(p): Path<KindPath>,
    body: Bytes,
) -> Page {
    let kind =
        JournalKind::from_slug(&p.kind).ok_or_else(|| error_page(&v, StatusCode::NOT_FOUND))?;
    let (who, ctx) = person(&state, &v).await?;
    let data = super::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    let values: Vec<(String, String)> = kind
        .fields()
        .iter()
        .map(|(name, _)| ((*name).to_owned(), data.get(name).to_owned()))
        .collect();
    let outcome = call(&state, &v, move |app| {
        let get = |name: &str| {
            values
                .iter()
                .find(|(n, _)| n == name)
                .map_or_else(String::new, |(_, v)| v.clone())
        };
        app.add_journal_entry(&ctx, kind, &get, hale_fhir::date::now_millis())
    })
    .await?;
    match outcome {
        Ok(saved) => Ok(see_other(&format!(
            "/record/entry/{}/{}?added=1",
            saved.resource_type, saved.id
        ))),
        Err(problems) => {
            let l = v.lang;
            let mut page = journal_page(&state, &v, &who, kind, Some(&data));
            for problem in problems {
                let (field, message) = match problem {
                    EntryProblem::Missing(f) | EntryProblem::NotAChoice(f) => (
                        f,
                        l.try_t(&format!("error-missing-{}-{f}", kind.slug()))
                            .unwrap_or_else(|| l.t(&format!("error-missing-{f}"))),
                    ),
                    EntryProblem::TooLong(f) => (f, l.t("error-too-long")),
                    // Only documents have files (`document_add`).
                    EntryProblem::NoFile | EntryProblem::FileTooBig | EntryProblem::FileType => {
                        ("file", l.t("error-no-file"))
                    }
                };
                page.error(field, message);
            }
            Ok(html(StatusCode::OK, page.render()))
        }
    }
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
                    let (_, page) = app.search(&ctx, rtype, &pairs(extra, &more), false)?;
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
            let (_, page) = app.search(&ctx, "Observation", &query, false)?;
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

fn document_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    title: &str,
) -> super::pages::FormPage {
    let l = v.lang;
    let mut page = super::pages::FormPage::new(
        signed_in_chrome(state, v, who, l.t("document-title")),
        l.t("document-title"),
        "/record/add/document",
        csrf_token(state, v.session_key.as_deref().unwrap_or("")),
    );
    page.back = Some(("/record/add".into(), l.t("add-title")));
    page.multipart = true;
    page.fields = vec![
        Field::new("title", "text", l.t("document-name"))
            .hint(l.t("document-name-hint"))
            .value(title),
        Field::new("file", "file", l.t("document-file")).hint(l.t("document-file-hint")),
    ];
    page.submit = l.t("document-submit");
    page
}

/// `GET /record/add/document`.
pub(crate) async fn document_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = two_factor(&state, &v).await?;
    Ok(html(
        StatusCode::OK,
        document_page(&state, &v, &who, "").render(),
    ))
}

/// `POST /record/add/document` (multipart): reads at most [`MAX_DOCUMENT`] bytes of the
/// file, so a huge upload costs the server nothing beyond that.
pub(crate) async fn document_add(
    AxumState(state): AxumState<State>,
    v: Visitor,
    mut multipart: axum::extract::Multipart,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let (mut csrf, mut title, mut bytes, mut too_big) =
        (String::new(), String::new(), Vec::new(), false);
    // Past the limit the rest is read and dropped (up to DRAIN), so the browser gets the
    // error page rather than a connection reset mid-upload; beyond that the connection ends.
    const DRAIN: usize = 4 * MAX_DOCUMENT;
    let mut seen = 0usize;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            while let Ok(Some(chunk)) = field.chunk().await {
                seen += chunk.len();
                if seen > DRAIN {
                    return Err(error_page(&v, StatusCode::PAYLOAD_TOO_LARGE));
                }
                if too_big || bytes.len() + chunk.len() > MAX_DOCUMENT {
                    too_big = true;
                    bytes.clear();
                    continue;
                }
                bytes.extend_from_slice(&chunk);
            }
        } else {
            let text = field.text().await.unwrap_or_default();
            match name.as_str() {
                "csrf" => csrf = text,
                "title" => title = text.chars().take(1000).collect(),
                _ => {}
            }
        }
    }
    if !super::csrf_ok(&state, v.session_key.as_deref(), Some(&csrf)) {
        return Err(error_page(&v, StatusCode::FORBIDDEN));
    }
    let l = v.lang;
    let outcome = if too_big {
        Ok(Err(vec![EntryProblem::FileTooBig]))
    } else {
        let t = title.clone();
        call(&state, &v, move |app| {
            app.add_document(&ctx, &t, &bytes, hale_fhir::date::now_millis())
        })
        .await
    }?;
    match outcome {
        Ok(saved) => Ok(see_other(&format!(
            "/record/entry/DocumentReference/{}?added=1",
            saved.id
        ))),
        Err(problems) => {
            let mut page = document_page(&state, &v, &who, &title);
            for problem in problems {
                let (field, id) = match problem {
                    EntryProblem::Missing(_) => ("title", "error-missing-title"),
                    EntryProblem::TooLong(_) => ("title", "error-too-long"),
                    EntryProblem::NoFile | EntryProblem::NotAChoice(_) => ("file", "error-no-file"),
                    EntryProblem::FileTooBig => ("file", "error-file-too-big"),
                    EntryProblem::FileType => ("file", "error-file-type"),
                };
                page.error(field, l.t(id));
            }
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// `GET /record/entry/DocumentReference/{id}/file`: the file, as a download and never
/// shown inline: its type is what its content is (PDF, PNG, JPEG), and a sandbox policy
/// keeps anything inside it from running as this site.
pub(crate) async fn document_file(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(id): Path<String>,
) -> Page {
    let (_, ctx) = person(&state, &v).await?;
    let app = state.app.clone();
    let found = tokio::task::spawn_blocking(move || app.document_file(&ctx, &id))
        .await
        .map_err(|_| error_page(&v, StatusCode::INTERNAL_SERVER_ERROR))?;
    match found {
        Ok((content_type, extension, bytes)) => Ok((
            [
                (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"document.{extension}\""),
                ),
                (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
                (
                    axum::http::HeaderName::from_static("content-security-policy"),
                    "sandbox; default-src 'none'".to_owned(),
                ),
            ],
            bytes,
        )
            .into_response()),
        Err(_) => Err(error_page(&v, StatusCode::NOT_FOUND)),
    }
}

/// `GET /record/entry/Observation/{id}/edit`: the person's own reading, in its form.
pub(crate) async fn edit_reading_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(id): Path<String>,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let i = id.clone();
    let found = call(&state, &v, move |app| {
        match app.reading_for_change(&ctx, &i) {
            Err(AppError::NotFound { .. } | AppError::Gone { .. }) => Ok(None),
            other => other,
        }
    })
    .await?;
    let Some((kind, reading)) = found else {
        return Err(error_page(&v, StatusCode::NOT_FOUND));
    };
    let mut page = reading_page(&state, &v, &who, kind, None);
    let l = v.lang;
    page.chrome.title = l.t1(
        "change-reading-title",
        "kind",
        l.t(&format!("kind-{}", kind.slug())).to_lowercase(),
    );
    page.action = format!("/record/entry/Observation/{id}/edit");
    for (field, value) in page.fields.iter_mut().zip(&reading.values) {
        field.value = value.clone();
    }
    if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(reading.at.div_euclid(1000)) {
        page.date = (
            t.day().to_string(),
            u8::from(t.month()).to_string(),
            t.year().to_string(),
        );
    }
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /record/entry/Observation/{id}/edit`: a new version of the reading (history kept).
pub(crate) async fn edit_reading(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let data = super::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    let (i, lookup) = (id.clone(), ctx.clone());
    let found = call(&state, &v, move |app| {
        match app.reading_for_change(&lookup, &i) {
            Err(AppError::NotFound { .. } | AppError::Gone { .. }) => Ok(None),
            other => other,
        }
    })
    .await?;
    let Some((kind, _)) = found else {
        return Err(error_page(&v, StatusCode::NOT_FOUND));
    };
    let values: Vec<String> = kind
        .parts()
        .iter()
        .map(|p| data.get(p.name).to_owned())
        .collect();
    let at = taken_at(data.get("day"), data.get("month"), data.get("year")).unwrap_or(-1);
    let i = id.clone();
    let outcome = call(&state, &v, move |app| {
        let typed: Vec<&str> = values.iter().map(String::as_str).collect();
        app.change_reading(&ctx, &i, kind, &typed, at)
    })
    .await?;
    match outcome {
        Ok(saved) => Ok(see_other(&format!(
            "/record/entry/Observation/{}?changed=1",
            saved.id
        ))),
        Err(problems) => {
            let mut page = reading_page(&state, &v, &who, kind, Some(&data));
            page.action = format!("/record/entry/Observation/{id}/edit");
            reading_errors(v.lang, kind, &mut page, problems);
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// Puts a reading's problems on its form: by each field, and in the summary.
fn reading_errors(
    l: Lang,
    kind: MeasurementKind,
    page: &mut AddReadingPage,
    problems: Vec<ReadingProblem>,
) {
    for problem in problems {
        let (field, message) = match problem {
            ReadingProblem::NotANumber(f) => (f, l.t("error-not-a-number")),
            ReadingProblem::OutOfRange(f) => {
                let part = kind.parts().iter().find(|p| p.name == f);
                let (min, max) = part.map_or((0.0, 0.0), |p| (p.min, p.max));
                (
                    f,
                    l.ta(
                        "error-out-of-range",
                        &[("min", min.to_string()), ("max", max.to_string())],
                    ),
                )
            }
            ReadingProblem::SystolicNotAboveDiastolic => ("systolic", l.t("error-systolic-low")),
            ReadingProblem::BadDate => ("day", l.t("error-bad-date")),
        };
        if field == "day" {
            page.date_error = Some(message.clone());
        } else if let Some(f) = page.fields.iter_mut().find(|x| x.id == field) {
            f.error = Some(message.clone());
        }
        page.errors.push(FormError {
            field: field.to_owned(),
            message,
        });
    }
    page.chrome.has_errors = true;
}
