//! `hale import apple-health`: counts, repeat imports, and an import killed half way and run
//! again giving exactly what an uninterrupted one gives.

use std::io::BufWriter;

use hale_core::{Actor, RecordId, RequestContext, Scopes};
use hale_import::synthetic::{Options, write_export};

fn operator() -> RequestContext {
    RequestContext::operator(
        Actor::System {
            scopes: Scopes::parse("system/*.cruds").unwrap(),
            subject: "test".into(),
        },
        "test",
    )
}

/// (sample count, daily heart-rate summaries) of a record: what a person would see.
fn contents(data: &std::path::Path, record: &str) -> (i64, String) {
    let app = hale_server::open_app(&hale_server::Config::for_data_dir(data.to_owned())).unwrap();
    let r = RecordId::parse(record).unwrap();
    let days = app
        .sample_buckets(&operator(), &r, "heart_rate", 0, i64::MAX / 2, 86_400_000)
        .unwrap();
    let steps = app
        .sample_buckets(&operator(), &r, "steps", 0, i64::MAX / 2, 86_400_000)
        .unwrap();
    let total: i64 = [
        "heart_rate",
        "steps",
        "body_weight",
        "systolic_bp",
        "diastolic_bp",
    ]
    .iter()
    .map(|m| {
        app.sample_buckets(&operator(), &r, m, 0, i64::MAX / 2, i64::MAX / 4)
            .unwrap()
            .iter()
            .map(|b| b.count)
            .sum::<i64>()
    })
    .sum();
    (total, format!("{days:?}{steps:?}"))
}

#[test]
fn the_sample_export_imports_once_however_often_it_is_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let record = crate::new_person(d, "Import Test");
    let file =
        hale_testkit::data_dir().join("../../hale-import/tests/data/apple-health-export.xml");
    let f = file.to_str().unwrap();
    let first = crate::ok(&[
        "import",
        "apple-health",
        "--data-dir",
        d,
        f,
        "--record",
        &record,
    ]);
    assert!(
        first.contains("imported 2 measurements (2 new, 0 already there) from 2 records"),
        "{first}"
    );
    let again = crate::ok(&[
        "import",
        "apple-health",
        "--data-dir",
        d,
        f,
        "--record",
        &record,
    ]);
    assert!(again.contains("(0 new, 2 already there)"), "{again}");
    let o = crate::run(&[
        "import",
        "apple-health",
        "--data-dir",
        d,
        f,
        "--record",
        "no-such-record",
    ]);
    assert!(!o.status.success());
}

#[test]
fn a_messy_export_reports_what_it_did_not_import() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let record = crate::new_person(d, "Import Test");
    let file = dir.path().join("export.xml");
    let written = write_export(
        &mut BufWriter::new(std::fs::File::create(&file).unwrap()),
        Options {
            records: 20_000,
            seed: 5,
            ios16_dtd: true,
            messy: true,
        },
    )
    .unwrap();
    let out = crate::ok(&[
        "import",
        "apple-health",
        "--data-dir",
        d,
        file.to_str().unwrap(),
        "--record",
        &record,
    ]);
    assert!(
        out.contains(&format!("imported {} measurements", written.importable)),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "not imported: {} (record type not imported yet)",
            written.unknown_types
        )),
        "{out}"
    );
}

#[test]
fn an_import_killed_half_way_and_run_again_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.xml");
    write_export(
        &mut BufWriter::new(std::fs::File::create(&file).unwrap()),
        Options {
            records: 400_000,
            seed: 9,
            ios16_dtd: false,
            messy: true,
        },
    )
    .unwrap();
    let f = file.to_str().unwrap();
    // Uninterrupted.
    let clean = dir.path().join("clean");
    let c = clean.to_str().unwrap();
    let rec_clean = crate::new_person(c, "A");
    crate::ok(&[
        "import",
        "apple-health",
        "--data-dir",
        c,
        f,
        "--record",
        &rec_clean,
    ]);
    // Killed, then run again.
    let killed = dir.path().join("killed");
    let k = killed.to_str().unwrap();
    let rec_killed = crate::new_person(k, "B");
    let mut child = crate::hale()
        .args([
            "import",
            "apple-health",
            "--data-dir",
            k,
            f,
            "--record",
            &rec_killed,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the import finished before it could be killed: make the export bigger"
    );
    let (partial, _) = contents(&killed, &rec_killed);
    crate::ok(&[
        "import",
        "apple-health",
        "--data-dir",
        k,
        f,
        "--record",
        &rec_killed,
    ]);
    let (n_clean, shape_clean) = contents(&clean, &rec_clean);
    let (n_killed, shape_killed) = contents(&killed, &rec_killed);
    assert!(
        partial < n_clean,
        "the kill should have left it part way ({partial} of {n_clean})"
    );
    assert_eq!(n_killed, n_clean);
    assert_eq!(shape_killed, shape_clean);
}

#[test]
fn the_zip_an_iphone_makes_imports_directly() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let record = crate::new_person(d, "Zip Test");
    let xml = std::fs::read(
        hale_testkit::data_dir().join("../../hale-import/tests/data/apple-health-export.xml"),
    )
    .unwrap();
    let path = dir.path().join("export.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    z.start_file("apple_health_export/export_cda.xml", opts)
        .unwrap();
    z.write_all(b"<ClinicalDocument/><ClinicalDocument/>")
        .unwrap();
    z.start_file("apple_health_export/export.xml", opts)
        .unwrap();
    z.write_all(&xml).unwrap();
    z.start_file(
        "apple_health_export/workout-routes/route_2019-06-11.gpx",
        opts,
    )
    .unwrap();
    z.write_all(b"<?xml version=\"1.0\"?><gpx><trk><trkseg/></trk></gpx>")
        .unwrap();
    // What a hospital shared with the phone: two R4 resources about the person, the
    // hospital's copy of the person, an older DSTU2 resource and a damaged file.
    let clinical: [(&str, &[u8]); 5] = [
        (
            "Observation-A1.json",
            br#"{"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
                "subject": {"reference": "https://fhir.hospital.example/R4/Patient/abc"},
                "effectiveDateTime": "2023-05-01T09:00:00Z",
                "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}"#,
        ),
        (
            "AllergyIntolerance-B2.json",
            br#"{"resourceType": "AllergyIntolerance",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
                "code": {"text": "Penicillin"}, "patient": {"reference": "Patient/abc"}}"#,
        ),
        (
            "Patient-abc.json",
            br#"{"resourceType": "Patient", "name": [{"text": "Zip Test"}]}"#,
        ),
        (
            "AllergyIntolerance-old.json",
            br#"{"resourceType": "AllergyIntolerance", "status": "confirmed",
                "substance": {"text": "Penicillin"}, "patient": {"reference": "Patient/abc"}}"#,
        ),
        ("Condition-C3.json", b"{\"resourceType\": \"Cond"),
    ];
    for (name, body) in clinical {
        z.start_file(format!("apple_health_export/clinical-records/{name}"), opts)
            .unwrap();
        z.write_all(body).unwrap();
    }
    z.finish().unwrap();
    let args = [
        "import",
        "apple-health",
        "--data-dir",
        d,
        path.to_str().unwrap(),
        "--record",
        &record,
    ];
    let out = crate::ok(&args);
    assert!(out.contains("imported 2 measurements"), "{out}");
    assert!(
        out.contains("clinical records: 2 added, 0 already there, 3 not imported"),
        "{out}"
    );
    let again = crate::ok(&args);
    assert!(
        again.contains("clinical records: 0 added, 2 already there, 3 not imported"),
        "{again}"
    );
    // Stored in the person's record, about the person, as a service's entry (not theirs).
    let app = hale_server::open_app(&hale_server::Config::for_data_dir(data.clone())).unwrap();
    let (_, page) = app
        .search(
            &operator(),
            "Observation",
            &[
                ("patient".to_owned(), record.clone()),
                ("code".to_owned(), "http://loinc.org|2339-0".to_owned()),
            ],
            true,
        )
        .unwrap();
    assert_eq!(page.matches.len(), 1);
    let glucose = page.matches[0].value().unwrap();
    assert_eq!(glucose["subject"]["reference"], format!("Patient/{record}"));
    assert_eq!(glucose["valueQuantity"]["value"], 5.4);
    assert!(!hale_app::entered_by_person(&glucose));
}

fn import_data(path: &str) -> String {
    let file = hale_testkit::data_dir()
        .join("../../hale-import/tests/data")
        .join(path);
    file.to_str().unwrap().to_owned()
}

/// How many samples of `metric` a record holds.
fn count(data: &std::path::Path, record: &str, metric: &str) -> i64 {
    let app = hale_server::open_app(&hale_server::Config::for_data_dir(data.to_owned())).unwrap();
    let r = RecordId::parse(record).unwrap();
    app.sample_buckets(&operator(), &r, metric, 0, i64::MAX / 2, i64::MAX / 4)
        .unwrap()
        .iter()
        .map(|b| b.count)
        .sum()
}

#[test]
fn fit_files_import_together_and_a_damaged_or_wrong_file_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let record = crate::new_person(d, "Fit Test");
    let (scale, broken, xml) = (
        import_data("fit/WeightScaleMultiUser.fit"),
        import_data("fit/activity-unexpected-eof.fit"),
        import_data("apple-health-export.xml"),
    );
    let args = [
        "import",
        "fit",
        "--data-dir",
        d,
        &scale,
        &broken,
        &xml,
        "--record",
        &record,
    ];
    let out = crate::ok(&args);
    assert!(
        out.contains("imported 4 measurements (4 new, 0 already there)"),
        "{out}"
    );
    assert!(
        out.contains("damaged: activity-unexpected-eof.fit: it ends early"),
        "{out}"
    );
    assert!(
        out.contains("not read: apple-health-export.xml: not a FIT file"),
        "{out}"
    );
    assert_eq!(count(&data, &record, "body_weight"), 2);
    assert_eq!(count(&data, &record, "body_fat"), 2);
    let again = crate::ok(&args);
    assert!(again.contains("(0 new, 4 already there)"), "{again}");
}

#[test]
fn json_exports_and_a_mapped_csv_import_with_their_reports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let record = crate::new_person(d, "Json Test");
    let run = |args: &[&str]| {
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--data-dir", d, "--record", &record]);
        crate::ok(&all)
    };
    let out = run(&[
        "fitbit",
        &import_data("fitbit/fitbit-activities-heart-1d-1m-intraday.json"),
        &import_data("fitbit/fitbit-sleep-date.json"),
        "--utc-offset",
        "+01:00",
    ]);
    assert!(out.contains("imported 7 measurements (7 new"), "{out}");
    assert_eq!(count(&data, &record, "sleep"), 2);
    let out = run(&[
        "google-fit",
        &import_data("google-fit/googlefit-merge-weight.json"),
    ]);
    assert!(out.contains("imported 3 measurements"), "{out}");
    let out = run(&[
        "omh",
        &import_data("omh/blood-pressure.json"),
        &import_data("omh/heart-rate-minimum.json"),
    ]);
    assert!(out.contains("imported 2 measurements"), "{out}");
    assert!(
        out.contains(
            "not imported: 1 (a summary (average, minimum or maximum), not a measurement)"
        ),
        "{out}"
    );
    let csv = dir.path().join("weights.csv");
    std::fs::write(
        &csv,
        "When,Pounds\n2024-06-01 07:30,154\n2024-06-02 07:30,not weighed\n",
    )
    .unwrap();
    let out = run(&[
        "csv",
        csv.to_str().unwrap(),
        "--metric",
        "body_weight",
        "--time-column",
        "When",
        "--value-column",
        "Pounds",
        "--unit",
        "lb",
    ]);
    assert!(out.contains("imported 1 measurements"), "{out}");
    assert!(
        out.contains("not imported: 1 (missing or non-numeric value)"),
        "{out}"
    );
    // Google Fit's 3 weights and the CSV's one.
    assert_eq!(count(&data, &record, "body_weight"), 4);
    let o = crate::run(&[
        "import",
        "csv",
        csv.to_str().unwrap(),
        "--data-dir",
        d,
        "--record",
        &record,
        "--metric",
        "furlongs",
        "--time-column",
        "When",
        "--value-column",
        "Pounds",
        "--unit",
        "lb",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown metric"));
}
