//! The audit log as people meet it: every read by someone else is one line on "Who has
//! looked at your record", and `hale audit verify` checks the chain.

use hale_testkit::TestApp;

use crate::accounts::set_up_person;

fn lines_by(page: &str, who: &str) -> usize {
    page.matches(&format!("aria-hidden=\"true\">Who </span>{who}</td>"))
        .count()
}

#[test]
fn every_read_by_someone_else_is_one_line_of_who_has_looked() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "looked@example.org");
    let record = app.record_of(&person.email);
    let b = &person.browser;
    let before = b.get("/record/who-has-looked");
    assert_eq!(before.status, 200);
    assert!(
        before
            .html
            .contains("Nobody else has looked at your record yet.")
    );
    let system = "An organisation&#39;s system (test-system)";
    let patient = app.get(&format!("/fhir/Patient/{record}"), &app.system_token);
    assert_eq!(patient.status, 200);
    let page = b.get("/record/who-has-looked");
    assert_eq!(lines_by(&page.html, system), 1, "{}", page.html);
    assert!(page.html.contains("Looked at your details"));
    let search = app.get(
        &format!("/fhir/Observation?patient={record}"),
        &app.system_token,
    );
    assert_eq!(search.status, 200);
    let everything = app.get(
        &format!("/fhir/Patient/{record}/$everything"),
        &app.system_token,
    );
    assert_eq!(everything.status, 200);
    let page = b.get("/record/who-has-looked");
    assert_eq!(lines_by(&page.html, system), 3, "{}", page.html);
    assert!(page.html.contains("Searched test results or measurements"));
    assert!(page.html.contains("Looked at your whole record"));
    // What the person did themselves is there too, on asking.
    assert_eq!(b.get("/record/conditions").status, 200);
    let page = b.get("/record/who-has-looked");
    assert_eq!(lines_by(&page.html, "You"), 0);
    let all = b.get("/record/who-has-looked?all=1");
    assert!(lines_by(&all.html, "You") > 0);
    // Someone else's attempt on this record is answered "not found", and the person sees
    // that they tried: one line, saying they were not allowed to see it.
    let (_, stranger) = app.new_person("Someone Else");
    let theirs = app.get(&format!("/fhir/Patient/{record}"), &stranger);
    assert_eq!(theirs.status, 404);
    let page = b.get("/record/who-has-looked");
    assert_eq!(
        lines_by(&page.html, "An app (test-user)"),
        1,
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("Tried to look at, and was not allowed to see, your details")
    );
    // A read of something that exists nowhere leaves no line.
    let nothing = app.get("/fhir/Patient/no-such-patient", &stranger);
    assert_eq!(nothing.status, 404);
    let page = b.get("/record/who-has-looked");
    assert_eq!(lines_by(&page.html, "An app (test-user)"), 1);
    // The chain holds, and a checkpoint can be taken away.
    let d = app.config.data_dir.to_str().unwrap().to_owned();
    let verified = crate::ok(&["audit", "verify", "--data-dir", &d]);
    assert!(verified.starts_with("the audit log holds: "), "{verified}");
    let checkpoints = crate::ok(&["audit", "checkpoint", "--data-dir", &d]);
    let last: serde_json::Value =
        serde_json::from_str(checkpoints.lines().last().unwrap()).unwrap();
    let checked: i64 = verified
        .trim_start_matches("the audit log holds: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(checked >= 4, "{verified}");
    assert_eq!(last["seq"].as_i64().unwrap(), checked);
    assert_eq!(last["mac"].as_str().unwrap().len(), 64);
}

#[test]
fn a_person_reads_their_records_log_as_fhir_audit_events() {
    let app = TestApp::spawn();
    let (record, token) = app.new_person("Audit Reader");
    assert_eq!(
        app.get(&format!("/fhir/Patient/{record}"), &app.system_token)
            .status,
        200
    );
    let r = app.get("/fhir/AuditEvent?_count=50", &token);
    assert_eq!(r.status, 200, "{}", r.json);
    let events: Vec<&serde_json::Value> = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    // Newest first: this very search, then the system's read of the Patient.
    assert_eq!(events[0]["subtype"][0]["code"], "search-type");
    let read = events
        .iter()
        .find(|e| e["agent"][0]["who"]["display"] == "system:test-system")
        .expect("the system's read is in the log");
    assert_eq!(read["action"], "R");
    assert_eq!(
        read["entity"][0]["what"]["reference"],
        format!("Patient/{record}")
    );
    // Each is a valid R4 AuditEvent.
    let valid = app.post("/fhir/AuditEvent/$validate", &token, read);
    assert_eq!(valid.status, 200, "{}", valid.json);
    // Another person's token sees only its own record's log.
    let (_, other) = app.new_person("Someone Else");
    let theirs = app.get("/fhir/AuditEvent?_count=50", &other);
    assert!(
        theirs.json["entry"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["resource"]["agent"][0]["who"]["display"] != "system:test-system")
    );
}
