//! Passkeys (issue 3 §2) as the server sees them: offered only where the site has a domain
//! name, their options, and every refusal that needs no authenticator. The whole ceremony,
//! with Chromium's virtual authenticator, is in the browser tests.

use hale_testkit::TestApp;
use serde_json::Value;

use crate::accounts::{PASSWORD, set_up_person};

fn on_a_domain() -> (TestApp, hale_testkit::web::SmtpSink) {
    TestApp::spawn_with_mail_and(|c| c.public_url = Some(hale_testkit::LOCALHOST.into()))
}

#[test]
fn passkeys_are_not_offered_where_the_address_is_not_a_domain_name() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "ip@example.org");
    assert!(!person.browser.get("/account").html.contains("Passkeys"));
    assert_eq!(person.browser.get("/account/passkeys").status, 404);
}

#[test]
fn adding_a_passkey_without_one_from_the_browser_or_with_a_forged_one_stores_nothing() {
    let (app, mut smtp) = on_a_domain();
    let person = set_up_person(&app, &mut smtp, "keys@example.org");
    let page = person.browser.get("/account/passkeys");
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("You have not added a passkey."));
    // The options the browser gets: this site, this person, a fresh challenge, not cached.
    let options = person
        .browser
        .submit_on(&page, "/account/passkeys/options", &[]);
    assert_eq!(options.status, 200, "{}", options.html);
    assert_eq!(options.headers.get("cache-control").unwrap(), "no-store");
    let json: Value = serde_json::from_str(&options.html).unwrap();
    let public_key = &json["options"]["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost");
    assert_eq!(public_key["user"]["name"], "keys@example.org");
    assert!(public_key["challenge"].as_str().unwrap().len() >= 22);
    let state = json["state"].as_str().unwrap();
    // JavaScript off: no passkey comes with the form.
    let without = person.browser.submit_on(
        &page,
        "/account/passkeys",
        &[("name", "My phone"), ("state", state), ("credential", "")],
    );
    assert!(
        without
            .html
            .contains("Your browser did not make or use a passkey"),
        "{}",
        without.html
    );
    // A made-up credential, or a state that is not this session's, does not check.
    let forged = r#"{"id":"AAAA","rawId":"AAAA","type":"public-key","extensions":{},
        "response":{"attestationObject":"o2NmbXRkbm9uZQ","clientDataJSON":"e30"}}"#;
    for bad_state in [state, "bm90IGEgc3RhdGU"] {
        let refused = person.browser.submit_on(
            &page,
            "/account/passkeys",
            &[
                ("name", "My phone"),
                ("state", bad_state),
                ("credential", forged),
            ],
        );
        assert!(
            refused.html.contains("That passkey could not be checked"),
            "{}",
            refused.html
        );
    }
    assert!(
        person
            .browser
            .get("/account/passkeys")
            .html
            .contains("You have not added a passkey.")
    );
}

#[test]
fn a_forged_passkey_at_sign_in_leaves_the_session_short_of_its_second_factor() {
    let (app, mut smtp) = on_a_domain();
    set_up_person(&app, &mut smtp, "signin@example.org");
    let browser = app.browser();
    let code_page = browser.submit(
        "/sign-in",
        &[("email", "signin@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(code_page.path(), "/sign-in/security-code");
    assert!(code_page.html.contains("Use a passkey instead"));
    let page = browser.get("/sign-in/passkey");
    assert_eq!(page.status, 200);
    // With no passkey on the account there are no options to give.
    let options = browser.submit_on(&page, "/sign-in/passkey/options", &[]);
    assert_eq!(options.status, 404);
    let forged = r#"{"id":"AAAA","rawId":"AAAA","type":"public-key","extensions":{},
        "response":{"authenticatorData":"AAAA","clientDataJSON":"e30","signature":"AAAA","userHandle":null}}"#;
    let refused = browser.submit_on(
        &page,
        "/sign-in/passkey",
        &[("state", "bm90IGEgc3RhdGU"), ("credential", forged)],
    );
    assert!(
        refused.html.contains("That passkey could not be checked"),
        "{}",
        refused.html
    );
    let record = browser.get("/record");
    assert_ne!(
        record.path(),
        "/record",
        "health data needs the second factor"
    );
}
