//! Organisations' systems (issue 3 §6 SMART Backend Services; issue 4 §2 grants to an
//! organisation): an operator registers an organisation and its system with the system's
//! public keys; the system signs a client assertion and gets a five-minute token; what the
//! token reaches is what people gave the organisation, decided on every request.

use hale_testkit::TestApp;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::accounts::set_up_person;

pub(crate) const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/backend-services");
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const NHS_NUMBER: &str = "9449306125";

fn data_dir(app: &TestApp) -> &str {
    app.config.data_dir.to_str().unwrap()
}

/// Registers an organisation and one system with the test keys: (organisation, client).
pub(crate) fn register_system(app: &TestApp, name: &str) -> (String, String) {
    let org = crate::ok(&[
        "admin",
        "org",
        "create",
        "--data-dir",
        data_dir(app),
        "--name",
        name,
    ]);
    let client = crate::ok(&[
        "admin",
        "client",
        "create",
        "--data-dir",
        data_dir(app),
        "--org",
        &org,
        "--name",
        "Records system",
        "--jwks",
        &format!("{KEYS}/system-jwks.json"),
    ]);
    (org, client)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What a test changes about an assertion.
pub(crate) struct Assertion<'a> {
    pub(crate) key: &'a str,
    alg: Algorithm,
    kid: &'a str,
    claims: Value,
}

impl<'a> Assertion<'a> {
    /// A good assertion by `client` for `app`'s token endpoint, signed with the EC key.
    pub(crate) fn good(app: &TestApp, client: &str) -> Self {
        let n = now();
        Assertion {
            key: "system-es384.pem",
            alg: Algorithm::ES384,
            kid: "system-ec",
            claims: json!({
                "iss": client, "sub": client,
                "aud": format!("{}/oauth/token", app.base),
                "exp": n + 240, "iat": n,
                "jti": hale_auth::secret::random_token(),
            }),
        }
    }

    pub(crate) fn signed(&self) -> String {
        let pem = std::fs::read(format!("{KEYS}/{}", self.key)).unwrap();
        let key = match self.alg {
            Algorithm::RS384 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ec_pem(&pem).unwrap(),
        };
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.to_owned());
        jsonwebtoken::encode(&header, &self.claims, &key).unwrap()
    }
}

/// Asks the token endpoint for `scope` with a signed assertion: (status, answer).
fn ask(app: &TestApp, assertion: &str, scope: &str) -> (u16, Value) {
    let res = reqwest::blocking::Client::new()
        .post(format!("{}/oauth/token", app.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ])
        .send()
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

/// A token for `client` with `scope`.
pub(crate) fn system_token(app: &TestApp, client: &str, scope: &str) -> String {
    let (status, answer) = ask(app, &Assertion::good(app, client).signed(), scope);
    assert_eq!(status, 200, "{answer}");
    answer["access_token"].as_str().unwrap().to_owned()
}

/// Alice, signed up, with her NHS number on her record: (Alice, record, her token).
fn alice_with_nhs_number(
    app: &TestApp,
    smtp: &mut hale_testkit::web::SmtpSink,
) -> (crate::accounts::Person, String, String) {
    let alice = set_up_person(app, smtp, "alice@example.org");
    let record = app.record_of(&alice.email);
    let own = app.token(&record, "patient/*.cruds");
    let mut patient = app.get(&format!("/fhir/Patient/{record}"), &own).json;
    patient["identifier"] =
        json!([{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}]);
    let put = app.put(&format!("/fhir/Patient/{record}"), &own, &patient);
    assert_eq!(put.status, 200, "{}", put.json);
    (alice, record, own)
}

fn observation(record: &str, text: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": text},
        "subject": {"reference": format!("Patient/{record}")},
        "effectiveDateTime": "2026-11-01T09:00:00Z",
        "valueQuantity": {"value": 71.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}})
}

#[test]
fn an_organisations_system_reaches_only_what_people_gave_the_organisation_until_taken_back() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let (org, client) = register_system(&app, "Riverside Surgery");
    // Alice (with her NHS number), a general measurement and a mental health condition.
    let (alice, record, own) = alice_with_nhs_number(&app, &mut smtp);
    let weight = app.post(
        "/fhir/Observation",
        &own,
        &observation(&record, "Body weight"),
    );
    assert_eq!(weight.status, 201);
    let weight_id = weight.json["id"].as_str().unwrap().to_owned();
    let condition = app.post(
        "/fhir/Condition",
        &own,
        &json!({"resourceType": "Condition",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F41.1"}]},
            "subject": {"reference": format!("Patient/{record}")}}),
    );
    assert_eq!(condition.status, 201);
    let condition_id = condition.json["id"].as_str().unwrap().to_owned();
    // Someone who gave the surgery nothing.
    let (other, other_token) = app.new_person("Bea Other");
    let theirs = app.post(
        "/fhir/Observation",
        &other_token,
        &observation(&other, "Body weight"),
    );
    let theirs_id = theirs.json["id"].as_str().unwrap().to_owned();

    let token = system_token(&app, &client, "system/*.rs system/Observation.c");

    // Before Alice gives access, her record answers as one that does not exist.
    let missing = app.get("/fhir/Observation/no-such-entry", &token);
    for path in [
        format!("/fhir/Observation/{weight_id}"),
        format!("/fhir/Observation/{theirs_id}"),
    ] {
        let hidden = app.get(&path, &token);
        assert_eq!(hidden.status, 404, "{path}");
        assert_eq!(
            hidden.json["issue"][0]["code"], missing.json["issue"][0]["code"],
            "{path}"
        );
    }
    let nobody = app.get(
        "/fhir/Observation?patient=Patient/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b&_total=accurate",
        &token,
    );
    let before = app.get(
        &format!("/fhir/Observation?patient=Patient/{record}&_total=accurate"),
        &token,
    );
    assert_eq!(before.status, 200, "{}", before.json);
    assert_eq!(before.json["total"], 0);
    assert_eq!(before.json["total"], nobody.json["total"]);
    let by_number = app.search_ids(
        &format!("/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS_NUMBER}"),
        &token,
    );
    assert!(by_number.is_empty());

    // Alice gives the surgery access to general entries, to look and add, from the web
    // (after a form sent with nothing chosen is refused).
    let form = alice.browser.get("/record/sharing/organisation");
    assert_eq!(form.status, 200, "{}", form.html);
    assert!(form.html.contains("Riverside Surgery"), "{}", form.html);
    let refused = alice.browser.submit_on(
        &form,
        "/record/sharing/organisation",
        &[("labels", "general")],
    );
    assert!(
        refused
            .html
            .contains("Select an organisation from the list")
            && refused.html.contains("Select how long"),
        "{}",
        refused.html
    );
    let given = alice.browser.submit_on(
        &form,
        "/record/sharing/organisation",
        &[
            ("org", &org),
            ("labels", "general"),
            ("access", "write"),
            ("duration", "month"),
        ],
    );
    assert_eq!(
        given.path(),
        "/record/sharing?done=given-org",
        "{}",
        given.html
    );
    assert!(given.html.contains("Riverside Surgery"));
    let notice = smtp.next_email();
    assert!(
        notice.contains("An organisation now has access to your record"),
        "{notice}"
    );

    // The same token now finds her by NHS number, reads what was shared and nothing else.
    let found = app.search_ids(
        &format!("/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS_NUMBER}"),
        &token,
    );
    assert_eq!(found, [record.as_str()]);
    assert_eq!(
        app.get(&format!("/fhir/Observation/{weight_id}"), &token)
            .status,
        200
    );
    assert_eq!(
        app.get(&format!("/fhir/Condition/{condition_id}"), &token)
            .status,
        404,
        "a mental health entry was not shared"
    );
    assert_eq!(
        app.get(&format!("/fhir/Observation/{theirs_id}"), &token)
            .status,
        404
    );
    let shared = app.search_ids(&format!("/fhir/Observation?patient={record}"), &token);
    assert_eq!(shared, [weight_id.as_str()]);
    let conditions = app.get(
        &format!("/fhir/Condition?patient={record}&_total=accurate"),
        &token,
    );
    assert_eq!(conditions.json["total"], 0);
    let unnamed = app.get("/fhir/Observation?code=http://loinc.org|29463-7", &token);
    assert_eq!(unnamed.status, 400, "a search names the person");

    // It adds a reading, which stays the surgery's; it changes nothing of Alice's.
    let added = app.post(
        "/fhir/Observation",
        &token,
        &observation(&record, "Weight at the surgery"),
    );
    assert_eq!(added.status, 201, "{}", added.json);
    let added_id = added.json["id"].as_str().unwrap().to_owned();
    let mut changed = weight.json.clone();
    changed["valueQuantity"]["value"] = json!(90);
    let update = app.put(&format!("/fhir/Observation/{weight_id}"), &token, &changed);
    assert_eq!(update.status, 403, "no update scope, and add only");
    let delete = app.send(
        "DELETE",
        &format!("/fhir/Observation/{added_id}"),
        &own,
        None,
        &[],
    );
    assert_eq!(delete.status, 403, "what the surgery wrote stays theirs");
    // Into a record that gave it nothing: as a patient that does not exist.
    let elsewhere = app.post("/fhir/Observation", &token, &observation(&other, "x"));
    let no_patient = app.post(
        "/fhir/Observation",
        &token,
        &observation("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "x"),
    );
    assert_eq!(elsewhere.status, no_patient.status);
    assert_eq!(
        elsewhere.json["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .replace(&other, "ID"),
        no_patient.json["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .replace("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "ID"),
    );
    assert_eq!(
        app.search_ids(&format!("/fhir/Observation?patient={other}"), &other_token),
        [theirs_id]
    );

    // Alice sees the surgery in "Who has looked at your record".
    let looked = alice.browser.get("/record/who-has-looked");
    assert!(
        looked
            .html
            .contains("Riverside Surgery (health or care organisation)"),
        "{}",
        looked.html
    );
    assert!(looked.html.contains("Their own computer system"));

    // She takes it back: the very next request with the same token finds nothing.
    let sharing = alice.browser.get("/record/sharing");
    let before_orgs = sharing
        .html
        .split("Health and care organisations")
        .nth(1)
        .unwrap();
    let grant = crate::sharing::grant_id_in(before_orgs);
    let revoked =
        alice
            .browser
            .submit_on(&sharing, &format!("/record/sharing/{grant}/revoke"), &[]);
    assert_eq!(revoked.path(), "/record/sharing?done=revoked");
    assert_eq!(
        app.get(&format!("/fhir/Observation/{weight_id}"), &token)
            .status,
        404
    );
    assert!(
        app.search_ids(&format!("/fhir/Observation?patient={record}"), &token)
            .is_empty()
    );
}

#[test]
fn a_system_token_lives_five_minutes_and_carries_only_system_scopes() {
    let app = TestApp::spawn();
    let (_, client) = register_system(&app, "Hilltop Care");
    let (status, answer) = ask(
        &app,
        &Assertion::good(&app, &client).signed(),
        "system/Observation.rs",
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 300);
    assert_eq!(answer["scope"], "system/Observation.rs");
    assert!(answer.get("refresh_token").is_none() && answer.get("patient").is_none());
    let token = answer["access_token"].as_str().unwrap();
    let res = reqwest::blocking::Client::new()
        .post(format!("{}/oauth/introspect", app.base))
        .form(&[("token", token)])
        .send()
        .unwrap();
    let about: Value = res.json().unwrap();
    assert_eq!(about["active"], true, "{about}");
    assert_eq!(about["client_id"], client.as_str());
    let lifetime = about["exp"].as_i64().unwrap() - now();
    assert!((295..=300).contains(&lifetime), "{lifetime}");
    // Its scopes hold: no Condition, no writes.
    let conditions = app.get("/fhir/Condition?patient=Patient/x", token);
    assert_eq!(conditions.status, 403, "{}", conditions.json);
    // The RSA key works as well as the EC one.
    let mut rsa = Assertion::good(&app, &client);
    rsa.key = "system-rs384.pem";
    rsa.alg = Algorithm::RS384;
    rsa.kid = "system-rsa";
    assert_eq!(ask(&app, &rsa.signed(), "system/*.rs").0, 200);
    // The configuration tells systems how.
    let config: Value =
        reqwest::blocking::get(format!("{}/.well-known/smart-configuration", app.base))
            .unwrap()
            .json()
            .unwrap();
    for (field, value) in [
        ("grant_types_supported", "client_credentials"),
        ("token_endpoint_auth_methods_supported", "private_key_jwt"),
        ("token_endpoint_auth_signing_alg_values_supported", "ES384"),
        ("token_endpoint_auth_signing_alg_values_supported", "RS384"),
        ("capabilities", "client-confidential-asymmetric"),
    ] {
        assert!(
            config[field].as_array().unwrap().iter().any(|v| v == value),
            "{field} lacks {value}: {config}"
        );
    }
}

/// Asserts that the token endpoint refuses `assertion` as an invalid client (401).
fn refused(app: &TestApp, assertion: &str, why: &str) {
    let (status, answer) = ask(app, assertion, "system/*.rs");
    assert_eq!(status, 401, "{why}: {answer}");
    assert_eq!(answer["error"], "invalid_client", "{why}: {answer}");
    assert!(answer.get("access_token").is_none());
}

#[test]
fn an_assertion_signed_with_a_key_not_registered_is_refused() {
    let app = TestApp::spawn();
    let (_, client) = register_system(&app, "Hilltop Care");
    let mut forged = Assertion::good(&app, &client);
    forged.key = "stranger-es384.pem";
    refused(&app, &forged.signed(), "another key, the registered kid");
    forged.kid = "stranger";
    refused(&app, &forged.signed(), "another key and kid");
}

#[test]
fn an_assertion_for_another_audience_or_about_another_client_is_refused() {
    let app = TestApp::spawn();
    let (_, client) = register_system(&app, "Hilltop Care");
    let (_, second) = register_system(&app, "Lakeside Hospital");
    let mut elsewhere = Assertion::good(&app, &client);
    elsewhere.claims["aud"] = json!("https://other.example/oauth/token");
    refused(&app, &elsewhere.signed(), "wrong audience");
    let mut other_subject = Assertion::good(&app, &client);
    other_subject.claims["sub"] = json!(second);
    refused(&app, &other_subject.signed(), "sub is not iss");
    let mut unknown = Assertion::good(&app, "no-such-client");
    unknown.claims["sub"] = json!("no-such-client");
    refused(&app, &unknown.signed(), "unknown client");
}

#[test]
fn an_expired_or_long_lived_assertion_is_refused() {
    let app = TestApp::spawn();
    let (_, client) = register_system(&app, "Hilltop Care");
    let mut expired = Assertion::good(&app, &client);
    expired.claims["exp"] = json!(now() - 120);
    refused(&app, &expired.signed(), "expired");
    let mut long = Assertion::good(&app, &client);
    long.claims["exp"] = json!(now() + 3600);
    refused(&app, &long.signed(), "lives an hour");
    let mut without_jti = Assertion::good(&app, &client);
    without_jti.claims.as_object_mut().unwrap().remove("jti");
    refused(&app, &without_jti.signed(), "no jti");
}

#[test]
fn a_replayed_assertion_is_refused() {
    let app = TestApp::spawn();
    let (_, client) = register_system(&app, "Hilltop Care");
    let once = Assertion::good(&app, &client).signed();
    assert_eq!(ask(&app, &once, "system/*.rs").0, 200);
    refused(&app, &once, "the same assertion again");
}

#[test]
fn patient_scopes_apps_and_missing_assertions_are_refused_at_the_token_endpoint() {
    let app = TestApp::spawn();
    let (_, client) = register_system(&app, "Hilltop Care");
    let (status, answer) = ask(
        &app,
        &Assertion::good(&app, &client).signed(),
        "patient/*.rs",
    );
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, answer) = ask(&app, &Assertion::good(&app, &client).signed(), "");
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // An app registered for people to connect cannot use the client_credentials grant.
    let app_client = crate::oauth::register(&app, "https://app.example/cb");
    let mut as_app = Assertion::good(&app, &app_client);
    as_app.claims["sub"] = json!(app_client);
    let (status, answer) = ask(&app, &as_app.signed(), "system/*.rs");
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{answer}"
    );
    let res = reqwest::blocking::Client::new()
        .post(format!("{}/oauth/token", app.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "system/*.rs"),
        ])
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[test]
fn an_operator_cannot_register_a_private_key_or_a_system_without_an_organisation() {
    let app = TestApp::spawn();
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.json");
    std::fs::write(
        &private,
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"a","y":"b","d":"c"}]}"#,
    )
    .unwrap();
    let org = crate::ok(&[
        "admin",
        "org",
        "create",
        "--data-dir",
        data_dir(&app),
        "--name",
        "Hilltop Care",
    ]);
    let out = crate::run(&[
        "admin",
        "client",
        "create",
        "--data-dir",
        data_dir(&app),
        "--org",
        &org,
        "--name",
        "x",
        "--jwks",
        private.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("register only the public keys"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crate::run(&[
        "admin",
        "client",
        "create",
        "--data-dir",
        data_dir(&app),
        "--org",
        "no-such-org",
        "--name",
        "x",
        "--jwks",
        &format!("{KEYS}/system-jwks.json"),
    ]);
    assert!(!out.status.success());
}

/// The person gives `org` access to their general entries from the sharing page.
fn give_organisation(person: &crate::accounts::Person, org: &str, access: &str) {
    let form = person.browser.get("/record/sharing/organisation");
    let given = person.browser.submit_on(
        &form,
        "/record/sharing/organisation",
        &[
            ("org", org),
            ("labels", "general"),
            ("access", access),
            ("duration", "until-revoked"),
        ],
    );
    assert_eq!(
        given.path(),
        "/record/sharing?done=given-org",
        "{}",
        given.html
    );
}

#[test]
fn a_client_written_elsewhere_completes_the_backend_services_flow() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let (org, client) = register_system(&app, "Riverside Surgery");
    let (alice, record, own) = alice_with_nhs_number(&app, &mut smtp);
    assert_eq!(
        app.post(
            "/fhir/Observation",
            &own,
            &observation(&record, "Body weight")
        )
        .status,
        201
    );
    give_organisation(&alice, &org, "read");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/backend-services-client.mjs"
    );
    let out = std::process::Command::new("node")
        .args([
            script,
            &app.base,
            &client,
            &format!("{KEYS}/system-rs384.pem"),
            "system-rsa",
            NHS_NUMBER,
        ])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        found,
        json!({"expires_in": 300, "scope": "system/Patient.rs system/Observation.rs",
            "patient": record, "observations": ["Body weight"]})
    );
}

#[test]
fn a_professional_at_an_organisation_sees_what_people_gave_it_and_adds_a_clinical_note() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let (org, _) = register_system(&app, "Riverside Surgery");
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let record = app.record_of(&alice.email);
    let own = app.token(&record, "patient/*.cruds");
    let weight = app.post(
        "/fhir/Observation",
        &own,
        &observation(&record, "Body weight"),
    );
    let weight_id = weight.json["id"].as_str().unwrap().to_owned();
    let condition = app.post(
        "/fhir/Condition",
        &own,
        &json!({"resourceType": "Condition",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F41.1"}]},
            "subject": {"reference": format!("Patient/{record}")}}),
    );
    let condition_id = condition.json["id"].as_str().unwrap().to_owned();
    give_organisation(&alice, &org, "write");
    assert!(smtp.next_email().contains("An organisation now has access"));

    // Dr Patel has an account, and the operator records that she works at the surgery.
    let gp = set_up_person(&app, &mut smtp, "gp@example.org");
    let outsider = set_up_person(&app, &mut smtp, "other-gp@example.org");
    crate::ok(&[
        "admin",
        "org",
        "add-member",
        "--data-dir",
        data_dir(&app),
        "--org",
        &org,
        "--email",
        "gp@example.org",
    ]);
    let shared = gp.browser.get("/shared-with-me");
    assert!(
        shared.html.contains("A professional at Riverside Surgery"),
        "{}",
        shared.html
    );
    assert!(
        !outsider
            .browser
            .get("/shared-with-me")
            .html
            .contains("Riverside Surgery")
    );
    let grant = shared
        .html
        .split("name=\"grant\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let opened = gp
        .browser
        .submit_on(&shared, "/shared-with-me/open", &[("grant", &grant)]);
    assert_eq!(opened.path(), "/record", "{}", opened.html);
    assert_eq!(
        gp.browser
            .get(&format!("/record/entry/Observation/{weight_id}"))
            .status,
        200
    );
    assert_eq!(
        gp.browser
            .get(&format!("/record/entry/Condition/{condition_id}"))
            .status,
        404,
        "a mental health entry was not shared"
    );
    // She writes a clinical note, which stays the surgery's.
    let form = gp.browser.get("/record/add/clinical-note");
    let added = gp.browser.submit_on(
        &form,
        "/record/add/clinical-note",
        &[("title", "Review"), ("note", "Weight stable.")],
    );
    assert_eq!(added.path(), "/record/documents", "{}", added.html);
    let notes = app.search_ids(
        "/fhir/DocumentReference?type=http://loinc.org|11506-3",
        &own,
    );
    assert_eq!(notes.len(), 1);
    let delete = app.send(
        "DELETE",
        &format!("/fhir/DocumentReference/{}", notes[0]),
        &own,
        None,
        &[],
    );
    assert_eq!(delete.status, 403, "what the surgery wrote stays theirs");
    // Alice sees that someone at the surgery looked.
    let looked = alice.browser.get("/record/who-has-looked");
    assert!(
        looked
            .html
            .contains("Someone who works at Riverside Surgery"),
        "{}",
        looked.html
    );
    // When Dr Patel leaves the surgery, her next page says her access has ended; back at
    // the surgery, she reaches the record again.
    let member = |command: &str, extra: &[&str]| {
        let mut args = vec!["admin", "org", command, "--data-dir", data_dir(&app)];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--email", "gp@example.org"]);
        crate::ok(&args);
    };
    member("remove-member", &[]);
    let left = gp.browser.get("/record");
    assert!(left.html.contains("Your access has ended"), "{}", left.html);
    member("add-member", &["--org", &org]);
    let back = gp.browser.get("/shared-with-me");
    gp.browser
        .submit_on(&back, "/shared-with-me/open", &[("grant", &grant)]);
    assert_eq!(
        gp.browser
            .get(&format!("/record/entry/Observation/{weight_id}"))
            .status,
        200
    );
    // When she takes the surgery's access back, Dr Patel's next page says it has ended.
    let sharing = alice.browser.get("/record/sharing");
    let org_part = sharing
        .html
        .split("Health and care organisations")
        .nth(1)
        .unwrap();
    let org_grant = crate::sharing::grant_id_in(org_part);
    alice.browser.submit_on(
        &sharing,
        &format!("/record/sharing/{org_grant}/revoke"),
        &[],
    );
    let after = gp.browser.get("/record");
    assert!(
        after.html.contains("Your access has ended"),
        "{}",
        after.html
    );
}
