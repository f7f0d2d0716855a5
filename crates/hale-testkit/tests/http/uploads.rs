//! Adding data from a phone, watch or app through the web app: an upload becomes a background
//! import, its page shows progress and then the report, and a job the server was running when
//! it stopped finishes when it starts again.

use std::io::Write;
use std::time::{Duration, Instant};

use hale_core::{Actor, RecordId, RequestContext, Scopes};
use hale_import::synthetic::{Options, write_export};
use hale_testkit::TestApp;
use hale_testkit::web::{Browser, Page};

use crate::accounts::set_up_person;

fn export(records: u64) -> (Vec<u8>, u64) {
    let mut xml = Vec::new();
    let written = write_export(
        &mut xml,
        Options {
            records,
            seed: 3,
            ios16_dtd: true,
            messy: false,
        },
    )
    .unwrap();
    (xml, written.importable)
}

fn zipped(xml: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default();
    zip.start_file("apple_health_export/export.xml", deflated)
        .unwrap();
    zip.write_all(xml).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Uploads a file and follows its job page until the import ends.
fn upload_and_wait(b: &Browser, name: &str, bytes: Vec<u8>) -> Page {
    let form = b.get("/record/import");
    assert_eq!(form.status, 200);
    let first = b.upload(&form, "/record/import", &[], (name, bytes));
    assert!(
        first.path().starts_with("/record/import/"),
        "{}",
        first.html
    );
    let started = Instant::now();
    let mut page = first;
    while page.html.contains("data-poll") {
        assert!(page.html.contains("Check progress"), "{}", page.html);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the import never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
        page = b.get(&page.path());
    }
    page
}

fn count_after(html: &str, lead: &str) -> String {
    let at = html
        .find(lead)
        .unwrap_or_else(|| panic!("no {lead:?} in {html}"));
    html[at + lead.len()..]
        .split('<')
        .next()
        .unwrap()
        .trim()
        .to_owned()
}

fn with_commas(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn a_person_uploads_an_apple_health_export_and_sees_what_was_added() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "upload@example.org");
    let b = &person.browser;
    // The choice is offered where people add things.
    let add = b.get("/record/add");
    assert!(add.html.contains("value=\"import\""));
    assert_eq!(
        b.submit("/record/add", &[("kind", "import")]).path(),
        "/record/import"
    );
    let (xml, importable) = export(30_000);
    let done = upload_and_wait(b, "export.zip", zipped(&xml));
    assert!(
        done.html.contains("<h1>Your data has been added</h1>"),
        "{}",
        done.html
    );
    assert_eq!(
        count_after(&done.html, "New readings added:"),
        with_commas(importable)
    );
    // The same export again adds nothing.
    let again = upload_and_wait(b, "export.zip", zipped(&xml));
    assert_eq!(count_after(&again.html, "New readings added:"), "0");
    assert_eq!(
        count_after(&again.html, "Already in your record, so not added again:"),
        with_commas(importable)
    );
    // Nothing of the upload is left on disk once imported, and the job file holds counts only.
    let imports = app.config.data_dir.join("imports");
    for entry in std::fs::read_dir(&imports).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(path.extension().unwrap(), "json", "{}", path.display());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("HeartRate") && !text.contains("sourceName"));
    }
    // The readings are there: the watch data charts have something to show.
    let wellbeing = b.get("/record/wellbeing");
    assert!(
        wellbeing
            .html
            .contains("href=\"/record/wellbeing/heart_rate\"")
    );
}

#[test]
fn a_fit_file_is_added_and_a_file_hale_cannot_read_is_explained() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "fit@example.org");
    let b = &person.browser;
    let fit = std::fs::read(
        hale_testkit::data_dir().join("../../hale-import/tests/data/fit/WeightScaleMultiUser.fit"),
    )
    .unwrap();
    let done = upload_and_wait(b, "scale.fit", fit);
    assert_eq!(count_after(&done.html, "New readings added:"), "4");
    // The scale's metrics now have charts of their own, and only metrics with readings do.
    let wellbeing = b.get("/record/wellbeing");
    assert!(
        wellbeing
            .html
            .contains("href=\"/record/wellbeing/body_weight\"")
    );
    assert!(
        wellbeing
            .html
            .contains("href=\"/record/wellbeing/body_fat\"")
    );
    assert!(!wellbeing.html.contains("href=\"/record/wellbeing/sleep\""));
    assert_eq!(b.get("/record/wellbeing/body_fat").status, 200);
    let png = [b"\x89PNG\r\n\x1a\n".to_vec(), vec![0; 64]].concat();
    let failed = upload_and_wait(b, "photo.png", png);
    assert!(
        failed
            .html
            .contains("<h1>Your data could not be added</h1>")
    );
    assert!(failed.html.contains("This is not a file Hale can read."));
    // A job page is its person's alone.
    let other = set_up_person(&app, &mut smtp, "other@example.org");
    assert_eq!(other.browser.get(&done.path()).status, 404);
    // No file, or no form token: nothing is started.
    let form = b.get("/record/import");
    let empty = b.upload(&form, "/record/import", &[], ("nothing.zip", Vec::new()));
    assert!(
        empty.html.contains("Choose a file to upload"),
        "{}",
        empty.html
    );
    let forged = Browser::new(&app.base);
    let page = forged.get("/record/import");
    assert_ne!(
        page.path(),
        "/record/import",
        "signed-out visitors are sent to sign in"
    );
}

#[test]
fn an_import_the_server_was_running_when_it_stopped_finishes_when_it_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hale_server::Config::for_data_dir(dir.path().join("data"));
    config.key_hex = Some("22".repeat(32));
    let (xml, importable) = export(20_000);
    let (record, job) = {
        let app = hale_server::open_app(&config).unwrap();
        let record: RecordId = app.create_person("Restart Person", None, None).unwrap();
        let ctx = RequestContext::operator(
            Actor::Record {
                record: record.clone(),
                scopes: Scopes::parse("patient/*.cruds").unwrap(),
                subject: "test".into(),
            },
            "test",
        );
        let mut upload = app.begin_upload(&ctx).unwrap();
        upload.write(&xml).unwrap();
        let job = upload.finish().unwrap();
        // As a server killed mid-import leaves it: marked running, never finished.
        let status = config.data_dir.join("imports").join(format!("{job}.json"));
        let text = std::fs::read_to_string(&status).unwrap();
        std::fs::write(&status, text.replace("\"waiting\"", "\"running\"")).unwrap();
        (record, job)
    };
    let app = TestApp::spawn_on(dir, config);
    let token = app.token(&record.to_string(), "patient/*.rs");
    let started = Instant::now();
    let status = loop {
        let status = std::fs::read_to_string(
            app.config
                .data_dir
                .join("imports")
                .join(format!("{job}.json")),
        )
        .unwrap();
        if status.contains("\"done\"") || status.contains("\"failed\"") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.contains("\"done\""), "{status}");
    assert!(
        status.contains(&format!("\"added\":{importable}")),
        "{status}"
    );
    assert!(
        !app.config
            .data_dir
            .join("imports")
            .join(format!("{job}.sealed"))
            .exists()
    );
    // The samples answer through FHIR as daily summaries.
    let found = app.get(
        "/fhir/Observation?code=http://loinc.org|8867-4&_summary=count",
        &token,
    );
    assert!(found.json["total"].as_i64().unwrap() > 0, "{}", found.json);
}
