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

use std::sync::Arc;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use hale_app::App;

/// The largest request body accepted: 10 MiB (a bigger one gets 413 and an OperationOutcome).
pub const MAX_BODY: usize = 10 * 1024 * 1024;

/// Web settings.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// The public base URL (`https://hale.example`), if not derivable from `Host`.
    pub public_url: Option<String>,
}

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct State {
    pub app: Arc<App>,
    pub config: Arc<WebConfig>,
}

/// The whole HTTP application.
pub fn router(app: Arc<App>, config: WebConfig) -> Router {
    let state = State {
        app,
        config: Arc::new(config),
    };
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(|| async { "ok" }))
        .nest("/fhir", fhir::routes())
        // Bodies are limited where they are read (fhir::read_body), with a proper 413.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn home() -> Html<&'static str> {
    Html(include_str!("home.html"))
}
