//! The FHIR REST interactions, as a client sees them.

use hale_testkit::TestApp;
use serde_json::{Value, json};

fn weight(patient: &str, kg: &str) -> Value {
    serde_json::from_str(&format!(
        r#"{{"resourceType": "Observation", "status": "final",
            "code": {{"coding": [{{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}}]}},
            "subject": {{"reference": "Patient/{patient}"}}, "effectiveDateTime": "2024-05-01",
            "valueQuantity": {{"value": {kg}, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}}}"#
    ))
    .unwrap()
}

#[test]
fn requests_without_a_valid_token_are_refused_with_an_operation_outcome() {
    let t = TestApp::spawn();
    for token in ["", "hale.bogus.token", "not-even-close"] {
        let r = t.get("/fhir/Patient", token);
        assert_eq!(r.status, 401);
        assert_eq!(r.json["resourceType"], "OperationOutcome");
        assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
    }
    assert_eq!(
        t.get("/fhir/metadata", "").status,
        200,
        "the CapabilityStatement is public"
    );
}

#[test]
fn create_read_update_and_delete_keep_every_version() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    let created = t.post("/fhir/Observation", &token, &weight(&p, "70.50"));
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert_eq!(created.header("etag").as_deref(), Some("W/\"1\""));
    assert!(
        created
            .header("location")
            .unwrap()
            .ends_with(&format!("/fhir/Observation/{id}/_history/1"))
    );
    assert!(created.header("last-modified").unwrap().ends_with("GMT"));
    assert!(
        String::from_utf8_lossy(&created.bytes).contains("70.50"),
        "decimals keep their precision"
    );

    let mut body = created.json.clone();
    body["valueQuantity"]["value"] = json!(71);
    let stale = t.send(
        "PUT",
        &format!("/fhir/Observation/{id}"),
        &token,
        Some(serde_json::to_vec(&body).unwrap()),
        &[("if-match", "W/\"7\"")],
    );
    assert_eq!(stale.status, 412);
    let updated = t.send(
        "PUT",
        &format!("/fhir/Observation/{id}"),
        &token,
        Some(serde_json::to_vec(&body).unwrap()),
        &[("if-match", "W/\"1\"")],
    );
    assert_eq!(updated.status, 200, "{}", updated.json);
    assert_eq!(updated.json["meta"]["versionId"], "2");

    let v1 = t.get(&format!("/fhir/Observation/{id}/_history/1"), &token);
    assert_eq!(
        v1.json["valueQuantity"]["value"].to_string(),
        "70.50",
        "the old version, exactly as written"
    );
    let history = t.get(&format!("/fhir/Observation/{id}/_history"), &token);
    assert_eq!(history.json["type"], "history");
    assert_eq!(history.json["total"], 2);

    assert_eq!(
        t.send(
            "DELETE",
            &format!("/fhir/Observation/{id}"),
            &token,
            None,
            &[]
        )
        .status,
        204
    );
    assert_eq!(
        t.get(&format!("/fhir/Observation/{id}"), &token).status,
        410
    );
    assert_eq!(
        t.get(&format!("/fhir/Observation/{id}/_history"), &token)
            .json["total"],
        3
    );
}

#[test]
fn update_creates_with_the_clients_id_and_patch_applies_json_patch() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    let mut body = weight(&p, "60");
    body["id"] = json!("my-weight-1");
    let r = t.put("/fhir/Observation/my-weight-1", &token, &body);
    assert_eq!(r.status, 201, "{}", r.json);
    let patch = json!([{"op": "replace", "path": "/valueQuantity/value", "value": 61.5}]);
    let r = t.send(
        "PATCH",
        "/fhir/Observation/my-weight-1",
        &token,
        Some(serde_json::to_vec(&patch).unwrap()),
        &[("content-type", "application/json-patch+json")],
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        t.get("/fhir/Observation/my-weight-1", &token).json["valueQuantity"]["value"],
        json!(61.5)
    );
    let bad = json!([{"op": "replace", "path": "/id", "value": "other"}]);
    let r = t.send(
        "PATCH",
        "/fhir/Observation/my-weight-1",
        &token,
        Some(serde_json::to_vec(&bad).unwrap()),
        &[],
    );
    assert_eq!(r.status, 422);
}

#[test]
fn conditional_create_returns_the_existing_match() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    let mut body = weight(&p, "60");
    body["identifier"] = json!([{"system": "https://example.org/ids", "value": "w-1"}]);
    let bytes = serde_json::to_vec(&body).unwrap();
    let cond = [("if-none-exist", "identifier=https://example.org/ids|w-1")];
    let first = t.send(
        "POST",
        "/fhir/Observation",
        &token,
        Some(bytes.clone()),
        &cond,
    );
    assert_eq!(first.status, 201);
    let second = t.send("POST", "/fhir/Observation", &token, Some(bytes), &cond);
    assert_eq!(second.status, 200);
    assert_eq!(second.json["id"], first.json["id"]);
    assert_eq!(
        t.search_ids("/fhir/Observation?identifier=w-1", &token)
            .len(),
        1
    );
}

#[test]
fn another_records_resource_answers_exactly_as_a_missing_one() {
    let t = TestApp::spawn();
    let (a, token_a) = t.new_person("Ada Example");
    let (_b, token_b) = t.new_person("Ben Example");
    let id = t
        .post("/fhir/Observation", &token_a, &weight(&a, "60"))
        .json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Ask for A's resource with B's token, and for a made-up id with the same length.
    let theirs = t.get(&format!("/fhir/Observation/{id}"), &token_b);
    let missing_id = "0".repeat(id.len());
    let missing = t.get(&format!("/fhir/Observation/{missing_id}"), &token_b);
    assert_eq!(theirs.status, 404);
    assert_eq!(missing.status, 404);
    let strip =
        |r: &hale_testkit::Resp, id: &str| String::from_utf8_lossy(&r.bytes).replace(id, "ID");
    assert_eq!(
        strip(&theirs, &id),
        strip(&missing, &missing_id),
        "the bodies must not tell the two apart"
    );
    assert!(t.search_ids("/fhir/Observation", &token_b).is_empty());
    assert_eq!(
        t.get(&format!("/fhir/Patient/{a}/$everything"), &token_b)
            .status,
        404
    );
    assert_eq!(
        t.get(&format!("/fhir/Observation/{id}/_history"), &token_b)
            .status,
        404
    );
    // And B cannot write a reference into A's record.
    let r = t.post("/fhir/Observation", &token_b, &weight(&a, "60"));
    assert_eq!(r.status, 422, "{}", r.json);
}

#[test]
fn scopes_limit_what_a_token_may_do() {
    let t = TestApp::spawn();
    let (p, _) = t.new_person("Ada Example");
    let read_only = t.token(&p, "patient/Observation.rs");
    assert_eq!(
        t.post("/fhir/Observation", &read_only, &weight(&p, "60"))
            .status,
        403
    );
    assert_eq!(t.get("/fhir/Observation", &read_only).status, 200);
    assert_eq!(t.get("/fhir/Condition", &read_only).status, 403);
}

#[test]
fn a_system_token_creates_records_and_writes_into_them() {
    let t = TestApp::spawn();
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Example"}],
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}]});
    let r = t.post("/fhir/Patient", &t.system_token, &patient);
    assert_eq!(r.status, 201, "{}", r.json);
    let pid = r.json["id"].as_str().unwrap().to_owned();
    let r = t.post("/fhir/Observation", &t.system_token, &weight(&pid, "80"));
    assert_eq!(r.status, 201, "{}", r.json);
    // The new record is the patient's, and a token for it sees the observation.
    let token = t.token(&pid, "patient/*.rs");
    assert_eq!(t.search_ids("/fhir/Observation", &token).len(), 1);
    // Without a patient to place it by, a system write is refused.
    let org = json!({"resourceType": "Organization", "name": "Example Surgery"});
    assert_eq!(
        t.post("/fhir/Organization", &t.system_token, &org).status,
        422
    );
}

#[test]
fn everything_returns_the_whole_record() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    t.post("/fhir/Observation", &token, &weight(&p, "60"));
    t.post("/fhir/Condition", &token, &json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{p}")}, "code": {"text": "Asthma"}}));
    let r = t.get(&format!("/fhir/Patient/{p}/$everything"), &token);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["total"], 3);
}

#[test]
fn search_pages_sorts_and_counts() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    for kg in ["60", "61", "62", "63", "64"] {
        assert_eq!(
            t.post("/fhir/Observation", &token, &weight(&p, kg)).status,
            201
        );
    }
    let r = t.get("/fhir/Observation?_count=2&_sort=-value-quantity", &token);
    assert_eq!(r.json["total"], 5);
    let values: Vec<Value> = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["valueQuantity"]["value"].clone())
        .collect();
    assert_eq!(values, vec![json!(64), json!(63)]);
    let next = r.json["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = next.split_once("/fhir").unwrap().1;
    let r2 = t.get(&format!("/fhir{path}"), &token);
    let values: Vec<Value> = r2.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["valueQuantity"]["value"].clone())
        .collect();
    assert_eq!(values, vec![json!(62), json!(61)]);
    let count = t.get("/fhir/Observation?_summary=count", &token);
    assert_eq!(count.json["total"], 5);
    assert!(count.json.get("entry").is_none());
    let elements = t.get("/fhir/Observation?_elements=status&_count=1", &token);
    let res = &elements.json["entry"][0]["resource"];
    assert!(res.get("valueQuantity").is_none() && res["status"] == "final");
    let tags = res["meta"]["tag"].as_array().unwrap();
    assert!(tags.iter().any(|t| t["code"] == "SUBSETTED"), "{tags:?}");
}

#[test]
fn unknown_search_parameters_are_ignored_unless_strict_and_unindexed_ones_refused() {
    let t = TestApp::spawn();
    let (_p, token) = t.new_person("Ada Example");
    assert_eq!(t.get("/fhir/Observation?colour=red", &token).status, 200);
    let strict = t.send(
        "GET",
        "/fhir/Observation?colour=red",
        &token,
        None,
        &[("prefer", "handling=strict")],
    );
    assert_eq!(strict.status, 400);
    assert_eq!(strict.json["resourceType"], "OperationOutcome");
    let r = t.get("/fhir/Observation?code-value-quantity=x$1", &token);
    assert_eq!(
        r.status, 400,
        "a composite parameter no index serves is refused, not scanned"
    );
}

#[test]
fn the_capability_statement_lists_what_is_implemented() {
    let t = TestApp::spawn();
    let r = t.get("/fhir/metadata", "");
    assert_eq!(r.json["fhirVersion"], "4.0.1");
    let resources = r.json["rest"][0]["resource"].as_array().unwrap();
    let obs = resources
        .iter()
        .find(|x| x["type"] == "Observation")
        .unwrap();
    assert!(
        obs["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "value-quantity" && p["type"] == "quantity")
    );
    assert!(
        !resources.iter().any(|x| x["type"] == "StructureDefinition"),
        "definitional types are not offered"
    );
    assert!(resources.len() > 100);
}

#[test]
fn validate_checks_without_storing() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    let ok = t.post("/fhir/Observation/$validate", &token, &weight(&p, "60"));
    assert_eq!(ok.status, 200, "{}", ok.json);
    let mut bad = weight(&p, "60");
    bad["status"] = json!("nearly");
    let r = t.post("/fhir/Observation/$validate", &token, &bad);
    assert_eq!(r.status, 400);
    assert_eq!(r.json["issue"][0]["expression"][0], "Observation.status");
    assert!(t.search_ids("/fhir/Observation", &token).is_empty());
}

#[test]
fn the_same_api_runs_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres() else {
        eprintln!("skipped: HALE_TEST_POSTGRES_URL is not set");
        return;
    };
    let (p, token) = t.new_person("Ada Example");
    let created = t.post("/fhir/Observation", &token, &weight(&p, "70.50"));
    assert_eq!(created.status, 201, "{}", created.json);
    assert!(String::from_utf8_lossy(&created.bytes).contains("70.50"));
    let id = created.json["id"].as_str().unwrap();
    let read = t.get(&format!("/fhir/Observation/{id}"), &token);
    assert_eq!(read.status, 200, "{}", read.json);
    assert_eq!(
        t.get(&format!("/fhir/Observation/{id}/_history/1"), &token)
            .status,
        200
    );
    assert_eq!(
        t.search_ids(
            "/fhir/Observation?code=http://loinc.org|29463-7&date=2024-05",
            &token
        )
        .len(),
        1
    );
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(
            hale_testkit::data_dir()
                .join("synthea-r4-bundles/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let r = t.post("/fhir", &t.system_token, &bundle);
    assert_eq!(r.status, 200, "{}", r.json);
}

#[test]
fn conditional_update_updates_the_one_match_or_creates() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    let mut body = weight(&p, "60");
    body["identifier"] = json!([{"system": "https://example.org/ids", "value": "cu-1"}]);
    let path = "/fhir/Observation?identifier=https://example.org/ids|cu-1";
    let first = t.put(path, &token, &body);
    assert_eq!(first.status, 201, "{}", first.json);
    body["valueQuantity"]["value"] = json!(61);
    let second = t.put(path, &token, &body);
    assert_eq!(second.status, 200, "{}", second.json);
    assert_eq!(second.json["id"], first.json["id"]);
    assert_eq!(second.json["meta"]["versionId"], "2");
    // Two matches: refused.
    let mut other = body.clone();
    other.as_object_mut().unwrap().remove("id");
    assert_eq!(t.post("/fhir/Observation", &token, &other).status, 201);
    assert_eq!(t.put(path, &token, &body).status, 412);
}

#[test]
fn a_batch_runs_each_entry_on_its_own() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    let mut bad = weight(&p, "60");
    bad["status"] = json!("nearly");
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "Observation"}, "resource": weight(&p, "60")},
        {"request": {"method": "POST", "url": "Observation"}, "resource": bad},
        {"request": {"method": "GET", "url": format!("Patient/{p}")}},
        {"request": {"method": "GET", "url": "Observation?code=29463-7"}}]});
    let r = t.post("/fhir", &token, &batch);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["type"], "batch-response");
    let statuses: Vec<&str> = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["201 Created", "400 Bad Request", "200 OK", "200 OK"]
    );
    assert_eq!(
        r.json["entry"][1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(r.json["entry"][2]["resource"]["id"], p.as_str());
    assert_eq!(r.json["entry"][3]["resource"]["total"], 1);
}

#[test]
fn type_history_last_updated_and_logical_references_are_searchable() {
    let t = TestApp::spawn();
    let (p, token) = t.new_person("Ada Example");
    let mut body = weight(&p, "60");
    body["performer"] = json!([{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A12345"}}]);
    assert_eq!(t.post("/fhir/Observation", &token, &body).status, 201);
    assert_eq!(
        t.post("/fhir/Observation", &token, &weight(&p, "61"))
            .status,
        201
    );
    let h = t.get("/fhir/Observation/_history", &token);
    assert_eq!(h.json["total"], 2);
    let found = t.get("/fhir/Observation?performer:identifier=https://fhir.nhs.uk/Id/ods-organization-code|A12345", &token);
    assert_eq!(found.json["total"], 1);
    let today = &hale_fhir::date::format_instant(hale_fhir::date::now_millis())[..10];
    assert_eq!(
        t.get(&format!("/fhir/Observation?_lastUpdated=ge{today}"), &token)
            .json["total"],
        2
    );
    assert_eq!(
        t.get("/fhir/Observation?_lastUpdated=lt2000-01-01", &token)
            .json["total"],
        0
    );
    let none = t.get("/fhir/Observation?_total=none", &token);
    assert!(none.json.get("total").is_none());
}

#[test]
fn a_search_across_every_record_that_no_index_serves_is_refused() {
    let t = TestApp::spawn();
    let (_p, token) = t.new_person("Ada Example");
    // Within a record, any parameter.
    assert_eq!(t.get("/fhir/Patient?family=example", &token).status, 200);
    // Across records, only what a cross-record index serves.
    let r = t.get("/fhir/Patient?family=example", &t.system_token);
    assert_eq!(r.status, 400);
    assert_eq!(r.json["issue"][0]["code"], "too-costly");
    assert_eq!(
        t.get("/fhir/Patient?family=example&identifier=x", &t.system_token)
            .status,
        200
    );
}

/// What a health or care service wrote stays theirs: the person's token (or an app acting
/// for them) cannot change or delete it by any route, and the entry is unchanged; their own
/// entries and their own details they can change.
#[test]
fn a_services_entry_cannot_be_changed_or_deleted_through_the_persons_token() {
    let app = TestApp::spawn();
    let (record, token) = app.new_person("Service Entry");
    let from_service = app.post(
        "/fhir/Observation",
        &app.system_token,
        &weight(&record, "70.5"),
    );
    assert_eq!(from_service.status, 201);
    let id = from_service.json["id"].as_str().unwrap().to_owned();
    let path = format!("/fhir/Observation/{id}");
    let mut changed = from_service.json.clone();
    changed["valueQuantity"]["value"] = json!(60);
    let put = app.put(&path, &token, &changed);
    assert_eq!(put.status, 403, "{}", put.json);
    let patch = app.send(
        "PATCH",
        &path,
        &token,
        Some(br#"[{"op": "replace", "path": "/status", "value": "cancelled"}]"#.to_vec()),
        &[("content-type", "application/json-patch+json")],
    );
    assert_eq!(patch.status, 403, "{}", patch.json);
    assert_eq!(app.send("DELETE", &path, &token, None, &[]).status, 403);
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": format!("Observation/{id}")}}]});
    let tx = app.post("/fhir", &token, &bundle);
    assert_eq!(tx.status, 403, "{}", tx.json);
    let now = app.get(&path, &token);
    assert_eq!(now.json["meta"]["versionId"], "1");
    assert_eq!(now.json["valueQuantity"]["value"], 70.5);
    // The person's own entry, and their own details, are theirs to change.
    let own = app.post("/fhir/Observation", &token, &weight(&record, "71"));
    let mut own_changed = own.json.clone();
    own_changed["valueQuantity"]["value"] = json!(71.5);
    let own_path = format!("/fhir/Observation/{}", own.json["id"].as_str().unwrap());
    assert_eq!(app.put(&own_path, &token, &own_changed).status, 200);
    let mut me = app.get(&format!("/fhir/Patient/{record}"), &token).json;
    me["telecom"] = json!([{"system": "phone", "value": "01632 960000"}]);
    assert_eq!(
        app.put(&format!("/fhir/Patient/{record}"), &token, &me)
            .status,
        200
    );
}
