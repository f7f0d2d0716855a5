//! Accounts and sign-in through the web pages, as a browser does them, with Hale's emails
//! going to a real SMTP server (issue 3 §1, §2, §5, §7, §8).

use hale_testkit::TestApp;
use hale_testkit::web::{Browser, Page, SmtpSink, link_in};

pub(crate) const PASSWORD: &str = "walrus lantern orchard 42";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A person who has signed up, confirmed their address, set up an authenticator and is
/// signed in with both factors.
pub(crate) struct Person {
    pub(crate) browser: Browser,
    pub(crate) email: String,
    secret: Vec<u8>,
    /// The code typed at set-up (so already used).
    setup_code: String,
    recovery_codes: Vec<String>,
}

impl Person {
    /// A security code from their authenticator `steps` 30-second steps ahead (a code works
    /// once, and the one typed at set-up is spent).
    pub(crate) fn code_ahead(&self, steps: u64) -> String {
        hale_auth::totp::code_at(&self.secret, now() + steps * 30).unwrap()
    }
}

fn sign_up(app: &TestApp, smtp: &mut SmtpSink, email: &str) -> Browser {
    let browser = app.browser();
    let done = browser.submit(
        "/sign-up",
        &[
            ("name", "Alex Example"),
            ("email", email),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
    );
    assert_eq!(done.path(), "/sign-up/check-email", "{}", done.html);
    let mail = smtp.next_email();
    assert!(mail.contains(&format!("To: {email}")), "{mail}");
    let link = link_in(&mail, &format!("{}/account/verify-email?token=", app.base));
    let confirmed = browser.get(&link);
    assert_eq!(confirmed.status, 200);
    assert!(confirmed.html.contains("Email address confirmed"));
    browser
}

pub(crate) fn set_up_person(app: &TestApp, smtp: &mut SmtpSink, email: &str) -> Person {
    let browser = sign_up(app, smtp, email);
    let after_password = browser.submit("/sign-in", &[("email", email), ("password", PASSWORD)]);
    // No authenticator yet: straight to setting one up.
    assert_eq!(after_password.path(), "/account/authenticator");
    assert!(
        after_password.html.contains("<svg role=\"img\""),
        "a QR code is shown"
    );
    let typed = after_password.code_after("hale-secret");
    let secret =
        hale_auth::totp::secret_from_typing(&typed).expect("the key on the page is base32");
    let code = hale_auth::totp::code_at(&secret, now()).unwrap();
    let enrolment = after_password.hidden("enrolment");
    let codes_page = browser.submit_on(
        &after_password,
        "/account/authenticator",
        &[("enrolment", &enrolment), ("code", &code)],
    );
    assert!(
        codes_page.html.contains("Save your recovery codes"),
        "{}",
        codes_page.html
    );
    let recovery_codes: Vec<String> = codes_page
        .html
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(recovery_codes.len(), 10);
    Person {
        browser,
        email: email.to_owned(),
        secret,
        setup_code: code,
        recovery_codes,
    }
}

#[test]
fn a_person_signs_up_confirms_their_email_sets_up_an_authenticator_and_sees_their_record() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "alex@example.org");
    let record = person.browser.get("/record");
    assert_eq!(record.status, 200);
    assert_eq!(record.path(), "/record");
    assert!(record.html.contains("<h1>Your record</h1>"));
    assert!(
        record
            .html
            .contains("href=\"/record/conditions\">Conditions</a>"),
        "the record by category"
    );
    assert!(record.html.contains("0 entries"));
    assert!(
        record.html.contains("Your identity has not been checked"),
        "a new account is P0"
    );
    // The start page now sends them to their record.
    assert_eq!(person.browser.get("/").path(), "/record");
    // The email held a link and no health data.
    let mail = &smtp.all()[0];
    assert!(
        mail.contains("Subject: Confirm your email address for Hale"),
        "{mail}"
    );
    assert!(!mail.contains("Alex Example"));
}

#[test]
fn health_data_is_never_shown_before_the_second_factor() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "two@example.org");
    // A new browser with the password only.
    let other = app.browser();
    let page = other.submit(
        "/sign-in",
        &[("email", &person.email), ("password", PASSWORD)],
    );
    assert_eq!(page.path(), "/sign-in/security-code");
    for path in ["/record", "/account/sessions"] {
        let p = other.get(path);
        assert_eq!(
            p.path(),
            "/sign-in/security-code",
            "{path} without a second factor"
        );
        assert!(!p.html.contains("Your record by category"));
    }
    // Replacing the authenticator also needs the current one first.
    assert_eq!(
        other.get("/account/authenticator").path(),
        "/sign-in/security-code"
    );
    let wrong = other.submit("/sign-in/security-code", &[("code", "000000")]);
    assert!(wrong.html.contains("nhsuk-error-summary"));
    assert!(wrong.html.contains("<title>Error: "));
    // The set-up code used this time step; the app's next code (accepted a step early, for
    // clock skew) is a new one.
    let code = hale_auth::totp::code_at(&person.secret, now() + 30).unwrap();
    let page = other.submit("/sign-in/security-code", &[("code", &code)]);
    assert_eq!(page.path(), "/record");
    assert!(
        other
            .get("/record")
            .html
            .contains("Your record by category")
    );
}

#[test]
fn a_security_code_works_once_and_each_recovery_code_works_once() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "once@example.org");
    // The set-up code was accepted: the same code is refused for a new sign-in.
    let code = person.setup_code.clone();
    let first = app.browser();
    first.submit(
        "/sign-in",
        &[("email", &person.email), ("password", PASSWORD)],
    );
    let page = first.submit("/sign-in/security-code", &[("code", &code)]);
    assert_eq!(
        page.path(),
        "/sign-in/security-code",
        "a used code is refused"
    );
    assert!(page.html.contains("The security code is not right"));

    let second = app.browser();
    second.submit(
        "/sign-in",
        &[("email", &person.email), ("password", PASSWORD)],
    );
    let typed = person.recovery_codes[3].to_uppercase().replace('-', " ");
    let page = second.submit("/sign-in/recovery-code", &[("code", &typed)]);
    assert_eq!(page.path(), "/record");

    let third = app.browser();
    third.submit(
        "/sign-in",
        &[("email", &person.email), ("password", PASSWORD)],
    );
    let page = third.submit(
        "/sign-in/recovery-code",
        &[("code", &person.recovery_codes[3])],
    );
    assert_eq!(
        page.path(),
        "/sign-in/recovery-code",
        "a used recovery code is refused"
    );
    assert!(page.html.contains("The recovery code is not right"));
    assert_eq!(third.get("/record").path(), "/sign-in/security-code");
}

#[test]
fn signing_up_with_a_taken_address_looks_the_same_and_warns_the_owner() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    sign_up(&app, &mut smtp, "taken@example.org");
    let again = app.browser().submit(
        "/sign-up",
        &[
            ("name", "Someone Else"),
            ("email", "Taken@Example.org"),
            ("password", "another fine passphrase 7"),
            ("confirm", "another fine passphrase 7"),
        ],
    );
    assert_eq!(again.path(), "/sign-up/check-email");
    let mail = smtp.next_email();
    assert!(
        mail.contains("Someone tried to create a Hale account"),
        "{mail}"
    );
    assert!(
        !mail.contains("verify-email?token="),
        "no new account, no new link"
    );
    // The original password still works: nothing was replaced.
    let page = app.browser().submit(
        "/sign-in",
        &[("email", "taken@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(page.path(), "/account/authenticator");
}

/// The page without its per-browser CSRF token.
fn without_token(p: &Page) -> String {
    let token = p.hidden("csrf");
    p.html.replace(&token, "")
}

#[test]
fn a_wrong_password_and_an_unknown_address_get_the_same_answer() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    sign_up(&app, &mut smtp, "known@example.org");
    let b = app.browser();
    let wrong_password = b.submit(
        "/sign-in",
        &[
            ("email", "x@example.org"),
            ("password", "not the password at all"),
        ],
    );
    let unknown = b.submit(
        "/sign-in",
        &[
            ("email", "x@example.org"),
            ("password", "not the password at all"),
        ],
    );
    assert_eq!(without_token(&wrong_password), without_token(&unknown));
    let known = b.submit(
        "/sign-in",
        &[
            ("email", "known@example.org"),
            ("password", "not the password at all"),
        ],
    );
    assert_eq!(known.status, unknown.status);
    assert_eq!(
        without_token(&known).replace("known@example.org", "x@example.org"),
        without_token(&unknown)
    );
    assert!(
        known
            .html
            .contains("The email address or password is not right")
    );
}

#[test]
fn weak_or_mismatched_passwords_are_refused_with_the_error_summary_and_nothing_is_sent() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let b = app.browser();
    for (password, confirm, message) in [
        ("short", "short", "at least 10 characters"),
        ("password123", "password123", "too easy to guess"),
        ("alexexample", "alexexample", "too easy to guess"),
        (
            PASSWORD,
            "something else entirely",
            "The passwords do not match",
        ),
    ] {
        let page = b.submit(
            "/sign-up",
            &[
                ("name", "Alex Example"),
                ("email", "weak@example.org"),
                ("password", password),
                ("confirm", confirm),
            ],
        );
        assert_eq!(page.path(), "/sign-up", "{password}");
        assert!(page.html.contains("nhsuk-error-summary"));
        assert!(page.html.contains(message), "{password}: {message}");
        assert!(
            page.html.contains("href=\"#password\"") || page.html.contains("href=\"#confirm\"")
        );
        assert!(
            !page.html.contains(password),
            "a password is never echoed back"
        );
        assert!(
            page.html.contains("value=\"weak@example.org\""),
            "the address is kept"
        );
    }
    let bad_email = b.submit(
        "/sign-up",
        &[
            ("name", ""),
            ("email", "not-an-address"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
    );
    assert!(bad_email.html.contains("Enter your full name"));
    assert!(
        bad_email
            .html
            .contains("Enter an email address in the correct format")
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(smtp.all().is_empty(), "no email for a refused form");
    let _ = &mut smtp;
}

#[test]
fn a_verification_link_works_once() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let b = app.browser();
    b.submit(
        "/sign-up",
        &[
            ("name", "Alex Example"),
            ("email", "link@example.org"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
    );
    // Before following the link, sign-in says to confirm the address.
    let early = b.submit(
        "/sign-in",
        &[("email", "link@example.org"), ("password", PASSWORD)],
    );
    assert!(early.html.contains("Confirm your email address first"));
    let link = link_in(
        &smtp.next_email(),
        &format!("{}/account/verify-email", app.base),
    );
    assert_eq!(b.get(&link).status, 200);
    let again = b.get(&link);
    assert_eq!(again.status, 400);
    assert!(again.html.contains("This link does not work"));
    let forged = b.get("/account/verify-email?token=made-up");
    assert_eq!(forged.status, 400);
}

#[test]
fn forms_without_a_valid_csrf_token_are_refused_and_change_nothing() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let b = app.browser();
    b.get("/sign-up");
    let forged = b.post_raw(
        "/sign-up",
        &[
            ("csrf", "0000"),
            ("name", "Alex Example"),
            ("email", "csrf@example.org"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
    );
    assert_eq!(forged.status, 403);
    assert!(forged.html.contains("This form has expired"));
    let missing = b.post_raw(
        "/sign-in",
        &[("email", "csrf@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(missing.status, 403);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(smtp.all().is_empty());
    let _ = &mut smtp;

    // A signed-in person's sign-out-everywhere needs the token of their own session.
    let person = set_up_person(&app, &mut smtp, "csrf2@example.org");
    let page = person
        .browser
        .post_raw("/account/sessions/end-all", &[("csrf", "forged")]);
    assert_eq!(page.status, 403);
    assert_eq!(
        person.browser.get("/record").path(),
        "/record",
        "still signed in"
    );
}

#[test]
fn repeated_wrong_passwords_are_slowed_down_with_429_and_retry_after() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    sign_up(&app, &mut smtp, "slow@example.org");
    let b = app.browser();
    let mut last = None;
    for _ in 0..7 {
        last = Some(b.submit(
            "/sign-in",
            &[
                ("email", "slow@example.org"),
                ("password", "wrong wrong wrong"),
            ],
        ));
    }
    let last = last.unwrap();
    assert_eq!(last.status, 429);
    assert!(last.headers.get("retry-after").is_some());
    assert!(last.html.contains("Too many attempts"));
    // Even the right password waits until the time is up.
    let right = b.submit(
        "/sign-in",
        &[("email", "slow@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(right.status, 429);
}

#[test]
fn two_servers_on_one_database_count_the_same_wrong_passwords() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    sign_up(&app, &mut smtp, "shared@example.org");
    // A second `hale serve` process on the same data, as when Hale is scaled out.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut other = crate::hale()
        .args(["serve", "--data-dir"])
        .arg(&app.config.data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let second = Browser::new(&format!("http://127.0.0.1:{port}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the second server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let first = app.browser();
    let wrong = [
        ("email", "shared@example.org"),
        ("password", "wrong wrong wrong"),
    ];
    // Three wrong passwords at each: six in all, one past the five that are free.
    for _ in 0..3 {
        assert_eq!(first.submit("/sign-in", &wrong).status, 200);
        assert_eq!(second.submit("/sign-in", &wrong).status, 200);
    }
    let refused = second.submit(
        "/sign-in",
        &[("email", "shared@example.org"), ("password", PASSWORD)],
    );
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(refused.status, 429, "{}", refused.html);
    assert!(refused.headers.get("retry-after").is_some());
}

#[test]
fn the_person_sees_where_they_are_signed_in_and_can_sign_out_one_or_everywhere() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "sessions@example.org");
    let mut phone = app.browser();
    phone.user_agent =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1"
            .into();
    phone.submit(
        "/sign-in",
        &[("email", &person.email), ("password", PASSWORD)],
    );
    let code = person.recovery_codes[0].clone();
    assert_eq!(
        phone
            .submit("/sign-in/recovery-code", &[("code", &code)])
            .path(),
        "/record"
    );

    let list = person.browser.get("/account/sessions");
    assert!(
        list.html.contains("Firefox on Linux (This device)"),
        "{}",
        list.html
    );
    assert!(list.html.contains("Safari on iPhone"));
    // End the phone's session from the laptop.
    let marker = "Safari on iPhone";
    let at = list.html.find(marker).unwrap();
    let rest = &list.html[at..];
    let start = rest.find("name=\"session\" value=\"").unwrap() + "name=\"session\" value=\"".len();
    let phone_session = rest[start..].split('"').next().unwrap().to_owned();
    let after = person.browser.submit_on(
        &list,
        "/account/sessions/end",
        &[("session", &phone_session)],
    );
    assert_eq!(after.path(), "/account/sessions");
    assert!(!after.html.contains("Safari on iPhone"));
    assert_eq!(
        phone.get("/record").path(),
        "/sign-in",
        "the phone is signed out at once"
    );

    let all = person.browser.submit_on(
        &person.browser.get("/account/sessions"),
        "/account/sessions/end-all",
        &[],
    );
    assert_eq!(all.path(), "/sign-in");
    assert_eq!(person.browser.get("/record").path(), "/sign-in");
}

#[test]
fn signing_out_ends_the_session_on_the_server() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "out@example.org");
    let record = person.browser.get("/record");
    let cookie_before = person.browser.get("/record");
    assert_eq!(cookie_before.path(), "/record");
    let out = person.browser.submit_on(&record, "/sign-out", &[]);
    assert_eq!(out.path(), "/");
    assert_eq!(person.browser.get("/record").path(), "/sign-in");
}

#[test]
fn pages_carry_the_security_headers_and_the_session_cookie_is_httponly_and_samesite() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    sign_up(&app, &mut smtp, "headers@example.org");
    let page = app.browser().get("/sign-in");
    let h = |n: &str| {
        page.headers
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let csp = h("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "no-referrer");
    assert_eq!(h("cache-control"), "no-store");
    assert!(!page.html.contains("<script>"), "no inline script");
    assert!(!page.html.contains(" style="), "no inline styles");

    // The session cookie, seen raw on the sign-in response.
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client.get(format!("{}/sign-in", app.base)).send().unwrap();
    let csrf_cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"));
    let html = form.text().unwrap();
    let marker = "name=\"csrf\" value=\"";
    let token = html[html.find(marker).unwrap() + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let res = client
        .post(format!("{}/sign-in", app.base))
        .header("cookie", csrf_cookie.split(';').next().unwrap())
        .form(&[
            ("csrf", token.as_str()),
            ("email", "headers@example.org"),
            ("password", PASSWORD),
        ])
        .send()
        .unwrap();
    assert_eq!(res.status(), 303);
    let session = res.headers()["set-cookie"].to_str().unwrap();
    assert!(session.starts_with("hale_session="));
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Path=/")
    );
    assert!(!session.contains("Secure"), "plain http on loopback");
}

#[test]
fn a_forgotten_password_is_reset_by_an_emailed_link_once_and_signs_out_everywhere() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "forgot@example.org");
    let other = app.browser();
    let sent = other.submit(
        "/sign-in/forgot-password",
        &[("email", "Forgot@Example.org")],
    );
    assert!(sent.html.contains("If that address has a Hale account"));
    let mail = smtp.next_email();
    assert!(mail.contains("Subject: Reset your Hale password"), "{mail}");
    let link = link_in(
        &mail,
        &format!("{}/account/reset-password?token=", app.base),
    );

    let form = other.get(&link);
    assert_eq!(form.status, 200);
    let token = form.hidden("token");
    let weak = other.submit_on(
        &form,
        "/account/reset-password",
        &[
            ("token", &token),
            ("password", "password123"),
            ("confirm", "password123"),
        ],
    );
    assert!(weak.html.contains("too easy to guess"));
    let new_password = "copper kettle meadow 9";
    let done = other.submit_on(
        &weak,
        "/account/reset-password",
        &[
            ("token", &token),
            ("password", new_password),
            ("confirm", new_password),
        ],
    );
    assert!(
        done.html.contains("Your password has been changed"),
        "{}",
        done.html
    );
    assert!(
        smtp.next_email()
            .contains("Your Hale password has been changed")
    );

    // Every session ended, the old password is gone, the new one works, the link is spent.
    assert_eq!(person.browser.get("/record").path(), "/sign-in");
    let old = app.browser().submit(
        "/sign-in",
        &[("email", &person.email), ("password", PASSWORD)],
    );
    assert!(
        old.html
            .contains("The email address or password is not right")
    );
    let new = app.browser().submit(
        "/sign-in",
        &[("email", &person.email), ("password", new_password)],
    );
    assert_eq!(
        new.path(),
        "/sign-in/security-code",
        "the authenticator is still needed"
    );
    let again = other.get(&link);
    assert_eq!(again.status, 400);
    assert!(again.html.contains("This link does not work"));
}

#[test]
fn a_reset_for_an_address_without_an_account_looks_the_same_and_sends_nothing() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let b = app.browser();
    let unknown = b.submit(
        "/sign-in/forgot-password",
        &[("email", "nobody@example.org")],
    );
    sign_up(&app, &mut smtp, "somebody@example.org");
    let known = b.submit(
        "/sign-in/forgot-password",
        &[("email", "somebody@example.org")],
    );
    assert_eq!(unknown.status, known.status);
    assert_eq!(unknown.html, known.html);
    smtp.next_email(); // the reset link for the real account
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        smtp.all().len(),
        2,
        "sign-up link and one reset link; nothing for the unknown address"
    );
    let forged = b.get("/account/reset-password?token=made-up");
    assert_eq!(forged.status, 400);
}

#[test]
fn a_person_changes_their_password_and_their_other_devices_are_signed_out() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "change@example.org");
    let phone = app.browser();
    phone.submit(
        "/sign-in",
        &[("email", &person.email), ("password", PASSWORD)],
    );
    assert_eq!(
        phone
            .submit(
                "/sign-in/recovery-code",
                &[("code", &person.recovery_codes[1])]
            )
            .path(),
        "/record"
    );
    let account = person.browser.get("/account");
    assert!(account.html.contains("change@example.org"));
    assert!(
        account.html.contains("9 codes left"),
        "one recovery code was used"
    );
    // Just signed in with both factors: no need to confirm again.
    let weak = person.browser.submit(
        "/account/password",
        &[("password", "password123"), ("confirm", "password123")],
    );
    assert!(weak.html.contains("too easy to guess"));
    let new_password = "sparrow teapot glacier 8";
    let done = person.browser.submit(
        "/account/password",
        &[("password", new_password), ("confirm", new_password)],
    );
    assert_eq!(done.path(), "/account?done=password");
    assert!(done.html.contains("Your password has been changed"));
    assert_eq!(
        phone.get("/record").path(),
        "/sign-in",
        "other devices are signed out"
    );
    assert_eq!(
        person.browser.get("/record").path(),
        "/record",
        "this one is not"
    );
    let mails = smtp.all();
    assert!(
        mails
            .last()
            .unwrap()
            .contains("Your Hale password has been changed")
    );
    let old = app.browser().submit(
        "/sign-in",
        &[("email", &person.email), ("password", PASSWORD)],
    );
    assert!(
        old.html
            .contains("The email address or password is not right")
    );

    // New recovery codes replace the old ones.
    let fresh = person.browser.submit_on(
        &person.browser.get("/account"),
        "/account/recovery-codes",
        &[],
    );
    assert!(fresh.html.contains("Save your recovery codes"));
    let new_code = fresh.code_after("hale-codes");
    let b = app.browser();
    b.submit(
        "/sign-in",
        &[("email", &person.email), ("password", new_password)],
    );
    let refused = b.submit(
        "/sign-in/recovery-code",
        &[("code", &person.recovery_codes[2])],
    );
    assert_eq!(
        refused.path(),
        "/sign-in/recovery-code",
        "an old code no longer works"
    );
    assert_eq!(
        b.submit("/sign-in/recovery-code", &[("code", &new_code)])
            .path(),
        "/record"
    );
}

#[test]
fn sensitive_changes_ask_for_the_password_and_a_code_again_once_a_while_has_passed() {
    let (app, mut smtp) = TestApp::spawn_with_mail_and(|c| c.reauth_window_secs = 4);
    let person = set_up_person(&app, &mut smtp, "again@example.org");
    std::thread::sleep(std::time::Duration::from_millis(4500));
    for (path, next) in [
        ("/account/password", "password"),
        ("/account/authenticator", "authenticator"),
    ] {
        let asked = person.browser.get(path);
        assert_eq!(
            asked.path(),
            format!("/account/confirm?next={next}"),
            "{path}"
        );
    }
    let codes = person.browser.submit_on(
        &person.browser.get("/account"),
        "/account/recovery-codes",
        &[],
    );
    assert_eq!(
        codes.path(),
        "/account/confirm?next=account",
        "new codes need it too"
    );
    // The wrong password is refused, and the redirect target comes from a fixed list.
    let confirm = person
        .browser
        .get("/account/confirm?next=https://evil.example/");
    let wrong = person.browser.submit_on(
        &confirm,
        "/account/confirm",
        &[
            ("next", "password"),
            ("password", "not it at all"),
            ("code", &person.recovery_codes[5]),
        ],
    );
    assert!(
        wrong
            .html
            .contains("The email address or password is not right")
    );
    let evil = person.browser.submit_on(
        &wrong,
        "/account/confirm",
        &[
            ("next", "https://evil.example/"),
            ("password", PASSWORD),
            ("code", &person.recovery_codes[5]),
        ],
    );
    assert_eq!(evil.path(), "/account", "never an address from the request");
    let page = person.browser.get("/account/password");
    assert_eq!(
        page.path(),
        "/account/password",
        "confirmed: the change may go ahead"
    );
}

#[test]
fn a_person_changes_their_email_address_by_a_link_to_the_new_one_and_the_old_one_is_told() {
    let (app, mut smtp) = TestApp::spawn_with_mail();
    let person = set_up_person(&app, &mut smtp, "old@example.org");
    let other = set_up_person(&app, &mut smtp, "taken@example.org");
    let record = app.record_of("old@example.org");
    let form = person.browser.get("/account/email");
    assert_eq!(form.status, 200, "{}", form.html);
    assert!(form.html.contains("Your email address is old@example.org"));
    let bad = person
        .browser
        .submit_on(&form, "/account/email", &[("email", "not an address")]);
    assert!(bad.html.contains("There is a problem"), "{}", bad.html);
    // An address that has an account looks the same, and nothing is sent.
    let sent_before = smtp.all().len();
    let taken =
        person
            .browser
            .submit_on(&form, "/account/email", &[("email", "taken@example.org")]);
    assert!(
        taken.html.contains("we have sent a link to it"),
        "{}",
        taken.html
    );
    assert_eq!(smtp.all().len(), sent_before);
    let asked = person
        .browser
        .submit_on(&form, "/account/email", &[("email", "New@Example.org")]);
    assert_eq!(
        asked.html,
        taken.html.replace("taken@example.org", "new@example.org")
    );
    let mail = smtp.next_email();
    assert!(mail.contains("To: new@example.org"), "{mail}");
    let link = link_in(&mail, &format!("{}/account/email/confirm?token=", app.base));
    // Until the link is followed, nothing has changed.
    assert_eq!(app.record_of("old@example.org"), record);
    let done = app.browser().get(&link);
    assert!(done.html.contains("Email address changed"), "{}", done.html);
    assert_eq!(app.record_of("new@example.org"), record);
    let notice = smtp.next_email();
    assert!(
        notice.contains("To: old@example.org") && notice.contains("has just been changed"),
        "{notice}"
    );
    // It works once; every device was signed out; the new address signs in.
    let again = app.browser().get(&link);
    assert_eq!(again.status, 400, "a link works once");
    assert!(
        again.html.contains("This link does not work"),
        "{}",
        again.html
    );
    assert_ne!(person.browser.get("/record").path(), "/record");
    let signed_in = app.browser().submit(
        "/sign-in",
        &[("email", "new@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(
        signed_in.path(),
        "/sign-in/security-code",
        "{}",
        signed_in.html
    );
    let _ = other;
}
