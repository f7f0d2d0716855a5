//! The conformance suite every backend must pass, run against SQLite always and PostgreSQL
//! when `HALE_TEST_POSTGRES_URL` is set. A backend's tests expand
//! [`conformance_tests!`](crate::conformance_tests) with a function that returns a fresh,
//! empty store, and get one `#[test]` per behaviour below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use hale_core::RecordId;
use hale_fhir::Definitions;
use hale_fhir::search::SearchQuery;
use serde_json::{Value, json};

use crate::{Expect, HistoryQuery, Method, SampleRow, Store, StoreError, WriteBatch, WriteOp};

/// Expands to one `#[test]` per conformance check, each on a store from `$make()`, which
/// returns `Some(guard)` (a guard derefs to the store and cleans up when dropped), or `None`
/// when the backend is not available here (PostgreSQL without `HALE_TEST_POSTGRES_URL`;
/// `scripts/test` refuses to run that way in CI).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@each $make,
            content_round_trips_exactly_including_decimals,
            every_version_is_kept_and_history_is_newest_first,
            preconditions_are_checked_inside_the_transaction,
            a_failed_operation_rolls_back_the_whole_batch,
            writes_into_a_missing_record_are_refused,
            an_id_taken_in_another_record_is_refused,
            scope_confines_reads_history_and_search,
            deleted_resources_read_as_deleted_and_leave_search,
            updates_replace_the_search_index,
            search_by_every_parameter_type,
            a_combined_parameter_reads_the_rows_of_its_parts,
            search_sorts_counts_and_pages,
            search_includes_revincludes_and_chains,
            searches_across_records_find_people_and_grants,
            everything_returns_the_whole_record,
            samples_are_stored_once_and_summarised_by_bucket,
            accounts_are_found_by_id_and_email_and_emails_are_unique,
            sessions_are_listed_and_ended_one_or_all,
            emailed_links_and_recovery_codes_work_once,
            oauth_clients_are_kept_and_codes_are_spent_once,
            the_audit_log_chains_reads_by_record_and_signs_checkpoints,
            erasing_a_record_removes_it_and_its_accounts_and_nothing_else,
            samples_are_taken_away_page_by_page_in_order,
            failed_attempts_are_counted_in_the_database_and_waits_double,
        );
    };
    (@each $make:path, $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                match $make() {
                    Some(guard) => $crate::conformance::$name(&*guard),
                    None => eprintln!("skipped: backend not available"),
                }
            }
        )*
    };
}

fn record(id: &str) -> RecordId {
    RecordId::parse(id).unwrap()
}

pub fn new_record(store: &dyn Store, id: &str) -> RecordId {
    let r = record(id);
    store
        .write(WriteBatch {
            ops: vec![
                WriteOp::CreateRecord { record: r.clone() },
                put_op(&r, json!({"resourceType": "Patient", "id": id, "name": [{"family": "Testperson"}]}), Expect::Absent),
            ],
        })
        .unwrap();
    r
}

fn put_op(record: &RecordId, resource: Value, expect: Expect) -> WriteOp {
    let rt = resource["resourceType"].as_str().unwrap().to_owned();
    let id = resource["id"].as_str().unwrap().to_owned();
    let index = hale_fhir::index::extract(Definitions::r4(), &rt, &resource);
    WriteOp::Put {
        record: record.clone(),
        resource_type: rt,
        id,
        expect,
        resource,
        index,
    }
}

fn put(store: &dyn Store, record: &RecordId, resource: Value) -> i64 {
    let out = store
        .write(WriteBatch {
            ops: vec![put_op(record, resource, Expect::Any)],
        })
        .unwrap();
    out.results[0].as_ref().unwrap().version
}

fn obs(id: &str, patient: &str, code: &str, value: &str, date: &str) -> Value {
    let v: Value = serde_json::from_str(&format!(
        r#"{{"resourceType": "Observation", "id": "{id}", "status": "final",
            "code": {{"coding": [{{"system": "http://loinc.org", "code": "{code}", "display": "Test code {code}"}}]}},
            "subject": {{"reference": "Patient/{patient}"}},
            "effectiveDateTime": "{date}",
            "valueQuantity": {{"value": {value}, "system": "http://unitsofmeasure.org", "code": "kg"}}}}"#
    ))
    .unwrap();
    v
}

fn search(
    store: &dyn Store,
    scope: Option<&RecordId>,
    rt: &str,
    pairs: &[(&str, &str)],
) -> Vec<String> {
    let q = query(rt, pairs);
    store
        .search(scope, &q)
        .unwrap()
        .matches
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn query(rt: &str, pairs: &[(&str, &str)]) -> SearchQuery {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    hale_fhir::search::parse(Definitions::r4(), rt, &pairs, true).unwrap()
}

pub fn content_round_trips_exactly_including_decimals(store: &dyn Store) {
    let r = new_record(store, "p1");
    put(
        store,
        &r,
        obs("o1", "p1", "29463-7", "12.340", "2024-03-01"),
    );
    let got = store.read(Some(&r), "Observation", "o1").unwrap().unwrap();
    let text = got.resource.as_ref().unwrap().get().to_owned();
    assert!(text.contains("12.340"), "decimal precision lost: {text}");
    assert_eq!(got.version, 1);
    assert_eq!(got.value().unwrap()["meta"]["versionId"], "1");
    assert_eq!(got.method, Method::Create);
    assert_eq!(got.record, r);
}

pub fn every_version_is_kept_and_history_is_newest_first(store: &dyn Store) {
    let r = new_record(store, "p1");
    put(store, &r, obs("o1", "p1", "a", "1", "2024-03-01"));
    put(store, &r, obs("o1", "p1", "a", "2", "2024-03-01"));
    let v3 = put(store, &r, obs("o1", "p1", "a", "3", "2024-03-01"));
    assert_eq!(v3, 3);
    let v1 = store
        .vread(Some(&r), "Observation", "o1", 1)
        .unwrap()
        .unwrap();
    assert_eq!(v1.value().unwrap()["valueQuantity"]["value"], json!(1));
    let h = store
        .history(
            Some(&r),
            &HistoryQuery {
                resource_type: Some("Observation".into()),
                id: Some("o1".into()),
                since: None,
                count: 10,
            },
        )
        .unwrap();
    assert_eq!(h.iter().map(|x| x.version).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(h[2].method, Method::Create);
    assert_eq!(h[0].method, Method::Update);
    // A read is the newest version, whether or not the record is named.
    for scope in [Some(&r), None] {
        let now = store.read(scope, "Observation", "o1").unwrap().unwrap();
        assert_eq!((now.version, now.last_updated), (3, h[0].last_updated));
        assert_eq!(now.record, r);
        assert_eq!(now.value().unwrap()["valueQuantity"]["value"], json!(3));
    }
}

pub fn preconditions_are_checked_inside_the_transaction(store: &dyn Store) {
    let r = new_record(store, "p1");
    put(store, &r, obs("o1", "p1", "a", "1", "2024-03-01"));
    let err = store
        .write(WriteBatch {
            ops: vec![put_op(
                &r,
                obs("o1", "p1", "a", "2", "2024-03-01"),
                Expect::Absent,
            )],
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict { .. }), "{err}");
    let err = store
        .write(WriteBatch {
            ops: vec![put_op(
                &r,
                obs("o1", "p1", "a", "2", "2024-03-01"),
                Expect::Version(7),
            )],
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionConflict { ref actual, .. } if actual == "1"),
        "{err}"
    );
    store
        .write(WriteBatch {
            ops: vec![put_op(
                &r,
                obs("o1", "p1", "a", "2", "2024-03-01"),
                Expect::Version(1),
            )],
        })
        .unwrap();
    assert_eq!(
        store
            .read(Some(&r), "Observation", "o1")
            .unwrap()
            .unwrap()
            .version,
        2
    );
}

pub fn a_failed_operation_rolls_back_the_whole_batch(store: &dyn Store) {
    let r = new_record(store, "p1");
    put(store, &r, obs("o1", "p1", "a", "1", "2024-03-01"));
    let err = store.write(WriteBatch {
        ops: vec![
            WriteOp::CreateRecord {
                record: record("p2"),
            },
            put_op(&r, obs("o2", "p1", "a", "1", "2024-03-01"), Expect::Absent),
            put_op(&r, obs("o1", "p1", "a", "9", "2024-03-01"), Expect::Absent),
        ],
    });
    assert!(err.is_err());
    assert!(store.read(Some(&r), "Observation", "o2").unwrap().is_none());
    assert!(!store.record_exists(&record("p2")).unwrap());
    assert_eq!(
        search(store, Some(&r), "Observation", &[("code", "a")]),
        ["o1"]
    );
}

pub fn writes_into_a_missing_record_are_refused(store: &dyn Store) {
    let err = store
        .write(WriteBatch {
            ops: vec![put_op(
                &record("nobody"),
                obs("o1", "nobody", "a", "1", "2024"),
                Expect::Any,
            )],
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NoRecord(_)), "{err}");
}

pub fn an_id_taken_in_another_record_is_refused(store: &dyn Store) {
    let a = new_record(store, "pa");
    let b = new_record(store, "pb");
    put(store, &a, obs("shared", "pa", "a", "1", "2024"));
    let err = store
        .write(WriteBatch {
            ops: vec![put_op(
                &b,
                obs("shared", "pb", "a", "1", "2024"),
                Expect::Any,
            )],
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::OtherRecord { .. }), "{err}");
    assert_eq!(
        store
            .read(None, "Observation", "shared")
            .unwrap()
            .unwrap()
            .record,
        a
    );
}

pub fn scope_confines_reads_history_and_search(store: &dyn Store) {
    let a = new_record(store, "pa");
    let b = new_record(store, "pb");
    put(store, &a, obs("oa", "pa", "x", "1", "2024"));
    put(store, &b, obs("ob", "pb", "x", "1", "2024"));
    assert!(store.read(Some(&b), "Observation", "oa").unwrap().is_none());
    let found = store.read(None, "Observation", "oa").unwrap().unwrap();
    assert_eq!(found.record, a);
    assert!(
        store
            .read(None, "Observation", "nowhere")
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .vread(Some(&b), "Observation", "oa", 1)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        search(store, Some(&b), "Observation", &[("code", "x")]),
        ["ob"]
    );
    let mut all = search(store, None, "Observation", &[("code", "x")]);
    all.sort();
    assert_eq!(all, ["oa", "ob"]);
    let h = store
        .history(
            Some(&b),
            &HistoryQuery {
                resource_type: None,
                id: None,
                since: None,
                count: 100,
            },
        )
        .unwrap();
    assert!(h.iter().all(|x| x.record == b));
    assert_eq!(store.everything(&b).unwrap().len(), 2);
}

pub fn deleted_resources_read_as_deleted_and_leave_search(store: &dyn Store) {
    let r = new_record(store, "p1");
    put(store, &r, obs("o1", "p1", "a", "1", "2024"));
    let out = store
        .write(WriteBatch {
            ops: vec![WriteOp::Delete {
                record: r.clone(),
                resource_type: "Observation".into(),
                id: "o1".into(),
                expect: Expect::Any,
            }],
        })
        .unwrap();
    assert_eq!(out.results[0].as_ref().unwrap().version, 2);
    for scope in [Some(&r), None] {
        let got = store.read(scope, "Observation", "o1").unwrap().unwrap();
        assert!(got.resource.is_none());
        assert_eq!((got.method, got.version), (Method::Delete, 2));
    }
    assert!(search(store, Some(&r), "Observation", &[("code", "a")]).is_empty());
    assert!(
        store
            .vread(Some(&r), "Observation", "o1", 1)
            .unwrap()
            .unwrap()
            .resource
            .is_some()
    );
    // Deleting what is absent is not an error and writes nothing.
    let out = store
        .write(WriteBatch {
            ops: vec![WriteOp::Delete {
                record: r.clone(),
                resource_type: "Observation".into(),
                id: "nope".into(),
                expect: Expect::Any,
            }],
        })
        .unwrap();
    assert!(out.results[0].is_none());
}

pub fn updates_replace_the_search_index(store: &dyn Store) {
    let r = new_record(store, "p1");
    put(store, &r, obs("o1", "p1", "old", "1", "2024"));
    put(store, &r, obs("o1", "p1", "new", "1", "2024"));
    assert!(search(store, Some(&r), "Observation", &[("code", "old")]).is_empty());
    assert_eq!(
        search(store, Some(&r), "Observation", &[("code", "new")]),
        ["o1"]
    );
}

pub fn search_by_every_parameter_type(store: &dyn Store) {
    let r = new_record(store, "p1");
    put(
        store,
        &r,
        obs("o1", "p1", "8867-4", "60", "2024-01-15T10:00:00Z"),
    );
    put(store, &r, obs("o2", "p1", "8867-4", "75.5", "2024-02-20"));
    put(store, &r, obs("o3", "p1", "29463-7", "82", "2023-12-31"));
    put(
        store,
        &r,
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Ó Briain", "given": ["Aoife"]}],
        "birthDate": "1980-05-02", "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}]}),
    );
    put(
        store,
        &r,
        json!({"resourceType": "RiskAssessment", "id": "ra1", "status": "final", "subject": {"reference": "Patient/p1"},
        "prediction": [{"probabilityDecimal": 0.25}]}),
    );
    put(
        store,
        &r,
        json!({"resourceType": "Questionnaire", "id": "q1", "status": "active", "url": "http://example.org/q/1"}),
    );
    let s = |rt: &str, pairs: &[(&str, &str)]| {
        let mut v = search(store, Some(&r), rt, pairs);
        v.sort();
        v
    };
    // token
    assert_eq!(
        s("Observation", &[("code", "http://loinc.org|8867-4")]),
        ["o1", "o2"]
    );
    assert_eq!(
        s("Observation", &[("code", "|8867-4")]),
        Vec::<String>::new()
    );
    assert_eq!(s("Observation", &[("code:not", "8867-4")]), ["o3"]);
    assert_eq!(s("Observation", &[("code:text", "test code 294")]), ["o3"]);
    assert_eq!(
        s(
            "Patient",
            &[("identifier", "https://fhir.nhs.uk/Id/nhs-number|9434765919")]
        ),
        ["p1"]
    );
    // string
    assert_eq!(s("Patient", &[("name", "ó bri")]), ["p1"]);
    assert_eq!(
        s("Patient", &[("name:exact", "ó briain")]),
        Vec::<String>::new()
    );
    assert_eq!(s("Patient", &[("name:contains", "rIAi")]), ["p1"]);
    // date, with precision and prefixes
    assert_eq!(s("Observation", &[("date", "2024-01")]), ["o1"]);
    assert_eq!(s("Observation", &[("date", "ge2024-01-15")]), ["o1", "o2"]);
    assert_eq!(s("Observation", &[("date", "lt2024")]), ["o3"]);
    assert_eq!(
        s(
            "Observation",
            &[("date", "ge2024-01-01"), ("date", "le2024-01-31")]
        ),
        ["o1"]
    );
    assert_eq!(s("Patient", &[("birthdate", "1980")]), ["p1"]);
    assert_eq!(s("Observation", &[("date", "sa2024-01-31")]), ["o2"]);
    assert_eq!(s("Observation", &[("date", "eb2024-01-01")]), ["o3"]);
    assert_eq!(s("Observation", &[("date", "ne2024-01")]), ["o2", "o3"]);
    // Two bounds on one parameter are separate tests: a resource with several dates matches
    // when one date passes each, even if no single date passes both.
    put(
        store,
        &r,
        json!({"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active",
        "description": {"text": "Walk further"}, "subject": {"reference": "Patient/p1"},
        "target": [{"dueDate": "2023-12-01"}, {"dueDate": "2024-02-01"}]}),
    );
    assert_eq!(
        s(
            "Goal",
            &[
                ("target-date", "ge2024-01-01"),
                ("target-date", "lt2024-01-10")
            ]
        ),
        ["g1"]
    );
    assert_eq!(
        s(
            "Goal",
            &[
                ("target-date", "ge2024-03-01"),
                ("target-date", "lt2024-01-10")
            ]
        ),
        Vec::<String>::new()
    );
    // reference
    assert_eq!(
        s(
            "Observation",
            &[("subject", "Patient/p1"), ("code", "29463-7")]
        ),
        ["o3"]
    );
    assert_eq!(s("Observation", &[("patient", "p1")]).len(), 3);
    // quantity, with implied precision
    assert_eq!(s("Observation", &[("value-quantity", "75.5")]), ["o2"]);
    // "75" means [74.5, 75.5): 75.5 lies just outside.
    assert_eq!(
        s("Observation", &[("value-quantity", "75")]),
        Vec::<String>::new()
    );
    assert_eq!(s("Observation", &[("value-quantity", "76")]), ["o2"]);
    assert_eq!(
        s(
            "Observation",
            &[("value-quantity", "gt70|http://unitsofmeasure.org|kg")]
        ),
        ["o2", "o3"]
    );
    assert_eq!(s("Observation", &[("value-quantity", "ap85")]), ["o3"]);
    assert_eq!(
        s("Observation", &[("value-quantity", "ne60")]),
        ["o2", "o3"]
    );
    assert_eq!(
        s("Observation", &[("value-quantity", "le75.5")]),
        ["o1", "o2"]
    );
    // number
    assert_eq!(s("RiskAssessment", &[("probability", "0.25")]), ["ra1"]);
    assert_eq!(
        s("RiskAssessment", &[("probability", "gt0.5")]),
        Vec::<String>::new()
    );
    // uri
    assert_eq!(
        s("Questionnaire", &[("url", "http://example.org/q/1")]),
        ["q1"]
    );
    // :missing
    assert_eq!(
        s(
            "Observation",
            &[("value-string:missing", "true"), ("code", "29463-7")]
        ),
        ["o3"]
    );
    assert_eq!(s("Observation", &[("date:missing", "false")]).len(), 3);
    // _id
    assert_eq!(s("Observation", &[("_id", "o1,o3")]), ["o1", "o3"]);
}

/// Observation's `combo-code` is `code` | `component-code` (and so for the other `combo-`
/// parameters): it has no index rows of its own, and reads theirs in every kind of search.
pub fn a_combined_parameter_reads_the_rows_of_its_parts(store: &dyn Store) {
    let r = new_record(store, "p1");
    let loinc = "http://loinc.org";
    let ucum = "http://unitsofmeasure.org";
    put(
        store,
        &r,
        json!({"resourceType": "Observation", "id": "bp", "status": "final",
            "code": {"coding": [{"system": loinc, "code": "85354-9"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-01-01",
            "component": [
                {"code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                 "valueQuantity": {"value": 120, "system": ucum, "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": loinc, "code": "8462-4"}]},
                 "valueQuantity": {"value": 80, "system": ucum, "code": "mm[Hg]"}}]}),
    );
    put(store, &r, obs("hr", "p1", "8867-4", "60", "2024-01-02"));
    let s = |pairs: &[(&str, &str)]| search(store, Some(&r), "Observation", pairs);
    assert_eq!(s(&[("combo-code", "8480-6")]), ["bp"]);
    assert_eq!(s(&[("combo-code", "85354-9")]), ["bp"]);
    assert_eq!(s(&[("combo-code", "8867-4")]), ["hr"]);
    assert!(s(&[("code", "8480-6")]).is_empty());
    assert!(s(&[("component-code", "85354-9")]).is_empty());
    assert_eq!(s(&[("combo-value-quantity", "gt100")]), ["bp"]);
    assert_eq!(s(&[("combo-value-quantity", "60")]), ["hr"]);
    // One clause drives and the other is probed for each match.
    assert_eq!(
        s(&[("combo-code", "8462-4"), ("combo-value-quantity", "gt100")]),
        ["bp"]
    );
    assert!(s(&[("combo-code", "8867-4"), ("combo-value-quantity", "gt100")]).is_empty());
    let mut present = s(&[("combo-code:missing", "false")]);
    present.sort();
    assert_eq!(present, ["bp", "hr"]);
    assert!(s(&[("combo-code:missing", "true")]).is_empty());
    // Sorted by the lowest, or highest, code either part holds.
    assert_eq!(s(&[("_sort", "combo-code")]), ["bp", "hr"]);
    assert_eq!(s(&[("_sort", "-combo-code")]), ["hr", "bp"]);
}

pub fn search_sorts_counts_and_pages(store: &dyn Store) {
    let r = new_record(store, "p1");
    for i in 0..7 {
        put(
            store,
            &r,
            obs(
                &format!("o{i}"),
                "p1",
                "c",
                &format!("{i}"),
                &format!("2024-01-{:02}", 10 - i),
            ),
        );
    }
    let ids = search(store, Some(&r), "Observation", &[("_sort", "date")]);
    assert_eq!(ids, ["o6", "o5", "o4", "o3", "o2", "o1", "o0"]);
    let ids = search(
        store,
        Some(&r),
        "Observation",
        &[("_sort", "-date"), ("_count", "3"), ("_offset", "3")],
    );
    assert_eq!(ids, ["o3", "o4", "o5"]);
    let page = store
        .search(Some(&r), &query("Observation", &[("_count", "2")]))
        .unwrap();
    assert_eq!(page.total, Some(7));
    assert_eq!(page.matches.len(), 2);
    // Without a date it sorts last both ways; naming the person (the record's own patient,
    // which never drives the search) changes nothing.
    let mut dateless = obs("o7", "p1", "c", "7", "2024-01-01");
    dateless
        .as_object_mut()
        .unwrap()
        .remove("effectiveDateTime");
    put(store, &r, dateless);
    for sort in ["date", "-date"] {
        let ids = search(store, Some(&r), "Observation", &[("_sort", sort)]);
        assert_eq!(ids.len(), 8);
        assert_eq!(ids.last().map(String::as_str), Some("o7"), "{sort}");
        let named = search(
            store,
            Some(&r),
            "Observation",
            &[("patient", "Patient/p1"), ("_sort", sort)],
        );
        assert_eq!(named, ids, "{sort}");
    }
    let ids = search(
        store,
        Some(&r),
        "Observation",
        &[
            ("subject", "p1"),
            ("date", "ge2024-01-05"),
            ("date", "lt2024-01-08"),
            ("_sort", "-date"),
        ],
    );
    assert_eq!(ids, ["o3", "o4", "o5"]);
}

/// Without a record scope, a search is driven by the one cross-record index: a Patient's or
/// a Consent's codes. What it includes, and the clauses it probes, stay in each match's record.
pub fn searches_across_records_find_people_and_grants(store: &dyn Store) {
    let nhs = "https://fhir.nhs.uk/Id/nhs-number";
    let mut records = Vec::new();
    for (id, number) in [("x1", "9434765919"), ("x2", "9434765870")] {
        let r = new_record(store, id);
        put(
            store,
            &r,
            json!({"resourceType": "Patient", "id": id, "name": [{"family": "Across"}],
                "identifier": [{"system": nhs, "value": number}]}),
        );
        put(store, &r, obs(&format!("{id}-o"), id, "c", "1", "2024"));
        put(
            store,
            &r,
            json!({"resourceType": "Consent", "id": format!("{id}-g"), "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": format!("Patient/{id}")},
                "provision": {"actor": [{"role": {"text": "carer"},
                    "reference": {"identifier": {"system": "urn:hale:account", "value": "carer-1"}}}]}}),
        );
        records.push(r);
    }
    let by_number = format!("{nhs}|9434765870");
    assert_eq!(
        search(store, None, "Patient", &[("identifier", &by_number)]),
        ["x2"]
    );
    assert_eq!(
        search(
            store,
            None,
            "Patient",
            &[("identifier", &by_number), ("family", "across")]
        ),
        ["x2"]
    );
    assert!(
        search(
            store,
            None,
            "Patient",
            &[("identifier", &by_number), ("family", "other")]
        )
        .is_empty()
    );
    let mut grants = search(
        store,
        None,
        "Consent",
        &[("actor:identifier", "urn:hale:account|carer-1")],
    );
    grants.sort();
    assert_eq!(grants, ["x1-g", "x2-g"]);
    // A reverse chain probed in the match's own record.
    assert_eq!(
        search(
            store,
            None,
            "Patient",
            &[
                ("identifier", &by_number),
                ("_has:Observation:subject:code", "c")
            ]
        ),
        ["x2"]
    );
    let page = store
        .search(
            None,
            &query(
                "Patient",
                &[
                    ("identifier", &format!("{nhs}|9434765919,{nhs}|9434765870")),
                    ("_revinclude", "Observation:subject"),
                ],
            ),
        )
        .unwrap();
    let mut included: Vec<String> = page.included.iter().map(|x| x.id.clone()).collect();
    included.sort();
    assert_eq!(included, ["x1-o", "x2-o"]);
    assert!(page.included.iter().all(|x| records.contains(&x.record)));
    assert_eq!(
        page.included
            .iter()
            .find(|x| x.id == "x2-o")
            .map(|x| &x.record),
        Some(&records[1])
    );
}

pub fn search_includes_revincludes_and_chains(store: &dyn Store) {
    let r = new_record(store, "p1");
    put(store, &r, obs("o1", "p1", "c", "1", "2024"));
    put(
        store,
        &r,
        json!({"resourceType": "Provenance", "id": "pv1", "recorded": "2024-01-01T00:00:00Z",
        "target": [{"reference": "Observation/o1"}], "agent": [{"who": {"display": "Hale test"}}]}),
    );
    let other = new_record(store, "p2");
    put(
        store,
        &other,
        json!({"resourceType": "Provenance", "id": "pv2", "recorded": "2024-01-01T00:00:00Z",
        "target": [{"reference": "Observation/o1"}], "agent": [{"who": {"display": "Hale test"}}]}),
    );
    let page = store
        .search(
            Some(&r),
            &query(
                "Observation",
                &[
                    ("_include", "Observation:subject"),
                    ("_revinclude", "Provenance:target"),
                ],
            ),
        )
        .unwrap();
    let mut included: Vec<String> = page
        .included
        .iter()
        .map(|x| format!("{}/{}", x.resource_type, x.id))
        .collect();
    included.sort();
    assert_eq!(
        included,
        ["Patient/p1", "Provenance/pv1"],
        "another record's Provenance must not be included"
    );
    assert_eq!(
        search(
            store,
            Some(&r),
            "Observation",
            &[("subject:Patient.family", "testperson")]
        ),
        ["o1"]
    );
    assert!(
        search(
            store,
            Some(&r),
            "Observation",
            &[("subject:Patient.family", "nobody")]
        )
        .is_empty()
    );
    // Reverse chaining: the Patient that an Observation with code `c` refers to, in this
    // record only (another record's Observation with the same code finds nothing here).
    put(store, &other, obs("o2", "p2", "c", "1", "2024"));
    assert_eq!(
        search(
            store,
            Some(&r),
            "Patient",
            &[("_has:Observation:subject:code", "c")]
        ),
        ["p1"]
    );
    assert!(
        search(
            store,
            Some(&r),
            "Patient",
            &[("_has:Observation:subject:code", "other")]
        )
        .is_empty()
    );
    let mut everywhere = search(
        store,
        None,
        "Patient",
        &[("_has:Observation:subject:code", "c")],
    );
    everywhere.sort();
    assert_eq!(everywhere, ["p1", "p2"]);
}

pub fn everything_returns_the_whole_record(store: &dyn Store) {
    let r = new_record(store, "p1");
    put(store, &r, obs("o1", "p1", "c", "1", "2024"));
    put(
        store,
        &r,
        json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}),
    );
    let mut all: Vec<String> = store
        .everything(&r)
        .unwrap()
        .into_iter()
        .map(|x| format!("{}/{}", x.resource_type, x.id))
        .collect();
    all.sort();
    assert_eq!(all, ["Condition/c1", "Observation/o1", "Patient/p1"]);
    assert_eq!(
        store
            .count_by_type(&r)
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum::<i64>(),
        3
    );
}

pub fn samples_are_stored_once_and_summarised_by_bucket(store: &dyn Store) {
    let r = new_record(store, "p1");
    let other = new_record(store, "p2");
    let day = 86_400_000;
    let rows: Vec<SampleRow> = (0..48)
        .map(|h| SampleRow {
            metric: "heart_rate".into(),
            source: "Watch".into(),
            start: h * 3_600_000,
            end: h * 3_600_000,
            value: 60.0 + (h % 24) as f64,
        })
        .collect();
    let write = |record: &RecordId, rows: Vec<SampleRow>| {
        store
            .write(WriteBatch {
                ops: vec![WriteOp::Samples {
                    record: record.clone(),
                    rows,
                }],
            })
            .unwrap()
    };
    assert_eq!(write(&r, rows.clone()).samples_added, 48);
    // The same export again, and an overlapping one: nothing new, or only what is new.
    assert_eq!(write(&r, rows.clone()).samples_added, 0);
    let mut more = rows[40..].to_vec();
    more.push(SampleRow {
        metric: "heart_rate".into(),
        source: "Watch".into(),
        start: 48 * 3_600_000,
        end: 48 * 3_600_000,
        value: 61.0,
    });
    assert_eq!(write(&r, more).samples_added, 1);
    assert_eq!(store.sample_count(&r).unwrap(), 49);
    assert_eq!(store.sample_count(&other).unwrap(), 0);
    assert_eq!(store.sample_metrics(&r).unwrap(), ["heart_rate"]);
    assert!(store.sample_metrics(&other).unwrap().is_empty());
    let days = store
        .sample_buckets(&r, "heart_rate", 0, 2 * day, day)
        .unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(
        (days[0].start, days[0].count, days[0].min, days[0].max),
        (0, 24, 60.0, 83.0)
    );
    assert!((days[0].mean - 71.5).abs() < 1e-9);
    assert_eq!(days[1].start, day);
    assert!(
        store
            .sample_buckets(&other, "heart_rate", 0, 2 * day, day)
            .unwrap()
            .is_empty()
    );
    let err = store
        .write(WriteBatch {
            ops: vec![WriteOp::Samples {
                record: record("nobody"),
                rows,
            }],
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NoRecord(_)));
}

fn account(id: &str, email: &str, record: Option<RecordId>) -> crate::Account {
    crate::Account {
        id: id.into(),
        email: email.into(),
        kind: hale_core::AccountKind::Person,
        record,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        email_verified_at: None,
        verification_level: hale_core::VerificationLevel::P0,
        totp_sealed: None,
        totp_last_step: None,
        created_at: 1_700_000_000_000,
        org: None,
    }
}

fn one(store: &dyn Store, op: WriteOp) -> Result<(), StoreError> {
    store.write(WriteBatch { ops: vec![op] }).map(|_| ())
}

pub fn accounts_are_found_by_id_and_email_and_emails_are_unique(store: &dyn Store) {
    let r = new_record(store, "acct-owner");
    let mut alex = account("a-1", "alex@example.org", Some(r.clone()));
    one(store, WriteOp::PutAccount(alex.clone())).unwrap();
    assert_eq!(store.account("a-1").unwrap(), Some(alex.clone()));
    assert_eq!(
        store.account_by_email("alex@example.org").unwrap(),
        Some(alex.clone())
    );
    assert_eq!(store.account_by_email("nobody@example.org").unwrap(), None);
    assert_eq!(store.accounts_of_record(&r).unwrap(), vec![alex.clone()]);
    assert!(
        store
            .accounts_of_record(&record("no-such-record"))
            .unwrap()
            .is_empty()
    );

    // Updating keeps the id and changes what was changed, including sealed bytes.
    alex.email_verified_at = Some(1_700_000_100_000);
    alex.verification_level = hale_core::VerificationLevel::P9;
    alex.totp_sealed = Some(vec![0, 1, 2, 255]);
    alex.totp_last_step = Some(59_000_000);
    one(store, WriteOp::PutAccount(alex.clone())).unwrap();
    assert_eq!(store.account("a-1").unwrap(), Some(alex.clone()));

    // A second account with the same address is refused, and the batch leaves nothing.
    let err = store
        .write(WriteBatch {
            ops: vec![
                WriteOp::PutAccount(account("a-2", "other@example.org", None)),
                WriteOp::PutAccount(account("a-3", "alex@example.org", None)),
            ],
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err}");
    assert_eq!(store.account("a-2").unwrap(), None);
    assert_eq!(store.account("a-3").unwrap(), None);
}

fn session(key: &str, account: &str, seen: i64) -> crate::Session {
    crate::Session {
        key_hash: key.into(),
        account_id: account.into(),
        created_at: 1_000,
        last_seen_at: seen,
        second_factor_at: None,
        user_agent: "Firefox on Linux".into(),
    }
}

pub fn sessions_are_listed_and_ended_one_or_all(store: &dyn Store) {
    one(
        store,
        WriteOp::PutAccount(account("s-1", "s1@example.org", None)),
    )
    .unwrap();
    one(
        store,
        WriteOp::PutAccount(account("s-2", "s2@example.org", None)),
    )
    .unwrap();
    for (key, acct, seen) in [
        ("k1", "s-1", 10),
        ("k2", "s-1", 30),
        ("k3", "s-1", 20),
        ("k4", "s-2", 5),
    ] {
        one(store, WriteOp::PutSession(session(key, acct, seen))).unwrap();
    }
    let listed: Vec<_> = store
        .sessions_of("s-1")
        .unwrap()
        .into_iter()
        .map(|s| s.key_hash)
        .collect();
    assert_eq!(listed, ["k2", "k3", "k1"], "most recently used first");

    let mut k1 = session("k1", "s-1", 40);
    k1.second_factor_at = Some(40);
    one(store, WriteOp::PutSession(k1.clone())).unwrap();
    assert_eq!(store.session("k1").unwrap(), Some(k1));

    one(
        store,
        WriteOp::EndSessions {
            account_id: "s-1".into(),
            only: Some("k3".into()),
        },
    )
    .unwrap();
    assert_eq!(store.session("k3").unwrap(), None);
    assert_eq!(store.sessions_of("s-1").unwrap().len(), 2);
    // Another account's session cannot be ended through this account.
    one(
        store,
        WriteOp::EndSessions {
            account_id: "s-1".into(),
            only: Some("k4".into()),
        },
    )
    .unwrap();
    assert!(store.session("k4").unwrap().is_some());

    one(
        store,
        WriteOp::EndSessions {
            account_id: "s-1".into(),
            only: None,
        },
    )
    .unwrap();
    assert!(store.sessions_of("s-1").unwrap().is_empty());
    assert_eq!(store.sessions_of("s-2").unwrap().len(), 1);
}

pub fn oauth_clients_are_kept_and_codes_are_spent_once(store: &dyn Store) {
    let r = new_record(store, "p1");
    one(
        store,
        WriteOp::PutAccount(account("o-1", "o1@example.org", Some(r.clone()))),
    )
    .unwrap();
    let client = crate::OAuthClient {
        client_id: "app-1".into(),
        name: "Step counter".into(),
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1:9/cb".into(),
        ],
        public: true,
        created_at: 1,
        org: None,
        jwks: None,
    };
    one(store, WriteOp::PutClient(client.clone())).unwrap();
    assert_eq!(store.oauth_client("app-1").unwrap(), Some(client));
    assert_eq!(store.oauth_client("app-2").unwrap(), None);

    // An organisation's system: its organisation and keys come back as registered.
    for (id, name) in [("org-b", "Riverside Surgery"), ("org-a", "Hilltop Care")] {
        one(
            store,
            WriteOp::PutOrganisation(crate::Organisation {
                org_id: id.into(),
                name: name.into(),
                created_at: 2,
            }),
        )
        .unwrap();
    }
    let names: Vec<String> = store
        .organisations()
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["Hilltop Care", "Riverside Surgery"]);
    // A professional's account belongs to an organisation.
    let professional = crate::Account {
        kind: hale_core::AccountKind::Professional,
        org: Some("org-b".into()),
        ..account("pro-1", "pro@example.org", None)
    };
    one(store, WriteOp::PutAccount(professional.clone())).unwrap();
    assert_eq!(store.account("pro-1").unwrap(), Some(professional));
    let system = crate::OAuthClient {
        client_id: "sys-1".into(),
        name: "Surgery records system".into(),
        redirect_uris: Vec::new(),
        public: false,
        created_at: 3,
        org: Some("org-b".into()),
        jwks: Some(r#"{"keys":[]}"#.into()),
    };
    one(store, WriteOp::PutClient(system.clone())).unwrap();
    assert_eq!(store.oauth_client("sys-1").unwrap(), Some(system));
    // A client assertion is accepted once per client; an expired one is forgotten.
    let assertion = |client: &str, jti: &str, expires_at: i64| {
        one(
            store,
            WriteOp::UseAssertion {
                client_id: client.into(),
                jti: jti.into(),
                expires_at,
            },
        )
    };
    let soon = hale_fhir::date::now_millis() + 300_000;
    assertion("sys-1", "jti-1", soon).unwrap();
    assert!(matches!(
        assertion("sys-1", "jti-1", soon),
        Err(StoreError::Spent(_))
    ));
    assertion("app-1", "jti-1", soon).unwrap();
    assertion("sys-1", "jti-old", 1_000).unwrap();
    assertion("sys-1", "jti-2", soon).unwrap();
    assertion("sys-1", "jti-old", soon).unwrap();

    // An identity at an OpenID provider: linked once, updated with what it last said.
    let identity = crate::AccountIdentity {
        issuer: "https://auth.example".into(),
        subject: "sub-1".into(),
        account_id: "o-1".into(),
        nhs_number: Some("9449306125".into()),
        proofing_level: hale_core::VerificationLevel::P5,
        linked_at: 4,
    };
    one(store, WriteOp::PutIdentity(identity.clone())).unwrap();
    let raised = crate::AccountIdentity {
        proofing_level: hale_core::VerificationLevel::P9,
        linked_at: 5,
        ..identity.clone()
    };
    one(store, WriteOp::PutIdentity(raised)).unwrap();
    let kept = store
        .account_identity("https://auth.example", "sub-1")
        .unwrap()
        .unwrap();
    assert_eq!(kept.proofing_level, hale_core::VerificationLevel::P9);
    assert_eq!((kept.account_id.as_str(), kept.linked_at), ("o-1", 4));
    assert_eq!(store.identities_of_account("o-1").unwrap(), vec![kept]);

    // Passkeys: added, used (counter and last use change), removed.
    let passkey = crate::StoredPasskey {
        credential_id: "cred-1".into(),
        account_id: "o-1".into(),
        name: "My phone".into(),
        passkey: r#"{"cred":{"counter":0}}"#.into(),
        created_at: 6,
        last_used_at: None,
    };
    one(store, WriteOp::PutPasskey(passkey.clone())).unwrap();
    let used = crate::StoredPasskey {
        passkey: r#"{"cred":{"counter":1}}"#.into(),
        last_used_at: Some(7),
        ..passkey.clone()
    };
    one(store, WriteOp::PutPasskey(used.clone())).unwrap();
    assert_eq!(store.passkeys_of("o-1").unwrap(), vec![used]);
    one(
        store,
        WriteOp::DeletePasskey {
            account_id: "someone-else".into(),
            credential_id: "cred-1".into(),
        },
    )
    .unwrap();
    assert_eq!(
        store.passkeys_of("o-1").unwrap().len(),
        1,
        "only its owner removes it"
    );
    one(
        store,
        WriteOp::DeletePasskey {
            account_id: "o-1".into(),
            credential_id: "cred-1".into(),
        },
    )
    .unwrap();
    assert!(store.passkeys_of("o-1").unwrap().is_empty());
    assert!(store.identities_of_account("o-2").unwrap().is_empty());
    assert_eq!(
        store
            .account_identity("https://other.example", "sub-1")
            .unwrap(),
        None
    );
    let far = hale_fhir::date::now_millis() + 600_000;
    for (hash, expires) in [("code-live", far), ("code-old", 1_000)] {
        one(
            store,
            WriteOp::PutOAuthToken(crate::OAuthToken {
                token_hash: hash.into(),
                kind: "code".into(),
                client_id: "app-1".into(),
                grant_id: "g-1".into(),
                record_id: r.to_string(),
                account_id: "o-1".into(),
                scope: "patient/*.rs".into(),
                redirect_uri: Some("https://app.example/cb".into()),
                challenge: Some("abc".into()),
                expires_at: expires,
                used_at: None,
                nonce: Some("n-0S6_WzA2Mj".into()),
            }),
        )
        .unwrap();
    }
    let spend = |hash: &str| {
        one(
            store,
            WriteOp::UseOAuthToken {
                token_hash: hash.into(),
            },
        )
    };
    spend("code-live").unwrap();
    let kept = store.oauth_token("code-live").unwrap().unwrap();
    assert!(kept.used_at.is_some());
    assert_eq!(kept.challenge.as_deref(), Some("abc"));
    assert_eq!(kept.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    for spent in ["code-live", "code-old", "never-issued"] {
        assert!(
            matches!(spend(spent), Err(StoreError::Spent(_))),
            "{spent} must not be spendable"
        );
    }
}

pub fn emailed_links_and_recovery_codes_work_once(store: &dyn Store) {
    one(
        store,
        WriteOp::PutAccount(account("t-1", "t1@example.org", None)),
    )
    .unwrap();
    let far = hale_fhir::date::now_millis() + 3_600_000;
    for (hash, expires) in [("live", far), ("old", 1_000)] {
        one(
            store,
            WriteOp::PutToken(crate::OneTimeToken {
                token_hash: hash.into(),
                account_id: "t-1".into(),
                purpose: "verify-email".into(),
                expires_at: expires,
                used_at: None,
            }),
        )
        .unwrap();
    }
    one(
        store,
        WriteOp::UseToken {
            token_hash: "live".into(),
        },
    )
    .unwrap();
    assert!(
        store
            .one_time_token("live")
            .unwrap()
            .unwrap()
            .used_at
            .is_some()
    );
    for spent in ["live", "old", "never-issued"] {
        let err = one(
            store,
            WriteOp::UseToken {
                token_hash: spent.into(),
            },
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::Spent(_)), "{spent}: {err}");
    }
    // A spent link sinks the whole batch: the account change with it is not applied.
    let mut changed = account("t-1", "t1@example.org", None);
    changed.email_verified_at = Some(5);
    let err = store
        .write(WriteBatch {
            ops: vec![
                WriteOp::UseToken {
                    token_hash: "live".into(),
                },
                WriteOp::PutAccount(changed),
            ],
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Spent(_)));
    assert_eq!(
        store.account("t-1").unwrap().unwrap().email_verified_at,
        None
    );

    let hashes: Vec<String> = (0..10).map(|i| format!("code-{i}")).collect();
    one(
        store,
        WriteOp::SetRecoveryCodes {
            account_id: "t-1".into(),
            hashes,
        },
    )
    .unwrap();
    assert_eq!(store.recovery_codes_left("t-1").unwrap(), 10);
    one(
        store,
        WriteOp::UseRecoveryCode {
            account_id: "t-1".into(),
            hash: "code-3".into(),
        },
    )
    .unwrap();
    assert_eq!(store.recovery_codes_left("t-1").unwrap(), 9);
    let err = one(
        store,
        WriteOp::UseRecoveryCode {
            account_id: "t-1".into(),
            hash: "code-3".into(),
        },
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Spent(_)));
    // New codes replace the old ones entirely.
    one(
        store,
        WriteOp::SetRecoveryCodes {
            account_id: "t-1".into(),
            hashes: vec!["fresh".into()],
        },
    )
    .unwrap();
    assert_eq!(store.recovery_codes_left("t-1").unwrap(), 1);
    assert!(
        one(
            store,
            WriteOp::UseRecoveryCode {
                account_id: "t-1".into(),
                hash: "code-4".into()
            }
        )
        .is_err()
    );
}

/// An audit entry for tests: `n` makes each distinct.
pub fn audit_entry(record: &RecordId, n: i64) -> crate::AuditEntry {
    crate::AuditEntry {
        at: 1_700_000_000_000 + n,
        record: Some(record.clone()),
        actor: format!("account:{}", n % 3),
        on_behalf_of: None,
        app: Some("test-app".into()),
        action: "read".into(),
        what: format!("Observation/o{n}"),
        purpose: "personal".into(),
        outcome: "ok".into(),
        request_id: format!("req-{n}"),
    }
}

/// Appends `n` entries to `record`'s log, one batch each (as requests do).
pub fn append_audit(store: &dyn Store, record: &RecordId, n: i64) {
    for i in 1..=n {
        store
            .write(WriteBatch {
                ops: vec![WriteOp::Audit(audit_entry(record, i))],
            })
            .unwrap();
    }
}

pub fn the_audit_log_chains_reads_by_record_and_signs_checkpoints(store: &dyn Store) {
    let r = new_record(store, "p1");
    let other = new_record(store, "p2");
    assert_eq!(store.audit_verify().unwrap().first_bad, None);
    append_audit(store, &r, 5);
    store
        .write(WriteBatch {
            ops: vec![
                WriteOp::Audit(audit_entry(&other, 6)),
                WriteOp::AuditCheckpoint,
            ],
        })
        .unwrap();
    let v = store.audit_verify().unwrap();
    assert_eq!((v.entries, v.first_bad), (6, None));
    let mine = store.audit_of_record(&r, None, 10).unwrap();
    assert_eq!(
        mine.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [5, 4, 3, 2, 1]
    );
    assert_eq!(mine[0].entry, audit_entry(&r, 5));
    let older = store.audit_of_record(&r, Some(3), 10).unwrap();
    assert_eq!(older.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(store.audit_of_record(&other, None, 10).unwrap().len(), 1);
    let checkpoints = store.audit_checkpoints().unwrap();
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0].seq, 6);
    // A failed batch leaves no entry behind: the entry shares its change's transaction.
    let failed = store.write(WriteBatch {
        ops: vec![
            WriteOp::Audit(audit_entry(&r, 7)),
            WriteOp::Samples {
                record: RecordId::parse("no-such-record").unwrap(),
                rows: vec![],
            },
        ],
    });
    assert!(failed.is_err());
    assert_eq!(store.audit_verify().unwrap().entries, 6);
    // Many entries at once (a second's reads) chain as if appended one by one.
    store
        .write(WriteBatch {
            ops: vec![WriteOp::AuditAll(
                (7..=9).map(|n| audit_entry(&other, n)).collect(),
            )],
        })
        .unwrap();
    let v = store.audit_verify().unwrap();
    assert_eq!((v.entries, v.first_bad), (9, None));
    let theirs = store.audit_of_record(&other, None, 10).unwrap();
    assert_eq!(
        theirs.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [9, 8, 7, 6]
    );
    assert_eq!(theirs[0].entry, audit_entry(&other, 9));
}

pub fn erasing_a_record_removes_it_and_its_accounts_and_nothing_else(store: &dyn Store) {
    let gone = new_record(store, "erased");
    let kept = new_record(store, "kept");
    for (r, id) in [(&gone, "obs-gone"), (&kept, "obs-kept")] {
        put(
            store,
            r,
            obs(id, r.as_str(), "29463-7", "70.5", "2024-05-01"),
        );
        put(
            store,
            r,
            obs(id, r.as_str(), "29463-7", "71.5", "2024-05-02"),
        );
        let rows = vec![SampleRow {
            metric: "heart_rate".into(),
            source: "Watch".into(),
            start: 0,
            end: 0,
            value: 61.0,
        }];
        one(
            store,
            WriteOp::Samples {
                record: r.clone(),
                rows,
            },
        )
        .unwrap();
        append_audit(store, r, 2);
    }
    // The person's account, with what hangs off it; a carer's account with no record.
    one(
        store,
        WriteOp::PutAccount(account("e-1", "erase@example.org", Some(gone.clone()))),
    )
    .unwrap();
    one(
        store,
        WriteOp::PutAccount(account("e-2", "carer@example.org", None)),
    )
    .unwrap();
    one(
        store,
        WriteOp::PutAccount(account("k-1", "keep@example.org", Some(kept.clone()))),
    )
    .unwrap();
    for (key, who) in [("s-e1", "e-1"), ("s-e2", "e-2"), ("s-k1", "k-1")] {
        one(store, WriteOp::PutSession(session(key, who, 5))).unwrap();
        one(
            store,
            WriteOp::SetRecoveryCodes {
                account_id: who.into(),
                hashes: vec![format!("code-{who}")],
            },
        )
        .unwrap();
    }
    let client = crate::OAuthClient {
        client_id: "app-e".into(),
        name: "Step counter".into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        public: true,
        created_at: 1,
        org: None,
        jwks: None,
    };
    one(store, WriteOp::PutClient(client)).unwrap();
    let token = |hash: &str, record: &RecordId, account: &str| crate::OAuthToken {
        token_hash: hash.into(),
        kind: "refresh".into(),
        client_id: "app-e".into(),
        grant_id: "grant-1".into(),
        record_id: record.as_str().into(),
        account_id: account.into(),
        scope: "patient/*.rs".into(),
        redirect_uri: None,
        challenge: None,
        expires_at: i64::MAX,
        used_at: None,
        nonce: None,
    };
    // One the person gave an app, one their carer's app holds for the record.
    one(store, WriteOp::PutOAuthToken(token("t-own", &gone, "e-1"))).unwrap();
    one(
        store,
        WriteOp::PutOAuthToken(token("t-carer", &gone, "e-2")),
    )
    .unwrap();
    one(store, WriteOp::PutOAuthToken(token("t-kept", &kept, "k-1"))).unwrap();
    let head_before = store.audit_verify().unwrap();

    // All or nothing: an erasure in a batch that fails leaves everything as it was.
    let failed = store.write(WriteBatch {
        ops: vec![
            WriteOp::EraseRecord {
                record: gone.clone(),
            },
            put_op(
                &gone,
                obs("obs-gone", "erased", "1", "1", "2024-01-01"),
                Expect::Version(99),
            ),
        ],
    });
    assert!(failed.is_err());
    assert!(store.record_exists(&gone).unwrap());
    assert!(
        store
            .read(None, "Observation", "obs-gone")
            .unwrap()
            .is_some()
    );

    one(
        store,
        WriteOp::EraseRecord {
            record: gone.clone(),
        },
    )
    .unwrap();
    assert!(!store.record_exists(&gone).unwrap());
    assert!(
        store
            .read(None, "Observation", "obs-gone")
            .unwrap()
            .is_none()
    );
    assert!(store.read(None, "Patient", "erased").unwrap().is_none());
    assert!(
        store
            .vread(None, "Observation", "obs-gone", 1)
            .unwrap()
            .is_none()
    );
    assert!(search(store, None, "Observation", &[("code", "29463-7")]) == ["obs-kept"]);
    assert!(search(store, Some(&gone), "Observation", &[]).is_empty());
    assert!(store.everything(&gone).unwrap().is_empty());
    assert!(store.count_by_type(&gone).unwrap().is_empty());
    assert_eq!(store.sample_count(&gone).unwrap(), 0);
    assert_eq!(store.account("e-1").unwrap(), None);
    assert_eq!(store.account_by_email("erase@example.org").unwrap(), None);
    assert_eq!(store.session("s-e1").unwrap(), None);
    assert_eq!(store.recovery_codes_left("e-1").unwrap(), 0);
    assert_eq!(store.oauth_token("t-own").unwrap(), None);
    assert_eq!(store.oauth_token("t-carer").unwrap(), None);
    // Writing into it now is writing into a record that does not exist.
    let late = store.write(WriteBatch {
        ops: vec![put_op(
            &gone,
            obs("obs-late", "erased", "1", "1", "2024-01-01"),
            Expect::Any,
        )],
    });
    assert!(matches!(late, Err(StoreError::NoRecord(_))), "{late:?}");
    assert!(matches!(
        one(
            store,
            WriteOp::EraseRecord {
                record: gone.clone()
            }
        ),
        Err(StoreError::NoRecord(_))
    ));

    // Everyone else's is untouched, and the audit chain still holds, with the erased
    // record's entries kept (they name no content).
    assert!(store.record_exists(&kept).unwrap());
    let still = store
        .read(None, "Observation", "obs-kept")
        .unwrap()
        .unwrap();
    assert_eq!(still.version, 2);
    assert_eq!(
        still.value().unwrap()["valueQuantity"]["value"],
        json!(71.5)
    );
    assert_eq!(store.sample_count(&kept).unwrap(), 1);
    assert!(store.account("e-2").unwrap().is_some());
    assert!(store.session("s-e2").unwrap().is_some());
    assert!(store.account("k-1").unwrap().is_some());
    assert!(store.oauth_token("t-kept").unwrap().is_some());
    let after = store.audit_verify().unwrap();
    assert_eq!(after.first_bad, None);
    assert_eq!(after.entries, head_before.entries);
    assert_eq!(store.audit_of_record(&gone, None, 10).unwrap().len(), 2);

    // An account with no record goes on its own, with its sessions and codes.
    one(
        store,
        WriteOp::DeleteAccount {
            account_id: "e-2".into(),
        },
    )
    .unwrap();
    assert_eq!(store.account("e-2").unwrap(), None);
    assert_eq!(store.session("s-e2").unwrap(), None);
    assert_eq!(store.recovery_codes_left("e-2").unwrap(), 0);
    one(
        store,
        WriteOp::DeleteAccount {
            account_id: "e-2".into(),
        },
    )
    .unwrap();
}

pub fn samples_are_taken_away_page_by_page_in_order(store: &dyn Store) {
    let r = new_record(store, "taker");
    let other = new_record(store, "other");
    let row = |metric: &str, source: &str, start: i64, value: f64| SampleRow {
        metric: metric.into(),
        source: source.into(),
        start,
        end: start + 60_000,
        value,
    };
    // Written out of order, two sources of one metric, and two values at one time.
    let mut rows = Vec::new();
    for i in (0..25).rev() {
        rows.push(row("heart_rate", "Watch", i * 60_000, 60.0 + i as f64));
    }
    rows.push(row("heart_rate", "Phone", 5 * 60_000, 72.25));
    rows.push(row("steps", "Phone", 0, 1200.0));
    rows.push(row("steps", "Phone", 0, 30.5));
    for (record, rows) in [(&r, rows), (&other, vec![row("steps", "Phone", 0, 9.0)])] {
        store
            .write(WriteBatch {
                ops: vec![WriteOp::Samples {
                    record: record.clone(),
                    rows,
                }],
            })
            .unwrap();
    }
    let mut all: Vec<SampleRow> = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.samples_after(&r, all.last(), 7).unwrap();
        assert!(page.len() <= 7);
        if page.is_empty() {
            break;
        }
        pages += 1;
        all.extend(page);
    }
    assert_eq!(all.len(), 28);
    assert_eq!(pages, 4);
    let key = |s: &SampleRow| (s.metric.clone(), s.source.clone(), s.start, s.end);
    assert!(all.windows(2).all(|w| key(&w[0]) <= key(&w[1])), "in order");
    assert_eq!(all[0], row("heart_rate", "Phone", 5 * 60_000, 72.25));
    assert_eq!(all[1], row("heart_rate", "Watch", 0, 60.0));
    assert_eq!(all[25], row("heart_rate", "Watch", 24 * 60_000, 84.0));
    assert_eq!(all[26], row("steps", "Phone", 0, 30.5));
    assert_eq!(all[27], row("steps", "Phone", 0, 1200.0));
    // Nothing of another record, and nothing for a record without samples.
    assert!(
        store
            .samples_after(&record("nobody"), None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.samples_after(&other, None, 10).unwrap().len(), 1);
}

pub fn failed_attempts_are_counted_in_the_database_and_waits_double(store: &dyn Store) {
    let fail = |keys: &[(&str, i64)], forget_after_ms: i64| {
        let before = hale_fhir::date::now_millis();
        one(
            store,
            WriteOp::LimitFailed {
                keys: keys.iter().map(|(k, f)| ((*k).to_owned(), *f)).collect(),
                max_wait_ms: 4_000,
                forget_after_ms,
            },
        )
        .unwrap();
        before
    };
    let until = |keys: &[&str]| {
        store
            .limit_blocked_until(&keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>())
            .unwrap()
    };
    let hour = 3_600_000;
    // Two free failures for the account, many for the address.
    for _ in 0..2 {
        fail(&[("account", 2), ("address", 50)], hour);
        assert_eq!(until(&["account", "address"]), 0);
    }
    // Then 1 s, 2 s, 4 s, and no longer than the longest wait.
    for wait in [1_000, 2_000, 4_000, 4_000] {
        let at = fail(&[("account", 2), ("address", 50)], hour);
        let blocked = until(&["account"]);
        assert!(
            (at + wait..at + wait + 1_000).contains(&blocked),
            "{wait}: {}",
            blocked - at
        );
        assert_eq!(until(&["address"]), 0);
        assert_eq!(until(&["account", "address", "unknown"]), blocked);
    }
    // A success clears the account; counts left idle too long start again.
    one(
        store,
        WriteOp::LimitCleared {
            key: "account".into(),
        },
    )
    .unwrap();
    assert_eq!(until(&["account"]), 0);
    for _ in 0..3 {
        fail(&[("idle", 2)], hour);
    }
    assert!(until(&["idle"]) > 0);
    fail(&[("other", 2)], -1);
    fail(&[("idle", 2)], hour);
    assert_eq!(
        until(&["idle"]),
        0,
        "forgotten, so this is its first failure"
    );
}
