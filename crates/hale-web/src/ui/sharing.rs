//! Sharing (issue 4 §2–3): the person gives someone access to parts of their record, sees
//! who has it and takes it back; the people given access accept the emailed invitation, see
//! the records shared with them, and look at one (a cookie names the grant chosen; the grant
//! itself is checked on every request).
// Handlers return early with the page to show (a redirect, an error page) as `Err`.
#![allow(clippy::result_large_err)]

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hale_app::AppError;
use hale_app::accounts::SignedIn;
use hale_app::grants::{Grant, GrantProblem, NewGrant, Role, Status};
use hale_app::labels::PrivacyLabel;
use hale_core::RequestContext;

use super::account::{call, form, recent, signed_in_chrome, signed_in_form, two_factor};
use super::pages::{Chrome, Field, FormPage, MessagePage};
use super::{Lang, Visitor, html, see_other};
use crate::State;

type Page = Result<Response, Response>;

/// The kinds of entry a grant can be narrowed to, as the person sees them, and the FHIR
/// types each stands for.
pub(crate) const KINDS: &[(&str, &[&str])] = &[
    ("conditions", &["Condition"]),
    ("medicines", &["MedicationStatement", "MedicationRequest"]),
    ("allergies", &["AllergyIntolerance"]),
    ("observations", &["Observation", "DiagnosticReport"]),
    ("immunisations", &["Immunization"]),
    ("documents", &["DocumentReference"]),
    ("care-plans", &["CarePlan", "Goal", "RelatedPerson"]),
];

/// The kinds chosen on a form, as the FHIR types they stand for.
pub(crate) fn types_of_kinds(chosen: &[&str]) -> Vec<String> {
    KINDS
        .iter()
        .filter(|(slug, _)| chosen.contains(slug))
        .flat_map(|(_, types)| types.iter().map(|t| (*t).to_owned()))
        .collect()
}

/// The labels ticked on a form.
pub(crate) fn labels_chosen(data: &super::FormData) -> Vec<PrivacyLabel> {
    data.all("labels")
        .into_iter()
        .filter_map(PrivacyLabel::from_code)
        .collect()
}

/// "Which labels?" checkboxes (general ticked), with the form's own question and hint.
pub(crate) fn labels_field(l: Lang, question: &str, hint: &str) -> Field {
    let mut labels = Field::new("labels", "checkboxes", l.t(question))
        .hint(l.t(hint))
        .value(PrivacyLabel::General.code());
    labels.choices = PrivacyLabel::ALL
        .iter()
        .map(|x| {
            (
                x.code().to_owned(),
                l.t(&format!("label-name-{}", x.code())),
            )
        })
        .collect();
    labels
}

/// "Which kinds of entry?" checkboxes.
pub(crate) fn kinds_field(l: Lang) -> Field {
    let mut kinds =
        Field::new("kinds", "checkboxes", l.t("give-kinds")).hint(l.t("give-kinds-hint"));
    kinds.choices = KINDS
        .iter()
        .map(|(slug, _)| ((*slug).to_owned(), l.t(&format!("sharing-kind-{slug}"))))
        .collect();
    kinds
}

/// How long access lasts, as offered.
const DURATIONS: &[(&str, Option<i64>)] = &[
    ("until-revoked", None),
    ("week", Some(7)),
    ("month", Some(31)),
    ("year", Some(366)),
];

/// The person's own context (never someone else's record, whatever the browser chose).
pub(crate) async fn owner(
    state: &State,
    v: &Visitor,
) -> Result<(SignedIn, RequestContext), Response> {
    let who = two_factor(state, v).await?;
    let (checked, request_id) = (who.clone(), v.request_id.clone());
    let ctx = call(state, v, move |app| {
        app.person_context(&checked, &request_id)
    })
    .await?;
    Ok((who, ctx))
}

/// The page shown when access to someone's record has ended; it forgets the choice.
pub(crate) fn access_ended(state: &State, v: &Visitor, who: &SignedIn) -> Response {
    let l = v.lang;
    let mut chrome = signed_in_chrome(state, v, who, l.t("access-ended-title"));
    chrome.acting = false;
    let page = MessagePage {
        chrome,
        heading: l.t("access-ended-title"),
        paragraphs: vec![l.t("access-ended-body")],
        reference: None,
        links: vec![
            ("/record", l.t("access-ended-own")),
            ("/shared-with-me", l.t("shared-title")),
        ],
    };
    let mut r = html(StatusCode::FORBIDDEN, page.render());
    r.headers_mut()
        .append(header::SET_COOKIE, super::acting_cookie(state, None));
    r
}

fn labels_words(l: Lang, g: &Grant) -> String {
    g.labels
        .iter()
        .map(|x| l.t(&format!("label-name-{}", x.code())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn kinds_words(l: Lang, g: &Grant) -> String {
    if g.types.is_empty() {
        return l.t("sharing-kinds-all");
    }
    KINDS
        .iter()
        .filter(|(_, types)| types.iter().any(|t| g.types.iter().any(|x| x == t)))
        .map(|(slug, _)| l.t(&format!("sharing-kind-{slug}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One grant in words.
struct GrantRow {
    id: String,
    name: String,
    role: String,
    labels: String,
    kinds: String,
    access: String,
    dates: String,
    status: String,
    revocable: bool,
    /// The words of its take-back button.
    revoke: String,
}

impl GrantRow {
    /// Its details as summary-list rows.
    fn rows(&self, l: &Lang) -> Vec<(String, String)> {
        vec![
            (l.t("sharing-who"), self.role.clone()),
            (l.t("sharing-status"), self.status.clone()),
            (l.t("sharing-labels"), self.labels.clone()),
            (l.t("sharing-kinds"), self.kinds.clone()),
            (l.t("sharing-access"), self.access.clone()),
            (l.t("sharing-dates"), self.dates.clone()),
        ]
    }
}

fn grant_row(l: Lang, g: &Grant, now: i64) -> GrantRow {
    let status = match g.status {
        Status::Invited => l.t("sharing-status-invited"),
        Status::Revoked => l.t("sharing-status-revoked"),
        Status::Active if g.in_force(now) => l.t("sharing-status-active"),
        Status::Active if g.start > now => l.t("sharing-status-not-yet"),
        Status::Active => l.t("sharing-status-ended"),
    };
    let from = super::record::day(l, g.start);
    let dates = match g.end {
        Some(end) => l.ta(
            "sharing-dates-until",
            &[("from", from), ("until", super::record::day(l, end))],
        ),
        None => l.t1("sharing-dates-open", "from", from),
    };
    GrantRow {
        id: g.id.clone(),
        name: g.name.clone(),
        role: l.t(&format!("role-{}", g.role.code())),
        labels: labels_words(l, g),
        kinds: kinds_words(l, g),
        access: l.t(if g.write {
            "sharing-access-write"
        } else {
            "sharing-access-read"
        }),
        dates,
        status,
        revocable: g.status != Status::Revoked && g.end.is_none_or(|e| e > now),
        revoke: if g.role == Role::App {
            l.t1("sharing-disconnect", "name", &g.name)
        } else {
            l.t1("sharing-revoke", "name", &g.name)
        },
    }
}

#[derive(Template)]
#[template(path = "sharing.html")]
struct SharingPage {
    chrome: Chrome,
    csrf: String,
    banner: Option<String>,
    grants: Vec<GrantRow>,
    links: Vec<GrantRow>,
    apps: Vec<GrantRow>,
    organisations: Vec<GrantRow>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// `GET /record/sharing`: who has access, and the way to give or take it back.
pub(crate) async fn sharing(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<DoneQuery>,
) -> Page {
    let (who, ctx) = owner(&state, &v).await?;
    let grants = call(&state, &v, move |app| app.grants_of_record(&ctx)).await?;
    let l = v.lang;
    let now = hale_fhir::date::now_millis();
    let banner = match q.done.as_str() {
        "given" => Some(l.t("sharing-given")),
        "given-org" => Some(l.t("sharing-given-org")),
        "revoked" => Some(l.t("sharing-revoked")),
        _ => None,
    };
    let page = SharingPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("sharing-title")),
        csrf: super::session_csrf(&state, &v),
        banner,
        grants: grants
            .iter()
            .filter(|g| Role::ALL.contains(&g.role))
            .map(|g| grant_row(l, g, now))
            .collect(),
        organisations: grants
            .iter()
            .filter(|g| g.role == Role::Organisation && g.status != Status::Revoked)
            .map(|g| grant_row(l, g, now))
            .collect(),
        apps: grants
            .iter()
            .filter(|g| g.role == Role::App && g.status != Status::Revoked)
            .map(|g| grant_row(l, g, now))
            .collect(),
        links: grants
            .iter()
            .filter(|g| g.role.is_link())
            .map(|g| grant_row(l, g, now))
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

fn give_page(state: &State, v: &Visitor, who: &SignedIn) -> FormPage {
    let l = v.lang;
    let mut page = signed_in_form(state, v, who, l.t("give-title"), "/record/sharing/new");
    page.back = Some(("/record/sharing".into(), l.t("sharing-title")));
    page.paragraphs = vec![l.t("give-body")];
    let mut role = Field::new("role", "radios", l.t("give-role"));
    role.choices = Role::ALL
        .iter()
        .map(|r| (r.code().to_owned(), l.t(&format!("role-{}", r.code()))))
        .collect();
    let labels = labels_field(l, "give-labels", "give-labels-hint");
    let kinds = kinds_field(l);
    let mut access = Field::new("access", "radios", l.t("give-access")).value("read");
    access.choices = vec![
        ("read".into(), l.t("sharing-access-read")),
        ("write".into(), l.t("sharing-access-write")),
    ];
    let mut duration = Field::new("duration", "radios", l.t("give-duration")).value("month");
    duration.choices = DURATIONS
        .iter()
        .map(|(d, _)| ((*d).to_owned(), l.t(&format!("give-duration-{d}"))))
        .collect();
    let start = Field::new("start", "date", l.t("give-start")).hint(l.t("give-start-hint"));
    page.fields = vec![
        Field::new("name", "text", l.t("give-name")).autocomplete("off"),
        Field::new("email", "email", l.t("give-email"))
            .hint(l.t("give-email-hint"))
            .autocomplete("off")
            .code(false, ""),
        role,
        labels,
        kinds,
        access,
        start,
        duration,
    ];
    page.submit = l.t("give-submit");
    page
}

/// `GET /record/sharing/new`: giving access is sensitive, so both factors again first.
pub(crate) async fn give_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, _) = owner(&state, &v).await?;
    recent(&state, &who, "sharing")?;
    Ok(html(StatusCode::OK, give_page(&state, &v, &who).render()))
}

fn problem_words(l: Lang, p: GrantProblem) -> (&'static str, String) {
    match p {
        GrantProblem::NameMissing => ("name", l.t("give-error-name")),
        GrantProblem::EmailInvalid => ("email", l.t("error-email-invalid")),
        GrantProblem::NothingChosen => ("labels", l.t("give-error-labels")),
        GrantProblem::UnknownType => ("kinds", l.t("give-error-kinds")),
        GrantProblem::DatesWrong => ("duration", l.t("give-error-duration")),
        GrantProblem::OrganisationUnknown => ("org", l.t("give-org-error")),
    }
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// When access starts, from the optional date boxes: now when they are empty, else the
/// start of that day (UK time), which must be today or later. `Err` names the problem.
fn start_chosen(data: &super::FormData, now: i64) -> Result<i64, &'static str> {
    let (d, m, y) = (
        data.get("start-day").trim(),
        data.get("start-month").trim(),
        data.get("start-year").trim(),
    );
    if d.is_empty() && m.is_empty() && y.is_empty() {
        return Ok(now);
    }
    let real = "give-start-error-real";
    if y.len() != 4 {
        return Err(real);
    }
    let date = time::Date::from_calendar_date(
        y.parse().map_err(|_| real)?,
        time::Month::try_from(m.parse::<u8>().map_err(|_| real)?).map_err(|_| real)?,
        d.parse().map_err(|_| real)?,
    )
    .map_err(|_| real)?;
    let start = hale_fhir::uk_time::start_of(date).ok_or(real)?;
    let next = date
        .next_day()
        .and_then(hale_fhir::uk_time::start_of)
        .ok_or(real)?;
    if next <= now {
        return Err("give-start-error-past");
    }
    Ok(start.max(now))
}

/// What the person chose to share and for how long, from a give form, with the words of
/// any problem with the dates (keyed by field).
fn chosen(data: &super::FormData, role: Role, l: Lang) -> (NewGrant, Vec<(&'static str, String)>) {
    let now = hale_fhir::date::now_millis();
    let mut problems = Vec::new();
    let start = start_chosen(data, now).unwrap_or_else(|key| {
        problems.push(("start", l.t(key)));
        now
    });
    let duration = DURATIONS.iter().find(|(d, _)| *d == data.get("duration"));
    if duration.is_none() {
        problems.push(("duration", l.t("give-error-duration")));
    }
    let new = NewGrant {
        name: data.get("name").to_owned(),
        email: data.get("email").to_owned(),
        role,
        labels: labels_chosen(data),
        types: types_of_kinds(&data.all("kinds")),
        write: data.get("access") == "write",
        start,
        end: duration.and_then(|(_, days)| days.map(|d| start + d * DAY_MS)),
    };
    (new, problems)
}

/// The start date as typed, to show again.
fn start_typed(data: &super::FormData) -> String {
    format!(
        "{}/{}/{}",
        data.get("start-day"),
        data.get("start-month"),
        data.get("start-year")
    )
}

fn give_org_page(
    state: &State,
    v: &Visitor,
    who: &SignedIn,
    orgs: &[hale_app::backend::Organisation],
) -> FormPage {
    let l = v.lang;
    let mut page = give_page(state, v, who);
    page.chrome.title = l.t("give-org-title");
    page.heading = l.t("give-org-title");
    page.action = "/record/sharing/organisation".into();
    page.paragraphs = vec![l.t("give-org-body")];
    if orgs.is_empty() {
        page.paragraphs.push(l.t("give-org-none"));
    }
    let mut org = Field::new("org", "radios", l.t("give-org-which"));
    org.choices = orgs
        .iter()
        .map(|o| (o.org_id.clone(), o.name.clone()))
        .collect();
    page.fields
        .retain(|f| !matches!(f.id, "name" | "email" | "role"));
    page.fields.insert(0, org);
    page.submit = l.t("give-org-submit");
    page
}

/// `GET /record/sharing/organisation`: give a registered health or care organisation's
/// systems access (both factors again first, as for people).
pub(crate) async fn give_org_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let (who, _) = owner(&state, &v).await?;
    recent(&state, &who, "sharing-organisation")?;
    let orgs = call(&state, &v, |app| app.organisations()).await?;
    Ok(html(
        StatusCode::OK,
        give_org_page(&state, &v, &who, &orgs).render(),
    ))
}

/// `POST /record/sharing/organisation`.
pub(crate) async fn give_org(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let (who, ctx) = owner(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    recent(&state, &who, "sharing-organisation")?;
    let l = v.lang;
    let (new, mut problems) = chosen(&data, Role::Organisation, l);
    if problems.is_empty() {
        let (org, checked) = (data.get("org").to_owned(), new.clone());
        let given = call(&state, &v, move |app| {
            app.give_access_to_organisation(&ctx, &org, &checked)
        })
        .await?;
        match given {
            Ok(_) => return Ok(see_other("/record/sharing?done=given-org")),
            Err(found) => problems.extend(found.into_iter().map(|p| problem_words(l, p))),
        }
    } else if data.get("org").is_empty() {
        problems.push(problem_words(l, GrantProblem::OrganisationUnknown));
    }
    let orgs = call(&state, &v, |app| app.organisations()).await?;
    let mut page = give_org_page(&state, &v, &who, &orgs);
    for f in page.fields.iter_mut() {
        f.value = match f.id {
            "org" => data.get("org").to_owned(),
            "start" => start_typed(&data),
            "labels" => data.all("labels").join(","),
            "kinds" => data.all("kinds").join(","),
            "access" => data.get("access").to_owned(),
            "duration" => data.get("duration").to_owned(),
            _ => continue,
        };
    }
    for (field, message) in problems {
        page.error(field, message);
    }
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /record/sharing/new`.
pub(crate) async fn give(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let (who, ctx) = owner(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    recent(&state, &who, "sharing")?;
    let l = v.lang;
    let mut problems = Vec::new();
    // Only the roles of people: organisations have their own form.
    let role = Role::from_code(data.get("role")).filter(|r| Role::ALL.contains(r));
    if role.is_none() {
        problems.push(("role", l.t("give-error-role")));
    }
    let (new, date_problems) = chosen(&data, role.unwrap_or(Role::Family), l);
    problems.extend(date_problems);
    let chosen_kinds = data.all("kinds");
    if problems.is_empty() {
        let (link_base, checked) = (state.link_base(), new.clone());
        let given = call(&state, &v, move |app| {
            app.give_access(&ctx, &checked, &link_base)
        })
        .await?;
        match given {
            Ok(_) => return Ok(see_other("/record/sharing?done=given")),
            Err(found) => problems.extend(found.into_iter().map(|p| problem_words(l, p))),
        }
    } else {
        // Every problem at once: the ones the application finds too.
        problems.extend(
            state
                .app
                .grant_problems(&new)
                .into_iter()
                .map(|p| problem_words(l, p)),
        );
    }
    let mut page = give_page(&state, &v, &who);
    for f in page.fields.iter_mut() {
        f.value = match f.id {
            "name" => new.name.clone(),
            "email" => new.email.clone(),
            "role" => data.get("role").to_owned(),
            "start" => start_typed(&data),
            "labels" => data.all("labels").join(","),
            "kinds" => chosen_kinds.join(","),
            "access" => data.get("access").to_owned(),
            "duration" => data.get("duration").to_owned(),
            _ => continue,
        };
    }
    for (field, message) in problems {
        page.error(field, message);
    }
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /record/sharing/{id}/revoke`: takes access back at once.
pub(crate) async fn revoke(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let (_, ctx) = owner(&state, &v).await?;
    form(&state, &v, v.session_key.as_deref(), &body)?;
    let found = call(&state, &v, move |app| match app.revoke_access(&ctx, &id) {
        Ok(()) => Ok(true),
        Err(AppError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    })
    .await?;
    if !found {
        return Err(super::error_page(&v, StatusCode::NOT_FOUND));
    }
    Ok(see_other("/record/sharing?done=revoked"))
}

/// One record shared with the signed-in person.
struct HeldRow {
    id: String,
    name: String,
    /// When access starts, if later: it cannot be opened until then.
    starts: Option<String>,
    rows: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "shared_with_me.html")]
struct SharedPage {
    chrome: Chrome,
    csrf: String,
    banner: Option<String>,
    grants: Vec<HeldRow>,
}

/// `GET /shared-with-me`: the records others have shared with this account.
pub(crate) async fn shared_with_me(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<DoneQuery>,
) -> Page {
    let who = two_factor(&state, &v).await?;
    let checked = who.clone();
    let held = call(&state, &v, move |app| app.grants_held_or_coming(&checked)).await?;
    let l = v.lang;
    let now = hale_fhir::date::now_millis();
    let page = SharedPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("shared-title")),
        csrf: super::session_csrf(&state, &v),
        banner: (q.done == "accepted").then(|| l.t("shared-accepted")),
        grants: held
            .iter()
            .map(|g| HeldRow {
                id: g.id.clone(),
                name: g.person.clone(),
                starts: (g.start > now)
                    .then(|| l.t1("shared-starts", "date", super::record::day(l, g.start))),
                rows: vec![
                    (
                        l.t("shared-you-are"),
                        if g.role == Role::Organisation {
                            l.t1("shared-you-are-org", "org", &g.name)
                        } else {
                            l.t(&format!("role-{}", g.role.code()))
                        },
                    ),
                    (l.t("sharing-labels"), labels_words(l, g)),
                    (l.t("sharing-kinds"), kinds_words(l, g)),
                    (
                        l.t("sharing-access"),
                        l.t(if g.write {
                            "sharing-access-write"
                        } else {
                            "sharing-access-read"
                        }),
                    ),
                ],
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// `POST /shared-with-me/open`: look at one of them.
pub(crate) async fn open(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = two_factor(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (grant, request_id) = (data.get("grant").to_owned(), v.request_id.clone());
    let chosen = grant.clone();
    let checked = who.clone();
    let ok = call(&state, &v, move |app| {
        match app.grantee_context(&checked, &chosen, &request_id) {
            Ok(_) => Ok(true),
            Err(AppError::Unauthenticated(_)) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await?;
    if !ok {
        return Err(access_ended(&state, &v, &who));
    }
    let mut r = see_other("/record");
    r.headers_mut().append(
        header::SET_COOKIE,
        super::acting_cookie(&state, Some(&grant)),
    );
    Ok(r)
}

/// `POST /shared-with-me/leave`: back to one's own record.
pub(crate) async fn leave(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    two_factor(&state, &v).await?;
    form(&state, &v, v.session_key.as_deref(), &body)?;
    let mut r = see_other("/record");
    r.headers_mut()
        .append(header::SET_COOKIE, super::acting_cookie(&state, None));
    Ok(r)
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn accept_page(state: &State, v: &Visitor, who: &SignedIn, token: &str) -> FormPage {
    let l = v.lang;
    let mut page = signed_in_form(state, v, who, l.t("accept-title"), "/shared-with-me/accept");
    page.paragraphs = vec![l.t("accept-body"), l.t("accept-body-2")];
    page.hidden = vec![("token", token.to_owned())];
    page.submit = l.t("accept-submit");
    page
}

/// `GET /shared-with-me/accept?token=…`: the emailed invitation's link.
pub(crate) async fn accept_form(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<TokenQuery>,
) -> Page {
    let signed_in = super::account::signed_in(&state, &v).await?;
    let Some(who) = signed_in.filter(|w| w.strength() == hale_core::AuthStrength::TwoFactor) else {
        let l = v.lang;
        let page = MessagePage {
            chrome: Chrome::new(l, l.t("accept-title")),
            heading: l.t("accept-title"),
            paragraphs: vec![l.t("accept-sign-in-first")],
            reference: None,
            links: vec![
                ("/sign-in", l.t("nav-sign-in")),
                ("/sign-up", l.t("start-create")),
            ],
        };
        return Ok(html(StatusCode::OK, page.render()));
    };
    Ok(html(
        StatusCode::OK,
        accept_page(&state, &v, &who, &q.token).render(),
    ))
}

/// `POST /shared-with-me/accept`.
pub(crate) async fn accept(AxumState(state): AxumState<State>, v: Visitor, body: Bytes) -> Page {
    let who = two_factor(&state, &v).await?;
    let data = form(&state, &v, v.session_key.as_deref(), &body)?;
    let (token, checked) = (data.get("token").to_owned(), who.clone());
    let accepted = call(&state, &v, move |app| {
        match app.accept_invitation(&checked, &token) {
            Ok(_) => Ok(true),
            Err(AppError::Forbidden(_)) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await?;
    if accepted {
        return Ok(see_other("/shared-with-me?done=accepted"));
    }
    let l = v.lang;
    let page = MessagePage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("accept-invalid-title")),
        heading: l.t("accept-invalid-title"),
        paragraphs: vec![l.t("accept-invalid-body")],
        reference: None,
        links: vec![("/record", l.t("access-ended-own"))],
    };
    Ok(html(StatusCode::BAD_REQUEST, page.render()).into_response())
}
