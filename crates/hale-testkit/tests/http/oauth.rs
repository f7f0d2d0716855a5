//! Apps connecting to a person's record through the OAuth 2.0 authorisation server (issue 3
//! §6, SMART App Launch standalone patient launch), step by step over HTTP as an app and a
//! browser do them, with each refusal named.

use hale_testkit::TestApp;
use serde_json::Value;

use crate::accounts::{PASSWORD, set_up_person};

/// Alice, signed up, with a weight of her own: (Alice, her record).
fn alice_with_a_weight(
    app: &TestApp,
    smtp: &mut hale_testkit::web::SmtpSink,
) -> (crate::accounts::Person, String) {
    let alice = set_up_person(app, smtp, "alice@example.org");
    let record = app.record_of(&alice.email);
    let own = app.token(&record, "patient/*.cruds");
    let weight = app.post(
        "/fhir/Observation",
        &own,
        &serde_json::json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Body weight"},
            "subject": {"reference": format!("Patient/{record}")},
            "valueQuantity": {"value": 71.5, "unit": "kg"}}),
    );
    assert_eq!(weight.status, 201);
    (alice, record)
}

/// RFC 7636 appendix B: a verifier and its S256 challenge, computed independently of Hale.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub(crate) fn register(app: &TestApp, redirect: &str) -> String {
    crate::ok(&[
        "admin",
        "client",
        "create",
        "--data-dir",
        app.config.data_dir.to_str().unwrap(),
        "--name",
        "Step Counter",
        "--redirect-uri",
        redirect,
        "--public",
    ])
}

fn authorize_url(app: &TestApp, client: &str, redirect: &str, method: &str, scope: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("scope", scope),
            ("state", "xyz-123"),
            ("aud", &format!("{}/fhir", app.base)),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", method),
        ])
        .finish();
    format!("/oauth/authorize?{query}")
}

/// A query parameter of an address.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `POST` a form to an OAuth endpoint, as an app does.
fn post_form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let res = reqwest::blocking::Client::new()
        .post(format!("{}{path}", app.base))
        .form(fields)
        .send()
        .unwrap();
    let status = res.status().as_u16();
    let no_store = res
        .headers()
        .get("cache-control")
        .is_some_and(|v| v == "no-store");
    assert!(no_store, "token responses must not be cached");
    (status, res.json().unwrap_or(Value::Null))
}

fn exchange(
    app: &TestApp,
    client: &str,
    redirect: &str,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    post_form(
        app,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("client_id", client),
            ("code_verifier", verifier),
        ],
    )
}

/// The person allows the app on the consent screen (general entries) and the app exchanges
/// the code: the token response.
fn connect(
    app: &TestApp,
    browser: &hale_testkit::web::Browser,
    client: &str,
    redirect: &str,
    scope: &str,
) -> Value {
    connect_seeing(app, browser, client, redirect, scope, &["general"])
}

/// The same, the person choosing the labels the app sees.
/// The person opens an authorisation request and allows it, sharing `labels`: the code the
/// app gets back.
fn approve(browser: &hale_testkit::web::Browser, url: &str, labels: &[&str]) -> String {
    let consent = browser.get(url);
    let request = consent.hidden("request");
    let mut fields = vec![("request", request.as_str()), ("decision", "allow")];
    fields.extend(labels.iter().map(|l| ("labels", *l)));
    let back = browser.submit_on(&consent, "/oauth/authorize", &fields);
    param(&back.url, "code").expect("a code")
}

pub(crate) fn connect_seeing(
    app: &TestApp,
    browser: &hale_testkit::web::Browser,
    client: &str,
    redirect: &str,
    scope: &str,
    labels: &[&str],
) -> Value {
    let code = approve(
        browser,
        &authorize_url(app, client, redirect, "S256", scope),
        labels,
    );
    let (status, tokens) = exchange(app, client, redirect, &code, VERIFIER);
    assert_eq!(status, 200, "{tokens}");
    tokens
}

fn refresh(app: &TestApp, client: &str, token: &str) -> (u16, Value) {
    post_form(
        app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client),
        ],
    )
}

#[test]
fn an_app_is_connected_with_pkce_reads_within_its_scopes_and_is_cut_off_when_disconnected() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let (alice, record) = alice_with_a_weight(&app, &mut smtp);
    let redirect = format!("{}/app-callback", app.base);
    let client = register(&app, &redirect);
    let config = app.get("/.well-known/smart-configuration", "");
    assert_eq!(
        config.json["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        config.json["token_endpoint"].as_str(),
        Some(format!("{}/oauth/token", app.base).as_str())
    );

    // The consent screen says what the app will do, in plain words.
    let scope = "launch/patient patient/Observation.rs offline_access";
    let consent = alice
        .browser
        .get(&authorize_url(&app, &client, &redirect, "S256", scope));
    assert_eq!(consent.status, 200, "{}", consent.html);
    assert!(
        consent
            .html
            .contains("Connect Step Counter to your record?")
    );
    assert!(
        consent
            .html
            .contains("look at test results, measurements and wellbeing")
    );
    assert!(
        consent
            .html
            .contains("keep working when you are not using it")
    );
    let back = alice.browser.submit_on(
        &consent,
        "/oauth/authorize",
        &[
            ("request", &consent.hidden("request")),
            ("labels", "general"),
            ("decision", "allow"),
        ],
    );
    assert!(back.url.starts_with(&redirect), "{}", back.url);
    assert_eq!(param(&back.url, "state").as_deref(), Some("xyz-123"));
    let code = param(&back.url, "code").expect("a code");

    // The wrong verifier is refused; the right one gives tokens bound to the record; the
    // code works once.
    let (status, wrong) = exchange(&app, &client, &redirect, &code, &"x".repeat(43));
    assert_eq!(
        (status, wrong["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // (A wrong verifier does not spend the code.)
    let (status, tokens) = exchange(&app, &client, &redirect, &code, VERIFIER);
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["patient"].as_str(), Some(record.as_str()));
    assert!(tokens["expires_in"].as_i64().unwrap() <= 3600);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, replay) = exchange(&app, &client, &redirect, &code, VERIFIER);
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Replaying the code ended that connection (RFC 6749 §4.1.2): start again.
    assert_eq!(app.get("/fhir/Observation", &access).status, 401);
    let tokens = connect(&app, &alice.browser, &client, &redirect, scope);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_1 = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Within its scopes: Observations yes, Conditions no.
    let listed = app.get("/fhir/Observation", &access);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json["total"], 1);
    assert_eq!(app.get("/fhir/Condition", &access).status, 403);
    let introspected = post_form(&app, "/oauth/introspect", &[("token", &access)]).1;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["client_id"].as_str(), Some(client.as_str()));

    // Refresh tokens rotate; using a spent one ends the whole connection.
    let (status, rotated) = refresh(&app, &client, &refresh_1);
    assert_eq!(status, 200, "{rotated}");
    let access_2 = rotated["access_token"].as_str().unwrap().to_owned();
    let refresh_2 = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh_2, refresh_1);
    assert_eq!(app.get("/fhir/Observation", &access_2).status, 200);
    let (status, reused) = refresh(&app, &client, &refresh_1);
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(app.get("/fhir/Observation", &access_2).status, 401);
    assert_eq!(refresh(&app, &client, &refresh_2).0, 400);
    assert_eq!(
        post_form(&app, "/oauth/introspect", &[("token", &access_2)]).1["active"],
        false
    );

    // Connect again; the person sees the app and when it looked, and disconnects it.
    let tokens = connect(&app, &alice.browser, &client, &redirect, scope);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/fhir/Observation", &access).status, 200);
    let looked = alice.browser.get("/record/who-has-looked?all=1");
    assert!(looked.html.contains("Step Counter"), "{}", looked.html);
    let sharing = alice.browser.get("/record/sharing");
    assert!(
        sharing.html.contains("Disconnect Step Counter"),
        "{}",
        sharing.html
    );
    let grant = sharing
        .html
        .split("/revoke\"")
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    alice
        .browser
        .submit_on(&sharing, &format!("/record/sharing/{grant}/revoke"), &[]);
    assert_eq!(app.get("/fhir/Observation", &access).status, 401);

    // The app revokes its own token (RFC 7009): the connection ends at once.
    let tokens = connect(&app, &alice.browser, &client, &redirect, scope);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, _) = post_form(
        &app,
        "/oauth/revoke",
        &[("token", &access), ("client_id", &client)],
    );
    assert_eq!(status, 200);
    assert_eq!(app.get("/fhir/Observation", &access).status, 401);
}

#[test]
fn authorization_requests_that_cannot_be_trusted_are_refused() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let redirect = format!("{}/app-callback", app.base);
    let client = register(&app, &redirect);
    let scope = "launch/patient patient/*.rs";
    // PKCE plain is refused, back at the app.
    let plain = alice
        .browser
        .get(&authorize_url(&app, &client, &redirect, "plain", scope));
    assert!(plain.url.starts_with(&redirect), "{}", plain.url);
    assert_eq!(
        param(&plain.url, "error").as_deref(),
        Some("invalid_request")
    );
    // A return address the app did not register: a page here, never a redirect.
    let elsewhere = alice.browser.get(&authorize_url(
        &app,
        &client,
        "https://attacker.example/cb",
        "S256",
        scope,
    ));
    assert_eq!(elsewhere.status, 400);
    assert!(elsewhere.html.contains("This app cannot be connected"));
    // An unknown app.
    let unknown = alice.browser.get(&authorize_url(
        &app,
        "no-such-app",
        &redirect,
        "S256",
        scope,
    ));
    assert_eq!(unknown.status, 400);
    // Scopes beyond the person's own record.
    let system = alice.browser.get(&authorize_url(
        &app,
        &client,
        &redirect,
        "S256",
        "system/*.rs",
    ));
    assert_eq!(
        param(&system.url, "error").as_deref(),
        Some("invalid_scope")
    );
    // The person says no.
    let consent = alice
        .browser
        .get(&authorize_url(&app, &client, &redirect, "S256", scope));
    let denied = alice.browser.submit_on(
        &consent,
        "/oauth/authorize",
        &[
            ("request", &consent.hidden("request")),
            ("decision", "deny"),
        ],
    );
    assert_eq!(
        param(&denied.url, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(param(&denied.url, "state").as_deref(), Some("xyz-123"));
    // An unregistered client at the token endpoint, and an unknown grant type.
    let (status, body) = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "nobody"),
            ("code", "x"),
        ],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = post_form(
        &app,
        "/oauth/token",
        &[("grant_type", "password"), ("client_id", &client)],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[test]
fn someone_not_yet_signed_in_signs_in_and_comes_back_to_the_consent_screen() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let redirect = format!("{}/app-callback", app.base);
    let client = register(&app, &redirect);
    let browser = app.browser();
    let asked = browser.get(&authorize_url(
        &app,
        &client,
        &redirect,
        "S256",
        "launch/patient patient/*.rs",
    ));
    assert_eq!(asked.path(), "/sign-in");
    let after_password = browser.submit_on(
        &asked,
        "/sign-in",
        &[("email", &alice.email), ("password", PASSWORD)],
    );
    assert_eq!(after_password.path(), "/sign-in/security-code");
    let consent = browser.submit_on(
        &after_password,
        "/sign-in/security-code",
        &[("code", &alice.code_ahead(1))],
    );
    assert!(
        consent
            .html
            .contains("Connect Step Counter to your record?"),
        "{}",
        consent.html
    );
}

#[test]
fn guessing_codes_at_the_token_endpoint_is_slowed_down_with_429() {
    let app = TestApp::spawn();
    let redirect = format!("{}/app-callback", app.base);
    let client = register(&app, &redirect);
    let mut statuses = Vec::new();
    for i in 0..8 {
        let res = reqwest::blocking::Client::new()
            .post(format!("{}/oauth/token", app.base))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &format!("guess-{i}")),
                ("client_id", &client),
            ])
            .send()
            .unwrap();
        if res.status() == 429 {
            assert!(res.headers().get("retry-after").is_some());
        }
        statuses.push(res.status().as_u16());
    }
    assert_eq!(&statuses[..5], &[400; 5], "{statuses:?}");
    assert!(statuses[6..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[test]
fn an_app_asking_for_openid_gets_an_id_token_signed_with_the_published_key() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let record = app.record_of(&alice.email);
    let redirect = format!("{}/app-callback", app.base);
    let client = register(&app, &redirect);
    let discovery = app.get("/.well-known/openid-configuration", "").json;
    assert_eq!(discovery["issuer"], app.base.as_str());
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"][0],
        "ES256"
    );
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_owned();
    let keys: jsonwebtoken::jwk::JwkSet =
        reqwest::blocking::get(&jwks_uri).unwrap().json().unwrap();

    // The nonce goes with the authorisation request and comes back in the ID token.
    let mut url = authorize_url(
        &app,
        &client,
        &redirect,
        "S256",
        "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs offline_access",
    );
    url.push_str("&nonce=n-0S6_WzA2Mj");
    let code = approve(&alice.browser, &url, &["general"]);
    let (status, tokens) = exchange(&app, &client, &redirect, &code, VERIFIER);
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let key = keys
        .find(header.kid.as_deref().unwrap())
        .expect("its key is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&client]);
    validation.set_issuer(&[&app.base]);
    let claims = jsonwebtoken::decode::<Value>(
        id_token,
        &jsonwebtoken::DecodingKey::from_jwk(key).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(
        claims["fhirUser"],
        format!("{}/fhir/Patient/{record}", app.base)
    );
    // The Patient it names is the one the token reads.
    let patient = app.get(
        &format!("/fhir/Patient/{record}"),
        tokens["access_token"].as_str().unwrap(),
    );
    assert_eq!(patient.status, 200);

    // A refreshed token comes with a new ID token, without the nonce; an app that did not
    // ask for openid gets none.
    let (_, refreshed) = refresh(&app, &client, tokens["refresh_token"].as_str().unwrap());
    let again = refreshed["id_token"].as_str().expect("an ID token");
    let claims = jsonwebtoken::decode::<Value>(
        again,
        &jsonwebtoken::DecodingKey::from_jwk(key).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert!(claims.get("nonce").is_none());
    let plain = connect_seeing(
        &app,
        &alice.browser,
        &client,
        &redirect,
        "launch/patient patient/Observation.rs",
        &["general"],
    );
    assert!(plain.get("id_token").is_none(), "{plain}");
}

#[test]
fn an_app_written_elsewhere_completes_the_standalone_launch_and_reads_with_its_token() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let (alice, record) = alice_with_a_weight(&app, &mut smtp);
    let redirect = format!("{}/app-callback", app.base);
    let client = register(&app, &redirect);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/smart-launch-client.mjs");
    let out = std::process::Command::new("node")
        .args([
            script,
            &app.base,
            &client,
            &redirect,
            "alice@example.org",
            PASSWORD,
            &alice.code_ahead(1),
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
        serde_json::json!({"patient": record, "has_id_token": true, "has_refresh_token": false,
            "scope": "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs",
            "observations": ["Body weight"]})
    );
}

#[test]
fn a_confidential_app_proves_itself_with_a_signed_assertion_at_the_token_endpoint() {
    use crate::backend::{ASSERTION_TYPE, Assertion, KEYS};
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let alice = set_up_person(&app, &mut smtp, "alice@example.org");
    let redirect = format!("{}/app-callback", app.base);
    let client = crate::ok(&[
        "admin",
        "client",
        "create",
        "--data-dir",
        app.config.data_dir.to_str().unwrap(),
        "--name",
        "Clinic Portal",
        "--redirect-uri",
        &redirect,
        "--jwks",
        &format!("{KEYS}/system-jwks.json"),
    ]);
    let code = approve(
        &alice.browser,
        &authorize_url(
            &app,
            &client,
            &redirect,
            "S256",
            "launch/patient patient/Observation.rs offline_access",
        ),
        &["general"],
    );
    let token_request = |extra: &[(&str, &str)]| {
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("client_id", client.as_str()),
            ("code_verifier", VERIFIER),
        ];
        fields.extend_from_slice(extra);
        post_form(&app, "/oauth/token", &fields)
    };
    // The code and PKCE alone are not enough for a confidential app.
    let (status, answer) = token_request(&[]);
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A key nobody registered does not do either.
    let mut forged = Assertion::good(&app, &client);
    forged.key = "stranger-es384.pem";
    let forged = forged.signed();
    let (status, _) = token_request(&[
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &forged),
    ]);
    assert_eq!(status, 401);
    let assertion = Assertion::good(&app, &client).signed();
    let (status, tokens) = token_request(&[
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &assertion),
    ]);
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string());
    // Refreshing needs a fresh assertion too.
    let (status, _) = refresh(&app, &client, tokens["refresh_token"].as_str().unwrap());
    assert_eq!(status, 401);
}
