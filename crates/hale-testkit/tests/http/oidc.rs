//! Signing in through an OpenID Connect provider (issue 3 §3), against a real one: the
//! `oidc-provider` package on Node.js (`tests-oidc/provider.mjs`), set up like NHS login.
//! The person goes from Hale to the provider and back as a browser does; every refusal is a
//! test of its own, named for what it refuses.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use hale_testkit::TestApp;
use hale_testkit::web::Page;
use serde_json::{Value, json};

const EMAIL: &str = "nhs-person@example.org";
const NHS_NUMBER: &str = "9449306125";

/// The provider, running until dropped.
struct Provider {
    child: Child,
    issuer: String,
    /// Kept open: the provider writes to it, and would die of a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start() -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests-oidc");
        assert!(
            std::path::Path::new(dir)
                .join("node_modules/oidc-provider")
                .exists(),
            "the OpenID provider's packages are missing: run `npm ci` in tests-oidc (scripts/test does)"
        );
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let issuer = line.trim().to_owned();
        assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
        Provider {
            child,
            issuer,
            _stdout: stdout,
        }
    }

    fn post(&self, path: &str, body: &Value) {
        let res = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.issuer))
            .json(body)
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 204, "{path}");
    }

    /// Who signs in next: verified to `level`, signed in with `vot`.
    fn person(&self, sub: &str, level: &str, vot: &str) {
        self.post(
            "/test/person",
            &json!({"sub": sub, "email": EMAIL, "email_verified": true,
                "given_name": "Nia", "family_name": "Okafor", "birthdate": "1980-04-02",
                "nhs_number": NHS_NUMBER, "identity_proofing_level": level, "vot": vot}),
        );
    }

    fn mode(&self, mode: &str) {
        self.post("/test/mode", &json!({ "mode": mode }));
    }
}

/// Hale, set up to sign people in through the provider (which knows Hale's public key).
fn hale_with_provider() -> (TestApp, Provider) {
    let (app, provider, _) = hale_with_provider_and_mail();
    (app, provider)
}

fn hale_with_provider_and_mail() -> (TestApp, Provider, hale_testkit::web::SmtpSink) {
    let provider = Provider::start();
    let issuer = provider.issuer.clone();
    let (app, smtp) = TestApp::spawn_with_mail_and(move |c| {
        c.oidc = Some(hale_server::OidcConfig {
            issuer,
            client_id: "hale".into(),
            scope: "profile email".into(),
            vtr: vec!["P9.Cp.Cd".into(), "P9.Cp.Ck".into(), "P9.Cm".into()],
            name: "NHS login".into(),
        });
    });
    provider.post(
        "/test/setup",
        &json!({"client_id": "hale",
            "redirect_uri": format!("{}/sign-in/oidc/callback", app.base),
            "jwks": app.app().oidc_public_keys().unwrap()}),
    );
    provider.person("person-1", "P9", "P9.Cp.Cd");
    (app, provider, smtp)
}

/// A fresh browser goes through the provider and back: the page it ends on.
fn sign_in_through_provider(app: &TestApp) -> (hale_testkit::web::Browser, Page) {
    let browser = app.browser();
    let start = browser.get("/sign-in");
    assert!(
        start.html.contains("Continue with NHS login"),
        "{}",
        start.html
    );
    let end = browser.get("/sign-in/oidc");
    (browser, end)
}

/// The sign-in was refused for `why`, no session was made, and no account either.
fn refused(app: &TestApp, why: &str) {
    let (browser, page) = sign_in_through_provider(app);
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(
        page.html.contains("We could not sign you in"),
        "{}",
        page.html
    );
    assert!(page.html.contains(why), "{why}: {}", page.html);
    let record = browser.get("/record");
    assert_ne!(record.path(), "/record", "no session: {}", record.html);
    assert_eq!(app.app().record_of_account(EMAIL).unwrap(), None);
}

#[test]
fn a_person_signs_in_with_nhs_login_and_their_verified_identity_is_recorded() {
    let (app, _provider) = hale_with_provider();
    let (browser, record) = sign_in_through_provider(&app);
    // Verified to P9 with a second factor at the provider: straight to the record.
    assert_eq!(record.status, 200, "{}", record.html);
    assert_eq!(record.path(), "/record", "{}", record.html);
    assert!(
        record.html.contains("Your identity has been checked."),
        "{}",
        record.html
    );
    // The account owns a new record holding the verified NHS number, at level P9.
    let id = app
        .app()
        .record_of_account(EMAIL)
        .unwrap()
        .expect("an account was made")
        .to_string();
    let token = app.token(&id, "patient/*.rs");
    let patient = app.get(&format!("/fhir/Patient/{id}"), &token).json;
    assert_eq!(patient["identifier"][0]["value"], NHS_NUMBER, "{patient}");
    assert_eq!(patient["name"][0]["text"], "Nia Okafor");
    // Verified to P9, they see what their GP surgery wrote (below P9 it would not show).
    let from_gp = app.post(
        "/fhir/Condition",
        &app.system_token,
        &json!({"resourceType": "Condition",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195967001"}], "text": "Asthma"},
            "subject": {"reference": format!("Patient/{id}")}}),
    );
    assert_eq!(from_gp.status, 201, "{}", from_gp.json);
    let conditions = browser.get("/record/conditions");
    assert!(conditions.html.contains("Asthma"), "{}", conditions.html);
    // Signing in again finds the same account.
    let (_, again) = sign_in_through_provider(&app);
    assert_eq!(again.path(), "/record");
    assert_eq!(
        app.app()
            .record_of_account(EMAIL)
            .unwrap()
            .unwrap()
            .to_string(),
        id
    );
}

#[test]
fn an_id_token_signed_with_a_key_the_provider_did_not_publish_is_refused() {
    let (app, provider) = hale_with_provider();
    provider.mode("bad-signature");
    refused(&app, "its signature did not check");
}

#[test]
fn an_id_token_from_another_issuer_is_refused() {
    let (app, provider) = hale_with_provider();
    provider.mode("wrong-issuer");
    refused(&app, "a service we do not use");
}

#[test]
fn an_id_token_for_another_client_is_refused() {
    let (app, provider) = hale_with_provider();
    provider.mode("wrong-audience");
    refused(&app, "meant for a different website");
}

#[test]
fn an_expired_id_token_is_refused() {
    let (app, provider) = hale_with_provider();
    provider.mode("expired");
    refused(&app, "had expired");
}

#[test]
fn an_id_token_replayed_from_an_earlier_sign_in_is_refused() {
    let (app, provider) = hale_with_provider();
    // A first sign-in, by someone else, whose ID token the provider then sends again.
    provider.person("person-0", "P9", "P9.Cp.Cd");
    let (_, first) = sign_in_through_provider(&app);
    assert_eq!(first.path(), "/record", "{}", first.html);
    provider.person("person-1", "P9", "P9.Cp.Cd");
    provider.mode("replay");
    let (browser, page) = sign_in_through_provider(&app);
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(
        page.html
            .contains("not for this sign-in, or had been used before"),
        "{}",
        page.html
    );
    assert_ne!(browser.get("/record").path(), "/record");
}

#[test]
fn a_lower_verification_level_than_asked_for_is_refused() {
    let (app, provider) = hale_with_provider();
    provider.person("person-1", "P5", "P5.Cp.Cd");
    refused(&app, "you need to prove who you are");
}

#[test]
fn a_callback_that_this_browser_did_not_start_is_refused() {
    let (app, _provider) = hale_with_provider();
    let browser = app.browser();
    let page = browser.get("/sign-in/oidc/callback?code=abc&state=forged");
    assert_eq!(page.status, 403);
    assert!(
        page.html.contains("started in another browser"),
        "{}",
        page.html
    );
}

#[test]
fn a_person_with_a_password_account_connects_nhs_login_and_then_signs_in_with_it() {
    let (app, _provider, mut smtp) = hale_with_provider_and_mail();
    let person = crate::accounts::set_up_person(&app, &mut smtp, EMAIL);
    let record = app.record_of(EMAIL);
    // Signing in with NHS login first is refused: the address has an account already.
    let (_, refused) = sign_in_through_provider(&app);
    assert_eq!(refused.status, 403);
    assert!(refused.html.contains("connect it from"), "{}", refused.html);
    // From their account page they connect it, and their identity is then checked (P9).
    let account = person.browser.get("/account");
    assert!(account.html.contains("NHS login"), "{}", account.html);
    assert!(account.html.contains("Not connected"));
    let connected = person
        .browser
        .submit_on(&account, "/account/identity-provider", &[]);
    assert_eq!(
        connected.path(),
        "/account?done=linked",
        "{}",
        connected.html
    );
    assert!(
        connected
            .html
            .contains("Connected: you can sign in with it"),
        "{}",
        connected.html
    );
    assert!(
        person
            .browser
            .get("/record")
            .html
            .contains("Your identity has been checked.")
    );
    // Now NHS login signs them in to the same record, in a browser of its own.
    let (_, record_page) = sign_in_through_provider(&app);
    assert_eq!(record_page.path(), "/record", "{}", record_page.html);
    assert_eq!(app.record_of(EMAIL), record);
    // A callback for a connection, in a browser that did not start it, connects nothing.
    let other = crate::accounts::set_up_person(&app, &mut smtp, "someone@example.org");
    let page = other
        .browser
        .get("/sign-in/oidc/callback?code=abc&state=forged");
    assert_eq!(page.status, 403);
    // Nor can another account connect the identity that is already this one's.
    let account = other.browser.get("/account");
    let taken = other
        .browser
        .submit_on(&account, "/account/identity-provider", &[]);
    assert_eq!(taken.status, 403, "{}", taken.html);
    assert!(
        taken
            .html
            .contains("already connected to another Hale account"),
        "{}",
        taken.html
    );
}

/// The real `hale serve`, set up with a provider (which need not be reachable to start):
/// it starts, offers the provider on the sign-in page, and stops cleanly when asked. (Hale's
/// HTTP client for the provider must be made and dropped off the async runtime.)
#[test]
fn the_server_with_a_provider_configured_starts_offers_it_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = crate::hale()
        .args([
            "serve",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--oidc-issuer",
            "http://127.0.0.1:9",
            "--oidc-client-id",
            "hale",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("Hale is running"), "{line}");
    let page = reqwest::blocking::get(format!("http://127.0.0.1:{port}/sign-in"))
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("Continue with NHS login"), "{page}");
    // The provider is not there: the person is told, in words.
    let off = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/sign-in/oidc"))
        .send()
        .unwrap();
    assert_eq!(off.status().as_u16(), 503);
    assert!(off.text().unwrap().contains("We could not sign you in"));
    // Stop it as Ctrl-C does.
    let stopped = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
