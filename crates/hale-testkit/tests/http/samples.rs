//! Wearable samples through FHIR: a phone app's batch of Observations lands in the time-series
//! store through `Observation/$add-samples`, and each metric's day reads and searches as an
//! Observation (`Observation/daily-[LOINC]-[day]`) beside the stored ones.

use hale_testkit::TestApp;
use serde_json::{Value, json};

fn heart_rate(at: &str, bpm: f64) -> Value {
    json!({"resource": {"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "effectiveDateTime": at, "device": {"display": "Pulse watch"},
        "valueQuantity": {"value": bpm, "system": "http://unitsofmeasure.org", "code": "/min"}}})
}

fn steps(from: &str, to: &str, count: f64) -> Value {
    json!({"resource": {"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "55423-8"}]},
        "effectivePeriod": {"start": from, "end": to},
        "valueQuantity": {"value": count, "code": "{steps}"}}})
}

fn batch(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "batch", "entry": entries})
}

fn parameter(p: &Value, name: &str) -> Value {
    p["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .map(|x| x["valueInteger"].clone())
        .unwrap_or(Value::Null)
}

fn statistic(o: &Value, code: &str) -> Value {
    o["component"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"]["coding"][0]["code"] == code)
        .map(|c| {
            c.get("valueQuantity")
                .map_or(c["valueInteger"].clone(), |q| q["value"].clone())
        })
        .unwrap_or(Value::Null)
}

/// A person with two days of heart rate and one of steps, sent as a phone app would.
fn person_with_samples(app: &TestApp) -> (String, String) {
    let (record, token) = app.new_person("Sample Person");
    let r = app.post(
        "/fhir/Observation/$add-samples",
        &token,
        &batch(vec![
            heart_rate("2024-03-01T08:00:00Z", 60.0),
            heart_rate("2024-03-01T08:01:00Z", 70.0),
            heart_rate("2024-03-01T21:00:00Z", 80.0),
            heart_rate("2024-03-02T07:00:00+01:00", 65.0),
            steps("2024-03-01T09:00:00Z", "2024-03-01T10:00:00Z", 1000.0),
            steps("2024-03-01T12:00:00Z", "2024-03-01T12:30:00Z", 500.0),
            heart_rate("2024-03-01T08:00:00Z", 60.0),
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(parameter(&r.json, "received"), 7);
    assert_eq!(parameter(&r.json, "added"), 6);
    assert_eq!(parameter(&r.json, "duplicates"), 1);
    (record, token)
}

#[test]
fn a_day_of_samples_reads_as_an_observation_with_its_statistics() {
    let app = TestApp::spawn();
    let (record, token) = person_with_samples(&app);
    let r = app.get("/fhir/Observation/daily-8867-4-2024-03-01", &token);
    assert_eq!(r.status, 200, "{}", r.json);
    let o = &r.json;
    assert_eq!(o["valueQuantity"]["value"], 70.0);
    assert_eq!(o["valueQuantity"]["code"], "/min");
    assert_eq!(statistic(o, "minimum"), 60.0);
    assert_eq!(statistic(o, "maximum"), 80.0);
    assert_eq!(statistic(o, "count"), 3);
    assert_eq!(o["subject"]["reference"], format!("Patient/{record}"));
    assert_eq!(o["effectivePeriod"]["start"], "2024-03-01T00:00:00.000Z");
    assert_eq!(o["category"][0]["coding"][0]["code"], "vital-signs");
    assert_eq!(r.header("etag").as_deref(), Some("W/\"3\""));
    // The morning reading in +01:00 falls on 2 March, UTC.
    let day2 = app.get("/fhir/Observation/daily-8867-4-2024-03-02", &token);
    assert_eq!(statistic(&day2.json, "count"), 1);
    // Steps add up: the day's figure is the total.
    let s = app.get("/fhir/Observation/daily-55423-8-2024-03-01", &token);
    assert_eq!(s.json["valueQuantity"]["value"], 1500.0);
    assert_eq!(statistic(&s.json, "sum"), 1500.0);
    assert_eq!(s.json["category"][0]["coding"][0]["code"], "activity");
    // A day without samples, a malformed id, and someone else's token find nothing.
    for path in [
        "/fhir/Observation/daily-8867-4-2024-03-05",
        "/fhir/Observation/daily-8867-4-2024-3-1",
        "/fhir/Observation/daily-9999-9-2024-03-01",
    ] {
        assert_eq!(app.get(path, &token).status, 404, "{path}");
    }
    let (_, stranger) = app.new_person("Someone Else");
    let theirs = app.get("/fhir/Observation/daily-8867-4-2024-03-01", &stranger);
    assert_eq!(theirs.status, 404);
}

#[test]
fn searches_find_daily_summaries_after_the_stored_observations_and_page_through_both() {
    let app = TestApp::spawn();
    let (record, token) = person_with_samples(&app);
    // A clinic's heart rate on 1 March, stored as a resource.
    let stored = app.post(
        "/fhir/Observation",
        &token,
        &json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": format!("Patient/{record}")},
            "effectiveDateTime": "2024-03-01T10:00:00Z",
            "valueQuantity": {"value": 72, "code": "/min", "system": "http://unitsofmeasure.org"}}),
    );
    assert_eq!(stored.status, 201, "{}", stored.json);
    let stored_id = stored.json["id"].as_str().unwrap().to_owned();
    let ids = app.search_ids("/fhir/Observation?code=http://loinc.org|8867-4", &token);
    let mut expected = vec![
        "daily-8867-4-2024-03-01".to_owned(),
        "daily-8867-4-2024-03-02".to_owned(),
        stored_id.clone(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        app.search_ids("/fhir/Observation?code=8867-4&date=2024-03-02", &token),
        ["daily-8867-4-2024-03-02"]
    );
    assert_eq!(
        app.search_ids(
            &format!("/fhir/Observation?patient={record}&category=activity&date=ge2024-03-01"),
            &token
        ),
        ["daily-55423-8-2024-03-01"]
    );
    // A parameter summaries do not carry finds only stored Observations.
    assert_eq!(
        app.search_ids("/fhir/Observation?code=8867-4&value-quantity=gt71", &token),
        [stored_id.as_str()]
    );
    // One at a time: the stored one first, then the days; the total counts all three.
    let mut seen = Vec::new();
    let mut next = Some(format!(
        "{}/fhir/Observation?code=8867-4&_count=1",
        app.base
    ));
    while let Some(url) = next {
        let path = url.strip_prefix(&app.base).unwrap().to_owned();
        let page = app.get(&path, &token);
        assert_eq!(page.json["total"], 3, "{}", page.json);
        for e in page.json["entry"].as_array().into_iter().flatten() {
            seen.push(e["resource"]["id"].as_str().unwrap().to_owned());
        }
        next = page.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen,
        [
            stored_id.as_str(),
            "daily-8867-4-2024-03-01",
            "daily-8867-4-2024-03-02"
        ]
    );
}

#[test]
fn a_dense_day_carries_its_minutes_as_sampled_data() {
    let app = TestApp::spawn();
    let (_, token) = app.new_person("Dense Day");
    let minutes: Vec<Value> = (0..60)
        .map(|m| {
            heart_rate(
                &format!("2024-03-01T06:{m:02}:00Z"),
                60.0 + f64::from(m % 5),
            )
        })
        .collect();
    let r = app.post("/fhir/Observation/$add-samples", &token, &batch(minutes));
    assert_eq!(parameter(&r.json, "added"), 60);
    let o = app
        .get("/fhir/Observation/daily-8867-4-2024-03-01", &token)
        .json;
    let sampled = o["component"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| c.get("valueSampledData"))
        .expect("a dense day has its minutes");
    assert_eq!(sampled["period"], 60000);
    let data: Vec<&str> = sampled["data"].as_str().unwrap().split(' ').collect();
    assert_eq!(data.len(), 1440);
    assert_eq!(data[359], "E");
    assert_eq!(&data[360..365], ["60", "61", "62", "63", "64"]);
    assert_eq!(data[420], "E");
}

#[test]
fn add_samples_refuses_what_is_not_observations_and_tokens_without_a_record() {
    let app = TestApp::spawn();
    let (_, token) = app.new_person("Refusals");
    let r = app.post(
        "/fhir/Observation/$add-samples",
        &token,
        &json!({"resourceType": "Patient"}),
    );
    assert_eq!(r.status, 400);
    let r = app.post(
        "/fhir/Observation/$add-samples",
        &app.system_token,
        &batch(vec![heart_rate("2024-03-01T08:00:00Z", 60.0)]),
    );
    assert_eq!(r.status, 400);
    let read_only = app.token(&app.new_person("Reader").0, "patient/*.rs");
    let r = app.post(
        "/fhir/Observation/$add-samples",
        &read_only,
        &batch(vec![heart_rate("2024-03-01T08:00:00Z", 60.0)]),
    );
    assert_eq!(r.status, 403, "{}", r.json);
}
