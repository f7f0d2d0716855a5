//! Privacy labels: every entry carries one; a service's entry gets one from its codes by the
//! project's table; the person changes the label of their own entries.

use hale_testkit::TestApp;
use serde_json::{Value, json};

use crate::accounts::set_up_person;

fn labels_of(resource: &Value) -> Vec<String> {
    resource["meta"]["security"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|c| {
                    format!(
                        "{}|{}",
                        c["system"].as_str().unwrap(),
                        c["code"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_services_entry_is_labelled_from_its_codes_and_cannot_be_made_less_private() {
    let app = TestApp::spawn();
    let (record, token) = app.new_person("Label Person");
    let condition = |code: &str, label: &str| {
        json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{record}")},
            "meta": {"security": [{"system": "urn:hale:privacy-label", "code": label}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]}})
    };
    // A service says "general" for a depressive episode: the table says mental health.
    let depression = app.post(
        "/fhir/Condition",
        &app.system_token,
        &condition("F32.9", "general"),
    );
    assert_eq!(depression.status, 201, "{}", depression.json);
    assert_eq!(
        labels_of(&depression.json),
        [
            "urn:hale:privacy-label|mental-health",
            "http://terminology.hl7.org/CodeSystem/v3-ActCode|PSY"
        ]
    );
    // Where no rule applies, the service's own label stands; without one, general.
    let diabetes = app.post(
        "/fhir/Condition",
        &app.system_token,
        &condition("E11.9", "social-care"),
    );
    assert_eq!(
        labels_of(&diabetes.json),
        ["urn:hale:privacy-label|social-care"]
    );
    let mut plain = condition("J45.9", "general");
    plain["meta"] = json!({});
    let asthma = app.post("/fhir/Condition", &app.system_token, &plain);
    assert_eq!(labels_of(&asthma.json), ["urn:hale:privacy-label|general"]);
    // Labels are searchable, as grants by label will need.
    let found = app.search_ids(
        "/fhir/Condition?_security=urn:hale:privacy-label|mental-health",
        &token,
    );
    assert_eq!(found, [depression.json["id"].as_str().unwrap()]);
}

#[test]
fn a_person_changes_who_can_see_their_own_entry() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "label@example.org");
    let b = &person.browser;
    let entry = b.submit(
        "/record/add/symptom",
        &[("what", "Low mood"), ("severity", "mild"), ("notes", "")],
    );
    assert!(entry.html.contains("General. Only you"), "{}", entry.html);
    let href = entry.path().split('?').next().unwrap().to_owned();
    let form = b.get(&format!("{href}/label"));
    assert_eq!(form.status, 200);
    assert!(
        form.html.contains("value=\"general\" checked"),
        "{}",
        form.html
    );
    let refused = b.submit_on(&form, &format!("{href}/label"), &[("label", "everyone")]);
    assert!(refused.html.contains("Select who can see this entry"));
    let changed = b.submit_on(
        &form,
        &format!("{href}/label"),
        &[("label", "mental-health")],
    );
    assert!(
        changed
            .html
            .contains("Who can see this entry has been changed")
    );
    assert!(changed.html.contains("Mental health. Only you"));
    // The FHIR record agrees, and the history keeps the version before.
    let record = app.record_of(&person.email);
    let token = app.token(&record, "patient/*.rs");
    // /record/entry/TYPE/ID
    let resource = href.trim_start_matches("/record/entry/");
    let now = app.get(&format!("/fhir/{resource}"), &token);
    assert!(labels_of(&now.json).contains(&"urn:hale:privacy-label|mental-health".to_owned()));
    assert_eq!(now.json["meta"]["versionId"], "2");
    // Editing nothing else later keeps the label: a write without one keeps the one it had.
    let mut body = now.json.clone();
    body["meta"] = json!({});
    body["note"] = json!([{"text": "Better today"}]);
    let own_token = app.token(&record, "patient/*.cruds");
    let again = app.put(&format!("/fhir/{resource}"), &own_token, &body);
    assert_eq!(again.status, 200, "{}", again.json);
    assert!(labels_of(&again.json).contains(&"urn:hale:privacy-label|mental-health".to_owned()));
}
