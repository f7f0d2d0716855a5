//! Configuration and wiring: the one place that names a storage backend and builds the
//! [`App`](hale_app::App). The `hale` binary (`main.rs`) is a thin command line over this.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = hale_server::Config::for_data_dir("./hale-data".into());
//! let app = hale_server::open_app(&config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! hale_server::serve(app, &config, listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod cli;
mod import;
mod key;
pub mod mail;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use hale_app::TokenKey;
use hale_store::{MasterKey, Store};

pub use hale_app::App;
pub use hale_core::RecordId;
pub use key::load_or_create_master_key;

/// Where the data lives and how to reach it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data folder (SQLite database, key file).
    pub data_dir: PathBuf,
    /// A database URL: `postgres://…`, or `sqlite://PATH`; `None` for `DATA_DIR/hale.db`.
    pub database: Option<String>,
    /// The master key file; `None` for `DATA_DIR/hale.key` (unless `HALE_KEY` is set).
    pub key_file: Option<PathBuf>,
    /// The master key itself, as 64 hex digits (from `HALE_KEY`); wins over the file.
    pub key_hex: Option<String>,
    /// The public base URL for links (emails, FHIR bundles); default `http://LISTEN`.
    pub public_url: Option<String>,
    /// Where email goes (`smtp://`, `smtp+starttls://`, `smtps://`; see [`mail::SmtpMailer`]);
    /// `None` writes it to `DATA_DIR/outbox`.
    pub smtp_url: Option<String>,
    /// A certificate authority (PEM) to trust for the SMTP server's TLS, besides the usual
    /// roots.
    pub smtp_ca: Option<PathBuf>,
    /// The sender of Hale's emails.
    pub mail_from: String,
    /// How long a second factor counts as recent for sensitive actions, seconds.
    pub reauth_window_secs: i64,
    /// Sign-in through an OpenID Connect provider, if configured.
    pub oidc: Option<OidcConfig>,
    /// Serve HTTPS with this certificate chain and private key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// An OpenID Connect provider people can sign in with (NHS login, or another).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Its issuer URL.
    pub issuer: String,
    /// Hale's client id there.
    pub client_id: String,
    /// Scopes to ask for besides `openid`.
    pub scope: String,
    /// Vectors of trust to ask for; empty for a provider without them.
    pub vtr: Vec<String>,
    /// Its name on the sign-in page.
    pub name: String,
}

impl Config {
    /// Defaults for a data folder.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            database: None,
            key_file: None,
            key_hex: None,
            public_url: None,
            smtp_url: None,
            smtp_ca: None,
            mail_from: DEFAULT_MAIL_FROM.to_owned(),
            reauth_window_secs: hale_app::accounts::REAUTH_WINDOW_MS / 1000,
            oidc: None,
            tls: None,
        }
    }
}

/// The sender when none is configured.
pub const DEFAULT_MAIL_FROM: &str = "Hale <hale@localhost>";

/// The storage backend a URL names. Any scheme but these two is an error, never a new
/// empty database somewhere unexpected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(String),
}

/// Chooses the backend for a configuration.
pub fn backend(config: &Config) -> anyhow::Result<Backend> {
    match config.database.as_deref() {
        None | Some("") => Ok(Backend::Sqlite(config.data_dir.join("hale.db"))),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Backend::Postgres(url.to_owned()))
        }
        Some(url) if url.starts_with("sqlite://") => {
            Ok(Backend::Sqlite(PathBuf::from(&url["sqlite://".len()..])))
        }
        Some(url) => {
            let scheme = url.split_once("://").map_or("(none)", |(s, _)| s);
            bail!(
                "unsupported database URL scheme '{scheme}': use postgres://… or sqlite://PATH, or leave --database out for the embedded database"
            )
        }
    }
}

/// Opens the store (running migrations) for a configuration.
pub fn open_store(config: &Config) -> anyhow::Result<(Arc<dyn Store>, MasterKey)> {
    let backend = backend(config)?;
    let fresh = match &backend {
        Backend::Sqlite(path) => !path.exists(),
        Backend::Postgres(_) => false,
    };
    let master = load_or_create_master_key(config, fresh)?;
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
            }
            Arc::new(
                hale_store_sqlite::SqliteStore::open(&path, &master)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        }
        Backend::Postgres(url) => Arc::new(
            hale_store_postgres::PostgresStore::open(&url, &master)
                .context("cannot open the PostgreSQL database")?,
        ),
    };
    Ok((store, master))
}

/// Builds the application for a configuration.
pub fn open_app(config: &Config) -> anyhow::Result<Arc<App>> {
    let (store, master) = open_store(config)?;
    let mailer: Box<dyn hale_app::accounts::Mailer> = match &config.smtp_url {
        Some(url) => Box::new(mail::SmtpMailer::new(
            url,
            &config.mail_from,
            config.smtp_ca.as_deref(),
        )?),
        None => Box::new(mail::OutboxMailer::new(config.data_dir.join("outbox"))),
    };
    let mut app = App::new(store, TokenKey::new(master.derive("bearer-token-signing")))
        .with_identity(
            hale_auth::secret::SealKey::new(master.derive("account-secrets")),
            mailer,
        )
        .with_reauth_window(config.reauth_window_secs)
        .with_uploads(
            config.data_dir.join("imports"),
            hale_auth::secret::SealKey::new(master.derive("import-uploads")),
        )
        .with_id_tokens(&master.derive("id-token-signing"))
        .context("cannot make the ID token signing key")?;
    if let Some(oidc) = &config.oidc {
        app = app
            .with_oidc(hale_app::oidc::OidcSettings {
                issuer: oidc.issuer.clone(),
                client_id: oidc.client_id.clone(),
                scope: oidc.scope.clone(),
                vtr: oidc.vtr.clone(),
                name: oidc.name.clone(),
                key_seed: master.derive(OIDC_KEY_LABEL),
            })
            .context("cannot set up sign-in through the identity provider")?;
    }
    Ok(Arc::new(app))
}

/// What Hale's key for signing in at an OpenID provider is derived under.
const OIDC_KEY_LABEL: &str = "oidc-client-signing";

/// Hale's public key for authenticating to an OpenID provider, as a JWK Set.
pub fn oidc_public_keys(config: &Config) -> anyhow::Result<serde_json::Value> {
    let master = load_or_create_master_key(config, false)?;
    Ok(hale_app::oidc::public_keys(&master.derive(OIDC_KEY_LABEL))?)
}

/// The key that signs the web pages' CSRF tokens.
pub fn page_secret(config: &Config) -> anyhow::Result<[u8; 32]> {
    let master = load_or_create_master_key(config, false)?;
    Ok(master.derive("web-page-csrf"))
}

/// Serves HTTP on `listener` until `shutdown` completes.
pub async fn serve(
    app: Arc<App>,
    config: &Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local = listener.local_addr().context("no local address")?;
    // The certificate is read before anything listens, so a bad one stops start-up loudly.
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Imports uploaded before a stop (or a crash) carry on; they skip what is already stored.
    for job in app.unfinished_imports() {
        app.spawn_import(job);
    }
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{local}"));
    app.enable_passkeys(&public_url);
    let router = hale_web::router(
        app,
        hale_web::WebConfig {
            public_url: Some(public_url),
            page_secret: page_secret(config)?,
        },
    );
    if let Some(tls) = tls {
        return tls::serve(router, listener, tls, shutdown).await;
    }
    // The peer address feeds the sign-in limits (per address as well as per account).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("the HTTP server failed")
}
