//! Adding data from a phone, watch or app (issue 6 §4): upload an export, watch its import on a
//! page that updates (by itself with JavaScript, by refreshing without), then see the report.
//! The import runs as a background job that carries on across a restart (`hale_app::uploads`).

use askama::Template;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use hale_app::uploads::{JobState, JobStatus};

use super::{Page, call, person, two_factor};
use crate::State;
use crate::ui::pages::{Chrome, Field};
use crate::ui::{Lang, Visitor, error_page, html, see_other};

fn import_page(
    state: &State,
    v: &Visitor,
    who: &hale_app::accounts::SignedIn,
) -> crate::ui::pages::FormPage {
    let l = v.lang;
    let mut page =
        crate::ui::account::signed_in_form(state, v, who, l.t("import-title"), "/record/import");
    page.back = Some(("/record/add".into(), l.t("add-title")));
    page.multipart = true;
    page.paragraphs = vec![l.t("import-intro"), l.t("import-kinds")];
    page.fields =
        vec![Field::new("file", "file", l.t("import-file")).hint(l.t("import-file-hint"))];
    page.submit = l.t("import-submit");
    page
}

/// `GET /record/import`.
pub(crate) async fn import_form(AxumState(state): AxumState<State>, v: Visitor) -> Page {
    let who = two_factor(&state, &v).await?;
    Ok(html(StatusCode::OK, import_page(&state, &v, &who).render()))
}

/// `POST /record/import` (multipart): the file streams to a sealed upload (never whole in
/// memory), then its import starts in the background and the person goes to its page.
pub(crate) async fn import_upload(
    AxumState(state): AxumState<State>,
    v: Visitor,
    mut multipart: axum::extract::Multipart,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let mut csrf_checked = false;
    let mut upload = None;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        match field.name().unwrap_or("") {
            "csrf" => {
                let token = field.text().await.unwrap_or_default();
                csrf_checked = crate::ui::csrf_ok(&state, v.session_key.as_deref(), Some(&token));
            }
            // The form sends its token first: nothing is written for a request without one.
            "file" if csrf_checked => {
                let ctx = ctx.clone();
                let mut up = call(&state, &v, move |app| app.begin_upload(&ctx)).await?;
                let mut failed = false;
                while let Ok(Some(chunk)) = field.chunk().await {
                    // Sealing and writing a chunk is brief blocking work.
                    if tokio::task::block_in_place(|| up.write(&chunk)).is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    up.abandon();
                    return Err(error_page(&v, StatusCode::PAYLOAD_TOO_LARGE));
                }
                upload = Some(up);
            }
            _ => {}
        }
    }
    if !csrf_checked {
        if let Some(up) = upload {
            up.abandon();
        }
        return Err(error_page(&v, StatusCode::FORBIDDEN));
    }
    let job = match upload {
        Some(up) => tokio::task::spawn_blocking(move || up.finish())
            .await
            .map_err(|_| error_page(&v, StatusCode::INTERNAL_SERVER_ERROR))?,
        None => Err(hale_app::AppError::unprocessable("", "no file")),
    };
    match job {
        Ok(job) => {
            state.app.spawn_import(job.clone());
            Ok(see_other(&format!("/record/import/{job}")))
        }
        Err(_) => {
            let mut page = import_page(&state, &v, &who);
            page.error("file", v.lang.t("import-no-file"));
            Ok(html(StatusCode::OK, page.render()))
        }
    }
}

/// The job's page.
#[derive(Template)]
#[template(path = "import_status.html")]
struct StatusPage {
    chrome: Chrome,
    /// Still going: the page asks to be refreshed.
    going: bool,
    failed: bool,
    progress: String,
    lines: Vec<String>,
    not_added: Vec<String>,
    again: String,
}

fn number(n: u64) -> String {
    // 12345 as "12,345": the figures people read.
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn status_page(l: Lang, csrf: String, job: &str, s: &JobStatus) -> StatusPage {
    let going = !s.finished();
    let failed = s.state == JobState::Failed;
    let title = l.t(match s.state {
        JobState::Waiting | JobState::Running => "import-going-title",
        JobState::Done => "import-done-title",
        JobState::Failed => "import-failed-title",
    });
    let percent = (s.read * 100).checked_div(s.size).unwrap_or(0).min(100);
    let progress = if going {
        l.ta(
            "import-progress",
            &[
                ("records", number(s.records)),
                ("percent", percent.to_string()),
            ],
        )
    } else {
        String::new()
    };
    let mut lines = Vec::new();
    if s.state == JobState::Done {
        lines.push(l.t1("import-added", "count", number(s.added)));
        let already = s.imported.saturating_sub(s.added);
        if already > 0 {
            lines.push(l.t1("import-already", "count", number(already)));
        }
        let (clinical, clinical_already, clinical_refused) = s.clinical;
        if clinical + clinical_already + clinical_refused > 0 {
            lines.push(l.ta(
                "import-clinical",
                &[
                    ("added", number(clinical)),
                    ("already", number(clinical_already)),
                    ("refused", number(clinical_refused)),
                ],
            ));
        }
        if !s.damaged.is_empty() {
            lines.push(l.t("import-damaged"));
        }
    }
    if let Some(problem) = &s.problem {
        lines.push(l.t(&format!("import-problem-{problem}")));
    }
    let not_added = s
        .rejected
        .iter()
        .map(|(key, n)| {
            l.ta(
                "import-not-added-line",
                &[
                    ("count", number(*n)),
                    ("why", l.t(&format!("import-why-{key}"))),
                ],
            )
        })
        .collect();
    StatusPage {
        chrome: Chrome::new(l, title).signed_in(csrf),
        going,
        failed,
        progress,
        lines,
        not_added,
        again: format!("/record/import/{job}"),
    }
}

/// `GET /record/import/{job}`.
pub(crate) async fn import_status(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(job): Path<String>,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let lookup = job.clone();
    let status = call(&state, &v, move |app| app.import_status(&ctx, &lookup))
        .await
        .map_err(|_| error_page(&v, StatusCode::NOT_FOUND))?;
    let csrf = crate::ui::account::signed_in_chrome(&state, &v, &who, String::new())
        .signed_in_csrf
        .unwrap_or_default();
    let page = status_page(v.lang, csrf, &job, &status);
    Ok(html(StatusCode::OK, page.render()))
}
