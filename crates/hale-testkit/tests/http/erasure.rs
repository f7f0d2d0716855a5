//! The right to erasure: a person deletes their account, and their record goes with it.

use hale_testkit::TestApp;
use hale_testkit::web::SmtpSink;
use serde_json::json;

use crate::accounts::{PASSWORD, set_up_person};
use crate::sharing::{accept_and_open, grant_id_in};

/// Waits for an email whose text holds `subject`, passing over others.
fn email_about(smtp: &mut SmtpSink, subject: &str) -> String {
    loop {
        let email = smtp.next_email();
        if email.contains(subject) {
            return email;
        }
    }
}

#[test]
fn a_person_deletes_their_account_and_nothing_of_their_record_is_left_to_anyone() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "leaving@example.org");
    let record = app.record_of(&alice.email);
    let own = app.token(&record, "patient/*.cruds");
    let weight = app.post(
        "/fhir/Observation",
        &own,
        &json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Body weight"},
            "subject": {"reference": format!("Patient/{record}")},
            "effectiveDateTime": "2026-11-01T09:00:00Z",
            "valueQuantity": {"value": 71.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}),
    );
    assert_eq!(weight.status, 201, "{}", weight.json);
    let weight_id = weight.json["id"].as_str().unwrap().to_owned();
    // What a service wrote into the record goes with it.
    let theirs = app.post(
        "/fhir/Condition",
        &app.system_token,
        &json!({"resourceType": "Condition", "code": {"text": "Asthma"},
            "subject": {"reference": format!("Patient/{record}")}}),
    );
    assert_eq!(theirs.status, 201);
    let condition_id = theirs.json["id"].as_str().unwrap().to_owned();
    // Alice's carer can see her weight.
    let given = alice.browser.submit(
        "/record/sharing/new",
        &[
            ("name", "Bob Carer"),
            ("email", "carer@example.org"),
            ("role", "carer"),
            ("labels", "general"),
            ("access", "read"),
            ("duration", "month"),
        ],
    );
    let grant = grant_id_in(&given.html);
    let bob = accept_and_open(&app, &mut smtp, "carer@example.org", &grant);
    let entry = format!("/record/entry/Observation/{weight_id}");
    assert!(bob.browser.get(&entry).html.contains("71.5"));

    // The account page leads to it, and the page says plainly what goes and what stays.
    assert!(
        alice
            .browser
            .get("/account")
            .html
            .contains("Delete your account")
    );
    let page = alice.browser.get("/account/delete");
    assert_eq!(page.status, 200, "{}", page.html);
    for words in [
        "Delete your account and record",
        "This cannot be undone",
        "can no longer see it",
        "Download your record first",
        "It does not hold what your record said",
    ] {
        assert!(page.html.contains(words), "{words}: {}", page.html);
    }
    // Not without the form's token.
    let forged = alice
        .browser
        .post_raw("/account/delete", &[("csrf", "forged")]);
    assert_ne!(forged.path(), "/account/deleted");
    assert_eq!(app.record_of(&alice.email), record);

    let done = alice.browser.submit_on(&page, "/account/delete", &[]);
    assert_eq!(done.path(), "/account/deleted", "{}", done.html);
    assert!(done.html.contains("Your account has been deleted"));
    let notice = email_about(&mut smtp, "Your Hale account has been deleted");
    assert!(notice.contains("To: leaving@example.org"), "{notice}");
    assert!(!notice.contains("71.5") && !notice.contains("Asthma"));

    // Signed out, and the password opens nothing.
    assert_eq!(alice.browser.get("/record").path(), "/sign-in");
    let again = alice.browser.submit(
        "/sign-in",
        &[("email", "leaving@example.org"), ("password", PASSWORD)],
    );
    assert!(
        again
            .html
            .contains("The email address or password is not right"),
        "{}",
        again.html
    );
    // Nobody reaches anything of it: not the carer, not an app's token, not an operator.
    assert!(!bob.browser.get(&entry).html.contains("71.5"));
    assert!(
        !bob.browser
            .get("/shared-with-me")
            .html
            .contains("Alex Example")
    );
    for (path, token) in [
        (format!("/fhir/Observation/{weight_id}"), &own),
        (format!("/fhir/Observation/{weight_id}"), &app.system_token),
        (format!("/fhir/Condition/{condition_id}"), &app.system_token),
        (format!("/fhir/Patient/{record}"), &app.system_token),
    ] {
        assert_eq!(app.get(&path, token).status, 404, "{path}");
    }
    let everything = app.get(
        &format!("/fhir/Patient/{record}/$everything"),
        &app.system_token,
    );
    assert_eq!(everything.status, 404, "{}", everything.json);

    // The audit log still holds, with the erasure in it.
    let verified = app.app().audit_verify().unwrap();
    assert_eq!(verified.first_bad, None);

    // The address is free again: signing up with it starts a new, empty record.
    set_up_person(&app, &mut smtp, "leaving@example.org");
    let fresh = app.record_of("leaving@example.org");
    assert_ne!(fresh, record);
    let mine = app.token(&fresh, "patient/*.rs");
    assert!(
        app.search_ids("/fhir/Observation", &mine).is_empty(),
        "a new record starts empty"
    );
}

#[test]
fn deleting_the_account_asks_for_the_password_and_a_code_again_once_a_while_has_passed() {
    let (app, mut smtp) = TestApp::spawn_with_mail_and(|c| c.reauth_window_secs = 0);
    let person = set_up_person(&app, &mut smtp, "hasty@example.org");
    let record = app.record_of(&person.email);
    let page = person.browser.get("/account/delete");
    assert_eq!(page.path(), "/account/confirm?next=delete", "{}", page.url);
    let account = person.browser.get("/account");
    let sent = person.browser.submit_on(&account, "/account/delete", &[]);
    assert_eq!(sent.path(), "/account/confirm?next=delete", "{}", sent.url);
    assert_eq!(app.record_of(&person.email), record);
}
