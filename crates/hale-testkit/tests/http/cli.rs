//! The operator command line, run as a real process against the same data as a server.

use hale_testkit::TestApp;

#[test]
fn admin_commands_print_just_the_id_or_the_token_and_work_beside_a_running_server() {
    let t = TestApp::spawn();
    let data = t.config.data_dir.to_str().unwrap().to_owned();
    let record = crate::ok(&[
        "admin",
        "person",
        "create",
        "--data-dir",
        &data,
        "--name",
        "Cli Person",
        "--nhs-number",
        "943 476 5919",
    ]);
    assert!(hale_server::RecordId::parse(&record).is_ok(), "{record}");
    let token = crate::ok(&[
        "admin",
        "token",
        "issue",
        "--data-dir",
        &data,
        "--record",
        &record,
        "--scope",
        "patient/*.cruds",
    ]);
    assert!(!token.contains(char::is_whitespace));
    // The running server accepts the CLI's token and sees the CLI's record.
    let r = t.get(&format!("/fhir/Patient/{record}"), &token);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["identifier"][0]["value"], "9434765919");
    // And that token reaches no other record.
    let (other, _) = t.new_person("Someone Else");
    assert_eq!(t.get(&format!("/fhir/Patient/{other}"), &token).status, 404);
    let system = crate::ok(&[
        "admin",
        "token",
        "issue",
        "--data-dir",
        &data,
        "--system",
        "--scope",
        "system/*.cruds",
        "--ttl",
        "60",
    ]);
    assert_eq!(
        t.get(&format!("/fhir/Patient/{other}"), &system).status,
        200
    );
}

#[test]
fn bad_arguments_fail_clearly() {
    let t = TestApp::spawn();
    let data = t.config.data_dir.to_str().unwrap().to_owned();
    let o = crate::run(&[
        "admin",
        "person",
        "create",
        "--data-dir",
        &data,
        "--name",
        "X",
        "--nhs-number",
        "9434765918",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("check digit"));
    let o = crate::run(&[
        "admin",
        "token",
        "issue",
        "--data-dir",
        &data,
        "--system",
        "--scope",
        "patient/*.read",
    ]);
    assert!(!o.status.success());
    let o = crate::run(&[
        "admin",
        "person",
        "create",
        "--data-dir",
        &data,
        "--database",
        "mysql://x/y",
        "--name",
        "X",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unsupported database URL scheme"));
}

#[test]
fn a_missing_key_file_is_explained_and_no_new_database_is_made() {
    let t = TestApp::spawn();
    let data = t.config.data_dir.clone();
    let elsewhere = tempfile::tempdir().unwrap();
    let o = crate::run(&[
        "admin",
        "person",
        "create",
        "--data-dir",
        data.to_str().unwrap(),
        "--key-file",
        elsewhere.path().join("nope.key").to_str().unwrap(),
        "--name",
        "X",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be read without it"));
    assert!(!elsewhere.path().join("nope.key").exists());
}

#[test]
fn an_operator_exports_then_erases_a_record_for_a_person_who_asked_by_letter() {
    let t = TestApp::spawn();
    let data = t.config.data_dir.to_str().unwrap().to_owned();
    let (record, token) = t.new_person("Letter Writer");
    let weight = t.post(
        "/fhir/Observation",
        &token,
        &serde_json::json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "Body weight"},
            "subject": {"reference": format!("Patient/{record}")},
            "valueQuantity": {"value": 71.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}),
    );
    assert_eq!(weight.status, 201);
    let added = t.post(
        "/fhir/Observation/$add-samples",
        &token,
        &serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "effectiveDateTime": "2024-03-01T08:00:00Z", "device": {"display": "Pulse watch"},
                "valueQuantity": {"value": 61, "system": "http://unitsofmeasure.org", "code": "/min"}}}]}),
    );
    assert_eq!(added.status, 200);

    let out = t.config.data_dir.join("request-1");
    let out_s = out.to_str().unwrap().to_owned();
    let args = |cmd: &str, extra: &[&str]| {
        let mut a = vec![
            "admin",
            "person",
            cmd,
            "--data-dir",
            &data,
            "--record",
            &record,
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>()
    };
    let run = |a: Vec<String>| crate::run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args("export", &["--out", &out_s]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("record.json")).unwrap()).unwrap();
    assert_eq!(bundle["type"], "collection");
    let kinds: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"Patient") && kinds.contains(&"Observation"));
    let csv = std::fs::read_to_string(out.join("readings.csv")).unwrap();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "metric,unit,source,start,end,value",
            "heart_rate,/min,Pulse watch,2024-03-01T08:00:00.000Z,2024-03-01T08:00:00.000Z,61",
        ]
    );
    // The folder is never written over.
    assert!(!run(args("export", &["--out", &out_s])).status.success());

    // Erasing needs --yes; then the record is gone, and the running server agrees.
    let o = run(args("erase", &[]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));
    assert_eq!(
        t.get(&format!("/fhir/Patient/{record}"), &t.system_token)
            .status,
        200
    );
    let o = run(args("erase", &["--yes"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        t.get(&format!("/fhir/Patient/{record}"), &t.system_token)
            .status,
        404
    );
    let weight_id = weight.json["id"].as_str().unwrap();
    assert_eq!(
        t.get(&format!("/fhir/Observation/{weight_id}"), &t.system_token)
            .status,
        404
    );
    // A second time, there is nothing to erase or export.
    assert!(!run(args("erase", &["--yes"])).status.success());
    let again = t.config.data_dir.join("request-2");
    assert!(
        !run(args("export", &["--out", again.to_str().unwrap()]))
            .status
            .success()
    );
    assert!(!again.exists(), "no half-written folder is left");
}
