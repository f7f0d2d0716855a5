//! `hale serve --demo`: a synthetic person with a year of record, ready to sign in as.

use hale_testkit::TestApp;

#[test]
fn the_demo_person_signs_in_with_a_printed_recovery_code_and_has_a_lived_in_record() {
    let app = TestApp::spawn();
    let demo = app.demo();
    assert_eq!(demo.recovery_codes.len(), 10);
    let b = app.browser();
    let after = b.submit(
        "/sign-in",
        &[("email", &demo.email), ("password", &demo.password)],
    );
    assert_eq!(
        after.path(),
        "/sign-in/security-code",
        "the demo still needs a second factor"
    );
    let home = b.submit(
        "/sign-in/recovery-code",
        &[("code", &demo.recovery_codes[0])],
    );
    assert_eq!(home.path(), "/record");
    assert!(
        home.html.contains("Your identity has been checked"),
        "the demo person is P9"
    );
    let new = home
        .html
        .split("What is new")
        .nth(1)
        .unwrap()
        .split("</ul>")
        .next()
        .unwrap();
    assert_eq!(new.matches("<li>").count(), 5, "the five newest entries");
    for (category, expect) in [
        ("conditions", "Asthma"),
        ("medicines", "Salbutamol"),
        ("allergies", "Penicillin"),
        ("immunisations", "Flu vaccine"),
        ("documents", "Letter from the asthma clinic"),
        ("care-plans", "Asthma action plan"),
    ] {
        let page = b.get(&format!("/record/{category}"));
        assert!(page.html.contains(expect), "{category} holds {expect}");
    }
    let summary = b.get("/record/summary");
    for expect in [
        "Sam Demo",
        "999 000 0018",
        "Asthma",
        "Hay fever",
        "Salbutamol",
        "Penicillin",
        "Flu vaccine",
        "Weight: ",
        "Latest measurements",
    ] {
        assert!(
            summary.html.contains(expect),
            "the printable summary shows {expect}"
        );
    }
    let year = b.get("/record/measurements/weight?period=365");
    assert!(
        year.html.contains("from 52 readings"),
        "a year of weekly weights"
    );
    let bp = b.get("/record/measurements/blood-pressure?period=30");
    assert!(
        bp.html
            .contains("Your average blood pressure over this period was")
    );
    // The authenticator key printed works too.
    let secret = hale_auth::totp::secret_from_typing(&demo.authenticator_key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let other = app.browser();
    other.submit(
        "/sign-in",
        &[("email", &demo.email), ("password", &demo.password)],
    );
    let code = hale_auth::totp::code_at(&secret, now).unwrap();
    assert_eq!(
        other
            .submit("/sign-in/security-code", &[("code", &code)])
            .path(),
        "/record"
    );
    // Apps see the same record through FHIR.
    let token = app.token(&demo.record.to_string(), "patient/*.rs");
    let conditions = app.get("/fhir/Condition", &token);
    assert_eq!(conditions.json["total"], 2);
    let weights = app.get(
        "/fhir/Observation?code=http://loinc.org|29463-7&_summary=count",
        &token,
    );
    assert_eq!(weights.json["total"], 52);
}
