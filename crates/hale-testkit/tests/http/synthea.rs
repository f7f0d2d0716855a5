//! The Synthea transaction bundles: each loads atomically into a new record, references
//! rewritten; one bad entry loads nothing; searches over the data give the right answers.

use std::collections::{BTreeSet, HashMap};

use hale_testkit::TestApp;
use serde_json::Value;

fn bundles() -> Vec<(String, Value)> {
    let dir = hale_testkit::data_dir().join("synthea-r4-bundles");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A loaded bundle: the record, and each source fullUrl's assigned `Type/id`.
struct Loaded {
    record: String,
    ids: HashMap<String, String>,
    source: Value,
}

fn load_all(t: &TestApp) -> Vec<Loaded> {
    bundles()
        .into_iter()
        .map(|(name, b)| {
            let r = t.post("/fhir", &t.system_token, &b);
            assert_eq!(r.status, 200, "{name}: {}", r.json);
            let entries = r.json["entry"].as_array().unwrap();
            let source = b["entry"].as_array().unwrap();
            assert_eq!(entries.len(), source.len(), "{name}");
            let mut ids = HashMap::new();
            for (e, s) in entries.iter().zip(source) {
                assert_eq!(e["response"]["status"], "201 Created", "{name}");
                let loc = e["response"]["location"].as_str().unwrap();
                let mut parts = loc.split('/');
                ids.insert(
                    s["fullUrl"].as_str().unwrap().to_owned(),
                    format!("{}/{}", parts.next().unwrap(), parts.next().unwrap()),
                );
            }
            let patient = ids.values().find(|v| v.starts_with("Patient/")).unwrap();
            Loaded {
                record: patient["Patient/".len()..].to_owned(),
                ids,
                source: b,
            }
        })
        .collect()
}

fn resources<'a>(l: &'a Loaded, rtype: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
    l.source["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |e| e["resource"]["resourceType"] == rtype)
        .map(|e| (e["fullUrl"].as_str().unwrap(), &e["resource"]))
}

fn has_code(r: &Value, system: &str, code: &str) -> bool {
    r["code"]["coding"]
        .as_array()
        .is_some_and(|c| c.iter().any(|x| x["system"] == system && x["code"] == code))
}

#[test]
fn each_bundle_loads_atomically_into_its_own_record() {
    let t = TestApp::spawn();
    let loaded = load_all(&t);
    assert_eq!(loaded.len(), 12);
    let mut total = 0;
    for l in &loaded {
        let token = t.token(&l.record, "patient/*.rs");
        let everything = t.get(&format!("/fhir/Patient/{}/$everything", l.record), &token);
        let n = l.source["entry"].as_array().unwrap().len();
        assert_eq!(everything.json["total"].as_u64().unwrap() as usize, n);
        // urn:uuid references were rewritten to the assigned ids.
        assert!(!String::from_utf8_lossy(&everything.bytes).contains("urn:uuid:"));
        total += n;
    }
    assert_eq!(total, 946);
}

#[test]
fn a_bundle_with_one_invalid_entry_loads_nothing() {
    let t = TestApp::spawn();
    let (_, mut b) = bundles().remove(0);
    let entries = b["entry"].as_array_mut().unwrap();
    let last = entries.len() - 1;
    entries[last]["resource"]["status"] = Value::String("not-a-status".into());
    let r = t.post("/fhir", &t.system_token, &b);
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(
        r.json["issue"][0]["expression"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("Bundle.entry[{last}]"))
    );
    for rtype in ["Patient", "Observation", "Encounter", "Organization"] {
        assert_eq!(
            t.get(&format!("/fhir/{rtype}?_summary=count"), &t.system_token)
                .json["total"],
            0,
            "{rtype}"
        );
    }
}

#[test]
fn searches_over_synthea_data_match_an_independent_count() {
    let t = TestApp::spawn();
    let loaded = load_all(&t);
    let loinc = "http://loinc.org";
    let mut all_heights = BTreeSet::new();
    for l in &loaded {
        let token = t.token(&l.record, "patient/*.rs");
        // token: body height observations, by id.
        let expected: BTreeSet<String> = resources(l, "Observation")
            .filter(|(_, r)| has_code(r, loinc, "8302-6"))
            .map(|(full, _)| l.ids[full]["Observation/".len()..].to_owned())
            .collect();
        let got: BTreeSet<String> = t
            .search_ids(
                "/fhir/Observation?code=http://loinc.org|8302-6&_count=1000",
                &token,
            )
            .into_iter()
            .collect();
        assert_eq!(got, expected);
        all_heights.extend(expected);
        // date range: observations effective in 2015 or 2016.
        let expected = resources(l, "Observation")
            .filter(|(_, r)| {
                r["effectiveDateTime"]
                    .as_str()
                    .is_some_and(|d| ("2015".."2017").contains(&d))
            })
            .count();
        let r = t.get(
            "/fhir/Observation?date=ge2015-01-01&date=lt2017-01-01&_summary=count",
            &token,
        );
        assert_eq!(
            r.json["total"].as_u64().unwrap() as usize,
            expected,
            "date range in record {}",
            l.record
        );
        // _include: the encounters of the matched observations come along, once each.
        let r = t.get("/fhir/Observation?code=http://loinc.org|8302-6&_include=Observation:encounter&_count=1000", &token);
        let included: BTreeSet<&str> = r.json["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter(|x| x["search"]["mode"] == "include")
                    .map(|x| x["resource"]["id"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let expected: BTreeSet<String> = resources(l, "Observation")
            .filter(|(_, r)| has_code(r, loinc, "8302-6"))
            .filter_map(|(_, r)| r["encounter"]["reference"].as_str())
            .map(|u| l.ids[u]["Encounter/".len()..].to_owned())
            .collect();
        assert_eq!(
            included,
            expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
        );
        // _revinclude: encounters with the observations that point at them.
        let r = t.get(
            "/fhir/Encounter?_revinclude=Observation:encounter&_count=1000",
            &token,
        );
        let revincluded = r.json["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["search"]["mode"] == "include")
            .count();
        let expected = resources(l, "Observation")
            .filter(|(_, r)| r["encounter"]["reference"].is_string())
            .count();
        assert_eq!(revincluded, expected);
    }
    // Chained, with a system token naming each person in turn: observations of female
    // patients. Across records without naming anyone, a chain or a code has no index to
    // serve it, so it is refused with what to do instead.
    let female: usize = loaded
        .iter()
        .filter(|l| resources(l, "Patient").any(|(_, p)| p["gender"] == "female"))
        .map(|l| resources(l, "Observation").count())
        .sum();
    let mut counted = 0;
    let mut got = BTreeSet::new();
    for l in &loaded {
        let r = t.get(
            &format!(
                "/fhir/Observation?patient={}&subject:Patient.gender=female&_summary=count",
                l.record
            ),
            &t.system_token,
        );
        counted += r.json["total"].as_u64().unwrap() as usize;
        got.extend(t.search_ids(
            &format!(
                "/fhir/Observation?subject=Patient/{}&code=http://loinc.org|8302-6&_count=1000",
                l.record
            ),
            &t.system_token,
        ));
    }
    assert_eq!(counted, female);
    assert!(female > 0);
    assert_eq!(got, all_heights);
    for unnamed in [
        "/fhir/Observation?subject:Patient.gender=female&_summary=count",
        "/fhir/Observation?code=http://loinc.org|8302-6",
    ] {
        let r = t.get(unnamed, &t.system_token);
        assert_eq!(r.status, 400, "{unnamed}: {}", r.json);
        assert_eq!(r.json["issue"][0]["code"], "too-costly");
        assert!(
            r.json["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("patient=Patient/ID"),
            "{}",
            r.json
        );
    }
    // A person is found across records by an identifier, as a system finds someone by
    // NHS number.
    for l in &loaded {
        let (_, patient) = resources(l, "Patient").next().unwrap();
        let ssn = patient["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["system"] == "http://hl7.org/fhir/sid/us-ssn")
            .unwrap();
        let found = t.search_ids(
            &format!(
                "/fhir/Patient?identifier=http://hl7.org/fhir/sid/us-ssn|{}",
                ssn["value"].as_str().unwrap()
            ),
            &t.system_token,
        );
        assert_eq!(found, vec![l.record.clone()]);
    }
}
