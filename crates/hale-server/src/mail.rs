//! Sending Hale's emails: over SMTP when `--smtp-url` is set, otherwise into an outbox
//! folder in the data folder, so a laptop install needs no mail server and its owner can
//! still open the verification link.

use std::path::{Path, PathBuf};

use hale_app::accounts::Mailer;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

/// Sends through an SMTP server:
///
/// - `smtp://host:port`: plain, for a relay on the same machine or a private network; a
///   user name and password are refused here, since they would cross the network in clear;
/// - `smtp+starttls://user:password@host:587`: submission upgraded to TLS (required: a server
///   that does not offer it is not sent to);
/// - `smtps://user:password@host:465`: TLS from the first byte.
///
/// TLS checks the server's certificate against the Mozilla roots built in, or against the
/// certificate authority in `ca` (a PEM file) when the mail server has a private one.
pub struct SmtpMailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for `url`, sending as `from`.
    pub fn new(url: &str, from: &str, ca: Option<&Path>) -> anyhow::Result<Self> {
        // Never echo the URL back: it may hold a password.
        let parsed = url::Url::parse(url).map_err(|_| anyhow::anyhow!("bad SMTP URL"))?;
        let tls = match parsed.scheme() {
            "smtp" => None,
            "smtp+starttls" => Some(false),
            "smtps" => Some(true),
            _ => anyhow::bail!(
                "unsupported SMTP URL scheme: use smtp:// (a local relay), smtp+starttls:// or smtps://"
            ),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| anyhow::anyhow!("the SMTP URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !parsed.path().trim_start_matches('/').is_empty() || parsed.query().is_some() {
            anyhow::bail!("bad SMTP URL: give only the scheme, a login, the host and the port");
        }
        let user = percent_encoding::percent_decode_str(parsed.username())
            .decode_utf8()
            .map_err(|_| anyhow::anyhow!("bad SMTP user name"))?
            .into_owned();
        let password = percent_encoding::percent_decode_str(parsed.password().unwrap_or(""))
            .decode_utf8()
            .map_err(|_| anyhow::anyhow!("bad SMTP password"))?
            .into_owned();
        let builder = match tls {
            None => {
                if !user.is_empty() || !password.is_empty() {
                    anyhow::bail!(
                        "an SMTP login needs TLS: use smtp+starttls:// or smtps://, not smtp://"
                    );
                }
                SmtpTransport::builder_dangerous(&host).port(parsed.port().unwrap_or(25))
            }
            Some(implicit) => {
                let mut params = TlsParameters::builder(host.clone());
                if let Some(ca) = ca {
                    let pem = std::fs::read(ca).map_err(|e| {
                        anyhow::anyhow!("cannot read the SMTP CA file {}: {e}", ca.display())
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|_| {
                        anyhow::anyhow!("the SMTP CA file is not a PEM certificate")
                    })?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build_rustls()
                    .map_err(|e| anyhow::anyhow!("cannot set up TLS for SMTP: {e}"))?;
                let (tls, port) = if implicit {
                    (Tls::Wrapper(params), 465)
                } else {
                    (Tls::Required(params), 587)
                };
                let mut b = SmtpTransport::builder_dangerous(&host)
                    .port(parsed.port().unwrap_or(port))
                    .tls(tls);
                if !user.is_empty() {
                    b = b.credentials(Credentials::new(user, password));
                }
                b
            }
        };
        let transport = builder
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(Self {
            transport,
            from: from
                .parse()
                .map_err(|e| anyhow::anyhow!("bad sender address: {e}"))?,
        })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|_| "bad recipient address".to_owned())?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body.to_owned())
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|e| format!("the SMTP server refused or failed: {e}"))
    }
}

/// Writes each message as a file in a folder (readable by the owner only).
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    /// A mailer writing into `dir` (made if missing).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

impl Mailer for OutboxMailer {
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot make the outbox: {e}"))?;
        let name = format!("{}.eml", uuid::Uuid::now_v7());
        let path = self.dir.join(name);
        let text = format!("To: {to}\nSubject: {subject}\n\n{body}\n");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(|e| format!("cannot write to the outbox: {e}"))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .map_err(|e| format!("cannot write to the outbox: {e}"))?;
        tracing::info!(file = %path.display(), "email written to the outbox (no --smtp-url)");
        Ok(())
    }
}
