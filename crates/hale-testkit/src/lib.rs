//! `TestApp::spawn()`: a real Hale server on `127.0.0.1:0` with its own data folder (or its
//! own PostgreSQL database), and a client with typed helpers. Dropped, it shuts down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod web;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hale_server::Config;
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Give this as `public_url` to serve the test app at `http://localhost:PORT` (a domain
/// name, as passkeys need), its address then in `base` and its links.
pub const LOCALHOST: &str = "http://localhost";

/// Where the shared test data lives (copied into the project, with sources and licences).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A response: status, headers, and the body as JSON (`Null` if empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub bytes: Vec<u8>,
    /// The body as JSON.
    pub json: Value,
}

impl Resp {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A running server.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data folder.
    pub dir: tempfile::TempDir,
    /// The configuration it runs with (for the CLI and for restarts).
    pub config: Config,
    /// A system token (`system/*.cruds`).
    pub system_token: String,
    app: Arc<hale_server::App>,
    client: Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _pg: Option<hale_store_postgres::testing::TestDatabase>,
}

impl TestApp {
    /// A server on the embedded database whose email goes to a real SMTP server.
    pub fn spawn_with_mail() -> (Self, web::SmtpSink) {
        Self::spawn_with_mail_and(|_| {})
    }

    /// The same, with a change to the configuration.
    pub fn spawn_with_mail_and(change: impl FnOnce(&mut Config)) -> (Self, web::SmtpSink) {
        let smtp = web::SmtpSink::start();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_data_dir(dir.path().join("data"));
        config.smtp_url = Some(smtp.url.clone());
        change(&mut config);
        (Self::start(dir, config, None), smtp)
    }

    /// A browser for this server.
    pub fn browser(&self) -> web::Browser {
        web::Browser::new(&self.base)
    }

    /// A server on the embedded database.
    pub fn spawn() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_data_dir(dir.path().join("data"));
        Self::start(dir, config, None)
    }

    /// A server on a fresh PostgreSQL database, or `None` without `HALE_TEST_POSTGRES_URL`.
    pub fn spawn_postgres() -> Option<Self> {
        let db = hale_store_postgres::testing::TestDatabase::create()?
            .expect("cannot create a test database");
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_data_dir(dir.path().join("data"));
        config.database = Some(db.url.clone());
        config.key_hex = Some("11".repeat(32));
        Some(Self::start(dir, config, Some(db)))
    }

    /// A server on an existing data folder and configuration (a restored backup, a restart).
    pub fn spawn_on(dir: tempfile::TempDir, config: Config) -> Self {
        Self::start(dir, config, None)
    }

    fn start(
        dir: tempfile::TempDir,
        mut config: Config,
        pg: Option<hale_store_postgres::testing::TestDatabase>,
    ) -> Self {
        let app = hale_server::open_app(&config).expect("cannot open the app");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut base = format!("{scheme}://{}", std_listener.local_addr().unwrap());
        // Served at a domain name (passkeys need one): localhost, on the port just bound.
        if config.public_url.as_deref() == Some(LOCALHOST) {
            base = format!("{LOCALHOST}:{}", std_listener.local_addr().unwrap().port());
            config.public_url = Some(base.clone());
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve_app = app.clone();
        let serve_config = config.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                hale_server::serve(serve_app, &serve_config, listener, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        let system_token = app
            .issue_token("test-system", None, "system/*.cruds", 3600)
            .unwrap();
        Self {
            base,
            dir,
            config,
            system_token,
            app,
            client: Client::builder().build().unwrap(),
            shutdown: Some(tx),
            thread: Some(thread),
            _pg: pg,
        }
    }

    /// A new record (person) and a token for it with `patient/*.cruds`.
    pub fn new_person(&self, name: &str) -> (String, String) {
        let record = self.app.create_person(name, None, None).unwrap();
        let token = self.token(&record.to_string(), "patient/*.cruds");
        (record.to_string(), token)
    }

    /// Adds the demo person (as `hale serve --demo` does).
    pub fn demo(&self) -> hale_app::demo::DemoPerson {
        match self.app.create_demo_person() {
            Ok(d) => d,
            Err(e) => panic!("the demo failed: {e}: {:?}", e.issues()),
        }
    }

    /// The record an account owns (by its email address).
    pub fn record_of(&self, email: &str) -> String {
        self.app
            .record_of_account(email)
            .unwrap()
            .expect("no account with that address")
            .to_string()
    }

    /// A token for a record with these scopes.
    pub fn token(&self, record: &str, scope: &str) -> String {
        let r = hale_server::RecordId::parse(record).unwrap();
        self.app
            .issue_token("test-user", Some(&r), scope, 3600)
            .unwrap()
    }

    /// A token for the holder of grant `grant` in `record`, with these scopes.
    pub fn grant_token(&self, record: &str, grant: &str, scope: &str) -> String {
        let r = hale_server::RecordId::parse(record).unwrap();
        self.app.issue_grant_token(&r, grant, scope, 3600).unwrap()
    }

    /// The application itself, for set-up that has no HTTP route yet.
    pub fn app(&self) -> &hale_server::App {
        &self.app
    }

    /// Sends a request; `token` may be empty for none.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method.parse().unwrap(), url);
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/fhir+json").body(b);
        }
        let res = req.send().expect("the server did not answer");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().unwrap().to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            bytes,
            json,
        }
    }

    /// GET.
    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.send("GET", path, token, None, &[])
    }

    /// POST a JSON value.
    pub fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(
            "POST",
            path,
            token,
            Some(serde_json::to_vec(body).unwrap()),
            &[],
        )
    }

    /// PUT a JSON value.
    pub fn put(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(
            "PUT",
            path,
            token,
            Some(serde_json::to_vec(body).unwrap()),
            &[],
        )
    }

    /// The ids of a searchset's matches, sorted.
    pub fn search_ids(&self, path: &str, token: &str) -> Vec<String> {
        let r = self.get(path, token);
        assert_eq!(r.status, 200, "{path}: {}", r.json);
        let mut ids: Vec<String> = r.json["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter(|x| x["search"]["mode"] == "match")
                    .map(|x| x["resource"]["id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
