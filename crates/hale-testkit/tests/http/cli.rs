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
