//! "Who has looked at your record" (issue 4 §7): the record's audit log in plain words: who,
//! when, what and through what. By default it shows what others did; the person can ask to
//! see their own actions too.

use askama::Template;
use axum::extract::{Query, State as AxumState};
use axum::http::StatusCode;
use hale_app::AppError;

use super::{Page, call, day, person};
use crate::State;
use crate::ui::account::signed_in_chrome;
use crate::ui::pages::Chrome;
use crate::ui::{Lang, Visitor, html};

/// How many entries a page shows.
const PAGE: usize = 50;

#[derive(serde::Deserialize)]
pub(crate) struct LookedQuery {
    /// Show the person's own actions too.
    all: Option<u8>,
    /// Entries older than this one.
    before: Option<i64>,
}

struct Row {
    when: String,
    who: String,
    what: String,
    through: String,
}

#[derive(Template)]
#[template(path = "looked.html")]
struct LookedPage {
    chrome: Chrome,
    rows: Vec<Row>,
    all: bool,
    older: Option<String>,
}

/// What kind of entry a log line touched, in words.
fn kind(l: Lang, what: &str) -> String {
    let rtype = what.split(['/', '?', ':', ' ']).next().unwrap_or_default();
    l.try_t(&format!("looked-type-{rtype}"))
        .unwrap_or_else(|| l.t("looked-type-other"))
}

fn time_of(l: Lang, ms: i64) -> String {
    let Some(t) = hale_fhir::uk_time::at(ms) else {
        return String::new();
    };
    l.ta(
        "looked-when",
        &[
            ("date", day(l, ms)),
            ("time", format!("{:02}:{:02}", t.hour(), t.minute())),
        ],
    )
}

fn row(
    l: Lang,
    own_account: &str,
    grants: &[hale_app::grants::Grant],
    e: &hale_app::StoredAuditEntry,
) -> Row {
    let e = &e.entry;
    let grantee = grants
        .iter()
        .find(|g| g.holder_subject().as_deref() == Some(e.actor.as_str()));
    let who = if e.actor == own_account {
        l.t("looked-who-you")
    } else if let Some(g) = grantee.filter(|g| g.role.is_link()) {
        l.t1("looked-who-link", "name", &g.name)
    } else if let Some(g) = grantee {
        l.ta(
            "looked-who-grantee",
            &[
                ("name", g.name.clone()),
                (
                    "role",
                    l.t(&format!("role-{}", g.role.code())).to_lowercase(),
                ),
            ],
        )
    } else if let Some((_, org)) = e.actor.split_once("@org:") {
        // A professional at an organisation the person gave access to.
        let at = format!("org:{org}");
        match grants
            .iter()
            .find(|g| g.holder_subject().as_deref() == Some(at.as_str()))
        {
            Some(g) => l.t1("looked-who-org-professional", "org", &g.name),
            None => l.t("looked-who-organisation"),
        }
    } else if e.actor.starts_with("account:") {
        l.t("looked-who-account")
    } else if e.actor.starts_with("org:") {
        l.t("looked-who-organisation")
    } else if e.actor == "system:operator-cli" {
        l.t("looked-who-operator")
    } else if e.actor == "system:apple-health-clinical-records" || e.actor == "web-import" {
        l.t("looked-who-hale")
    } else if let Some(system) = e.actor.strip_prefix("system:") {
        l.t1("looked-who-system", "name", system)
    } else {
        l.t1("looked-who-app", "name", &e.actor)
    };
    let action = l
        .try_t(&format!("looked-action-{}", e.action))
        .unwrap_or_else(|| l.t("looked-action-other"));
    let action = if e.outcome == "refused" {
        l.t("looked-action-refused")
    } else {
        action
    };
    let what = if e.action == "everything"
        || e.action == "export"
        || e.action == "verify-identity"
        || e.action == "import"
    {
        action
    } else {
        l.ta(
            "looked-what",
            &[("action", action), ("kind", kind(l, &e.what))],
        )
    };
    let through = match &e.app {
        Some(_) if e.actor.starts_with("org:") => l.t("looked-through-org-system"),
        Some(app) => grants
            .iter()
            .find(|g| matches!(&g.holder, hale_app::grants::Holder::App { client, .. } if client == app))
            .map_or_else(|| app.clone(), |g| g.name.clone()),
        None if e.actor.starts_with("account:") || e.actor.starts_with("link:") => {
            l.t("looked-through-website")
        }
        None => l.t("looked-through-direct"),
    };
    Row {
        when: time_of(l, e.at),
        who,
        what,
        through,
    }
}

/// `GET /record/who-has-looked?all=1&before=SEQ`.
pub(crate) async fn who_has_looked(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Query(q): Query<LookedQuery>,
) -> Page {
    let (who, ctx) = person(&state, &v).await?;
    let all = q.all == Some(1);
    let own = format!("account:{}", who.account.id);
    let mine = own.clone();
    let (entries, more, grants) = call(&state, &v, move |app| {
        let record = ctx
            .actor
            .record()
            .cloned()
            .ok_or_else(|| AppError::Forbidden("no record".into()))?;
        // Reading the log is not itself logged: it would add a line every time it is read.
        let mut shown = Vec::new();
        let mut before = q.before;
        loop {
            let batch = app.audit_of_record(&ctx, &record, before, 500)?;
            let done = batch.len() < 500;
            before = batch.last().map(|e| e.seq);
            shown.extend(batch.into_iter().filter(|e| all || e.entry.actor != mine));
            if shown.len() > PAGE || done {
                break;
            }
        }
        let more = shown.len() > PAGE;
        shown.truncate(PAGE);
        let grants = app.grants_of_record(&ctx)?;
        Ok((shown, more, grants))
    })
    .await?;
    let l = v.lang;
    let older = match (more, entries.last()) {
        (true, Some(last)) => Some(format!(
            "/record/who-has-looked?{}before={}",
            if all { "all=1&" } else { "" },
            last.seq
        )),
        _ => None,
    };
    let page = LookedPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t("looked-title")),
        rows: entries.iter().map(|e| row(l, &own, &grants, e)).collect(),
        all,
        older,
    };
    Ok(html(StatusCode::OK, page.render()))
}
