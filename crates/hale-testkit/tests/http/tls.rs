//! Built-in TLS (issue 3 §8): given a certificate and its key, Hale serves HTTPS only, with
//! HSTS and `Secure` cookies; a certificate that does not go with its key stops start-up.

use hale_testkit::TestApp;

/// A self-signed certificate for 127.0.0.1 in `dir`: (certificate PEM, paths).
fn certificate(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    (made.cert.pem(), cert, key)
}

#[test]
fn with_a_certificate_hale_serves_https_only_with_hsts_and_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, cert, key) = certificate(dir.path());
    let (app, _smtp) = TestApp::spawn_with_mail_and(move |c| c.tls = Some((cert, key)));
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let page = client.get(format!("{}/sign-in", app.base)).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(
        page.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let metadata = client
        .get(format!("{}/fhir/metadata", app.base))
        .send()
        .unwrap();
    assert_eq!(metadata.status().as_u16(), 200);
    // Plain HTTP on the same port gets no page, and a client that does not trust the
    // certificate gets nothing either.
    let plain = reqwest::blocking::Client::new()
        .get(app.base.replace("https://", "http://") + "/sign-in")
        .send();
    assert!(plain.is_err() || plain.unwrap().status().as_u16() != 200);
    assert!(
        reqwest::blocking::Client::new()
            .get(format!("{}/sign-in", app.base))
            .send()
            .is_err()
    );
}

#[test]
fn a_certificate_that_does_not_go_with_its_key_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, _) = certificate(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (_, _, key) = certificate(other.path());
    let refused = hale_server::tls::server_config(&cert, &key).unwrap_err();
    assert!(
        format!("{refused:#}").contains("do not go together"),
        "{refused:#}"
    );
    let out = crate::run(&[
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("do not go together"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
