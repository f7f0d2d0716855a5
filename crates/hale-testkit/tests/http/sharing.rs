//! Sharing through the web pages (issue 4 §2, §3): the person invites a carer by email, the
//! carer accepts and sees exactly what was shared, the person sees what the carer looked at,
//! and taking access back ends it on the very next request, for the carer's open pages and
//! for a token already issued.

use hale_testkit::TestApp;
use hale_testkit::web::{Page, link_in};
use serde_json::json;

use crate::accounts::set_up_person;

const SECRET_CONDITION: &str = "Generalised anxiety disorder";

/// The person fills in "Give someone access" with `fields` and sends it: the page after.
fn give_access(person: &crate::accounts::Person, fields: &[(&str, &str)]) -> Page {
    let form = person.browser.get("/record/sharing/new");
    assert_eq!(form.status, 200, "{}", form.html);
    person
        .browser
        .submit_on(&form, "/record/sharing/new", fields)
}

/// The invitee of the invitation just sent signs up, accepts it by its emailed link and
/// opens the record shared with them.
pub(crate) fn accept_and_open(
    app: &TestApp,
    smtp: &mut hale_testkit::web::SmtpSink,
    email: &str,
    grant: &str,
) -> crate::accounts::Person {
    let link = link_in(
        &smtp.next_email(),
        &format!("{}/shared-with-me/accept?token=", app.base),
    );
    let person = set_up_person(app, smtp, email);
    let accept = person.browser.get(&link);
    let accepted = person.browser.submit_on(
        &accept,
        "/shared-with-me/accept",
        &[("token", &accept.hidden("token"))],
    );
    let opened = person
        .browser
        .submit_on(&accepted, "/shared-with-me/open", &[("grant", grant)]);
    assert_eq!(opened.path(), "/record", "{}", opened.html);
    person
}

/// The grant id in the first "take back access" form of the sharing page.
pub(crate) fn grant_id_in(html: &str) -> String {
    let before = html.split("/revoke\"").next().expect("a take-back form");
    before.rsplit('/').next().unwrap().to_owned()
}

#[test]
fn a_carer_sees_only_what_was_shared_until_the_person_takes_it_back() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let record = app.record_of(&alice.email);
    // Two of Alice's own entries: a general measurement and a mental health condition.
    let own = app.token(&record, "patient/*.cruds");
    let weight = app.post(
        "/fhir/Observation",
        &own,
        &json!({"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Body weight"},
            "subject": {"reference": format!("Patient/{record}")},
            "effectiveDateTime": "2026-11-01T09:00:00Z",
            "valueQuantity": {"value": 71.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}),
    );
    assert_eq!(weight.status, 201, "{}", weight.json);
    let condition = app.post(
        "/fhir/Condition",
        &own,
        &json!({"resourceType": "Condition",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F41.1"}], "text": SECRET_CONDITION},
            "subject": {"reference": format!("Patient/{record}")}}),
    );
    assert_eq!(condition.status, 201, "{}", condition.json);
    let condition_id = condition.json["id"].as_str().unwrap().to_owned();

    // Alice gives Bob access to general entries, to look only.
    let form = alice.browser.get("/record/sharing/new");
    assert_eq!(form.status, 200, "{}", form.html);
    let refused = alice.browser.submit_on(
        &form,
        "/record/sharing/new",
        &[
            ("name", ""),
            ("email", "bob@example.org"),
            ("role", "carer"),
        ],
    );
    assert!(
        refused.html.contains("Enter their name"),
        "{}",
        refused.html
    );
    assert!(refused.html.contains("Select how long"), "{}", refused.html);
    let given = alice.browser.submit_on(
        &form,
        "/record/sharing/new",
        &[
            ("name", "Bob Carer"),
            ("email", "bob@example.org"),
            ("role", "carer"),
            ("labels", "general"),
            ("access", "read"),
            ("duration", "month"),
        ],
    );
    assert_eq!(given.path(), "/record/sharing?done=given", "{}", given.html);
    assert!(given.html.contains("Invited. They have not accepted yet"));
    let home = alice.browser.get("/record");
    assert!(
        home.html
            .contains("1 invitation to see your record has not been accepted yet"),
        "{}",
        home.html
    );
    let grant = grant_id_in(&given.html);

    // The invitation says nothing about Alice's health.
    let invitation = smtp.next_email();
    assert!(invitation.contains("To: bob@example.org"), "{invitation}");
    assert!(!invitation.contains(SECRET_CONDITION) && !invitation.contains("71.5"));
    let link = link_in(
        &invitation,
        &format!("{}/shared-with-me/accept?token=", app.base),
    );

    // Bob signs up, then follows the link and accepts; Alice is told.
    let bob = set_up_person(&app, &mut smtp, "bob@example.org");
    let accept = bob.browser.get(&link);
    assert!(accept.html.contains("Accept access to a health record"));
    let accepted = bob.browser.submit_on(
        &accept,
        "/shared-with-me/accept",
        &[("token", &accept.hidden("token"))],
    );
    assert_eq!(
        accepted.path(),
        "/shared-with-me?done=accepted",
        "{}",
        accepted.html
    );
    let notice = smtp.next_email();
    assert!(notice.contains("To: alice@example.org"), "{notice}");
    assert!(notice.contains("Someone now has access to your record"));
    assert!(!notice.contains(SECRET_CONDITION));
    // The link works once.
    let again = bob.browser.get(&link);
    let reused = bob.browser.submit_on(
        &again,
        "/shared-with-me/accept",
        &[("token", &again.hidden("token"))],
    );
    assert_eq!(reused.status, 400);

    // Bob opens Alice's record: her name, the warning, her weight, not her condition.
    assert!(
        accepted.html.contains("Look at Alex Example&#39;s record")
            || accepted.html.contains("Look at Alex Example's record"),
        "{}",
        accepted.html
    );
    let home = bob
        .browser
        .submit_on(&accepted, "/shared-with-me/open", &[("grant", &grant)]);
    assert_eq!(home.path(), "/record", "{} {}", home.status, home.html);
    assert!(
        home.html.contains("You are looking at someone else"),
        "{}",
        home.html
    );
    assert!(!home.html.contains("/record/who-has-looked"));
    let measurements = bob.browser.get("/record/measurements");
    assert!(
        measurements.html.contains("Body weight"),
        "{}",
        measurements.html
    );
    let conditions = bob.browser.get("/record/conditions");
    assert!(!conditions.html.contains(SECRET_CONDITION));
    let direct = bob
        .browser
        .get(&format!("/record/entry/Condition/{condition_id}"));
    assert_eq!(direct.status, 404);
    // Look only: adding is refused, and nothing is added.
    let add = bob.browser.get("/record/add/symptom");
    let added = bob.browser.submit_on(
        &add,
        "/record/add/symptom",
        &[("what", "Headache"), ("severity", "mild")],
    );
    assert_eq!(added.status, 403, "{}", added.html);
    let symptoms = app.search_ids("/fhir/Observation?code:text=Headache", &own);
    assert!(symptoms.is_empty());
    // Nor can Bob see Alice's log or change her sharing.
    assert_eq!(bob.browser.get("/record/who-has-looked").status, 404);

    // Alice sees what Bob looked at, by name.
    let looked = alice.browser.get("/record/who-has-looked");
    assert!(
        looked
            .html
            .contains("Bob Carer (carer), with the access you gave them"),
        "{}",
        looked.html
    );

    // Alice's entries say who can see them.
    let weight_id = weight.json["id"].as_str().unwrap();
    let weight_page = alice
        .browser
        .get(&format!("/record/entry/Observation/{weight_id}"));
    assert!(
        weight_page.html.contains("You, and Bob Carer (carer)."),
        "{}",
        weight_page.html
    );
    let condition_page = alice
        .browser
        .get(&format!("/record/entry/Condition/{condition_id}"));
    assert!(condition_page.html.contains("Only you"));

    // A token issued to Bob under the grant works, until Alice takes access back.
    let token = app.grant_token(&record, &grant, "patient/*.rs");
    assert_eq!(
        app.get(&format!("/fhir/Observation/{weight_id}"), &token)
            .status,
        200
    );
    let sharing = alice.browser.get("/record/sharing");
    let revoked =
        alice
            .browser
            .submit_on(&sharing, &format!("/record/sharing/{grant}/revoke"), &[]);
    assert!(
        revoked.html.contains("Access taken back"),
        "{}",
        revoked.html
    );
    assert!(revoked.html.contains("You took access back"));
    // The very next requests are refused: the token, and the page Bob has open.
    assert_eq!(
        app.get(&format!("/fhir/Observation/{weight_id}"), &token)
            .status,
        401
    );
    let ended = bob.browser.get("/record/measurements");
    assert_eq!(ended.status, 403);
    assert!(ended.html.contains("Your access has ended"));
    assert!(!ended.html.contains("Body weight"));
    // And Bob is back in his own record after that.
    let own_home = bob.browser.get("/record");
    assert_eq!(own_home.status, 200);
    assert!(!own_home.html.contains("You are looking at someone else"));
}

#[test]
fn a_relative_who_may_add_entries_adds_one_and_cannot_remove_the_persons() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let given = give_access(
        &alice,
        &[
            ("name", "Cal Relative"),
            ("email", "cal@example.org"),
            ("role", "family"),
            ("labels", "general"),
            ("kinds", "observations"),
            ("access", "write"),
            ("duration", "week"),
        ],
    );
    assert!(
        given.html.contains("Look, and add entries"),
        "{}",
        given.html
    );
    assert!(
        given
            .html
            .contains("Test results, measurements and wellbeing")
    );
    let grant = grant_id_in(&given.html);
    let cal = accept_and_open(&app, &mut smtp, "cal@example.org", &grant);
    // Cal adds a symptom to Alice's record; Alice sees it, and the log says Cal did it.
    let add = cal.browser.get("/record/add/symptom");
    let added = cal.browser.submit_on(
        &add,
        "/record/add/symptom",
        &[("what", "Dizzy spells"), ("severity", "mild")],
    );
    assert_eq!(added.status, 200, "{}", added.html);
    let entry_path = added.path().split('?').next().unwrap().to_owned();
    assert!(
        entry_path.starts_with("/record/entry/Observation/"),
        "{entry_path}"
    );
    assert!(alice.browser.get(&entry_path).html.contains("Dizzy spells"));
    let looked = alice.browser.get("/record/who-has-looked");
    assert!(
        looked.html.contains("Cal Relative (relative or friend)"),
        "{}",
        looked.html
    );
    // A condition is outside what was shared: adding one is refused.
    let add = cal.browser.get("/record/add/medicine");
    let refused = cal
        .browser
        .submit_on(&add, "/record/add/medicine", &[("what", "Aspirin")]);
    assert_eq!(refused.status, 403, "{}", refused.html);
    // Cal cannot remove what is there, even what Cal added.
    let delete_path = format!("{entry_path}/delete");
    let confirm = cal.browser.get(&delete_path);
    let removed = cal.browser.submit_on(&confirm, &delete_path, &[]);
    assert_eq!(removed.status, 403, "{}", removed.html);
    assert_eq!(alice.browser.get(&entry_path).status, 200);
}

/// The address of the link on the page that shows it once.
fn link_on(html: &str, base: &str) -> String {
    let start = html.find(&format!("{base}/s/")).expect("the link is shown");
    html[start..].split('<').next().unwrap().to_owned()
}

#[test]
fn an_emergency_summary_link_with_a_passcode_shows_only_the_summary_until_taken_back() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let record = app.record_of(&alice.email);
    let own = app.token(&record, "patient/*.cruds");
    for (kind, fields) in [
        (
            "allergy",
            vec![("what", "Penicillin"), ("reaction", "Rash")],
        ),
        (
            "medicine",
            vec![("what", "Ramipril"), ("dose", "5 mg daily")],
        ),
        (
            "contact",
            vec![
                ("what", "Jo Example"),
                ("relationship", "Partner"),
                ("phone", "07700 900123"),
            ],
        ),
    ] {
        let form = alice.browser.get(&format!("/record/add/{kind}"));
        let added = alice
            .browser
            .submit_on(&form, &format!("/record/add/{kind}"), &fields);
        assert_eq!(added.status, 200, "{}", added.html);
    }
    let condition = app.post(
        "/fhir/Condition",
        &own,
        &json!({"resourceType": "Condition",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F41.1"}], "text": SECRET_CONDITION},
            "subject": {"reference": format!("Patient/{record}")}}),
    );
    assert_eq!(condition.status, 201);
    // Alice's own emergency page, then a link to it with a passcode.
    let summary = alice.browser.get("/record/emergency");
    assert!(summary.html.contains("Penicillin") && summary.html.contains("Ramipril"));
    assert!(summary.html.contains("Jo Example"));
    let form = alice.browser.get("/record/share-links/new?emergency=1");
    assert_eq!(form.status, 200, "{}", form.html);
    let short = alice.browser.submit_on(
        &form,
        "/record/share-links/new",
        &[
            ("name", "Walk-in centre"),
            ("what", "emergency"),
            ("duration", "week"),
            ("passcode", "abc"),
        ],
    );
    assert!(
        short.html.contains("at least 6 characters"),
        "{}",
        short.html
    );
    let made = alice.browser.submit_on(
        &form,
        "/record/share-links/new",
        &[
            ("name", "Walk-in centre"),
            ("what", "emergency"),
            ("duration", "week"),
            ("passcode", "tulip-42"),
        ],
    );
    assert!(made.html.contains("<svg"), "a QR code: {}", made.html);
    let link = link_on(&made.html, &app.base);

    // Someone without an account: the passcode first, then the summary and nothing else.
    let clinician = app.browser();
    let asked = clinician.get(&link);
    assert!(asked.html.contains("Enter the passcode"), "{}", asked.html);
    assert!(!asked.html.contains("Penicillin"));
    let wrong = clinician.submit_on(&asked, &link, &[("passcode", "tulip-43")]);
    assert!(wrong.html.contains("The passcode is not right"));
    assert!(!wrong.html.contains("Penicillin"));
    let shown = clinician.submit_on(&wrong, &link, &[("passcode", "tulip-42")]);
    assert!(shown.html.contains("Emergency summary"), "{}", shown.html);
    for expected in ["Penicillin", "Ramipril", "Jo Example", "Alex Example"] {
        assert!(shown.html.contains(expected), "{expected}: {}", shown.html);
    }
    // A mental health condition is not general: not in the summary.
    assert!(!shown.html.contains(SECRET_CONDITION));
    // The link's token reaches nothing through the FHIR API.
    let token_part = link.rsplit('/').next().unwrap();
    assert_eq!(app.get("/fhir/Patient", token_part).status, 401);

    // Alice sees the use, and the link among her sharing; taking it back ends it.
    let looked = alice.browser.get("/record/who-has-looked");
    assert!(
        looked
            .html
            .contains("Someone using your share link &#34;Walk-in centre&#34;"),
        "{}",
        looked.html
    );
    let sharing = alice.browser.get("/record/sharing");
    assert!(
        sharing.html.contains("Link to your emergency summary"),
        "{}",
        sharing.html
    );
    let grant = grant_id_in(&sharing.html);
    alice
        .browser
        .submit_on(&sharing, &format!("/record/sharing/{grant}/revoke"), &[]);
    let ended = clinician.get(&link);
    assert_eq!(ended.status, 404);
    assert!(ended.html.contains("This link does not work"));
    assert!(!ended.html.contains("Penicillin"));
}

#[test]
fn a_share_link_to_chosen_kinds_shows_those_and_nothing_else() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let record = app.record_of(&alice.email);
    let own = app.token(&record, "patient/*.cruds");
    for (text, code) in [("Asthma", "J45"), (SECRET_CONDITION, "F41.1")] {
        let made = app.post(
            "/fhir/Condition",
            &own,
            &json!({"resourceType": "Condition",
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}], "text": text},
                "subject": {"reference": format!("Patient/{record}")}}),
        );
        assert_eq!(made.status, 201);
    }
    let form = alice.browser.get("/record/add/allergy");
    alice
        .browser
        .submit_on(&form, "/record/add/allergy", &[("what", "Peanuts")]);
    let form = alice.browser.get("/record/share-links/new");
    let made = alice.browser.submit_on(
        &form,
        "/record/share-links/new",
        &[
            ("name", "New carer"),
            ("what", "chosen"),
            ("labels", "general"),
            ("kinds", "conditions"),
            ("duration", "day"),
            ("passcode", ""),
        ],
    );
    let link = link_on(&made.html, &app.base);
    let shown = app.browser().get(&link);
    assert_eq!(shown.status, 200);
    assert!(shown.html.contains("Asthma"), "{}", shown.html);
    assert!(!shown.html.contains(SECRET_CONDITION));
    assert!(!shown.html.contains("Peanuts"), "allergies were not chosen");
    assert_eq!(app.browser().get("/s/not-a-real-link").status, 404);
}

#[test]
fn a_professional_adds_a_clinical_note_that_stays_theirs() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let record = app.record_of(&alice.email);
    let given = give_access(
        &alice,
        &[
            ("name", "Dr Priya Patel"),
            ("email", "gp@example.org"),
            ("role", "professional"),
            ("labels", "general"),
            ("access", "write"),
            ("duration", "month"),
        ],
    );
    let grant = grant_id_in(&given.html);
    let gp = accept_and_open(&app, &mut smtp, "gp@example.org", &grant);
    let menu = gp.browser.get("/record/add");
    assert!(
        menu.html.contains("A clinical note or letter"),
        "{}",
        menu.html
    );
    let form = gp.browser.get("/record/add/clinical-note");
    let empty = gp.browser.submit_on(
        &form,
        "/record/add/clinical-note",
        &[("title", ""), ("note", "")],
    );
    assert!(empty.html.contains("Enter a title") && empty.html.contains("Enter the note"));
    let added = gp.browser.submit_on(
        &form,
        "/record/add/clinical-note",
        &[
            ("title", "Asthma review"),
            (
                "note",
                "Inhaler technique good. Continue as before; review in a year.",
            ),
        ],
    );
    assert_eq!(added.path(), "/record/documents", "{}", added.html);
    let own = app.token(&record, "patient/*.cruds");
    let ids = app.search_ids(
        "/fhir/DocumentReference?type=http://loinc.org|11506-3",
        &own,
    );
    assert_eq!(ids.len(), 1);
    let id = ids[0].clone();
    let entry_path = format!("/record/entry/DocumentReference/{id}");

    // Alice (verified, as service entries need P9) reads it, from Dr Patel, and cannot
    // change or delete it.
    crate::ok(&[
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
        "UK passport, checked at the practice",
    ]);
    let page = alice.browser.get(&entry_path);
    assert!(
        page.html.contains("Inhaler technique good"),
        "{}",
        page.html
    );
    assert!(page.html.contains("Dr Priya Patel"));
    assert!(
        !page.html.contains("/delete\""),
        "no delete for a professional's entry"
    );
    let confirm = alice.browser.get(&format!("{entry_path}/delete"));
    let refused = alice
        .browser
        .submit_on(&confirm, &format!("{entry_path}/delete"), &[]);
    assert_ne!(refused.status, 200, "{}", refused.html);
    let stored = app.get(&format!("/fhir/DocumentReference/{id}"), &own);
    assert_eq!(stored.status, 200);
    assert!(
        !stored.json["meta"]["tag"]
            .to_string()
            .contains("urn:hale:entered-by"),
        "{}",
        stored.json
    );
    let looked = alice.browser.get("/record/who-has-looked");
    assert!(
        looked
            .html
            .contains("Dr Priya Patel (health or care professional)")
    );
}

#[test]
fn access_can_start_on_a_later_date_and_dates_that_are_not_real_or_past_are_refused() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let fields = |day: &'static str, month: &'static str, year: &'static str| {
        vec![
            ("name", "Bob Carer"),
            ("email", "bob@example.org"),
            ("role", "carer"),
            ("labels", "general"),
            ("access", "read"),
            ("duration", "week"),
            ("start-day", day),
            ("start-month", month),
            ("start-year", year),
        ]
    };
    let sent = smtp.all().len();
    for (day, month, year, words) in [
        ("31", "2", "2030", "Enter a real date"),
        ("1", "13", "2030", "Enter a real date"),
        ("x", "1", "2030", "Enter a real date"),
        ("1", "1", "30", "Enter a real date"),
        ("1", "1", "2020", "The date must be today or in the future"),
    ] {
        let page = give_access(&alice, &fields(day, month, year));
        assert_eq!(page.path(), "/record/sharing/new", "{day}/{month}/{year}");
        assert!(
            page.html.contains(words),
            "{day}/{month}/{year}: {}",
            page.html
        );
        // What was typed is shown again.
        assert!(page.html.contains(&format!("value=\"{year}\"")));
    }
    assert_eq!(
        smtp.all().len(),
        sent,
        "nothing was sent for a refused form"
    );
    let given = give_access(&alice, &fields("15", "3", "2030"));
    assert_eq!(given.path(), "/record/sharing?done=given", "{}", given.html);
    assert!(
        given
            .html
            .contains("From 15 March 2030 until 22 March 2030"),
        "{}",
        given.html
    );
    // Bob accepts now, and sees when he can look; until then the record cannot be opened.
    let grant = grant_id_in(&given.html);
    let link = link_in(
        &smtp.next_email(),
        &format!("{}/shared-with-me/accept?token=", app.base),
    );
    let bob = set_up_person(&app, &mut smtp, "bob@example.org");
    let accept = bob.browser.get(&link);
    let accepted = bob.browser.submit_on(
        &accept,
        "/shared-with-me/accept",
        &[("token", &accept.hidden("token"))],
    );
    assert!(
        accepted
            .html
            .contains("You can look at this record from 15 March 2030."),
        "{}",
        accepted.html
    );
    let opened = bob
        .browser
        .submit_on(&accepted, "/shared-with-me/open", &[("grant", &grant)]);
    assert_ne!(opened.path(), "/record", "{}", opened.html);
    let sharing = alice.browser.get("/record/sharing");
    assert!(sharing.html.contains("Starts later"), "{}", sharing.html);
}
