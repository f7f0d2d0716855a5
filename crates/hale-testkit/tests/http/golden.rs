//! Golden-HTML checks: the NHS.UK components Hale renders have the markup of
//! nhsuk-frontend's own examples (`data/nhsuk-frontend-examples.json`, refreshed by
//! `scripts/update-nhsuk-frontend`): the same elements, with the same component classes, in
//! the same nesting. Text, ids and modifier classes (`--error`, `--width-10`) may differ.

use std::collections::BTreeSet;

use hale_testkit::TestApp;
use serde_json::Value;

use crate::accounts::set_up_person;

const VOID: [&str; 6] = ["input", "br", "img", "meta", "link", "hr"];

/// One element as the check sees it: its tag and its component classes.
fn describe(tag: &str, attrs: &str) -> String {
    let classes: Vec<&str> = attrs
        .split("class=\"")
        .nth(1)
        .and_then(|c| c.split('"').next())
        .unwrap_or("")
        .split_whitespace()
        .filter(|c| c.starts_with("nhsuk-") && !c.contains("--") && !c.starts_with("nhsuk-js-"))
        .collect();
    let mut sorted = classes.clone();
    sorted.sort_unstable();
    format!("{tag}.{}", sorted.join("."))
}

/// The set of (parent, child) element pairs in `html`: the structure, without the text.
fn structure(html: &str) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    let mut stack: Vec<String> = vec!["root".into()];
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let Some(gt) = rest[lt..].find('>') else {
            break;
        };
        let inner = &rest[lt + 1..lt + gt];
        rest = &rest[lt + gt + 1..];
        if inner.starts_with('!') {
            continue;
        }
        if let Some(closing) = inner.strip_prefix('/') {
            if closing.trim() != "svg" && closing.trim() != "path" {
                stack.pop();
            }
            continue;
        }
        let tag: String = inner
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if tag == "path" || tag == "title" && stack.last().is_some_and(|s| s.starts_with("svg")) {
            continue;
        }
        let me = describe(&tag, inner);
        // Looked through: a heading around a label, typographic utilities inside an example's
        // text (`nhsuk-u-nowrap`) and plain text markup (`p`, `br`): content, not component.
        let utility = me.contains(".nhsuk-u-") && !me.contains("nhsuk-u-visually-hidden");
        let text = ["p", "br", "strong", "em", "b", "i", "code", "span"].contains(&tag.as_str())
            && me.ends_with('.');
        if text {
            if !VOID.contains(&tag.as_str()) {
                stack.push(stack.last().cloned().unwrap_or_default());
            }
            continue;
        }
        if me.contains("nhsuk-label-wrapper") || utility {
            stack.push(stack.last().cloned().unwrap_or_default());
            continue;
        }
        pairs.insert((stack.last().cloned().unwrap_or_default(), me.clone()));
        if !VOID.contains(&tag.as_str()) && !inner.ends_with('/') {
            stack.push(me);
        }
    }
    pairs
}

/// The element of `html` whose class list holds `class`, and whose markup holds `marker`,
/// with everything inside it.
fn component<'a>(html: &'a str, class: &str, marker: &str) -> &'a str {
    let mut from = 0;
    while let Some(i) = html[from..].find(&format!("class=\"{class}")) {
        let at = from + i;
        let start = html[..at].rfind('<').unwrap();
        let tag: String = html[start + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        // Find the matching end tag by depth.
        let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
        let (mut depth, mut pos) = (0i32, start);
        let end = loop {
            let next_open = html[pos..].find(&open).map(|i| pos + i);
            let next_close = html[pos..].find(&close).map(|i| pos + i).unwrap();
            match next_open {
                Some(o) if o < next_close => {
                    depth += 1;
                    pos = o + open.len();
                }
                _ => {
                    depth -= 1;
                    pos = next_close + close.len();
                    if depth == 0 {
                        break pos;
                    }
                }
            }
        };
        let found = &html[start..end];
        if found.contains(marker) {
            return found;
        }
        from = at + 1;
    }
    panic!("no {class} holding {marker}");
}

#[test]
fn hales_components_have_the_markup_of_the_nhsuk_frontend_examples() {
    let examples: Value = serde_json::from_str(
        &std::fs::read_to_string(hale_testkit::data_dir().join("nhsuk-frontend-examples.json"))
            .unwrap(),
    )
    .unwrap();
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "golden@example.org");
    let b = &person.browser;
    let sign_up_errors = app.browser().submit(
        "/sign-up",
        &[
            ("name", "Alex"),
            ("email", "not-an-address"),
            ("password", "short"),
            ("confirm", "short"),
        ],
    );
    let saved = {
        let chosen = b.submit("/record/measurements/add", &[("kind", "weight")]);
        b.submit_on(
            &chosen,
            "/record/measurements/add/weight",
            &[
                ("value", "70"),
                ("day", "1"),
                ("month", "1"),
                ("year", "2025"),
            ],
        )
    };
    let add_errors = {
        let form = b.get("/record/measurements/add/weight");
        b.submit_on(
            &form,
            "/record/measurements/add/weight",
            &[
                ("value", "70"),
                ("day", "31"),
                ("month", "2"),
                ("year", "2025"),
            ],
        )
    };
    // A fresh account, before it has an authenticator, lands on the set-up page.
    let setup_page = set_up_page(&app, &mut smtp, &app.browser());
    let pages: Vec<(&str, String, &str, &str)> = vec![
        (
            "error-summary",
            sign_up_errors.html.clone(),
            "nhsuk-error-summary",
            "There is a problem",
        ),
        (
            "button",
            app.browser().get("/sign-in").html,
            "nhsuk-button",
            "type=\"submit\"",
        ),
        (
            "input",
            sign_up_errors.html.clone(),
            "nhsuk-form-group",
            "id=\"email\"",
        ),
        (
            "password-input",
            sign_up_errors.html.clone(),
            "nhsuk-form-group",
            "id=\"password\"",
        ),
        (
            "back-link",
            b.get("/record/conditions").html,
            "nhsuk-back-link",
            "/record",
        ),
        (
            "inset-text",
            b.get("/record").html,
            "nhsuk-inset-text",
            "identity",
        ),
        (
            "summary-list",
            saved.html.clone(),
            "nhsuk-summary-list",
            "You added this",
        ),
        ("details", setup_page, "nhsuk-details", "cannot scan"),
        (
            "notification-banner",
            saved.html.clone(),
            "nhsuk-notification-banner",
            "Reading saved",
        ),
        (
            "select",
            b.get("/record/measurements/weight").html,
            "nhsuk-form-group",
            "nhsuk-select",
        ),
        (
            "radios",
            b.get("/record/measurements/add").html,
            "nhsuk-form-group",
            "nhsuk-radios",
        ),
        (
            "date-input",
            add_errors.html,
            "nhsuk-form-group",
            "nhsuk-date-input",
        ),
    ];
    for (name, html, class, marker) in pages {
        let expected = structure(examples["examples"][name]["html"].as_str().unwrap());
        let ours = structure(component(&html, class, marker));
        assert_eq!(
            ours, expected,
            "{name}: our markup differs from nhsuk-frontend's example"
        );
    }
}

/// Signs up a second person and returns the authenticator set-up page they land on.
fn set_up_page(
    app: &TestApp,
    smtp: &mut hale_testkit::web::SmtpSink,
    b: &hale_testkit::web::Browser,
) -> String {
    let pw = crate::accounts::PASSWORD;
    b.submit(
        "/sign-up",
        &[
            ("name", "Gold Example"),
            ("email", "gold2@example.org"),
            ("password", pw),
            ("confirm", pw),
        ],
    );
    let link = hale_testkit::web::link_in(
        &smtp.next_email(),
        &format!("{}/account/verify-email", app.base),
    );
    b.get(&link);
    b.submit(
        "/sign-in",
        &[("email", "gold2@example.org"), ("password", pw)],
    )
    .html
}
