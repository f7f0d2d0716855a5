//! Hale's HTTP surface: the FHIR R4 REST API at `/fhir` (and, as the web app lands, the
//! pages at `/`).
//!
//! Handlers parse the request, call one [`hale_app::App`] method on a blocking thread (the
//! store is synchronous), and render. [`error`] is the one place that picks HTTP statuses.
//!
//! ```no_run
//! # async fn demo(app: std::sync::Arc<hale_app::App>) {
//! let router = hale_web::router(app, hale_web::WebConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, router).await.unwrap();
//! # }
//! ```

pub mod error;
mod fhir;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use hale_app::App;

/// The largest request body accepted: 10 MiB (a bigger one gets 413 and an OperationOutcome).
pub const MAX_BODY: usize = 10 * 1024 * 1024;

/// Web settings.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// The public base URL (`https://hale.example`), if not derivable from `Host`. Emailed
    /// links use it (never `Host`, which a client controls); cookies are `Secure` when it
    /// is https.
    pub public_url: Option<String>,
    /// Signs the pages' CSRF tokens (derived from the master key, so every process
    /// sharing a database agrees).
    pub page_secret: [u8; 32],
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct State {
    pub app: Arc<App>,
    pub config: Arc<WebConfig>,
}

impl State {
    /// Where emailed links point.
    pub(crate) fn link_base(&self) -> String {
        self.config
            .public_url
            .as_deref()
            .unwrap_or("http://127.0.0.1:8080")
            .trim_end_matches('/')
            .to_owned()
    }
}

/// The whole HTTP application.
pub fn router(app: Arc<App>, config: WebConfig) -> Router {
    let https = config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let state = State {
        app,
        config: Arc::new(config),
    };
    let mut router = Router::new()
        .merge(ui::routes())
        .route("/healthz", get(|| async { "ok" }))
        .nest("/fhir", fhir::routes())
        .fallback(ui::not_found)
        .layer(axum::middleware::map_response(ui::security_headers));
    if https {
        // Served over TLS (Hale's own, or a proxy's): browsers are to use nothing else.
        router = router.layer(axum::middleware::map_response(ui::strict_transport));
    }
    router
        // Bodies are limited where they are read (fhir::read_body), with a proper 413.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}
