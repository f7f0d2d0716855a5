//! The person's record in the web app: categories, entries, adding a measurement, charts
//! (issue 5 §3), through the real pages with a signed-in browser.

use hale_testkit::TestApp;
use serde_json::json;

use crate::accounts::set_up_person;

fn add(
    person: &crate::accounts::Person,
    kind: &str,
    fields: &[(&str, &str)],
) -> hale_testkit::web::Page {
    let chosen = person
        .browser
        .submit("/record/measurements/add", &[("kind", kind)]);
    assert_eq!(chosen.path(), format!("/record/measurements/add/{kind}"));
    person
        .browser
        .submit_on(&chosen, &format!("/record/measurements/add/{kind}"), fields)
}

/// An operator's in-person identity check, through the real command line.
fn verify(app: &TestApp, record: &str) {
    crate::ok(&[
        "admin",
        "person",
        "verify",
        "--data-dir",
        app.config.data_dir.to_str().unwrap(),
        "--record",
        record,
        "--level",
        "P9",
        "--evidence",
        "UK passport, checked at the practice",
    ]);
}

/// The (day, month, year) `days_ago` days before today, UTC (Howard Hinnant's civil-from-days
/// algorithm, so the tests do not depend on the code they check).
fn date_ago(days_ago: i64) -> (i64, i64, i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let z = now / 86_400 - days_ago + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (d, m, yoe + era * 400 + i64::from(m <= 2))
}

fn today() -> (String, String, String) {
    let (d, m, y) = date_ago(0);
    (d.to_string(), m.to_string(), y.to_string())
}

#[test]
fn a_person_adds_a_blood_pressure_reading_and_finds_it_in_the_record_the_chart_and_the_api() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "bp@example.org");
    let (d, m, y) = today();
    let saved = add(
        &person,
        "blood-pressure",
        &[
            ("systolic", "128"),
            ("diastolic", "82"),
            ("day", &d),
            ("month", &m),
            ("year", &y),
        ],
    );
    assert!(
        saved.path().starts_with("/record/entry/Observation/"),
        "{}",
        saved.path()
    );
    assert!(saved.html.contains("Reading saved"));
    assert!(saved.html.contains("128/82 mmHg"));
    assert!(saved.html.contains("You added this"));
    assert!(saved.html.contains("Final result"));
    assert!(saved.html.contains("<h1>Blood pressure</h1>"));

    let home = person.browser.get("/record");
    let entry = saved.path().split('?').next().unwrap().to_owned();
    assert!(home.html.contains("What is new"));
    assert!(
        home.html.contains(&format!(
            "<a href=\"{entry}\">Blood pressure</a>: 128/82 mmHg"
        )),
        "{}",
        home.html
    );
    let at = home.html.find("href=\"/record/measurements\"").unwrap();
    assert!(
        home.html[at..]
            .split("</li>")
            .next()
            .unwrap()
            .contains("1 entry"),
        "{}",
        home.html
    );
    let list = person.browser.get("/record/measurements");
    assert!(list.html.contains(">Blood pressure</a>"));
    let chart = person.browser.get("/record/measurements/blood-pressure");
    assert!(
        chart.html.contains(
            "Your average blood pressure over this period was 128/82 mmHg, from 1 reading."
        ),
        "{}",
        chart.html
    );
    assert!(chart.html.contains("<polyline"), "a chart is drawn");
    assert!(
        chart.html.contains(
            "<td class=\"nhsuk-table__cell nhsuk-table__cell--numeric\">128/82 mmHg</td>"
        ),
        "and the same reading in a table"
    );

    // Apps see a standard vital-signs Observation through FHIR.
    let record = app.record_of(&person.email);
    let token = app.token(&record, "patient/Observation.rs");
    let found = app.get("/fhir/Observation?code=http://loinc.org|85354-9", &token);
    assert_eq!(found.json["total"], 1);
    let obs = &found.json["entry"][0]["resource"];
    assert_eq!(obs["component"][0]["code"]["coding"][0]["code"], "8480-6");
    assert_eq!(obs["component"][0]["valueQuantity"]["code"], "mm[Hg]");
    assert_eq!(obs["component"][1]["valueQuantity"]["value"], json!(82));
    assert_eq!(obs["category"][0]["coding"][0]["code"], "vital-signs");
}

#[test]
fn readings_that_are_not_numbers_or_not_believable_are_refused_and_nothing_is_stored() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "wrong@example.org");
    let (d, m, y) = today();
    for (fields, message) in [
        (
            vec![("systolic", "12o"), ("diastolic", "80")],
            "Enter a number, like 72.4",
        ),
        (
            vec![("systolic", "80"), ("diastolic", "120")],
            "The top number must be higher than the bottom number",
        ),
        (
            vec![("systolic", "900"), ("diastolic", "80")],
            "Enter a reading between 50 and 300",
        ),
    ] {
        let mut all = fields.clone();
        all.extend([
            ("day", d.as_str()),
            ("month", m.as_str()),
            ("year", y.as_str()),
        ]);
        let page = add(&person, "blood-pressure", &all);
        assert_eq!(page.path(), "/record/measurements/add/blood-pressure");
        assert!(page.html.contains("nhsuk-error-summary"));
        assert!(page.html.contains(message), "{message}");
        assert!(page.html.contains("<title>Error: "));
    }
    let future = add(
        &person,
        "weight",
        &[
            ("value", "70"),
            ("day", "1"),
            ("month", "1"),
            ("year", "2999"),
        ],
    );
    assert!(
        future
            .html
            .contains("Enter a real date that is not in the future")
    );
    let no_kind = person.browser.submit("/record/measurements/add", &[]);
    assert!(no_kind.html.contains("Select what you want to add"));
    let list = person.browser.get("/record/measurements");
    assert!(list.html.contains("There is nothing here yet."));
}

#[test]
fn the_chart_summary_compares_this_period_with_the_one_before() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "weight@example.org");
    let (d, m, y) = today();
    let record = app.record_of(&person.email);
    let token = app.token(&record, "patient/*.cruds");
    // An older reading written by an app through FHIR lands on the same chart.
    let instant = {
        let r = app.post(
            "/fhir/Observation",
            &token,
            &json!({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "subject": {"reference": format!("Patient/{record}")},
                "effectiveDateTime": "2000-01-01T12:00:00Z",
                "valueQuantity": {"value": 80, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}),
        );
        assert_eq!(r.status, 201, "{}", r.json);
        r.json["id"].as_str().unwrap().to_owned()
    };
    // Move it to 40 days ago (in the previous 30-day period) with a patch, as an app
    // correcting its date would.
    let day_then = {
        let (dd, mm, yy) = date_ago(40);
        format!("{yy:04}-{mm:02}-{dd:02}T12:00:00Z")
    };
    let patch = app.send(
        "PATCH",
        &format!("/fhir/Observation/{instant}"),
        &token,
        Some(
            serde_json::to_vec(
                &json!([{"op": "replace", "path": "/effectiveDateTime", "value": day_then}]),
            )
            .unwrap(),
        ),
        &[("content-type", "application/json-patch+json")],
    );
    assert_eq!(patch.status, 200, "{}", patch.json);
    add(
        &person,
        "weight",
        &[("value", "78.5"), ("day", &d), ("month", &m), ("year", &y)],
    );
    let chart = person.browser.get("/record/measurements/weight?period=30");
    assert!(
        chart.html.contains("Your average weight over this period was 78.5 kg, from 1 reading. That is down from 80 in the period before."),
        "{}",
        chart.html
    );
    let year = person.browser.get("/record/measurements/weight?period=365");
    assert!(year.html.contains("from 2 readings"));
    assert!(year.html.contains("<option value=\"365\" selected>"));
}

#[test]
fn an_entry_of_another_record_answers_exactly_as_one_that_does_not_exist() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "mine@example.org");
    let (other_record, other_token) = app.new_person("Someone Else");
    let theirs = app.post(
        "/fhir/Condition",
        &other_token,
        &json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{other_record}")},
            "code": {"text": "Something private"}}),
    );
    assert_eq!(theirs.status, 201);
    let id = theirs.json["id"].as_str().unwrap();
    let other = person.browser.get(&format!("/record/entry/Condition/{id}"));
    let missing = person.browser.get("/record/entry/Condition/does-not-exist");
    assert_eq!(other.status, 404);
    assert_eq!(other.status, missing.status);
    assert!(!other.html.contains("Something private"));
    let strip = |h: &str| {
        h.split("csrf\" value=\"")
            .map(|p| p.split_once('"').map_or(p, |x| x.1))
            .collect::<String>()
    };
    assert_eq!(strip(&other.html), strip(&missing.html));
    assert_eq!(person.browser.get("/record/entry/NotAType/x").status, 404);
}

#[test]
fn entries_from_health_services_show_what_they_are_and_where_they_came_from() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "gp@example.org");
    let record = app.record_of(&person.email);
    verify(&app, &record);
    let r = app.post(
        "/fhir/Condition",
        &app.system_token,
        &json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{record}")},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195967001", "display": "Asthma"}]},
            "recordedDate": "2025-03-14",
            "recorder": {"display": "Dr A Example, Example Surgery"}}),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    let list = person.browser.get("/record/conditions");
    assert!(list.html.contains(">Asthma</a>"), "{}", list.html);
    assert!(list.html.contains("14 March 2025"));
    assert!(list.html.contains("Dr A Example, Example Surgery"));
    let id = r.json["id"].as_str().unwrap();
    let entry = person.browser.get(&format!("/record/entry/Condition/{id}"));
    assert!(entry.html.contains("<h1>Asthma</h1>"));
    assert!(entry.html.contains("Current"), "the status in plain words");
    assert!(!entry.html.contains("You added this"));
}

#[test]
fn watch_data_imported_from_apple_health_is_charted_as_daily_totals() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "steps@example.org");
    let record = app.record_of(&person.email);
    // Three step counts two days ago (4,000 in all) and a resting heart rate of 58.
    let (d, m, y) = date_ago(2);
    let stamp = |h: u32| format!("{y:04}-{m:02}-{d:02} {h:02}:00:00 +0000");
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<HealthData locale=\"en_GB\">\n");
    for (h, v) in [(9, 1000), (12, 2500), (18, 500)] {
        xml.push_str(&format!(
            "<Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"Phone\" unit=\"count\" startDate=\"{}\" endDate=\"{}\" value=\"{v}\"/>\n",
            stamp(h),
            stamp(h + 1)
        ));
    }
    xml.push_str(&format!(
        "<Record type=\"HKQuantityTypeIdentifierRestingHeartRate\" sourceName=\"Watch\" unit=\"count/min\" startDate=\"{}\" endDate=\"{}\" value=\"58\"/>\n</HealthData>\n",
        stamp(7),
        stamp(7)
    ));
    let file = app.dir.path().join("export.xml");
    std::fs::write(&file, xml).unwrap();
    crate::ok(&[
        "import",
        "apple-health",
        "--data-dir",
        app.config.data_dir.to_str().unwrap(),
        file.to_str().unwrap(),
        "--record",
        &record,
    ]);
    let wellbeing = person.browser.get("/record/wellbeing");
    assert!(wellbeing.html.contains("href=\"/record/wellbeing/steps\""));
    let steps = person.browser.get("/record/wellbeing/steps");
    let months = [
        "",
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let row = format!(
        "<td class=\"nhsuk-table__cell\">{d} {} {y}</td>",
        months[m as usize]
    );
    let at = steps
        .html
        .find(&row)
        .unwrap_or_else(|| panic!("no row for {row}: {}", steps.html));
    assert!(
        steps.html[at..]
            .split("</tr>")
            .next()
            .unwrap()
            .contains("4000 steps a day")
    );
    assert!(steps.html.contains("<polyline"));
    let heart = person.browser.get("/record/wellbeing/resting_heart_rate");
    assert!(
        heart
            .html
            .contains("Your average over this period was 58 beats a minute."),
        "{}",
        heart.html
    );
    assert_eq!(
        person.browser.get("/record/wellbeing/not_a_metric").status,
        404
    );
}

#[test]
fn before_their_identity_is_verified_a_person_sees_only_what_they_wrote() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "p0@example.org");
    let record = app.record_of(&person.email);
    let from_gp = app.post(
        "/fhir/Condition",
        &app.system_token,
        &json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{record}")},
            "code": {"text": "Something the surgery wrote"}, "recorder": {"display": "Example Surgery"}}),
    );
    assert_eq!(from_gp.status, 201);
    let id = from_gp.json["id"].as_str().unwrap();
    let (d, m, y) = today();
    add(
        &person,
        "weight",
        &[("value", "70"), ("day", &d), ("month", &m), ("year", &y)],
    );

    let home = person.browser.get("/record");
    assert!(home.html.contains("Your identity has not been checked"));
    let at = home.html.find("href=\"/record/conditions\"").unwrap();
    assert!(
        home.html[at..]
            .split("</li>")
            .next()
            .unwrap()
            .contains("0 entries"),
        "the surgery's entry is not counted"
    );
    let list = person.browser.get("/record/conditions");
    assert!(!list.html.contains("Something the surgery wrote"));
    let entry = person.browser.get(&format!("/record/entry/Condition/{id}"));
    let missing = person.browser.get("/record/entry/Condition/no-such-id");
    assert_eq!(entry.status, 404);
    assert_eq!(entry.status, missing.status);
    assert!(!entry.html.contains("Something the surgery wrote"));
    // What they wrote themselves is there.
    assert!(
        person
            .browser
            .get("/record/measurements")
            .html
            .contains(">Weight</a>")
    );

    // An operator checks their photo ID: now the surgery's entry shows, on the next page.
    let refused = crate::run(&[
        "admin",
        "person",
        "verify",
        "--data-dir",
        app.config.data_dir.to_str().unwrap(),
        "--record",
        &record,
        "--level",
        "P9",
        "--evidence",
        " ",
    ]);
    assert!(!refused.status.success(), "evidence is required");
    verify(&app, &record);
    let home = person.browser.get("/record");
    assert!(home.html.contains("Your identity has been checked"));
    assert!(
        person
            .browser
            .get("/record/conditions")
            .html
            .contains("Something the surgery wrote")
    );
    assert_eq!(
        person
            .browser
            .get(&format!("/record/entry/Condition/{id}"))
            .status,
        200
    );
    // The check itself is in the record, for the person to see (through FHIR for now).
    let token = app.token(&record, "patient/Provenance.rs");
    let provenance = app.get("/fhir/Provenance", &token);
    assert_eq!(provenance.json["total"], 1, "{}", provenance.json);
    assert_eq!(
        provenance.json["entry"][0]["resource"]["reason"][0]["text"],
        "UK passport, checked at the practice"
    );
}

#[test]
fn the_server_alone_says_who_entered_an_entry() {
    let app = TestApp::spawn();
    let (record, token) = app.new_person("Tag Example");
    let forged = json!({"system": "urn:hale:entered-by", "code": "person"});
    let body = |tags: serde_json::Value| {
        json!({"resourceType": "Condition", "meta": {"tag": tags},
            "subject": {"reference": format!("Patient/{record}")}, "code": {"text": "x"}})
    };
    // A system (an organisation) cannot pass its entry off as the person's…
    let from_system = app.post(
        "/fhir/Condition",
        &app.system_token,
        &body(json!([forged.clone()])),
    );
    assert_eq!(from_system.status, 201);
    assert!(
        from_system.json["meta"].get("tag").is_none(),
        "{}",
        from_system.json
    );
    // …and the person's app gets the tag whatever it sends, keeping its own tags.
    let own = json!({"system": "https://app.example/tags", "code": "morning"});
    let from_app = app.post("/fhir/Condition", &token, &body(json!([own.clone()])));
    let tags = from_app.json["meta"]["tag"].as_array().unwrap().clone();
    assert!(tags.contains(&own) && tags.contains(&forged), "{tags:?}");
}

#[test]
fn a_person_deletes_their_own_entry_with_history_kept_but_never_a_services_entry() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "delete@example.org");
    let record = app.record_of(&person.email);
    verify(&app, &record);
    let (d, m, y) = today();
    let saved = add(
        &person,
        "temperature",
        &[("value", "37.9"), ("day", &d), ("month", &m), ("year", &y)],
    );
    let entry = saved.path().split('?').next().unwrap().to_owned();
    let id = entry.rsplit('/').next().unwrap().to_owned();
    assert!(saved.html.contains(&format!("href=\"{entry}/delete\"")));
    let confirm = person.browser.get(&format!("{entry}/delete"));
    assert!(
        confirm
            .html
            .contains("Are you sure you want to delete this entry?")
    );
    let done = person
        .browser
        .submit_on(&confirm, &format!("{entry}/delete"), &[]);
    assert_eq!(done.path(), "/record/measurements?deleted=1");
    assert!(done.html.contains("Entry deleted"));
    assert!(!done.html.contains(">Temperature</a>"));
    assert_eq!(person.browser.get(&entry).status, 404);
    let token = app.token(&record, "patient/Observation.rs");
    let history = app.get(&format!("/fhir/Observation/{id}/_history"), &token);
    assert_eq!(
        history.json["total"], 2,
        "the reading and its deletion are both kept"
    );

    // A surgery's entry is read-only to the person.
    let from_gp = app.post(
        "/fhir/Condition",
        &app.system_token,
        &json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{record}")},
            "code": {"text": "Eczema"}}),
    );
    let gp = format!(
        "/record/entry/Condition/{}",
        from_gp.json["id"].as_str().unwrap()
    );
    let page = person.browser.get(&gp);
    assert!(page.html.contains("You cannot change or delete it."));
    assert!(!page.html.contains("/delete\""));
    assert_eq!(person.browser.get(&format!("{gp}/delete")).status, 403);
    let forced = person
        .browser
        .submit_on(&page, &format!("{gp}/delete"), &[]);
    assert_eq!(forced.status, 403);
    assert_eq!(person.browser.get(&gp).status, 200, "still there");
}

#[test]
fn a_person_adds_a_symptom_a_diary_entry_a_medicine_and_an_allergy() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "journal@example.org");
    let b = &person.browser;
    let start = b.submit("/record/add", &[("kind", "symptom")]);
    assert_eq!(start.path(), "/record/add/symptom");
    let refused = b.submit_on(
        &start,
        "/record/add/symptom",
        &[("what", " "), ("notes", &"x".repeat(2001))],
    );
    assert!(refused.html.contains("Enter what it is"));
    assert!(refused.html.contains("Select how bad it is"));
    assert!(
        refused
            .html
            .contains("Keep it to 2,000 characters or fewer")
    );
    let symptom = b.submit_on(
        &refused,
        "/record/add/symptom",
        &[
            ("what", "Headache"),
            ("severity", "moderate"),
            ("notes", "Worse after screens"),
        ],
    );
    assert!(
        symptom.html.contains("<h1>Headache</h1>"),
        "{}",
        symptom.html
    );
    assert!(symptom.html.contains("Saved to your record"));
    assert!(symptom.html.contains("Moderate") && symptom.html.contains("Worse after screens"));
    assert!(symptom.html.contains("You added this"));

    let diary = b.submit(
        "/record/add/diary",
        &[("mood", "good"), ("notes", "A walk by the river")],
    );
    assert!(diary.html.contains("<h1>Mood</h1>") && diary.html.contains("Good"));
    let wellbeing = b.get("/record/wellbeing");
    assert!(wellbeing.html.contains("Headache") && wellbeing.html.contains("Mood"));

    let medicine = b.submit(
        "/record/add/medicine",
        &[
            ("what", "Paracetamol 500mg tablets"),
            ("dose", "2 tablets up to 4 times a day"),
            ("reason", "Headaches"),
        ],
    );
    assert!(medicine.html.contains("2 tablets up to 4 times a day"));
    assert!(
        b.get("/record/medicines")
            .html
            .contains("Paracetamol 500mg tablets")
    );
    let allergy = b.submit(
        "/record/add/allergy",
        &[("what", "Peanuts"), ("reaction", "Swollen lips")],
    );
    assert!(allergy.html.contains("<h1>Peanuts</h1>") && allergy.html.contains("Swollen lips"));

    // Apps and services read them as standard FHIR.
    let record = app.record_of(&person.email);
    let token = app.token(&record, "patient/*.rs");
    let mood = app.get(
        "/fhir/Observation?code=http://snomed.info/sct|285854004",
        &token,
    );
    assert_eq!(mood.json["entry"][0]["resource"]["valueInteger"], 4);
    let allergies = app.get("/fhir/AllergyIntolerance", &token);
    assert_eq!(
        allergies.json["entry"][0]["resource"]["verificationStatus"]["coding"][0]["code"],
        "unconfirmed"
    );
    assert_eq!(
        app.get("/fhir/MedicationStatement", &token).json["total"],
        1
    );
    assert_eq!(b.get("/record/add/nonsense").status, 404);
}

#[test]
fn a_person_uploads_a_letter_checked_by_its_content_and_downloads_it_never_inline() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "docs@example.org");
    let b = &person.browser;
    let form = b.get("/record/add/document");
    assert!(form.html.contains("enctype=\"multipart/form-data\""));
    // An HTML file named like a PDF is refused: the content decides.
    let html = b"<html><script>alert('x')</script></html>".to_vec();
    let refused = b.upload(
        &form,
        "/record/add/document",
        &[("title", "Hospital letter")],
        ("letter.pdf", html),
    );
    assert!(
        refused.html.contains("The file must be a PDF, JPEG or PNG"),
        "{}",
        refused.html
    );
    let empty = b.upload(
        &form,
        "/record/add/document",
        &[("title", "")],
        ("empty.pdf", Vec::new()),
    );
    assert!(
        empty.html.contains("Enter what the document is")
            && empty.html.contains("Choose a file to upload")
    );
    let huge = b.upload(
        &form,
        "/record/add/document",
        &[("title", "Scan")],
        (
            "scan.pdf",
            [b"%PDF-1.7\n".to_vec(), vec![b' '; 6 * 1024 * 1024]].concat(),
        ),
    );
    assert!(huge.html.contains("The file must be 5 MB or smaller"));

    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec();
    let saved = b.upload(
        &form,
        "/record/add/document",
        &[("title", "Letter about my knee")],
        ("knee.pdf", pdf.clone()),
    );
    assert!(
        saved.html.contains("<h1>Letter about my knee</h1>"),
        "{}",
        saved.html
    );
    let download = saved
        .html
        .split("href=\"")
        .find(|s| s.contains("/file\""))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let file = b.get(&download);
    assert_eq!(file.status, 200);
    assert_eq!(file.headers["content-type"], "application/pdf");
    assert!(
        file.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert!(
        file.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(file.html.as_bytes(), &pdf[..]);
    assert!(
        b.get("/record/documents")
            .html
            .contains("Letter about my knee")
    );
    // Someone else's browser cannot fetch it.
    assert_eq!(app.browser().get(&download).path(), "/sign-in");
}

#[test]
fn a_person_says_what_matters_to_them_and_who_to_contact() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "matters@example.org");
    let b = &person.browser;
    let matters = b.submit(
        "/record/add/matters",
        &[("what", "I want to stay in my own home")],
    );
    assert!(
        matters
            .html
            .contains("<h1>I want to stay in my own home</h1>"),
        "{}",
        matters.html
    );
    let refused = b.submit(
        "/record/add/contact",
        &[("what", ""), ("phone", "call me maybe")],
    );
    assert!(refused.html.contains("Enter their name"));
    assert!(refused.html.contains("Enter a phone number"));
    let contact = b.submit(
        "/record/add/contact",
        &[
            ("what", "Jo Example"),
            ("relationship", "Daughter"),
            ("phone", "01632 960 001"),
        ],
    );
    assert!(
        contact.html.contains("<h1>Jo Example</h1>")
            && contact.html.contains("Daughter, 01632 960 001")
    );
    let list = b.get("/record/care-plans");
    assert!(
        list.html.contains("I want to stay in my own home") && list.html.contains("Jo Example")
    );
    let record = app.record_of(&person.email);
    let token = app.token(&record, "patient/*.rs");
    assert_eq!(
        app.get("/fhir/RelatedPerson", &token).json["entry"][0]["resource"]["telecom"][0]["value"],
        "01632 960 001"
    );
    assert_eq!(
        app.get("/fhir/Goal", &token).json["entry"][0]["resource"]["description"]["text"],
        "I want to stay in my own home"
    );
}

#[test]
fn a_person_changes_their_own_reading_and_the_old_value_stays_in_the_history() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "edit@example.org");
    let record = app.record_of(&person.email);
    verify(&app, &record);
    let saved = add(
        &person,
        "weight",
        &[
            ("value", "70.0"),
            ("day", "3"),
            ("month", "2"),
            ("year", "2025"),
        ],
    );
    let entry = saved.path().split('?').next().unwrap().to_owned();
    assert!(saved.html.contains(&format!("href=\"{entry}/edit\"")));
    let form = person.browser.get(&format!("{entry}/edit"));
    assert!(form.html.contains("Change your weight reading"));
    assert!(
        form.html.contains("value=\"70.0\""),
        "the form holds the reading as written"
    );
    assert!(
        form.html
            .contains("id=\"day\" name=\"day\" type=\"text\" inputmode=\"numeric\" value=\"3\"")
    );
    let refused = person.browser.submit_on(
        &form,
        &format!("{entry}/edit"),
        &[
            ("value", "7000"),
            ("day", "3"),
            ("month", "2"),
            ("year", "2025"),
        ],
    );
    assert!(refused.html.contains("Enter a reading between 0.5 and 500"));
    let changed = person.browser.submit_on(
        &refused,
        &format!("{entry}/edit"),
        &[
            ("value", "71.5"),
            ("day", "3"),
            ("month", "2"),
            ("year", "2025"),
        ],
    );
    assert!(changed.html.contains("Reading changed"), "{}", changed.html);
    assert!(changed.html.contains("71.5 kg") && changed.html.contains("3 February 2025"));
    let id = entry.rsplit('/').next().unwrap();
    let token = app.token(&record, "patient/Observation.rs");
    let history = app.get(&format!("/fhir/Observation/{id}/_history"), &token);
    assert_eq!(history.json["total"], 2);
    assert_eq!(
        history.json["entry"][1]["resource"]["valueQuantity"]["value"],
        json!(70.0)
    );

    // A service's reading has no change link and cannot be changed.
    let theirs = app.post(
        "/fhir/Observation",
        &app.system_token,
        &json!({"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": format!("Patient/{record}")}, "effectiveDateTime": "2025-01-01",
            "valueQuantity": {"value": 80, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}),
    );
    let theirs = format!(
        "/record/entry/Observation/{}",
        theirs.json["id"].as_str().unwrap()
    );
    assert!(!person.browser.get(&theirs).html.contains("/edit\""));
    assert_eq!(person.browser.get(&format!("{theirs}/edit")).status, 404);
}

#[test]
fn a_person_adds_their_own_note_to_a_services_entry_which_stays_unchanged() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = crate::accounts::set_up_person(&app, &mut smtp, "noter@example.org");
    let record = app.record_of(&person.email);
    verify(&app, &record);
    let written = app.post(
        "/fhir/Condition",
        &app.system_token,
        &serde_json::json!({"resourceType": "Condition",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F32.1"}], "text": "Moderate depressive episode"},
            "subject": {"reference": format!("Patient/{record}")},
            "recorder": {"display": "Dr Ade Okafor"}}),
    );
    assert_eq!(written.status, 201, "{}", written.json);
    let id = written.json["id"].as_str().unwrap();
    // It is new from a service: the home page says so, and leads to it.
    let home = person.browser.get("/record");
    assert!(home.html.contains("Needs your attention"), "{}", home.html);
    assert!(
        home.html
            .contains("New: Moderate depressive episode, from Dr Ade Okafor")
    );
    let path = format!("/record/entry/Condition/{id}");
    assert!(home.html.contains(&format!("href=\"{path}\"")));
    let page = person.browser.get(&path);
    assert!(page.html.contains("You have not added a note"));
    let empty = person
        .browser
        .submit_on(&page, &format!("{path}/note"), &[("note", "  ")]);
    assert!(empty.html.contains("nhsuk-error-summary") && empty.html.contains("Enter your note"));
    let noted = person.browser.submit_on(
        &page,
        &format!("{path}/note"),
        &[(
            "note",
            "Started feeling better after the new dose in March.",
        )],
    );
    assert!(
        noted.html.contains("Your note has been saved"),
        "{}",
        noted.html
    );
    assert!(
        noted
            .html
            .contains("Started feeling better after the new dose in March.")
    );
    // The service's entry is as it was: one version, its words, its author.
    let own = app.token(&record, "patient/*.cruds");
    let now = app.get(&format!("/fhir/Condition/{id}"), &own);
    assert_eq!(now.json["meta"]["versionId"], "1");
    assert_eq!(now.json["code"], written.json["code"]);
    // The note is shared exactly as the entry: the same privacy label.
    let notes = app.get(
        "/fhir/Communication?category=urn:hale:note-kind|person-note",
        &own,
    );
    let note = &notes.json["entry"][0]["resource"];
    assert_eq!(note["about"][0]["reference"], format!("Condition/{id}"));
    assert!(
        note["meta"]["security"]
            .to_string()
            .contains("\"mental-health\""),
        "{note}"
    );
}

#[test]
fn a_person_changes_their_own_symptom_medicine_and_contact_with_history_kept_but_never_a_services_entry()
 {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "change@example.org");
    let record = app.record_of(&person.email);
    verify(&app, &record);
    let b = &person.browser;
    let symptom = b.submit(
        "/record/add/symptom",
        &[("what", "Headache"), ("severity", "mild"), ("notes", "")],
    );
    let entry = symptom.path().split('?').next().unwrap().to_owned();
    assert!(
        symptom.html.contains(&format!("href=\"{entry}/change\"")),
        "{}",
        symptom.html
    );
    // Its label, changed by the person, is kept through the change.
    let labelled = b.submit(&format!("{entry}/label"), &[("label", "mental-health")]);
    assert!(labelled.html.contains("Mental health"), "{}", labelled.html);
    let form = b.get(&format!("{entry}/change"));
    assert!(
        form.html.contains("<h1>Change this symptom</h1>"),
        "{}",
        form.html
    );
    assert!(form.html.contains("value=\"Headache\""));
    assert!(
        form.html.contains("value=\"mild\" checked"),
        "the form holds the entry as written: {}",
        form.html
    );
    let refused = b.submit_on(
        &form,
        &format!("{entry}/change"),
        &[("what", ""), ("severity", "mild")],
    );
    assert!(
        refused.html.contains("Enter what it is"),
        "{}",
        refused.html
    );
    let changed = b.submit_on(
        &form,
        &format!("{entry}/change"),
        &[
            ("what", "Migraine"),
            ("severity", "severe"),
            ("notes", "With flashing lights"),
        ],
    );
    assert!(
        changed.html.contains("<h1>Migraine</h1>"),
        "{}",
        changed.html
    );
    assert!(changed.html.contains("Your changes have been saved"));
    assert!(changed.html.contains("Severe") && changed.html.contains("Mental health"));
    let id = entry.rsplit('/').next().unwrap();
    let token = app.token(&record, "patient/*.rs");
    let history = app.get(&format!("/fhir/Observation/{id}/_history"), &token);
    // Added, labelled, changed: every version kept, newest first.
    assert_eq!(history.json["total"], 3, "{}", history.json);
    assert_eq!(
        history.json["entry"][1]["resource"]["code"]["text"],
        "Headache"
    );

    // A medicine and a contact change the same way.
    for (kind, first, fields, shows) in [
        (
            "medicine",
            vec![("what", "Ibuprofen"), ("dose", "200 mg"), ("reason", "")],
            vec![
                ("what", "Ibuprofen"),
                ("dose", "400 mg"),
                ("reason", "Back pain"),
            ],
            "400 mg",
        ),
        (
            "contact",
            vec![("what", "Sam"), ("relationship", "Son"), ("phone", "")],
            vec![
                ("what", "Sam"),
                ("relationship", "Son"),
                ("phone", "07700 900123"),
            ],
            "07700 900123",
        ),
    ] {
        let added = b.submit(&format!("/record/add/{kind}"), &first);
        let entry = added.path().split('?').next().unwrap().to_owned();
        let form = b.get(&format!("{entry}/change"));
        assert_eq!(form.status, 200, "{kind}: {}", form.html);
        let changed = b.submit_on(&form, &format!("{entry}/change"), &fields);
        assert!(changed.html.contains(shows), "{kind}: {}", changed.html);
    }

    // What a service wrote has no change link, and its change form is not there.
    let theirs = app.post(
        "/fhir/AllergyIntolerance",
        &app.system_token,
        &json!({"resourceType": "AllergyIntolerance",
            "code": {"text": "Penicillin"},
            "patient": {"reference": format!("Patient/{record}")}}),
    );
    assert_eq!(theirs.status, 201, "{}", theirs.json);
    let path = format!(
        "/record/entry/AllergyIntolerance/{}",
        theirs.json["id"].as_str().unwrap()
    );
    let page = b.get(&path);
    assert!(page.html.contains("Penicillin") && !page.html.contains("/change\""));
    assert_eq!(b.get(&format!("{path}/change")).status, 404);
    let tried = b.submit_on(&page, &format!("{path}/change"), &[("what", "Nothing")]);
    assert_eq!(tried.status, 404);
    let still = app.get(
        &format!("/fhir{}", path.trim_start_matches("/record/entry")),
        &token,
    );
    assert_eq!(still.json["code"]["text"], "Penicillin");
    assert_eq!(still.json["meta"]["versionId"], "1");
}

#[test]
fn a_person_downloads_everything_they_can_see_in_their_record_as_one_fhir_bundle() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "export@example.org");
    let record = app.record_of(&person.email);
    let b = &person.browser;
    b.submit(
        "/record/add/symptom",
        &[("what", "Headache"), ("severity", "mild"), ("notes", "")],
    );
    // What a service wrote is not theirs to see until their identity is checked (P9), so
    // it is not in the download either.
    let theirs = app.post(
        "/fhir/Condition",
        &app.system_token,
        &json!({"resourceType": "Condition", "code": {"text": "Asthma"},
            "subject": {"reference": format!("Patient/{record}")}}),
    );
    assert_eq!(theirs.status, 201);
    let form = b.get("/record/export");
    assert_eq!(form.status, 200, "{}", form.html);
    assert!(form.html.contains("Download your record"));
    let csrf = form.hidden("csrf");
    let download = reqwest_download(&app, b, &csrf);
    assert_eq!(download.0, "application/fhir+json");
    assert!(
        download
            .1
            .starts_with("attachment; filename=\"hale-record-")
    );
    let bundle: serde_json::Value = serde_json::from_slice(&download.2).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let texts: Vec<String> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_owned())
        .collect();
    assert!(texts.contains(&"Patient".to_owned()) && texts.contains(&"Observation".to_owned()));
    assert!(!download_text(&download.2).contains("Asthma"));
    assert!(download_text(&download.2).contains("Headache"));
    let looked = b.get("/record/who-has-looked?all=1");
    assert!(
        looked
            .html
            .contains("Downloaded a copy of your whole record"),
        "{}",
        looked.html
    );
}

#[test]
fn a_person_downloads_every_reading_from_their_apps_and_devices_as_csv() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "readings@example.org");
    let b = &person.browser;
    // Nothing from apps yet: only the record's own download is offered.
    let empty = b.get("/record/export");
    assert!(
        !empty.html.contains("Download your readings"),
        "{}",
        empty.html
    );

    let record = app.record_of(&person.email);
    let token = app.token(&record, "patient/*.cruds");
    let reading = |at: &str, code: &str, value: f64, unit: &str, device: &str| {
        json!({"resource": {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "effectiveDateTime": at, "device": {"display": device},
            "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": unit}}})
    };
    let added = app.post(
        "/fhir/Observation/$add-samples",
        &token,
        &json!({"resourceType": "Bundle", "type": "batch", "entry": [
            reading("2024-03-01T08:01:00Z", "8867-4", 70.0, "/min", "Pulse watch"),
            reading("2024-03-01T08:00:00Z", "8867-4", 60.5, "/min", "Pulse watch"),
            reading("2024-03-02T07:00:00+01:00", "29463-7", 71.25, "kg", "Scales, \"bathroom\""),
        ]}),
    );
    assert_eq!(added.status, 200, "{}", added.json);

    let form = b.get("/record/export");
    assert!(
        form.html.contains("Your record holds 3 readings"),
        "{}",
        form.html
    );
    let download = b.submit_on(&form, "/record/export/readings", &[]);
    assert_eq!(download.status, 200);
    let header = |name: &str| {
        download
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/csv; charset=utf-8");
    assert!(header("content-disposition").starts_with("attachment; filename=\"hale-readings-"));
    assert_eq!(header("cache-control"), "no-store");
    let lines: Vec<&str> = download.html.lines().collect();
    assert_eq!(
        lines,
        [
            "metric,unit,source,start,end,value",
            "body_weight,kg,\"Scales, \"\"bathroom\"\"\",2024-03-02T06:00:00.000Z,2024-03-02T06:00:00.000Z,71.25",
            "heart_rate,/min,Pulse watch,2024-03-01T08:00:00.000Z,2024-03-01T08:00:00.000Z,60.5",
            "heart_rate,/min,Pulse watch,2024-03-01T08:01:00.000Z,2024-03-01T08:01:00.000Z,70",
        ]
    );
    let looked = b.get("/record/who-has-looked?all=1");
    assert!(
        looked
            .html
            .contains("Downloaded a copy of your readings from apps and devices"),
        "{}",
        looked.html
    );
    // Not without the form's token.
    let forged = b.post_raw("/record/export/readings", &[("csrf", "forged")]);
    assert_ne!(forged.status, 200);
}

#[test]
fn a_long_history_of_readings_downloads_whole_and_in_order_across_pages() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "history@example.org");
    let record = app.record_of(&person.email);
    let token = app.token(&record, "patient/*.cruds");
    // 12,000 minutes of heart rate, sent newest first in batches of 1,000 (more than two of
    // the download's pages).
    let start = 1_700_000_000_000_i64;
    for batch in (0..12).rev() {
        let entries: Vec<serde_json::Value> = (0..1000)
            .map(|i| {
                let minute = batch * 1000 + i;
                json!({"resource": {"resourceType": "Observation", "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "effectiveDateTime": hale_fhir::date::format_instant(start + minute * 60_000),
                    "device": {"display": "Pulse watch"},
                    "valueQuantity": {"value": 50 + minute % 60, "system": "http://unitsofmeasure.org", "code": "/min"}}})
            })
            .collect();
        let r = app.post(
            "/fhir/Observation/$add-samples",
            &token,
            &json!({"resourceType": "Bundle", "type": "batch", "entry": entries}),
        );
        assert_eq!(r.status, 200, "{}", r.json);
    }
    let form = person.browser.get("/record/export");
    let download = person
        .browser
        .submit_on(&form, "/record/export/readings", &[]);
    let lines: Vec<&str> = download.html.lines().collect();
    assert_eq!(lines.len(), 12_001);
    assert_eq!(lines[0], "metric,unit,source,start,end,value");
    let times: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "oldest first, none twice"
    );
    assert_eq!(times[0], hale_fhir::date::format_instant(start));
    assert_eq!(
        times[11_999],
        hale_fhir::date::format_instant(start + 11_999 * 60_000)
    );
}

#[test]
fn dates_are_shown_as_a_uk_clock_reads_them() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "clock@example.org");
    let record = app.record_of(&person.email);
    let token = app.token(&record, "patient/*.cruds");
    // Half past midnight on 1 July in London is still 30 June in UTC; in January the two
    // agree.
    let mut ids = Vec::new();
    for at in ["2026-06-30T23:30:00Z", "2026-01-31T23:30:00Z"] {
        let r = app.post(
            "/fhir/Observation",
            &token,
            &json!({"resourceType": "Observation", "status": "final",
                "code": {"text": "Body weight"},
                "subject": {"reference": format!("Patient/{record}")},
                "effectiveDateTime": at,
                "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}),
        );
        assert_eq!(r.status, 201, "{}", r.json);
        ids.push(r.json["id"].as_str().unwrap().to_owned());
    }
    let summer = person
        .browser
        .get(&format!("/record/entry/Observation/{}", ids[0]));
    assert!(summer.html.contains("1 July 2026"), "{}", summer.html);
    assert!(!summer.html.contains("30 June 2026"));
    let winter = person
        .browser
        .get(&format!("/record/entry/Observation/{}", ids[1]));
    assert!(winter.html.contains("31 January 2026"), "{}", winter.html);
}

#[test]
fn downloading_the_record_asks_for_the_password_and_a_code_again_once_a_while_has_passed() {
    let (app, mut smtp) = TestApp::spawn_with_mail_and(|c| c.reauth_window_secs = 0);
    let person = set_up_person(&app, &mut smtp, "stale@example.org");
    let page = person.browser.get("/record/export");
    assert!(
        page.path().starts_with("/account/confirm"),
        "{}",
        page.path()
    );
}

/// Sends the download form as a browser does: (type, disposition, body).
fn reqwest_download(
    app: &TestApp,
    browser: &hale_testkit::web::Browser,
    csrf: &str,
) -> (String, String, Vec<u8>) {
    let page = browser.submit("/record/export", &[("csrf", csrf)]);
    let _ = app;
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    (
        header("content-type"),
        header("content-disposition"),
        page.html.clone().into_bytes(),
    )
}

fn download_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
