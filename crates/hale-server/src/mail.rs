//! Sending Hale's emails: over SMTP when `--smtp-url` is set, otherwise into an outbox
//! folder in the data folder, so a laptop install needs no mail server and its owner can
//! still open the verification link.

use std::path::PathBuf;

use hale_app::accounts::Mailer;
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};

/// Sends through an SMTP server (`smtp://host:port`, plain, for a local relay or a mail
/// service on a private network).
pub struct SmtpMailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for `url`, sending as `from`.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("smtp://") else {
            anyhow::bail!(
                "unsupported SMTP URL scheme: use smtp://host:port (a local relay); TLS submission is not built in yet"
            );
        };
        let authority = rest.trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("bad SMTP port in {url}"))?,
            ),
            None => (authority, 25),
        };
        if host.is_empty() || host.contains('@') || host.contains('/') {
            anyhow::bail!("bad SMTP URL {url}: give smtp://host:port");
        }
        // No TLS: the relay is local or on a private network (the URL scheme says so).
        let transport = SmtpTransport::builder_dangerous(host)
            .port(port)
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
