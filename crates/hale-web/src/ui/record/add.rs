//! Adding to the record: a measurement (and changing one), a symptom, a mood diary entry, a
//! medicine, an allergy, what matters, a contact, a document (and its download).
// Handlers return early with the page to show (a redirect, an error page) as `Err`.
#![allow(clippy::result_large_err)]

use super::*;

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
        csrf: crate::ui::session_csrf(state, v),
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
    let data = crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
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

fn reading_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    kind: MeasurementKind,
    data: Option<&FormData>,
) -> AddReadingPage {
    let l = v.lang;
    let name = l.t(&format!("kind-{}", kind.slug()));
    let today = hale_fhir::uk_time::today();
    let keep = |field: &str, default: String| data.map_or(default, |d| d.get(field).to_owned());
    AddReadingPage {
        chrome: signed_in_chrome(
            state,
            v,
            who,
            l.t1("add-reading-title", "kind", name.to_lowercase()),
        ),
        csrf: crate::ui::session_csrf(state, v),
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
/// that day (UK time). `None` if it is not a real date.
fn taken_at(day: &str, month: &str, year: &str) -> Option<i64> {
    let (d, m, y) = (
        day.trim().parse::<u8>().ok()?,
        month.trim().parse::<u8>().ok()?,
        year.trim().parse::<i32>().ok()?,
    );
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()?;
    if date == hale_fhir::uk_time::today() {
        return Some(hale_fhir::date::now_millis());
    }
    // Clocks change at night, so midday is always twelve hours after the day begins.
    Some(hale_fhir::uk_time::start_of(date)? + 12 * 3_600_000)
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
    let data = crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
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

/// What `/record/add` offers: a measurement, or one of the journal kinds.
fn add_choices(l: Lang, professional: bool) -> Vec<(String, String)> {
    let mut choices = vec![("measurement".to_owned(), l.t("add-kind-measurement"))];
    if professional {
        choices.insert(
            0,
            ("clinical-note".to_owned(), l.t("add-kind-clinical-note")),
        );
    }
    for kind in JournalKind::ALL {
        choices.push((
            kind.slug().to_owned(),
            l.t(&format!("add-kind-{}", kind.slug())),
        ));
    }
    choices.push(("import".to_owned(), l.t("add-kind-import")));
    choices
}

fn add_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    professional: bool,
) -> crate::ui::pages::FormPage {
    let l = v.lang;
    let mut page =
        crate::ui::account::signed_in_form(state, v, who, l.t("add-title"), "/record/add");
    page.back = Some(("/record".into(), l.t("record-back")));
    let mut f = Field::new("kind", "radios", l.t("add-title"));
    f.choices = add_choices(l, professional);
    page.fields = vec![f];
    page.submit = l.t("add-kind-submit");
    page
}

/// `GET /record/add`: what do you want to add?
pub(crate) async fn add_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let professional = acting_as_professional(&state, &v, ctx).await?;
    Ok(html(
        StatusCode::OK,
        add_page(&state, &v, &who, professional).render(),
    ))
}

/// Whether the record is being looked at by a professional the person shared it with.
async fn acting_as_professional(
    state: &State,
    v: &Visitor,
    ctx: RequestContext,
) -> Result<bool, Response> {
    if ctx.actor.grant().is_none() {
        return Ok(false);
    }
    call(state, v, move |app| {
        Ok(app
            .acting_grant(&ctx)?
            .is_some_and(|g| g.role.is_professional()))
    })
    .await
}

fn clinical_note_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
) -> crate::ui::pages::FormPage {
    let l = v.lang;
    let mut page = crate::ui::account::signed_in_form(
        state,
        v,
        who,
        l.t("clinical-note-title"),
        "/record/add/clinical-note",
    );
    page.back = Some(("/record/add".into(), l.t("add-title")));
    page.paragraphs = vec![l.t("clinical-note-body")];
    page.fields = vec![
        Field::new("title", "text", l.t("clinical-note-heading"))
            .hint(l.t("clinical-note-heading-hint")),
        Field::new("note", "textarea", l.t("clinical-note-text")),
    ];
    page.submit = l.t("clinical-note-submit");
    page
}

/// `GET /record/add/clinical-note`: for a professional looking at a record shared with them.
pub(crate) async fn clinical_note_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    if !acting_as_professional(&state, &v, ctx).await? {
        return Err(error_page(&v, StatusCode::NOT_FOUND));
    }
    Ok(html(
        StatusCode::OK,
        clinical_note_page(&state, &v, &who).render(),
    ))
}

/// `POST /record/add/clinical-note`.
pub(crate) async fn clinical_note_add(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let data = crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    let (title, note) = (data.get("title").to_owned(), data.get("note").to_owned());
    let outcome = call(&state, &v, move |app| {
        app.add_clinical_note(&ctx, &title, &note, hale_fhir::date::now_millis())
    })
    .await?;
    match outcome {
        // To the list it joined: the note is the professional's, and below P9 they, like
        // anyone, see only what the person entered.
        Ok(_) => Ok(see_other("/record/documents")),
        Err(problems) => {
            let l = v.lang;
            let mut page = clinical_note_page(&state, &v, &who);
            for f in page.fields.iter_mut() {
                f.value = data.get(f.id).to_owned();
            }
            for problem in problems {
                let (field, message) = match problem {
                    EntryProblem::TooLong(f) => (f, l.t("error-too-long")),
                    EntryProblem::Missing(f) | EntryProblem::NotAChoice(f) => {
                        (f, l.t(&format!("clinical-note-missing-{f}")))
                    }
                    _ => ("note", l.t("clinical-note-missing-note")),
                };
                page.error(field, message);
            }
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// `POST /record/add`.
pub(crate) async fn add_choice(
    AxumState(state): AxumState<State>,
    v: Visitor,
    body: Bytes,
) -> Page {
    let who = two_factor(&state, &v).await?;
    let data = crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    match data.get("kind") {
        "measurement" => return Ok(see_other("/record/measurements/add")),
        "clinical-note" => return Ok(see_other("/record/add/clinical-note")),
        "document" => return Ok(see_other("/record/add/document")),
        "import" => return Ok(see_other("/record/import")),
        other => {
            if let Some(kind) = JournalKind::from_slug(other) {
                return Ok(see_other(&format!("/record/add/{}", kind.slug())));
            }
        }
    }
    let mut page = add_page(&state, &v, &who, false);
    page.error("kind", v.lang.t("add-kind-missing"));
    Ok(html(StatusCode::OK, page.render()))
}

fn journal_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    kind: JournalKind,
    data: Option<&FormData>,
) -> crate::ui::pages::FormPage {
    let l = v.lang;
    let slug = kind.slug();
    let title = l.t(&format!("journal-title-{slug}"));
    let mut page =
        crate::ui::account::signed_in_form(state, v, who, title, format!("/record/add/{slug}"));
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
    let data = crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
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
            let mut page = journal_page(&state, &v, &who, kind, Some(&data));
            journal_errors(v.lang, kind, &mut page, problems);
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// Puts an entry's problems on its form: by each field, and in the summary.
fn journal_errors(
    l: Lang,
    kind: JournalKind,
    page: &mut crate::ui::pages::FormPage,
    problems: Vec<EntryProblem>,
) {
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
}

/// The form of an entry being changed: as for adding, with its own title and address.
fn change_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    kind: JournalKind,
    (rtype, id): (&str, &str),
    data: Option<&FormData>,
) -> crate::ui::pages::FormPage {
    let l = v.lang;
    let mut page = journal_page(state, v, who, kind, data);
    let title = l.t(&format!("change-title-{}", kind.slug()));
    page.chrome.title = title.clone();
    page.heading = title;
    page.action = format!("/record/entry/{rtype}/{id}/change");
    page.back = Some((format!("/record/entry/{rtype}/{id}"), l.t("change-back")));
    page.submit = l.t("change-submit");
    page
}

/// The kind and values of the person's own entry, or the not-found page.
async fn own_entry(
    state: &State,
    v: &Visitor,
    ctx: RequestContext,
    rtype: &str,
    id: &str,
) -> Result<(JournalKind, hale_app::journal::EntryForm), Response> {
    let (r, i) = (rtype.to_owned(), id.to_owned());
    let found = call(state, v, move |app| {
        match app.journal_entry_for_change(&ctx, &r, &i) {
            Err(AppError::NotFound { .. } | AppError::Gone { .. }) => Ok(None),
            other => other,
        }
    })
    .await?;
    found.ok_or_else(|| error_page(v, StatusCode::NOT_FOUND))
}

/// `GET /record/entry/{rtype}/{id}/change`: the person's own entry (not a reading) in its
/// form.
pub(crate) async fn change_entry_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path((rtype, id)): Path<(String, String)>,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let (kind, values) = own_entry(&state, &v, ctx, &rtype, &id).await?;
    let mut page = change_page(&state, &v, &who, kind, (&rtype, &id), None);
    for f in page.fields.iter_mut() {
        if let Some((_, value)) = values.iter().find(|(name, _)| *name == f.id) {
            f.value = value.clone();
        }
    }
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /record/entry/{rtype}/{id}/change`: a new version of the entry (history kept).
pub(crate) async fn change_entry(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path((rtype, id)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let data = crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
    let (kind, _) = own_entry(&state, &v, ctx.clone(), &rtype, &id).await?;
    let values: Vec<(String, String)> = kind
        .fields()
        .iter()
        .map(|(name, _)| ((*name).to_owned(), data.get(name).to_owned()))
        .collect();
    let (r, i) = (rtype.clone(), id.clone());
    let outcome = call(&state, &v, move |app| {
        let get = |name: &str| {
            values
                .iter()
                .find(|(n, _)| n == name)
                .map_or_else(String::new, |(_, v)| v.clone())
        };
        app.change_journal_entry(&ctx, &r, &i, &get)
    })
    .await?;
    match outcome {
        Ok(saved) => Ok(see_other(&format!(
            "/record/entry/{}/{}?changed=1",
            saved.resource_type, saved.id
        ))),
        Err(problems) => {
            let mut page = change_page(&state, &v, &who, kind, (&rtype, &id), Some(&data));
            journal_errors(v.lang, kind, &mut page, problems);
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

fn document_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
    title: &str,
) -> crate::ui::pages::FormPage {
    let l = v.lang;
    let mut page = crate::ui::account::signed_in_form(
        state,
        v,
        who,
        l.t("document-title"),
        "/record/add/document",
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
    if !crate::ui::csrf_ok(&state, v.session_key.as_deref(), Some(&csrf)) {
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
    if let Some(t) = hale_fhir::uk_time::at(reading.at) {
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
    let data = crate::ui::account::form(&state, &v, v.session_key.as_deref(), &body)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_dated_today_now_or_midday_otherwise_and_nonsense_is_refused() {
        let now = hale_fhir::uk_time::today();
        let today = taken_at(
            &now.day().to_string(),
            &u8::from(now.month()).to_string(),
            &now.year().to_string(),
        )
        .unwrap();
        assert!((today - hale_fhir::date::now_millis()).abs() < 5_000);
        // Midday on a UK clock: 12:00 UTC in winter, 11:00 UTC in summer.
        let past = taken_at("27", "11", "2025").unwrap();
        assert_eq!(
            hale_fhir::date::format_instant(past),
            "2025-11-27T12:00:00.000Z"
        );
        let summer = taken_at("27", "6", "2025").unwrap();
        assert_eq!(
            hale_fhir::date::format_instant(summer),
            "2025-06-27T11:00:00.000Z"
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
