//! Driving the web app as a browser does (cookies, forms with their CSRF token, redirects),
//! and a real SMTP server to receive Hale's emails.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::header::HeaderMap;

/// A real SMTP server on loopback (Python's standard-library `smtpd`), keeping each
/// message it receives as a file. Stopped when dropped.
pub struct SmtpSink {
    /// `smtp://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
    child: Child,
    seen: usize,
}

impl SmtpSink {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/smtp-sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is needed for the SMTP test server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP test server did not start");
        Self {
            url: format!("smtp://127.0.0.1:{port}"),
            dir,
            child,
            seen: 0,
        }
    }

    /// Every message received so far, oldest first, as raw text.
    pub fn all(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// The next message not yet returned, waiting up to five seconds for it.
    pub fn next_email(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let all = self.all();
            if all.len() > self.seen {
                self.seen += 1;
                return all[self.seen - 1].clone();
            }
            assert!(Instant::now() < deadline, "no email arrived");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first link in an email that starts with `prefix`, with quoted-printable soft line
/// breaks undone.
pub fn link_in(email: &str, prefix: &str) -> String {
    let text = email
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no link {prefix} in {text}"));
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// One page as a browser received it.
#[derive(Debug)]
pub struct Page {
    /// HTTP status of the final response.
    pub status: u16,
    /// The address after redirects.
    pub url: String,
    /// Response headers.
    pub headers: HeaderMap,
    /// The HTML.
    pub html: String,
}

impl Page {
    /// The value of the hidden input `name` in the page's (first) form that has one.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .html
            .find(&marker)
            .unwrap_or_else(|| panic!("no hidden {name} on {}", self.url))
            + marker.len();
        self.html[start..].split('"').next().unwrap().to_owned()
    }

    /// The path part of the final address.
    pub fn path(&self) -> String {
        let after_scheme = self.url.split("//").nth(1).unwrap_or("");
        after_scheme
            .find('/')
            .map_or("/".to_owned(), |i| after_scheme[i..].to_owned())
    }

    /// The text inside the first `<code>` after `marker` (an authenticator key, a code).
    pub fn code_after(&self, marker: &str) -> String {
        let from = self.html.find(marker).unwrap_or(0);
        let start = self.html[from..].find("<code>").unwrap() + from + "<code>".len();
        let end = self.html[start..].find("</code>").unwrap() + start;
        self.html[start..end].to_owned()
    }
}

/// A browser: keeps cookies, follows redirects, fills in forms' CSRF tokens.
pub struct Browser {
    base: String,
    client: Client,
    /// Sent as `Accept-Language`.
    pub language: String,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Browser {
    /// A browser with no cookies, for the server at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: Client::builder().cookie_store(true).build().unwrap(),
            language: "en-GB".into(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into(),
        }
    }

    fn finish(res: reqwest::blocking::Response) -> Page {
        Page {
            status: res.status().as_u16(),
            url: res.url().to_string(),
            headers: res.headers().clone(),
            html: res.text().unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Opens a page (a path, or a full address from an email).
    pub fn get(&self, path: &str) -> Page {
        Self::finish(
            self.client
                .get(self.url(path))
                .header("accept-language", &self.language)
                .header("user-agent", &self.user_agent)
                .send()
                .unwrap(),
        )
    }

    /// Posts a form exactly as given (no CSRF token added).
    pub fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        Self::finish(
            self.client
                .post(self.url(path))
                .header("accept-language", &self.language)
                .header("user-agent", &self.user_agent)
                .form(fields)
                .send()
                .unwrap(),
        )
    }

    /// Submits a file-upload form (multipart) from an open page, with its CSRF token.
    pub fn upload(
        &self,
        page: &Page,
        action: &str,
        fields: &[(&str, &str)],
        file: (&str, Vec<u8>),
    ) -> Page {
        let mut form = reqwest::blocking::multipart::Form::new().text("csrf", page.hidden("csrf"));
        for (k, v) in fields {
            form = form.text((*k).to_owned(), (*v).to_owned());
        }
        let part = reqwest::blocking::multipart::Part::bytes(file.1).file_name(file.0.to_owned());
        form = form.part("file", part);
        Self::finish(
            self.client
                .post(self.url(action))
                .header("accept-language", &self.language)
                .header("user-agent", &self.user_agent)
                .multipart(form)
                .send()
                .unwrap(),
        )
    }

    /// Opens the page at `path`, then submits its form with these fields and the page's
    /// CSRF token (and any other hidden inputs named in `hidden`).
    pub fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(path);
        self.submit_on(&page, path, fields)
    }

    /// Submits the form of an already open page to `action`.
    pub fn submit_on(&self, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = page.hidden("csrf");
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(action, &all)
    }
}
