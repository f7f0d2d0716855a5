//! Bad input gets a clear OperationOutcome, changes nothing, and the server stays up.

use hale_testkit::TestApp;
use serde_json::json;

fn nested(depth: usize) -> String {
    let mut s = String::from(
        r#"{"resourceType": "Basic", "code": {"text": "x"}, "extension": [{"url": "http://e.org", "valueString": "x"}], "x": "#,
    );
    s.push_str(&"[".repeat(depth));
    s.push_str(&"]".repeat(depth));
    s.push('}');
    s
}

#[test]
fn every_kind_of_bad_input_is_refused_and_stores_nothing() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    let (other, _) = t.new_person("Ben Example");
    let obs = |extra: &str| {
        format!(
            r#"{{"resourceType": "Observation", "status": "final", "code": {{"text": "x"}}, "subject": {{"reference": "Patient/{p}"}}{extra}}}"#
        )
    };
    let big = format!(
        r#"{{"resourceType": "Observation", "status": "final", "code": {{"text": "{}"}}}}"#,
        "a".repeat(11 * 1024 * 1024)
    );
    let many = json!({"resourceType": "Bundle", "type": "transaction", "entry": (0..1001).map(|_| json!({
        "request": {"method": "POST", "url": "Observation"},
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}})).collect::<Vec<_>>()});
    let cases: Vec<(&str, &str, String, u16)> = vec![
        (
            "malformed JSON",
            "/fhir/Observation",
            r#"{"resourceType": "Observation", "#.into(),
            400,
        ),
        (
            "not an object",
            "/fhir/Observation",
            "[1, 2, 3]".into(),
            400,
        ),
        (
            "wrong resourceType",
            "/fhir/Observation",
            r#"{"resourceType": "Condition", "subject": {"reference": "Patient/x"}}"#.into(),
            400,
        ),
        (
            "unknown type in the URL",
            "/fhir/Banana",
            r#"{"resourceType": "Banana"}"#.into(),
            400,
        ),
        ("nested deeper than 100", "/fhir/Basic", nested(120), 400),
        (
            "nested deeper than serde allows",
            "/fhir/Basic",
            nested(5000),
            400,
        ),
        ("body over 10 MiB", "/fhir/Observation", big, 413),
        ("bundle over 1,000 entries", "/fhir", many.to_string(), 400),
        (
            "unknown element",
            "/fhir/Observation",
            obs(r#", "colour": "red""#),
            400,
        ),
        (
            "reference into another record",
            "/fhir/Observation",
            obs(&format!(
                r#", "performer": [{{"reference": "Patient/{other}"}}]"#
            )),
            422,
        ),
        (
            "SQL in a value",
            "/fhir/Observation",
            obs(
                r#", "note": [{"text": "'); DROP TABLE resources; --"}], "valueString": "\u0000"}"#,
            ),
            400,
        ),
        (
            "definitional resource",
            "/fhir/StructureDefinition",
            r#"{"resourceType": "StructureDefinition"}"#.into(),
            422,
        ),
    ];
    for (what, path, body, status) in cases {
        let r = t.send("POST", path, &token, Some(body.into_bytes()), &[]);
        assert_eq!(r.status, status, "{what}: {}", r.json);
        assert_eq!(r.json["resourceType"], "OperationOutcome", "{what}");
        assert_eq!(
            t.get("/fhir/metadata", "").status,
            200,
            "{what}: the server must stay up"
        );
    }
    let r = t.send(
        "PUT",
        "/fhir/Observation/bad$id",
        &token,
        Some(obs(r#", "id": "bad$id""#).into_bytes()),
        &[],
    );
    assert_eq!(r.status, 400, "bad id: {}", r.json);
    let r = t.get("/fhir/Observation?subject=Patient/x'%20OR%201=1--", &token);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["total"], 0);
    for rtype in ["Observation", "Basic", "Condition"] {
        let r = t.get(&format!("/fhir/{rtype}?_summary=count"), &t.system_token);
        assert_eq!(
            r.json["total"], 0,
            "nothing of type {rtype} may have been stored"
        );
    }
}

#[test]
fn error_messages_never_echo_health_data() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    let secret = "Zebedee-Quartermaine-private-note";
    let body = format!(
        r#"{{"resourceType": "Observation", "status": "{secret}", "code": {{"text": "{secret}"}}, "subject": {{"reference": "Patient/{p}"}}, "{secret}": 1}}"#
    );
    let r = t.send(
        "POST",
        "/fhir/Observation",
        &token,
        Some(body.into_bytes()),
        &[],
    );
    assert_eq!(r.status, 400);
    let text = String::from_utf8_lossy(&r.bytes);
    assert!(
        text.contains("Observation.status"),
        "the path is named: {text}"
    );
    // The unknown element's name is the one thing from the request a path must repeat.
    let without_paths = text.replace(&format!("Observation.{secret}"), "");
    assert!(!without_paths.contains(secret), "the value leaked: {text}");
}
