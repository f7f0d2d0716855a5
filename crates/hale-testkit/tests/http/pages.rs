//! The web pages themselves: every word from the message catalogue (a pseudo-locale finds
//! any hard-coded English), NHS.UK page structure, and the assets they need.

use hale_testkit::TestApp;
use hale_testkit::web::{Browser, Page, link_in};

/// The words a person reads on a page: text between tags and the `aria-label`, `alt` and
/// `title` attributes, inside `<body>`.
fn visible_words(html: &str) -> Vec<String> {
    let body = &html[html.find("<body").unwrap_or(0)..];
    let mut words = Vec::new();
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        words.extend(rest[..lt].split_whitespace().map(str::to_owned));
        let Some(gt) = rest[lt..].find('>') else {
            break;
        };
        let tag = &rest[lt..lt + gt];
        for attr in ["aria-label=\"", "alt=\"", "title=\""] {
            if let Some(i) = tag.find(attr) {
                let v = &tag[i + attr.len()..];
                words.extend(
                    v[..v.find('"').unwrap_or(0)]
                        .split_whitespace()
                        .map(str::to_owned),
                );
            }
        }
        // Skip what is not shown: scripts, styles, and the QR code's drawing.
        let skip_to = if tag.starts_with("<svg") {
            rest[lt..].find("</svg>").map(|i| lt + i)
        } else if tag.starts_with("<code") {
            rest[lt..].find("</code>").map(|i| lt + i)
        } else {
            None
        };
        rest = &rest[skip_to.unwrap_or(lt + gt)..];
        if skip_to.is_some() {
            rest = &rest[rest.find('>').map_or(0, |i| i + 1)..];
        } else {
            rest = &rest[1..];
        }
    }
    words
}

/// Words made only of plain ASCII letters, three or more: English that did not go through
/// the catalogue. (Pseudo-localised text has an accented letter in every such word.)
fn plain_english(p: &Page) -> Vec<String> {
    visible_words(&p.html)
        .into_iter()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
        .filter(|w| w.len() >= 3 && w.chars().all(|c| c.is_ascii_alphabetic()))
        // Names, not words: the browser and system in the list of sessions, and what the
        // record itself holds (a reading's name and unit, a person's name), which is data
        // in the record, not the interface's words.
        .filter(|w| {
            ![
                "Firefox", "Linux", "Blood", "pressure", "mmHg", "Mood", "Pat", "Example",
            ]
            .contains(&w.as_str())
        })
        .collect()
}

#[test]
fn every_page_takes_all_its_words_from_the_catalogue() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let mut b = Browser::new(&app.base);
    b.language = "en-XA".into();
    let password = "walrus lantern orchard 42";
    let mut pages = vec![
        b.get("/"),
        b.get("/sign-up"),
        b.submit(
            "/sign-up",
            &[
                ("name", ""),
                ("email", "bad"),
                ("password", "x"),
                ("confirm", "y"),
            ],
        ),
        b.get("/sign-in"),
        b.submit(
            "/sign-in",
            &[
                ("email", "nobody@example.org"),
                ("password", "wrong password here"),
            ],
        ),
        b.get("/nowhere"),
        b.get("/account/verify-email?token=nonsense"),
        b.post_raw("/sign-in", &[("csrf", "forged")]),
        b.get("/sign-in/forgot-password"),
        b.submit(
            "/sign-in/forgot-password",
            &[("email", "nobody@example.org")],
        ),
        b.get("/account/reset-password?token=nonsense"),
    ];
    pages.push(b.submit(
        "/sign-up",
        &[
            ("name", "Pat Example"),
            ("email", "pat@example.org"),
            ("password", password),
            ("confirm", password),
        ],
    ));
    let link = link_in(
        &smtp.next_email(),
        &format!("{}/account/verify-email", app.base),
    );
    pages.push(b.get(&link));
    let setup = b.submit(
        "/sign-in",
        &[("email", "pat@example.org"), ("password", password)],
    );
    pages.push(b.submit_on(
        &setup,
        "/account/authenticator",
        &[
            ("enrolment", &setup.hidden("enrolment")),
            ("code", "000000"),
        ],
    ));
    pages.push(setup);
    let setup = b.get("/account/authenticator");
    let secret = hale_auth::totp::secret_from_typing(&setup.code_after("hale-secret")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = hale_auth::totp::code_at(&secret, now).unwrap();
    pages.push(b.submit_on(
        &setup,
        "/account/authenticator",
        &[("enrolment", &setup.hidden("enrolment")), ("code", &code)],
    ));
    pages.push(b.get("/record"));
    pages.push(b.get("/account/sessions"));
    pages.push(b.get("/record/measurements/add"));
    pages.push(b.submit("/record/measurements/add", &[]));
    let form = b.get("/record/measurements/add/blood-pressure");
    pages.push(b.submit_on(
        &form,
        "/record/measurements/add/blood-pressure",
        &[
            ("systolic", "x"),
            ("diastolic", "90"),
            ("day", "1"),
            ("month", "1"),
            ("year", "2999"),
        ],
    ));
    pages.push(form);
    let saved = b.submit(
        "/record/measurements/add/blood-pressure",
        &[
            ("systolic", "120"),
            ("diastolic", "80"),
            ("day", "1"),
            ("month", "1"),
            ("year", "2025"),
        ],
    );
    assert!(saved.path().starts_with("/record/entry/"));
    pages.push(b.get(&format!(
        "{}/delete",
        saved.path().split('?').next().unwrap()
    )));
    pages.push(saved);
    pages.push(b.get("/record/measurements"));
    pages.push(b.get("/record/conditions"));
    pages.push(b.get("/record/measurements/blood-pressure?period=365"));
    pages.push(b.get("/record/measurements/weight"));
    pages.push(b.get("/record/summary"));
    pages.push(b.get("/account"));
    pages.push(b.get("/account/password"));
    pages.push(b.submit("/account/password", &[("password", "x"), ("confirm", "y")]));
    pages.push(b.get("/account/confirm?next=password"));
    pages.push(b.submit(
        "/account/confirm?next=password",
        &[
            ("next", "password"),
            ("password", "wrong"),
            ("code", "000000"),
        ],
    ));
    pages.push(b.get("/record/add/document"));
    pages.push(b.get("/record/add"));
    pages.push(b.submit("/record/add", &[]));
    for kind in [
        "symptom", "diary", "medicine", "allergy", "matters", "contact",
    ] {
        pages.push(b.get(&format!("/record/add/{kind}")));
        pages.push(b.submit(&format!("/record/add/{kind}"), &[]));
    }
    let diary = b.submit("/record/add/diary", &[("mood", "okay")]);
    let entry = diary.path().split('?').next().unwrap().to_owned();
    pages.push(b.get(&format!("{entry}/label")));
    pages.push(b.submit(&format!("{entry}/label"), &[("label", "nonsense")]));
    pages.push(b.submit(&format!("{entry}/label"), &[("label", "social-care")]));
    pages.push(diary);
    pages.push(b.get("/record/wellbeing"));
    pages.push(b.get("/record/wellbeing/steps?period=365"));
    // Adding data from an app: the form, its error, and a job's page going and finished,
    // with readings not added and why.
    let form = b.get("/record/import");
    pages.push(b.upload(&form, "/record/import", &[], ("none.zip", Vec::new())));
    let data = hale_testkit::data_dir().join("../../hale-import/tests/data");
    for file in [
        "omh/heart-rate-minimum.json",
        "fit/WeightScaleMultiUser.fit",
    ] {
        let mut job = b.upload(
            &form,
            "/record/import",
            &[],
            ("export", std::fs::read(data.join(file)).unwrap()),
        );
        while job.html.contains("data-poll") {
            std::thread::sleep(std::time::Duration::from_millis(50));
            job = b.get(&job.path());
        }
        pages.push(job);
    }
    pages.push(form);
    pages.push(b.get("/record/who-has-looked"));
    pages.push(b.get("/record/who-has-looked?all=1"));
    b.submit("/sign-in/forgot-password", &[("email", "pat@example.org")]);
    let reset = b.get(&link_in(
        &smtp.next_email(),
        &format!("{}/account/reset-password", app.base),
    ));
    let token = reset.hidden("token");
    let refused = b.submit_on(
        &reset,
        "/account/reset-password",
        &[("token", &token), ("password", "x"), ("confirm", "y")],
    );
    pages.push(reset);
    let done = b.submit_on(
        &refused,
        "/account/reset-password",
        &[
            ("token", &token),
            ("password", password),
            ("confirm", password),
        ],
    );
    pages.push(refused);
    pages.push(done);
    b.submit(
        "/sign-in",
        &[("email", "pat@example.org"), ("password", password)],
    );
    let other = {
        let mut o = Browser::new(&app.base);
        o.language = "en-XA".into();
        o
    };
    other.submit(
        "/sign-in",
        &[("email", "pat@example.org"), ("password", password)],
    );
    pages.push(other.get("/sign-in/security-code"));
    pages.push(other.submit("/sign-in/security-code", &[("code", "000000")]));
    pages.push(other.get("/sign-in/recovery-code"));
    pages.push(other.submit("/sign-in/recovery-code", &[("code", "aaaaa-bbbbb")]));
    let throttled = (0..12)
        .map(|_| other.submit("/sign-in/security-code", &[("code", "000000")]))
        .find(|p| p.status == 429)
        .expect("wrong codes are limited");
    pages.push(throttled);

    for p in &pages {
        assert!(p.html.contains("lang=\"en-XA\""), "{}", p.url);
        let english = plain_english(p);
        assert!(
            english.is_empty(),
            "{} ({}) has words outside the catalogue: {english:?}",
            p.url,
            p.status
        );
    }
    // And the same pages in British English read as English.
    let plain = app.browser().get("/sign-in");
    assert!(plain.html.contains("<h1>Sign in to Hale</h1>"));
}

#[test]
fn pages_follow_the_nhs_frame_one_h1_a_skip_link_landmarks_and_a_title() {
    let app = TestApp::spawn();
    let b = app.browser();
    for (path, title) in [
        ("/", "Your health record, in your hands - Hale"),
        ("/sign-up", "Create an account - Hale"),
        ("/sign-in", "Sign in to Hale - Hale"),
        ("/nowhere", "Page not found - Hale"),
    ] {
        let p = b.get(path);
        assert_eq!(p.html.matches("<h1").count(), 1, "{path}: one h1");
        assert!(
            p.html.contains(&format!("<title>{title}</title>")),
            "{path}"
        );
        assert!(p.html.contains("class=\"nhsuk-skip-link\""), "{path}");
        assert!(p.html.contains("href=\"#maincontent\""));
        assert!(
            p.html
                .contains("<main class=\"nhsuk-main-wrapper\" id=\"maincontent\">")
        );
        assert!(p.html.contains("role=\"banner\"") && p.html.contains("role=\"contentinfo\""));
        assert!(
            !p.html.contains("nhsuk-header__logo"),
            "{path}: no NHS logo"
        );
    }
    assert_eq!(b.get("/nowhere").status, 404);
    for asset in [
        "/assets/nhsuk/nhsuk-frontend.min.css",
        "/assets/nhsuk/nhsuk-frontend.min.js",
        "/assets/hale.css",
        "/assets/hale.js",
        "/assets/images/nhsuk-icon-cross.svg",
    ] {
        let r = reqwest::blocking::get(format!("{}{asset}", app.base)).unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let body = r.text().unwrap();
        assert!(
            !body.contains("assets.nhs.uk"),
            "{asset} must not load anything from another site"
        );
    }
}

#[test]
fn a_page_with_its_stylesheet_and_script_weighs_under_150_kb_and_pages_are_not_compressed() {
    let app = TestApp::spawn();
    let client = reqwest::blocking::Client::new();
    let fetch = |path: &str| {
        let r = client
            .get(format!("{}{path}", app.base))
            .header("accept-encoding", "gzip")
            .send()
            .unwrap();
        let encoding = r
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.bytes().unwrap().len(), encoding)
    };
    let (page, page_encoding) = fetch("/sign-up");
    assert_eq!(
        page_encoding, None,
        "pages carry a CSRF token: never compressed"
    );
    let mut total = page;
    for asset in [
        "/assets/nhsuk/nhsuk-frontend.min.css",
        "/assets/nhsuk/nhsuk-frontend.min.js",
        "/assets/hale.css",
        "/assets/hale.js",
    ] {
        let (bytes, encoding) = fetch(asset);
        if bytes > 1024 {
            assert_eq!(encoding.as_deref(), Some("gzip"), "{asset}");
        }
        total += bytes;
    }
    assert!(
        total <= 150 * 1024,
        "the sign-up page weighs {total} bytes with its assets"
    );
}
