//! Email through a mail service over TLS with a login (`smtp+starttls://`, `smtps://`),
//! against a real SMTP server (`smtp-server` on Node.js, `tests-oidc/smtp-tls.mjs`).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use hale_app::accounts::Mailer;
use hale_server::mail::SmtpMailer;
use hale_testkit::TestApp;

const USER: &str = "hale@example.org";
const PASSWORD: &str = "correct horse: battery/staple";

/// The SMTP server, its folder of received messages, and its certificate (PEM file).
struct TlsMailServer {
    port: u16,
    received: tempfile::TempDir,
    ca: PathBuf,
    _certs: tempfile::TempDir,
    child: Child,
}

impl TlsMailServer {
    fn start(mode: &str) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests-oidc");
        assert!(
            Path::new(dir).join("node_modules/smtp-server").exists(),
            "the SMTP server's package is missing: run `npm ci` in tests-oidc (scripts/test does)"
        );
        let certs = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let (ca, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
        std::fs::write(&ca, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let received = tempfile::tempdir().unwrap();
        let mut child = Command::new("node")
            .current_dir(dir)
            .arg("smtp-tls.mjs")
            .arg(port.to_string())
            .arg(received.path())
            .arg(&ca)
            .arg(&key)
            .args([mode, USER, PASSWORD])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Self {
            port,
            received,
            ca,
            _certs: certs,
            child,
        }
    }

    /// `scheme://user:password@127.0.0.1:port`, the login written as a URL must be.
    fn url(&self, scheme: &str, password: &str) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "{scheme}://{}:{}@127.0.0.1:{}",
            enc(USER),
            enc(password),
            self.port
        )
    }

    fn messages(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.received.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }
}

impl Drop for TlsMailServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sign_up_emails_go_through_a_mail_service_over_starttls_with_a_login() {
    let server = TlsMailServer::start("starttls");
    let (url, ca) = (server.url("smtp+starttls", PASSWORD), server.ca.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut config = hale_server::Config::for_data_dir(dir.path().join("data"));
    config.smtp_url = Some(url);
    config.smtp_ca = Some(ca);
    let app = TestApp::spawn_on(dir, config);
    let b = app.browser();
    let page = b.submit(
        "/sign-up",
        &[
            ("name", "Tess Tls"),
            ("email", "tess@example.org"),
            ("password", "walrus lantern orchard 42"),
            ("confirm", "walrus lantern orchard 42"),
        ],
    );
    assert!(page.html.contains("Check your email"), "{}", page.html);
    let sent = server.messages();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].starts_with(&format!("X-Test-Session: tls=true user={USER}")),
        "{}",
        sent[0]
    );
    assert!(sent[0].contains("To: tess@example.org"));
    assert!(sent[0].contains("/account/verify-email?token="));
}

#[test]
fn tls_from_the_first_byte_works_too_and_nothing_is_sent_to_a_server_that_cannot_be_trusted() {
    let server = TlsMailServer::start("smtps");
    let send = |url: &str, ca: Option<&Path>| {
        SmtpMailer::new(url, "Hale <hale@example.org>", ca)
            .unwrap()
            .send("someone@example.org", "A test", "Hello")
    };
    send(&server.url("smtps", PASSWORD), Some(&server.ca)).unwrap();
    assert_eq!(server.messages().len(), 1);
    // The wrong password, or a certificate nobody vouches for: refused, nothing sent.
    assert!(send(&server.url("smtps", "guess"), Some(&server.ca)).is_err());
    assert!(send(&server.url("smtps", PASSWORD), None).is_err());
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn a_login_is_never_sent_in_clear_and_a_bad_mail_url_stops_start_up() {
    let starttls = TlsMailServer::start("starttls");
    // Plain SMTP to a server that wants TLS: it refuses the mail.
    let plain = format!("smtp://127.0.0.1:{}", starttls.port);
    let refused = SmtpMailer::new(&plain, "Hale <hale@example.org>", None)
        .unwrap()
        .send("someone@example.org", "A test", "Hello");
    assert!(refused.is_err());
    assert!(starttls.messages().is_empty());
    for (url, words) in [
        (starttls.url("smtp", PASSWORD), "an SMTP login needs TLS"),
        (
            "imap://mail.example.org".to_owned(),
            "unsupported SMTP URL scheme",
        ),
        ("smtps://".to_owned(), "the SMTP URL has no host"),
        ("smtps://mail.example.org/inbox".to_owned(), "bad SMTP URL"),
    ] {
        let Err(e) = SmtpMailer::new(&url, "Hale <hale@example.org>", None) else {
            panic!("{url} was accepted");
        };
        let e = e.to_string();
        assert!(e.contains(words), "{url}: {e}");
        assert!(
            !e.contains(PASSWORD) && !e.contains("horse"),
            "the password leaked: {e}"
        );
    }
    let o = crate::run(&[
        "serve",
        "--data-dir",
        tempfile::tempdir().unwrap().path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--smtp-url",
        &starttls.url("smtp", PASSWORD),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("an SMTP login needs TLS"), "{stderr}");
    assert!(!stderr.contains("horse"), "the password leaked: {stderr}");
}
