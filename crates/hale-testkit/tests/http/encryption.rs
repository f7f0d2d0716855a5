//! Encryption at rest: the database file, its WAL and a backup reveal none of a set of
//! planted strings; the backup restores with the key.

use hale_testkit::TestApp;
use serde_json::json;

const PLANTED: [&str; 4] = [
    "Zebedee",
    "Quartermaine",
    "planted-note-7f3a9",
    "PLANTCODE991",
];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn scan(path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    PLANTED
        .iter()
        .filter(|s| contains(&bytes, s))
        .map(|s| format!("{s} in {}", path.display()))
        .collect()
}

#[test]
fn database_wal_and_backup_hold_no_readable_health_data() {
    let t = TestApp::spawn();
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Quartermaine", "given": ["Zebedee"]}]});
    let r = t.post("/fhir/Patient", &t.system_token, &patient);
    assert_eq!(r.status, 201, "{}", r.json);
    let pid = r.json["id"].as_str().unwrap().to_owned();
    let obs = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "https://example.org/codes", "code": "PLANTCODE991"}]},
        "subject": {"reference": format!("Patient/{pid}")}, "note": [{"text": "planted-note-7f3a9"}]});
    assert_eq!(
        t.post("/fhir/Observation", &t.system_token, &obs).status,
        201
    );
    // The data is really there: searchable by the planted values.
    let token = t.token(&pid, "patient/*.rs");
    assert_eq!(
        t.get("/fhir/Patient?family=quartermaine", &token).json["total"],
        1
    );
    assert_eq!(
        t.get("/fhir/Observation?code=PLANTCODE991", &token).json["total"],
        1
    );

    let db = t.config.data_dir.join("hale.db");
    let mut found = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        found.extend(scan(&std::path::PathBuf::from(format!(
            "{}{suffix}",
            db.display()
        ))));
    }
    assert!(
        std::fs::metadata(format!("{}-wal", db.display())).is_ok(),
        "the WAL exists and was scanned"
    );

    let backup = t.dir.path().join("backup.db");
    let o = crate::hale()
        .args([
            "backup",
            "--data-dir",
            t.config.data_dir.to_str().unwrap(),
            backup.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    found.extend(scan(&backup));
    assert!(
        found.is_empty(),
        "planted strings readable at rest: {found:?}"
    );

    // The backup restores with the key.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&backup, restored.path().join("hale.db")).unwrap();
    std::fs::copy(
        t.config.data_dir.join("hale.key"),
        restored.path().join("hale.key"),
    )
    .unwrap();
    let config = hale_server::Config::for_data_dir(restored.path().to_owned());
    let again = TestApp::spawn_on(restored, config);
    let r = again.get(&format!("/fhir/Patient/{pid}"), &again.system_token);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["name"][0]["family"], "Quartermaine");
}
